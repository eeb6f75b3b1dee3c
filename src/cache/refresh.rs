//! Keeping one entry's token fresh: the entry and its single flight, the credential binding
//! and the failure memory.
//!
//! Promises kept here (each attacked by a test in `tests/it/cache_attacks.rs`):
//! * a token is served only to a source whose credential (password, client secret) has the
//!   same keyed fingerprint as the one that earned it; a mismatch is a miss that fetches with
//!   the source's own credential and changes the entry only if that fetch succeeds;
//! * after a failed fetch, the same credential gets the remembered error, without a request,
//!   for a back-off window that doubles up to the configured maximum;
//! * a key fetches at most once per [`MIN_FETCH_INTERVAL`] for tokens that live less than
//!   that, and callers that waited through a fetch share its result;
//! * only entries read since their last refresh are refreshed ahead of expiry (`schedule.rs`).

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use tokio::time::Instant;
use tracing::Instrument as _;

use super::credential::{Credential, SourceGrant};
use super::failure_memory::{Failure, Outcome, RefreshState, MAX_REMEMBERED_FAILURES};
use super::rejections::Rejections;
use super::schedule::{Action, Deadline};
use super::shared::Shared;
use super::stats::Counters;
use super::store::{CacheKey, StoreKey, StoredToken};
use crate::clock::Expiry;
use crate::error::{Error, Result};
use crate::token::Token;

/// Assumed lifetime of a token whose response said nothing about expiry.
const UNKNOWN_LIFETIME: Duration = Duration::from_secs(300);
/// Never schedule a refresh sooner than this after issue (or half the lifetime, if shorter),
/// whatever lifetimes the server sends: a bogus tiny lifetime must not become a hot loop.
const MIN_REFRESH_INTERVAL: Duration = Duration::from_millis(100);
/// A key asks the token endpoint at most once per this interval for one credential, however
/// short-lived (or already expired) the tokens it gets back.
pub(super) const MIN_FETCH_INTERVAL: Duration = Duration::from_secs(1);
/// A token as served: with the fingerprint of the credential that earned it and its expiry
/// on the hit path's clocks, swapped in and out as one.
pub(super) struct Installed {
    pub(super) token: Token,
    pub(super) fingerprint: u64,
    pub(super) expiry: Expiry,
    /// The version of this token in the store (what `remove_if` compares).
    pub(super) version: u64,
}

// `repr(C)`, hot fields first: a hit reads `current`, the two bits and `shared` (for the hit
// counter), and they share a cache line instead of falling wherever the compiler puts them
// (after a network round trip, each line a hit touches is likely a miss).
#[repr(C)]
pub(super) struct Entry {
    pub(super) current: ArcSwapOption<Installed>,
    pub(super) shared: Arc<Shared>,
    /// CLOCK reference bit for eviction.
    pub(super) referenced: AtomicBool,
    /// Read since the last refresh: only such entries are refreshed ahead of expiry.
    pub(super) read: AtomicBool,
    /// Mirrors `RefreshState::fetch_generation` for callers about to wait.
    pub(super) fetch_generation: AtomicU64,
    /// Bumped whenever `current` changes; deadlines carry the value they were made for.
    pub(super) token_generation: AtomicU64,
    /// Bumped by `invalidate`: failures remembered before it are forgotten.
    pub(super) invalidations: AtomicU64,
    pub(super) key: CacheKey,
    /// The key as the store knows it, when there is a store. Boxed: a `u128` inline would
    /// cost every entry 32 bytes (and align it to 16) in caches without a store.
    pub(super) store_key: Option<Box<StoreKey>>,
    /// The credential that earned the current token: background refreshes use it.
    pub(super) credential: Mutex<Option<Arc<Credential>>>,
    /// When an API's rejection last forced a refresh (see `invalidate_rejected`), and the
    /// store versions of invalidated tokens, never adopted again while they live.
    pub(super) rejections: Mutex<Rejections>,
    /// Single flight: every fetch, by a caller or a refresh job, holds this.
    pub(super) refresh: tokio::sync::Mutex<RefreshState>,
    /// Why the entry holds no token, for the fetch span: a [`Vacancy`] as its `u8`.
    pub(super) vacancy: AtomicU8,
}

/// Why an entry holds no token (what a miss's span reports as its reason).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u8)]
pub(super) enum Vacancy {
    /// Never held one (or evicted with the entry).
    Empty = 0,
    /// Its token expired (unread, so not refreshed ahead).
    Expired = 1,
    /// Dropped by `TokenCache::invalidate` or another replica's invalidation.
    Invalidated = 2,
    /// Dropped because an API answered 401 to it.
    Rejected = 3,
}

impl Vacancy {
    fn as_str(self) -> &'static str {
        match self {
            Self::Empty => "miss",
            Self::Expired => "expired",
            Self::Invalidated => "invalidated",
            Self::Rejected => "rejected_by_api",
        }
    }

    fn from_u8(value: u8) -> Self {
        [Self::Empty, Self::Expired, Self::Invalidated, Self::Rejected]
            .into_iter()
            .find(|vacancy| *vacancy as u8 == value)
            .unwrap_or(Self::Empty)
    }
}

/// The span of one fetch of a cache entry: why it was made (`reason`: `miss`, `expired`,
/// `invalidated`, `rejected_by_api`, `other_credential` on a call, `proactive_refresh` ahead
/// of expiry), for which grant, and, recorded as it goes, how many attempts it took, the last
/// request's `client-request-id` (`correlation_id`) and its `outcome`.
pub(super) fn fetch_span(key: &CacheKey, reason: &'static str) -> tracing::Span {
    tracing::info_span!(
        "b2c_token.fetch",
        grant = key.grant.grant_type(),
        reason,
        attempts = tracing::field::Empty,
        correlation_id = tracing::field::Empty,
        outcome = tracing::field::Empty,
    )
}

/// Records a fetch's result on its span: `token`, or the error's kind.
pub(super) fn record_outcome(span: &tracing::Span, result: &Result<Token>) {
    span.record(
        "outcome",
        match result {
            Ok(_) => "token",
            Err(error) => error.kind(),
        },
    );
}

impl Entry {
    pub(super) fn new(key: CacheKey, shared: Arc<Shared>) -> Self {
        Self {
            store_key: shared
                .store
                .as_ref()
                .map(|_| Box::new(shared.namespace.store_key(&key))),
            key,
            shared,
            current: ArcSwapOption::empty(),
            // Unreferenced until used: a key created and never asked for goes first.
            referenced: AtomicBool::new(false),
            read: AtomicBool::new(false),
            fetch_generation: AtomicU64::new(0),
            token_generation: AtomicU64::new(0),
            invalidations: AtomicU64::new(0),
            credential: Mutex::new(None),
            rejections: Mutex::new(Rejections::default()),
            refresh: tokio::sync::Mutex::new(RefreshState::default()),
            vacancy: AtomicU8::new(Vacancy::Empty as u8),
        }
    }

    pub(super) fn credential(&self) -> Option<Arc<Credential>> {
        crate::sync::lock(&self.credential).clone()
    }

    /// `f` on the current token if it may be served to a source with `fingerprint`: the
    /// whole hit path, shared by callers (`TokenSource::with_cached`) and by the slow
    /// path's re-check. Expiry is checked here, on every hit, so that nothing depends on
    /// the scheduler having run.
    #[inline]
    pub(super) fn with_servable<R>(&self, fingerprint: u64, f: impl FnOnce(&Token) -> R) -> Option<R> {
        let current = self.current.load();
        let installed = current.as_deref()?;
        // One word compared with one instruction: no early exit that could leak timing.
        if installed.fingerprint != fingerprint || !installed.expiry.is_live() {
            return None;
        }
        Some(f(&installed.token))
    }

    /// Whether `token` is the one currently installed.
    /// Whether the token installed was earned by another credential than `fingerprint`'s.
    pub(super) fn holds_another_credentials(&self, fingerprint: u64) -> bool {
        self.current
            .load()
            .as_deref()
            .is_some_and(|installed| installed.fingerprint != fingerprint)
    }

    pub(super) fn holds(&self, token: &Token) -> bool {
        self.current
            .load()
            .as_deref()
            .is_some_and(|installed| installed.token.same_as(token))
    }

    /// Stops serving the current token (it expired unrefreshed).
    /// Retires the token, remembering why (for the next miss's span).
    pub(super) fn vacate(&self, why: Vacancy) {
        self.vacancy.store(why as u8, Ordering::Relaxed);
        self.retire();
    }

    /// Why the next fetch for `fingerprint` is needed.
    fn miss_reason(&self, fingerprint: u64) -> &'static str {
        match self.current.load().as_deref() {
            Some(installed) if installed.fingerprint != fingerprint => "other_credential",
            Some(_) => Vacancy::Expired.as_str(),
            None => Vacancy::from_u8(self.vacancy.load(Ordering::Relaxed)).as_str(),
        }
    }

    pub(super) fn retire(&self) {
        self.current.store(None);
        self.token_generation.fetch_add(1, Ordering::AcqRel);
    }

    /// Drops the token and forgets remembered failures: the next call fetches. With a store,
    /// the stored copy goes too if it is still this token (a newer one another replica wrote
    /// stays), and the other replicas are told to drop theirs.
    pub(super) fn invalidate(self: &Arc<Self>) {
        let version = self.current.load().as_deref().map(|installed| installed.version);
        self.forget();
        let (Some(_), Some(version)) = (&self.shared.store, version) else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let entry = Arc::clone(self);
        runtime.spawn(async move {
            let (Some(store), Some(key)) = (&entry.shared.store, &entry.store_key) else {
                return;
            };
            entry
                .shared
                .store_call("remove_if", store.remove_if(key, version))
                .await;
            entry
                .shared
                .store_call("publish", store.publish_invalidation(key))
                .await;
        });
    }

    /// Drops the token and forgets remembered failures, in this process only (another
    /// replica's invalidation arriving).
    pub(super) fn forget(&self) {
        self.invalidations.fetch_add(1, Ordering::AcqRel);
        if let Some(installed) = self.current.load().as_deref() {
            // Whoever invalidated it, this token is not to come back from a store (replayed
            // by a writer, or saved again by a replica that missed the news).
            let until = installed
                .token
                .expires_at()
                .unwrap_or_else(|| Instant::now() + UNKNOWN_LIFETIME);
            crate::sync::lock(&self.rejections).remember(installed.version, until);
        }
        self.vacate(Vacancy::Invalidated);
    }

    /// Whether the token stored as `version` was invalidated while it lives.
    pub(super) fn was_rejected(&self, version: u64) -> bool {
        crate::sync::lock(&self.rejections).contains(version)
    }

    /// An API rejected `token`. Drops it if it is still current, unless a rejection already
    /// forced a refresh within `cooldown`: then the fresh token is not the problem, and
    /// dropping it again would only drain the token endpoint. Returns whether asking the
    /// source again can give a different token.
    pub(super) fn invalidate_rejected(self: &Arc<Self>, token: &Token, cooldown: Duration) -> bool {
        if !self.holds(token) {
            return true; // already replaced by another caller
        }
        let mut rejections = crate::sync::lock(&self.rejections);
        if rejections.forced_at.is_some_and(|at| at.elapsed() < cooldown) {
            tracing::debug!(key = ?self.key, "the API rejected a token fetched moments ago: keeping it");
            return false;
        }
        rejections.forced_at = Some(Instant::now());
        drop(rejections);
        self.invalidate();
        self.vacancy.store(Vacancy::Rejected as u8, Ordering::Relaxed);
        true
    }

    /// The slow path: wait for the fetch in flight or do it, for this source's credential.
    pub(super) async fn acquire(self: &Arc<Self>, credential: &Arc<Credential>) -> Result<Token> {
        let fingerprint = credential.fingerprint;
        Counters::add(&self.shared.counters.misses);
        let seen_generation = self.fetch_generation.load(Ordering::Acquire);
        let mut state = self.refresh.lock().await;
        if let Some(token) = self.with_servable(fingerprint, Token::clone) {
            return Ok(token);
        }
        if state.fetch_generation != seen_generation {
            // A fetch finished while this caller waited: take its result, token or error,
            // even a token that is already unservable (it is what the server gave).
            if let Some(last) = state.last.as_ref().filter(|last| last.fingerprint == fingerprint) {
                return last.result.clone().map_err(|error| *error);
            }
        }
        let now = Instant::now();
        let epoch = self.invalidations.load(Ordering::Acquire);
        let remembered = state
            .failures()
            .iter()
            .find(|failure| failure.fingerprint == fingerprint && failure.epoch == epoch && now < failure.until);
        if let Some(failure) = remembered {
            return Err(failure.error.clone());
        }
        if let Some((_, next, _)) = state
            .short_lived()
            .filter(|&(fp, _, short_epoch)| fp == fingerprint && short_epoch == epoch)
        {
            if now < next {
                return Err(Error::UnusableToken(format!(
                    "the token endpoint issued a token with no usable lifetime (expires_in 0, or an expiry already past): not asking again for {} ms; check the server's token lifetime and the clocks",
                    next.saturating_duration_since(now).as_millis()
                )));
            }
        }
        let reason = self.miss_reason(fingerprint);
        tracing::debug!(key = ?self.key, reason, "token cache miss: fetching");
        let span = fetch_span(&self.key, reason);
        let result = self.fetch_shared(&mut state, credential).instrument(span.clone()).await;
        record_outcome(&span, &result);
        result
    }

    /// One fetch with `credential`: its refresh token if it has one, the original grant
    /// otherwise or when the refresh token is no longer accepted (`invalid_grant`). Never
    /// more than one of each. Another credential's refresh token is never used: it would
    /// give a token without checking this credential.
    pub(super) async fn fetch(&self, state: &mut RefreshState, credential: &Credential) -> Result<Token> {
        let refresh_token = state
            .refresh_token
            .as_ref()
            .filter(|(fingerprint, _)| *fingerprint == credential.fingerprint)
            .map(|(_, token)| token.clone());
        if let Some(refresh_token) = refresh_token {
            // Refresh tokens here come from ROPC, a public-client grant: redeem without secret.
            match credential.client.refresh(&refresh_token, &self.key.scopes, true).await {
                Ok(token) => return Ok(token),
                Err(error) if error.is_invalid_grant() => {
                    tracing::debug!(key = ?self.key, code = ?error.b2c_code(), "refresh token rejected: using the original grant");
                    state.refresh_token = None;
                }
                Err(error) => return Err(error),
            }
        }
        match &credential.grant {
            SourceGrant::ClientCredentials => {
                credential
                    .client
                    .acquire_token_by_client_credentials(&self.key.scopes)
                    .await
            }
            SourceGrant::Password { username, password } => {
                credential
                    .client
                    .acquire_token_by_password(username, password, &self.key.scopes)
                    .await
            }
        }
    }

    pub(super) async fn finish(
        self: &Arc<Self>,
        state: &mut RefreshState,
        credential: &Arc<Credential>,
        result: Result<Token>,
    ) -> Result<Token> {
        let fingerprint = credential.fingerprint;
        let now = Instant::now();
        let epoch = self.invalidations.load(Ordering::Acquire);
        state.fetch_generation += 1;
        self.fetch_generation.store(state.fetch_generation, Ordering::Release);
        state.last = Some(Outcome {
            fingerprint,
            result: result.clone().map_err(Box::new),
        });
        match result {
            Ok(token) => {
                let lifetime = token
                    .expires_at()
                    .map_or(UNKNOWN_LIFETIME, |at| at.saturating_duration_since(token.issued_at()));
                state.succeeded(
                    fingerprint,
                    (lifetime < MIN_FETCH_INTERVAL).then_some((fingerprint, now + MIN_FETCH_INTERVAL, epoch)),
                );
                // The stored form (a copy of every secret) is made only when there is a store
                // to save it to; without one, the version that compare-and-delete uses is moot.
                let mut version = 0;
                if let (Some(store), Some(key)) = (&self.shared.store, &self.store_key) {
                    // Stored under the identity the credential proves now (for an assertion,
                    // what it asserts); one that cannot say is not shared.
                    if !self.shared.store_resting() {
                        if let Ok(proven) = credential.proven(&self.shared.namespace).await {
                            let stored = StoredToken::from_token(&token, proven, UNKNOWN_LIFETIME);
                            version = stored.version();
                            self.shared.store_call("save", store.save(key, &stored)).await;
                        }
                    }
                }
                self.install_versioned(state, credential, token.clone(), version);
                Ok(token)
            }
            Err(error) => {
                Counters::add(&self.shared.counters.failures);
                if error.retry_advice() == crate::error::b2c_code::RetryAdvice::Throttled {
                    Counters::add(&self.shared.counters.throttles);
                }
                let config = &self.shared.config;
                let failures = &mut state.trouble_mut().failures;
                let previous = failures
                    .iter()
                    .position(|failure| failure.fingerprint == fingerprint && failure.epoch == epoch)
                    .map(|at| failures.remove(at));
                let backoff = previous.map_or(config.retry_backoff, |failure| {
                    failure.backoff.saturating_mul(2).min(config.max_backoff)
                });
                if failures.len() >= MAX_REMEMBERED_FAILURES {
                    failures.remove(0);
                }
                failures.push(Failure {
                    fingerprint,
                    epoch,
                    error: error.clone(),
                    until: now + backoff + crate::jitter::random_below(backoff / 2),
                    backoff,
                });
                Err(error)
            }
        }
    }

    pub(super) fn install_versioned(
        self: &Arc<Self>,
        state: &mut RefreshState,
        credential: &Arc<Credential>,
        token: Token,
        version: u64,
    ) {
        let fingerprint = credential.fingerprint;
        match token.refresh_token() {
            // B2C rotates refresh tokens: always keep the newest.
            Some(refresh_token) => state.refresh_token = Some((fingerprint, refresh_token.clone())),
            None if state
                .refresh_token
                .as_ref()
                .is_some_and(|(owner, _)| *owner != fingerprint) =>
            {
                state.refresh_token = None;
            }
            None => {}
        }
        let (refresh_at, expires_at) = self.refresh_times(&token);
        let remaining = expires_at.saturating_duration_since(Instant::now());
        let expiry = if remaining.is_zero() {
            Expiry::EXPIRED
        } else {
            Expiry::after(remaining)
        };
        *crate::sync::lock(&self.credential) = Some(Arc::clone(credential));
        self.current.store(Some(Arc::new(Installed {
            token,
            fingerprint,
            expiry,
            version,
        })));
        let generation = self.token_generation.fetch_add(1, Ordering::AcqRel) + 1;
        if !remaining.is_zero() {
            self.shared.schedule(Deadline {
                at: refresh_at,
                generation,
                action: Action::Refresh,
                entry: Arc::downgrade(self),
            });
        }
    }

    /// Retires the token at its expiry (on tokio's clock, which tests can move).
    pub(super) fn schedule_expiry(self: &Arc<Self>, generation: u64) {
        let expires_at = self
            .current
            .load()
            .as_deref()
            .map(|installed| self.refresh_times(&installed.token).1);
        if let Some(at) = expires_at {
            self.shared.schedule(Deadline {
                at,
                generation,
                action: Action::Expire,
                entry: Arc::downgrade(self),
            });
        }
    }

    /// After a failed background refresh: try again after a growing back-off, or, if the
    /// token expires first, retire it at its expiry.
    pub(super) fn schedule_retry(self: &Arc<Self>, state: &mut RefreshState, generation: u64, error: &Error) {
        let config = &self.shared.config;
        let trouble = state.trouble_mut();
        let backoff = if trouble.backoff.is_zero() {
            config.retry_backoff
        } else {
            trouble.backoff
        };
        trouble.backoff = backoff.saturating_mul(2).min(config.max_backoff);
        // The builder caps back-offs at a day, so this cannot overflow an Instant.
        let retry_at = Instant::now() + backoff + crate::jitter::random_below(backoff / 2);
        let Some(expires_at) = self
            .current
            .load()
            .as_deref()
            .map(|installed| self.refresh_times(&installed.token).1)
        else {
            return;
        };
        let (at, action) = if retry_at >= expires_at {
            tracing::warn!(key = ?self.key, %error, "background refresh failed; the token expires before the next attempt");
            (expires_at, Action::Expire)
        } else {
            tracing::warn!(key = ?self.key, %error, retry_in = ?backoff, "background refresh failed; still serving the valid token");
            // The demand that triggered this refresh still stands.
            self.read.store(true, Ordering::Relaxed);
            (retry_at, Action::Refresh)
        };
        self.shared.schedule(Deadline {
            at,
            generation,
            action,
            entry: Arc::downgrade(self),
        });
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
