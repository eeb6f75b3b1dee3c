//! The one error type, shaped by what the caller can do about each failure.
//!
//! Nothing in here ever holds a secret or a response body: a rejection keeps only the
//! server's error fields (with any secret of the request scrubbed out), and an unexpected
//! response keeps only its status, content type and what was wrong with it.

use std::time::Duration;

pub(crate) mod aadsts;
pub(crate) mod b2c_code;
#[cfg(feature = "validate")]
pub(crate) mod invalid_token;
mod rejection;
pub(crate) mod server_text;
pub(crate) mod unexpected;

pub use self::aadsts::AadstsCode;
pub use self::b2c_code::{B2cCode, RetryAdvice};
#[cfg(feature = "validate")]
use self::invalid_token::InvalidToken;
pub use self::rejection::Rejection;
pub use self::unexpected::{UnexpectedKind, UnexpectedResponse};

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
    #[non_exhaustive]
    Throttled {
        /// How long to wait before the next request (the server's `Retry-After`, capped, or
        /// the back-off the SDK computed).
        retry_after: Duration,
        /// The HTTP status of the last response.
        status: Option<u16>,
        /// The B2C code of the last response, if any.
        code: Option<B2cCode>,
    },

    /// A token arrived but cannot be used the way it was asked for: it has no access token
    /// (only `openid`/`offline_access` were requested), or the access token has characters
    /// an HTTP header cannot carry.
    #[error("token cannot be used: {0}")]
    UnusableToken(String),

    /// An outgoing API request was not sent, to protect the token: a bearer token over plain
    /// `http://` to a remote host, or per-request scopes on a layer that cannot honour them.
    #[error("request not sent: {0}")]
    RequestNotSent(String),

    /// The request did not complete: DNS, connect, TLS, timeout, or a dropped connection.
    #[error("token request failed: {message}")]
    #[non_exhaustive]
    Transport {
        /// What failed, without URL query strings or bodies.
        message: String,
        /// Whether the failure was a timeout.
        timed_out: bool,
        /// Whether the server's TLS certificate was refused (not retried: it will be refused
        /// again until the trust configuration changes).
        certificate: bool,
        /// The underlying error.
        #[source]
        source: std::sync::Arc<dyn std::error::Error + Send + Sync>,
    },

    /// A call of the [`blocking`](crate::blocking) API that would have waited was made from
    /// inside an async runtime, where waiting stalls the runtime's other tasks (or deadlocks
    /// a single-threaded one). Nothing was sent. Use the async API there, or call from a
    /// thread outside the runtime (`std::thread::spawn`; tokio's `spawn_blocking` threads
    /// belong to the runtime and count as inside).
    #[cfg(feature = "blocking")]
    #[cfg_attr(docsrs, doc(cfg(feature = "blocking")))]
    #[error(
        "a blocking b2c-token call would wait inside an async runtime: use the async API there \
         (b2c_token::TokenCache), or call it from a thread outside the runtime (std::thread::spawn)"
    )]
    BlockingInsideAsyncRuntime,

    /// A [`Validator`](crate::Validator) refused a bearer token presented to the API. The
    /// reason says what is wrong and what the client should do; the token is never quoted.
    #[cfg(feature = "validate")]
    #[cfg_attr(docsrs, doc(cfg(feature = "validate")))]
    #[error("bearer token refused: {0}")]
    InvalidToken(InvalidToken),
}

impl Error {
    pub(crate) fn config(message: impl Into<String>) -> Self {
        Self::Config(message.into())
    }

    pub(crate) fn transport(
        message: impl Into<String>,
        timed_out: bool,
        source: std::sync::Arc<dyn std::error::Error + Send + Sync>,
    ) -> Self {
        Self::Transport {
            message: message.into(),
            timed_out,
            certificate: false,
            source,
        }
    }

    pub(crate) fn certificate(
        message: impl Into<String>,
        source: std::sync::Arc<dyn std::error::Error + Send + Sync>,
    ) -> Self {
        Self::Transport {
            message: message.into(),
            timed_out: false,
            certificate: true,
            source,
        }
    }

    /// A stable snake_case name of the variant, for spans and metrics (`error.type`).
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Self::Config(_) => "config",
            Self::Throttled { .. } => "throttled",
            Self::Rejected(_) => "rejected",
            Self::UnexpectedResponse(_) => "unexpected_response",
            Self::Transport { .. } => "transport",
            Self::UnusableToken(_) => "unusable_token",
            Self::RequestNotSent(_) => "request_not_sent",
            #[cfg(feature = "validate")]
            Self::InvalidToken(_) => "invalid_token",
            #[cfg(feature = "blocking")]
            Self::BlockingInsideAsyncRuntime => "blocking_inside_async_runtime",
        }
    }

    /// Whether the token endpoint's TLS certificate was refused (untrusted issuer, wrong
    /// host name, expired). The message says how to trust a private CA.
    #[must_use]
    pub fn is_certificate_error(&self) -> bool {
        matches!(self, Self::Transport { certificate: true, .. })
    }

    pub(crate) fn throttled(retry_after: Duration, status: Option<u16>, code: Option<B2cCode>) -> Self {
        Self::Throttled {
            retry_after,
            status,
            code,
        }
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

    /// Whether repeating the same request later may succeed: transport failures, HTTP 408,
    /// 429 and 5xx, and B2C's throttling and "temporarily unavailable" codes. Never true for
    /// a rejected password or secret. Derived from [`Error::retry_advice`].
    #[must_use]
    pub fn is_retryable(&self) -> bool {
        self.retry_advice() != RetryAdvice::Never
    }

    /// Whether and how repeating the request may help. The client's retry loop follows
    /// exactly this: throttling waits for `Retry-After` (or a long back-off), transient
    /// failures back off briefly, [`RetryAdvice::Once`] is repeated at most once.
    #[must_use]
    pub fn retry_advice(&self) -> RetryAdvice {
        match self {
            Self::Transport { certificate: true, .. } => RetryAdvice::Never,
            Self::Transport { .. } => RetryAdvice::Transient,
            Self::Throttled { .. } => RetryAdvice::Throttled,
            Self::Rejected(rejection) => match rejection
                .b2c_code()
                .map(B2cCode::retry_advice)
                .or_else(|| rejection.aadsts_code().and_then(aadsts::AadstsCode::retry_advice))
            {
                // A busy code sent with 429 is throttling whatever the code says.
                Some(RetryAdvice::Transient) if rejection.status() == 429 => RetryAdvice::Throttled,
                Some(advice) => advice,
                None => status_advice(rejection.status()),
            },
            // By status whatever was wrong with the body: a 503 with an oversized page is
            // still a 503; a 200 with a broken body will not improve by asking again.
            Self::UnexpectedResponse(response) => response.status().map_or(RetryAdvice::Never, status_advice),
            Self::Config(_) | Self::UnusableToken(_) | Self::RequestNotSent(_) => RetryAdvice::Never,
            #[cfg(feature = "validate")]
            Self::InvalidToken(_) => RetryAdvice::Never,
            #[cfg(feature = "blocking")]
            Self::BlockingInsideAsyncRuntime => RetryAdvice::Never,
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

/// What an HTTP status alone says about asking again: 429 throttled, 408 and 5xx transient.
fn status_advice(status: u16) -> RetryAdvice {
    match status {
        429 => RetryAdvice::Throttled,
        408 | 500..=599 => RetryAdvice::Transient,
        _ => RetryAdvice::Never,
    }
}

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
    fn parses_entra_descriptions_with_their_code_and_fix() {
        // As Entra sends it for a wrong secret (error_codes [7000215]).
        let r = Rejection::from_oauth_error(
            401,
            "invalid_client".into(),
            "AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '22222222-2222-4222-8222-222222222222'.\r\nTrace ID: 0a1b2c3d-0000-4000-8000-000000000001\r\nCorrelation ID: 5e6f7a8b-0000-4000-8000-000000000002\r\nTimestamp: 2026-11-30 10:11:12Z",
        );
        assert_eq!(r.aadsts_code().map(aadsts::AadstsCode::number), Some(7000215));
        assert_eq!(r.b2c_code(), None);
        assert!(
            r.message().starts_with("Invalid client secret provided."),
            "{}",
            r.message()
        );
        assert!(!r.message().contains("Trace ID"));
        assert_eq!(r.correlation_id(), Some("5e6f7a8b-0000-4000-8000-000000000002"));
        assert_eq!(r.timestamp(), Some("2026-11-30 10:11:12Z"));
        let text = Error::Rejected(Box::new(r)).to_string();
        assert!(text.contains("AADSTS7000215") && text.contains("Secret ID"), "{text}");
        let mfa = Error::Rejected(Box::new(Rejection::from_oauth_error(
            400,
            "invalid_grant".into(),
            "AADSTS50076: Due to a configuration change made by your administrator, or because you moved to a new location, you must use multi-factor authentication to access '00000003-0000-0000-c000-000000000000'.",
        )));
        assert!(mfa.to_string().contains("ROPC"), "{mfa}");
        assert_eq!(mfa.retry_advice(), RetryAdvice::Never);
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
            "token request rejected with HTTP 400 `invalid_request` AADB2C90084: server says \"Public clients should not send a client_secret\" (fix: ROPC is a public-client flow: drop the client secret from this client)"
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
