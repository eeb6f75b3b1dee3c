//! When to repeat a failed token request, and how long to wait first (b2c-protocol §6.4).
//!
//! Repeated: transport failures, HTTP 408/429/5xx, and B2C's "busy" codes (AADB2C90035,
//! 90229, 90244; 90085 at most once). Never: any other 4xx, a wrong password above all.
//! Waits are exponential with full jitter, or what `Retry-After` says (capped), and never
//! beyond the call's time budget: a wait that would overrun it ends the call at once with
//! [`Error::Throttled`]. The loop that sends, waits and sends again lives here too.

use std::time::Duration;

use tracing::Instrument as _;

use super::grant::GrantKind;
use super::transport::{FormRequest, Transport};
use crate::authority::Authority;
use crate::error::b2c_code::RetryAdvice;
use crate::error::{Error, Result};
use crate::jitter::random_fraction;
use crate::token::Token;

/// How a [`crate::Client`] repeats failed token requests.
///
/// ```
/// use std::time::Duration;
/// let policy = b2c_token::client::RetryPolicy::default()
///     .max_retries(5)
///     .backoff(Duration::from_millis(200), Duration::from_secs(10))
///     .budget(Duration::from_secs(20));
/// # let _ = policy;
/// let never = b2c_token::client::RetryPolicy::none();
/// # let _ = never;
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub struct RetryPolicy {
    pub(crate) max_retries: u32,
    pub(crate) base: Duration,
    pub(crate) max_backoff: Duration,
    pub(crate) throttle_base: Duration,
    pub(crate) max_retry_after: Duration,
    pub(crate) budget: Duration,
}

impl Default for RetryPolicy {
    /// 3 retries; back-off from 500 ms up to 10 s (from 60 s when throttled without a
    /// `Retry-After`, as Microsoft advises); `Retry-After` honoured up to 60 s; 60 s in all.
    fn default() -> Self {
        Self {
            max_retries: 3,
            base: Duration::from_millis(500),
            max_backoff: Duration::from_secs(10),
            throttle_base: Duration::from_secs(60),
            max_retry_after: Duration::from_secs(60),
            budget: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// Never repeat a request.
    pub fn none() -> Self {
        Self {
            max_retries: 0,
            ..Self::default()
        }
    }

    /// How many times a request may be repeated after the first attempt.
    pub fn max_retries(mut self, retries: u32) -> Self {
        self.max_retries = retries;
        self
    }

    /// First back-off and largest back-off for transient failures. Each wait is a random
    /// time up to `min(max, first × 2^retry)` ("full jitter").
    pub fn backoff(mut self, first: Duration, max: Duration) -> Self {
        self.base = first;
        self.max_backoff = max.max(first);
        self
    }

    /// First back-off when throttled without a `Retry-After` header. Default 60 s.
    pub fn throttle_backoff(mut self, first: Duration) -> Self {
        self.throttle_base = first;
        self
    }

    /// The longest `Retry-After` honoured; longer ones are cut to this. Default 60 s.
    pub fn max_retry_after(mut self, cap: Duration) -> Self {
        self.max_retry_after = cap;
        self
    }

    /// Total time one call may spend, waits included. A wait that would overrun it ends the
    /// call with [`Error::Throttled`] (when throttled) or the last error. Default 60 s.
    pub fn budget(mut self, budget: Duration) -> Self {
        self.budget = budget;
        self
    }
}

/// What to do after a failed attempt.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Give up and return the error.
    Stop,
    /// Wait this long, then try again.
    RetryAfter(Duration),
}

/// The state of one call's retries.
#[derive(Debug, Default)]
pub(crate) struct Attempts {
    pub(crate) retries: u32,
    internal_error_retried: bool,
}

impl Attempts {
    /// Decides about `error`, given `elapsed` time so far. `random` is a number in [0, 1)
    /// for the jitter. Returns the error unchanged on `Stop`, or `Throttled` when a
    /// throttling wait does not fit the budget.
    pub(crate) fn decide(
        &mut self,
        policy: &RetryPolicy,
        error: &Error,
        elapsed: Duration,
        random: f64,
    ) -> Result<Decision, Error> {
        let throttled = match error.retry_advice() {
            RetryAdvice::Throttled => true,
            RetryAdvice::Transient => false,
            RetryAdvice::Once if !self.internal_error_retried => {
                self.internal_error_retried = true;
                false
            }
            _ => return Ok(Decision::Stop),
        };
        let wait = match error.retry_after() {
            Some(asked) => asked.min(policy.max_retry_after),
            None => {
                // Throttling backs off from Microsoft's 60 s base; other failures from ours.
                let (base, cap) = if throttled {
                    (policy.throttle_base, policy.max_retry_after)
                } else {
                    (policy.base, policy.max_backoff)
                };
                let ceiling = base.saturating_mul(1 << self.retries.min(16)).min(cap);
                ceiling.mul_f64(random.clamp(0.0, 1.0))
            }
        };
        let out_of_retries = self.retries >= policy.max_retries;
        let over_budget = elapsed.saturating_add(wait) > policy.budget;
        if out_of_retries || over_budget {
            if throttled && over_budget && !wait.is_zero() {
                return Err(Error::throttled(wait, error.status(), error.b2c_code()));
            }
            return Ok(Decision::Stop);
        }
        self.retries += 1;
        Ok(Decision::RetryAfter(wait))
    }
}

/// Sends until a token, an error not worth repeating, or the retry policy says stop.
pub(crate) async fn send_with_retries(
    transport: &Transport,
    policy: &RetryPolicy,
    authority: &Authority,
    grant: GrantKind,
    request: &FormRequest<'_>,
) -> Result<Token> {
    #[cfg(feature = "metrics")]
    let started = std::time::Instant::now();
    let result = send_until_done(transport, policy, authority, grant, request).await;
    #[cfg(feature = "metrics")]
    transport
        .metrics
        .call(grant.grant_type(), started.elapsed(), result.as_ref().err());
    result
}

async fn send_until_done(
    transport: &Transport,
    policy: &RetryPolicy,
    authority: &Authority,
    grant: GrantKind,
    request: &FormRequest<'_>,
) -> Result<Token> {
    let started = tokio::time::Instant::now();
    // The budget is a deadline for the whole call, requests in flight included: a server
    // that trickles its body cannot stretch a 60 s budget to 88 s.
    let deadline = started + policy.budget;
    let mut attempts = Attempts::default();
    loop {
        let client_request_id = uuid::Uuid::new_v4().to_string();
        let span = tracing::info_span!(
            "b2c_token.request",
            grant = grant.grant_type(),
            host = authority.host(),
            policy = authority.policy().map(|p| p.as_str()),
            attempt = attempts.retries + 1,
            client_request_id = %client_request_id,
            status = tracing::field::Empty,
            outcome = tracing::field::Empty,
        );
        // The caller's span (the cache's `b2c_token.fetch`, if this is a cache fetch) learns
        // how many attempts it took and which request ID to quote to Microsoft support.
        let fetch = tracing::Span::current();
        fetch.record("attempts", attempts.retries + 1);
        fetch.record("correlation_id", tracing::field::display(&client_request_id));
        let attempt = transport.send(request, &client_request_id).instrument(span.clone());
        let sent = match tokio::time::timeout_at(deadline, attempt).await {
            Ok(sent) => sent,
            Err(_) => Err(Error::transport(
                format!(
                    "the call's time budget ({} s, RetryPolicy::budget) ran out",
                    policy.budget.as_secs_f64()
                ),
                true,
                std::sync::Arc::new(std::io::Error::from(std::io::ErrorKind::TimedOut)),
            )),
        };
        #[cfg(feature = "metrics")]
        transport.metrics.request(grant.grant_type(), sent.as_ref().err());
        let error = match sent {
            Ok(token) => {
                span.record("outcome", "token");
                return Ok(token);
            }
            Err(error) => error,
        };
        if let Some(status) = error.status() {
            span.record("status", status);
        }
        span.record("outcome", tracing::field::display(error.kind()));
        let code = error.b2c_code().map(tracing::field::display);
        match attempts.decide(policy, &error, started.elapsed(), random_fraction()) {
            Ok(Decision::Stop) => {
                span.in_scope(|| tracing::debug!(code, %error, "token request failed"));
                return Err(error);
            }
            Ok(Decision::RetryAfter(wait)) => {
                span.in_scope(|| tracing::info!(code, %error, ?wait, "token request failed; retrying"));
                tokio::time::sleep(wait).await;
            }
            Err(throttled) => {
                span.in_scope(|| tracing::warn!(%throttled, "throttled beyond the retry budget; giving up for now"));
                return Err(throttled);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{Rejection, UnexpectedKind, UnexpectedResponse};

    fn rejected(status: u16, error: &str, description: &str) -> Error {
        Error::Rejected(Box::new(Rejection::from_oauth_error(status, error.into(), description)))
    }

    fn status(status: u16) -> Error {
        Error::UnexpectedResponse(Box::new(UnexpectedResponse::new(
            status,
            None,
            UnexpectedKind::ErrorStatus,
        )))
    }

    #[test]
    fn what_is_retried() {
        let policy = RetryPolicy::default().throttle_backoff(Duration::from_secs(1));
        let decide = |error: &Error| Attempts::default().decide(&policy, error, Duration::ZERO, 0.5);
        assert!(matches!(decide(&status(503)), Ok(Decision::RetryAfter(_))));
        assert!(matches!(decide(&status(429)), Ok(Decision::RetryAfter(_))));
        assert!(matches!(
            decide(&rejected(400, "invalid_request", "AADB2C90244: busy")),
            Ok(Decision::RetryAfter(_))
        ));
        assert!(matches!(
            decide(&rejected(400, "invalid_request", "AADB2C90035: down")),
            Ok(Decision::RetryAfter(_))
        ));
        assert!(matches!(decide(&status(404)), Ok(Decision::Stop)));
        assert!(matches!(
            decide(&rejected(400, "access_denied", "AADB2C90225: bad password")),
            Ok(Decision::Stop)
        ));
        assert!(matches!(
            decide(&rejected(401, "invalid_client", "")),
            Ok(Decision::Stop)
        ));
        assert!(matches!(decide(&Error::Config("x".into())), Ok(Decision::Stop)));
    }

    #[test]
    fn internal_error_is_retried_once() {
        let policy = RetryPolicy::default();
        let error = rejected(400, "invalid_grant", "AADB2C90085: internal");
        let mut attempts = Attempts::default();
        assert!(matches!(
            attempts.decide(&policy, &error, Duration::ZERO, 0.0),
            Ok(Decision::RetryAfter(_))
        ));
        assert!(matches!(
            attempts.decide(&policy, &error, Duration::ZERO, 0.0),
            Ok(Decision::Stop)
        ));
    }

    #[test]
    fn retries_are_bounded_and_grow() {
        let policy = RetryPolicy::default()
            .max_retries(3)
            .backoff(Duration::from_secs(1), Duration::from_secs(5));
        let mut attempts = Attempts::default();
        let waits: Vec<_> = (0..4)
            .map(|_| attempts.decide(&policy, &status(503), Duration::ZERO, 0.999_999))
            .collect();
        assert!(matches!(waits[3], Ok(Decision::Stop)));
        let secs: Vec<u64> = waits[..3]
            .iter()
            .map(|w| match w {
                Ok(Decision::RetryAfter(d)) => d.as_secs_f64().round() as u64,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(secs, [1, 2, 4]);
    }

    #[test]
    fn a_throttle_wait_past_the_budget_fails_fast() {
        let policy = RetryPolicy::default().budget(Duration::from_secs(10));
        let mut error = rejected(429, "throttled", "");
        if let Error::Rejected(r) = &mut error {
            r.retry_after = Some(Duration::from_secs(3600));
        }
        match Attempts::default().decide(&policy, &error, Duration::ZERO, 0.5) {
            Err(Error::Throttled {
                retry_after, status, ..
            }) => {
                assert_eq!(retry_after, Duration::from_secs(60), "capped at max_retry_after");
                assert_eq!(status, Some(429));
            }
            other => panic!("{other:?}"),
        }
    }
}
