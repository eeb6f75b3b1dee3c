//! The one POST path: headers, timeout, body cap, and turning a response into a token or a
//! typed error (status first, then content type, then "does the JSON hold a token").

use std::time::Duration;

use reqwest::header::{self, HeaderMap, HeaderValue};
use url::Url;

use super::credential::{AssertionRequest, ClientAssertion, JWT_BEARER};
use crate::error::server_text::Scrubber;
use crate::error::{Error, Rejection, Result, UnexpectedKind, UnexpectedResponse};
use crate::scope::Scopes;
use crate::token::{parse_error_body, parse_token_response, SentAt, Token};

/// The `User-Agent` sent with every token request.
pub(crate) const USER_AGENT: &str = concat!(env!("CARGO_PKG_NAME"), "/", env!("CARGO_PKG_VERSION"));

/// Token responses are a few kilobytes; anything past this is not a token response, and
/// reading it all would let a broken or hostile server exhaust memory.
pub(crate) const MAX_BODY_BYTES: usize = 256 * 1024;

/// Default total timeout of one token request.
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Default connect timeout.
pub(crate) const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The HTTP side of a [`crate::Client`].
#[derive(Debug, Clone)]
pub(crate) struct Transport {
    pub(crate) http: reqwest::Client,
    pub(crate) timeout: Duration,
}

/// One form POST, ready to send.
pub(crate) struct FormRequest<'a> {
    pub(crate) url: &'a Url,
    pub(crate) body: String,
    pub(crate) basic_auth: Option<HeaderValue>,
    pub(crate) requested_scopes: Scopes,
    /// Secret values sent in this request: scrubbed from any text the server echoes back.
    pub(crate) secrets: Vec<&'a str>,
    /// A client assertion source: a fresh assertion is appended to the form on every attempt.
    pub(crate) assertion: Option<&'a dyn ClientAssertion>,
    pub(crate) client_id: &'a str,
}

impl Transport {
    /// The SDK's own HTTP client: rustls, no redirects (a redirect would re-send the form,
    /// secrets included, to wherever the server points), bounded timeouts, the extra trusted
    /// roots on top of the system's. For a plain `http://` token endpoint (loopback only) no
    /// proxy is ever used: a proxy from `HTTP_PROXY` would receive the form, password
    /// included, in clear text. `https://` goes through a configured proxy as usual.
    pub(crate) fn default_http_client(
        timeout: Duration,
        connect_timeout: Duration,
        token_endpoint: &Url,
        extra_roots: Vec<reqwest::Certificate>,
        only_extra_roots: bool,
    ) -> Result<reqwest::Client> {
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(timeout)
            .connect_timeout(connect_timeout)
            .user_agent(USER_AGENT);
        if token_endpoint.scheme() == "http" {
            builder = builder.no_proxy();
        }
        if only_extra_roots {
            // No system roots to load: the first handshake is ~30 ms faster, and only the
            // given CAs are trusted.
            builder = builder.tls_certs_only(extra_roots);
        } else if !extra_roots.is_empty() {
            builder = builder.tls_certs_merge(extra_roots);
        }
        builder
            .build()
            .map_err(|e| Error::config(format!("could not build the HTTP client: {e}")))
    }

    /// One attempt. The request is borrowed so that retries resend the same form.
    pub(crate) async fn send(&self, request: &FormRequest<'_>, client_request_id: &str) -> Result<Token> {
        let mut headers = HeaderMap::with_capacity(6);
        headers.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded"),
        );
        headers.insert(header::USER_AGENT, HeaderValue::from_static(USER_AGENT));
        if let Ok(id) = HeaderValue::from_str(client_request_id) {
            headers.insert("client-request-id", id);
            headers.insert("return-client-request-id", HeaderValue::from_static("true"));
        }
        if let Some(mut basic) = request.basic_auth.clone() {
            basic.set_sensitive(true);
            headers.insert(header::AUTHORIZATION, basic);
        }

        // Minted per attempt: a retry never resends an assertion (nor its `jti`).
        let assertion = match request.assertion {
            Some(source) => Some(
                source
                    .assertion(AssertionRequest {
                        client_id: request.client_id,
                        token_endpoint: request.url,
                    })
                    .await?,
            ),
            None => None,
        };
        let body = match &assertion {
            Some(assertion) => {
                use secrecy::ExposeSecret as _;
                let mut body = request.body.clone();
                url::form_urlencoded::Serializer::for_suffix(&mut body, 0)
                    .append_pair("client_assertion_type", JWT_BEARER)
                    .append_pair("client_assertion", assertion.expose_secret());
                body
            }
            None => request.body.clone(),
        };

        let sent = SentAt::now();
        let response = self
            .http
            .post(request.url.clone())
            .headers(headers)
            .timeout(self.timeout)
            .body(body)
            .send()
            .await
            .map_err(transport_error)?;

        // Built only when server text is kept (an error): a token response needs none of it.
        let scrubber = std::sync::OnceLock::new();
        let scrubber = || {
            scrubber.get_or_init(|| {
                use secrecy::ExposeSecret as _;
                Scrubber::new(
                    request
                        .secrets
                        .iter()
                        .copied()
                        .chain(assertion.as_ref().map(|a| a.expose_secret())),
                    request
                        .basic_auth
                        .as_ref()
                        .and_then(|value| value.to_str().ok())
                        .and_then(|value| value.strip_prefix("Basic ")),
                )
            })
        };
        if response.url() != request.url {
            // A caller-supplied client followed a redirect: whatever answered is not the
            // token endpoint, and its "token" must not be used.
            return Err(Error::UnexpectedResponse(Box::new(UnexpectedResponse {
                client_request_id: Some(client_request_id.to_owned()),
                ..UnexpectedResponse::new(response.status().as_u16(), None, UnexpectedKind::Redirected)
            })));
        }
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
        let retry_after = response
            .headers()
            .get(header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|value| crate::client::retry::parse_retry_after(value, std::time::SystemTime::now()));
        let unexpected = |kind: UnexpectedKind| {
            let content_type = content_type.as_deref().map(|ct| scrubber().clean(ct));
            let mut response = UnexpectedResponse::new(status, content_type, kind);
            response.client_request_id = Some(client_request_id.to_owned());
            response.retry_after = retry_after;
            Error::UnexpectedResponse(Box::new(response))
        };

        let body = match read_capped(response, MAX_BODY_BYTES).await {
            Ok(body) => body,
            Err(BodyError::TooLarge) => return Err(unexpected(UnexpectedKind::BodyTooLarge { limit: MAX_BODY_BYTES })),
            Err(BodyError::Transport(e)) => return Err(transport_error(e)),
        };

        // An OAuth error body is a rejection whatever the status (some servers send 200).
        if let Some((error, description)) = parse_error_body(&body) {
            let description = scrubber().clean(&description);
            let error = scrubber().clean(&error);
            let mut rejection = Rejection::from_oauth_error(status, error, &description);
            rejection.client_request_id = Some(client_request_id.to_owned());
            rejection.retry_after = retry_after;
            return Err(Error::Rejected(Box::new(rejection)));
        }
        if !(200..300).contains(&status) {
            return Err(unexpected(UnexpectedKind::ErrorStatus));
        }
        let looks_like_json = match content_type.as_deref() {
            Some(ct) => ct.to_ascii_lowercase().contains("json"),
            // No content type: judge by the first byte rather than refuse a plausible token.
            None => body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{'),
        };
        if !looks_like_json {
            return Err(unexpected(UnexpectedKind::NotJson));
        }
        parse_token_response(&body, request.requested_scopes.clone(), sent).map_err(unexpected)
    }
}

/// Keys and metadata documents are a few kilobytes; a JWKS with hundreds of keys is not
/// one a tenant publishes.
const MAX_DOCUMENT_BYTES: usize = 64 * 1024;

/// GETs a JSON document (OpenID metadata, a JWKS) with the same rules as token requests:
/// no redirects followed (the caller's client is built that way), a timeout, a body cap.
pub(crate) async fn get_json(
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
        .map_err(transport_error)?;
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
        Err(BodyError::Transport(e)) => return Err(transport_error(e)),
    };
    match serde_json::from_slice(&body) {
        Ok(serde_json::Value::Object(map)) => Ok(map),
        Ok(_) => Err(unexpected(UnexpectedKind::NotJson)),
        Err(e) => Err(unexpected(UnexpectedKind::MalformedJson {
            position: format!("line {} column {}", e.line(), e.column()),
        })),
    }
}

/// A fetched document (metadata, JWKS) that lacks `field` or has it in the wrong shape.
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

enum BodyError {
    TooLarge,
    Transport(reqwest::Error),
}

async fn read_capped(mut response: reqwest::Response, limit: usize) -> Result<Vec<u8>, BodyError> {
    if response.content_length().is_some_and(|len| len > limit as u64) {
        return Err(BodyError::TooLarge);
    }
    let mut body = Vec::with_capacity(response.content_length().map_or(4096, |len| len as usize));
    while let Some(chunk) = response.chunk().await.map_err(BodyError::Transport)? {
        if body.len() + chunk.len() > limit {
            return Err(BodyError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

pub(crate) fn transport_error(e: reqwest::Error) -> Error {
    let timed_out = e.is_timeout();
    if let Some(problem) = certificate_problem(&e) {
        return Error::certificate(
            format!(
                "the token endpoint's TLS certificate was refused ({problem}): if the server uses a private CA, trust it with ClientBuilder::add_root_certificate (the CLI: --ca-file or B2C_CA_FILE); otherwise check the host name and the server's certificate chain"
            ),
            std::sync::Arc::new(e.without_url()),
        );
    }
    let message = if timed_out {
        "timed out"
    } else if e.is_connect() {
        "could not connect to the token endpoint"
    } else if e.is_body() || e.is_decode() {
        "connection failed while reading the response"
    } else if e.is_request() {
        "could not send the request (connection dropped?)"
    } else {
        "HTTP error"
    };
    Error::transport(message, timed_out, std::sync::Arc::new(e.without_url()))
}

/// The certificate problem in a transport error's cause chain, if that is what failed:
/// rustls reports it deep in the chain (`invalid peer certificate: UnknownIssuer`).
fn certificate_problem(error: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut cause = Some(error);
    while let Some(error) = cause {
        let text = error.to_string();
        if let Some(at) = text.find("invalid peer certificate") {
            let problem = text[at..].chars().take(200).collect::<String>();
            return Some(crate::error::server_text::Scrubber::default().clean(&problem));
        }
        cause = error.source();
    }
    None
}
