//! A client's OpenTelemetry instruments (feature `metrics`): every request, and every call's
//! time to token. Names: [`crate::metrics`].

use std::time::Duration;

use opentelemetry::metrics::{Counter, Histogram, Meter};
use opentelemetry::KeyValue;

use crate::error::Error;
use crate::metrics::{duration_histogram, ERROR_TYPE, GRANT, TOKEN_DURATION, TOKEN_REQUESTS};

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

    fn attributes(grant: &'static str, error: Option<&Error>) -> Vec<KeyValue> {
        let mut attributes = vec![KeyValue::new(GRANT, grant)];
        if let Some(error) = error {
            attributes.push(KeyValue::new(ERROR_TYPE, error.kind()));
        }
        attributes
    }

    /// One request sent for `grant` (its `grant_type`), and how it ended.
    pub(crate) fn request(&self, grant: &'static str, error: Option<&Error>) {
        self.requests.add(1, &Self::attributes(grant, error));
    }

    /// One call of a grant, retries included.
    pub(crate) fn call(&self, grant: &'static str, elapsed: Duration, error: Option<&Error>) {
        self.duration
            .record(elapsed.as_secs_f64(), &Self::attributes(grant, error));
    }
}

impl std::fmt::Debug for ClientMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClientMetrics")
    }
}
