//! A token request's one POST path: the client's headers, a fresh client assertion per attempt,
//! and the response turned into a token or a typed error (status first, then content type,
//! then "does the JSON hold a token"). The HTTP itself is [`crate::net`]'s.

use std::sync::OnceLock;
use std::time::Duration;

use reqwest::header::{self, HeaderMap, HeaderValue};
use secrecy::{ExposeSecret as _, SecretString};
use url::Url;

use crate::credential::{AssertionRequest, ClientAssertion, JWT_BEARER};
use crate::error::server_text::Scrubber;
use crate::error::{Error, Rejection, Result, UnexpectedKind, UnexpectedResponse};
use crate::net::{post_form, transport_error, BodyError, Reply};
use crate::scope::Scopes;
use crate::token::{parse_error_body, parse_token_response, SentAt, Token};

/// Token responses are a few kilobytes; anything past this is not a token response, and
/// reading it all would let a broken or hostile server exhaust memory.
pub(crate) const MAX_BODY_BYTES: usize = 256 * 1024;

/// The HTTP side of a [`crate::Client`].
#[derive(Debug, Clone)]
pub(crate) struct Transport {
    pub(crate) http: reqwest::Client,
    pub(crate) timeout: Duration,
    #[cfg(feature = "metrics")]
    pub(crate) metrics: super::metrics::ClientMetrics,
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

impl FormRequest<'_> {
    /// The headers a token request adds to the form's own: the correlation ID, and HTTP Basic
    /// client authentication (marked sensitive, so that no log prints it).
    fn headers(&self, client_request_id: &str) -> HeaderMap {
        let mut headers = HeaderMap::with_capacity(3);
        if let Ok(id) = HeaderValue::from_str(client_request_id) {
            headers.insert("client-request-id", id);
            headers.insert("return-client-request-id", HeaderValue::from_static("true"));
        }
        if let Some(mut basic) = self.basic_auth.clone() {
            basic.set_sensitive(true);
            headers.insert(header::AUTHORIZATION, basic);
        }
        headers
    }

    /// A client assertion minted for this attempt: a retry never resends one (nor its `jti`).
    async fn mint_assertion(&self) -> Result<Option<SecretString>> {
        match self.assertion {
            Some(source) => Ok(Some(
                source
                    .assertion(AssertionRequest {
                        client_id: self.client_id,
                        token_endpoint: self.url,
                    })
                    .await?,
            )),
            None => Ok(None),
        }
    }

    /// The form, with this attempt's assertion appended.
    fn body(&self, assertion: Option<&SecretString>) -> String {
        let mut body = self.body.clone();
        if let Some(assertion) = assertion {
            url::form_urlencoded::Serializer::for_suffix(&mut body, 0)
                .append_pair("client_assertion_type", JWT_BEARER)
                .append_pair("client_assertion", assertion.expose_secret());
        }
        body
    }

    /// Removes every secret this attempt sent from text the server sends back.
    fn scrubber(&self, assertion: Option<&SecretString>) -> Scrubber {
        Scrubber::new(
            self.secrets.iter().copied().chain(assertion.map(|a| a.expose_secret())),
            self.basic_auth
                .as_ref()
                .and_then(|value| value.to_str().ok())
                .and_then(|value| value.strip_prefix("Basic ")),
        )
    }
}

impl Transport {
    /// One attempt. The request is borrowed so that retries resend the same form.
    pub(crate) async fn send(&self, request: &FormRequest<'_>, client_request_id: &str) -> Result<Token> {
        let assertion = request.mint_assertion().await?;
        let sent = SentAt::now();
        let reply = post_form(
            &self.http,
            request.url,
            request.headers(client_request_id),
            request.body(assertion.as_ref()),
            self.timeout,
        )
        .await?;
        read_token(reply, request, assertion.as_ref(), client_request_id, sent).await
    }
}

/// A token response, or the typed error that says what the server answered instead.
async fn read_token(
    reply: Reply,
    request: &FormRequest<'_>,
    assertion: Option<&SecretString>,
    client_request_id: &str,
    sent: SentAt,
) -> Result<Token> {
    // Built only when server text is kept (an error): a token response needs none of it.
    let scrubber = OnceLock::new();
    let scrubber = || scrubber.get_or_init(|| request.scrubber(assertion));
    let (status, retry_after) = (reply.status, reply.retry_after);
    let content_type = reply.content_type.clone();
    let unexpected = |kind: UnexpectedKind| {
        let content_type = content_type.as_deref().map(|ct| scrubber().clean(ct));
        let mut response = UnexpectedResponse::new(status, content_type, kind);
        response.client_request_id = Some(client_request_id.to_owned());
        response.retry_after = retry_after;
        Error::UnexpectedResponse(Box::new(response))
    };
    if reply.redirected {
        // A caller-supplied client followed a redirect: whatever answered is not the token
        // endpoint, and its "token" must not be used.
        return Err(Error::UnexpectedResponse(Box::new(UnexpectedResponse {
            client_request_id: Some(client_request_id.to_owned()),
            ..UnexpectedResponse::new(status, None, UnexpectedKind::Redirected)
        })));
    }

    let body = match reply.body(MAX_BODY_BYTES).await {
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
