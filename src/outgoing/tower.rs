//! [`BearerLayer`] (feature `tower`): bearer tokens for any tower or hyper client.
//!
//! The same rules as `BearerAuth`: the token goes only to allow-listed hosts, over https (or
//! loopback), in a sensitive header; [`TokenScopes`] in a request's extensions asks for other
//! scopes; a 401 drops the token (unless a rejection already forced a refresh moments ago) and
//! the request is sent once more with a new token if its body is held in memory (`()`,
//! `String`, `Vec<u8>`, `Bytes`, `Full<Bytes>`, `Empty<Bytes>`; any body type is accepted,
//! a streaming one is sent once).

use std::error::Error as StdError;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::header::AUTHORIZATION;
use http::{Request, Response, StatusCode};

use super::allow_list::{TokenScopes, Verdict};
use super::bearer::{BearerConfig, Provider};
use super::provider::TokenProvider;
use crate::cache::TokenCache;
use crate::client::Client;
use crate::scope::Scopes;
use crate::secret::Password;

/// The error type of a [`Bearer`] service: the inner service's error, or the SDK's
/// [`Error`](crate::Error) when no token could be had or the request was refused (boxed).
pub type BoxError = Box<dyn StdError + Send + Sync>;

/// A copy of `body` for the replay after a 401, when it is one of the in-memory bodies that
/// can be sent twice: `()`, `String`, `Vec<u8>`, `Bytes`, and `http_body_util`'s `Full` and
/// `Empty` of `Bytes`. Any other body (axum's and hyper's streaming bodies, boxed bodies) is
/// sent once: the 401 goes to the caller, with the token already refreshed for the next
/// request. Found by type at run time, so the layer accepts every body type (a trait the
/// body had to implement shut out axum's and hyper's, which a user cannot implement it for).
fn replayable_copy<B: 'static>(body: &B) -> Option<B> {
    use std::any::Any;
    fn copy<T: Clone + 'static, B: 'static>(body: &dyn Any) -> Option<B> {
        let copy: Box<dyn Any> = Box::new(body.downcast_ref::<T>()?.clone());
        copy.downcast::<B>().ok().map(|copy| *copy)
    }
    let body: &dyn Any = body;
    copy::<(), B>(body)
        .or_else(|| copy::<String, B>(body))
        .or_else(|| copy::<Vec<u8>, B>(body))
        .or_else(|| copy::<bytes::Bytes, B>(body))
        .or_else(|| copy::<http_body_util::Full<bytes::Bytes>, B>(body))
        .or_else(|| copy::<http_body_util::Empty<bytes::Bytes>, B>(body))
}

/// A `tower::Layer` that adds `Authorization: Bearer …` to requests for allowed hosts.
///
/// ```no_run
/// # fn demo(cache: b2c_token::TokenCache, client: b2c_token::Client) -> Result<(), b2c_token::Error> {
/// use b2c_token::{outgoing::BearerLayer, Scopes};
/// use http_body_util::Full;
/// use hyper_util::client::legacy::Client as HyperClient;
/// use hyper_util::rt::TokioExecutor;
///
/// let scopes = Scopes::new(["https://contoso.onmicrosoft.com/api/.default"])?;
/// let layer = BearerLayer::client_credentials(&cache, &client, &scopes).allow_host("api.contoso.com")?;
/// let hyper = HyperClient::builder(TokioExecutor::new()).build_http::<Full<bytes::Bytes>>();
/// let service = tower_layer::Layer::layer(&layer, hyper);
/// # let _ = service; Ok(()) }
/// ```
#[derive(Clone)]
pub struct BearerLayer {
    config: Arc<BearerConfig>,
}

impl BearerLayer {
    /// Tokens from any [`TokenProvider`] (a `TokenSource`, your own, a mock).
    #[must_use]
    pub fn new(provider: impl TokenProvider) -> Self {
        Self::build(BearerConfig::new(Provider::of(provider), None))
    }

    /// Client-credentials tokens for `scopes`, or for a request's [`TokenScopes`].
    #[must_use]
    pub fn client_credentials(cache: &TokenCache, client: &Client, scopes: &Scopes) -> Self {
        Self::build(BearerConfig::client_credentials(cache, client, scopes))
    }

    /// A user's ROPC tokens for `scopes`, or for a request's [`TokenScopes`].
    #[must_use]
    pub fn password(cache: &TokenCache, client: &Client, username: &str, password: &Password, scopes: &Scopes) -> Self {
        Self::build(BearerConfig::password(cache, client, username, password, scopes))
    }

    fn build(config: BearerConfig) -> Self {
        Self {
            config: Arc::new(config),
        }
    }

    /// Sends the token to `host` (e.g. `api.contoso.com`, or `127.0.0.1:8080` for one port);
    /// requests to other hosts go out without it (logged at debug level).
    ///
    /// # Errors
    /// [`crate::Error::Config`] when `host` is not a host: with a scheme, path or query
    /// (`http://127.0.0.1:8080`) it would never match, and no token would ever be sent.
    pub fn allow_host(mut self, host: &str) -> crate::Result<Self> {
        Arc::make_mut(&mut self.config).allow_list_mut().allow(host)?;
        Ok(self)
    }

    /// Sends the token to every HTTPS (or loopback) host. Only for clients of one API.
    #[must_use]
    pub fn allow_any_host(mut self) -> Self {
        Arc::make_mut(&mut self.config).allow_list_mut().allow_any();
        self
    }
}

impl<S> tower_layer::Layer<S> for BearerLayer {
    type Service = Bearer<S>;

    fn layer(&self, inner: S) -> Bearer<S> {
        Bearer {
            inner,
            config: Arc::clone(&self.config),
        }
    }
}

impl fmt::Debug for BearerLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BearerLayer")
            .field("allow_list", self.config.allow_list())
            .finish_non_exhaustive()
    }
}

/// The service [`BearerLayer`] wraps around a client.
#[derive(Clone)]
pub struct Bearer<S> {
    inner: S,
    config: Arc<BearerConfig>,
}

impl<S> fmt::Debug for Bearer<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bearer")
            .field("allow_list", self.config.allow_list())
            .finish_non_exhaustive()
    }
}

impl<S, B, RB> tower_service::Service<Request<B>> for Bearer<S>
where
    S: tower_service::Service<Request<B>, Response = Response<RB>> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Into<BoxError>,
    B: Send + 'static,
    RB: Send + 'static,
{
    type Response = Response<RB>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Response<RB>, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        // The ready service answers this request; a clone serves the replay (tower's usual
        // pattern: `poll_ready` was called on `self.inner`).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let config = Arc::clone(&self.config);
        Box::pin(async move {
            let uri = request.uri();
            let verdict = config.check(
                uri.scheme_str().unwrap_or("http"),
                uri.host(),
                uri.port_u16().or(match uri.scheme_str() {
                    Some("https") => Some(443),
                    _ => Some(80),
                }),
            )?;
            if verdict == Verdict::Skip {
                tracing::debug!(
                    host = request.uri().host(),
                    "host not allowed for the bearer token: sending without it"
                );
                return inner.call(request).await.map_err(Into::into);
            }
            let chosen = config.provider(
                request.extensions().get::<TokenScopes>(),
                "BearerLayer::client_credentials or BearerLayer::password, not BearerLayer::new",
            )?;
            let (token, header) = chosen.bearer().await?;
            // The replay is the same request: its whole head (method, URI, version, headers,
            // extensions) with a copy of the body, when the body can be copied.
            let (head, body) = request.into_parts();
            let replay = replayable_copy(&body).map(|copy| Request::from_parts(head.clone(), copy));
            let mut request = Request::from_parts(head, body);
            request.headers_mut().insert(AUTHORIZATION, header);
            let response = inner.call(request).await.map_err(Into::into)?;
            if response.status() != StatusCode::UNAUTHORIZED {
                return Ok(response);
            }
            let Some(mut replay) = replay else {
                tracing::warn!("API answered 401; the request body cannot be replayed, returning it");
                chosen.get().rejected(&token);
                return Ok(response);
            };
            if !chosen.get().rejected(&token) {
                tracing::warn!(
                    "API answered 401 to a token fetched moments ago after another 401: not refreshing again"
                );
                return Ok(response);
            }
            tracing::info!("API answered 401: refreshing the token and retrying once");
            let (_, header) = chosen.bearer().await?;
            replay.headers_mut().insert(AUTHORIZATION, header);
            std::future::poll_fn(|cx| inner.poll_ready(cx))
                .await
                .map_err(Into::into)?;
            inner.call(replay).await.map_err(Into::into)
        })
    }
}
