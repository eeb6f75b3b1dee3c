//! The one error type, shaped by what the caller can do about each failure.
//!
//! Nothing in here ever holds a secret or a response body: a rejection keeps only the
//! server's error fields (with any secret of the request scrubbed out), and an unexpected
//! response keeps only its status, content type and what was wrong with it.

use std::fmt;
use std::time::Duration;

pub(crate) mod b2c_code;

use self::b2c_code::{B2cCode, Retry};

/// Everything that can go wrong while getting a token.
///
/// Cloning is cheap: a failure shared by many waiting callers is handed to each of them.
///
/// Match on the variant to decide what to do: fix the configuration, fix the request or the
/// credentials ([`Error::Rejected`]), retry later ([`Error::is_retryable`]), or report an
/// unexpected server ([`Error::UnexpectedResponse`]).
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The SDK was configured with something it cannot use (a malformed tenant, an
    /// `http://` URL to a remote host, a missing secret, ...). Nothing was sent.
    #[error("invalid configuration: {0}")]
    Config(String),

    /// The token endpoint answered with an OAuth error (`{"error": ..., "error_description": ...}`).
    #[error(transparent)]
    Rejected(Box<Rejection>),

    /// The token endpoint answered with something that is neither a token nor an OAuth
    /// error: an HTML page, a 404 for an unknown policy, malformed JSON, a 2xx without a token.
    #[error(transparent)]
    UnexpectedResponse(Box<UnexpectedResponse>),

    /// The server is throttling (HTTP 429 or B2C's AADB2C90229/90244) and asked for a wait
    /// longer than the call's retry budget allows. Nothing more was sent; try again after
    /// `retry_after`, and cache tokens longer.
    #[error("throttled by the token endpoint: retry after {} s", retry_after.as_secs_f64().ceil())]
    Throttled {
        /// How long to wait before the next request (the server's `Retry-After`, capped, or
        /// the back-off the SDK computed).
        retry_after: Duration,
        /// The HTTP status of the last response.
        status: Option<u16>,
        /// The B2C code of the last response, if any.
        code: Option<B2cCode>,
    },

    /// The request did not complete: DNS, connect, TLS, timeout, or a dropped connection.
    #[error("token request failed: {message}")]
    Transport {
        /// What failed, without URL query strings or bodies.
        message: String,
        /// Whether the failure was a timeout.
        timed_out: bool,
        /// The underlying error.
        #[source]
        source: std::sync::Arc<dyn std::error::Error + Send + Sync>,
    },
}

impl Error {
    pub(crate) fn config(message: impl Into<String>) -> Self {
        Self::Config(message.into())
    }

    /// The B2C code of a rejection, if the server sent one.
    #[must_use]
    pub fn b2c_code(&self) -> Option<B2cCode> {
        match self {
            Self::Rejected(rejection) => rejection.b2c_code(),
            Self::Throttled { code, .. } => *code,
            _ => None,
        }
    }

    /// The HTTP status of the response, when there was one.
    #[must_use]
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Rejected(rejection) => Some(rejection.status()),
            Self::UnexpectedResponse(response) => response.status(),
            Self::Throttled { status, .. } => *status,
            _ => None,
        }
    }

    /// Whether the grant itself is no longer usable (`invalid_grant`, AADB2C90080 expired or
    /// AADB2C90129 revoked): the caller should fall back to the original grant.
    #[must_use]
    pub fn is_invalid_grant(&self) -> bool {
        match self {
            Self::Rejected(rejection) => {
                rejection.error() == "invalid_grant"
                    || matches!(
                        rejection.b2c_code(),
                        Some(B2cCode::GrantExpired | B2cCode::GrantRevoked)
                    )
            }
            _ => false,
        }
    }

    /// Whether the request timed out.
    #[must_use]
    pub fn is_timeout(&self) -> bool {
        matches!(self, Self::Transport { timed_out: true, .. })
    }

    /// Whether repeating the same request later may succeed: transport failures, HTTP 429
    /// and 5xx, and B2C's throttling and "temporarily unavailable" codes. Never true for a
    /// rejected password or secret.
    #[must_use]
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Transport { .. } | Self::Throttled { .. } => true,
            Self::Rejected(rejection) => match rejection.b2c_code() {
                Some(code) => code.retry() != Retry::Never,
                None => is_transient_status(rejection.status()),
            },
            Self::UnexpectedResponse(response) => response.status().is_some_and(is_transient_status),
            Self::Config(_) => false,
        }
    }

    /// How long the server asked the caller to wait (`Retry-After`), if it said.
    #[must_use]
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Rejected(rejection) => rejection.retry_after,
            Self::UnexpectedResponse(response) => response.retry_after,
            Self::Throttled { retry_after, .. } => Some(*retry_after),
            _ => None,
        }
    }

    /// The `client-request-id` the SDK sent with the failed request, for correlating with
    /// server logs.
    #[must_use]
    pub fn client_request_id(&self) -> Option<&str> {
        match self {
            Self::Rejected(rejection) => rejection.client_request_id.as_deref(),
            Self::UnexpectedResponse(response) => response.client_request_id.as_deref(),
            _ => None,
        }
    }
}

/// 408, 429 and 5xx: worth asking again later. The one definition the retry loop uses too.
pub(crate) fn is_transient_status(status: u16) -> bool {
    status == 429 || status == 408 || (500..600).contains(&status)
}

/// An OAuth error response from the token endpoint, with B2C's details parsed out.
///
/// B2C writes `error_description` as
/// `AADB2Cnnnnn: <message>\r\nCorrelation ID: <guid>\r\nTimestamp: <time>\r\n`;
/// each piece is available on its own.
#[derive(Clone, PartialEq, Eq)]
pub struct Rejection {
    pub(crate) status: u16,
    pub(crate) error: String,
    pub(crate) code: Option<B2cCode>,
    pub(crate) message: String,
    pub(crate) correlation_id: Option<String>,
    pub(crate) timestamp: Option<String>,
    pub(crate) client_request_id: Option<String>,
    pub(crate) retry_after: Option<Duration>,
    pub(crate) remembered: bool,
}

impl Rejection {
    /// Parses an error body's `error` and `error_description`.
    pub(crate) fn from_oauth_error(status: u16, error: String, description: &str) -> Self {
        let code = B2cCode::parse(description);
        let mut message = String::new();
        let mut correlation_id = None;
        let mut timestamp = None;
        // Libraries sometimes render B2C's "\r\n" separators as spaces; split on both the
        // line breaks and the field labels so either shape parses.
        let mut text = description.trim();
        if let Some(code) = code {
            let prefix = format!("{code}:");
            text = text.strip_prefix(prefix.as_str()).unwrap_or(text).trim_start();
        }
        if let Some((before, after)) = split_label(text, "Timestamp:") {
            timestamp = Some(after.trim().to_owned()).filter(|t| !t.is_empty());
            text = before;
        }
        if let Some((before, after)) = split_label(text, "Correlation ID:") {
            correlation_id = Some(after.trim().to_owned()).filter(|t| !t.is_empty());
            text = before;
        }
        message.push_str(text.trim());
        Self {
            status,
            error,
            code,
            message,
            correlation_id,
            timestamp,
            client_request_id: None,
            retry_after: None,
            remembered: false,
        }
    }

    /// Whether this answer came from the SDK's memory of recently rejected credentials
    /// (ROPC lockout rails) rather than from a new request.
    #[must_use]
    pub fn is_remembered(&self) -> bool {
        self.remembered
    }

    /// The HTTP status, e.g. 400.
    #[must_use]
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The OAuth `error` value, e.g. `invalid_grant` or `access_denied`.
    #[must_use]
    pub fn error(&self) -> &str {
        &self.error
    }

    /// The parsed `AADB2Cnnnnn` code, if the description started with one.
    #[must_use]
    pub fn b2c_code(&self) -> Option<B2cCode> {
        self.code
    }

    /// The server's message, without the code, correlation ID and timestamp.
    #[must_use]
    pub fn message(&self) -> &str {
        &self.message
    }

    /// B2C's correlation ID, to quote to Microsoft support.
    #[must_use]
    pub fn correlation_id(&self) -> Option<&str> {
        self.correlation_id.as_deref()
    }

    /// B2C's timestamp of the failure, as the server wrote it.
    #[must_use]
    pub fn timestamp(&self) -> Option<&str> {
        self.timestamp.as_deref()
    }

    /// The `client-request-id` the SDK sent.
    #[must_use]
    pub fn client_request_id(&self) -> Option<&str> {
        self.client_request_id.as_deref()
    }

    /// One line saying what to do: the code's hint when B2C sent a known code, otherwise a
    /// hint derived from the OAuth `error` value.
    #[must_use]
    pub fn hint(&self) -> &'static str {
        if let Some(code) = self.code {
            return code.hint();
        }
        match self.error.as_str() {
            "invalid_client" => "check the client ID and secret, and how the client authenticates (form body or Basic)",
            "invalid_grant" => "the grant (password or refresh token) is invalid or expired: sign in again",
            "invalid_scope" => "request scopes the server knows, joined with spaces",
            "unauthorized_client" => "this client may not use this grant: check the app registration",
            "unsupported_grant_type" => "the server does not support this grant",
            "access_denied" => "the server refused the credentials: check them, and do not retry automatically",
            _ => "see the server's message; docs/troubleshooting.md lists common causes",
        }
    }
}

fn split_label<'a>(text: &'a str, label: &str) -> Option<(&'a str, &'a str)> {
    let at = text.find(label)?;
    Some((&text[..at], &text[at + label.len()..]))
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "token request rejected with HTTP {} `{}`", self.status, self.error)?;
        if let Some(code) = self.code {
            write!(f, " {code}")?;
        }
        if !self.message.is_empty() {
            write!(f, ": {}", self.message.trim_end_matches('.'))?;
        }
        write!(f, " (fix: {})", self.hint())?;
        if let Some(id) = &self.correlation_id {
            write!(f, " [correlation ID {id}]")?;
        }
        if self.remembered {
            f.write_str(" (remembered from an earlier attempt: not sent again)")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rejection")
            .field("status", &self.status)
            .field("error", &self.error)
            .field("code", &self.code)
            .field("message", &self.message)
            .field("correlation_id", &self.correlation_id)
            .field("timestamp", &self.timestamp)
            .field("client_request_id", &self.client_request_id)
            .field("retry_after", &self.retry_after)
            .field("remembered", &self.remembered)
            .finish()
    }
}

impl std::error::Error for Rejection {}

/// What was wrong with a response that was neither a token nor an OAuth error.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum UnexpectedKind {
    /// An error status with a body that is not an OAuth error (e.g. 404 for an unknown
    /// policy or tenant, 502 from a proxy, an empty 401).
    ErrorStatus,
    /// A success status whose body is not JSON (e.g. an HTML sign-in page).
    NotJson,
    /// JSON that could not be parsed at all.
    MalformedJson {
        /// Where parsing stopped, e.g. `line 1 column 20`. The content is never quoted.
        position: String,
    },
    /// A field had a value of the wrong shape.
    InvalidField {
        /// The field's name, e.g. `expires_in`.
        field: &'static str,
        /// What was expected.
        expected: &'static str,
    },
    /// A success response with neither an access token nor an ID token.
    NoToken,
    /// The body was larger than the SDK accepts.
    BodyTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
}

/// A response that was neither a token nor an OAuth error.
///
/// Holds the status, the content type and what was wrong, never the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnexpectedResponse {
    pub(crate) status: Option<u16>,
    pub(crate) content_type: Option<String>,
    pub(crate) kind: UnexpectedKind,
    pub(crate) client_request_id: Option<String>,
    pub(crate) retry_after: Option<Duration>,
}

impl UnexpectedResponse {
    pub(crate) fn new(status: u16, content_type: Option<String>, kind: UnexpectedKind) -> Self {
        Self {
            status: Some(status),
            content_type,
            kind,
            client_request_id: None,
            retry_after: None,
        }
    }

    /// The HTTP status, when the response got as far as having one.
    #[must_use]
    pub fn status(&self) -> Option<u16> {
        self.status
    }

    /// The response's `Content-Type`, if it had one.
    #[must_use]
    pub fn content_type(&self) -> Option<&str> {
        self.content_type.as_deref()
    }

    /// What was wrong with it.
    #[must_use]
    pub fn kind(&self) -> &UnexpectedKind {
        &self.kind
    }

    /// One line saying what to do.
    #[must_use]
    pub fn hint(&self) -> &'static str {
        match (&self.kind, self.status) {
            (UnexpectedKind::ErrorStatus, Some(404)) => {
                "the tenant or policy in the token URL is unknown: check the tenant name, the policy name and the URL form"
            }
            (UnexpectedKind::ErrorStatus, Some(429)) => "throttled: wait before retrying and reuse cached tokens",
            (UnexpectedKind::ErrorStatus, Some(s)) if s >= 500 => "the server failed: retry later with back-off",
            (UnexpectedKind::NotJson, _) => {
                "the endpoint answered with a web page: check the token URL and that the policy supports this grant"
            }
            (UnexpectedKind::NoToken, _) => "request a resource scope (e.g. the client ID or an API scope) to get an access token",
            _ => "check that the token URL points at an OAuth2 token endpoint",
        }
    }
}

impl fmt::Display for UnexpectedResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("unexpected response from the token endpoint")?;
        if let Some(status) = self.status {
            write!(f, " (HTTP {status}")?;
            if let Some(content_type) = &self.content_type {
                write!(f, ", {content_type}")?;
            }
            f.write_str(")")?;
        }
        match &self.kind {
            UnexpectedKind::ErrorStatus => f.write_str(": error status without an OAuth error body")?,
            UnexpectedKind::NotJson => f.write_str(": body is not JSON")?,
            UnexpectedKind::MalformedJson { position } => write!(f, ": malformed JSON at {position}")?,
            UnexpectedKind::InvalidField { field, expected } => write!(f, ": field `{field}` must be {expected}")?,
            UnexpectedKind::NoToken => f.write_str(": no access_token or id_token in a success response")?,
            UnexpectedKind::BodyTooLarge { limit } => write!(f, ": body larger than {limit} bytes")?,
        }
        write!(f, " (fix: {})", self.hint())
    }
}

impl std::error::Error for UnexpectedResponse {}

/// Shorthand for results in this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_b2c_description_with_crlf() {
        let r = Rejection::from_oauth_error(
            400,
            "access_denied".into(),
            "AADB2C90225: The username or password provided in the request are invalid.\r\nCorrelation ID: 9b3c19e2-6084-4bcd-b7d3-aab8d2c34dd9\r\nTimestamp: 2019-01-30 13:35:09Z\r\n",
        );
        assert_eq!(r.b2c_code(), Some(B2cCode::InvalidCredentials));
        assert_eq!(
            r.message(),
            "The username or password provided in the request are invalid."
        );
        assert_eq!(r.correlation_id(), Some("9b3c19e2-6084-4bcd-b7d3-aab8d2c34dd9"));
        assert_eq!(r.timestamp(), Some("2019-01-30 13:35:09Z"));
    }

    #[test]
    fn parses_description_rendered_with_spaces() {
        let r = Rejection::from_oauth_error(
            400,
            "invalid_grant".into(),
            "AADB2C90080: The provided grant has expired. Correlation ID: 1cb64b4c-9b6e-4c1f-8bb6-6f8fbc0a3c2e Timestamp: 2017-12-28 06:37:33Z",
        );
        assert_eq!(r.b2c_code(), Some(B2cCode::GrantExpired));
        assert_eq!(r.message(), "The provided grant has expired.");
        assert_eq!(r.correlation_id(), Some("1cb64b4c-9b6e-4c1f-8bb6-6f8fbc0a3c2e"));
        assert_eq!(r.timestamp(), Some("2017-12-28 06:37:33Z"));
    }

    #[test]
    fn non_b2c_description_is_kept_whole() {
        let r = Rejection::from_oauth_error(401, "invalid_client".into(), "Client authentication failed");
        assert_eq!(r.b2c_code(), None);
        assert_eq!(r.message(), "Client authentication failed");
        assert!(r.hint().contains("client ID and secret"));
    }

    #[test]
    fn display_is_one_actionable_line() {
        let r = Rejection::from_oauth_error(
            400,
            "invalid_request".into(),
            "AADB2C90084: Public clients should not send a client_secret.",
        );
        let text = Error::Rejected(Box::new(r)).to_string();
        assert_eq!(
            text,
            "token request rejected with HTTP 400 `invalid_request` AADB2C90084: Public clients should not send a client_secret (fix: ROPC is a public-client flow: drop the client secret from this client)"
        );
    }

    #[test]
    fn retryability_follows_status_and_code() {
        let throttled = Error::Rejected(Box::new(Rejection::from_oauth_error(
            400,
            "invalid_request".into(),
            "AADB2C90244: busy",
        )));
        assert!(throttled.is_retryable());
        let bad_password = Error::Rejected(Box::new(Rejection::from_oauth_error(
            400,
            "access_denied".into(),
            "AADB2C90225: no",
        )));
        assert!(!bad_password.is_retryable());
        let not_found = Error::UnexpectedResponse(Box::new(UnexpectedResponse::new(
            404,
            None,
            UnexpectedKind::ErrorStatus,
        )));
        assert!(!not_found.is_retryable());
        let unavailable = Error::UnexpectedResponse(Box::new(UnexpectedResponse::new(
            503,
            None,
            UnexpectedKind::ErrorStatus,
        )));
        assert!(unavailable.is_retryable());
    }
}
