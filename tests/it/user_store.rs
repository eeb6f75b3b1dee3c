//! A store a user writes (issue 27, item 7): only the crate's types and `std`, shared by two
//! caches (replicas), one request for both, and invalidations carried through an
//! `InvalidationHub` of its own.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use b2c_token::test_tenant::FakeTenant;
use b2c_token::{
    store::InvalidationHub, store::StoreFuture, store::StoreInvalidations, store::StoreKey, store::StoreNamespace,
    store::StoreResult, store::StoredToken, store::TokenStore, Scopes, TokenCache,
};

use crate::support;

struct MapStore {
    namespace: StoreNamespace,
    tokens: Mutex<HashMap<StoreKey, StoredToken>>,
    hub: InvalidationHub,
}

impl TokenStore for MapStore {
    fn namespace(&self) -> &StoreNamespace {
        &self.namespace
    }
    fn load<'a>(&'a self, key: &'a StoreKey) -> StoreFuture<'a, StoreResult<Option<StoredToken>>> {
        let token = self.tokens.lock().unwrap().get(key).cloned();
        Box::pin(async move { Ok(token) })
    }
    fn save<'a>(&'a self, key: &'a StoreKey, token: &'a StoredToken) -> StoreFuture<'a, StoreResult<()>> {
        self.tokens.lock().unwrap().insert(*key, token.clone());
        Box::pin(async { Ok(()) })
    }
    fn remove_if<'a>(&'a self, key: &'a StoreKey, version: u64) -> StoreFuture<'a, StoreResult<bool>> {
        let mut tokens = self.tokens.lock().unwrap();
        let matches = tokens.get(key).is_some_and(|token| token.version() == version);
        if matches {
            tokens.remove(key);
        }
        Box::pin(async move { Ok(matches) })
    }
    fn publish_invalidation<'a>(&'a self, key: &'a StoreKey) -> StoreFuture<'a, StoreResult<()>> {
        self.hub.publish(*key);
        Box::pin(async { Ok(()) })
    }
    fn invalidations(&self) -> Option<StoreInvalidations> {
        Some(self.hub.subscribe())
    }
}

#[tokio::test]
async fn a_users_store_shares_tokens_and_invalidations_between_replicas() {
    let tenant = FakeTenant::start().await.unwrap();
    let store = Arc::new(MapStore {
        namespace: StoreNamespace::from_secret(b"shared by the replicas of one service"),
        tokens: Mutex::new(HashMap::new()),
        hub: InvalidationHub::new(),
    });
    let (a, b) = (
        TokenCache::builder().store(store.clone()).build(),
        TokenCache::builder().store(store.clone()).build(),
    );
    let scopes = Scopes::new([tenant.api_default_scope()]).unwrap();
    let (source_a, source_b) = (
        a.client_credentials(&support::daemon(&tenant), &scopes),
        b.client_credentials(&support::daemon(&tenant), &scopes),
    );
    let token = source_a.token().await.unwrap();
    source_b.token().await.unwrap();
    assert_eq!(tenant.total_token_requests(), 1, "b took a's token from the store");
    assert!(source_a.invalidate_if_current(&token));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while source_b.cached().is_some() {
        assert!(
            std::time::Instant::now() < deadline,
            "b still serves the invalidated token"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}
