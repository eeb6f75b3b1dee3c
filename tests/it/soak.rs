//! Soak: 1,000 tasks asking for tokens that live 1 s, for minutes. Token requests must track
//! the refresh cycles (no storms, no misses) and memory must stay flat.
//!
//! Ignored by default. Run (results in docs/reliability.md):
//! `SOAK_SECS=180 cargo test --release --all-features --test soak -- --ignored --nocapture`
//!
//! Two modes: 1,000 tasks on a multi-thread runtime, and one thread driving a kept
//! `current_thread` runtime only through `block_on` (where the scheduler rarely runs).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use b2c_token::test_tenant::{defaults, FakeTenant};
use b2c_token::{client::GrantKind, Password, Scopes, TokenCache};

fn resident_kib() -> u64 {
    // /proc/self/statm: size resident shared ... in pages.
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    pages * 4
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "minutes long; see the file's docs for the command"]
async fn thousand_tasks_on_one_second_tokens() {
    let seconds: u64 = std::env::var("SOAK_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(180);
    let lifetime = Duration::from_secs(1);
    let tenant = FakeTenant::builder()
        .access_token_lifetime(lifetime)
        .start()
        .await
        .unwrap();
    let cache = TokenCache::new();
    let daemon = tenant
        .confidential_client(defaults::SIGNIN_POLICY)
        .unwrap()
        .build()
        .unwrap();
    let user = tenant.public_client(defaults::ROPC_POLICY).unwrap().build().unwrap();
    let sources = [
        cache.client_credentials(&daemon, &Scopes::new([tenant.api_default_scope()]).unwrap()),
        cache.password(
            &user,
            defaults::USERNAME,
            &Password::new(defaults::PASSWORD),
            &Scopes::empty(),
        ),
    ];

    let calls = Arc::new(AtomicU64::new(0));
    let expired_served = Arc::new(AtomicU64::new(0));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(seconds);
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..1_000 {
        let source = sources[i % 2].clone();
        let (calls, expired_served) = (Arc::clone(&calls), Arc::clone(&expired_served));
        tasks.spawn(async move {
            while tokio::time::Instant::now() < deadline {
                let token = source.token().await.expect("a token");
                if token.is_expired() {
                    expired_served.fetch_add(1, Ordering::Relaxed);
                }
                calls.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        });
    }

    let started = Instant::now();
    let mut samples = Vec::new();
    while tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_secs(10).min(deadline - tokio::time::Instant::now())).await;
        tenant.clear_request_log();
        samples.push(resident_kib());
        println!(
            "t={:>4}s calls={} token requests={} rss={} KiB",
            started.elapsed().as_secs(),
            calls.load(Ordering::Relaxed),
            tenant.total_token_requests(),
            resident_kib()
        );
    }
    while let Some(result) = tasks.join_next().await {
        result.unwrap();
    }

    let elapsed = started.elapsed().as_secs_f64();
    let requests = tenant.total_token_requests() as f64;
    // Each key refreshes once per half-lifetime window (0.5 s for 1 s tokens): the expected
    // number of requests is 2 keys × elapsed / 0.5 s, give or take jitter and request time.
    let cycles = 2.0 * elapsed / (lifetime.as_secs_f64() / 2.0);
    println!(
        "{} calls in {elapsed:.0} s; {requests} token requests for {cycles:.0} refresh cycles ({:.3} per cycle); \
         password grants {}, refresh grants {}, client credentials {}; expired tokens served: {}; rss samples (KiB): {samples:?}",
        calls.load(Ordering::Relaxed),
        requests / cycles,
        tenant.token_requests(GrantKind::Password),
        tenant.token_requests(GrantKind::RefreshToken),
        tenant.token_requests(GrantKind::ClientCredentials),
        expired_served.load(Ordering::Relaxed),
    );
    assert_eq!(expired_served.load(Ordering::Relaxed), 0, "never an expired token");
    assert!(
        requests <= cycles * 1.1 + 4.0,
        "no more than one request per refresh cycle and key"
    );
    assert!(
        requests >= 2.0 * elapsed / lifetime.as_secs_f64(),
        "at least one request per expiry and key"
    );
    assert_eq!(
        tenant.token_requests(GrantKind::Password),
        1,
        "the user signed in once; refresh tokens did the rest"
    );
    let settled = samples[samples.len().min(2) - 1];
    let last = *samples.last().unwrap();
    assert!(last <= settled + settled / 5 + 4096, "memory stays flat: {samples:?}");
}

/// The second mode: a kept `current_thread` runtime driven only by `block_on(source.token())`
/// from a plain thread, as sync wrappers do. The cache's scheduler runs only inside those
/// calls, so refresh-ahead rarely happens; what must hold is that no expired token is ever
/// served and that misses fetch once per lifetime, not per call.
#[test]
#[ignore = "minutes long; see the file's docs for the command"]
fn block_on_driven_runtime_on_one_second_tokens() {
    let seconds: u64 = std::env::var("SOAK_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(180);
    let lifetime = Duration::from_secs(1);
    let tenant_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let tenant = tenant_runtime
        .block_on(FakeTenant::builder().access_token_lifetime(lifetime).start())
        .unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let cache = TokenCache::new();
    let daemon = tenant
        .confidential_client(defaults::SIGNIN_POLICY)
        .unwrap()
        .build()
        .unwrap();
    let source = cache.client_credentials(&daemon, &Scopes::new([tenant.api_default_scope()]).unwrap());
    let started = Instant::now();
    let (mut calls, mut expired_served) = (0u64, 0u64);
    while started.elapsed() < Duration::from_secs(seconds) {
        let token = runtime.block_on(source.token()).expect("a token");
        if token.is_expired() {
            expired_served += 1;
        }
        calls += 1;
        // Irregular gaps, so that calls land at every point of a token's life.
        std::thread::sleep(Duration::from_millis(7 + calls % 29));
    }
    let elapsed = started.elapsed().as_secs_f64();
    let requests = tenant.total_token_requests() as f64;
    println!(
        "block_on mode: {calls} calls in {elapsed:.0} s; {requests} token requests ({:.2} per lifetime); expired tokens served: {expired_served}",
        requests / (elapsed / lifetime.as_secs_f64())
    );
    assert_eq!(expired_served, 0, "never an expired token");
    assert!(
        requests <= 2.0 * elapsed / lifetime.as_secs_f64() + 4.0,
        "at most a fetch and a refresh per lifetime"
    );
}
