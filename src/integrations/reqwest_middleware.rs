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

use super::provider::TokenProvider;
use crate::authority::is_loopback;
use crate::cache::{TokenCache, TokenSource};
use crate::client::Client;
use crate::error::Error;
use crate::scope::Scopes;
use crate::secret::Password;

/// A request extension that asks [`BearerAuth`] for a token with other scopes, for services
/// that call several APIs through one client.
///
/// ```no_run
/// # async fn demo(http: reqwest_middleware::ClientWithMiddleware) -> Result<(), Box<dyn std::error::Error>> {
/// let scopes = b2c_token::Scopes::new(["https://contoso.onmicrosoft.com/billing/.default"])?;
/// let response = http
///     .get("https://billing.contoso.com/invoices")
///     .with_extension(b2c_token::TokenScopes(scopes))
///     .send()
///     .await?;
/// # let _ = response; Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenScopes(pub Scopes);

type SourceFor = dyn Fn(&Scopes) -> Arc<dyn TokenProvider> + Send + Sync;

/// Attaches `Authorization: Bearer …` (marked sensitive) to requests for allowed hosts.
///
/// Tokens come from a [`TokenCache`]: a hit costs no I/O. On a 401 the rejected token is
/// dropped (only if it is still the cached one: another request may already have replaced
/// it), a fresh one is fetched, and the request is sent once more if its body can be cloned.
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
    inner: Arc<BearerInner>,
}

#[derive(Clone)]
struct BearerInner {
    source: Arc<dyn TokenProvider>,
    source_for: Option<Arc<SourceFor>>,
    allowed_hosts: Vec<AllowedHost>,
    allow_any_host: bool,
}

/// An allow-list entry: a host, optionally pinned to one port. Parsed once, matched on every
/// request without allocating.
#[derive(Debug, Clone, PartialEq, Eq)]
struct AllowedHost {
    host: String,
    port: Option<u16>,
}

impl AllowedHost {
    fn parse(entry: &str) -> Self {
        let entry = entry.trim().to_ascii_lowercase();
        // `host:port`, but not the colons inside a bare IPv6 address (`[::1]` has no port).
        if let Some((host, port)) = entry.rsplit_once(':') {
            let is_host_port = !host.is_empty() && (!host.contains(':') || host.ends_with(']'));
            if let (true, Ok(port)) = (is_host_port, port.parse()) {
                return Self {
                    host: host.to_owned(),
                    port: Some(port),
                };
            }
        }
        Self {
            host: entry,
            port: None,
        }
    }

    fn matches(&self, host: &str, port: Option<u16>) -> bool {
        self.host.eq_ignore_ascii_case(host) && (self.port.is_none() || self.port == port)
    }
}

impl BearerAuth {
    /// Tokens from one source. Per-request [`TokenScopes`] need
    /// [`BearerAuth::client_credentials`] or [`BearerAuth::password`] instead.
    #[must_use]
    pub fn new(source: TokenSource) -> Self {
        Self::build(Arc::new(source), None)
    }

    /// Tokens from any [`TokenProvider`]: your own source, or a mock in your tests.
    #[must_use]
    pub fn from_provider(provider: impl TokenProvider) -> Self {
        Self::build(Arc::new(provider), None)
    }

    /// Client-credentials tokens for `scopes`, or for a request's [`TokenScopes`].
    #[must_use]
    pub fn client_credentials(cache: &TokenCache, client: &Client, scopes: &Scopes) -> Self {
        let (cache, client) = (cache.clone(), client.clone());
        let source = cache.client_credentials(&client, scopes);
        Self::build(
            Arc::new(source),
            Some(Arc::new(move |scopes| {
                Arc::new(cache.client_credentials(&client, scopes))
            })),
        )
    }

    /// A user's ROPC tokens for `scopes`, or for a request's [`TokenScopes`].
    #[must_use]
    pub fn password(cache: &TokenCache, client: &Client, username: &str, password: &Password, scopes: &Scopes) -> Self {
        let (cache, client, username, password) =
            (cache.clone(), client.clone(), username.to_owned(), password.clone());
        let source = cache.password(&client, &username, &password, scopes);
        Self::build(
            Arc::new(source),
            Some(Arc::new(move |scopes| {
                Arc::new(cache.password(&client, &username, &password, scopes))
            })),
        )
    }

    fn build(source: Arc<dyn TokenProvider>, source_for: Option<Arc<SourceFor>>) -> Self {
        Self {
            inner: Arc::new(BearerInner {
                source,
                source_for,
                allowed_hosts: Vec::new(),
                allow_any_host: false,
            }),
        }
    }

    fn inner_mut(&mut self) -> &mut BearerInner {
        // Configuration happens before the middleware is shared; a clone made earlier keeps
        // its own settings.
        Arc::make_mut(&mut self.inner)
    }

    /// Sends the token to `host` (e.g. `api.contoso.com`, or `127.0.0.1:8080` for one port).
    /// Requests to any other host go out without a token, so a token for API A never
    /// reaches host B.
    #[must_use]
    pub fn allow_host(mut self, host: &str) -> Self {
        self.inner_mut().allowed_hosts.push(AllowedHost::parse(host));
        self
    }

    /// Sends the token to every HTTPS (or loopback) host. Only for clients that talk to one
    /// API and nothing else.
    #[must_use]
    pub fn allow_any_host(mut self) -> Self {
        self.inner_mut().allow_any_host = true;
        self
    }

    fn host_allowed(&self, url: &url::Url) -> bool {
        let inner = &*self.inner;
        if inner.allow_any_host {
            return true;
        }
        let Some(host) = url.host_str() else { return false };
        let port = url.port_or_known_default();
        inner.allowed_hosts.iter().any(|allowed| allowed.matches(host, port))
    }

    fn source_for(&self, extensions: &Extensions) -> Result<Arc<dyn TokenProvider>, Error> {
        match (extensions.get::<TokenScopes>(), &self.inner.source_for) {
            (None, _) => Ok(Arc::clone(&self.inner.source)),
            (Some(TokenScopes(scopes)), Some(source_for)) => Ok(source_for(scopes)),
            (Some(_), None) => Err(Error::RequestNotSent(
                "per-request TokenScopes need BearerAuth::client_credentials or BearerAuth::password, not BearerAuth::new"
                    .into(),
            )),
        }
    }
}

impl fmt::Debug for BearerAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BearerAuth")
            .field("allowed_hosts", &self.inner.allowed_hosts)
            .field("allow_any_host", &self.inner.allow_any_host)
            .finish_non_exhaustive()
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
        if !self.host_allowed(url) {
            tracing::debug!(
                host = url.host_str(),
                "host not allowed for the bearer token: sending without it"
            );
            return next.run(request, extensions).await;
        }
        if url.scheme() != "https" && !is_loopback(url) {
            return Err(middleware_error(Error::RequestNotSent(format!(
                "refusing to send a bearer token over {}:// to {}: use https",
                url.scheme(),
                url.host_str().unwrap_or_default()
            ))));
        }
        let source = self.source_for(extensions).map_err(middleware_error)?;
        let (token, header) = bearer(&*source).await.map_err(middleware_error)?;
        let retry = request.try_clone();
        request.headers_mut().insert(AUTHORIZATION, header);

        let response = next.clone().run(request, extensions).await?;
        if response.status() != StatusCode::UNAUTHORIZED {
            return Ok(response);
        }
        let (error, description) = bearer_challenge(&response);
        let Some(mut retry) = retry else {
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
        let (_, header) = bearer(&*source).await.map_err(middleware_error)?;
        retry.headers_mut().insert(AUTHORIZATION, header);
        next.run(retry, extensions).await
    }
}

/// A valid token from `source` and its `Authorization` value: the cached token when there is
/// one (no allocation, no await), otherwise the provider's fetch.
async fn bearer(source: &dyn TokenProvider) -> Result<(crate::token::Token, reqwest::header::HeaderValue), Error> {
    let token = match source.cached() {
        Some(token) => token,
        None => source.token().await?,
    };
    let header = token.authorization_header()?;
    Ok((token, header))
}

fn middleware_error(error: Error) -> reqwest_middleware::Error {
    reqwest_middleware::Error::middleware(error)
}

#[cfg(test)]
mod tests {
    use super::AllowedHost;

    #[test]
    fn allow_list_entries_match_host_and_optional_port() {
        let api = AllowedHost::parse("API.contoso.com");
        assert!(api.matches("api.contoso.com", Some(443)) && api.matches("api.CONTOSO.com", Some(8443)));
        assert!(!api.matches("evil.com", Some(443)) && !api.matches("api.contoso.com.evil.com", Some(443)));
        let pinned = AllowedHost::parse("127.0.0.1:8080");
        assert!(pinned.matches("127.0.0.1", Some(8080)) && !pinned.matches("127.0.0.1", Some(8081)));
        let v6 = AllowedHost::parse("[::1]");
        assert!(v6.matches("[::1]", Some(80)));
        let v6_port = AllowedHost::parse("[::1]:9000");
        assert!(v6_port.matches("[::1]", Some(9000)) && !v6_port.matches("[::1]", Some(80)));
    }
}
