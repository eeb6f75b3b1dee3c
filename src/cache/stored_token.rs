//! [`StoredToken`]: a token in the form a store keeps across processes.
//!
//! A `Token` holds process-local `Instant`s; a stored token holds absolute wall-clock times
//! (Unix milliseconds) and is rebuilt onto this process's clock when loaded. It carries the
//! rotated refresh token and the fingerprint of the credential that earned it (a keyed hash,
//! never the password or secret), and a random version so that compare-and-delete can tell
//! one write from another.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use secrecy::{ExposeSecret, SecretSlice};
use serde::{Deserialize, Serialize};

use super::store_error::StoreError;
use crate::scope::Scopes;
use crate::token::Token;

/// The format version written into every stored token.
const FORMAT: u8 = 1;

/// A token as a [`TokenStore`](super::TokenStore) keeps it. Its bytes hold secrets: a store
/// must encrypt them (as `RedisStore` does) or keep them in memory only.
#[derive(Clone)]
pub struct StoredToken {
    form: Arc<Form>,
}

/// The serialized fields. Secrets are plain strings only inside this private struct, which
/// never leaves the module except as (secret) bytes.
#[derive(Serialize, Deserialize)]
struct Form {
    format: u8,
    version: u64,
    fingerprint: u64,
    access_token: Option<String>,
    id_token: Option<String>,
    refresh_token: Option<String>,
    token_type: String,
    scope: Option<String>,
    resource: Option<String>,
    issued_ms: u64,
    expires_ms: u64,
    refresh_token_expires_ms: Option<u64>,
}

impl Drop for Form {
    fn drop(&mut self) {
        use zeroize::Zeroize as _;
        self.access_token.zeroize();
        self.id_token.zeroize();
        self.refresh_token.zeroize();
    }
}

fn unix_ms(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl StoredToken {
    /// The token in stored form, bound to `fingerprint`. `None` for a token without a known
    /// expiry (nothing to tell other processes when to stop using it).
    pub(crate) fn from_token(token: &Token, fingerprint: u64, lifetime_if_unknown: Duration) -> Self {
        let now = SystemTime::now();
        let issued_ms = unix_ms(now.checked_sub(token.age()).unwrap_or(now));
        let expires = token
            .expires_on()
            .unwrap_or_else(|| now + lifetime_if_unknown.saturating_sub(token.age()));
        Self {
            form: Arc::new(Form {
                format: FORMAT,
                version: random_u64(),
                fingerprint,
                access_token: token.access_token().map(|t| t.expose_secret().to_owned()),
                id_token: token.id_token().map(|t| t.expose_secret().to_owned()),
                refresh_token: token.refresh_token().map(|t| t.expose_secret().to_owned()),
                token_type: token.token_type().to_owned(),
                scope: token.granted_scope().map(str::to_owned),
                resource: token.resource().map(str::to_owned),
                issued_ms,
                expires_ms: unix_ms(expires),
                refresh_token_expires_ms: token.refresh_token_expires_on().map(unix_ms),
            }),
        }
    }

    /// The token on this process's clock, for requests made with `scopes`.
    pub(crate) fn to_token(&self, scopes: Scopes) -> Token {
        let form = &*self.form;
        let at = |ms: u64| UNIX_EPOCH + Duration::from_millis(ms);
        Token::from_stored(
            form.access_token.clone(),
            form.id_token.clone(),
            form.refresh_token.clone(),
            form.token_type.clone(),
            scopes,
            form.scope.clone(),
            form.resource.clone(),
            at(form.issued_ms),
            at(form.expires_ms),
            form.refresh_token_expires_ms.map(at),
        )
    }

    /// The same token without its refresh token, for stores that keep access tokens only.
    pub(crate) fn without_refresh_token(&self) -> Self {
        let form = &*self.form;
        Self {
            form: Arc::new(Form {
                format: form.format,
                version: form.version,
                fingerprint: form.fingerprint,
                access_token: form.access_token.clone(),
                id_token: form.id_token.clone(),
                refresh_token: None,
                token_type: form.token_type.clone(),
                scope: form.scope.clone(),
                resource: form.resource.clone(),
                issued_ms: form.issued_ms,
                expires_ms: form.expires_ms,
                refresh_token_expires_ms: None,
            }),
        }
    }

    /// The fingerprint of the credential that earned the token.
    pub(crate) fn fingerprint(&self) -> u64 {
        self.form.fingerprint
    }

    /// A random number identifying this write: compare-and-delete removes a stored token
    /// only if its version is still the one the caller holds.
    #[must_use]
    pub fn version(&self) -> u64 {
        self.form.version
    }

    /// When the access token expires: stores expire the entry then (Redis `PXAT`).
    #[must_use]
    pub fn expires_at(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(self.form.expires_ms)
    }

    /// The serialized form (JSON). It contains the tokens: encrypt it before it leaves the
    /// process.
    #[must_use]
    pub fn to_bytes(&self) -> SecretSlice<u8> {
        SecretSlice::from(serde_json::to_vec(&*self.form).unwrap_or_default())
    }

    /// Reads what [`StoredToken::to_bytes`] wrote.
    ///
    /// # Errors
    /// [`StoreError`] if the bytes are not a stored token of a format this version reads.
    pub fn from_bytes(bytes: &SecretSlice<u8>) -> Result<Self, StoreError> {
        let form: Form = serde_json::from_slice(bytes.expose_secret())
            .map_err(|_| StoreError::new("a stored token does not parse (written by another version?)"))?;
        if form.format != FORMAT {
            return Err(StoreError::new(format!(
                "stored token format {} is not {FORMAT}",
                form.format
            )));
        }
        Ok(Self { form: Arc::new(form) })
    }
}

impl fmt::Debug for StoredToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredToken")
            .field("version", &self.form.version)
            .field("expires_at", &self.expires_at())
            .finish_non_exhaustive()
    }
}

/// A random 64-bit number from std's per-process random hasher keys.
pub(crate) fn random_u64() -> u64 {
    use std::hash::BuildHasher;
    std::collections::hash_map::RandomState::new().hash_one(SystemTime::now())
}
