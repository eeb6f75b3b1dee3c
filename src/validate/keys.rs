//! One policy's signing keys: its OpenID metadata (issuer, `jwks_uri`) and the JWKS, held
//! in an `ArcSwap` so that a lookup takes no lock, refreshed by one task at a time.
//!
//! A refresh happens when nothing was fetched yet, when the schedule says so (daily, as B2C
//! advises), or when a token names an unknown `kid` (a rollover); the last is allowed once
//! per cooldown, so forged `kid`s cannot make the validator hammer the tenant. A failed fetch
//! keeps the last good keys.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use aws_lc_rs::rsa::PublicKeyComponents;
use aws_lc_rs::signature::{ParsedPublicKey, RSA_PKCS1_2048_8192_SHA256};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{Map, Value};
use tokio::time::Instant;
use url::Url;

use crate::authority::require_secure;
use crate::error::{Error, Result};
use crate::net::{document_string, get_json, invalid_document_field, Document};

/// RSA keys shorter than this are refused (B2C publishes 2048-bit keys).
const MIN_MODULUS_BYTES: usize = 256;

/// What the tenant publishes for one policy.
#[derive(Default)]
pub(super) struct Published {
    /// The metadata's `issuer`, exactly.
    pub(super) issuer: Option<String>,
    pub(super) keys: HashMap<String, ParsedPublicKey>,
}

impl Published {
    /// Whether `iss` is this policy's issuer: the metadata's, or B2C's `tfp` form of it
    /// (`https://{host}/tfp/{tenant GUID}/{policy}/v2.0/`, chosen in the user flow's token
    /// settings) for the token's own policy.
    pub(super) fn accepts_issuer(&self, iss: &str, policy: Option<&str>) -> bool {
        let Some(issuer) = self.issuer.as_deref() else {
            return false;
        };
        if iss == issuer {
            return true;
        }
        let (Some(policy), Some(base)) = (policy, issuer.strip_suffix("/v2.0/")) else {
            return false;
        };
        let Some((host, tenant)) = base.rsplit_once('/') else {
            return false;
        };
        iss.strip_prefix(host)
            .and_then(|rest| rest.strip_prefix("/tfp/"))
            .and_then(|rest| rest.strip_prefix(tenant))
            .and_then(|rest| rest.strip_prefix('/'))
            .and_then(|rest| rest.strip_suffix("/v2.0/"))
            .is_some_and(|p| p.eq_ignore_ascii_case(policy))
    }
}

/// How key fetches behave; shared by every source of a validator.
pub(super) struct Fetcher {
    pub(super) http: reqwest::Client,
    pub(super) timeout: Duration,
    /// The least time between refreshes caused by unknown `kid`s.
    pub(super) cooldown: Duration,
    /// The least time between attempts while no key was ever fetched.
    pub(super) retry_after_failure: Duration,
    #[cfg(feature = "metrics")]
    pub(super) metrics: super::metrics::ValidatorMetrics,
}

struct Attempts {
    /// The last fetch of any kind: a caller that waited while it ran uses its result.
    last: Option<Instant>,
    /// The last fetch caused by an unknown `kid` while keys were held: the cooldown runs
    /// from here, so the first rollover after start-up is seen at once.
    last_for_unknown_key: Option<Instant>,
    last_error: Option<Error>,
}

/// Why a refresh is asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Reason {
    /// A token names a `kid` that is not published (or nothing was fetched yet).
    UnknownKey,
    /// The daily schedule: not subject to the cooldown.
    Scheduled,
}

/// One policy's keys.
pub(super) struct KeySource {
    /// The policy, as configured (`None` for a non-B2C authority).
    pub(super) policy: Option<String>,
    metadata_url: Url,
    published: ArcSwap<Published>,
    attempts: tokio::sync::Mutex<Attempts>,
}

impl KeySource {
    pub(super) fn new(policy: Option<String>, metadata_url: Url) -> Self {
        Self {
            policy,
            metadata_url,
            published: ArcSwap::from_pointee(Published::default()),
            attempts: tokio::sync::Mutex::new(Attempts {
                last: None,
                last_for_unknown_key: None,
                last_error: None,
            }),
        }
    }

    /// What is published now; no lock.
    #[inline]
    pub(super) fn published(&self) -> arc_swap::Guard<Arc<Published>> {
        self.published.load()
    }

    /// Fetches the metadata and keys again if `reason` allows it now; concurrent callers
    /// wait for one fetch. `Ok(true)` when keys that were published are gone or their `kid`
    /// now names other material (tokens they verified must be forgotten). An error only when there is still no key at all.
    pub(super) async fn refresh(&self, fetcher: &Fetcher, reason: Reason, kid: Option<&str>) -> Result<bool> {
        let asked = Instant::now();
        let mut attempts = self.attempts.lock().await;
        let have_keys = !self.published.load().keys.is_empty();
        if reason == Reason::UnknownKey {
            // Someone else fetched while this caller waited: use that result.
            if kid.is_some_and(|kid| self.published.load().keys.contains_key(kid))
                || attempts.last.is_some_and(|last| last >= asked)
            {
                return self.outcome(&attempts, have_keys);
            }
            let (since, wait) = if have_keys {
                (attempts.last_for_unknown_key, fetcher.cooldown)
            } else {
                (attempts.last, fetcher.retry_after_failure)
            };
            if since.is_some_and(|last| last.elapsed() < wait) {
                return self.outcome(&attempts, have_keys);
            }
            if have_keys {
                attempts.last_for_unknown_key = Some(Instant::now());
            }
        }
        attempts.last = Some(Instant::now());
        match self.fetch(fetcher).await {
            Ok(published) => {
                let old = self.published.load();
                // A key gone, or a kid now naming other material: tokens the old key verified
                // must be verified again.
                let removed = old
                    .keys
                    .iter()
                    .any(|(kid, key)| published.keys.get(kid).is_none_or(|new| new.as_ref() != key.as_ref()));
                tracing::debug!(
                    policy = self.policy.as_deref(),
                    keys = published.keys.len(),
                    removed,
                    "signing keys fetched"
                );
                self.published.store(Arc::new(published));
                attempts.last_error = None;
                Ok(removed)
            }
            Err(error) => {
                tracing::warn!(
                    policy = self.policy.as_deref(),
                    error = %error,
                    kept_last_good_keys = have_keys,
                    "fetching signing keys failed"
                );
                attempts.last_error = Some(error);
                self.outcome(&attempts, have_keys)
            }
        }
    }

    fn outcome(&self, attempts: &Attempts, have_keys: bool) -> Result<bool> {
        match &attempts.last_error {
            Some(error) if !have_keys && self.published.load().keys.is_empty() => Err(error.clone()),
            _ => Ok(false),
        }
    }

    async fn fetch(&self, fetcher: &Fetcher) -> Result<Published> {
        let fetched = self.fetch_documents(fetcher).await;
        #[cfg(feature = "metrics")]
        fetcher.metrics.key_fetch(fetched.as_ref().err());
        fetched
    }

    async fn fetch_documents(&self, fetcher: &Fetcher) -> Result<Published> {
        let url = &self.metadata_url;
        let metadata = get_json(&fetcher.http, url, fetcher.timeout, Document::Metadata).await?;
        let field = |name| document_string(&metadata, name).map_err(|e| Document::Metadata.error(url, e));
        let issuer = field("issuer")?;
        let jwks_uri = field("jwks_uri")?;
        let jwks_uri = Url::parse(&jwks_uri)
            .map_err(|_| Document::Metadata.error(url, invalid_document_field("jwks_uri", "a URL")))?;
        require_secure(&jwks_uri, "jwks_uri")?;
        let jwks = get_json(&fetcher.http, &jwks_uri, fetcher.timeout, Document::Keys).await?;
        let keys = parse_jwks(&jwks).map_err(|e| Document::Keys.error(&jwks_uri, e))?;
        Ok(Published {
            issuer: Some(issuer),
            keys,
        })
    }
}

/// The RS256 signing keys of a JWKS, by `kid`. Keys for encryption, of other types or
/// algorithms, without a `kid`, or shorter than 2048 bits are skipped; none left is an error.
pub(crate) fn parse_jwks(jwks: &Map<String, Value>) -> Result<HashMap<String, ParsedPublicKey>> {
    let Some(Value::Array(entries)) = jwks.get("keys") else {
        return Err(invalid_document_field("keys", "an array of JSON Web Keys"));
    };
    let mut keys = HashMap::new();
    for entry in entries {
        let text = |name: &str| entry.get(name).and_then(Value::as_str);
        let usable = text("kty") == Some("RSA")
            && text("use").is_none_or(|u| u == "sig")
            && text("alg").is_none_or(|a| a == "RS256");
        let (Some(kid), Some(n), Some(e)) = (text("kid"), text("n"), text("e")) else {
            continue;
        };
        if !usable {
            continue;
        }
        let (Ok(n), Ok(e)) = (URL_SAFE_NO_PAD.decode(n), URL_SAFE_NO_PAD.decode(e)) else {
            continue;
        };
        let n = strip_leading_zeros(&n);
        let e = strip_leading_zeros(&e);
        if n.len() < MIN_MODULUS_BYTES {
            continue;
        }
        if let Ok(key) = (PublicKeyComponents { n, e }).to_parsed_public_key(&RSA_PKCS1_2048_8192_SHA256) {
            keys.insert(kid.to_owned(), key);
        }
    }
    if keys.is_empty() {
        return Err(invalid_document_field(
            "keys",
            "at least one RS256 signing key of 2048 bits or more",
        ));
    }
    Ok(keys)
}

fn strip_leading_zeros(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    &bytes[start..]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn published(issuer: &str) -> Published {
        Published {
            issuer: Some(issuer.into()),
            keys: HashMap::new(),
        }
    }

    #[test]
    fn accepts_the_metadata_issuer_and_its_tfp_form_only() {
        let p = published("https://contoso.b2clogin.com/4ea0f7bf-7c1e-4a9d-9a33-6f1a2b0c9d11/v2.0/");
        assert!(p.accepts_issuer(
            "https://contoso.b2clogin.com/4ea0f7bf-7c1e-4a9d-9a33-6f1a2b0c9d11/v2.0/",
            Some("B2C_1_signin")
        ));
        assert!(p.accepts_issuer(
            "https://contoso.b2clogin.com/tfp/4ea0f7bf-7c1e-4a9d-9a33-6f1a2b0c9d11/b2c_1_signin/v2.0/",
            Some("B2C_1_signin")
        ));
        for wrong in [
            "https://contoso.b2clogin.com/4ea0f7bf-7c1e-4a9d-9a33-6f1a2b0c9d11/v2.0",
            "https://evil.b2clogin.com/4ea0f7bf-7c1e-4a9d-9a33-6f1a2b0c9d11/v2.0/",
            "https://contoso.b2clogin.com/tfp/4ea0f7bf-7c1e-4a9d-9a33-6f1a2b0c9d11/b2c_1_other/v2.0/",
            "https://contoso.b2clogin.com/tfp/00000000-7c1e-4a9d-9a33-6f1a2b0c9d11/b2c_1_signin/v2.0/",
            "",
        ] {
            assert!(!p.accepts_issuer(wrong, Some("B2C_1_signin")), "{wrong}");
        }
        assert!(!Published::default().accepts_issuer("", None));
    }

    #[test]
    fn jwks_without_usable_keys_is_an_error() {
        let jwks = serde_json::json!({"keys": [
            {"kty": "EC", "kid": "a", "crv": "P-256", "x": "AA", "y": "AA"},
            {"kty": "RSA", "kid": "b", "use": "enc", "n": "AQAB", "e": "AQAB"},
            {"kty": "RSA", "kid": "c", "n": "AQAB", "e": "AQAB"},
        ]});
        let Value::Object(jwks) = jwks else { unreachable!() };
        assert!(parse_jwks(&jwks).is_err());
    }
}
