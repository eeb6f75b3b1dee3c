//! What every entry of a cache needs, held once per cache: configuration, the store and its
//! health, the namespace of credential fingerprints, and the schedule.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::schedule::Schedule;
use super::stats::Counters;
use super::store::{StoreNamespace, StoreResult, TokenStore};
use super::CacheConfig;

/// What every entry of a cache needs, held once per cache rather than once per entry.
pub(super) struct Shared {
    pub(super) config: CacheConfig,
    pub(super) store: Option<Arc<dyn TokenStore>>,
    pub(super) schedule: Mutex<Schedule>,
    /// Wakes the scheduler when a deadline earlier than all others arrives.
    pub(super) wake: tokio::sync::Notify,
    /// The keys of credential fingerprints and store key ids: the store's, shared by the
    /// fleet, or this cache's own random ones.
    pub(super) namespace: StoreNamespace,
    /// Whether the store is failing (a warning is logged once per outage), and when it last
    /// failed: while it rests, fetches skip it instead of waiting for it to fail again.
    pub(super) store_down: AtomicBool,
    pub(super) store_failed_at: Mutex<Option<tokio::time::Instant>>,
    /// What the cache did, for `TokenCache::stats`.
    pub(super) counters: Counters,
    /// How long replicas waited for another's fetch (feature `metrics`).
    #[cfg(feature = "metrics")]
    pub(super) metrics: CacheMetrics,
}

/// After a store call fails, fetches leave the store alone this long (then one probes it):
/// during an outage a miss costs the token endpoint only, not a timeout first.
const STORE_REST: Duration = Duration::from_secs(2);

/// The longest the cache waits for any store call (stores set their own, shorter, timeouts;
/// this guards against one that does not).
const STORE_CALL_LIMIT: Duration = Duration::from_secs(2);

impl Shared {
    /// A wait for another replica's fetch ended (with its token, or at the lock's expiry).
    pub(super) fn waited_for_lock(&self, waited: Duration) {
        #[cfg(feature = "metrics")]
        self.metrics
            .lock_wait
            .record(waited.as_secs_f64(), std::slice::from_ref(&self.metrics.name));
        #[cfg(not(feature = "metrics"))]
        let _ = waited;
    }

    /// Runs one store call: `None` if it failed or timed out, which is logged once per outage
    /// and counted; the cache goes on without the store.
    /// Whether the store failed moments ago and is being left alone.
    pub(super) fn store_resting(&self) -> bool {
        self.store_down.load(Ordering::Relaxed)
            && crate::sync::lock(&self.store_failed_at).is_some_and(|at| at.elapsed() < STORE_REST)
    }

    pub(super) async fn store_call<T>(
        &self,
        what: &str,
        call: impl std::future::Future<Output = StoreResult<T>>,
    ) -> Option<T> {
        let result = match tokio::time::timeout(STORE_CALL_LIMIT, call).await {
            Ok(result) => result,
            Err(_) => Err(super::store::StoreError::new(format!("{what} timed out"))),
        };
        match result {
            Ok(value) => {
                if self.store_down.swap(false, Ordering::Relaxed) {
                    tracing::info!("token store is back");
                }
                Some(value)
            }
            Err(error) => {
                *crate::sync::lock(&self.store_failed_at) = Some(tokio::time::Instant::now());
                Counters::add(&self.counters.store_errors);
                if !self.store_down.swap(true, Ordering::Relaxed) {
                    tracing::warn!(%error, "token store failing: carrying on with this process's cache and the token endpoint");
                }
                None
            }
        }
    }
}

/// A cache's synchronous instrument and the name every one of its metrics carries (feature
/// `metrics`); its counts are observed from `Counters` by [`observe`].
#[cfg(feature = "metrics")]
pub(super) struct CacheMetrics {
    pub(super) lock_wait: opentelemetry::metrics::Histogram<f64>,
    pub(super) name: opentelemetry::KeyValue,
}

/// Reports a cache's counters through observable instruments (feature `metrics`): read when
/// the exporter collects, so a hit does nothing it did not already do. The callbacks hold the
/// cache weakly: a dropped cache reports nothing more.
#[cfg(feature = "metrics")]
pub(super) fn observe(meter: &opentelemetry::metrics::Meter, shared: &Arc<Shared>) {
    use opentelemetry::KeyValue;

    use crate::metrics::{CACHE_FETCH_FAILURES, CACHE_LOOKUPS, CACHE_REFRESHES, ERROR_TYPE, STORE_ERRORS};

    fn reading(
        shared: &Arc<Shared>,
        report: impl Fn(&super::stats::CacheStats, &dyn opentelemetry::metrics::AsyncInstrument<u64>)
            + Send
            + Sync
            + 'static,
    ) -> impl Fn(&dyn opentelemetry::metrics::AsyncInstrument<u64>) + Send + Sync + 'static {
        let cache = std::sync::Arc::downgrade(shared);
        move |observer| {
            if let Some(shared) = cache.upgrade() {
                let observer = Named {
                    observer,
                    name: &shared.metrics.name,
                };
                report(&shared.counters.snapshot(), &observer);
            }
        }
    }
    meter
        .u64_observable_counter(CACHE_LOOKUPS)
        .with_unit("{lookup}")
        .with_description("Token cache lookups: hits served without waiting, misses that waited")
        .with_callback(reading(shared, |stats, observer| {
            observer.observe(stats.hits, &[KeyValue::new("b2c_token.cache.result", "hit")]);
            observer.observe(stats.misses, &[KeyValue::new("b2c_token.cache.result", "miss")]);
        }))
        .build();
    meter
        .u64_observable_counter(CACHE_REFRESHES)
        .with_unit("{refresh}")
        .with_description("Background refreshes ahead of expiry, started and failed")
        .with_callback(reading(shared, |stats, observer| {
            observer.observe(stats.refreshes, &[KeyValue::new("b2c_token.refresh.result", "started")]);
            observer.observe(
                stats.refresh_failures,
                &[KeyValue::new("b2c_token.refresh.result", "failed")],
            );
        }))
        .build();
    meter
        .u64_observable_counter(CACHE_FETCH_FAILURES)
        .with_unit("{fetch}")
        .with_description("Cache fetches that ended in an error")
        .with_callback(reading(shared, |stats, observer| {
            observer.observe(stats.throttles, &[KeyValue::new(ERROR_TYPE, "throttled")]);
            observer.observe(
                stats.failures.saturating_sub(stats.throttles),
                &[KeyValue::new(ERROR_TYPE, "_OTHER")],
            );
        }))
        .build();
    meter
        .u64_observable_counter(STORE_ERRORS)
        .with_unit("{error}")
        .with_description("Shared-store calls that failed or timed out")
        .with_callback(reading(shared, |stats, observer| {
            observer.observe(stats.store_errors, &[])
        }))
        .build();
}

/// An observer that adds the cache's name to every observation.
#[cfg(feature = "metrics")]
struct Named<'a> {
    observer: &'a dyn opentelemetry::metrics::AsyncInstrument<u64>,
    name: &'a opentelemetry::KeyValue,
}

#[cfg(feature = "metrics")]
impl opentelemetry::metrics::AsyncInstrument<u64> for Named<'_> {
    fn observe(&self, measurement: u64, attributes: &[opentelemetry::KeyValue]) {
        let mut named = Vec::with_capacity(attributes.len() + 1);
        named.push(self.name.clone());
        named.extend_from_slice(attributes);
        self.observer.observe(measurement, &named);
    }
}
