//! The token cache against the fake tenant: single flight, proactive refresh, failure
//! handling, rotation, fallback, isolation between keys, eviction, invalidation, stores.
//!
//! Time-dependent tests pause tokio's clock and move it by hand with `advance`; a parked
//! blocking task keeps tokio from auto-advancing while real loopback I/O is in flight
//! (auto-advance would otherwise jump to the next timer whenever the runtime waits on I/O).

use crate::support;

use std::sync::Arc;
use std::time::Duration;

use b2c_token::test_tenant::{defaults, FakeTenant, Fault};
use b2c_token::{
    client::GrantKind, client::RetryPolicy, store::MemoryStore, Client, Password, Scopes, TokenCache, TokenSource,
};

/// Lets the runtime run (I/O included) until `done` holds, for at most 10 s of real time.
async fn wait_until(mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(std::time::Instant::now() < deadline, "condition not reached in time");
        tokio::task::yield_now().await;
        std::thread::sleep(Duration::from_micros(200));
    }
}

fn daemon(tenant: &FakeTenant) -> Client {
    support::fake_daemon(tenant, defaults::SIGNIN_POLICY)
        .retry_policy(RetryPolicy::none())
        .build()
        .unwrap()
}

fn api(tenant: &FakeTenant) -> Scopes {
    Scopes::new([tenant.api_default_scope()]).unwrap()
}

fn user_source(cache: &TokenCache, tenant: &FakeTenant) -> TokenSource {
    let client = support::fake_public(tenant, defaults::ROPC_POLICY)
        .retry_policy(RetryPolicy::none())
        .build()
        .unwrap();
    cache.password(
        &client,
        defaults::USERNAME,
        &Password::new(defaults::PASSWORD),
        &Scopes::empty(),
    )
}

fn access(token: &b2c_token::Token) -> String {
    token.access_token().unwrap().expose_secret().to_owned()
}

async fn many_concurrent_calls(source: &TokenSource, n: usize) -> Vec<Result<b2c_token::Token, b2c_token::Error>> {
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..n {
        let source = source.clone();
        tasks.spawn(async move { source.token().await });
    }
    let mut results = Vec::with_capacity(n);
    while let Some(result) = tasks.join_next().await {
        results.push(result.unwrap());
    }
    results
}

#[tokio::test]
async fn ten_thousand_callers_on_an_empty_key_make_one_request() {
    let tenant = FakeTenant::start().await.unwrap();
    let source = TokenCache::new().client_credentials(&daemon(&tenant), &api(&tenant));
    let results = many_concurrent_calls(&source, 10_000).await;
    let first = access(results[0].as_ref().unwrap());
    assert!(results.iter().all(|r| r.as_ref().is_ok_and(|t| access(t) == first)));
    assert_eq!(tenant.token_requests(GrantKind::ClientCredentials), 1);
}

#[tokio::test]
async fn ten_thousand_callers_on_an_expired_key_make_one_request() {
    let tenant = FakeTenant::builder()
        .access_token_lifetime(Duration::from_secs(600))
        .start()
        .await
        .unwrap();
    let _clock = crate::support::clock::manual_clock();
    let source = TokenCache::new().client_credentials(&daemon(&tenant), &api(&tenant));
    source.token().await.unwrap();
    // Every background refresh fails until the token has expired.
    tenant.inject(Fault::ServiceUnavailable, 1_000);
    tokio::time::advance(Duration::from_secs(601)).await;
    wait_until(|| source.cached().is_none()).await;
    tenant.clear_faults();
    // The failed background refreshes are remembered for their back-off (60 s at most).
    tokio::time::advance(Duration::from_secs(91)).await;
    let before = tenant.token_requests(GrantKind::ClientCredentials);

    let results = many_concurrent_calls(&source, 10_000).await;
    assert!(results.iter().all(Result::is_ok));
    assert_eq!(tenant.token_requests(GrantKind::ClientCredentials), before + 1);
}

#[tokio::test]
async fn callers_waiting_on_a_failed_fetch_share_its_error() {
    let tenant = FakeTenant::start().await.unwrap();
    let source = TokenCache::new().client_credentials(&daemon(&tenant), &api(&tenant));
    tenant.inject(Fault::ServiceUnavailable, 1);
    let results = many_concurrent_calls(&source, 200).await;
    let failed = results
        .iter()
        .filter(|r| r.as_ref().is_err_and(|e| e.status() == Some(503)))
        .count();
    // Everyone who waited through the failed attempt got its error; anyone who arrived after
    // it started a new fetch, which succeeded. Never one request per caller.
    assert!(failed >= 1);
    assert!(
        tenant.token_requests(GrantKind::ClientCredentials) <= 2,
        "{}",
        tenant.token_requests(GrantKind::ClientCredentials)
    );
    // Within the failure's back-off (1 s + up to 50 % jitter) the error is remembered; after
    // it, the next call asks again.
    tokio::time::sleep(Duration::from_millis(1600)).await;
    assert!(source.token().await.is_ok());
}

#[tokio::test]
async fn proactive_refresh_before_expiry_without_making_callers_wait() {
    let tenant = FakeTenant::start().await.unwrap(); // 1 h tokens
    let _clock = crate::support::clock::manual_clock();
    let cache = TokenCache::builder().refresh_before(Duration::from_secs(300)).build();
    let source = cache.client_credentials(&daemon(&tenant), &api(&tenant));
    let first = source.token().await.unwrap();

    // Just before the window (at most 5 s of jitter early): nothing happens.
    tokio::time::advance(Duration::from_secs(3290)).await;
    wait_until(|| true).await;
    assert_eq!(tenant.token_requests(GrantKind::ClientCredentials), 1);

    // Inside the window: the refresher fetches in the background.
    tenant.inject(Fault::Delay(Duration::from_secs(20)), 1);
    tokio::time::advance(Duration::from_secs(11)).await;
    wait_until(|| tenant.token_requests(GrantKind::ClientCredentials) == 2).await;
    // While that request hangs, callers still get the valid token at once.
    let during = source
        .cached()
        .expect("the still-valid token is served during the refresh");
    assert_eq!(access(&during), access(&first));
    tokio::time::advance(Duration::from_secs(21)).await;
    wait_until(|| source.cached().is_some_and(|t| access(&t) != access(&first))).await;
    let second = source.token().await.unwrap();
    assert!(second.expires_in().unwrap() > Duration::from_secs(3500));
    assert_eq!(tenant.token_requests(GrantKind::ClientCredentials), 2);
}

#[tokio::test]
async fn failed_background_refresh_keeps_serving_until_expiry_then_reports() {
    let tenant = FakeTenant::builder()
        .access_token_lifetime(Duration::from_secs(600))
        .start()
        .await
        .unwrap();
    let _clock = crate::support::clock::manual_clock();
    let cache = TokenCache::builder()
        .refresh_before(Duration::from_secs(120))
        .retry_backoff(Duration::from_secs(10), Duration::from_secs(40))
        .build();
    let source = cache.client_credentials(&daemon(&tenant), &api(&tenant));
    let first = source.token().await.unwrap();
    tenant.inject(Fault::ServiceUnavailable, 1_000);

    tokio::time::advance(Duration::from_secs(481)).await; // window opened (120 s before expiry)
    wait_until(|| tenant.token_requests(GrantKind::ClientCredentials) == 2).await;
    assert_eq!(
        access(&source.token().await.unwrap()),
        access(&first),
        "valid token still served"
    );

    // Back-off: 10 s (+ up to 5 s jitter), then 20 s (+10), 40 s (+20): a few attempts, not a storm.
    // Up to 591 s of the token's 600 s.
    for _ in 0..11 {
        tokio::time::advance(Duration::from_secs(10)).await;
        wait_until(|| true).await;
        assert!(source.cached().is_some(), "served until expiry");
    }
    let attempts = tenant.token_requests(GrantKind::ClientCredentials) - 1;
    assert!((2..=5).contains(&attempts), "{attempts} background attempts in 120 s");

    tokio::time::advance(Duration::from_secs(10)).await; // 601 s: past expiry
    wait_until(|| source.cached().is_none()).await;
    let err = source.token().await.unwrap_err();
    assert_eq!(err.status(), Some(503), "{err}");
    tenant.clear_faults();
    // The last failure is remembered for its back-off (40 s + up to 50 % jitter), then asked again.
    tokio::time::advance(Duration::from_secs(61)).await;
    assert!(source.token().await.is_ok());
}

#[tokio::test]
async fn user_tokens_refresh_with_the_rotated_refresh_token() {
    let tenant = FakeTenant::start().await.unwrap(); // old refresh tokens die on use
    let _clock = crate::support::clock::manual_clock();
    let cache = TokenCache::new();
    let source = user_source(&cache, &tenant);
    source.token().await.unwrap();
    for round in 1..=3 {
        tokio::time::advance(Duration::from_secs(3300)).await;
        wait_until(|| tenant.token_requests(GrantKind::RefreshToken) == round).await;
        wait_until(|| source.cached().is_some()).await;
    }
    // Each refresh used the newest refresh token: reusing an old one would have been
    // rejected (AADB2C90129) and forced a password sign-in.
    assert_eq!(tenant.token_requests(GrantKind::Password), 1);
    let requests = tenant.requests();
    let refreshes: Vec<_> = requests
        .iter()
        .filter(|r| r.form_value("grant_type") == Some("refresh_token"))
        .collect();
    assert!(refreshes.iter().all(|r| r.form_value("client_secret").is_none()));
}

#[tokio::test]
async fn invalid_grant_on_refresh_falls_back_to_the_password_once() {
    let tenant = FakeTenant::start().await.unwrap();
    let _clock = crate::support::clock::manual_clock();
    let cache = TokenCache::new();
    let source = user_source(&cache, &tenant);
    source.token().await.unwrap();
    tenant.revoke_refresh_tokens(defaults::USERNAME);

    tokio::time::advance(Duration::from_secs(3300)).await;
    wait_until(|| tenant.token_requests(GrantKind::Password) == 2).await;
    wait_until(|| source.cached().is_some()).await;
    assert_eq!(tenant.token_requests(GrantKind::RefreshToken), 1);
    assert_eq!(tenant.token_requests(GrantKind::Password), 2);
}

#[tokio::test]
async fn a_stale_password_does_not_use_the_refresh_token_or_loop() {
    let tenant = FakeTenant::start().await.unwrap();
    let cache = TokenCache::new();
    let client = support::fake_public(&tenant, defaults::ROPC_POLICY)
        .retry_policy(RetryPolicy::none())
        .build()
        .unwrap();
    let source = cache.password(
        &client,
        defaults::USERNAME,
        &Password::new(defaults::PASSWORD),
        &Scopes::empty(),
    );
    let token = source.token().await.unwrap();
    // A component still configured with the old password.
    let stale = cache.password(
        &client,
        defaults::USERNAME,
        &Password::new("old-password"),
        &Scopes::empty(),
    );
    let err = stale.token().await.unwrap_err();
    assert_eq!(err.b2c_code(), Some(b2c_token::error::B2cCode::InvalidCredentials));
    // The entry's refresh token was earned by another password: never redeemed for this one.
    assert_eq!(tenant.token_requests(GrantKind::RefreshToken), 0);
    assert_eq!(tenant.token_requests(GrantKind::Password), 2);
    // Asking again is answered from memory, and the right password is untouched.
    assert!(stale.token().await.is_err());
    assert_eq!(tenant.total_token_requests(), 2);
    assert_eq!(access(&source.token().await.unwrap()), access(&token));
}

#[tokio::test]
async fn a_stuck_refresh_on_one_key_does_not_delay_another() {
    let tenant = FakeTenant::start().await.unwrap();
    let _clock = crate::support::clock::manual_clock();
    let cache = TokenCache::new();
    let a = cache.client_credentials(&daemon(&tenant), &api(&tenant));
    let b = user_source(&cache, &tenant);
    let token_a = a.token().await.unwrap();
    b.token().await.unwrap();

    // A's next fetch hangs (the delay never ends: the clock is not advanced).
    tenant.inject(Fault::Delay(Duration::from_secs(3600)), 1);
    a.invalidate_if_current(&token_a);
    let stuck = tokio::spawn({
        let a = a.clone();
        async move { a.token().await }
    });
    wait_until(|| tenant.token_requests(GrantKind::ClientCredentials) == 2).await;

    // B: hits are immediate, and B's own fetch goes through while A's hangs.
    assert!(b.cached().is_some());
    let token_b = b.token().await.unwrap();
    b.invalidate_if_current(&token_b);
    tokio::time::timeout(Duration::from_secs(5), b.token())
        .await
        .expect("B is not blocked by A")
        .unwrap();
    assert!(!stuck.is_finished());
    stuck.abort();
}

#[tokio::test]
async fn eviction_keeps_the_bound_and_the_recently_used() {
    let tenant = FakeTenant::start().await.unwrap();
    let cache = TokenCache::builder().max_entries(3).build();
    let client = daemon(&tenant);
    let scope = |i: usize| Scopes::new([format!("{}/s{i}", tenant.api_scope("x"))]).unwrap();
    let sources: Vec<TokenSource> = (0..3).map(|i| cache.client_credentials(&client, &scope(i))).collect();
    assert_eq!(cache.len(), 3);
    // Keep using key 0 only; every new key evicts one whose reference bit is clear.
    for i in 3..50 {
        let _ = sources[0].cached();
        let _ = cache.client_credentials(&client, &scope(i));
        assert!(cache.len() <= 3);
    }
    assert!(cache.contains(sources[0].key()), "the key in use survives");
    assert!(!cache.contains(sources[1].key()) && !cache.contains(sources[2].key()));
}

#[tokio::test]
async fn invalidate_only_drops_the_rejected_token() {
    let tenant = FakeTenant::start().await.unwrap();
    let cache = TokenCache::new();
    let source = cache.client_credentials(&daemon(&tenant), &api(&tenant));
    let first = source.token().await.unwrap();
    source.invalidate_if_current(&first);
    let second = source.token().await.unwrap();
    assert_ne!(access(&first), access(&second));
    // A late caller reporting the old token must not throw away the new one.
    source.invalidate_if_current(&first);
    assert_eq!(access(&source.token().await.unwrap()), access(&second));
    assert_eq!(tenant.token_requests(GrantKind::ClientCredentials), 2);
    cache.invalidate(source.key());
    source.token().await.unwrap();
    assert_eq!(tenant.token_requests(GrantKind::ClientCredentials), 3);
}

#[tokio::test]
async fn policy_and_username_case_and_scope_order_share_a_key() {
    let tenant = FakeTenant::start().await.unwrap();
    let cache = TokenCache::new();
    let upper = support::fake_public(&tenant, "B2C_1_ROPC")
        .retry_policy(RetryPolicy::none())
        .build()
        .unwrap();
    let lower = support::fake_public(&tenant, "b2c_1_ropc")
        .retry_policy(RetryPolicy::none())
        .build()
        .unwrap();
    let pw = Password::new(defaults::PASSWORD);
    let a = cache.password(
        &upper,
        "Alice@Contoso.com",
        &pw,
        &Scopes::parse("openid offline_access").unwrap(),
    );
    let b = cache.password(
        &lower,
        "alice@contoso.com",
        &pw,
        &Scopes::parse("offline_access openid").unwrap(),
    );
    assert_eq!(a.key(), b.key());
    assert_eq!(cache.len(), 1);
}

#[tokio::test]
async fn a_shared_store_serves_a_second_cache_without_a_request() {
    let tenant = FakeTenant::start().await.unwrap();
    let store = Arc::new(MemoryStore::new());
    let replica_a = TokenCache::builder().store(store.clone()).build();
    let replica_b = TokenCache::builder().store(store).build();
    let token_a = replica_a
        .client_credentials(&daemon(&tenant), &api(&tenant))
        .token()
        .await
        .unwrap();
    let token_b = replica_b
        .client_credentials(&daemon(&tenant), &api(&tenant))
        .token()
        .await
        .unwrap();
    assert_eq!(access(&token_a), access(&token_b));
    assert_eq!(tenant.total_token_requests(), 1);
}

/// The scheduler dies with its runtime; the token is still served while valid (the hit path
/// checks expiry itself), and the next runtime starts a new scheduler.
#[test]
fn a_dead_runtime_leaves_tokens_served_only_while_valid() {
    let cache = TokenCache::new();
    let first_runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (tenant_thread, base) = {
        // The tenant lives on its own runtime thread so it outlives the first runtime.
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let tenant = FakeTenant::start().await.unwrap();
                tx.send(tenant.base_url().to_string()).unwrap();
                std::future::pending::<()>().await;
            });
        });
        (thread, rx.recv().unwrap())
    };
    let authority = b2c_token::Authority::builder(defaults::TENANT, defaults::SIGNIN_POLICY)
        .base_url(&base)
        .build()
        .unwrap();
    let client = Client::builder(authority, defaults::CONFIDENTIAL_CLIENT_ID)
        .client_secret(defaults::CLIENT_SECRET)
        .retry_policy(RetryPolicy::none())
        .build()
        .unwrap();
    let source = cache.client_credentials(
        &client,
        &Scopes::new(["https://contoso.onmicrosoft.com/api/.default"]).unwrap(),
    );
    first_runtime.block_on(source.token()).unwrap();
    assert!(source.cached().is_some());
    drop(first_runtime); // kills the scheduler task
    assert!(
        source.cached().is_some_and(|token| !token.is_expired()),
        "a valid token is still served: expiry is checked on every hit"
    );
    let second_runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    second_runtime.block_on(source.token()).unwrap();
    assert!(source.cached().is_some());
    drop(tenant_thread);
}

/// A replica that meets a stored token already due for refresh (it starts late, or its
/// scheduler ran late under load) must refresh with that token's refresh token, the fleet's
/// newest: not sign the user in again with the password (and with B2C's rotation, an older
/// refresh token of its own would be refused and revoke the grant). Failed before: the due
/// stored token was ignored whole, refresh token included, and the replica, having none of its
/// own, sent the password (found while looking into
/// `redis_store::rotated_refresh_tokens_reach_every_replica` failing under CI load).
#[tokio::test]
async fn a_due_stored_token_still_hands_over_its_refresh_token() {
    let tenant = FakeTenant::builder()
        .access_token_lifetime(Duration::from_secs(2))
        .old_refresh_tokens_stay_valid(false)
        .start()
        .await
        .unwrap();
    let store = Arc::new(MemoryStore::new());
    let a = TokenCache::builder().store(store.clone()).build();
    let a_source = user_source(&a, &tenant);
    a_source.token().await.unwrap();
    drop((a_source, a)); // the replica that signed in goes away
    tokio::time::sleep(Duration::from_millis(2_300)).await;
    // A new replica: the stored token is past due, its refresh token still good.
    let b = TokenCache::builder().store(store).build();
    user_source(&b, &tenant).token().await.unwrap();
    assert_eq!(
        tenant.token_requests(GrantKind::Password),
        1,
        "the new replica signed the user in again instead of refreshing"
    );
    assert_eq!(tenant.token_requests(GrantKind::RefreshToken), 1);
}
