//! The API side: [`Validator`] checks the B2C access tokens that clients send, the way B2C
//! requires (per-policy metadata and keys, RS256 only, exact issuer and audience, expiry with
//! an explicit leeway, policy and scope allow-lists); [`ValidateLayer`] puts it in front of
//! tower services (axum, tonic, hyper), and with feature `axum` handlers extract [`Claims`].
//!
//! The check order is drawn where docs.rs shows it: [`Validator`].

mod builder;
mod claims;
pub(crate) mod jwt;
pub(crate) mod keys;
mod layer;
#[cfg(feature = "metrics")]
pub(crate) mod metrics;
mod seen;

#[cfg(feature = "axum")]
mod axum;

use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use serde_json::{Map, Value};

pub use self::builder::ValidatorBuilder;
pub use self::claims::Claims;
use self::keys::{Fetcher, KeySource, Reason};
pub use self::layer::{Validate, ValidateLayer};
use self::seen::Seen;
use crate::authority::Authority;
use crate::clock::wall_ms;
pub use crate::error::invalid_token::InvalidToken;
use crate::error::{Error, Result};

/// Tokens longer than this are refused before any decoding (B2C's are 1–2 KiB).
pub const DEFAULT_MAX_TOKEN_BYTES: usize = 16 * 1024;

/// Validates B2C access tokens for an API. Cheap to clone (one `Arc`), `Send + Sync`.
///
/// The checks, in order (docs/validating-tokens.md says why):
///
/// ```text
///  token ─► memory: validated before and not expired? ──yes──► Claims
///             │ no
///             ▼
///          shape: ≤ 16 KiB, three parts, header {alg: RS256, kid}, claims JSON, no key twice
///             ▼
///          policy (tfp/acr) allowed? ─► keys: that policy's key by kid (no lock; an
///             │                          unknown kid refreshes once per cooldown)
///             ▼
///          RS256 verify ─► iss, aud, exp/nbf ± leeway ─► required scopes ─► remember ─► Claims
/// ```
///
/// Built from the same [`Authority`] the clients use (every URL form, custom domains, China),
/// one per accepted policy, plus the API's client ID(s). Keys are fetched on first use (or
/// by [`Validator::fetch_keys`] at start-up) and refreshed daily in the background.
///
/// ```
/// use b2c_token::test_tenant::{defaults, FakeTenant};
/// use b2c_token::Validator;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let tenant = FakeTenant::start().await?;
/// let validator = Validator::builder(tenant.authority(defaults::SIGNIN_POLICY)?, defaults::API_CLIENT_ID)
///     .require_scope("read")
///     .build()?;
///
/// let token = tenant.mint(&tenant.access_token_claims(defaults::SIGNIN_POLICY, &["read"]));
/// let claims = validator.validate(&token).await?;
/// assert_eq!(claims.policy(), Some(defaults::SIGNIN_POLICY));
///
/// let no_scope = tenant.mint(&tenant.access_token_claims(defaults::SIGNIN_POLICY, &[]));
/// let refused = validator.validate(&no_scope).await.unwrap_err();
/// assert!(refused.to_string().contains("request the API scope"));
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Validator(Arc<Inner>);

struct Inner {
    sources: Vec<KeySource>,
    rules: Rules,
    refresh_interval: Duration,
    fetcher: Fetcher,
    seen: Seen,
    /// The background refresh, stopped when the validator goes (it would otherwise sleep
    /// out its interval, a day by default, before noticing).
    background: OnceLock<tokio::task::AbortHandle>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(task) = self.background.get() {
            task.abort();
        }
    }
}

impl Validator {
    /// A validator for tokens issued through `authority` (a B2C authority: its policy is
    /// accepted, its metadata gives the issuer and keys) for the API `client_id` (`aud`).
    ///
    /// Takes the authority by value, as [`Client::builder`](crate::Client::builder) does.
    pub fn builder(authority: Authority, client_id: &str) -> ValidatorBuilder {
        ValidatorBuilder::new(authority, client_id)
    }

    /// Fetches every policy's metadata and keys now (at start-up, so that the first request
    /// does not wait for them, and a wrong configuration shows at once).
    ///
    /// # Errors
    /// A transport error or [`Error::UnexpectedResponse`] when a policy's metadata or keys
    /// cannot be fetched (and none were fetched before).
    pub async fn fetch_keys(&self) -> Result<()> {
        self.start_background_refresh();
        for source in &self.0.sources {
            if source.published().keys.is_empty() {
                source.refresh(&self.0.fetcher, Reason::UnknownKey, None).await?;
            }
        }
        Ok(())
    }

    /// Validates a bearer token (the part after `Bearer `) and returns its claims.
    ///
    /// A token validated before and not yet expired is answered from memory without an RSA
    /// verification.
    ///
    /// # Errors
    /// [`Error::InvalidToken`] saying why the token is refused; a transport error or
    /// [`Error::UnexpectedResponse`] when no key could ever be fetched for its policy (the
    /// API should answer 503, not 401).
    pub async fn validate(&self, token: &str) -> Result<Claims> {
        let result = self.validate_unrecorded(token).await;
        #[cfg(feature = "metrics")]
        match &result {
            Ok(_) => self.0.fetcher.metrics.validated(None),
            Err(Error::InvalidToken(reason)) => self.0.fetcher.metrics.validated(Some(reason)),
            Err(_) => {} // no key could be fetched: counted as a key fetch error
        }
        result
    }

    async fn validate_unrecorded(&self, token: &str) -> Result<Claims> {
        let inner = &*self.0;
        if let Some(claims) = inner.seen.get(token) {
            self.check_scopes(&claims, &inner.rules.required_scopes)?;
            return Ok(claims);
        }
        let jws = jwt::parse(token, inner.rules.max_token_bytes).map_err(Error::InvalidToken)?;
        let source = self.source_for(&jws.claims)?;
        let verified = match Self::verify(source, &jws) {
            Some(verified) => verified,
            None => {
                self.start_background_refresh();
                if source
                    .refresh(&inner.fetcher, Reason::UnknownKey, Some(&jws.kid))
                    .await?
                {
                    inner.seen.clear();
                }
                Self::verify(source, &jws).ok_or(Error::InvalidToken(InvalidToken::UnknownKeyId))?
            }
        };
        verified.map_err(Error::InvalidToken)?;
        let (claims, valid_until_ms) = self.check_claims(source, jws.claims)?;
        self.check_scopes(&claims, &inner.rules.required_scopes)?;
        inner.seen.insert(token, &claims, valid_until_ms);
        Ok(claims)
    }

    /// Checks that `claims` grant every scope in `required` (in `scp` or `roles`), as a
    /// route with its own requirements does after [`Validator::validate`].
    ///
    /// # Errors
    /// [`Error::InvalidToken`] with [`InvalidToken::InsufficientScope`], whose message names
    /// the scopes to request.
    pub fn check_scopes<S: AsRef<str>>(&self, claims: &Claims, required: &[S]) -> Result<()> {
        if required.iter().all(|scope| claims.has_scope(scope.as_ref())) {
            return Ok(());
        }
        Err(Error::InvalidToken(InvalidToken::InsufficientScope {
            required: required.iter().map(|s| s.as_ref().to_owned()).collect(),
            none_granted: claims.scopes().next().is_none() && claims.roles().next().is_none(),
            app_id_uri: self.0.rules.app_id_uri.clone(),
            app_only: claims.is_app_only(),
        }))
    }

    /// The key source for the token's policy; for a non-B2C authority, its only source.
    fn source_for(&self, claims: &Map<String, Value>) -> Result<&KeySource> {
        let sources = &self.0.sources;
        if sources.iter().all(|s| s.policy.is_none()) {
            return sources.first().ok_or(Error::InvalidToken(InvalidToken::Policy(None)));
        }
        let policy = claims::policy_of(claims);
        policy
            .and_then(|policy| {
                sources
                    .iter()
                    .find(|s| s.policy.as_deref().is_some_and(|p| p.eq_ignore_ascii_case(policy)))
            })
            .ok_or_else(|| Error::InvalidToken(InvalidToken::Policy(policy.map(str::to_owned))))
    }

    /// `None` when the key is not published; else whether the signature verifies.
    fn verify(source: &KeySource, jws: &jwt::Jws<'_>) -> Option<std::result::Result<(), InvalidToken>> {
        let published = source.published();
        let key = published.keys.get(&jws.kid)?;
        Some(
            key.verify_sig(jws.signing_input, &jws.signature)
                .map_err(|_| InvalidToken::BadSignature),
        )
    }

    /// `iss`, `aud`, `exp`, `nbf`; the claims and until when (ms) they may be reused.
    fn check_claims(&self, source: &KeySource, raw: Map<String, Value>) -> Result<(Claims, u64)> {
        let inner = &*self.0;
        let invalid = |reason| Error::InvalidToken(reason);
        let Some(Value::String(iss)) = raw.get("iss") else {
            return Err(invalid(InvalidToken::MissingClaim("iss")));
        };
        let policy = claims::policy_of(&raw);
        if !(source.published().accepts_issuer(iss, policy) || inner.rules.extra_issuers.contains(iss)) {
            return Err(invalid(InvalidToken::Issuer(iss.clone())));
        }
        let audience = match raw.get("aud") {
            Some(Value::String(aud)) => inner.rules.audiences.iter().find(|a| *a == aud),
            Some(Value::Array(auds)) => inner
                .rules
                .audiences
                .iter()
                .find(|a| auds.iter().any(|aud| aud.as_str() == Some(a.as_str()))),
            _ => return Err(invalid(InvalidToken::MissingClaim("aud"))),
        }
        .cloned()
        .ok_or(invalid(InvalidToken::Audience))?;
        let leeway_ms = u64::try_from(inner.rules.leeway.as_millis()).unwrap_or(u64::MAX);
        let now_ms = wall_ms();
        let exp = numeric_date(&raw, "exp")?.ok_or(invalid(InvalidToken::MissingClaim("exp")))?;
        let valid_until_ms = exp.saturating_mul(1000).saturating_add(leeway_ms);
        if now_ms >= valid_until_ms {
            return Err(invalid(InvalidToken::Expired));
        }
        if let Some(nbf) = numeric_date(&raw, "nbf")? {
            if now_ms.saturating_add(leeway_ms) < nbf.saturating_mul(1000) {
                return Err(invalid(InvalidToken::NotYetValid));
            }
        }
        Ok((Claims::new(raw, audience, exp), valid_until_ms))
    }

    /// Refreshes every policy's keys on the schedule, for as long as the validator lives,
    /// on the runtime of the first call that needed keys.
    fn start_background_refresh(&self) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        self.0.background.get_or_init(|| {
            let weak: Weak<Inner> = Arc::downgrade(&self.0);
            let interval = self.0.refresh_interval;
            let task = runtime.spawn(async move {
                loop {
                    // Up to a tenth earlier, so that a fleet started together does not refresh together.
                    tokio::time::sleep(interval - crate::jitter::random_below(interval / 10)).await;
                    let Some(inner) = weak.upgrade() else { return };
                    for source in &inner.sources {
                        if let Ok(true) = source.refresh(&inner.fetcher, Reason::Scheduled, None).await {
                            inner.seen.clear();
                        }
                    }
                }
            });
            task.abort_handle()
        });
    }
}

/// A NumericDate claim (RFC 7519 §2: seconds, possibly fractional), floored.
fn numeric_date(raw: &Map<String, Value>, name: &'static str) -> Result<Option<u64>> {
    match raw.get(name) {
        None => Ok(None),
        Some(Value::Number(n)) => n
            .as_u64()
            .or_else(|| n.as_f64().filter(|f| f.is_finite() && *f >= 0.0).map(|f| f as u64))
            .map(Some)
            .ok_or(Error::InvalidToken(InvalidToken::MissingClaim(name))),
        Some(_) => Err(Error::InvalidToken(InvalidToken::MissingClaim(name))),
    }
}

impl std::fmt::Debug for Validator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Validator")
            .field(
                "policies",
                &self.0.sources.iter().map(|s| s.policy.as_deref()).collect::<Vec<_>>(),
            )
            .field("audiences", &self.0.rules.audiences)
            .field("leeway", &self.0.rules.leeway)
            .finish_non_exhaustive()
    }
}

/// What a token must satisfy beyond its signature: set on the builder, kept by the validator.
#[derive(Debug, Clone)]
struct Rules {
    audiences: Vec<String>,
    extra_issuers: Vec<String>,
    leeway: Duration,
    max_token_bytes: usize,
    required_scopes: Vec<String>,
    app_id_uri: Option<String>,
}
