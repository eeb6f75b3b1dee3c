//! [`Rejection`]: an OAuth error from the token endpoint, with B2C's code, correlation ID and
//! timestamp parsed out of `error_description`, and a hint saying what to do.

use std::fmt;
use std::time::Duration;

use super::aadsts::AadstsCode;
use super::b2c_code::B2cCode;

/// An OAuth error response from the token endpoint, with B2C's details parsed out.
///
/// B2C writes `error_description` as
/// `AADB2Cnnnnn: <message>\r\nCorrelation ID: <guid>\r\nTimestamp: <time>\r\n`, Entra as
/// `AADSTSnnnnn: <message>\r\nTrace ID: <guid>\r\nCorrelation ID: <guid>\r\nTimestamp: <time>`;
/// each piece is available on its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub(crate) status: u16,
    pub(crate) error: String,
    pub(crate) code: Option<B2cCode>,
    pub(crate) aadsts: Option<AadstsCode>,
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
        let aadsts = AadstsCode::parse(description);
        let mut message = String::new();
        let mut correlation_id = None;
        let mut timestamp = None;
        // Libraries sometimes render B2C's "\r\n" separators as spaces; split on both the
        // line breaks and the field labels so either shape parses.
        let mut text = description.trim();
        let prefix = code
            .map(|c| format!("{c}:"))
            .or_else(|| aadsts.map(|c| format!("{c}:")));
        if let Some(prefix) = prefix {
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
        if let Some((before, _trace_id)) = split_label(text, "Trace ID:") {
            text = before;
        }
        message.push_str(text.trim());
        Self {
            status,
            error,
            code,
            aadsts,
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

    /// The parsed `AADSTSnnnnn` code (Entra ID, Entra External ID), if the description
    /// started with one.
    #[must_use]
    pub fn aadsts_code(&self) -> Option<AadstsCode> {
        self.aadsts
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
        if let Some(hint) = self.aadsts.and_then(AadstsCode::hint) {
            return hint;
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
        } else if let Some(code) = self.aadsts {
            write!(f, " {code}")?;
        }
        if !self.message.is_empty() {
            // Quoted and labelled: the server's words, not ours (already free of control
            // characters and secrets, see server_text.rs).
            write!(f, ": server says \"{}\"", self.message.trim_end_matches('.'))?;
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

impl std::error::Error for Rejection {}
