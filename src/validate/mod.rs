//! The API side: [`Validator`] checks the B2C access tokens that clients send, the way B2C
//! requires (per-policy metadata and keys, RS256 only, exact issuer and audience, expiry with
//! an explicit leeway, policy and scope allow-lists); [`ValidateLayer`] puts it in front of
//! tower services (axum, tonic, hyper), and with feature `axum` handlers extract [`Claims`].
//!
//! ```text
//!  token ─► seen.rs: validated before and not expired? ──yes──► Claims
//!             │ no
//!             ▼
//!          jwt.rs: ≤ 16 KiB, three parts, header {alg: RS256, kid}, claims JSON
//!             ▼
//!          policy (tfp/acr) allowed? ─► keys.rs: that policy's key by kid (no lock; an
//!             │                          unknown kid refreshes once per cooldown)
//!             ▼
//!          RS256 verify ─► iss, aud, exp/nbf ± leeway ─► required scopes ─► remember ─► Claims
//! ```

mod claims;
mod jwt;
mod keys;
mod layer;
mod seen;

#[cfg(feature = "axum")]
mod axum;

use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use serde_json::{Map, Value};

pub use self::claims::Claims;
use self::keys::{Fetcher, KeySource, Reason};
pub use self::layer::{Validate, ValidateLayer};
use self::seen::Seen;
use crate::authority::Authority;
use crate::clock::wall_ms;
use crate::error::{Error, InvalidToken, Result};
use crate::net::{http_client, DEFAULT_CONNECT_TIMEOUT, DEFAULT_TIMEOUT};

/// Tokens longer than this are refused before any decoding (B2C's are 1–2 KiB).
pub const DEFAULT_MAX_TOKEN_BYTES: usize = 16 * 1024;
const DEFAULT_LEEWAY: Duration = Duration::from_secs(60);
const DEFAULT_REFRESH_INTERVAL: Duration = Duration::from_secs(24 * 3600);
const DEFAULT_COOLDOWN: Duration = Duration::from_secs(5 * 60);
const DEFAULT_RETRY_AFTER_FAILURE: Duration = Duration::from_secs(10);
const DEFAULT_CACHE_CAPACITY: usize = 1024;

/// Validates B2C access tokens for an API. Cheap to clone (one `Arc`), `Send + Sync`.
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
/// let validator = Validator::builder(&tenant.authority(defaults::SIGNIN_POLICY)?, defaults::API_CLIENT_ID)
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
    pub fn builder(authority: &Authority, client_id: &str) -> ValidatorBuilder {
        ValidatorBuilder {
            authorities: vec![authority.clone()],
            rules: Rules {
                audiences: vec![client_id.trim().to_owned()],
                extra_issuers: Vec::new(),
                leeway: DEFAULT_LEEWAY,
                max_token_bytes: DEFAULT_MAX_TOKEN_BYTES,
                required_scopes: Vec::new(),
                app_id_uri: None,
            },
            refresh_interval: DEFAULT_REFRESH_INTERVAL,
            cooldown: DEFAULT_COOLDOWN,
            cache_capacity: DEFAULT_CACHE_CAPACITY,
            http: None,
            roots: Vec::new(),
            timeout: DEFAULT_TIMEOUT,
        }
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

/// Configures a [`Validator`]; [`ValidatorBuilder::build`] checks everything at once.
#[derive(Debug, Clone)]
#[must_use]
pub struct ValidatorBuilder {
    authorities: Vec<Authority>,
    rules: Rules,
    refresh_interval: Duration,
    cooldown: Duration,
    cache_capacity: usize,
    http: Option<reqwest::Client>,
    roots: Vec<Vec<u8>>,
    timeout: Duration,
}

impl ValidatorBuilder {
    /// Accepts tokens from another policy too (each policy is its own issuer of keys).
    pub fn authority(mut self, authority: &Authority) -> Self {
        self.authorities.push(authority.clone());
        self
    }

    /// Accepts another audience (`aud`): a second client ID of the same API.
    pub fn audience(mut self, client_id: &str) -> Self {
        self.rules.audiences.push(client_id.trim().to_owned());
        self
    }

    /// Accepts another exact issuer: the tokens of the same tenant fetched through another
    /// host (a custom domain and `b2clogin.com` give different `iss`).
    pub fn issuer(mut self, issuer: &str) -> Self {
        self.rules.extra_issuers.push(issuer.to_owned());
        self
    }

    /// How far `exp` and `nbf` may be off (clock skew). Default 60 s.
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.rules.leeway = leeway;
        self
    }

    /// Requires a scope (in `scp` or `roles`) of every token; routes can require more.
    pub fn require_scope(mut self, scope: &str) -> Self {
        self.rules.required_scopes.push(scope.to_owned());
        self
    }

    /// The API's App ID URI (`https://contoso.onmicrosoft.com/api`), so that a refusal
    /// names the full scope the client must request.
    pub fn app_id_uri(mut self, uri: &str) -> Self {
        self.rules.app_id_uri = Some(uri.to_owned());
        self
    }

    /// How often keys are refreshed in the background. Default 24 h (B2C's advice).
    pub fn key_refresh_interval(mut self, interval: Duration) -> Self {
        self.refresh_interval = interval;
        self
    }

    /// The least time between refreshes caused by tokens with an unknown `kid`. Default 5 min.
    pub fn unknown_key_cooldown(mut self, cooldown: Duration) -> Self {
        self.cooldown = cooldown;
        self
    }

    /// How many validated tokens are remembered (rounded up to a power of two); 0 turns the
    /// memory off. Default 1024.
    pub fn cache_capacity(mut self, capacity: usize) -> Self {
        self.cache_capacity = capacity;
        self
    }

    /// Tokens longer than this are refused unread. Default 16 KiB.
    pub fn max_token_bytes(mut self, bytes: usize) -> Self {
        self.rules.max_token_bytes = bytes;
        self
    }

    /// Fetches metadata and keys with this client. It should follow no redirects.
    pub fn http_client(mut self, http: reqwest::Client) -> Self {
        self.http = Some(http);
        self
    }

    /// Trusts a private CA (PEM) for the metadata and keys, as `ClientBuilder::add_root_certificate`.
    pub fn add_root_certificate(mut self, pem: &[u8]) -> Self {
        self.roots.push(pem.to_vec());
        self
    }

    /// Timeout of each metadata or keys request. Default 30 s.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Checks the configuration. No request is sent.
    ///
    /// # Errors
    /// [`Error::Config`] when an authority has no metadata URL (one built from a bare token
    /// URL), an audience is empty, or a certificate does not parse.
    pub fn build(self) -> Result<Validator> {
        if self.rules.audiences.iter().any(String::is_empty) {
            return Err(Error::config("the API's client ID (the tokens' audience) is empty"));
        }
        let mut sources = Vec::with_capacity(self.authorities.len());
        for authority in &self.authorities {
            let metadata = authority.metadata_endpoint().ok_or_else(|| {
                Error::config(
                    "the validator needs the authority's OpenID metadata: build it with Authority::b2c or Authority::builder, not from a bare token URL",
                )
            })?;
            let policy = authority.policy().map(|p| p.as_str().to_owned());
            if !sources.iter().any(|s: &KeySource| s.policy == policy) {
                sources.push(KeySource::new(policy, metadata.clone()));
            }
        }
        let http = match self.http {
            Some(http) => http,
            None => {
                let roots = self
                    .roots
                    .iter()
                    .map(|pem| {
                        reqwest::Certificate::from_pem(pem)
                            .map_err(|e| Error::config(format!("root certificate does not parse as PEM: {e}")))
                    })
                    .collect::<Result<Vec<_>>>()?;
                let first = self
                    .authorities
                    .first()
                    .and_then(Authority::metadata_endpoint)
                    .ok_or_else(|| Error::config("the validator has no authority"))?;
                http_client(self.timeout, DEFAULT_CONNECT_TIMEOUT, first, roots, false)?
            }
        };
        Ok(Validator(Arc::new(Inner {
            sources,
            rules: self.rules,
            refresh_interval: self.refresh_interval,
            fetcher: Fetcher {
                http,
                timeout: self.timeout,
                cooldown: self.cooldown,
                retry_after_failure: DEFAULT_RETRY_AFTER_FAILURE,
            },
            seen: Seen::new(self.cache_capacity),
            background: OnceLock::new(),
        })))
    }
}
