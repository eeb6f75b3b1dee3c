//! The handle callers hold, and the hit path: the code every cached request runs.
//! Its cost is measured in `benches/cache.rs` and recorded in docs/benchmarks.md; keep it
//! free of locks, map lookups and allocation.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use reqwest::header::HeaderValue;

use super::credential::Credential;
use super::refresh::Entry;
use super::store::{CacheKey, StoreFuture};
use crate::error::{Error, Result};
use crate::token::Token;

/// A handle on one cached, self-refreshing token. Cheap to clone (two `Arc`s); `Send + Sync`.
///
/// A source is bound to the credential it was made with (the password, or the client's
/// secret): it is served only tokens that credential earned.
// The entry and the fingerprint are held here, not behind one more `Arc`: a hit follows
// this handle straight to the entry, one memory load fewer on every hit (after a network
// round trip, each such load is likely a cache miss: see benches/middleware.rs).
#[derive(Clone)]
pub struct TokenSource {
    entry: Arc<Entry>,
    /// Copied out of `credential` so that a hit does not read the credential.
    fingerprint: u64,
    credential: Arc<Credential>,
}

impl TokenSource {
    pub(super) fn new(entry: Arc<Entry>, credential: Credential) -> Self {
        Self {
            entry,
            fingerprint: credential.fingerprint,
            credential: Arc::new(credential),
        }
    }

    /// A valid token: the cached one when there is one (no I/O, no lock), otherwise fetched,
    /// with concurrent callers sharing one request.
    ///
    /// # Errors
    /// The fetch's error when there is no valid token to serve. Callers that waited on the
    /// same failed fetch all get its error; none of them repeats the request.
    #[inline]
    pub fn token(&self) -> TokenFuture<'_> {
        // The hit is decided here, when the future is made, so that awaiting a hit is a
        // single trivial poll rather than a trip through an async state machine.
        match self.cached() {
            Some(token) => TokenFuture {
                state: TokenFutureState::Ready(Some(token)),
            },
            None => TokenFuture {
                state: TokenFutureState::Fetching(self.fetch_boxed()),
            },
        }
    }

    // Out of line: the fetch future is kilobytes, and building it inside `token()` would
    // give every hit a frame that size (and a stack probe) even though hits never use it.
    #[inline(never)]
    #[cold]
    fn fetch_boxed(&self) -> StoreFuture<'_, Result<Token>> {
        Box::pin(self.entry.acquire(&self.credential))
    }

    /// Runs `f` on the cached token, if it can be served now, without cloning it: no
    /// reference count is touched, so many threads reading one hot token do not contend.
    /// Keep `f` short; the token cannot be replaced while a thread is inside it.
    ///
    /// "Can be served" is checked on every call: the token was earned by this source's
    /// credential and has not expired, on a clock that also counts time the machine spent
    /// suspended, whether or not the cache's background task has run.
    #[inline]
    pub fn with_cached<R>(&self, f: impl FnOnce(&Token) -> R) -> Option<R> {
        let entry = &*self.entry;
        // CLOCK reference bit and the "read since refresh" bit: read first so that hits on
        // a hot key do not keep writing the cache line.
        if !entry.referenced.load(Ordering::Relaxed) {
            entry.referenced.store(true, Ordering::Relaxed);
        }
        let served = entry.with_servable(self.fingerprint, f);
        // Demand for the entry's token: a hit, or a miss by the credential that holds it (or
        // by anyone while it holds none); not a call by another credential, which the token
        // cannot serve and whose calls must not keep it refreshed.
        if (served.is_some() || !entry.holds_another_credentials(self.fingerprint))
            && !entry.read.load(Ordering::Relaxed)
        {
            entry.read.store(true, Ordering::Relaxed);
        }
        if served.is_some() {
            entry.shared.counters.hit();
        }
        served
    }

    /// The cached token if it can be served now, without waiting or I/O.
    #[must_use]
    #[inline]
    pub fn cached(&self) -> Option<Token> {
        self.with_cached(Token::clone)
    }

    /// A valid token's `Authorization` header value (see [`Token::authorization_header`]).
    ///
    /// # Errors
    /// As [`TokenSource::token`] and [`Token::authorization_header`].
    pub async fn authorization_header(&self) -> Result<HeaderValue, Error> {
        self.token().await?.authorization_header()
    }

    /// An API refused `rejected` (HTTP 401): drops it if it is still the cached token, so
    /// that the next [`TokenSource::token`] fetches a new one. Returns whether asking again
    /// can give a different token, i.e. whether replaying the request is worth it.
    ///
    /// If another caller already replaced the token, nothing is dropped (the newer token is
    /// kept) and the answer is `true`. If a rejection already forced a refresh within the
    /// cache's rejection cooldown ([`crate::cache::TokenCacheBuilder::rejection_cooldown`], 30 s by
    /// default), the fresh token is kept and the answer is `false`: the API refuses it for
    /// some other reason, and refreshing again would only drain the token endpoint.
    pub fn invalidate_if_current(&self, rejected: &Token) -> bool {
        let entry = &self.entry;
        entry.invalidate_rejected(rejected, entry.shared.config.rejection_cooldown)
    }

    /// The key this source serves.
    #[must_use]
    pub fn key(&self) -> &CacheKey {
        &self.entry.key
    }
}

impl TokenSource {
    /// Whether a token would be served now, without touching the CLOCK bits.
    fn with_servable_peek(&self) -> bool {
        self.entry.with_servable(self.fingerprint, |_| ()).is_some()
    }
}

impl fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenSource")
            .field("key", &self.entry.key)
            .field("cached", &self.with_servable_peek())
            .finish()
    }
}

/// The future returned by [`TokenSource::token`]: ready at once on a hit, otherwise the
/// shared fetch.
#[must_use = "futures do nothing unless awaited"]
pub struct TokenFuture<'a> {
    state: TokenFutureState<'a>,
}

enum TokenFutureState<'a> {
    Ready(Option<Token>),
    Fetching(StoreFuture<'a, Result<Token>>),
}

impl Future for TokenFuture<'_> {
    type Output = Result<Token>;

    #[inline]
    fn poll(mut self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<Self::Output> {
        match &mut self.state {
            TokenFutureState::Ready(token) => match token.take() {
                Some(token) => std::task::Poll::Ready(Ok(token)),
                None => polled_after_completion(),
            },
            TokenFutureState::Fetching(fetch) => fetch.as_mut().poll(cx),
        }
    }
}

/// Like std's futures: polling again after `Ready` is a bug in the caller, not a condition
/// to handle.
#[cold]
#[inline(never)]
#[track_caller]
fn polled_after_completion() -> ! {
    panic!("TokenFuture polled after completion")
}

impl fmt::Debug for TokenFuture<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.state {
            TokenFutureState::Ready(_) => "ready",
            TokenFutureState::Fetching(_) => "fetching",
        };
        f.debug_struct("TokenFuture").field("state", &state).finish()
    }
}
