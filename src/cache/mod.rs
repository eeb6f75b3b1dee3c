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

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use reqwest::header::HeaderValue;
use tokio::time::Instant;

use crate::client::grant::GrantKind;
use crate::client::Client;
use crate::error::{Error, Result};
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
        crate::lock(&self.tokens)
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
    scopes: Scopes,
}

impl CacheKey {
    fn new(client: &Client, grant: GrantKind, username: Option<&str>, scopes: &Scopes) -> Self {
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
    schedule: Mutex<Schedule>,
    /// Wakes the scheduler when a deadline earlier than all others arrives.
    wake: tokio::sync::Notify,
}

/// The deadlines of every entry, and whether a scheduler task is running to honour them.
#[derive(Default)]
struct Schedule {
    deadlines: BinaryHeap<Reverse<Deadline>>,
    running: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Action {
    Refresh,
    Expire,
}

/// Something to do to one entry at one time, if the entry still holds the same token.
struct Deadline {
    at: Instant,
    /// The entry's token generation when this was scheduled: a newer token makes it moot.
    generation: u64,
    action: Action,
    entry: Weak<Entry>,
}

impl PartialEq for Deadline {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == std::cmp::Ordering::Equal
    }
}

impl Eq for Deadline {}

impl PartialOrd for Deadline {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Deadline {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.generation, self.action).cmp(&(other.at, other.generation, other.action))
    }
}

impl Shared {
    fn lock_schedule(&self) -> MutexGuard<'_, Schedule> {
        crate::lock(&self.schedule)
    }

    /// Adds a deadline, starting the scheduler on the current runtime if none runs. `false`
    /// if there is no runtime to run it on: then nothing would watch the token's expiry.
    fn schedule(self: &Arc<Self>, deadline: Deadline) -> bool {
        let mut schedule = self.lock_schedule();
        let earliest = schedule
            .deadlines
            .peek()
            .is_none_or(|Reverse(first)| deadline.at < first.at);
        if !schedule.running {
            let Ok(runtime) = tokio::runtime::Handle::try_current() else {
                return false;
            };
            schedule.running = true;
            schedule.deadlines.push(Reverse(deadline));
            drop(schedule);
            // The guard exists before the task is first polled: a runtime dropped before
            // then still clears the flags.
            runtime.spawn(scheduler(SchedulerGuard {
                shared: Arc::clone(self),
                armed: true,
            }));
            return true;
        }
        schedule.deadlines.push(Reverse(deadline));
        drop(schedule);
        if earliest {
            self.wake.notify_one();
        }
        true
    }
}

/// Ends the schedule if the scheduler task ends without saying so itself (its runtime shut
/// down): nobody watches those expiries any more, so none of those tokens may be served.
struct SchedulerGuard {
    shared: Arc<Shared>,
    armed: bool,
}

impl Drop for SchedulerGuard {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let mut schedule = self.shared.lock_schedule();
        schedule.running = false;
        for Reverse(deadline) in schedule.deadlines.drain() {
            if let Some(entry) = deadline.entry.upgrade() {
                entry.servable.store(false, Ordering::Release);
            }
        }
    }
}

/// One task per cache: sleeps until the earliest deadline (or until an earlier one arrives),
/// then hands due deadlines to short-lived jobs. Ends when no deadline is left.
async fn scheduler(mut guard: SchedulerGuard) {
    let shared = Arc::clone(&guard.shared);
    loop {
        let (due, next) = {
            let mut schedule = shared.lock_schedule();
            let now = Instant::now();
            let mut due = Vec::new();
            while schedule.deadlines.peek().is_some_and(|Reverse(first)| first.at <= now) {
                if let Some(Reverse(deadline)) = schedule.deadlines.pop() {
                    due.push(deadline);
                }
            }
            let next = schedule.deadlines.peek().map(|Reverse(first)| first.at);
            if due.is_empty() && next.is_none() {
                schedule.running = false;
                guard.armed = false;
                return;
            }
            (due, next)
        };
        for deadline in due {
            if let Some(entry) = deadline.entry.upgrade() {
                let job = JobGuard { entry, armed: true };
                tokio::spawn(run_deadline(job, deadline.generation, deadline.action));
            }
        }
        if let Some(at) = next {
            // A notification sent before this wait starts is kept by `Notify`, so an earlier
            // deadline added in between is not missed.
            let _ = tokio::time::timeout_at(at, shared.wake.notified()).await;
        }
    }
}

/// Clears the entry's flag if its job is dropped mid-way (runtime shut down).
struct JobGuard {
    entry: Arc<Entry>,
    armed: bool,
}

impl Drop for JobGuard {
    fn drop(&mut self) {
        if self.armed {
            self.entry.servable.store(false, Ordering::Release);
        }
    }
}

/// Refreshes, or expires, one entry's token if it is still the one the deadline was for.
async fn run_deadline(mut job: JobGuard, generation: u64, action: Action) {
    let entry = Arc::clone(&job.entry);
    let mut state = entry.refresh.lock().await;
    if entry.token_generation.load(Ordering::Acquire) != generation {
        job.armed = false; // a newer token was installed and scheduled its own deadline
        return;
    }
    match action {
        Action::Expire => {
            tracing::debug!(key = ?entry.key, "token expired without a successful refresh");
            entry.servable.store(false, Ordering::Release);
        }
        Action::Refresh => {
            tracing::debug!(key = ?entry.key, "proactive refresh");
            let result = Box::pin(entry.fetch(&mut state)).await;
            if let Err(error) = Box::pin(entry.finish(&mut state, result)).await {
                entry.schedule_retry(&mut state, generation, &error);
            }
        }
    }
    job.armed = false;
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
        crate::lock(&self.inner.index)
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
            generation: AtomicU64::new(0),
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
        entry.with_servable(f)
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
                None => std::task::Poll::Ready(Err(polled_after_completion())),
            },
            TokenFutureState::Fetching(fetch) => fetch.as_mut().poll(cx),
        }
    }
}

#[cold]
#[inline(never)]
fn polled_after_completion() -> Error {
    Error::config("TokenFuture polled after completion")
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
    /// Username and password, behind one pointer so that client-credentials entries, the
    /// common case for daemons, do not carry room for them.
    Password(Arc<(String, Password)>),
}

#[derive(Default)]
struct RefreshState {
    refresh_token: Option<RefreshToken>,
    /// Bumped after every fetch attempt; callers that waited through an attempt take its result.
    generation: u64,
    last_error: Option<Box<Error>>,
    /// Wait before the next background retry; zero until a background refresh fails.
    backoff: Duration,
}

struct Entry {
    key: CacheKey,
    client: Client,
    shared: Arc<Shared>,
    current: ArcSwapOption<Token>,
    /// True while `current` may be served. Set after `current` is stored (Release), read
    /// before it is loaded (Acquire).
    servable: AtomicBool,
    referenced: AtomicBool,
    /// Mirrors `RefreshState::generation` for callers about to wait.
    generation: AtomicU64,
    /// Bumped whenever `current` changes; deadlines carry the value they were made for.
    token_generation: AtomicU64,
    grant: Mutex<SourceGrant>,
    /// Single flight: every fetch, by a caller or a refresh job, holds this.
    refresh: tokio::sync::Mutex<RefreshState>,
}

impl Entry {
    fn lock_grant(&self) -> MutexGuard<'_, SourceGrant> {
        crate::lock(&self.grant)
    }

    /// `f` on the current token if it may be served: the whole hit path, shared by callers
    /// (`TokenSource::with_cached`) and by the slow path's re-check.
    #[inline]
    fn with_servable<R>(&self, f: impl FnOnce(&Token) -> R) -> Option<R> {
        if !self.servable.load(Ordering::Acquire) {
            return None;
        }
        self.current.load().as_deref().map(f)
    }

    fn invalidate(&self) {
        self.servable.store(false, Ordering::Release);
        self.current.store(None);
        self.token_generation.fetch_add(1, Ordering::AcqRel);
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
        if let Some(token) = self.with_servable(Token::clone) {
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
        let (refresh_at, _) = self.refresh_times(&token);
        (Instant::now() < refresh_at).then_some(token)
    }

    /// One fetch: the refresh token if there is one, the original grant otherwise or when
    /// the refresh token is no longer accepted (`invalid_grant`). Never more than one of each.
    async fn fetch(&self, state: &mut RefreshState) -> Result<Token> {
        if let Some(refresh_token) = state.refresh_token.clone() {
            // Refresh tokens here come from ROPC, a public-client grant: redeem without secret.
            match self.client.refresh(&refresh_token, &self.key.scopes, true).await {
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
            SourceGrant::ClientCredentials => self.client.acquire_token_by_client_credentials(&self.key.scopes).await,
            SourceGrant::Password(user) => {
                let (username, password) = &*user;
                self.client
                    .acquire_token_by_password(username, password, &self.key.scopes)
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
                state.backoff = Duration::ZERO;
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
        let (refresh_at, expires_at) = self.refresh_times(&token);
        self.current.store(Some(Arc::new(token)));
        let generation = self.token_generation.fetch_add(1, Ordering::AcqRel) + 1;
        let usable = Instant::now() < expires_at
            && self.shared.schedule(Deadline {
                at: refresh_at,
                generation,
                action: Action::Refresh,
                entry: Arc::downgrade(self),
            });
        self.servable.store(usable, Ordering::Release);
    }

    /// After a failed background refresh: try again after a growing back-off, or, if the
    /// token expires first, stop serving it at its expiry.
    fn schedule_retry(self: &Arc<Self>, state: &mut RefreshState, generation: u64, error: &Error) {
        let config = &self.shared.config;
        let backoff = if state.backoff.is_zero() {
            config.retry_backoff
        } else {
            state.backoff
        };
        state.backoff = (backoff * 2).min(config.max_backoff);
        let retry_at = Instant::now() + backoff + random_below(backoff / 2);
        let expires_at = self
            .current
            .load()
            .as_deref()
            .map_or_else(Instant::now, |token| self.refresh_times(token).1);
        let (at, action) = if retry_at >= expires_at {
            tracing::warn!(key = ?self.key, %error, "background refresh failed; the token expires before the next attempt");
            (expires_at, Action::Expire)
        } else {
            tracing::warn!(key = ?self.key, %error, retry_in = ?backoff, "background refresh failed; still serving the valid token");
            (retry_at, Action::Refresh)
        };
        let entry = Arc::downgrade(self);
        if !self.shared.schedule(Deadline {
            at,
            generation,
            action,
            entry,
        }) {
            self.servable.store(false, Ordering::Release);
        }
    }

    /// When to refresh and when the token expires.
    fn refresh_times(&self, token: &Token) -> (Instant, Instant) {
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
}

/// A duration uniformly below `limit`, for jitter.
fn random_below(limit: Duration) -> Duration {
    limit.mul_f64(crate::client::retry::random_fraction())
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
