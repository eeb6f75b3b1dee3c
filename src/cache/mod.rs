//! The token cache: O(1) lock-free hits, early single-flight refresh per key, proactive
//! background refresh, bounded size.
//!
//! Each key (authority, client, grant, user, scope set) has one [`Entry`]. A [`TokenSource`]
//! points straight at its entry, so a hit is: one atomic flag load, one `ArcSwap` load, one
//! `Arc` clone. No map lookup, no lock, no clock read.
//!
//! Expiry is not checked on the hit path; the cache's scheduler keeps each entry's `servable`
//! flag honest instead. One timer task per cache holds a heap of deadlines (a few dozen bytes
//! per entry, not a task each): when an entry's refresh window opens (5 min before expiry by
//! default, at most half the lifetime) it spawns a short refresh job that fetches in the
//! background while callers keep getting the still-valid token, retries with back-off on
//! failure, and clears the flag when the token actually expires. If the scheduler or a job
//! dies with its runtime, drop guards clear the flags, so a dead timer can never leave an
//! expired token servable.

mod refresh;
mod source;
mod store;

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use arc_swap::ArcSwapOption;

use self::refresh::{Entry, RefreshState, Schedule, Shared, SourceGrant};
pub use self::source::{TokenFuture, TokenSource};
pub use self::store::{CacheKey, MemoryStore, TokenStore};
use crate::client::grant::GrantKind;
use crate::client::Client;
use crate::scope::Scopes;
use crate::secret::Password;

/// Default number of keys kept.
const DEFAULT_MAX_ENTRIES: usize = 10_000;
/// Default start of the refresh window before expiry (MSAL uses 5 minutes too).
const DEFAULT_REFRESH_BEFORE: Duration = Duration::from_secs(300);
/// First back-off after a failed background refresh; doubles up to the maximum.
const DEFAULT_RETRY_BACKOFF: Duration = Duration::from_secs(1);
const DEFAULT_MAX_BACKOFF: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Copy)]
struct CacheConfig {
    max_entries: usize,
    refresh_before: Duration,
    retry_backoff: Duration,
    max_backoff: Duration,
}

/// A bounded set of self-refreshing tokens, one per key. Cheap to clone (`Arc` inside).
///
/// ```
/// use b2c_token::test_tenant::{defaults, FakeTenant};
/// use b2c_token::{Scopes, TokenCache};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let tenant = FakeTenant::start().await?;
/// let client = tenant.confidential_client(defaults::SIGNIN_POLICY)?.build()?;
/// let cache = TokenCache::new();
/// let source = cache.client_credentials(&client, &Scopes::new([tenant.api_default_scope()])?);
/// let first = source.token().await?;   // fetched
/// let second = source.token().await?;  // cached: no request
/// assert_eq!(tenant.total_token_requests(), 1);
/// # let _ = (first, second);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct TokenCache {
    inner: Arc<CacheInner>,
}

struct CacheInner {
    shared: Arc<Shared>,
    index: Mutex<Index>,
}

/// The key → entry map, with a CLOCK ring for eviction (an LRU approximation whose hit path
/// only sets a bit).
#[derive(Default)]
struct Index {
    entries: HashMap<CacheKey, Arc<Entry>>,
    /// The same entries in insertion order (a pointer each; the key is in the entry).
    ring: Vec<Arc<Entry>>,
    hand: usize,
}

impl Index {
    fn evict_one(&mut self) {
        while !self.ring.is_empty() {
            if self.hand >= self.ring.len() {
                self.hand = 0;
            }
            if self.ring[self.hand].referenced.swap(false, Ordering::Relaxed) {
                self.hand += 1;
            } else {
                // Its pending deadline holds only a weak reference: once no source uses
                // the entry either, it is freed and the deadline is skipped.
                let entry = self.ring.swap_remove(self.hand);
                self.entries.remove(&entry.key);
                return;
            }
        }
    }
}

impl Default for TokenCache {
    fn default() -> Self {
        Self::new()
    }
}

impl TokenCache {
    /// A cache with the defaults: 10,000 keys, refresh 5 minutes before expiry, no store.
    #[must_use]
    pub fn new() -> Self {
        Self::builder().build()
    }

    /// Configures a cache.
    pub fn builder() -> TokenCacheBuilder {
        TokenCacheBuilder {
            config: CacheConfig {
                max_entries: DEFAULT_MAX_ENTRIES,
                refresh_before: DEFAULT_REFRESH_BEFORE,
                retry_backoff: DEFAULT_RETRY_BACKOFF,
                max_backoff: DEFAULT_MAX_BACKOFF,
            },
            store: None,
        }
    }

    /// The token source for the client-credentials grant with these scopes.
    #[must_use]
    pub fn client_credentials(&self, client: &Client, scopes: &Scopes) -> TokenSource {
        let key = CacheKey::new(client, GrantKind::ClientCredentials, None, scopes);
        self.source(key, client, SourceGrant::ClientCredentials)
    }

    /// The token source for a user signed in with ROPC. The password is kept (as a secret)
    /// to sign in again when the refresh token stops working. A later call for the same user
    /// replaces the stored password.
    #[must_use]
    pub fn password(&self, client: &Client, username: &str, password: &Password, scopes: &Scopes) -> TokenSource {
        let key = CacheKey::new(client, GrantKind::Password, Some(username), scopes);
        let grant = SourceGrant::Password(Arc::new((username.to_owned(), password.clone())));
        self.source(key, client, grant)
    }

    fn index(&self) -> MutexGuard<'_, Index> {
        crate::sync::lock(&self.inner.index)
    }

    fn source(&self, key: CacheKey, client: &Client, grant: SourceGrant) -> TokenSource {
        let mut index = self.index();
        if let Some(entry) = index.entries.get(&key) {
            *entry.lock_grant() = grant;
            entry.referenced.store(true, Ordering::Relaxed);
            return TokenSource {
                entry: Arc::clone(entry),
            };
        }
        if index.entries.len() >= self.inner.shared.config.max_entries {
            index.evict_one();
        }
        let entry = Arc::new(Entry {
            key: key.clone(),
            client: client.clone(),
            shared: Arc::clone(&self.inner.shared),
            current: ArcSwapOption::empty(),
            servable: AtomicBool::new(false),
            // Unreferenced until used: a key created and never asked for goes first.
            referenced: AtomicBool::new(false),
            token_generation: AtomicU64::new(0),
            fetch_generation: AtomicU64::new(0),
            grant: Mutex::new(grant),
            refresh: tokio::sync::Mutex::new(RefreshState::default()),
        });
        index.entries.insert(key, Arc::clone(&entry));
        index.ring.push(Arc::clone(&entry));
        TokenSource { entry }
    }

    /// Drops the cached token for `key` (e.g. after an API rejected it): the next
    /// `token()` fetches a new one.
    pub fn invalidate(&self, key: &CacheKey) {
        let entry = self.index().entries.get(key).cloned();
        if let Some(entry) = entry {
            entry.invalidate();
        }
    }

    /// The number of keys held.
    #[must_use]
    pub fn len(&self) -> usize {
        self.index().entries.len()
    }

    /// Whether no key is held.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the cache holds `key`.
    #[must_use]
    pub fn contains(&self, key: &CacheKey) -> bool {
        self.index().entries.contains_key(key)
    }
}

impl fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenCache")
            .field("len", &self.len())
            .field("config", &self.inner.shared.config)
            .finish_non_exhaustive()
    }
}

/// Configures a [`TokenCache`].
#[must_use]
pub struct TokenCacheBuilder {
    config: CacheConfig,
    store: Option<Arc<dyn TokenStore>>,
}

impl TokenCacheBuilder {
    /// The most keys kept; the least recently used beyond it are dropped. Default 10,000.
    /// Live [`TokenSource`]s of a dropped key keep working on their own.
    pub fn max_entries(mut self, max: usize) -> Self {
        self.config.max_entries = max.max(1);
        self
    }

    /// How long before expiry a token is refreshed (bounded by half its lifetime, so short
    /// tokens are not refreshed continuously). Default 5 minutes.
    pub fn refresh_before(mut self, window: Duration) -> Self {
        self.config.refresh_before = window;
        self
    }

    /// First and largest back-off between failed background refreshes. Defaults 1 s and 60 s.
    pub fn retry_backoff(mut self, first: Duration, max: Duration) -> Self {
        self.config.retry_backoff = first.max(Duration::from_millis(1));
        self.config.max_backoff = max.max(self.config.retry_backoff);
        self
    }

    /// Shares tokens through a [`TokenStore`].
    pub fn store(mut self, store: Arc<dyn TokenStore>) -> Self {
        self.store = Some(store);
        self
    }

    /// Builds the cache.
    pub fn build(self) -> TokenCache {
        TokenCache {
            inner: Arc::new(CacheInner {
                shared: Arc::new(Shared {
                    config: self.config,
                    store: self.store,
                    schedule: Mutex::new(Schedule::default()),
                    wake: tokio::sync::Notify::new(),
                }),
                index: Mutex::new(Index::default()),
            }),
        }
    }
}

impl fmt::Debug for TokenCacheBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenCacheBuilder")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}
