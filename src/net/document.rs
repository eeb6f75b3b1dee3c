//! JSON documents (OpenID metadata, a JWKS) fetched with the same rules as token requests.

use std::time::Duration;

use reqwest::header;
use url::Url;

use super::body::{read_capped, BodyError};
use super::transport_error_at;
use crate::error::unexpected::DocumentSource;
use crate::error::{Error, Result, UnexpectedKind, UnexpectedResponse};

/// Which document is fetched: errors name it and its host, not the token endpoint.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Document {
    Metadata,
    /// Fetched by the validator only.
    #[cfg_attr(not(feature = "validate"), allow(dead_code))]
    Keys,
}

impl Document {
    fn name(self) -> &'static str {
        match self {
            Self::Metadata => "OpenID metadata",
            Self::Keys => "JSON Web Key Set",
        }
    }

    /// `error` (from fetching or reading this document at `url`), saying so.
    pub(crate) fn error(self, url: &Url, error: Error) -> Error {
        let host = url.host_str().unwrap_or_default().to_owned();
        match error {
            Error::UnexpectedResponse(mut response) if response.document.is_none() => {
                response.document = Some(Box::new(DocumentSource {
                    name: self.name(),
                    host,
                }));
                Error::UnexpectedResponse(response)
            }
            Error::Transport {
                message,
                timed_out,
                certificate,
                source,
            } => Error::Transport {
                message: format!("fetching the {} from {host}: {message}", self.name()),
                timed_out,
                certificate,
                source,
            },
            other => other,
        }
    }
}

/// Keys and metadata documents are a few kilobytes; a JWKS with hundreds of keys is not one a
/// tenant publishes.
const MAX_DOCUMENT_BYTES: usize = 64 * 1024;

/// GETs a JSON object: no redirects followed (the caller's client is built that way, and an
/// answer from another URL is refused), a timeout, a body cap.
pub(crate) async fn get_json(
    http: &reqwest::Client,
    url: &Url,
    timeout: Duration,
    document: Document,
) -> Result<serde_json::Map<String, serde_json::Value>> {
    fetch_json(http, url, timeout)
        .await
        .map_err(|error| document.error(url, error))
}

async fn fetch_json(
    http: &reqwest::Client,
    url: &Url,
    timeout: Duration,
) -> Result<serde_json::Map<String, serde_json::Value>> {
    let response = http
        .get(url.clone())
        .header(header::ACCEPT, "application/json")
        .timeout(timeout)
        .send()
        .await
        .map_err(|e| transport_error_at(e, "the server"))?;
    let status = response.status().as_u16();
    let unexpected = |kind| Error::UnexpectedResponse(Box::new(UnexpectedResponse::new(status, None, kind)));
    if response.url() != url {
        return Err(unexpected(UnexpectedKind::Redirected));
    }
    if !(200..300).contains(&status) {
        return Err(unexpected(UnexpectedKind::ErrorStatus));
    }
    let body = match read_capped(response, MAX_DOCUMENT_BYTES).await {
        Ok(body) => body,
        Err(BodyError::TooLarge) => {
            return Err(unexpected(UnexpectedKind::BodyTooLarge {
                limit: MAX_DOCUMENT_BYTES,
            }))
        }
        Err(BodyError::Transport(e)) => return Err(transport_error_at(e, "the server")),
    };
    match serde_json::from_slice(&body) {
        Ok(serde_json::Value::Object(map)) => Ok(map),
        Ok(_) => Err(unexpected(UnexpectedKind::NotJson)),
        Err(e) => Err(unexpected(UnexpectedKind::MalformedJson {
            position: format!("line {} column {}", e.line(), e.column()),
        })),
    }
}

/// A fetched document that lacks `field` or has it in the wrong shape.
pub(crate) fn invalid_document_field(field: &'static str, expected: &'static str) -> Error {
    Error::UnexpectedResponse(Box::new(UnexpectedResponse::new(
        200,
        None,
        UnexpectedKind::InvalidField { field, expected },
    )))
}

/// A fetched document's non-empty string `field`.
pub(crate) fn document_string(
    document: &serde_json::Map<String, serde_json::Value>,
    field: &'static str,
) -> Result<String> {
    match document.get(field) {
        Some(serde_json::Value::String(value)) if !value.is_empty() => Ok(value.clone()),
        _ => Err(invalid_document_field(field, "a string")),
    }
}
