//! [`CacheStats`]: what a cache did, for the metrics library a service already uses.
//!
//! Hits are counted on the hit path without a locked instruction: each thread adds to one of
//! 16 cache-line-sized stripes (chosen from the address of a thread-local), with a plain load
//! and store. Two threads that share a stripe and hit in the same nanoseconds can lose a count;
//! every other counter is exact.

use std::sync::atomic::{AtomicU64, Ordering};

const STRIPES: usize = 16;

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

#[repr(align(128))]
#[derive(Default)]
struct Stripe(AtomicU64);

#[derive(Default)]
pub(super) struct Counters {
    hits: [Stripe; STRIPES],
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
        let stripe = &self.hits[stripe_index()].0;
        // Not `fetch_add`: a locked instruction would cost more than the rest of a hit.
        stripe.store(stripe.load(Ordering::Relaxed).wrapping_add(1), Ordering::Relaxed);
    }

    pub(super) fn add(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn snapshot(&self) -> CacheStats {
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        CacheStats {
            hits: self.hits.iter().map(|stripe| load(&stripe.0)).sum(),
            misses: load(&self.misses),
            refreshes: load(&self.refreshes),
            failures: load(&self.failures),
            throttles: load(&self.throttles),
            store_errors: load(&self.store_errors),
            refresh_failures: load(&self.refresh_failures),
        }
    }
}

/// This thread's stripe: a hash of the address of a thread-local, which differs per thread.
#[inline]
fn stripe_index() -> usize {
    thread_local!(static ANCHOR: u8 = const { 0 });
    let address = ANCHOR.with(|anchor| std::ptr::from_ref(anchor) as usize);
    (address.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 58) % STRIPES
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hits_from_many_threads_add_up() {
        let counters = std::sync::Arc::new(Counters::default());
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let counters = std::sync::Arc::clone(&counters);
                std::thread::spawn(move || {
                    for _ in 0..1000 {
                        counters.hit();
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        let hits = counters.snapshot().hits;
        // Exact unless two threads landed on one stripe and raced.
        assert!((1000..=4000).contains(&hits), "{hits}");
    }
}
