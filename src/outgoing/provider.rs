//! [`TokenProvider`]: where an outgoing integration gets its bearer tokens. `TokenSource`
//! implements it; so can your own source, or a mock in your tests.

use std::future::Future;
use std::pin::Pin;

use crate::cache::TokenSource;
use crate::error::Result;
use crate::token::Token;

/// A boxed token future, as [`TokenProvider::token`] returns it.
pub type TokenProviderFuture<'a> = Pin<Box<dyn Future<Output = Result<Token>> + Send + 'a>>;

/// A source of bearer tokens for outgoing calls ([`crate::outgoing::BearerAuth`] and the integrations
/// to come). Implemented by [`TokenSource`]; implement it to plug in another source, or a mock:
///
/// ```
/// use b2c_token::{Token, outgoing::TokenProvider, outgoing::TokenProviderFuture};
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
