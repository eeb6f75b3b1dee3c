//! A validator's OpenTelemetry instruments (feature `metrics`): results by reason, key
//! fetches. Names: [`crate::metrics`].

use opentelemetry::metrics::{Counter, Meter};
use opentelemetry::KeyValue;

use super::InvalidToken;
use crate::error::Error;
use crate::metrics::{ERROR_TYPE, KEY_FETCHES, VALIDATIONS};

/// A validator's instruments. Results are counted in atomics (one per result, a relaxed add
/// per validation) and read by an observable counter at collection: a remembered token stays
/// a lookup and one add.
pub(crate) struct ValidatorMetrics {
    /// `[valid, each refusal reason...]`.
    results: std::sync::Arc<[std::sync::atomic::AtomicU64; 15]>,
    key_fetches: Counter<u64>,
}

impl ValidatorMetrics {
    pub(crate) fn new(meter: &Meter) -> Self {
        use std::sync::atomic::{AtomicU64, Ordering};
        let results: std::sync::Arc<[AtomicU64; 15]> = std::sync::Arc::new(Default::default());
        let counts = std::sync::Arc::downgrade(&results);
        meter
            .u64_observable_counter(VALIDATIONS)
            .with_unit("{token}")
            .with_description("Tokens checked by Validator::validate, by result")
            .with_callback(move |observer| {
                let Some(counts) = counts.upgrade() else {
                    return;
                };
                let names = std::iter::once("valid").chain(InvalidToken::REASONS);
                for (name, count) in names.zip(counts.iter()) {
                    let count = count.load(Ordering::Relaxed);
                    if count > 0 {
                        observer.observe(count, &[KeyValue::new("b2c_token.validation.result", name)]);
                    }
                }
            })
            .build();
        Self {
            results,
            key_fetches: meter
                .u64_counter(KEY_FETCHES)
                .with_unit("{fetch}")
                .with_description("Metadata and key-set fetches by a validator")
                .build(),
        }
    }

    /// One validation's result.
    #[inline]
    pub(crate) fn validated(&self, refused: Option<&InvalidToken>) {
        let slot = refused.map_or(0, |reason| 1 + reason.reason_index());
        self.results[slot].fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// One metadata + key-set fetch, and how it ended.
    pub(crate) fn key_fetch(&self, error: Option<&Error>) {
        match error {
            None => self.key_fetches.add(1, &[]),
            Some(error) => self.key_fetches.add(1, &[KeyValue::new(ERROR_TYPE, error.kind())]),
        }
    }
}
