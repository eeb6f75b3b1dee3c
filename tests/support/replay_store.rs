//! A store for filling many cache keys with one real fetch (tests/cache_memory.rs and
//! benches/cache.rs include it).

use b2c_token::{store::StoreKey, store::StoreNamespace, store::StoreResult, store::StoredToken, store::TokenStore};

/// A store that hands every key the first token saved to it: fills many keys with one real
/// fetch (the token is bound to the one client's credential, which all keys share).
pub struct ReplayStore {
    namespace: StoreNamespace,
    first: std::sync::Mutex<Option<StoredToken>>,
}

impl ReplayStore {
    pub fn new() -> Self {
        Self {
            namespace: StoreNamespace::random(),
            first: std::sync::Mutex::new(None),
        }
    }
}

impl TokenStore for ReplayStore {
    fn namespace(&self) -> &StoreNamespace {
        &self.namespace
    }
    fn load<'a>(&'a self, _: &'a StoreKey) -> BoxFuture<'a, StoreResult<Option<StoredToken>>> {
        let token = self.first.lock().unwrap().clone();
        Box::pin(async move { Ok(token) })
    }
    fn save<'a>(&'a self, _: &'a StoreKey, token: &'a StoredToken) -> BoxFuture<'a, StoreResult<()>> {
        self.first.lock().unwrap().get_or_insert_with(|| token.clone());
        Box::pin(async { Ok(()) })
    }
    fn remove_if<'a>(&'a self, _: &'a StoreKey, _: u64) -> BoxFuture<'a, StoreResult<bool>> {
        Box::pin(async { Ok(false) })
    }
}

type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;
