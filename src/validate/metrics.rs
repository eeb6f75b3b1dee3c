//! A validator's OpenTelemetry instruments (feature `metrics`): results by reason, key
//! fetches. Names: [`crate::metrics`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use opentelemetry::metrics::{Counter, Meter};
use opentelemetry::KeyValue;

use super::InvalidToken;
use crate::error::Error;
use crate::metrics::{ERROR_TYPE, KEY_FETCHES, VALIDATIONS, VALIDATOR_NAME};
use crate::striped::StripedCounter;

/// A validator's instruments. Results are counted where they happen (accepted tokens in a
/// [`StripedCounter`]: no locked instruction on a remembered token's path; refusals one atomic
/// each) and read by an observable counter at collection.
pub(crate) struct ValidatorMetrics {
    counts: Arc<Counts>,
    key_fetches: Counter<u64>,
    /// The validator's name, which every one of its metrics carries.
    name: KeyValue,
}

#[derive(Default)]
struct Counts {
    valid: StripedCounter,
    /// One per refusal reason, in [`InvalidToken::REASONS`]' order.
    refused: [AtomicU64; InvalidToken::REASONS.len()],
}

impl ValidatorMetrics {
    pub(crate) fn new(meter: &Meter, name: String) -> Self {
        let name = KeyValue::new(VALIDATOR_NAME, name);
        let counts = Arc::new(Counts::default());
        let reading = Arc::downgrade(&counts);
        let observed_name = name.clone();
        meter
            .u64_observable_counter(VALIDATIONS)
            .with_unit("{token}")
            .with_description("Tokens checked by Validator::validate, by result")
            .with_callback(move |observer| {
                let Some(counts) = reading.upgrade() else {
                    return;
                };
                let refused = counts.refused.iter().map(|count| count.load(Ordering::Relaxed));
                let results = std::iter::once(("valid", counts.valid.sum()))
                    .chain(InvalidToken::REASONS.into_iter().zip(refused));
                for (name, count) in results.filter(|&(_, count)| count > 0) {
                    observer.observe(
                        count,
                        &[
                            observed_name.clone(),
                            KeyValue::new("b2c_token.validation.result", name),
                        ],
                    );
                }
            })
            .build();
        Self {
            counts,
            key_fetches: meter
                .u64_counter(KEY_FETCHES)
                .with_unit("{fetch}")
                .with_description("Metadata and key-set fetches by a validator")
                .build(),
            name,
        }
    }

    /// One validation's result.
    #[inline]
    pub(crate) fn validated(&self, refused: Option<&InvalidToken>) {
        match refused {
            None => self.counts.valid.add_one(),
            Some(reason) => {
                self.counts.refused[reason.reason_index()].fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// One metadata + key-set fetch, and how it ended.
    pub(crate) fn key_fetch(&self, error: Option<&Error>) {
        match error {
            None => self.key_fetches.add(1, std::slice::from_ref(&self.name)),
            Some(error) => self
                .key_fetches
                .add(1, &[self.name.clone(), KeyValue::new(ERROR_TYPE, error.kind())]),
        }
    }
}
