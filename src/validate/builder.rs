//! Configuring a [`Validator`]: authorities (one per accepted policy), audiences, issuers,
//! scopes, key refresh and HTTP settings, all checked at [`ValidatorBuilder::build`].

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use super::keys::{Fetcher, KeySource};
use super::seen::Seen;
use super::{Inner, Rules, Validator, DEFAULT_MAX_TOKEN_BYTES};
use crate::authority::Authority;
use crate::error::{Error, Result};
use crate::net::{http_client, DEFAULT_CONNECT_TIMEOUT, DEFAULT_TIMEOUT};

const DEFAULT_LEEWAY: Duration = Duration::from_secs(60);
const DEFAULT_REFRESH_INTERVAL: Duration = Duration::from_secs(24 * 3600);
/// Between refreshes for unknown `kid`s: a burst of forged kids costs one fetch, and a real
/// rollover is seen within this long even while forgeries keep coming (issue 26, item 3).
const DEFAULT_COOLDOWN: Duration = Duration::from_secs(10);
const DEFAULT_RETRY_AFTER_FAILURE: Duration = Duration::from_secs(10);
const DEFAULT_CACHE_CAPACITY: usize = 1024;

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
    #[cfg(feature = "metrics")]
    meter: Option<opentelemetry::metrics::Meter>,
    #[cfg(feature = "metrics")]
    metrics_name: String,
}

impl ValidatorBuilder {
    /// See [`Validator::builder`].
    pub(super) fn new(authority: Authority, client_id: &str) -> Self {
        Self {
            authorities: vec![authority],
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
            #[cfg(feature = "metrics")]
            meter: None,
            #[cfg(feature = "metrics")]
            metrics_name: crate::metrics::DEFAULT_NAME.to_owned(),
        }
    }

    /// Accepts tokens from another policy too (each policy is its own issuer of keys).
    pub fn authority(mut self, authority: Authority) -> Self {
        self.authorities.push(authority);
        self
    }

    /// The OpenTelemetry meter this validator reports its results and key fetches to (feature
    /// `metrics`; see [`crate::metrics`]). Default: the global meter provider's, as it is at
    /// [`ValidatorBuilder::build`].
    #[cfg(feature = "metrics")]
    #[cfg_attr(docsrs, doc(cfg(feature = "metrics")))]
    pub fn meter(mut self, meter: &opentelemetry::metrics::Meter) -> Self {
        self.meter = Some(meter.clone());
        self
    }

    /// The `b2c_token.validator.name` this validator's metrics carry (feature `metrics`).
    /// Default `default`; validators reporting to one meter need different names.
    #[cfg(feature = "metrics")]
    #[cfg_attr(docsrs, doc(cfg(feature = "metrics")))]
    pub fn metrics_name(mut self, name: &str) -> Self {
        self.metrics_name = name.to_owned();
        self
    }

    /// Accepts another audience (`aud`): a second client ID of the same API.
    pub fn audience(mut self, client_id: &str) -> Self {
        self.rules.audiences.push(client_id.trim().to_owned());
        self
    }

    /// Accepts another exact issuer: the tokens of the same tenant fetched through another
    /// host (a custom domain and `b2clogin.com` give different `iss`), or Entra ID v1.0
    /// tokens (`https://sts.windows.net/{tenant-id}/`), which the v2.0 metadata's keys sign.
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

    /// The least time between refreshes caused by tokens with an unknown `kid`. Default 10 s:
    /// forged `kid`s cost the key endpoint at most one request per 10 s per policy, and a real
    /// new key is accepted at most 10 s after its first token, however many forgeries come.
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
            let same_policy = |source: &KeySource| match (&source.policy, &policy) {
                (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
                (None, None) => true,
                _ => false,
            };
            if sources.iter().any(same_policy) {
                return Err(Error::config(format!(
                    "two authorities for {}: a validator keeps one issuer of keys per policy; remove the second authority (or use a validator per tenant)",
                    policy.as_deref().map_or_else(|| "the same tenant (no policy)".to_owned(), |p| format!("policy {p}"))
                )));
            }
            sources.push(KeySource::new(policy, metadata.clone()));
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
                #[cfg(feature = "metrics")]
                metrics: super::metrics::ValidatorMetrics::new(
                    &self.meter.unwrap_or_else(crate::metrics::default_meter),
                    self.metrics_name,
                ),
            },
            seen: Seen::new(self.cache_capacity),
            background: OnceLock::new(),
        })))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn forged_kids_cost_one_fetch_per_ten_seconds_by_default() {
        assert_eq!(super::DEFAULT_COOLDOWN, std::time::Duration::from_secs(10));
    }
}
