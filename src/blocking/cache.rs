//! [`TokenCache`] and [`TokenSource`]: the async cache, its hits as they are, its misses
//! waited for.

use std::fmt;

use super::client::Client;
use super::runtime::Background;
use crate::cache::{CacheKey, CacheStats};
use crate::error::Result;
use crate::scope::Scopes;
use crate::secret::Password;
use crate::token::Token;

/// A [`crate::TokenCache`] for code without an async runtime: the same single flight, early
/// and background refresh, expiry checks and credential binding, with the refreshes run on a
/// background thread the cache owns. Cheap to clone.
///
/// ```no_run
/// # fn demo(client: b2c_token::blocking::Client, scopes: b2c_token::Scopes) -> Result<(), b2c_token::Error> {
/// let cache = b2c_token::blocking::TokenCache::new()?;
/// let source = cache.client_credentials(&client, &scopes); // keep it: a hit then takes no lock and no wait
/// let token = source.token()?;
/// # let _ = token; Ok(()) }
/// ```
#[derive(Clone)]
pub struct TokenCache {
    inner: crate::TokenCache,
    background: Background,
}

impl TokenCache {
    /// A cache with the default settings and a background thread of its own.
    ///
    /// # Errors
    /// [`crate::Error::Config`] when the thread cannot be started.
    pub fn new() -> Result<Self> {
        Self::from_async(crate::TokenCache::new())
    }

    /// Wraps an async cache built with [`crate::TokenCache::builder`] (its sizes, refresh
    /// window, store, meter), so that its refreshes run on a background thread of this
    /// cache's. Hand over a cache no async code has used yet: one that already fetched inside
    /// another runtime keeps its background refreshes there.
    ///
    /// # Errors
    /// [`crate::Error::Config`] when the thread cannot be started.
    pub fn from_async(cache: crate::TokenCache) -> Result<Self> {
        Ok(Self {
            inner: cache,
            background: Background::start()?,
        })
    }

    /// The source of client-credentials tokens for `client` and `scopes`. Keep it and call
    /// [`TokenSource::token`] for every request.
    #[must_use]
    pub fn client_credentials(&self, client: &Client, scopes: &Scopes) -> TokenSource {
        self.source(|cache| cache.client_credentials(client.as_async(), scopes))
    }

    /// The source of a user's ROPC tokens (see [`crate::TokenCache::password`]).
    #[must_use]
    pub fn password(&self, client: &Client, username: &str, password: &Password, scopes: &Scopes) -> TokenSource {
        self.source(|cache| cache.password(client.as_async(), username, password, scopes))
    }

    /// A source from the async cache, got in the background runtime's context: what the
    /// async cache starts then (the listener for other replicas' invalidations) runs there.
    fn source(&self, get: impl FnOnce(&crate::TokenCache) -> crate::TokenSource) -> TokenSource {
        TokenSource {
            inner: self.background.enter(|| get(&self.inner)),
            background: self.background.clone(),
        }
    }

    /// Drops the token cached for `key` (see [`crate::TokenCache::invalidate`]).
    pub fn invalidate(&self, key: &CacheKey) {
        // In the runtime's context: removing the token from a store happens in a task.
        self.background.enter(|| self.inner.invalidate(key));
    }

    /// What the cache did so far (see [`crate::TokenCache::stats`]).
    #[must_use]
    pub fn stats(&self) -> CacheStats {
        self.inner.stats()
    }

    /// The async cache inside.
    #[must_use]
    pub fn as_async(&self) -> &crate::TokenCache {
        &self.inner
    }
}

impl fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("blocking::TokenCache")
            .field("cache", &self.inner)
            .finish()
    }
}

/// One key of a [`TokenCache`]: its token on a hit, or a wait for the one fetch in flight.
#[derive(Clone)]
pub struct TokenSource {
    inner: crate::TokenSource,
    background: Background,
}

impl TokenSource {
    /// A valid token: the cached one without waiting (no lock; cheaper than the async hit,
    /// docs/benchmarks.md), otherwise the result of the one fetch for this key that every
    /// waiting thread shares.
    ///
    /// # Errors
    /// As [`crate::TokenSource::token`], and [`crate::Error::BlockingInsideAsyncRuntime`]
    /// when it would wait inside an async runtime.
    pub fn token(&self) -> Result<Token> {
        if let Some(token) = self.inner.cached() {
            return Ok(token);
        }
        self.background.wait(self.inner.token())?
    }

    /// The cached token, if one is valid now; never waits.
    #[must_use]
    pub fn cached(&self) -> Option<Token> {
        self.inner.cached()
    }

    /// An API refused `token` (HTTP 401): see [`crate::TokenSource::invalidate_if_current`].
    pub fn invalidate_if_current(&self, token: &Token) -> bool {
        // In the runtime's context: removing the token from a store happens in a task.
        self.background.enter(|| self.inner.invalidate_if_current(token))
    }

    /// The key this source serves.
    #[must_use]
    pub fn key(&self) -> &CacheKey {
        self.inner.key()
    }

    /// The async source inside.
    #[must_use]
    pub fn as_async(&self) -> &crate::TokenSource {
        &self.inner
    }
}

impl fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("blocking::TokenSource")
            .field("source", &self.inner)
            .finish()
    }
}
