//! Metrics for operators (feature `metrics`), on the OpenTelemetry API: the application
//! installs the SDK and an exporter (OTLP, Prometheus, Azure Monitor) as it does for its own
//! metrics, and this crate's instruments report through it.
//!
//! Each [`Client`](crate::Client), [`TokenCache`](crate::TokenCache) and
//! [`Validator`](crate::Validator) reports to the meter given to its builder (`.meter(..)`),
//! or, by default, to the global meter provider's meter for `b2c-token` as it is when the
//! handle is built (set the provider first).
//!
//! | name | instrument | unit | attributes |
//! |---|---|---|---|
//! | [`TOKEN_REQUESTS`] | counter | `{request}` | `b2c_token.grant`, `error.type` (failed requests) |
//! | [`TOKEN_DURATION`] | histogram | `s` | `b2c_token.grant`, `error.type`: one call of a grant, retries included (time to token) |
//! | [`CACHE_LOOKUPS`] | observable counter | `{lookup}` | `b2c_token.cache.result` = `hit` / `miss` |
//! | [`CACHE_REFRESHES`] | observable counter | `{refresh}` | `b2c_token.refresh.result` = `started` / `failed` (background refreshes ahead of expiry) |
//! | [`CACHE_FETCH_FAILURES`] | observable counter | `{fetch}` | `error.type` = `throttled` / `_OTHER` |
//! | [`STORE_ERRORS`] | observable counter | `{error}` | none |
//! | [`STORE_LOCK_WAIT`] | histogram | `s` | none: how long a replica waited for another's fetch |
//! | [`VALIDATIONS`] | counter | `{token}` | `b2c_token.validation.result` = `valid` or the refusal's reason (`expired`, `bad_signature`, `audience`...) |
//! | [`KEY_FETCHES`] | counter | `{fetch}` | `error.type` (failed fetches) |
//!
//! Names follow OpenTelemetry's conventions (dotted namespaces, UCUM units, `error.type` for
//! failures). No attribute carries a user name, client ID, tenant, scope or token: every value
//! comes from a short fixed list, so series stay few whatever the traffic.
//!
//! **What a cache hit costs:** nothing more. The cache already counts its hits (striped,
//! without a locked instruction) for [`CacheStats`](crate::cache::CacheStats); the lookups
//! counter is observable and reads those counts when the exporter collects. Likewise a
//! validator counts accepted tokens in an atomic read at collection. Only the slow paths (a
//! request, a refusal, a key fetch, a lock wait) record directly.
//!
//! OpenTelemetry rather than the `metrics` facade crate: observable instruments are what let a
//! hit stay untouched (the facade has no callbacks: every hit would call into the recorder),
//! and its semantic conventions are the ones Azure Monitor and most back ends read.

use std::time::Duration;

use opentelemetry::metrics::{Counter, Histogram, Meter};
use opentelemetry::{InstrumentationScope, KeyValue};

use crate::client::GrantKind;
use crate::error::Error;

/// Token requests sent to the token endpoint, each attempt counted.
pub const TOKEN_REQUESTS: &str = "b2c_token.token.requests";
/// Time for one call of a grant to end in a token or an error, retries included.
pub const TOKEN_DURATION: &str = "b2c_token.token.duration";
/// Cache lookups by result: hits (served without waiting) and misses.
pub const CACHE_LOOKUPS: &str = "b2c_token.cache.lookups";
/// Background refreshes ahead of expiry, started and failed.
pub const CACHE_REFRESHES: &str = "b2c_token.cache.refreshes";
/// Fetches by a cache that ended in an error, throttled or not.
pub const CACHE_FETCH_FAILURES: &str = "b2c_token.cache.fetch_failures";
/// Calls to a shared store that failed or timed out.
pub const STORE_ERRORS: &str = "b2c_token.store.errors";
/// How long a replica waited for another replica's fetch (the store's lock).
pub const STORE_LOCK_WAIT: &str = "b2c_token.store.lock_wait.duration";
/// Tokens a validator checked, by result.
pub const VALIDATIONS: &str = "b2c_token.validation.results";
/// Metadata and key-set fetches by a validator.
pub const KEY_FETCHES: &str = "b2c_token.validation.key_fetches";

/// The attribute naming the grant.
pub(crate) const GRANT: &str = "b2c_token.grant";
/// OpenTelemetry's attribute for what went wrong.
pub(crate) const ERROR_TYPE: &str = "error.type";

/// The meter a handle reports to when its builder was given none.
pub(crate) fn default_meter() -> Meter {
    opentelemetry::global::meter_with_scope(
        InstrumentationScope::builder("b2c-token")
            .with_version(env!("CARGO_PKG_VERSION"))
            .build(),
    )
}

/// Histogram buckets for durations in seconds: token calls and lock waits take milliseconds
/// to a minute (the retry budget).
fn duration_buckets() -> Vec<f64> {
    vec![
        0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
    ]
}

pub(crate) fn duration_histogram(meter: &Meter, name: &'static str, description: &'static str) -> Histogram<f64> {
    meter
        .f64_histogram(name)
        .with_unit("s")
        .with_description(description)
        .with_boundaries(duration_buckets())
        .build()
}

/// A client's instruments.
#[derive(Clone)]
pub(crate) struct ClientMetrics {
    requests: Counter<u64>,
    duration: Histogram<f64>,
}

impl ClientMetrics {
    pub(crate) fn new(meter: &Meter) -> Self {
        Self {
            requests: meter
                .u64_counter(TOKEN_REQUESTS)
                .with_unit("{request}")
                .with_description("Token requests sent, each attempt counted")
                .build(),
            duration: duration_histogram(meter, TOKEN_DURATION, "Time for one call of a grant, retries included"),
        }
    }

    fn attributes(grant: GrantKind, error: Option<&Error>) -> Vec<KeyValue> {
        let mut attributes = vec![KeyValue::new(GRANT, grant.grant_type())];
        if let Some(error) = error {
            attributes.push(KeyValue::new(ERROR_TYPE, error.kind()));
        }
        attributes
    }

    /// One request sent, and how it ended.
    pub(crate) fn request(&self, grant: GrantKind, error: Option<&Error>) {
        self.requests.add(1, &Self::attributes(grant, error));
    }

    /// One call of a grant, retries included.
    pub(crate) fn call(&self, grant: GrantKind, elapsed: Duration, error: Option<&Error>) {
        self.duration
            .record(elapsed.as_secs_f64(), &Self::attributes(grant, error));
    }
}

impl std::fmt::Debug for ClientMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClientMetrics")
    }
}

/// A validator's instruments. Results are counted in atomics (one per result, a relaxed add
/// per validation) and read by an observable counter at collection: a remembered token stays
/// a lookup and one add.
#[cfg(feature = "validate")]
pub(crate) struct ValidatorMetrics {
    /// `[valid, each refusal reason...]`.
    results: std::sync::Arc<[std::sync::atomic::AtomicU64; 15]>,
    key_fetches: Counter<u64>,
}

#[cfg(feature = "validate")]
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
                let names = std::iter::once("valid").chain(crate::validate::InvalidToken::REASONS);
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
    pub(crate) fn validated(&self, refused: Option<&crate::validate::InvalidToken>) {
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
