//! [`RedisStore`] (feature `redis`): one token per lifetime for a fleet of replicas.
//!
//! * Tokens are encrypted at rest with AES-256-GCM under a caller-provided key (the key id is
//!   the associated data, so a value cannot be moved to another key); older keys are still
//!   accepted for reading while keys rotate. A value that fails to decrypt or parse is a
//!   miss, overwritten by the next good token.
//! * Keys are keyed hashes (no usernames or client IDs in Redis), under a prefix, with a hash
//!   tag so that a token and its lock share a Redis Cluster slot; values expire with the
//!   token (`PXAT`).
//! * Cross-replica single flight: `SET lock NX PX` with a random value, released by a Lua
//!   compare-and-delete; compare-and-delete of tokens by version, likewise in Lua.
//! * Invalidations are published on a channel; every replica's listener drops its copy.
//! * Every call is bounded by a short timeout (100 ms by default): when Redis is slow, paused,
//!   full or down, the cache carries on with its own copy and the token endpoint.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use redis::aio::ConnectionManager;
use secrecy::{ExposeSecret, SecretSlice};
use zeroize::Zeroizing;

use super::invalidations::{InvalidationHub, StoreInvalidations};
use super::store::{
    StoreError, StoreFuture, StoreKey, StoreLock, StoreNamespace, StoreResult, StoredToken, TokenStore,
};
use crate::error::{Error, Result};

const DEFAULT_TIMEOUT: Duration = Duration::from_millis(100);
const DEFAULT_PREFIX: &str = "b2c-token:";
/// Bytes before the ciphertext: the version (for compare-and-delete in Lua), then the nonce.
const VERSION_LEN: usize = 8;

/// A stored token (access, refresh and ID token, encrypted) is a few kilobytes; a value past
/// this is not one, and is neither read whole nor decrypted.
const MAX_VALUE_BYTES: usize = 64 * 1024;

/// How long an invalidated version stays refused: a day, longer than any access token lives.
const TOMBSTONE_TTL_MS: u64 = 24 * 3600 * 1000;

/// What the AEAD authenticates besides the ciphertext: a label, the key id and the version
/// stored in clear before it (compare-and-delete reads it in Lua), so that a value cannot be
/// moved to another key nor its version changed.
fn associated_data(key: &StoreKey, version: u64) -> [u8; 40] {
    let mut data = [0u8; 40];
    data[..16].copy_from_slice(b"b2c-token/v2\0\0\0\0");
    data[16..32].copy_from_slice(&key.id().to_be_bytes());
    data[32..].copy_from_slice(&version.to_be_bytes());
    data
}

/// Deletes `KEYS[1]` if its first 8 bytes are `ARGV[1]` (a token's version, or a lock's value).
const COMPARE_AND_DELETE: &str = r"
local value = redis.call('GET', KEYS[1])
if value and string.sub(value, 1, 8) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
";

/// A [`TokenStore`] on Redis, shared by every replica of a service. Cheap to clone.
///
/// ```no_run
/// # async fn demo() -> Result<(), b2c_token::Error> {
/// use std::sync::Arc;
/// // 32 random bytes, from your secret store (e.g. Azure Key Vault), the same on every replica.
/// let key: [u8; 32] = *b"0123456789abcdef0123456789abcdef";
/// let store = b2c_token::store::RedisStore::builder("rediss://contoso.redis.cache.windows.net:6380", key)
///     .key_prefix("orders-api:")
///     .build()
///     .await?;
/// let cache = b2c_token::TokenCache::builder().store(Arc::new(store)).build();
/// # let _ = cache; Ok(()) }
/// ```
#[derive(Clone)]
pub struct RedisStore {
    inner: Arc<Inner>,
}

struct Inner {
    connection: ConnectionManager,
    prefix: String,
    /// The current key first, then the previous ones (read only).
    keys: Vec<LessSafeKey>,
    namespace: StoreNamespace,
    timeout: Duration,
    channel: String,
    invalidations: InvalidationHub,
    compare_and_delete: redis::Script,
    listener: tokio::task::JoinHandle<()>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.listener.abort();
    }
}

/// Configures a [`RedisStore`].
#[must_use]
pub struct RedisStoreBuilder {
    url: String,
    key: Zeroizing<[u8; 32]>,
    previous: Vec<Zeroizing<[u8; 32]>>,
    namespace_secret: Option<Zeroizing<Vec<u8>>>,
    prefix: String,
    timeout: Duration,
}

impl RedisStore {
    /// A store on the Redis at `url` (`redis://`, `rediss://` for TLS as Azure Cache for
    /// Redis on port 6380 wants, or `redis+unix:///path`), encrypting with `encryption_key`
    /// (32 random bytes, the same on every replica).
    pub fn builder(url: &str, encryption_key: [u8; 32]) -> RedisStoreBuilder {
        RedisStoreBuilder {
            url: url.to_owned(),
            key: Zeroizing::new(encryption_key),
            previous: Vec::new(),
            namespace_secret: None,
            prefix: DEFAULT_PREFIX.to_owned(),
            timeout: DEFAULT_TIMEOUT,
        }
    }

    fn token_key(&self, key: &StoreKey) -> String {
        // The `{...}` hash tag puts a token and its lock in one Redis Cluster slot.
        format!("{}{{{key}}}:token", self.inner.prefix)
    }

    /// Marks an invalidated version: loads refuse it while the key lives (a day, longer than
    /// any access token), even if a writer puts its old value back.
    fn tombstone_key(&self, key: &StoreKey, version: u64) -> String {
        format!("{}{{{key}}}:rejected:{version:016x}", self.inner.prefix)
    }

    fn lock_key(&self, key: &StoreKey) -> String {
        format!("{}{{{key}}}:lock", self.inner.prefix)
    }

    async fn run<T: redis::FromRedisValue>(&self, what: &str, command: &redis::Cmd) -> StoreResult<T> {
        let mut connection = self.inner.connection.clone();
        match tokio::time::timeout(self.inner.timeout, command.query_async(&mut connection)).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => Err(StoreError::new(format!("Redis {what} failed: {:?}", error.kind()))),
            Err(_) => Err(StoreError::new(format!(
                "Redis {what} took longer than {} ms",
                self.inner.timeout.as_millis()
            ))),
        }
    }

    async fn compare_and_delete(&self, key: String, expected: [u8; VERSION_LEN]) -> StoreResult<bool> {
        let mut connection = self.inner.connection.clone();
        let mut invocation = self.inner.compare_and_delete.key(key);
        invocation.arg(&expected[..]);
        match tokio::time::timeout(self.inner.timeout, invocation.invoke_async::<i64>(&mut connection)).await {
            Ok(Ok(deleted)) => Ok(deleted == 1),
            Ok(Err(error)) => Err(StoreError::new(format!(
                "Redis compare-and-delete failed: {:?}",
                error.kind()
            ))),
            Err(_) => Err(StoreError::new("Redis compare-and-delete timed out")),
        }
    }

    fn seal(&self, key: &StoreKey, token: &StoredToken) -> StoreResult<Vec<u8>> {
        let plain = token.to_bytes();
        let mut nonce = [0u8; NONCE_LEN];
        aws_lc_rs::rand::fill(&mut nonce).map_err(|_| StoreError::new("no randomness for a nonce"))?;
        let mut sealed = Zeroizing::new(plain.expose_secret().to_vec());
        self.inner.keys[0]
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(associated_data(key, token.version())),
                &mut *sealed,
            )
            .map_err(|_| StoreError::new("encryption failed"))?;
        let mut value = Vec::with_capacity(VERSION_LEN + NONCE_LEN + sealed.len());
        value.extend_from_slice(&token.version().to_be_bytes());
        value.extend_from_slice(&nonce);
        value.extend_from_slice(&sealed);
        Ok(value)
    }

    /// The token in `value`, if any key opens it and it parses.
    fn open(&self, key: &StoreKey, value: &[u8]) -> Option<StoredToken> {
        let version = u64::from_be_bytes(value.get(..VERSION_LEN)?.try_into().ok()?);
        let nonce: [u8; NONCE_LEN] = value.get(VERSION_LEN..VERSION_LEN + NONCE_LEN)?.try_into().ok()?;
        let sealed = value.get(VERSION_LEN + NONCE_LEN..)?;
        for cipher in &self.inner.keys {
            let mut buffer = Zeroizing::new(sealed.to_vec());
            if let Ok(plain) = cipher.open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(associated_data(key, version)),
                &mut buffer,
            ) {
                let plain = SecretSlice::from(plain.to_vec());
                return StoredToken::from_bytes(&plain)
                    .ok()
                    .filter(|token| token.version() == version);
            }
        }
        tracing::debug!("a stored token did not decrypt with any configured key: treated as a miss");
        None
    }
}

impl RedisStoreBuilder {
    /// A key tokens were encrypted with before the current one: still accepted for reading,
    /// so replicas can move to a new key one by one. Call once per old key.
    pub fn previous_key(mut self, key: [u8; 32]) -> Self {
        self.previous.push(Zeroizing::new(key));
        self
    }

    /// The secret behind store key ids and credential fingerprints (16+ random bytes, the same
    /// on every replica). By default it is derived from the encryption key; set it when you
    /// plan to rotate keys, so that replicas on the old and the new key still share tokens.
    pub fn namespace_secret(mut self, secret: &[u8]) -> Self {
        self.namespace_secret = Some(Zeroizing::new(secret.to_vec()));
        self
    }

    /// Prefix of every Redis key and of the invalidation channel. Default `b2c-token:`.
    pub fn key_prefix(mut self, prefix: &str) -> Self {
        prefix.clone_into(&mut self.prefix);
        self
    }

    /// The longest any Redis call may take before the cache carries on without it. Default
    /// 100 ms.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Connects (and subscribes to invalidations).
    ///
    /// # Errors
    /// [`Error::Config`] for a URL that does not parse or a Redis that cannot be reached now.
    pub async fn build(self) -> Result<RedisStore> {
        let client = redis::Client::open(self.url.as_str())
            .map_err(|e| Error::config(format!("Redis URL does not parse: {:?}", e.kind())))?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.timeout.max(Duration::from_secs(1))))
            .set_response_timeout(Some(self.timeout))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_secs(2));
        let connection = ConnectionManager::new_with_config(client.clone(), config)
            .await
            .map_err(|e| Error::config(format!("cannot connect to Redis: {:?}", e.kind())))?;
        let cipher = |key: &[u8; 32]| {
            UnboundKey::new(&AES_256_GCM, key)
                .map(LessSafeKey::new)
                .map_err(|_| Error::config("the encryption key must be 32 bytes"))
        };
        let mut keys = vec![cipher(&self.key)?];
        for key in &self.previous {
            keys.push(cipher(key)?);
        }
        let namespace = match &self.namespace_secret {
            Some(secret) => StoreNamespace::from_secret(secret),
            None => {
                // Derived, not the key itself: the namespace key must not reveal the encryption key.
                let tag = aws_lc_rs::hmac::sign(
                    &aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &*self.key),
                    b"b2c-token/redis-store/namespace",
                );
                StoreNamespace::from_secret(tag.as_ref())
            }
        };
        let channel = format!("{}invalidations", self.prefix);
        let invalidations = InvalidationHub::new();
        let listener = tokio::spawn(listen(client, channel.clone(), invalidations.clone()));
        Ok(RedisStore {
            inner: Arc::new(Inner {
                connection,
                prefix: self.prefix,
                keys,
                namespace,
                timeout: self.timeout,
                channel,
                invalidations,
                compare_and_delete: redis::Script::new(COMPARE_AND_DELETE),
                listener,
            }),
        })
    }
}

/// Forwards invalidations published on `channel` to the caches of this process, reconnecting
/// with back-off while Redis is away.
async fn listen(client: redis::Client, channel: String, invalidations: InvalidationHub) {
    use futures_util::StreamExt as _;
    let mut wait = Duration::from_millis(100);
    loop {
        if let Ok(mut pubsub) = client.get_async_pubsub().await {
            if pubsub.subscribe(&channel).await.is_ok() {
                wait = Duration::from_millis(100);
                let mut messages = pubsub.into_on_message();
                while let Some(message) = messages.next().await {
                    let key = std::str::from_utf8(message.get_payload_bytes())
                        .ok()
                        .and_then(StoreKey::from_hex);
                    if let Some(key) = key {
                        invalidations.publish(key);
                    }
                }
            }
        }
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(Duration::from_secs(5));
    }
}

impl TokenStore for RedisStore {
    fn namespace(&self) -> &StoreNamespace {
        &self.inner.namespace
    }

    fn load<'a>(&'a self, key: &'a StoreKey) -> StoreFuture<'a, StoreResult<Option<StoredToken>>> {
        Box::pin(async move {
            // At most one byte past the cap comes back: a huge value (written by a broken or
            // hostile writer) costs neither the transfer nor its decryption.
            let value: Vec<u8> = self
                .run(
                    "GETRANGE",
                    redis::cmd("GETRANGE")
                        .arg(self.token_key(key))
                        .arg(0)
                        .arg(MAX_VALUE_BYTES),
                )
                .await?;
            if value.len() > MAX_VALUE_BYTES {
                tracing::debug!("a stored value is larger than {MAX_VALUE_BYTES} bytes: treated as a miss");
                return Ok(None);
            }
            let Some(token) = self.open(key, &value) else {
                return Ok(None);
            };
            let rejected: bool = self
                .run(
                    "EXISTS",
                    redis::cmd("EXISTS").arg(self.tombstone_key(key, token.version())),
                )
                .await?;
            Ok((!rejected).then_some(token))
        })
    }

    fn save<'a>(&'a self, key: &'a StoreKey, token: &'a StoredToken) -> StoreFuture<'a, StoreResult<()>> {
        Box::pin(async move {
            let expires_ms = token
                .expires_at()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
            if token.expires_at() <= SystemTime::now() {
                return Ok(()); // nothing worth sharing
            }
            let value = self.seal(key, token)?;
            self.run::<()>(
                "SET",
                redis::cmd("SET")
                    .arg(self.token_key(key))
                    .arg(value)
                    .arg("PXAT")
                    .arg(expires_ms),
            )
            .await
        })
    }

    fn remove_if<'a>(&'a self, key: &'a StoreKey, version: u64) -> StoreFuture<'a, StoreResult<bool>> {
        Box::pin(async move {
            // The tombstone first: from then on no replica adopts this version, whatever
            // happens to the value.
            self.run::<()>(
                "SET",
                redis::cmd("SET")
                    .arg(self.tombstone_key(key, version))
                    .arg(1)
                    .arg("PX")
                    .arg(TOMBSTONE_TTL_MS),
            )
            .await?;
            self.compare_and_delete(self.token_key(key), version.to_be_bytes())
                .await
        })
    }

    fn try_lock<'a>(&'a self, key: &'a StoreKey, ttl: Duration) -> StoreFuture<'a, StoreResult<Option<StoreLock>>> {
        Box::pin(async move {
            let lock = StoreLock(super::stored_token::random_u64());
            let acquired: Option<String> = self
                .run(
                    "SET NX",
                    redis::cmd("SET")
                        .arg(self.lock_key(key))
                        .arg(&lock.0.to_be_bytes()[..])
                        .arg("NX")
                        .arg("PX")
                        .arg(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX)),
                )
                .await?;
            Ok(acquired.map(|_| lock))
        })
    }

    fn unlock<'a>(&'a self, key: &'a StoreKey, lock: StoreLock) -> StoreFuture<'a, StoreResult<()>> {
        Box::pin(async move {
            self.compare_and_delete(self.lock_key(key), lock.0.to_be_bytes())
                .await
                .map(|_| ())
        })
    }

    fn publish_invalidation<'a>(&'a self, key: &'a StoreKey) -> StoreFuture<'a, StoreResult<()>> {
        Box::pin(async move {
            self.run::<i64>(
                "PUBLISH",
                redis::cmd("PUBLISH").arg(&self.inner.channel).arg(key.to_string()),
            )
            .await
            .map(|_| ())
        })
    }

    fn invalidations(&self) -> Option<StoreInvalidations> {
        Some(self.inner.invalidations.subscribe())
    }
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("prefix", &self.inner.prefix)
            .field("timeout", &self.inner.timeout)
            .field("keys", &self.inner.keys.len())
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for RedisStoreBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStoreBuilder")
            .field("prefix", &self.prefix)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}
