//! [`BearerAuth`]: a `reqwest-middleware` layer that attaches a cached, self-refreshing
//! bearer token to every outgoing request, and refreshes once on a 401.
//!
//! Order with `reqwest-retry`: put `BearerAuth` **after** the retry middleware
//! (`.with(RetryTransientMiddleware::..).with(BearerAuth::..)`), so that every retry goes back
//! through `BearerAuth` and picks up the current token (a retry after a long back-off may
//! need a refreshed one). `BearerAuth` handles 401s itself; a retry policy should not retry them.

use std::fmt;
use std::sync::Arc;

use http::Extensions;
use reqwest::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use reqwest::{Request, Response, StatusCode};
use reqwest_middleware::{Middleware, Next};

use super::allow_list::{TokenScopes, Verdict};
use super::bearer::BearerConfig;
use super::provider::TokenProvider;
use crate::cache::{TokenCache, TokenSource};
use crate::client::Client;
use crate::error::Error;
use crate::scope::Scopes;
use crate::secret::Password;

/// Attaches `Authorization: Bearer …` (marked sensitive) to requests for allowed hosts.
///
/// Tokens come from a [`TokenCache`]: a hit costs no I/O. On a 401 the rejected token is
/// dropped (only if it is still the cached one: another request may already have replaced
/// it), a fresh one is fetched, and the request is sent once more if its body can be cloned
/// and the 401 did not come through a redirect.
/// A second 401 is returned to the caller.
///
/// ```no_run
/// use b2c_token::{Authority, BearerAuth, Client, Scopes, TokenCache};
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
/// .allow_host("api.contoso.com");
/// let http = reqwest_middleware::ClientBuilder::new(reqwest::Client::new()).with(auth).build();
/// # let _ = http; Ok(()) }
/// ```
#[derive(Clone)]
pub struct BearerAuth {
    inner: Arc<BearerConfig>,
}

impl BearerAuth {
    /// Tokens from one source. Per-request [`TokenScopes`] need
    /// [`BearerAuth::client_credentials`] or [`BearerAuth::password`] instead.
    #[must_use]
    pub fn new(source: TokenSource) -> Self {
        Self::build(BearerConfig::new(Arc::new(source), None))
    }

    /// Tokens from any [`TokenProvider`]: your own source, or a mock in your tests.
    #[must_use]
    pub fn from_provider(provider: impl TokenProvider) -> Self {
        Self::build(BearerConfig::new(Arc::new(provider), None))
    }

    /// Client-credentials tokens for `scopes`, or for a request's [`TokenScopes`].
    #[must_use]
    pub fn client_credentials(cache: &TokenCache, client: &Client, scopes: &Scopes) -> Self {
        Self::build(BearerConfig::client_credentials(cache, client, scopes))
    }

    /// A user's ROPC tokens for `scopes`, or for a request's [`TokenScopes`].
    #[must_use]
    pub fn password(cache: &TokenCache, client: &Client, username: &str, password: &Password, scopes: &Scopes) -> Self {
        let (cache, client, username, password) =
            (cache.clone(), client.clone(), username.to_owned(), password.clone());
        let source = cache.password(&client, &username, &password, scopes);
        Self::build(BearerConfig::new(
            Arc::new(source),
            Some(Arc::new(move |scopes| {
                Arc::new(cache.password(&client, &username, &password, scopes))
            })),
        ))
    }

    fn build(config: BearerConfig) -> Self {
        Self {
            inner: Arc::new(config),
        }
    }

    fn inner_mut(&mut self) -> &mut BearerConfig {
        // Configuration happens before the middleware is shared; a clone made earlier keeps
        // its own settings.
        Arc::make_mut(&mut self.inner)
    }

    /// Sends the token to `host` (e.g. `api.contoso.com`, or `127.0.0.1:8080` for one port).
    /// Requests to any other host go out without a token, so a token for API A never
    /// reaches host B.
    #[must_use]
    pub fn allow_host(mut self, host: &str) -> Self {
        self.inner_mut().allow_list_mut().allow(host);
        self
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
/// `Request::try_clone`'s cost.
enum Replay {
    Parts {
        method: reqwest::Method,
        url_hash: u64,
        headers: reqwest::header::HeaderMap,
        version: reqwest::Version,
        timeout: Option<std::time::Duration>,
    },
    Whole(Request),
}

fn url_hash(url: &reqwest::Url) -> u64 {
    use std::hash::{BuildHasher, BuildHasherDefault};
    BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default().hash_one(url.as_str())
}

impl Replay {
    /// `None` when the body cannot be cloned (a stream).
    fn of(request: &Request) -> Option<Self> {
        if request.body().is_none() {
            return Some(Self::Parts {
                method: request.method().clone(),
                url_hash: url_hash(request.url()),
                headers: request.headers().clone(),
                version: request.version(),
                timeout: request.timeout().copied(),
            });
        }
        request.try_clone().map(Self::Whole)
    }

    /// The request to send again; `None` when the 401 came from elsewhere than the request
    /// went (a redirect).
    fn into_request(self, answered_from: &reqwest::Url) -> Option<Request> {
        match self {
            Self::Whole(request) => Some(request),
            Self::Parts {
                method,
                url_hash: hash,
                headers,
                version,
                timeout,
            } => {
                if url_hash(answered_from) != hash {
                    return None;
                }
                let mut request = Request::new(method, answered_from.clone());
                *request.headers_mut() = headers;
                *request.version_mut() = version;
                *request.timeout_mut() = timeout;
                Some(request)
            }
        }
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

#[async_trait::async_trait]
impl Middleware for BearerAuth {
    async fn handle(
        &self,
        mut request: Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<Response> {
        let url = request.url();
        let verdict = self
            .inner
            .check(url.scheme(), url.host_str(), url.port_or_known_default())
            .map_err(middleware_error)?;
        if verdict == Verdict::Skip {
            tracing::debug!(
                host = url.host_str(),
                "host not allowed for the bearer token: sending without it"
            );
            return next.run(request, extensions).await;
        }
        let chosen = self
            .inner
            .provider(
                extensions.get::<TokenScopes>(),
                "BearerAuth::client_credentials or BearerAuth::password, not BearerAuth::new",
            )
            .map_err(middleware_error)?;
        let source = chosen.get();
        // Misses and replays are boxed: inline, their futures would make every request's
        // state machine (which async_trait moves into a box) several times larger.
        let (token, header) = match self.inner.cached_bearer(source) {
            Some(hit) => hit,
            None => Box::pin(self.inner.bearer(source)).await,
        }
        .map_err(middleware_error)?;
        let retry = Replay::of(&request);
        request.headers_mut().insert(AUTHORIZATION, header);

        let response = next.clone().run(request, extensions).await?;
        if response.status() != StatusCode::UNAUTHORIZED {
            return Ok(response);
        }
        let (error, description) = bearer_challenge(&response);
        let Some(retry) = retry else {
            tracing::warn!(
                ?error,
                ?description,
                "API answered 401; the request body cannot be replayed, returning it"
            );
            return Ok(response);
        };
        tracing::info!(
            ?error,
            ?description,
            "API answered 401: refreshing the token and retrying once"
        );
        if !source.rejected(&token) {
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
        let answered_from = response.url().clone();
        let Some(mut retry) = retry.into_request(&answered_from) else {
            tracing::warn!(?error, ?description, "API answered 401 after a redirect: returning it");
            return Ok(response);
        };
        let (_, header) = Box::pin(self.inner.bearer(source)).await.map_err(middleware_error)?;
        retry.headers_mut().insert(AUTHORIZATION, header);
        next.run(retry, extensions).await
    }
}

fn middleware_error(error: Error) -> reqwest_middleware::Error {
    reqwest_middleware::Error::middleware(error)
}
