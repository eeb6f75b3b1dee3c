//! Where tokens live beyond one cache entry: the [`TokenStore`] contract, the in-process
//! [`MemoryStore`], and the [`CacheKey`] that names what a token is for.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::client::grant::GrantKind;
use crate::client::Client;
use crate::scope::Scopes;
use crate::token::Token;

pub(crate) type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Where tokens are shared beyond one cache: e.g. between replicas of a service, so that one
/// refresh serves them all. The cache consults the store before going to the network and
/// saves every token it fetches. Without a store, the cache's own entries are the only copy.
///
/// Implementations must be cheap on `load` failures (return `None`) and must never log tokens.
pub trait TokenStore: Send + Sync + 'static {
    /// A stored token for the key, if any.
    fn load<'a>(&'a self, key: &'a CacheKey) -> BoxFuture<'a, Option<Token>>;
    /// Stores a token for the key, replacing any other.
    fn save<'a>(&'a self, key: &'a CacheKey, token: &'a Token) -> BoxFuture<'a, ()>;
    /// Forgets the key's token (after the API rejected it).
    fn remove<'a>(&'a self, key: &'a CacheKey) -> BoxFuture<'a, ()>;
}

/// A [`TokenStore`] in this process's memory: shares tokens between several [`TokenCache`](super::TokenCache)s
/// (for example one per tenant-facing component), and is the template for a shared store.
#[derive(Default)]
pub struct MemoryStore {
    tokens: Mutex<HashMap<CacheKey, Token>>,
}

impl MemoryStore {
    /// An empty store.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    fn tokens(&self) -> MutexGuard<'_, HashMap<CacheKey, Token>> {
        crate::sync::lock(&self.tokens)
    }
}

impl TokenStore for MemoryStore {
    fn load<'a>(&'a self, key: &'a CacheKey) -> BoxFuture<'a, Option<Token>> {
        let token = self.tokens().get(key).cloned();
        Box::pin(async move { token })
    }

    fn save<'a>(&'a self, key: &'a CacheKey, token: &'a Token) -> BoxFuture<'a, ()> {
        self.tokens().insert(key.clone(), token.clone());
        Box::pin(async {})
    }

    fn remove<'a>(&'a self, key: &'a CacheKey) -> BoxFuture<'a, ()> {
        self.tokens().remove(key);
        Box::pin(async {})
    }
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryStore")
            .field("len", &self.tokens().len())
            .finish()
    }
}

/// What a cache entry is for: token endpoint, client, grant, user and sorted scope set.
///
/// Compared case-insensitively where B2C is (endpoint with policy, username), scopes
/// order-insensitively. Holds no secret.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct CacheKey {
    /// Endpoint and client ID: one allocation shared by every key of a client.
    client: Arc<str>,
    grant: GrantKind,
    /// Lower-cased username for ROPC.
    user: Option<Box<str>>,
    /// Sorted: the set is what matters. Also what the entry sends.
    pub(super) scopes: Scopes,
}

impl CacheKey {
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
