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
//! | [`CACHE_LOOKUPS`] | observable counter | `{lookup}` | `b2c_token.cache.name`, `b2c_token.cache.result` = `hit` / `miss` |
//! | [`CACHE_REFRESHES`] | observable counter | `{refresh}` | `b2c_token.cache.name`, `b2c_token.refresh.result` = `started` / `failed` (background refreshes ahead of expiry) |
//! | [`CACHE_FETCH_FAILURES`] | observable counter | `{fetch}` | `b2c_token.cache.name`, `error.type` = `throttled` / `_OTHER` |
//! | [`STORE_ERRORS`] | observable counter | `{error}` | `b2c_token.cache.name` |
//! | [`STORE_LOCK_WAIT`] | histogram | `s` | `b2c_token.cache.name`: how long a replica waited for another's fetch |
//! | [`VALIDATIONS`] | observable counter | `{token}` | `b2c_token.validator.name`, `b2c_token.validation.result` = `valid` or the refusal's reason (`expired`, `bad_signature`, `audience`...) |
//! | [`KEY_FETCHES`] | counter | `{fetch}` | `b2c_token.validator.name`, `error.type` (failed fetches) |
//!
//! A cache's and a validator's counts are observed per handle, so two of them reporting to
//! one meter need different names (`metrics_name` on their builders; `default` otherwise), or
//! the last one observed would stand for both.
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

use opentelemetry::metrics::{Histogram, Meter};
use opentelemetry::InstrumentationScope;

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
/// The attribute naming a cache ([`TokenCacheBuilder::metrics_name`](crate::cache::TokenCacheBuilder::metrics_name)).
pub(crate) const CACHE_NAME: &str = "b2c_token.cache.name";
/// The attribute naming a validator ([`ValidatorBuilder::metrics_name`](crate::validate::ValidatorBuilder::metrics_name)).
#[cfg(feature = "validate")]
pub(crate) const VALIDATOR_NAME: &str = "b2c_token.validator.name";
/// The name a cache or validator reports under when given none.
pub(crate) const DEFAULT_NAME: &str = "default";

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
