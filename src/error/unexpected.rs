//! [`UnexpectedResponse`]: a response that was neither a token nor an OAuth error. Keeps the
//! status, content type and what was wrong, never the body.

use std::fmt;
use std::time::Duration;

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
    /// A JSON object with the same key twice (`access_token` twice, `expires_in` 3600 then
    /// 0): ambiguous, so refused.
    DuplicateField,
    /// The response came from another URL than the token endpoint: the HTTP client followed
    /// a redirect.
    Redirected,
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
    /// Which document answered, when it was not the token endpoint (metadata, keys).
    pub(crate) document: Option<Box<DocumentSource>>,
}

/// A document the crate fetched (OpenID metadata, a JSON Web Key Set) and where from, so that
/// an error names it rather than the token endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DocumentSource {
    pub(crate) name: &'static str,
    pub(crate) host: String,
}

impl UnexpectedResponse {
    pub(crate) fn new(status: u16, content_type: Option<String>, kind: UnexpectedKind) -> Self {
        Self {
            status: Some(status),
            content_type,
            kind,
            client_request_id: None,
            retry_after: None,
            document: None,
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
        if self.document.is_some() {
            return match self.kind {
                UnexpectedKind::ErrorStatus if self.status.is_some_and(|s| s >= 500) => {
                    "the identity provider failed: the validator keeps its last good keys and tries again"
                }
                _ => "check the authority: its metadata URL must serve OpenID metadata (issuer, jwks_uri), and jwks_uri a JSON Web Key Set",
            };
        }
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
            (UnexpectedKind::Redirected, _) => {
                "pass a reqwest::ClientBuilder to ClientBuilder::http_client_builder (or build your client with redirect::Policy::none()): the redirect re-sent the form, secrets included, so rotate them"
            }
            (UnexpectedKind::ErrorStatus, Some(401 | 403)) => {
                "the server refused the client or the user without saying why: check the client ID, the client secret or certificate, the credentials, and that this client may use this grant"
            }
            (UnexpectedKind::ErrorStatus, Some(400)) => {
                "the server refused the request without saying why: check the grant's parameters (scope, client ID) and that the server supports this grant"
            }
            _ => "check that the token URL points at an OAuth2 token endpoint",
        }
    }
}

impl fmt::Display for UnexpectedResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.document {
            Some(document) => write!(f, "unexpected response from the {} at {}", document.name, document.host)?,
            None => f.write_str("unexpected response from the token endpoint")?,
        }
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
            UnexpectedKind::DuplicateField => f.write_str(": a JSON field appears twice")?,
            UnexpectedKind::Redirected => f.write_str(": it came from a redirect, not from the token endpoint")?,
            UnexpectedKind::BodyTooLarge { limit } => write!(f, ": body larger than {limit} bytes")?,
        }
        write!(f, " (fix: {})", self.hint())
    }
}

impl std::error::Error for UnexpectedResponse {}
