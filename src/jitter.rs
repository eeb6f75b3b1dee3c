//! Randomness for jitter: spreading retries and refreshes so that many callers or processes
//! do not act in the same instant. Needs no cryptographic strength, nor another dependency.

use std::time::{Duration, SystemTime};

/// A number in [0, 1), from std's per-process random hasher keys.
pub(crate) fn random_fraction() -> f64 {
    use std::hash::BuildHasher;
    let bits = std::collections::hash_map::RandomState::new().hash_one(SystemTime::now());
    (bits >> 11) as f64 / (1u64 << 53) as f64
}

/// A duration uniformly below `limit`.
pub(crate) fn random_below(limit: Duration) -> Duration {
    limit.mul_f64(random_fraction())
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
