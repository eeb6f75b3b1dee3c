//! Where tokens live beyond one cache: the [`TokenStore`] contract, the keyed-hash
//! [`StoreKey`] and [`StoreNamespace`], the in-process [`MemoryStore`], and the [`CacheKey`]
//! that names what a token is for.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::hash::Hasher as _;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use siphasher::sip128::{Hasher128 as _, SipHasher13};

pub use super::store_error::{StoreError, StoreResult};
pub use super::stored_token::StoredToken;
use crate::client::grant::GrantKind;
use crate::client::Client;
use crate::scope::Scopes;

/// What a [`TokenStore`]'s operations return: a boxed future, so that the trait stays object
/// safe (`Arc<dyn TokenStore>`) and implementable on any runtime or client.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The keys of the keyed hashes a fleet shares: store key ids and credential fingerprints
/// are SipHash-1-3 under these, so every process using the same store agrees on them, and
/// the store reveals neither usernames, client IDs nor credentials.
#[derive(Clone)]
pub struct StoreNamespace {
    key: [u8; 16],
}

impl StoreNamespace {
    /// A namespace from a secret shared by the fleet (at least 16 random bytes).
    #[must_use]
    pub fn from_secret(secret: &[u8]) -> Self {
        let mut hasher = SipHasher13::new_with_key(b"b2c-token/ns/v1\0");
        hasher.write(secret);
        Self {
            key: hasher.finish128().as_bytes(),
        }
    }

    /// A namespace of this process alone.
    #[must_use]
    pub fn random() -> Self {
        let mut key = [0u8; 16];
        key[..8].copy_from_slice(&super::stored_token::random_u64().to_le_bytes());
        key[8..].copy_from_slice(&super::stored_token::random_u64().to_le_bytes());
        Self { key }
    }

    fn hasher(&self, domain: &[u8]) -> SipHasher13 {
        let mut hasher = SipHasher13::new_with_key(&self.key);
        hasher.write(domain);
        hasher
    }

    /// The store key for `key`: 128 bits of keyed hash, in hex.
    pub(crate) fn store_key(&self, key: &CacheKey) -> StoreKey {
        let mut hasher = self.hasher(b"key\0");
        hasher.write(key.client.as_bytes());
        hasher.write(b"\0");
        hasher.write(key.grant.grant_type().as_bytes());
        hasher.write(b"\0");
        hasher.write(key.user.as_deref().unwrap_or_default().as_bytes());
        hasher.write(b"\0");
        hasher.write(key.scopes.as_str().as_bytes());
        StoreKey {
            id: hasher.finish128().as_u128(),
        }
    }

    /// A credential's fingerprint: 64 bits of keyed hash of `parts`, each length-prefixed so
    /// that no two lists of parts hash the same bytes.
    pub(crate) fn fingerprint(&self, parts: &[&[u8]]) -> u64 {
        let mut hasher = self.hasher(b"credential\0");
        for part in parts {
            hasher.write(&(part.len() as u64).to_le_bytes());
            hasher.write(part);
        }
        hasher.finish()
    }
}

impl fmt::Debug for StoreNamespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StoreNamespace([REDACTED])")
    }
}

/// A cache key as a store sees it: a 128-bit keyed hash, with nothing readable in it.
/// `Display` writes it as 32 hex digits, the form stores use in their own keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StoreKey {
    id: u128,
}

impl StoreKey {
    /// The id.
    #[must_use]
    pub fn id(&self) -> u128 {
        self.id
    }

    /// A key from its 32 hex digits, as a store received them (an invalidation from another
    /// process); `None` if they are not 32 hex digits.
    #[must_use]
    pub fn from_hex(hex: &str) -> Option<Self> {
        (hex.len() == 32)
            .then(|| u128::from_str_radix(hex, 16).ok())
            .flatten()
            .map(|id| Self { id })
    }
}

impl fmt::Display for StoreKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.id)
    }
}

/// Proof of holding a store's lock on a key, for [`TokenStore::unlock`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreLock(pub u64);

/// Where tokens are shared beyond one cache: between replicas of a service, so that one
/// request per token lifetime serves them all, and rotated refresh tokens reach every replica.
///
/// The cache looks in the store before every fetch (on a miss and before every background
/// refresh) and installs a stored token that is not yet due for refresh; it saves every token
/// it fetches; it drops a stored token only if it is still the one it holds
/// ([`TokenStore::remove_if`]). A store that fails or is slow costs no correctness: the cache
/// carries on with its own copy and the token endpoint. The lock is an optimisation (one
/// replica fetches while the others wait for its token); nothing depends on it.
///
/// Implementations must never log tokens, and should encrypt what leaves the process.
///
/// # The contract
///
/// * `load` returns what `save` stored under the key, or `None` (a value that cannot be read,
///   an expired one, one too large to be a token: all `None`, never an error);
/// * `save` replaces any value, and may drop it when the token expires
///   ([`StoredToken::expires_at`]);
/// * `remove_if` deletes only if the stored [`StoredToken::version`] is the one given, atomically
///   with the check;
/// * `try_lock`/`unlock` are a best-effort lock with a time to live (the defaults: no lock);
/// * every operation should answer quickly: the cache waits at most 2 s for any of them, then
///   carries on without the store;
/// * `namespace` is the same in every process that shares the store (from a shared secret,
///   [`StoreNamespace::from_secret`]).
///
/// A store over your own database needs only the crate's types and `std`:
///
/// ```
/// use std::collections::HashMap;
/// use std::sync::{Arc, Mutex};
///
/// use b2c_token::{store::StoreFuture, store::StoreKey, store::StoreNamespace, store::StoreResult, store::StoredToken, TokenCache, store::TokenStore};
///
/// /// Tokens in a map (a database table in real life), shared by every cache given it.
/// struct MapStore {
///     namespace: StoreNamespace,
///     tokens: Mutex<HashMap<StoreKey, StoredToken>>,
/// }
///
/// impl TokenStore for MapStore {
///     fn namespace(&self) -> &StoreNamespace {
///         &self.namespace
///     }
///     fn load<'a>(&'a self, key: &'a StoreKey) -> StoreFuture<'a, StoreResult<Option<StoredToken>>> {
///         let token = self.tokens.lock().unwrap().get(key).cloned();
///         Box::pin(async move { Ok(token) })
///     }
///     fn save<'a>(&'a self, key: &'a StoreKey, token: &'a StoredToken) -> StoreFuture<'a, StoreResult<()>> {
///         self.tokens.lock().unwrap().insert(*key, token.clone());
///         Box::pin(async { Ok(()) })
///     }
///     fn remove_if<'a>(&'a self, key: &'a StoreKey, version: u64) -> StoreFuture<'a, StoreResult<bool>> {
///         let mut tokens = self.tokens.lock().unwrap();
///         let matches = tokens.get(key).is_some_and(|token| token.version() == version);
///         if matches {
///             tokens.remove(key);
///         }
///         Box::pin(async move { Ok(matches) })
///     }
/// }
///
/// let store = Arc::new(MapStore {
///     namespace: StoreNamespace::from_secret(b"a secret every replica shares"),
///     tokens: Mutex::new(HashMap::new()),
/// });
/// let replica_a = TokenCache::builder().store(store.clone()).build();
/// let replica_b = TokenCache::builder().store(store).build();
/// # let _ = (replica_a, replica_b);
/// ```
pub trait TokenStore: Send + Sync + 'static {
    /// The keyed-hash keys every process sharing this store must agree on.
    fn namespace(&self) -> &StoreNamespace;
    /// The token stored under `key`, if any. A value that cannot be read is `Ok(None)`.
    fn load<'a>(&'a self, key: &'a StoreKey) -> StoreFuture<'a, StoreResult<Option<StoredToken>>>;
    /// Stores `token` under `key`, replacing any other, until the token expires.
    fn save<'a>(&'a self, key: &'a StoreKey, token: &'a StoredToken) -> StoreFuture<'a, StoreResult<()>>;
    /// Deletes the token under `key` only if its version is `version` (compare-and-delete),
    /// so that invalidating an old token cannot delete a newer one another process wrote.
    /// Returns whether it deleted.
    fn remove_if<'a>(&'a self, key: &'a StoreKey, version: u64) -> StoreFuture<'a, StoreResult<bool>>;
    /// Tries to take the fetch lock on `key` for `ttl`: `Ok(None)` if another process holds it.
    /// The default has no lock (every process may fetch).
    fn try_lock<'a>(&'a self, key: &'a StoreKey, ttl: Duration) -> StoreFuture<'a, StoreResult<Option<StoreLock>>> {
        let _ = (key, ttl);
        Box::pin(async { Ok(Some(StoreLock(0))) })
    }
    /// Releases a lock taken with [`TokenStore::try_lock`], if it is still this one.
    fn unlock<'a>(&'a self, key: &'a StoreKey, lock: StoreLock) -> StoreFuture<'a, StoreResult<()>> {
        let _ = (key, lock);
        Box::pin(async { Ok(()) })
    }
    /// Tells other processes that `key`'s token was rejected, so they drop their copies.
    fn publish_invalidation<'a>(&'a self, key: &'a StoreKey) -> StoreFuture<'a, StoreResult<()>> {
        let _ = key;
        Box::pin(async { Ok(()) })
    }
    /// Invalidations published by other processes, if the store carries them: a listener on
    /// the store's [`InvalidationHub`](crate::store::InvalidationHub).
    fn invalidations(&self) -> Option<super::StoreInvalidations> {
        None
    }
}

/// A [`TokenStore`] in this process's memory: shares tokens between several
/// [`TokenCache`](super::TokenCache)s (for example one per component), and is the template
/// for a shared store.
pub struct MemoryStore {
    namespace: StoreNamespace,
    tokens: Mutex<HashMap<StoreKey, StoredToken>>,
    locks: Mutex<HashMap<StoreKey, (StoreLock, std::time::Instant)>>,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self {
            namespace: StoreNamespace::random(),
            tokens: Mutex::new(HashMap::new()),
            locks: Mutex::new(HashMap::new()),
        }
    }
}

impl MemoryStore {
    /// An empty store.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    fn tokens(&self) -> MutexGuard<'_, HashMap<StoreKey, StoredToken>> {
        crate::sync::lock(&self.tokens)
    }

    /// How many tokens are stored.
    #[must_use]
    pub fn len(&self) -> usize {
        self.tokens().len()
    }

    /// Whether no token is stored.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl TokenStore for MemoryStore {
    fn namespace(&self) -> &StoreNamespace {
        &self.namespace
    }

    fn load<'a>(&'a self, key: &'a StoreKey) -> StoreFuture<'a, StoreResult<Option<StoredToken>>> {
        let token = self.tokens().get(key).cloned();
        Box::pin(async move { Ok(token) })
    }

    fn save<'a>(&'a self, key: &'a StoreKey, token: &'a StoredToken) -> StoreFuture<'a, StoreResult<()>> {
        let mut tokens = self.tokens();
        let now = std::time::SystemTime::now();
        tokens.retain(|_, stored| stored.expires_at() > now);
        tokens.insert(*key, token.clone());
        Box::pin(async { Ok(()) })
    }

    fn remove_if<'a>(&'a self, key: &'a StoreKey, version: u64) -> StoreFuture<'a, StoreResult<bool>> {
        let mut tokens = self.tokens();
        let matches = tokens.get(key).is_some_and(|stored| stored.version() == version);
        if matches {
            tokens.remove(key);
        }
        Box::pin(async move { Ok(matches) })
    }

    fn try_lock<'a>(&'a self, key: &'a StoreKey, ttl: Duration) -> StoreFuture<'a, StoreResult<Option<StoreLock>>> {
        let mut locks = crate::sync::lock(&self.locks);
        let now = std::time::Instant::now();
        locks.retain(|_, (_, until)| *until > now);
        let lock = if locks.contains_key(key) {
            None
        } else {
            let lock = StoreLock(super::stored_token::random_u64());
            locks.insert(*key, (lock, now + ttl));
            Some(lock)
        };
        Box::pin(async move { Ok(lock) })
    }

    fn unlock<'a>(&'a self, key: &'a StoreKey, lock: StoreLock) -> StoreFuture<'a, StoreResult<()>> {
        let mut locks = crate::sync::lock(&self.locks);
        if locks.get(key).is_some_and(|(held, _)| *held == lock) {
            locks.remove(key);
        }
        Box::pin(async { Ok(()) })
    }
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryStore").field("len", &self.len()).finish()
    }
}

/// What a cache entry is for: token endpoint, client, grant, user and sorted scope set.
///
/// Compared case-insensitively where B2C is (endpoint with policy, username), scopes
/// order-insensitively. Holds no secret.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct CacheKey {
    /// Endpoint and client ID: one allocation shared by every key of a client.
    pub(super) client: Arc<str>,
    pub(super) grant: GrantKind,
    /// Lower-cased username for ROPC.
    pub(super) user: Option<Box<str>>,
    /// Sorted: the set is what matters. Also what the entry sends.
    pub(super) scopes: Scopes,
}

impl CacheKey {
    /// The scope set this key is for (sorted).
    #[must_use]
    pub fn scopes(&self) -> &Scopes {
        &self.scopes
    }

    pub(crate) fn new(client: &Client, grant: GrantKind, username: Option<&str>, scopes: &Scopes) -> Self {
        Self {
            client: Arc::clone(client.cache_identity()),
            grant,
            user: username.map(|u| u.to_lowercase().into_boxed_str()),
            scopes: scopes.sorted(),
        }
    }
}

impl fmt::Debug for CacheKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut list = f.debug_list();
        list.entries(self.client.split('\n')).entry(&self.grant.grant_type());
        if let Some(user) = &self.user {
            list.entry(user);
        }
        list.entry(&self.scopes.as_str()).finish()
    }
}
