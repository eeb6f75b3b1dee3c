//! The form POST: `application/x-www-form-urlencoded` out, JSON accepted back.

use std::time::{Duration, SystemTime};

use reqwest::header::{self, HeaderMap, HeaderValue};
use url::Url;

use super::body::{read_capped, BodyError};
use super::{parse_retry_after, transport_error, USER_AGENT};
use crate::error::Result;

/// A response whose head has been read; the body is read on demand, with a cap.
pub(crate) struct Reply {
    pub(crate) status: u16,
    /// The `Content-Type` header, as text (lossy).
    pub(crate) content_type: Option<String>,
    /// `Retry-After`, as a wait from now.
    pub(crate) retry_after: Option<Duration>,
    /// The answer came from another URL than the one posted to: a caller-supplied client
    /// followed a redirect, so whatever answered is not the endpoint.
    pub(crate) redirected: bool,
    response: reqwest::Response,
}

impl Reply {
    /// The body, refused past `limit` bytes.
    pub(crate) async fn body(self, limit: usize) -> Result<Vec<u8>, BodyError> {
        read_capped(self.response, limit).await
    }
}

/// POSTs `body` as a form to `url` with `extra` headers on top of the form's own (`Accept`,
/// `Content-Type`, `User-Agent`). Transport failures become [`crate::Error::Transport`].
pub(crate) async fn post_form(
    http: &reqwest::Client,
    url: &Url,
    extra: HeaderMap,
    body: String,
    timeout: Duration,
) -> Result<Reply> {
    let mut headers = HeaderMap::with_capacity(3 + extra.len());
    headers.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-www-form-urlencoded"),
    );
    headers.insert(header::USER_AGENT, HeaderValue::from_static(USER_AGENT));
    headers.extend(extra);
    let response = http
        .post(url.clone())
        .headers(headers)
        .timeout(timeout)
        .body(body)
        .send()
        .await
        .map_err(transport_error)?;
    let head = response.headers();
    let content_type = head
        .get(header::CONTENT_TYPE)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let retry_after = head
        .get(header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|value| parse_retry_after(value, SystemTime::now()));
    Ok(Reply {
        status: response.status().as_u16(),
        content_type,
        retry_after,
        redirected: response.url() != url,
        response,
    })
}
