//! [`TokenProvider`]: where an outgoing integration gets its bearer tokens. `TokenSource`
//! implements it; so can your own source, or a mock in your tests.

use std::future::Future;
use std::pin::Pin;
#[cfg(feature = "tonic")]
use std::sync::Arc;

#[cfg(feature = "tonic")]
use arc_swap::ArcSwapOption;

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

/// The metadata value of the last token the tonic interceptor sent: built once per token
/// rather than once per request (building one copies and validates the whole token); clones
/// share its bytes. (A `HeaderValue` is kept by the token itself: see
/// [`Token::authorization_header`].)
#[cfg(feature = "tonic")]
pub(crate) struct HeaderCache<V>(ArcSwapOption<(Token, V)>);

#[cfg(feature = "tonic")]
impl<V: Clone> HeaderCache<V> {
    /// `token`'s header value: the cached one if `token` is the last token seen, otherwise
    /// `build`'s, which is then kept.
    pub(crate) fn get_or_build<E>(&self, token: &Token, build: impl FnOnce(&Token) -> Result<V, E>) -> Result<V, E> {
        if let Some((cached, value)) = self.0.load().as_deref() {
            if cached.same_as(token) {
                return Ok(value.clone());
            }
        }
        let value = build(token)?;
        self.0.store(Some(Arc::new((token.clone(), value.clone()))));
        Ok(value)
    }
}

#[cfg(feature = "tonic")]
impl<V> Default for HeaderCache<V> {
    fn default() -> Self {
        Self(ArcSwapOption::empty())
    }
}

/// A configuration copy starts with an empty cache (it fills on the first request).
#[cfg(feature = "tonic")]
impl<V> Clone for HeaderCache<V> {
    fn clone(&self) -> Self {
        Self::default()
    }
}

#[cfg(feature = "tonic")]
impl<V> std::fmt::Debug for HeaderCache<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HeaderCache")
    }
}
