//! [`CacheStats`]: what a cache did, for the metrics library a service already uses.
//!
//! Hits are counted on the hit path without a locked instruction ([`StripedCounter`]): two
//! threads that hit in the same nanoseconds can lose a count; every other counter is exact.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::striped::StripedCounter;

/// A snapshot of a [`TokenCache`](super::TokenCache)'s counters since it was built.
///
/// ```
/// let stats = b2c_token::TokenCache::new().stats();
/// assert_eq!(stats.hits + stats.misses, 0);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CacheStats {
    /// Tokens served from the cache without waiting (approximate under heavy contention, see
    /// the module docs).
    pub hits: u64,
    /// Calls that found no servable token and waited for a fetch, the store, or a remembered
    /// failure.
    pub misses: u64,
    /// Background refreshes started ahead of expiry.
    pub refreshes: u64,
    /// Fetches that failed (each one, however many callers shared it).
    pub failures: u64,
    /// Of those, the ones the token endpoint throttled.
    pub throttles: u64,
    /// Store calls that failed or timed out (each cost only sharing).
    pub store_errors: u64,
    /// Of the background refreshes, the ones that failed (the token was still valid; the
    /// refresh is retried after a back-off).
    pub refresh_failures: u64,
}

#[derive(Default)]
pub(super) struct Counters {
    hits: StripedCounter,
    pub(super) misses: AtomicU64,
    pub(super) refreshes: AtomicU64,
    pub(super) failures: AtomicU64,
    pub(super) throttles: AtomicU64,
    pub(super) store_errors: AtomicU64,
    pub(super) refresh_failures: AtomicU64,
}

impl Counters {
    #[inline]
    pub(super) fn hit(&self) {
        self.hits.add_one();
    }

    pub(super) fn add(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn snapshot(&self) -> CacheStats {
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        CacheStats {
            hits: self.hits.sum(),
            misses: load(&self.misses),
            refreshes: load(&self.refreshes),
            failures: load(&self.failures),
            throttles: load(&self.throttles),
            store_errors: load(&self.store_errors),
            refresh_failures: load(&self.refresh_failures),
        }
    }
}
