//! `RedisStore` against a real `redis-server` (started by the tests on a unix socket): a fleet
//! of replicas makes one token request per token lifetime; rotated refresh tokens reach every
//! replica; a dead lock holder is replaced; Redis down, paused or full costs nothing but the
//! sharing; wrong keys and corrupted values are misses, then overwritten; invalidations reach
//! every replica. Request counts are asserted at the fake tenant.

use crate::support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::redis::RedisServer;
use b2c_token::test_tenant::{defaults, FakeTenant, Fault};
use b2c_token::{
    client::GrantKind, client::RetryPolicy, store::RedisStore, Client, Password, Scopes, TokenCache, TokenSource,
};

const KEY: [u8; 32] = *b"0123456789abcdef0123456789abcdef";
const OTHER_KEY: [u8; 32] = *b"fedcba9876543210fedcba9876543210";
const NAMESPACE: &[u8] = b"fleet-namespace-secret";

async fn store(redis: &RedisServer, key: [u8; 32]) -> Arc<RedisStore> {
    Arc::new(store_builder(redis, key).build().await.unwrap())
}

fn store_builder(redis: &RedisServer, key: [u8; 32]) -> b2c_token::store::RedisStoreBuilder {
    RedisStore::builder(&redis.url(), key).namespace_secret(NAMESPACE)
}

/// One replica: its own cache and its own Redis connections.
async fn replica(redis: &RedisServer) -> TokenCache {
    replica_on(store(redis, KEY).await)
}

/// A replica whose Redis calls may take up to a second: for tests of what replicas do with a
/// working store, on a machine loaded enough (all tests at once on 2 cores) that the default
/// 100 ms would sometimes pass for an outage, and the replica would rightly go it alone.
/// This one also holds the store's fetch lock for `lock_ttl`, with a 2 s call timeout.
async fn patient_replica_with_lock(redis: &RedisServer, lock_ttl: Duration) -> TokenCache {
    let store = store_builder(redis, KEY)
        .timeout(Duration::from_secs(2))
        .build()
        .await
        .unwrap();
    TokenCache::builder()
        .store(Arc::new(store))
        .store_lock_ttl(lock_ttl)
        .build()
}

/// As [`patient_replica_with_lock`], with a 1 s call timeout and a 2 s lock.
async fn patient_replica(redis: &RedisServer) -> TokenCache {
    let store = store_builder(redis, KEY)
        .timeout(Duration::from_secs(1))
        .build()
        .await
        .unwrap();
    replica_on(Arc::new(store))
}

fn replica_on(store: Arc<RedisStore>) -> TokenCache {
    TokenCache::builder()
        .store(store)
        .store_lock_ttl(Duration::from_secs(2))
        .build()
}

fn api(tenant: &FakeTenant) -> Scopes {
    Scopes::new([tenant.api_default_scope()]).unwrap()
}

/// Every source reads its token every 20 ms for `run`; all calls must succeed.
async fn read_for(sources: &[TokenSource], run: Duration) {
    let deadline = tokio::time::Instant::now() + run;
    let mut tasks = tokio::task::JoinSet::new();
    for source in sources {
        let source = source.clone();
        tasks.spawn(async move {
            while tokio::time::Instant::now() < deadline {
                let token = source.token().await.expect("a token");
                assert!(!token.is_expired());
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        });
    }
    while let Some(result) = tasks.join_next().await {
        result.unwrap();
    }
}

/// Refresh cycles of `lifetime` tokens in `elapsed`: one fetch, then one refresh per
/// half-lifetime window (shortened by up to a tenth by jitter).
fn cycles(elapsed: Duration, lifetime: Duration) -> usize {
    1 + (elapsed.as_secs_f64() / (lifetime.as_secs_f64() / 2.0 * 0.9)) as usize
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_replicas_make_one_request_per_token_lifetime() {
    let redis = RedisServer::start();
    let lifetime = Duration::from_secs(2);
    let tenant = FakeTenant::builder()
        .access_token_lifetime(lifetime)
        .start()
        .await
        .unwrap();
    let mut sources = Vec::new();
    for _ in 0..10 {
        sources.push(
            replica(&redis)
                .await
                .client_credentials(&support::daemon(&tenant), &api(&tenant)),
        );
    }
    let started = Instant::now();
    read_for(&sources, Duration::from_secs(5)).await;
    let requests = tenant.total_token_requests();
    let expected = cycles(started.elapsed(), lifetime);
    println!(
        "10 replicas, {:?}: {requests} token requests for at most {expected} refresh cycles",
        started.elapsed()
    );
    assert!(requests <= expected, "{requests} requests for {expected} cycles");
    assert!(requests >= 4, "proactive refresh kept happening: {requests}");
}

/// The child side of `ten_processes_share_one_token`: a replica in its own OS process.
#[tokio::test]
async fn replica_process() {
    let (Ok(base), Ok(socket)) = (std::env::var("B2C_TEST_TENANT"), std::env::var("B2C_TEST_REDIS")) else {
        return; // run by the parent test only
    };
    let url = format!("redis+unix://{socket}");
    let store = RedisStore::builder(&url, KEY)
        .namespace_secret(NAMESPACE)
        .build()
        .await
        .unwrap();
    let cache = TokenCache::builder().store(Arc::new(store)).build();
    let authority = b2c_token::Authority::builder(defaults::TENANT, defaults::SIGNIN_POLICY)
        .base_url(&base)
        .build()
        .unwrap();
    let client = Client::builder(authority, defaults::CONFIDENTIAL_CLIENT_ID)
        .client_secret(defaults::CLIENT_SECRET)
        .build()
        .unwrap();
    let scope = format!("https://{}.onmicrosoft.com/api/.default", defaults::TENANT);
    let source = cache.client_credentials(&client, &Scopes::new([scope]).unwrap());
    read_for(&[source], Duration::from_secs(4)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_processes_share_one_token() {
    let redis = RedisServer::start();
    let lifetime = Duration::from_secs(2);
    let tenant = FakeTenant::builder()
        .access_token_lifetime(lifetime)
        .start()
        .await
        .unwrap();
    let exe = std::env::current_exe().unwrap();
    let started = Instant::now();
    let children: Vec<_> = (0..10)
        .map(|_| {
            tokio::process::Command::new(&exe)
                .args(["--exact", "replica_process", "--nocapture", "--test-threads", "1"])
                .env("B2C_TEST_TENANT", tenant.base_url().as_str())
                .env("B2C_TEST_REDIS", redis.socket())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let output = child.wait_with_output().await.unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    }
    let requests = tenant.total_token_requests();
    // The processes start over ~a second; each reads for 4 s.
    let expected = cycles(started.elapsed(), lifetime);
    println!(
        "10 processes, {:?}: {requests} token requests for at most {expected} refresh cycles",
        started.elapsed()
    );
    assert!(requests <= expected, "{requests} requests for {expected} cycles");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotated_refresh_tokens_reach_every_replica() {
    let redis = RedisServer::start();
    // Margins for a loaded machine (the suite runs four test threads on two cores): a lock
    // that outlives a slow holder's refresh and store calls that do not time out, else a
    // replica refreshes alone with an older refresh token (what this test must rule out when
    // the store works).
    let lifetime = Duration::from_secs(3);
    let tenant = FakeTenant::builder()
        .access_token_lifetime(lifetime)
        .old_refresh_tokens_stay_valid(false)
        .start()
        .await
        .unwrap();
    let client = tenant
        .public_client(defaults::ROPC_POLICY)
        .unwrap()
        .retry_policy(RetryPolicy::none())
        .build()
        .unwrap();
    let (mut sources, mut caches) = (Vec::new(), Vec::new());
    for _ in 0..10 {
        let cache = patient_replica_with_lock(&redis, Duration::from_secs(4)).await;
        caches.push(cache.clone());
        sources.push(cache.password(
            &client,
            defaults::USERNAME,
            &Password::new(defaults::PASSWORD),
            &Scopes::empty(),
        ));
    }
    read_for(&sources, Duration::from_secs(6)).await;
    // Every refresh used the newest refresh token: a reused one would revoke the grant and
    // force a password sign-in.
    let store_errors: u64 = caches.iter().map(|cache| cache.stats().store_errors).sum();
    assert_eq!(
        tenant.token_requests(GrantKind::Password),
        1,
        "{store_errors} store errors (a replica that cannot reach the store refreshes alone)"
    );
    assert!(tenant.token_requests(GrantKind::RefreshToken) >= 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_that_dies_holding_the_lock_is_replaced_after_the_lock_ttl() {
    let redis = RedisServer::start();
    let tenant = FakeTenant::start().await.unwrap();
    // The first request hangs: the replica that sent it is then killed (its task aborted).
    tenant.inject(Fault::Delay(Duration::from_secs(30)), 1);
    let doomed = replica(&redis)
        .await
        .client_credentials(&support::daemon(&tenant), &api(&tenant));
    let holder = tokio::spawn(async move { doomed.token().await });
    let deadline = Instant::now() + Duration::from_secs(5);
    while tenant.total_token_requests() == 0 {
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    holder.abort();
    let survivor = replica(&redis)
        .await
        .client_credentials(&support::daemon(&tenant), &api(&tenant));
    let started = Instant::now();
    survivor.token().await.unwrap();
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(1500) && waited < Duration::from_secs(5),
        "took over after {waited:?} (lock TTL 2 s)"
    );
    assert_eq!(tenant.total_token_requests(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_keep_flowing_when_redis_is_paused_full_or_down() {
    let mut redis = RedisServer::start();
    let tenant = FakeTenant::start().await.unwrap();
    let cache = replica(&redis).await;
    let warm = cache.client_credentials(&support::daemon(&tenant), &api(&tenant));
    warm.token().await.unwrap();

    // Paused: every Redis call times out (100 ms); hits never touch Redis.
    redis.cli(&["CLIENT", "PAUSE", "3000", "ALL"]);
    let started = Instant::now();
    for _ in 0..1000 {
        warm.token().await.unwrap();
    }
    assert!(
        started.elapsed() < Duration::from_millis(50),
        "hits waited on Redis: {:?}",
        started.elapsed()
    );
    let other_user = tenant.public_client(defaults::ROPC_POLICY).unwrap().build().unwrap();
    let miss = cache.password(
        &other_user,
        defaults::USERNAME,
        &Password::new(defaults::PASSWORD),
        &Scopes::empty(),
    );
    let started = Instant::now();
    miss.token().await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "a miss took {:?}",
        started.elapsed()
    );
    redis.cli(&["CLIENT", "UNPAUSE"]);

    // Full: writes fail with OOM; tokens still come from the token endpoint.
    redis.cli(&["CONFIG", "SET", "maxmemory-policy", "noeviction"]);
    redis.cli(&["CONFIG", "SET", "maxmemory", "1"]);
    cache.invalidate(miss.key());
    miss.token().await.unwrap();
    redis.cli(&["CONFIG", "SET", "maxmemory", "0"]);

    // Down: the same.
    redis.stop();
    cache.invalidate(miss.key());
    let started = Instant::now();
    miss.token().await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "a miss took {:?}",
        started.elapsed()
    );
    for _ in 0..1000 {
        warm.token().await.unwrap();
    }
    assert!(
        cache.stats().store_errors >= 3,
        "the outages were counted: {}",
        cache.stats().store_errors
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_key_or_a_corrupted_value_is_a_miss_then_overwritten() {
    let redis = RedisServer::start();
    let tenant = FakeTenant::start().await.unwrap();
    let first = TokenCache::builder().store(store(&redis, KEY).await).build();
    first
        .client_credentials(&support::daemon(&tenant), &api(&tenant))
        .token()
        .await
        .unwrap();
    assert_eq!(tenant.total_token_requests(), 1);
    let keys = redis.cli(&["--scan", "--pattern", "b2c-token:*:token"]);
    assert_eq!(keys.lines().count(), 1, "{keys}");
    assert!(
        !keys.contains("contoso") && !keys.contains(defaults::CONFIDENTIAL_CLIENT_ID),
        "readable key {keys}"
    );
    let value = redis.cli(&["GET", keys.trim()]);
    assert!(!value.contains("eyJ"), "the token is stored in clear");

    // Another key (same namespace): cannot decrypt, so it fetches and overwrites.
    let rotated = TokenCache::builder().store(store(&redis, OTHER_KEY).await).build();
    rotated
        .client_credentials(&support::daemon(&tenant), &api(&tenant))
        .token()
        .await
        .unwrap();
    assert_eq!(tenant.total_token_requests(), 2);
    let third = TokenCache::builder().store(store(&redis, OTHER_KEY).await).build();
    third
        .client_credentials(&support::daemon(&tenant), &api(&tenant))
        .token()
        .await
        .unwrap();
    assert_eq!(
        tenant.total_token_requests(),
        2,
        "the overwritten value is read by the same key"
    );

    // A corrupted value: a miss, then overwritten by the next good token.
    redis.cli(&["SET", keys.trim(), "garbage"]);
    let fourth = TokenCache::builder().store(store(&redis, OTHER_KEY).await).build();
    fourth
        .client_credentials(&support::daemon(&tenant), &api(&tenant))
        .token()
        .await
        .unwrap();
    assert_eq!(tenant.total_token_requests(), 3);
    assert_ne!(redis.cli(&["GET", keys.trim()]), "garbage");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalidation_on_one_replica_reaches_the_others() {
    let redis = RedisServer::start();
    let tenant = FakeTenant::start().await.unwrap();
    // The caches stay alive: they hold the index the invalidation listener looks entries up in.
    let (cache_a, cache_b) = (replica(&redis).await, replica(&redis).await);
    let a = cache_a.client_credentials(&support::daemon(&tenant), &api(&tenant));
    let b = cache_b.client_credentials(&support::daemon(&tenant), &api(&tenant));
    let token = a.token().await.unwrap();
    b.token().await.unwrap();
    assert_eq!(tenant.total_token_requests(), 1, "b took a's token from Redis");
    assert!(a.invalidate_if_current(&token));
    let deadline = Instant::now() + Duration::from_secs(5);
    while b.cached().is_some() {
        assert!(Instant::now() < deadline, "b still serves the invalidated token");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    b.token().await.unwrap();
    a.token().await.unwrap();
    assert_eq!(tenant.total_token_requests(), 2, "one new token for both");
}

/// The raw value stored under the one token key, and that key.
async fn stored_value(redis: &RedisServer) -> (String, Vec<u8>) {
    let keys = redis.cli(&["KEYS", "*:token"]);
    let key = keys.lines().next().expect("a stored token").trim().to_owned();
    let client = redis::Client::open(redis.url()).unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    let value: Vec<u8> = redis::cmd("GET").arg(&key).query_async(&mut connection).await.unwrap();
    (key, value)
}

async fn set_value(redis: &RedisServer, key: &str, value: &[u8]) {
    let client = redis::Client::open(redis.url()).unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    let () = redis::cmd("SET")
        .arg(key)
        .arg(value)
        .query_async(&mut connection)
        .await
        .unwrap();
}

/// Issue 24, item 6: a token invalidated anywhere is never adopted again, even when a writer
/// with access to Redis replays its old value, or flips the version stored beside the
/// ciphertext. (Before: the version sat outside the AEAD and nothing remembered the
/// invalidation, so every replica re-adopted the rejected token with 0 requests.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalidated_token_is_never_adopted_again_whatever_comes_back() {
    let redis = RedisServer::start();
    let tenant = FakeTenant::start().await.unwrap();
    let cache_a = patient_replica(&redis).await;
    let a = cache_a.client_credentials(&support::daemon(&tenant), &api(&tenant));
    let rejected = a.token().await.unwrap();
    let (key, old_value) = stored_value(&redis).await;
    assert!(a.invalidate_if_current(&rejected));
    let deadline = Instant::now() + Duration::from_secs(5);
    while !redis.cli(&["GET", &key]).is_empty() {
        assert!(Instant::now() < deadline, "the invalidated value stays in Redis");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let access = |token: &b2c_token::Token| token.access_token().unwrap().expose_secret().to_owned();

    // Replayed as it was: neither the replica that rejected it nor a new one takes it.
    set_value(&redis, &key, &old_value).await;
    let cache_b = patient_replica(&redis).await;
    let b = cache_b.client_credentials(&support::daemon(&tenant), &api(&tenant));
    assert_ne!(
        access(&b.token().await.unwrap()),
        access(&rejected),
        "b adopted the rejected token"
    );
    assert_eq!(tenant.total_token_requests(), 2);
    set_value(&redis, &key, &old_value).await;
    let cache_c = patient_replica(&redis).await;
    let c = cache_c.client_credentials(&support::daemon(&tenant), &api(&tenant));
    assert_ne!(
        access(&c.token().await.unwrap()),
        access(&rejected),
        "c adopted the rejected token"
    );

    // The version flipped: the value no longer opens.
    let mut flipped = old_value.clone();
    flipped[7] ^= 1;
    set_value(&redis, &key, &flipped).await;
    let cache_d = patient_replica(&redis).await;
    let d = cache_d.client_credentials(&support::daemon(&tenant), &api(&tenant));
    assert_ne!(
        access(&d.token().await.unwrap()),
        access(&rejected),
        "d adopted the rejected token"
    );
}

/// Issue 25, item 6: a huge value (64 MiB, planted by a broken or hostile writer) stays inside
/// the store's time limit: it is neither transferred whole nor decrypted, and the replica
/// fetches its own token. (Before: one call took seconds, decrypting outside the timeout.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_stored_value_stays_inside_the_store_time_limit() {
    let redis = RedisServer::start();
    let tenant = FakeTenant::start().await.unwrap();
    let warm = patient_replica(&redis).await;
    warm.client_credentials(&support::daemon(&tenant), &api(&tenant))
        .token()
        .await
        .unwrap();
    let (key, value) = stored_value(&redis).await;
    let mut huge = value.clone();
    huge.resize(64 << 20, 7);
    set_value(&redis, &key, &huge).await;
    let store = store_builder(&redis, KEY)
        .timeout(Duration::from_millis(500))
        .build()
        .await
        .unwrap();
    let cache = replica_on(Arc::new(store));
    let started = Instant::now();
    cache
        .client_credentials(&support::daemon(&tenant), &api(&tenant))
        .token()
        .await
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
    assert_eq!(tenant.total_token_requests(), 2, "the huge value is a miss");
}
