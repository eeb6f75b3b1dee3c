//! The token cache: O(1) lock-free hits, early single-flight refresh per key, proactive
//! background refresh of the keys in use, bounded size.
//!
//! Each key (authority, client, grant, user, scope set) has one entry. A [`TokenSource`]
//! points straight at its entry, so a hit is: one `ArcSwap` load, a fingerprint compare, two
//! coarse clock reads for expiry, one `Arc` clone. No map lookup, no lock.
//!
//! One timer task per cache holds a heap of deadlines (a few dozen bytes per entry, not a
//! task each): when an entry's refresh window opens (5 min before expiry by default, at most
//! half the lifetime) it spawns a short refresh job that fetches in the background while
//! callers keep getting the still-valid token, if anyone read the token since its last
//! refresh. Nothing depends on that task for safety: expiry is checked on every hit.

mod credential;
mod failure_memory;
pub(crate) mod file_store;
mod fleet;
pub(crate) mod invalidations;
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub(crate) mod redis_store;
mod refresh;
mod rejections;
mod schedule;
mod shared;
mod source;
mod stats;
pub(crate) mod store;
pub(crate) mod store_error;
pub(crate) mod stored_token;

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use self::credential::{Credential, SourceGrant};
pub(crate) use self::invalidations::StoreInvalidations;
use self::refresh::Entry;
use self::schedule::Schedule;
use self::shared::Shared;
pub use self::source::{TokenFuture, TokenSource};
pub use self::stats::CacheStats;
pub(crate) use self::store::{CacheKey, StoreKey, StoreNamespace, TokenStore};
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
/// The longest back-off accepted: longer ones would only overflow instant arithmetic.
const BACKOFF_CAP: Duration = Duration::from_secs(24 * 3600);
/// Default time after a rejection-forced refresh during which further rejections keep the
/// fresh token.
const DEFAULT_REJECTION_COOLDOWN: Duration = Duration::from_secs(30);
/// Default life of a replica's fetch lock in the store: longer than a token request normally
/// takes, short enough that a replica that died holding it delays the others only this long.
const DEFAULT_STORE_LOCK_TTL: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy)]
struct CacheConfig {
    max_entries: usize,
    refresh_before: Duration,
    retry_backoff: Duration,
    max_backoff: Duration,
    rejection_cooldown: Duration,
    store_lock_ttl: Duration,
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
    /// Whether a task listens for other replicas' invalidations (started on first use, when
    /// a runtime is at hand).
    listening: std::sync::atomic::AtomicBool,
}

impl Drop for CacheInner {
    /// The scheduler outlives the cache by design (sources handed out keep refreshing), but
    /// its deadlines hold every entry's allocation through a `Weak` until they fall due, a
    /// token lifetime away. Drop the entries now, then let the scheduler forget the deadlines
    /// of entries nobody holds, and end if none is left.
    fn drop(&mut self) {
        let index = std::mem::take(&mut *crate::sync::lock(&self.index));
        drop(index);
        self.shared.forget_dropped_entries();
    }
}

/// The key → entry map, with a CLOCK ring for eviction (an LRU approximation whose hit path
/// only sets a bit).
#[derive(Default)]
struct Index {
    /// Each entry, found by its own key: no second copy of the key per entry.
    entries: HashSet<Keyed>,
    /// The same entries by store key, when there is a store: for invalidations from replicas.
    by_store_key: HashMap<StoreKey, Arc<Entry>>,
    /// The same entries in insertion order (a pointer each; the key is in the entry).
    ring: Vec<Arc<Entry>>,
    hand: usize,
}

/// An entry in the index, hashed and compared by its key.
struct Keyed(Arc<Entry>);

impl std::borrow::Borrow<CacheKey> for Keyed {
    fn borrow(&self) -> &CacheKey {
        &self.0.key
    }
}

impl PartialEq for Keyed {
    fn eq(&self, other: &Self) -> bool {
        self.0.key == other.0.key
    }
}

impl Eq for Keyed {}

impl std::hash::Hash for Keyed {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.key.hash(state);
    }
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
                if let Some(store_key) = &entry.store_key {
                    self.by_store_key.remove(store_key);
                }
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
                rejection_cooldown: DEFAULT_REJECTION_COOLDOWN,
                store_lock_ttl: DEFAULT_STORE_LOCK_TTL,
            },
            store: None,
            #[cfg(feature = "metrics")]
            meter: None,
            #[cfg(feature = "metrics")]
            metrics_name: crate::metrics::DEFAULT_NAME.to_owned(),
        }
    }

    /// The token source for the client-credentials grant with these scopes.
    #[must_use]
    pub fn client_credentials(&self, client: &Client, scopes: &Scopes) -> TokenSource {
        let key = CacheKey::new(client, GrantKind::ClientCredentials, None, scopes);
        self.source(key, client, SourceGrant::ClientCredentials)
    }

    /// The token source for a user signed in with ROPC. The password is kept (as a secret,
    /// in this source) to sign in again when the refresh token stops working.
    ///
    /// The source is bound to this password: a source for the same user made with another
    /// password is not served this one's token. It signs in with its own password, and only
    /// if B2C accepts it does its token (and password) replace the entry's.
    #[must_use]
    pub fn password(&self, client: &Client, username: &str, password: &Password, scopes: &Scopes) -> TokenSource {
        let key = CacheKey::new(client, GrantKind::Password, Some(username), scopes);
        let grant = SourceGrant::Password {
            username: username.to_owned(),
            password: password.clone(),
        };
        self.source(key, client, grant)
    }

    fn index(&self) -> MutexGuard<'_, Index> {
        crate::sync::lock(&self.inner.index)
    }

    fn source(&self, key: CacheKey, client: &Client, grant: SourceGrant) -> TokenSource {
        self.listen_for_invalidations();
        let shared = &self.inner.shared;
        let credential = Credential::new(&shared.namespace, client, grant);
        let mut index = self.index();
        if let Some(Keyed(entry)) = index.entries.get(&key) {
            entry.referenced.store(true, Ordering::Relaxed);
            return TokenSource::new(Arc::clone(entry), credential);
        }
        if index.entries.len() >= shared.config.max_entries {
            index.evict_one();
        }
        let entry = Arc::new(Entry::new(key, Arc::clone(shared)));
        index.entries.insert(Keyed(Arc::clone(&entry)));
        if let Some(store_key) = &entry.store_key {
            index.by_store_key.insert(**store_key, Arc::clone(&entry));
        }
        index.ring.push(Arc::clone(&entry));
        TokenSource::new(entry, credential)
    }

    /// Starts, once, the task that drops this process's copies of tokens another replica
    /// invalidated. It ends when the cache is dropped.
    fn listen_for_invalidations(&self) {
        if self.inner.listening.load(Ordering::Relaxed) {
            return;
        }
        let Some(mut invalidations) = self.inner.shared.store.as_ref().and_then(|store| store.invalidations()) else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if self.inner.listening.swap(true, Ordering::AcqRel) {
            return;
        }
        let cache = Arc::downgrade(&self.inner);
        runtime.spawn(async move {
            loop {
                let Some(key) = invalidations.next().await else { return };
                let Some(cache) = cache.upgrade() else { return };
                let entry = crate::sync::lock(&cache.index).by_store_key.get(&key).cloned();
                if let Some(entry) = entry {
                    tracing::debug!(key = ?entry.key, "another replica invalidated the token");
                    entry.forget();
                }
            }
        });
    }

    /// Drops the cached token for `key` (e.g. after an API rejected it) and forgets
    /// remembered failures: the next `token()` fetches.
    pub fn invalidate(&self, key: &CacheKey) {
        let entry = self.index().entries.get(key).map(|Keyed(entry)| Arc::clone(entry));
        if let Some(entry) = entry {
            entry.invalidate();
        }
    }

    /// What the cache did since it was built: hits, misses, background refreshes, failed
    /// and throttled fetches, failed store calls. Export them with your metrics library.
    #[must_use]
    pub fn stats(&self) -> CacheStats {
        self.inner.shared.counters.snapshot()
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
        self.index().entries.contains(key)
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
    #[cfg(feature = "metrics")]
    meter: Option<opentelemetry::metrics::Meter>,
    #[cfg(feature = "metrics")]
    metrics_name: String,
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

    /// First and largest back-off after a failed fetch. Defaults 1 s and 60 s; at most a
    /// day each. While it lasts, calls for the same credential get the remembered error
    /// without a request; background refreshes retry after it.
    pub fn retry_backoff(mut self, first: Duration, max: Duration) -> Self {
        self.config.retry_backoff = first.clamp(Duration::from_millis(1), BACKOFF_CAP);
        self.config.max_backoff = max.clamp(self.config.retry_backoff, BACKOFF_CAP);
        self
    }

    /// After an API's rejection (HTTP 401) forced a refresh, how long further rejections
    /// keep the fresh token instead of forcing another refresh (see
    /// [`TokenSource::invalidate_if_current`]). Default 30 s.
    pub fn rejection_cooldown(mut self, cooldown: Duration) -> Self {
        self.config.rejection_cooldown = cooldown;
        self
    }

    /// How long a replica's fetch lock in the store lives (see [`TokenStore::try_lock`]): the
    /// longest a replica that died mid-fetch can delay the others. Default 10 s.
    pub fn store_lock_ttl(mut self, ttl: Duration) -> Self {
        self.config.store_lock_ttl = ttl.clamp(Duration::from_millis(100), BACKOFF_CAP);
        self
    }

    /// Shares tokens through a [`TokenStore`] (e.g. [`MemoryStore`](crate::store::MemoryStore), or `RedisStore` with
    /// the `redis` feature): see the trait for what the cache does with it.
    pub fn store(mut self, store: Arc<dyn TokenStore>) -> Self {
        self.store = Some(store);
        self
    }

    /// The OpenTelemetry meter this cache reports to (feature `metrics`; see
    /// [`crate::metrics`]). Default: the global meter provider's, as it is at
    /// [`TokenCacheBuilder::build`].
    #[cfg(feature = "metrics")]
    #[cfg_attr(docsrs, doc(cfg(feature = "metrics")))]
    pub fn meter(mut self, meter: &opentelemetry::metrics::Meter) -> Self {
        self.meter = Some(meter.clone());
        self
    }

    /// The `b2c_token.cache.name` this cache's metrics carry (feature `metrics`). Default
    /// `default`; caches reporting to one meter need different names. Choose a name that
    /// identifies no one (a component, not a user or a client ID).
    #[cfg(feature = "metrics")]
    #[cfg_attr(docsrs, doc(cfg(feature = "metrics")))]
    pub fn metrics_name(mut self, name: &str) -> Self {
        self.metrics_name = name.to_owned();
        self
    }

    /// Builds the cache.
    pub fn build(self) -> TokenCache {
        #[cfg(feature = "metrics")]
        let meter = self.meter.unwrap_or_else(crate::metrics::default_meter);
        let cache = TokenCache {
            inner: Arc::new(CacheInner {
                shared: Arc::new(Shared {
                    config: self.config,
                    schedule: Mutex::new(Schedule::default()),
                    wake: tokio::sync::Notify::new(),
                    namespace: self
                        .store
                        .as_ref()
                        .map_or_else(StoreNamespace::random, |store| store.namespace().clone()),
                    store: self.store,
                    store_down: std::sync::atomic::AtomicBool::new(false),
                    store_failed_at: Mutex::new(None),
                    counters: self::stats::Counters::default(),
                    #[cfg(feature = "metrics")]
                    metrics: self::shared::CacheMetrics {
                        lock_wait: crate::metrics::duration_histogram(
                            &meter,
                            crate::metrics::STORE_LOCK_WAIT,
                            "Time a replica waited for another replica's fetch",
                        ),
                        name: opentelemetry::KeyValue::new(crate::metrics::CACHE_NAME, self.metrics_name),
                    },
                }),
                index: Mutex::new(Index::default()),
                listening: std::sync::atomic::AtomicBool::new(false),
            }),
        };
        #[cfg(feature = "metrics")]
        self::shared::observe(&meter, &cache.inner.shared);
        cache
    }
}

impl fmt::Debug for TokenCacheBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenCacheBuilder")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}
