//! The token cache: O(1) lock-free hits, early single-flight refresh per key, proactive
//! background refresh, bounded size.
//!
//! Each key (authority, client, grant, user, scope set) has one [`Entry`]. A [`TokenSource`]
//! points straight at its entry, so a hit is: one atomic flag load, one `ArcSwap` load, one
//! `Arc` clone. No map lookup, no lock, no clock read.
//!
//! Expiry is not checked on the hit path; each entry's refresher task keeps the `servable`
//! flag honest instead. The task sleeps until the token's refresh window opens (5 min before
//! expiry by default, at most half the lifetime), refreshes in the background while callers
//! keep getting the still-valid token, retries with back-off on failure, and clears the flag
//! when the token actually expires. If the task dies with its runtime, a drop guard clears the
//! flag, so a dead timer can never leave an expired token servable.

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::hash::BuildHasher;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use reqwest::header::HeaderValue;
use tokio::time::Instant;

use crate::client::Client;
use crate::error::{Error, Result};
use crate::grant::GrantKind;
use crate::secret::{Password, RefreshToken};
use crate::token::{Scopes, Token};

/// Default number of keys kept.
const DEFAULT_MAX_ENTRIES: usize = 10_000;
/// Default start of the refresh window before expiry (MSAL uses 5 minutes too).
const DEFAULT_REFRESH_BEFORE: Duration = Duration::from_secs(300);
/// Assumed lifetime of a token whose response said nothing about expiry.
const UNKNOWN_LIFETIME: Duration = Duration::from_secs(300);
/// Never schedule a refresh sooner than this after issue (or half the lifetime, if shorter),
/// whatever lifetimes the server sends: a bogus tiny lifetime must not become a hot loop.
const MIN_REFRESH_INTERVAL: Duration = Duration::from_millis(100);
/// First back-off after a failed background refresh; doubles up to the maximum.
const DEFAULT_RETRY_BACKOFF: Duration = Duration::from_secs(1);
const DEFAULT_MAX_BACKOFF: Duration = Duration::from_secs(60);

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

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

/// A [`TokenStore`] in this process's memory: shares tokens between several [`TokenCache`]s
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
        self.tokens.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
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
    /// Grant, user and sorted scopes.
    rest: Box<str>,
}

impl CacheKey {
    fn new(client: &Client, grant: GrantKind, username: Option<&str>, scopes: &Scopes) -> Self {
        let mut sorted: Vec<&str> = scopes.iter().collect();
        sorted.sort_unstable();
        let rest = format!(
            "{}\n{}\n{}",
            grant.grant_type(),
            username.map(str::to_lowercase).unwrap_or_default(),
            sorted.join(" "),
        );
        Self {
            client: Arc::clone(client.cache_identity()),
            rest: rest.into_boxed_str(),
        }
    }
}

impl fmt::Debug for CacheKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.client.split('\n').chain(self.rest.split('\n')))
            .finish()
    }
}

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
/// use b2c_token::{Client, Scopes, TokenCache};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let tenant = FakeTenant::start().await?;
/// let client = Client::builder(tenant.authority(defaults::SIGNIN_POLICY)?, defaults::CONFIDENTIAL_CLIENT_ID)
///     .client_secret(defaults::CLIENT_SECRET)
///     .build()?;
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

/// What every entry of a cache needs, held once per cache rather than once per entry.
struct Shared {
    config: CacheConfig,
    store: Option<Arc<dyn TokenStore>>,
}

/// The key → entry map, with a CLOCK ring for eviction (an LRU approximation whose hit path
/// only sets a bit).
#[derive(Default)]
struct Index {
    entries: HashMap<CacheKey, Arc<Entry>>,
    ring: Vec<CacheKey>,
    hand: usize,
}

impl Index {
    fn evict_one(&mut self) {
        while !self.ring.is_empty() {
            if self.hand >= self.ring.len() {
                self.hand = 0;
            }
            let key = &self.ring[self.hand];
            match self.entries.get(key) {
                Some(entry) if entry.referenced.swap(false, Ordering::Relaxed) => self.hand += 1,
                _ => {
                    let key = self.ring.swap_remove(self.hand);
                    if let Some(entry) = self.entries.remove(&key) {
                        entry.stop_refresher();
                    }
                    return;
                }
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
        self.source(key, client, scopes, SourceGrant::ClientCredentials)
    }

    /// The token source for a user signed in with ROPC. The password is kept (as a secret)
    /// to sign in again when the refresh token stops working. A later call for the same user
    /// replaces the stored password.
    #[must_use]
    pub fn password(&self, client: &Client, username: &str, password: &Password, scopes: &Scopes) -> TokenSource {
        let key = CacheKey::new(client, GrantKind::Password, Some(username), scopes);
        let grant = SourceGrant::Password {
            username: username.to_owned(),
            password: password.clone(),
        };
        self.source(key, client, scopes, grant)
    }

    fn source(&self, key: CacheKey, client: &Client, scopes: &Scopes, grant: SourceGrant) -> TokenSource {
        let mut index = self
            .inner
            .index
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
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
            scopes: scopes.clone(),
            shared: Arc::clone(&self.inner.shared),
            current: ArcSwapOption::empty(),
            servable: AtomicBool::new(false),
            // Unreferenced until used: a key created and never asked for goes first.
            referenced: AtomicBool::new(false),
            refresher_running: AtomicBool::new(false),
            generation: AtomicU64::new(0),
            grant: Mutex::new(grant),
            refresh: tokio::sync::Mutex::new(RefreshState::default()),
            refresher: Mutex::new(None),
        });
        index.entries.insert(key.clone(), Arc::clone(&entry));
        index.ring.push(key);
        TokenSource { entry }
    }

    /// Drops the cached token for `key` (e.g. after an API rejected it): the next
    /// `token()` fetches a new one.
    pub fn invalidate(&self, key: &CacheKey) {
        let entry = self
            .inner
            .index
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entries
            .get(key)
            .cloned();
        if let Some(entry) = entry {
            entry.invalidate();
        }
    }

    /// The number of keys held.
    #[must_use]
    pub fn len(&self) -> usize {
        self.inner
            .index
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entries
            .len()
    }

    /// Whether no key is held.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the cache holds `key`.
    #[must_use]
    pub fn contains(&self, key: &CacheKey) -> bool {
        self.inner
            .index
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entries
            .contains_key(key)
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

/// A handle on one cached, self-refreshing token. Cheap to clone; `Send + Sync`.
#[derive(Clone)]
pub struct TokenSource {
    entry: Arc<Entry>,
}

impl TokenSource {
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
    fn fetch_boxed(&self) -> BoxFuture<'_, Result<Token>> {
        Box::pin(self.entry.acquire())
    }

    /// Runs `f` on the cached token, if it can be served now, without cloning it: no
    /// reference count is touched, so many threads reading one hot token do not contend.
    /// Keep `f` short; the token cannot be replaced while a thread is inside it.
    #[inline]
    pub fn with_cached<R>(&self, f: impl FnOnce(&Token) -> R) -> Option<R> {
        let entry = &*self.entry;
        // CLOCK reference bit: read first so that hits on a hot key do not keep writing
        // the cache line.
        if !entry.referenced.load(Ordering::Relaxed) {
            entry.referenced.store(true, Ordering::Relaxed);
        }
        if !entry.servable.load(Ordering::Acquire) {
            return None;
        }
        entry.current.load().as_deref().map(f)
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

    /// Drops the cached token if it is `rejected` (the one an API just refused). If another
    /// caller already replaced it, nothing happens: the newer token is kept.
    pub fn invalidate_if_current(&self, rejected: &Token) {
        let current = self.entry.current.load();
        let same = current.as_deref().is_some_and(|token| token.same_as(rejected));
        if same {
            self.entry.invalidate();
        }
    }

    /// The key this source serves.
    #[must_use]
    pub fn key(&self) -> &CacheKey {
        &self.entry.key
    }
}

impl fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenSource")
            .field("key", &self.entry.key)
            .field("servable", &self.entry.servable.load(Ordering::Relaxed))
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
    Fetching(BoxFuture<'a, Result<Token>>),
}

impl Future for TokenFuture<'_> {
    type Output = Result<Token>;

    #[inline]
    fn poll(mut self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<Self::Output> {
        match &mut self.state {
            TokenFutureState::Ready(token) => match token.take() {
                Some(token) => std::task::Poll::Ready(Ok(token)),
                None => std::task::Poll::Ready(Err(Error::config("TokenFuture polled after completion"))),
            },
            TokenFutureState::Fetching(fetch) => fetch.as_mut().poll(cx),
        }
    }
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

/// The original grant of a source, used again when no refresh token works.
#[derive(Clone)]
enum SourceGrant {
    ClientCredentials,
    Password { username: String, password: Password },
}

#[derive(Default)]
struct RefreshState {
    refresh_token: Option<RefreshToken>,
    /// Bumped after every fetch attempt; callers that waited through an attempt take its result.
    generation: u64,
    last_error: Option<Box<Error>>,
}

struct Entry {
    key: CacheKey,
    client: Client,
    scopes: Scopes,
    shared: Arc<Shared>,
    current: ArcSwapOption<Token>,
    /// True while `current` may be served. Set after `current` is stored (Release), read
    /// before it is loaded (Acquire).
    servable: AtomicBool,
    referenced: AtomicBool,
    refresher_running: AtomicBool,
    generation: AtomicU64,
    grant: Mutex<SourceGrant>,
    /// Single flight: every fetch, by a caller or the refresher, holds this.
    refresh: tokio::sync::Mutex<RefreshState>,
    refresher: Mutex<Option<tokio::task::AbortHandle>>,
}

impl Entry {
    fn lock_grant(&self) -> MutexGuard<'_, SourceGrant> {
        self.grant.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn servable_token(&self) -> Option<Token> {
        if self.servable.load(Ordering::Acquire) {
            self.current.load().as_deref().cloned()
        } else {
            None
        }
    }

    fn invalidate(&self) {
        self.servable.store(false, Ordering::Release);
        self.current.store(None);
        if let Some(store) = self.shared.store.clone() {
            let key = self.key.clone();
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(async move { store.remove(&key).await });
            }
        }
    }

    /// The slow path: wait for the fetch in flight or do it.
    async fn acquire(self: &Arc<Self>) -> Result<Token> {
        let seen_generation = self.generation.load(Ordering::Acquire);
        let mut state = self.refresh.lock().await;
        if let Some(token) = self.servable_token() {
            return Ok(token);
        }
        if state.generation != seen_generation {
            if let Some(error) = &state.last_error {
                return Err(Error::clone(error));
            }
        }
        if let Some(token) = self.load_from_store().await {
            self.install(&mut state, token.clone());
            return Ok(token);
        }
        tracing::debug!(key = ?self.key, "token cache miss: fetching");
        let result = self.fetch(&mut state).await;
        self.finish(&mut state, result).await
    }

    /// A stored token that is not yet due for refresh.
    async fn load_from_store(&self) -> Option<Token> {
        let token = self.shared.store.as_ref()?.load(&self.key).await?;
        let (refresh_at, _) = self.schedule(&token);
        (Instant::now() < refresh_at).then_some(token)
    }

    /// One fetch: the refresh token if there is one, the original grant otherwise or when
    /// the refresh token is no longer accepted (`invalid_grant`). Never more than one of each.
    async fn fetch(&self, state: &mut RefreshState) -> Result<Token> {
        if let Some(refresh_token) = state.refresh_token.clone() {
            // Refresh tokens here come from ROPC, a public-client grant: redeem without secret.
            match self.client.refresh(&refresh_token, &self.scopes, true).await {
                Ok(token) => return Ok(token),
                Err(error) if error.is_invalid_grant() => {
                    tracing::debug!(key = ?self.key, code = ?error.b2c_code(), "refresh token rejected: using the original grant");
                    state.refresh_token = None;
                }
                Err(error) => return Err(error),
            }
        }
        let grant = self.lock_grant().clone();
        match grant {
            SourceGrant::ClientCredentials => self.client.acquire_token_by_client_credentials(&self.scopes).await,
            SourceGrant::Password { username, password } => {
                self.client
                    .acquire_token_by_password(&username, &password, &self.scopes)
                    .await
            }
        }
    }

    async fn finish(self: &Arc<Self>, state: &mut RefreshState, result: Result<Token>) -> Result<Token> {
        state.generation += 1;
        self.generation.store(state.generation, Ordering::Release);
        match result {
            Ok(token) => {
                state.last_error = None;
                if let Some(store) = &self.shared.store {
                    store.save(&self.key, &token).await;
                }
                self.install(state, token.clone());
                Ok(token)
            }
            Err(error) => {
                state.last_error = Some(Box::new(error.clone()));
                Err(error)
            }
        }
    }

    fn install(self: &Arc<Self>, state: &mut RefreshState, token: Token) {
        if let Some(refresh_token) = token.refresh_token() {
            // B2C rotates refresh tokens: always keep the newest.
            state.refresh_token = Some(refresh_token.clone());
        }
        let (_, expires_at) = self.schedule(&token);
        let usable = Instant::now() < expires_at;
        self.current.store(Some(Arc::new(token)));
        self.servable.store(usable, Ordering::Release);
        if usable {
            self.ensure_refresher();
        }
    }

    /// When to refresh and when the token expires.
    fn schedule(&self, token: &Token) -> (Instant, Instant) {
        let issued_at = token.issued_at();
        let expires_at = token.expires_at().unwrap_or(issued_at + UNKNOWN_LIFETIME);
        let lifetime = expires_at.saturating_duration_since(issued_at);
        let window = self.shared.config.refresh_before.min(lifetime / 2);
        // Up to a tenth of the window (at most 5 s) earlier, so that many processes started
        // together do not refresh in the same instant.
        let jitter = random_below((window / 10).min(Duration::from_secs(5)));
        let refresh_at = expires_at.checked_sub(window + jitter).unwrap_or(issued_at);
        (
            refresh_at.max(issued_at + MIN_REFRESH_INTERVAL.min(lifetime / 2)),
            expires_at,
        )
    }

    fn ensure_refresher(self: &Arc<Self>) {
        if self.refresher_running.swap(true, Ordering::AcqRel) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            self.refresher_running.store(false, Ordering::Release);
            return;
        };
        // The guard exists before the task is first polled: a runtime dropped before then
        // still clears the flags.
        let guard = RefresherGuard {
            entry: Arc::downgrade(self),
            armed: true,
        };
        let task = runtime.spawn(refresher(guard));
        *self.refresher.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(task.abort_handle());
    }

    fn stop_refresher(&self) {
        if let Some(task) = self
            .refresher
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
        {
            task.abort();
        }
    }
}

impl Drop for Entry {
    fn drop(&mut self) {
        self.stop_refresher();
    }
}

/// Clears the entry's flags if the refresher ends without saying so itself (aborted, or its
/// runtime shut down): nobody watches the expiry any more, so nothing may be served blind.
struct RefresherGuard {
    entry: Weak<Entry>,
    armed: bool,
}

impl Drop for RefresherGuard {
    fn drop(&mut self) {
        if let (true, Some(entry)) = (self.armed, self.entry.upgrade()) {
            entry.servable.store(false, Ordering::Release);
            entry.refresher_running.store(false, Ordering::Release);
        }
    }
}

/// Keeps one entry's token fresh in the background. Holds only a weak reference while
/// sleeping, so a dropped entry ends it.
async fn refresher(mut guard: RefresherGuard) {
    let weak = guard.entry.clone();
    loop {
        let Some(entry) = weak.upgrade() else { return };
        let Some(token) = entry.current.load_full() else {
            // Invalidated: the next caller fetches and starts a new refresher.
            guard.armed = false;
            entry.refresher_running.store(false, Ordering::Release);
            return;
        };
        let (refresh_at, expires_at) = entry.schedule(&token);
        drop(entry);
        tokio::time::sleep_until(refresh_at).await;

        let mut backoff = match weak.upgrade() {
            Some(entry) => entry.shared.config.retry_backoff,
            None => return,
        };
        loop {
            let Some(entry) = weak.upgrade() else { return };
            let mut state = entry.refresh.lock().await;
            let replaced = entry
                .current
                .load()
                .as_deref()
                .is_none_or(|current| !current.same_as(&token));
            if replaced {
                break; // a caller already fetched a newer token: schedule from that one
            }
            tracing::debug!(key = ?entry.key, "proactive refresh");
            // Boxed: an idle refresher should cost a sleeping timer, not a fetch-sized frame.
            let result = Box::pin(entry.fetch(&mut state)).await;
            match Box::pin(entry.finish(&mut state, result)).await {
                Ok(_) => break,
                Err(error) => {
                    let retry_at = Instant::now() + backoff + random_below(backoff / 2);
                    if retry_at >= expires_at {
                        tracing::warn!(key = ?entry.key, %error, "background refresh failed; token expires before the next attempt");
                        drop(state);
                        drop(entry);
                        tokio::time::sleep_until(expires_at).await;
                        let Some(entry) = weak.upgrade() else { return };
                        let _state = entry.refresh.lock().await;
                        if entry
                            .current
                            .load()
                            .as_deref()
                            .is_some_and(|current| current.same_as(&token))
                        {
                            guard.armed = false;
                            entry.servable.store(false, Ordering::Release);
                            entry.refresher_running.store(false, Ordering::Release);
                            return;
                        }
                        break;
                    }
                    tracing::warn!(key = ?entry.key, %error, retry_in = ?(retry_at - Instant::now()), "background refresh failed; still serving the valid token");
                    drop(state);
                    drop(entry);
                    tokio::time::sleep_until(retry_at).await;
                    backoff = (backoff * 2).min(weak.upgrade().map_or(backoff, |e| e.shared.config.max_backoff));
                }
            }
        }
    }
}

/// A duration uniformly below `limit`, from std's per-process random hasher keys (jitter
/// needs no cryptographic randomness, nor another dependency).
fn random_below(limit: Duration) -> Duration {
    let nanos = u64::try_from(limit.as_nanos()).unwrap_or(u64::MAX);
    if nanos == 0 {
        return Duration::ZERO;
    }
    Duration::from_nanos(RandomState::new().hash_one(std::time::SystemTime::now()) % nanos)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_below_stays_below() {
        for _ in 0..1000 {
            assert!(random_below(Duration::from_millis(10)) < Duration::from_millis(10));
        }
        assert_eq!(random_below(Duration::ZERO), Duration::ZERO);
    }
}
