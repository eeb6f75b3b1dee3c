//! [`StripedCounter`]: a count kept on a hot path without a locked instruction.
//!
//! Each thread adds to one of 16 cache-line-sized stripes (chosen from the address of a
//! thread-local) with a plain load and store: a `fetch_add` would cost more than the rest of a
//! cache hit or a remembered token's validation. Two threads that share a stripe and count in
//! the same nanoseconds can lose a count; readers sum the stripes.

use std::sync::atomic::{AtomicU64, Ordering};

const STRIPES: usize = 16;

#[repr(align(128))]
#[derive(Default)]
struct Stripe(AtomicU64);

/// An approximate counter for hot paths (see the module docs).
#[derive(Default)]
pub(crate) struct StripedCounter([Stripe; STRIPES]);

impl StripedCounter {
    #[inline]
    pub(crate) fn add_one(&self) {
        let stripe = &self.0[stripe_index()].0;
        stripe.store(stripe.load(Ordering::Relaxed).wrapping_add(1), Ordering::Relaxed);
    }

    pub(crate) fn sum(&self) -> u64 {
        self.0.iter().map(|stripe| stripe.0.load(Ordering::Relaxed)).sum()
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
    use super::StripedCounter;

    #[test]
    fn counts_from_many_threads_add_up() {
        let counter = std::sync::Arc::new(StripedCounter::default());
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let counter = std::sync::Arc::clone(&counter);
                std::thread::spawn(move || {
                    for _ in 0..1000 {
                        counter.add_one();
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        // Exact unless two threads landed on one stripe and raced.
        assert!((1000..=4000).contains(&counter.sum()), "{}", counter.sum());
    }
}
