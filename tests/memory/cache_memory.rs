//! Eviction frees memory (issue 10, item 5): with `max_entries(100)`, 20,000 distinct keys,
//! each with an installed token and a pending refresh deadline, leave the heap bounded by
//! the 100 entries kept, not by the 20,000 seen. A counting allocator measures live bytes.
//!

use crate::support;

use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::support::replay_store::ReplayStore;
use b2c_token::test_tenant::FakeTenant;
use b2c_token::{Scopes, TokenCache};

#[tokio::test(flavor = "current_thread")]
async fn eviction_churn_keeps_memory_bounded_by_max_entries() {
    let _turn = crate::ONE_AT_A_TIME.lock().await;
    let tenant = FakeTenant::start().await.unwrap();
    let daemon = support::daemon(&tenant);
    // Tokens come from a store that replays the first one, so 20,000 keys cost one request.
    let cache = TokenCache::builder()
        .max_entries(100)
        .store(Arc::new(ReplayStore::new()))
        .build();
    let api = Scopes::new([tenant.api_default_scope()]).unwrap();
    cache.client_credentials(&daemon, &api).token().await.unwrap();
    let churn = |range: std::ops::Range<usize>| {
        let (cache, daemon, tenant) = (&cache, &daemon, &tenant);
        async move {
            for i in range {
                let scopes = Scopes::new([tenant.api_scope(&format!("s{i}"))]).unwrap();
                let source = cache.client_credentials(daemon, &scopes);
                source.token().await.unwrap();
                if i % 3 == 0 {
                    cache.invalidate(source.key());
                }
            }
        }
    };
    churn(0..2_000).await; // warm up: the cache is full, allocator pools settled
    let before = crate::LIVE_BYTES.load(Ordering::Relaxed);
    churn(2_000..22_000).await;
    let grown = crate::LIVE_BYTES.load(Ordering::Relaxed) - before;
    println!(
        "live heap grew by {grown} B over 20,000 keys ({} B/key)",
        grown / 20_000
    );
    assert_eq!(cache.len(), 100);
    // Bounded by the 100 kept entries (about 0.5 KiB each), not by the keys seen.
    assert!(grown < 64 * 1024, "heap grew by {grown} B over 20,000 evicted keys");
    assert_eq!(tenant.total_token_requests(), 1);
}

/// Dropping a cache frees its entries at once, not when the scheduler's next deadline (a
/// token lifetime away) comes round: the scheduler's deadlines hold each entry's allocation.
#[tokio::test(flavor = "current_thread")]
async fn a_dropped_cache_frees_its_entries_promptly() {
    let _turn = crate::ONE_AT_A_TIME.lock().await;
    let tenant = FakeTenant::start().await.unwrap();
    let daemon = support::daemon(&tenant);
    let store = Arc::new(ReplayStore::new());
    let scopes: Vec<Scopes> = (0..2_000)
        .map(|i| Scopes::new([tenant.api_scope(&format!("s{i}"))]).unwrap())
        .collect();
    let api = Scopes::new([tenant.api_default_scope()]).unwrap();
    let fill = |cache: TokenCache| {
        let (daemon, scopes, api) = (&daemon, &scopes, &api);
        async move {
            // The store replays this first token for every other key: one request in all.
            cache.client_credentials(daemon, api).token().await.unwrap();
            for scope in scopes {
                cache.client_credentials(daemon, scope).token().await.unwrap();
            }
            cache
        }
    };
    // Warm-up: allocator pools, the store's copy, the tenant's log settle.
    let warm = fill(TokenCache::builder().store(store.clone()).build()).await;
    drop(warm);
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    tenant.clear_request_log();
    let before = crate::LIVE_BYTES.load(Ordering::Relaxed);
    let cache = fill(TokenCache::builder().store(store.clone()).build()).await;
    let filled = crate::LIVE_BYTES.load(Ordering::Relaxed) - before;
    drop(cache);
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let left = crate::LIVE_BYTES.load(Ordering::Relaxed) - before;
    println!(
        "2,000 keys: {} B/key while cached, {} B/key left after the drop",
        filled / 2_000,
        left / 2_000
    );
    assert!(
        left < 32 * 2_000,
        "{left} B still allocated after dropping the cache ({} B/key)",
        left / 2_000
    );
}
