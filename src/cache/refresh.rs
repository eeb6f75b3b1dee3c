//! Keeping one entry's token fresh: the entry and its single flight, the one scheduler task
//! per cache that fires refresh and expiry deadlines, and the drop guards that stop serving
//! tokens nobody watches any more. Kept together: split apart they would import each other.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use tokio::time::Instant;

use super::store::{CacheKey, TokenStore};
use super::CacheConfig;
use crate::client::Client;
use crate::error::{Error, Result};
use crate::secret::{Password, RefreshToken};
use crate::token::Token;

/// Assumed lifetime of a token whose response said nothing about expiry.
const UNKNOWN_LIFETIME: Duration = Duration::from_secs(300);
/// Never schedule a refresh sooner than this after issue (or half the lifetime, if shorter),
/// whatever lifetimes the server sends: a bogus tiny lifetime must not become a hot loop.
const MIN_REFRESH_INTERVAL: Duration = Duration::from_millis(100);

/// What every entry of a cache needs, held once per cache rather than once per entry.
pub(super) struct Shared {
    pub(super) config: CacheConfig,
    pub(super) store: Option<Arc<dyn TokenStore>>,
    pub(super) schedule: Mutex<Schedule>,
    /// Wakes the scheduler when a deadline earlier than all others arrives.
    pub(super) wake: tokio::sync::Notify,
}

/// The deadlines of every entry, and whether a scheduler task is running to honour them.
#[derive(Default)]
pub(super) struct Schedule {
    pub(super) deadlines: BinaryHeap<Reverse<Deadline>>,
    pub(super) running: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Action {
    Refresh,
    Expire,
}

/// Something to do to one entry at one time, if the entry still holds the same token.
pub(super) struct Deadline {
    pub(super) at: Instant,
    /// The entry's token generation when this was scheduled: a newer token makes it moot.
    pub(super) generation: u64,
    pub(super) action: Action,
    pub(super) entry: Weak<Entry>,
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
    pub(super) fn lock_schedule(&self) -> MutexGuard<'_, Schedule> {
        crate::sync::lock(&self.schedule)
    }

    /// Adds a deadline, starting the scheduler on the current runtime if none runs. `false`
    /// if there is no runtime to run it on: then nothing would watch the token's expiry.
    pub(super) fn schedule(self: &Arc<Self>, deadline: Deadline) -> bool {
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
pub(super) struct SchedulerGuard {
    pub(super) shared: Arc<Shared>,
    pub(super) armed: bool,
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
pub(super) async fn scheduler(mut guard: SchedulerGuard) {
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
pub(super) struct JobGuard {
    pub(super) entry: Arc<Entry>,
    pub(super) armed: bool,
}

impl Drop for JobGuard {
    fn drop(&mut self) {
        if self.armed {
            self.entry.servable.store(false, Ordering::Release);
        }
    }
}

/// Refreshes, or expires, one entry's token if it is still the one the deadline was for.
pub(super) async fn run_deadline(mut job: JobGuard, generation: u64, action: Action) {
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

/// The original grant of a source, used again when no refresh token works.
#[derive(Clone)]
pub(super) enum SourceGrant {
    ClientCredentials,
    /// Username and password, behind one pointer so that client-credentials entries, the
    /// common case for daemons, do not carry room for them.
    Password(Arc<(String, Password)>),
}

#[derive(Default)]
pub(super) struct RefreshState {
    pub(super) refresh_token: Option<RefreshToken>,
    /// Bumped after every fetch attempt; callers that waited through an attempt take its result.
    pub(super) fetch_generation: u64,
    pub(super) last_error: Option<Box<Error>>,
    /// Wait before the next background retry; zero until a background refresh fails.
    pub(super) backoff: Duration,
}

pub(super) struct Entry {
    pub(super) key: CacheKey,
    pub(super) client: Client,
    pub(super) shared: Arc<Shared>,
    pub(super) current: ArcSwapOption<Token>,
    /// True while `current` may be served. Set after `current` is stored (Release), read
    /// before it is loaded (Acquire).
    pub(super) servable: AtomicBool,
    pub(super) referenced: AtomicBool,
    /// Mirrors `RefreshState::fetch_generation` for callers about to wait.
    pub(super) fetch_generation: AtomicU64,
    /// Bumped whenever `current` changes; deadlines carry the value they were made for.
    pub(super) token_generation: AtomicU64,
    pub(super) grant: Mutex<SourceGrant>,
    /// Single flight: every fetch, by a caller or a refresh job, holds this.
    pub(super) refresh: tokio::sync::Mutex<RefreshState>,
}

impl Entry {
    pub(super) fn lock_grant(&self) -> MutexGuard<'_, SourceGrant> {
        crate::sync::lock(&self.grant)
    }

    /// `f` on the current token if it may be served: the whole hit path, shared by callers
    /// (`TokenSource::with_cached`) and by the slow path's re-check.
    #[inline]
    pub(super) fn with_servable<R>(&self, f: impl FnOnce(&Token) -> R) -> Option<R> {
        if !self.servable.load(Ordering::Acquire) {
            return None;
        }
        self.current.load().as_deref().map(f)
    }

    pub(super) fn invalidate(&self) {
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
    pub(super) async fn acquire(self: &Arc<Self>) -> Result<Token> {
        let seen_generation = self.fetch_generation.load(Ordering::Acquire);
        let mut state = self.refresh.lock().await;
        if let Some(token) = self.with_servable(Token::clone) {
            return Ok(token);
        }
        if state.fetch_generation != seen_generation {
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
    pub(super) async fn load_from_store(&self) -> Option<Token> {
        let token = self.shared.store.as_ref()?.load(&self.key).await?;
        let (refresh_at, _) = self.refresh_times(&token);
        (Instant::now() < refresh_at).then_some(token)
    }

    /// One fetch: the refresh token if there is one, the original grant otherwise or when
    /// the refresh token is no longer accepted (`invalid_grant`). Never more than one of each.
    pub(super) async fn fetch(&self, state: &mut RefreshState) -> Result<Token> {
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

    pub(super) async fn finish(self: &Arc<Self>, state: &mut RefreshState, result: Result<Token>) -> Result<Token> {
        state.fetch_generation += 1;
        self.fetch_generation.store(state.fetch_generation, Ordering::Release);
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

    pub(super) fn install(self: &Arc<Self>, state: &mut RefreshState, token: Token) {
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
    pub(super) fn schedule_retry(self: &Arc<Self>, state: &mut RefreshState, generation: u64, error: &Error) {
        let config = &self.shared.config;
        let backoff = if state.backoff.is_zero() {
            config.retry_backoff
        } else {
            state.backoff
        };
        state.backoff = (backoff * 2).min(config.max_backoff);
        let retry_at = Instant::now() + backoff + crate::jitter::random_below(backoff / 2);
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
    pub(super) fn refresh_times(&self, token: &Token) -> (Instant, Instant) {
        let issued_at = token.issued_at();
        let expires_at = token.expires_at().unwrap_or(issued_at + UNKNOWN_LIFETIME);
        let lifetime = expires_at.saturating_duration_since(issued_at);
        let window = self.shared.config.refresh_before.min(lifetime / 2);
        // Up to a tenth of the window (at most 5 s) earlier, so that many processes started
        // together do not refresh in the same instant.
        let jitter = crate::jitter::random_below((window / 10).min(Duration::from_secs(5)));
        let refresh_at = expires_at.checked_sub(window + jitter).unwrap_or(issued_at);
        (
            refresh_at.max(issued_at + MIN_REFRESH_INTERVAL.min(lifetime / 2)),
            expires_at,
        )
    }
}
