//! [`BearerAuth`]: a `reqwest-middleware` layer that attaches a cached, self-refreshing
//! bearer token to every outgoing request, and refreshes once on a 401.
//!
//! Order with `reqwest-retry`: put `BearerAuth` **after** the retry middleware
//! (`.with(RetryTransientMiddleware::..).with(BearerAuth::..)`), so that every retry goes back
//! through `BearerAuth` and picks up the current token (a retry after a long back-off may
//! need a refreshed one). `BearerAuth` handles 401s itself; a retry policy should not retry them.

use std::collections::hash_map::RandomState;
use std::fmt;
use std::future::Future;
use std::hash::BuildHasher as _;
use std::pin::Pin;
use std::sync::Arc;

use http::Extensions;
use reqwest::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use reqwest::{Request, Response, StatusCode};
use reqwest_middleware::{Middleware, Next};

use super::allow_list::{TokenScopes, Verdict};
use super::bearer::{BearerConfig, Chosen, Provider};
use super::provider::TokenProvider;
use crate::cache::TokenCache;
use crate::client::Client;
use crate::error::Error;
use crate::scope::Scopes;
use crate::secret::Password;
use crate::token::Token;

/// Attaches `Authorization: Bearer …` (marked sensitive) to requests for allowed hosts.
///
/// Tokens come from a [`TokenCache`]: a hit costs no I/O. On a 401 the rejected token is
/// dropped (only if it is still the cached one: another request may already have replaced
/// it), a fresh one is fetched, and the request is sent once more if its body can be cloned
/// and the 401 did not come through a redirect.
/// A second 401 is returned to the caller.
///
/// ```no_run
/// use b2c_token::{Authority, outgoing::BearerAuth, Client, Scopes, TokenCache};
///
/// # fn demo() -> Result<(), b2c_token::Error> {
/// let client = Client::builder(Authority::b2c("contoso", "B2C_1_signin")?, "22222222-2222-2222-2222-222222222222")
///     .client_secret("…")
///     .build()?;
/// let auth = BearerAuth::client_credentials(
///     &TokenCache::new(),
///     &client,
///     &Scopes::new(["https://contoso.onmicrosoft.com/api/.default"])?,
/// )
/// .allow_host("api.contoso.com")?;
/// let http = reqwest_middleware::ClientBuilder::new(reqwest::Client::new()).with(auth).build();
/// # let _ = http; Ok(()) }
/// ```
#[derive(Clone)]
pub struct BearerAuth {
    inner: Arc<BearerConfig>,
    /// Keys the URL hash a bodiless request is remembered by for a replay: random, so that
    /// nobody can make up a redirect target that hashes like the URL it redirects from.
    url_keys: RandomState,
}

impl BearerAuth {
    /// Tokens from any [`TokenProvider`]: a cache's [`TokenSource`](crate::TokenSource), your
    /// own, a mock in your tests. Per-request [`TokenScopes`] need
    /// [`BearerAuth::client_credentials`] or [`BearerAuth::password`] instead.
    #[must_use]
    pub fn new(provider: impl TokenProvider) -> Self {
        Self::build(BearerConfig::new(Provider::of(provider), None))
    }

    /// As [`BearerAuth::new`] (the name it had before every layer took any provider).
    #[deprecated(since = "0.2.0", note = "use BearerAuth::new, which takes any TokenProvider")]
    #[must_use]
    pub fn from_provider(provider: impl TokenProvider) -> Self {
        Self::new(provider)
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
            inner: Arc::new(config),
            url_keys: RandomState::new(),
        }
    }

    fn inner_mut(&mut self) -> &mut BearerConfig {
        // Configuration happens before the middleware is shared; a clone made earlier keeps
        // its own settings.
        Arc::make_mut(&mut self.inner)
    }

    /// Sends the token to `host` (e.g. `api.contoso.com`, or `127.0.0.1:8080` for one port).
    /// Requests to any other host go out without a token (logged at debug level), so a token
    /// for API A never reaches host B.
    ///
    /// # Errors
    /// [`crate::Error::Config`] when `host` is not a host: with a scheme, path or query
    /// (`http://127.0.0.1:8080`) it would never match, and no token would ever be sent.
    pub fn allow_host(mut self, host: &str) -> crate::Result<Self> {
        self.inner_mut().allow_list_mut().allow(host)?;
        Ok(self)
    }

    /// Sends the token to every HTTPS (or loopback) host. Only for clients that talk to one
    /// API and nothing else.
    #[must_use]
    pub fn allow_any_host(mut self) -> Self {
        self.inner_mut().allow_list_mut().allow_any();
        self
    }
}

impl fmt::Debug for BearerAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BearerAuth")
            .field("allow_list", self.inner.allow_list())
            .finish_non_exhaustive()
    }
}

/// What it takes to send a request again after a 401, paid on every request for the rare
/// 401. A request without a body is kept as its parts (method, headers, version, timeout)
/// and a hash of its URL: the 401's own URL is replayed when it hashes the same, i.e. when
/// no redirect intervened (a redirected 401 is returned, not replayed). About a fifth of
/// `Request::try_clone`'s cost. The replay carries the request's extensions as they were
/// when it reached `BearerAuth` (a copy: the first attempt holds the caller's until it
/// completes).
struct Replay {
    request: Kept,
    extensions: Extensions,
}

enum Kept {
    Parts {
        method: reqwest::Method,
        url_hash: u64,
        /// Boxed, and only when there are any: most requests have none before this layer.
        headers: Option<Box<reqwest::header::HeaderMap>>,
        version: reqwest::Version,
        timeout: Option<std::time::Duration>,
    },
    /// Boxed: a request is large, and this is kept in every request's future.
    Whole(Box<Request>),
}

impl Replay {
    /// `None` when the body cannot be cloned (a stream).
    fn of(request: &Request, extensions: &Extensions, url_keys: &RandomState) -> Option<Self> {
        let kept = if request.body().is_none() {
            let headers = request.headers();
            Kept::Parts {
                method: request.method().clone(),
                url_hash: url_keys.hash_one(request.url().as_str()),
                headers: (!headers.is_empty()).then(|| Box::new(headers.clone())),
                version: request.version(),
                timeout: request.timeout().copied(),
            }
        } else {
            Kept::Whole(Box::new(request.try_clone()?))
        };
        Some(Self {
            request: kept,
            extensions: extensions.clone(),
        })
    }

    /// The request to send again and its extensions; `None` when the 401 came from
    /// elsewhere than the request went (a redirect).
    fn into_request(self, answered_from: &reqwest::Url, url_keys: &RandomState) -> Option<(Request, Extensions)> {
        let request = match self.request {
            Kept::Whole(request) => *request,
            Kept::Parts {
                method,
                url_hash,
                headers,
                version,
                timeout,
            } => {
                if url_keys.hash_one(answered_from.as_str()) != url_hash {
                    return None;
                }
                let mut request = Request::new(method, answered_from.clone());
                if let Some(headers) = headers {
                    *request.headers_mut() = *headers;
                }
                *request.version_mut() = version;
                *request.timeout_mut() = timeout;
                request
            }
        };
        Some((request, self.extensions))
    }
}

/// What a 401's `WWW-Authenticate: Bearer error="…", error_description="…"` said.
fn bearer_challenge(response: &Response) -> (Option<String>, Option<String>) {
    let Some(value) = response.headers().get(WWW_AUTHENTICATE).and_then(|v| v.to_str().ok()) else {
        return (None, None);
    };
    let param = |name: &str| {
        let start = value.find(&format!("{name}=\""))? + name.len() + 2;
        let end = value[start..].find('"')? + start;
        Some(value[start..end].to_owned())
    };
    (param("error"), param("error_description"))
}

/// What `Middleware::handle` returns (`reqwest_middleware` does not name the type).
type HandleFuture<'a> = Pin<Box<dyn Future<Output = reqwest_middleware::Result<Response>> + Send + 'a>>;

// Written out rather than with `#[async_trait]`: a request for a cached token does all its
// work before any future exists, a request to a host that is not allowed gets the next
// layer's future as it is, and the future that is boxed holds only what a 401 needs (an
// `async fn` would also keep the request twice).
impl Middleware for BearerAuth {
    fn handle<'life0, 'life1, 'life2, 'async_trait>(
        &'life0 self,
        request: Request,
        extensions: &'life1 mut Extensions,
        next: Next<'life2>,
    ) -> HandleFuture<'async_trait>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        'life2: 'async_trait,
        Self: 'async_trait,
    {
        let url = request.url();
        let verdict = match self
            .inner
            .check(url.scheme(), url.host_str(), url.port_or_known_default())
        {
            Ok(verdict) => verdict,
            Err(error) => return failed(error),
        };
        if verdict == Verdict::Skip {
            tracing::debug!(
                host = url.host_str(),
                "host not allowed for the bearer token: sending without it"
            );
            return next.run(request, extensions);
        }
        let chosen = match self.inner.provider(
            extensions.get::<TokenScopes>(),
            "BearerAuth::client_credentials or BearerAuth::password, not BearerAuth::new",
        ) {
            Ok(chosen) => chosen,
            Err(error) => return failed(error),
        };
        match chosen.cached_bearer() {
            Some(Ok((token, header))) => Box::pin(self.send(request, extensions, next, chosen, token, header)),
            Some(Err(error)) => failed(error),
            None => Box::pin(async move {
                let (token, header) = chosen.bearer().await.map_err(middleware_error)?;
                self.send(request, extensions, next, chosen, token, header).await
            }),
        }
    }
}

impl BearerAuth {
    /// Sends `request` with `header` (`token`'s), keeping what a replay needs; on a 401, see
    /// [`Self::after_unauthorized`]. The request goes to the next layer here, before the
    /// returned future exists, so that the future does not hold it.
    // Not an `async fn`: one keeps each argument twice (the argument and its binding in the
    // body), in a future boxed on every request.
    #[allow(clippy::manual_async_fn)]
    fn send<'a>(
        &'a self,
        mut request: Request,
        extensions: &'a mut Extensions,
        next: Next<'a>,
        chosen: Chosen<'a>,
        token: Token,
        header: reqwest::header::HeaderValue,
    ) -> impl Future<Output = reqwest_middleware::Result<Response>> + Send + 'a {
        let retry = Replay::of(&request, extensions, &self.url_keys);
        request.headers_mut().insert(AUTHORIZATION, header);
        let sent = next.clone().run(request, extensions);
        async move {
            let response = sent.await?;
            if response.status() != StatusCode::UNAUTHORIZED {
                return Ok(response);
            }
            // Boxed: inline, this rare path would make every request's future several
            // times larger.
            Box::pin(self.after_unauthorized(response, retry, &chosen, &token, next)).await
        }
    }

    /// The API answered 401 to `token`: refresh and replay once, if that can help.
    async fn after_unauthorized(
        &self,
        response: Response,
        retry: Option<Replay>,
        chosen: &Chosen<'_>,
        token: &Token,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<Response> {
        let (error, description) = bearer_challenge(&response);
        let Some(retry) = retry else {
            tracing::warn!(
                ?error,
                ?description,
                "API answered 401; the request body cannot be replayed, returning it"
            );
            // Still dropped: the next request fetches a fresh token instead of sending the
            // refused one again.
            chosen.get().rejected(token);
            return Ok(response);
        };
        tracing::info!(
            ?error,
            ?description,
            "API answered 401: refreshing the token and retrying once"
        );
        if !chosen.get().rejected(token) {
            // A rejection forced a refresh moments ago: this token is fresh, so the API
            // refuses it for another reason. Another refresh would only drain the token
            // endpoint; the 401 goes to the caller.
            tracing::warn!(
                ?error,
                ?description,
                "API answered 401 to a token fetched moments ago after another 401: not refreshing again"
            );
            return Ok(response);
        }
        let Some((mut retry, mut extensions)) = retry.into_request(response.url(), &self.url_keys) else {
            tracing::warn!(?error, ?description, "API answered 401 after a redirect: returning it");
            return Ok(response);
        };
        let (_, header) = chosen.bearer().await.map_err(middleware_error)?;
        retry.headers_mut().insert(AUTHORIZATION, header);
        next.run(retry, &mut extensions).await
    }
}

/// A future failing at once with `error`.
fn failed<'a>(error: Error) -> HandleFuture<'a> {
    Box::pin(std::future::ready(Err(middleware_error(error))))
}

fn middleware_error(error: Error) -> reqwest_middleware::Error {
    reqwest_middleware::Error::middleware(error)
}
