//! Where tokens live beyond one process's [`TokenCache`](crate::TokenCache): a store shared
//! by replicas, so a fleet scaled out to many processes asks the tenant once per key.
//!
//! | store | for | feature |
//! |---|---|---|
//! | [`MemoryStore`] | replicas inside one process (tests, several caches) | none |
//! | [`FileStore`] | the processes of one machine and one user (a CLI, cron jobs): one private file per key | none |
//! | [`RedisStore`] | a fleet: one value per key, a lock so one replica fetches, invalidations to all | `redis` |
//! | your own | any database: implement [`TokenStore`] (its docs hold the contract and a complete example) | none |
//!
//! Keys in a store are keyed hashes ([`StoreKey`], under the fleet's [`StoreNamespace`]) of
//! the [`CacheKey`] and the credential that earned the token: a store reveals no usernames or
//! client IDs, and a token read from it is used only by a replica holding that same
//! credential. `RedisStore` also encrypts values (AES-256-GCM); `FileStore` writes files only
//! its owner can read and refuses any other.
//!
//! ```
//! use std::sync::Arc;
//!
//! use b2c_token::store::MemoryStore;
//! use b2c_token::TokenCache;
//!
//! // Two caches (say, two components of one process) that fetch each token once.
//! let store = Arc::new(MemoryStore::new());
//! let first = TokenCache::builder().store(store.clone()).build();
//! let second = TokenCache::builder().store(store).build();
//! # let _ = (first, second);
//! ```

pub use crate::cache::file_store::{FileEntry, FileStore};
pub use crate::cache::invalidations::{InvalidationHub, StoreInvalidations};
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use crate::cache::redis_store::{RedisStore, RedisStoreBuilder};
pub use crate::cache::store::{
    CacheKey, MemoryStore, StoreError, StoreFuture, StoreKey, StoreLock, StoreNamespace, StoreResult, StoredToken,
    TokenStore,
};
