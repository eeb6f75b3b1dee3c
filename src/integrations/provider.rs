//! [`TokenProvider`]: where an outgoing integration gets its bearer tokens. `TokenSource`
//! implements it; so can your own source, or a mock in your tests.

use std::future::Future;
use std::pin::Pin;

#[cfg(any(feature = "reqwest-middleware", feature = "tower"))]
use reqwest::header::HeaderValue;

use crate::cache::TokenSource;
use crate::error::Result;
use crate::token::Token;

/// A boxed token future, as [`TokenProvider::token`] returns it.
pub type TokenProviderFuture<'a> = Pin<Box<dyn Future<Output = Result<Token>> + Send + 'a>>;

/// A source of bearer tokens for outgoing calls ([`crate::BearerAuth`] and the integrations
/// to come). Implemented by [`TokenSource`]; implement it to plug in another source, or a mock:
///
/// ```
/// use b2c_token::{Token, TokenProvider, TokenProviderFuture};
///
/// struct Fixed(Token);
///
/// impl TokenProvider for Fixed {
///     fn token(&self) -> TokenProviderFuture<'_> {
///         let token = self.0.clone();
///         Box::pin(async move { Ok(token) })
///     }
///     fn cached(&self) -> Option<Token> {
///         Some(self.0.clone())
///     }
/// }
/// ```
pub trait TokenProvider: Send + Sync + 'static {
    /// A valid token, fetching one if needed.
    fn token(&self) -> TokenProviderFuture<'_>;

    /// A token that can be served now without waiting or I/O, if there is one: integrations
    /// try this first, so that a hit costs no allocation and no await.
    fn cached(&self) -> Option<Token> {
        None
    }

    /// An API refused `token` (HTTP 401). Returns whether asking again can give another
    /// token, i.e. whether replaying the request is worth it. The default: no.
    fn rejected(&self, token: &Token) -> bool {
        let _ = token;
        false
    }
}

impl TokenProvider for TokenSource {
    fn token(&self) -> TokenProviderFuture<'_> {
        Box::pin(TokenSource::token(self))
    }

    #[inline]
    fn cached(&self) -> Option<Token> {
        TokenSource::cached(self)
    }

    fn rejected(&self, token: &Token) -> bool {
        self.invalidate_if_current(token)
    }
}

/// The `Authorization` value of the last token a layer sent: built once per token rather
/// than once per request (building it copies and validates the whole token); clones share
/// its bytes.
#[cfg(any(feature = "reqwest-middleware", feature = "tower"))]
#[derive(Default)]
pub(crate) struct HeaderCache(arc_swap::ArcSwapOption<(Token, HeaderValue)>);

#[cfg(any(feature = "reqwest-middleware", feature = "tower"))]
impl HeaderCache {
    fn header(&self, token: &Token) -> Result<HeaderValue> {
        if let Some((cached, value)) = self.0.load().as_deref() {
            if cached.same_as(token) {
                return Ok(value.clone());
            }
        }
        let value = token.authorization_header()?;
        self.0.store(Some(std::sync::Arc::new((token.clone(), value.clone()))));
        Ok(value)
    }
}

/// A configuration copy starts with an empty cache (it fills on the first request).
#[cfg(any(feature = "reqwest-middleware", feature = "tower"))]
impl Clone for HeaderCache {
    fn clone(&self) -> Self {
        Self::default()
    }
}

#[cfg(any(feature = "reqwest-middleware", feature = "tower"))]
impl std::fmt::Debug for HeaderCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HeaderCache")
    }
}

#[cfg(any(feature = "reqwest-middleware", feature = "tower"))]
/// A valid token from `provider` and its `Authorization` value: the cached token when there is
/// one (no allocation, no await), otherwise the provider's fetch.
pub(crate) async fn bearer(provider: &dyn TokenProvider, headers: &HeaderCache) -> Result<(Token, HeaderValue)> {
    let token = match provider.cached() {
        Some(token) => token,
        None => provider.token().await?,
    };
    let header = headers.header(&token)?;
    Ok((token, header))
}

/// Chooses the provider for one request: another scope set asks the cache for its source.
#[cfg(any(feature = "reqwest-middleware", feature = "tower"))]
pub(crate) type ProviderFor = dyn Fn(&crate::scope::Scopes) -> std::sync::Arc<dyn TokenProvider> + Send + Sync;

/// The client-credentials source for `scopes`, and the chooser for a request's own scopes:
/// what both bearer layers build from a cache and a client.
#[cfg(any(feature = "reqwest-middleware", feature = "tower"))]
pub(crate) fn client_credentials_providers(
    cache: &crate::cache::TokenCache,
    client: &crate::client::Client,
    scopes: &crate::scope::Scopes,
) -> (std::sync::Arc<dyn TokenProvider>, std::sync::Arc<ProviderFor>) {
    let (cache, client) = (cache.clone(), client.clone());
    let source = std::sync::Arc::new(cache.client_credentials(&client, scopes));
    let provider_for: std::sync::Arc<ProviderFor> =
        std::sync::Arc::new(move |scopes| std::sync::Arc::new(cache.client_credentials(&client, scopes)));
    (source, provider_for)
}
