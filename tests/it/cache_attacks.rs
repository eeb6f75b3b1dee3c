//! The cache's promises, attacked: no expired token whatever drives the runtime, a cached
//! token only for the credentials that earned it, no request storms from failures or bogus
//! lifetimes, no panic from configuration, idle keys that stop refreshing.
//!
//! Each test counts requests at the fake tenant exactly or within tight bounds.

use crate::support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use b2c_token::test_tenant::{defaults, FakeTenant, Fault};
use b2c_token::{client::GrantKind, client::RetryPolicy, Error, Password, Scopes, TokenCache, TokenSource};

fn access(token: &b2c_token::Token) -> String {
    token.access_token().unwrap().expose_secret().to_owned()
}

fn api(tenant: &FakeTenant) -> Scopes {
    Scopes::new([tenant.api_default_scope()]).unwrap()
}

/// A fake tenant on a runtime of its own, so that the runtime under test is driven only by
/// the test's own `block_on` calls.
fn tenant_on_own_runtime(builder: b2c_token::test_tenant::FakeTenantBuilder) -> (tokio::runtime::Runtime, FakeTenant) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let tenant = runtime.block_on(builder.start()).unwrap();
    (runtime, tenant)
}

/// Item 1. A kept `current_thread` runtime driven only by `block_on(source.token())`: the
/// cache's scheduler never runs between calls, so expiry must hold on the hit path itself,
/// for `token()`, `cached()` and `with_cached()` from another thread alike.
#[test]
fn a_runtime_driven_only_by_block_on_never_gets_an_expired_token() {
    let (_tenant_runtime, tenant) =
        tenant_on_own_runtime(FakeTenant::builder().access_token_lifetime(Duration::from_secs(1)));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let client = support::daemon(&tenant);
    let cache = TokenCache::new();
    let source = cache.client_credentials(&client, &api(&tenant));
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let (source, stop) = (source.clone(), Arc::clone(&stop));
        std::thread::spawn(move || {
            let mut expired = 0;
            while !stop.load(Ordering::Relaxed) {
                if source.cached().is_some_and(|token| token.is_expired()) {
                    expired += 1;
                }
                if source.with_cached(|token| token.is_expired()) == Some(true) {
                    expired += 1;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            expired
        })
    };
    let mut expired = 0;
    for _ in 0..12 {
        let token = runtime.block_on(source.token()).unwrap();
        if token.is_expired() {
            expired += 1;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    stop.store(true, Ordering::Relaxed);
    let expired_elsewhere = reader.join().unwrap();
    assert_eq!(expired, 0, "token() handed out expired tokens");
    assert_eq!(expired_elsewhere, 0, "cached()/with_cached() handed out expired tokens");
    // 3 s of 1 s tokens: a fetch per lifetime, not per call.
    let requests = tenant.total_token_requests();
    assert!((3..=5).contains(&requests), "{requests} token requests");
}

/// Item 2. A source made with the wrong password for a cached user must not get the cached
/// token, must not replace the password the legitimate source signs in with, and a client
/// with the wrong secret must not get the cached app token.
#[tokio::test]
async fn a_cached_token_goes_only_to_the_credentials_that_earned_it() {
    let tenant = FakeTenant::start().await.unwrap();
    let public = tenant
        .public_client(defaults::ROPC_POLICY)
        .unwrap()
        .retry_policy(RetryPolicy::none())
        .remember_rejected_credentials(Duration::ZERO)
        .build()
        .unwrap();
    let cache = TokenCache::new();
    let legit = cache.password(
        &public,
        defaults::USERNAME,
        &Password::new(defaults::PASSWORD),
        &Scopes::empty(),
    );
    let first = legit.token().await.unwrap();
    assert_eq!(tenant.total_token_requests(), 1);

    let attacker = cache.password(&public, defaults::USERNAME, &Password::new("guess"), &Scopes::empty());
    assert!(attacker.cached().is_none(), "a wrong password saw the cached token");
    let error = attacker.token().await.unwrap_err();
    assert_eq!(
        error.b2c_code(),
        Some(b2c_token::error::B2cCode::InvalidCredentials),
        "{error}"
    );
    assert_eq!(
        tenant.total_token_requests(),
        2,
        "the wrong password went to the token endpoint"
    );

    // The legitimate source still has its token, and signs in again with its own password.
    let still = legit.token().await.unwrap();
    assert!(access(&still) == access(&first), "the legitimate source lost its token");
    cache.invalidate(legit.key());
    tenant.revoke_refresh_tokens(defaults::USERNAME);
    legit.token().await.unwrap();
    // Signed in with its own password: had the wrong one replaced it, this would fail.
    assert_eq!(tenant.token_requests(GrantKind::Password), 3);

    // The same for client credentials: a client with the wrong secret gets no cached token.
    let daemon = tenant
        .confidential_client(defaults::SIGNIN_POLICY)
        .unwrap()
        .build()
        .unwrap();
    let impostor = tenant
        .authority(defaults::SIGNIN_POLICY)
        .map(|authority| b2c_token::Client::builder(authority, defaults::CONFIDENTIAL_CLIENT_ID))
        .unwrap()
        .client_secret("not-the-secret")
        .retry_policy(RetryPolicy::none())
        .build()
        .unwrap();
    cache.client_credentials(&daemon, &api(&tenant)).token().await.unwrap();
    let before = tenant.total_token_requests();
    let source = cache.client_credentials(&impostor, &api(&tenant));
    assert!(source.cached().is_none(), "a wrong secret saw the cached app token");
    assert!(source.token().await.is_err());
    assert_eq!(tenant.total_token_requests(), before + 1);
    assert!(cache.client_credentials(&daemon, &api(&tenant)).cached().is_some());
}

/// Runs 100 callers looping on `token()` for `seconds` and returns the requests sent.
async fn looping_callers(tenant: &FakeTenant, source: &TokenSource, seconds: u64) -> usize {
    let before = tenant.total_token_requests();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(seconds);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..100 {
        let source = source.clone();
        tasks.spawn(async move {
            while tokio::time::Instant::now() < deadline {
                let _ = source.token().await;
                tokio::task::yield_now().await;
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    tenant.total_token_requests() - before
}

/// Item 3. After a failed fetch, calls on the key get the remembered error without a request
/// for a back-off window (1 s, doubling): 100 looping callers make a handful of requests in
/// 4 s, for every failure class, where they used to make thousands per second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_do_not_turn_into_request_storms() {
    let tenant = FakeTenant::start().await.unwrap();
    let cache = TokenCache::new();

    let bad_secret = b2c_token::Client::builder(
        tenant.authority(defaults::SIGNIN_POLICY).unwrap(),
        defaults::CONFIDENTIAL_CLIENT_ID,
    )
    .client_secret("expired-secret")
    .retry_policy(RetryPolicy::none())
    .build()
    .unwrap();
    let rejected = looping_callers(&tenant, &cache.client_credentials(&bad_secret, &api(&tenant)), 4).await;

    let daemon = support::daemon(&tenant);
    tenant.inject(Fault::ServiceUnavailable, 1_000_000);
    let unavailable = looping_callers(&tenant, &cache.client_credentials(&daemon, &api(&tenant)), 4).await;
    tenant.clear_faults();

    tenant.inject(Fault::DropConnection, 1_000_000);
    let other_scope = Scopes::new([tenant.api_scope("other")]).unwrap();
    let dropped = looping_callers(&tenant, &cache.client_credentials(&daemon, &other_scope), 4).await;
    tenant.clear_faults();

    // Back-off 1 s, 2 s, 4 s (±50 % jitter): requests at about 0, 1, 3 s.
    println!(
        "requests in 4 s from 100 looping callers: invalid_client {rejected}, 503 {unavailable}, dropped {dropped}"
    );
    for (class, requests) in [("invalid_client", rejected), ("503", unavailable), ("dropped", dropped)] {
        assert!((1..=4).contains(&requests), "{class}: {requests} requests in 4 s");
    }
}

/// Item 4. `expires_in: 0`: 100 concurrent callers share one request and all get the token;
/// a caller looping for 2 s makes at most about one request a second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tiny_lifetimes_do_not_loop() {
    let tenant = FakeTenant::builder()
        .access_token_lifetime(Duration::ZERO)
        .start()
        .await
        .unwrap();
    let daemon = support::daemon(&tenant);
    let cache = TokenCache::new();
    let source = cache.client_credentials(&daemon, &api(&tenant));
    // A slow answer, so that all 100 callers are waiting on the one fetch (a caller arriving
    // after it is told the token had no usable lifetime, which is right but not this test).
    tenant.inject(Fault::Delay(Duration::from_millis(500)), 1);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..100 {
        let source = source.clone();
        tasks.spawn(async move { source.token().await });
    }
    let mut ok = 0;
    while let Some(result) = tasks.join_next().await {
        match result.unwrap() {
            Ok(_) => ok += 1,
            Err(error) => eprintln!("waiter: {error}"),
        }
    }
    assert_eq!(ok, 100, "every waiter shares the one fetch's token");
    assert_eq!(tenant.total_token_requests(), 1);

    let started = std::time::Instant::now();
    let mut results = (0, 0);
    while started.elapsed() < Duration::from_secs(2) {
        match source.token().await {
            Ok(_) => results.0 += 1,
            Err(error) => {
                results.1 += 1;
                assert!(error.to_string().contains("lifetime"), "{error}");
            }
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let requests = tenant.total_token_requests();
    assert!(requests <= 4, "{requests} requests in 2 s ({results:?})");
}

/// Item 6. The largest back-off the builder accepts must not overflow when a background
/// refresh fails: the valid token keeps being served.
#[tokio::test]
async fn huge_backoff_settings_do_not_panic() {
    let tenant = FakeTenant::builder()
        .access_token_lifetime(Duration::from_secs(2))
        .start()
        .await
        .unwrap();
    let daemon = support::daemon(&tenant);
    let cache = TokenCache::builder()
        .retry_backoff(Duration::MAX, Duration::MAX)
        .build();
    let source = cache.client_credentials(&daemon, &api(&tenant));
    source.token().await.unwrap();
    tenant.inject(Fault::ServiceUnavailable, 1_000);
    // The refresh window opens at half the lifetime; the refresh fails and is rescheduled.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while tenant.total_token_requests() < 2 {
        assert!(std::time::Instant::now() < deadline, "no background refresh happened");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(source.cached().is_some(), "the valid token stopped being served");
}

/// Item 8. An entry nobody reads makes at most one request after its last read, then
/// expires quietly: 3 reads, then 30 s of silence on a 5 s token.
#[tokio::test]
async fn idle_keys_stop_refreshing() {
    let tenant = FakeTenant::builder()
        .access_token_lifetime(Duration::from_secs(5))
        .start()
        .await
        .unwrap();
    let daemon = support::daemon(&tenant);
    let cache = TokenCache::new();
    let source = cache.client_credentials(&daemon, &api(&tenant));
    for _ in 0..3 {
        source.token().await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(12)).await;
    let requests = tenant.total_token_requests();
    assert!(requests <= 2, "{requests} requests for 3 reads");
    // Quietly expired, and fetched again on the next read.
    assert!(source.cached().is_none());
    source.token().await.unwrap();
    assert_eq!(tenant.total_token_requests(), requests + 1);
}

/// The error a caller sees while a failure is remembered says so.
#[tokio::test]
async fn remembered_failures_are_the_same_error() {
    let tenant = FakeTenant::start().await.unwrap();
    let bad_secret = b2c_token::Client::builder(
        tenant.authority(defaults::SIGNIN_POLICY).unwrap(),
        defaults::CONFIDENTIAL_CLIENT_ID,
    )
    .client_secret("expired-secret")
    .retry_policy(RetryPolicy::none())
    .build()
    .unwrap();
    let cache = TokenCache::new();
    let source = cache.client_credentials(&bad_secret, &api(&tenant));
    let first = source.token().await.unwrap_err();
    let second = source.token().await.unwrap_err();
    assert!(matches!(first, Error::Rejected(_)));
    assert_eq!(first.to_string(), second.to_string());
    assert_eq!(tenant.total_token_requests(), 1);
    // invalidate() forgets the failure: the next call asks again.
    cache.invalidate(source.key());
    let _ = source.token().await.unwrap_err();
    assert_eq!(tenant.total_token_requests(), 2);
}

/// `TokenCache::stats` counts what happened: hits, misses, background refreshes, failures.
#[tokio::test]
async fn stats_count_what_the_cache_did() {
    let tenant = FakeTenant::builder()
        .access_token_lifetime(Duration::from_secs(2))
        .start()
        .await
        .unwrap();
    let daemon = support::daemon(&tenant);
    let cache = TokenCache::new();
    let source = cache.client_credentials(&daemon, &api(&tenant));
    source.token().await.unwrap(); // a miss
    for _ in 0..10 {
        source.token().await.unwrap(); // hits
    }
    // The refresh window opens at half the lifetime; keep reading so the key is in use.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while cache.stats().refreshes == 0 {
        assert!(std::time::Instant::now() < deadline, "no background refresh");
        source.token().await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let bad = b2c_token::Client::builder(
        tenant.authority(defaults::SIGNIN_POLICY).unwrap(),
        defaults::CONFIDENTIAL_CLIENT_ID,
    )
    .client_secret("wrong")
    .retry_policy(RetryPolicy::none())
    .build()
    .unwrap();
    let _ = cache.client_credentials(&bad, &api(&tenant)).token().await.unwrap_err();
    let stats = cache.stats();
    assert_eq!(stats.misses, 2, "{stats:?}");
    assert!(stats.hits >= 10, "{stats:?}");
    assert_eq!(stats.failures, 1, "{stats:?}");
    assert_eq!((stats.throttles, stats.store_errors), (0, 0), "{stats:?}");
}
