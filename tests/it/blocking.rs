//! The blocking API keeps the async cache's promises with no runtime in the caller (issue 28,
//! item 1): every test here is a plain `#[test]`, the fake tenant runs on a runtime of its own,
//! and the lifetimes are seconds long so that refreshes and expiry happen while we watch.

use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;

use b2c_token::blocking::{Client, TokenCache};
use b2c_token::test_tenant::{defaults, FakeTenant, FakeTenantBuilder, Fault};
use b2c_token::{Error, Scopes};

/// A fake tenant served by a runtime the test thread is not inside.
struct Tenant {
    tenant: FakeTenant,
    _runtime: tokio::runtime::Runtime,
}

impl std::ops::Deref for Tenant {
    type Target = FakeTenant;
    fn deref(&self) -> &FakeTenant {
        &self.tenant
    }
}

fn start(builder: FakeTenantBuilder) -> Tenant {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let tenant = runtime.block_on(builder.start()).unwrap();
    Tenant {
        tenant,
        _runtime: runtime,
    }
}

fn daemon(tenant: &FakeTenant) -> Client {
    Client::new(crate::support::daemon(tenant)).unwrap()
}

fn scopes(tenant: &FakeTenant) -> Scopes {
    Scopes::new([tenant.api_default_scope()]).unwrap()
}

#[test]
fn a_hundred_threads_on_a_cold_cache_cause_one_request() {
    let tenant = start(FakeTenant::builder());
    let client = daemon(&tenant);
    let cache = TokenCache::new().unwrap();
    let source = cache.client_credentials(&client, &scopes(&tenant));
    let barrier = Arc::new(Barrier::new(100));
    let threads: Vec<_> = (0..100)
        .map(|_| {
            let (source, barrier) = (source.clone(), Arc::clone(&barrier));
            thread::spawn(move || {
                barrier.wait();
                source.token().unwrap()
            })
        })
        .collect();
    let tokens: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    let first = tokens[0].access_token().unwrap().expose_secret().to_owned();
    assert!(tokens
        .iter()
        .all(|token| token.access_token().unwrap().expose_secret() == first));
    assert_eq!(tenant.total_token_requests(), 1);
}

#[test]
fn the_background_thread_refreshes_before_expiry() {
    // 4 s tokens: the refresh window opens halfway (2 s before expiry).
    let tenant = start(FakeTenant::builder().access_token_lifetime(Duration::from_secs(4)));
    let client = daemon(&tenant);
    let cache = TokenCache::new().unwrap();
    let source = cache.client_credentials(&client, &scopes(&tenant));
    let first = source.token().unwrap();
    // Nobody calls in: the cache's own thread refreshes.
    thread::sleep(Duration::from_millis(3_000));
    assert_eq!(tenant.total_token_requests(), 2, "no background refresh");
    let hit = source.cached().expect("the refreshed token, without waiting");
    assert_ne!(
        hit.access_token().unwrap().expose_secret(),
        first.access_token().unwrap().expose_secret()
    );
    assert_eq!(cache.stats().refreshes, 1);
}

#[test]
fn never_serves_an_expired_token_even_when_the_tenant_fails() {
    let tenant = start(FakeTenant::builder().access_token_lifetime(Duration::from_secs(2)));
    let client = Client::new(
        tenant
            .confidential_client(defaults::SIGNIN_POLICY)
            .unwrap()
            .retry_policy(b2c_token::client::RetryPolicy::none())
            .build()
            .unwrap(),
    )
    .unwrap();
    let cache = TokenCache::new().unwrap();
    let source = cache.client_credentials(&client, &scopes(&tenant));
    source.token().unwrap();
    // From now on every request fails: the token runs out and must not be served after.
    tenant.inject(Fault::ServiceUnavailable, 100_000);
    let readers: Vec<_> = (0..4)
        .map(|_| {
            let source = source.clone();
            thread::spawn(move || {
                let deadline = std::time::Instant::now() + Duration::from_millis(3_000);
                let (mut served, mut refused) = (0, 0);
                while std::time::Instant::now() < deadline {
                    match source.token() {
                        Ok(token) => {
                            assert!(!token.is_expired(), "served an expired token");
                            served += 1;
                        }
                        Err(error) => {
                            assert!(error.is_retryable(), "{error}");
                            refused += 1;
                        }
                    }
                    thread::sleep(Duration::from_millis(5));
                }
                (served, refused)
            })
        })
        .collect();
    for reader in readers {
        let (served, refused) = reader.join().unwrap();
        assert!(served > 0 && refused > 0, "served {served}, refused {refused}");
    }
}

#[test]
fn a_token_is_served_only_to_the_credential_that_earned_it() {
    let tenant = start(FakeTenant::builder());
    let good = daemon(&tenant);
    let wrong = Client::new(
        tenant
            .confidential_client(defaults::SIGNIN_POLICY)
            .unwrap()
            .client_secret("not the secret")
            .retry_policy(b2c_token::client::RetryPolicy::none())
            .build()
            .unwrap(),
    )
    .unwrap();
    let cache = TokenCache::new().unwrap();
    let scopes = scopes(&tenant);
    cache.client_credentials(&good, &scopes).token().unwrap();
    let refused = cache.client_credentials(&wrong, &scopes).token();
    assert!(matches!(refused, Err(Error::Rejected(_))), "{refused:?}");
}

/// Inside an async runtime a call that would wait is an error at once: not a hang (a
/// current-thread runtime driven only by `block_on` would deadlock), not a panic. A hit never
/// waits and is served; dropping the handles inside the runtime does not panic either.
#[test]
fn inside_an_async_runtime_a_wait_is_an_error_not_a_hang() {
    let tenant = start(FakeTenant::builder());
    let client = daemon(&tenant);
    let cache = TokenCache::new().unwrap();
    let scopes = scopes(&tenant);
    let cold = cache.client_credentials(&client, &scopes);
    let (done, outcome) = std::sync::mpsc::channel();
    thread::spawn(move || {
        let current_thread = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let in_current = current_thread.block_on(async { cold.token() });
        let multi = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .unwrap();
        let cold_again = cold.clone();
        let in_task = multi.block_on(async { tokio::spawn(async move { cold_again.token() }).await.unwrap() });
        let client_call = current_thread.block_on(async { client.acquire_token_by_client_credentials(&scopes) });
        done.send((in_current, in_task, client_call, cold)).unwrap();
    });
    let (in_current, in_task, client_call, cold) = outcome
        .recv_timeout(Duration::from_secs(10))
        .expect("a blocking call inside a runtime hung");
    for result in [in_current, in_task, client_call] {
        let error = result.expect_err("waited inside a runtime");
        assert!(matches!(error, Error::BlockingInsideAsyncRuntime));
        assert!(error.to_string().contains("use the async API"), "{error}");
    }
    assert_eq!(tenant.total_token_requests(), 0, "nothing is sent");

    // Warm outside, then a hit inside a runtime is served, and dropping there is fine.
    cold.token().unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    runtime.block_on(async move {
        assert!(cold.token().is_ok(), "a hit does not wait");
        drop(cold);
        drop(cache);
    });
}

/// The error names a way out that works: a thread of one's own (spawn_blocking's threads are
/// inside the runtime's context and refused like its workers).
#[test]
fn the_way_out_the_error_names_works() {
    let tenant = start(FakeTenant::builder());
    let client = daemon(&tenant);
    let cache = TokenCache::new().unwrap();
    let source = cache.client_credentials(&client, &scopes(&tenant));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let (in_blocking_pool, on_own_thread) = runtime.block_on(async {
        let pooled = source.clone();
        let in_pool = tokio::task::spawn_blocking(move || pooled.token()).await.unwrap();
        let own = source.clone();
        let on_own = std::thread::spawn(move || own.token()).join().unwrap();
        (in_pool, on_own)
    });
    assert!(matches!(in_blocking_pool, Err(Error::BlockingInsideAsyncRuntime)));
    assert!(on_own_thread.is_ok());
    assert_eq!(tenant.total_token_requests(), 1);
}

/// What the async cache does on the side in its runtime (dropping an invalidated token from the
/// store, listening for other replicas' invalidations) happens for the blocking cache too, on
/// its own thread. Failed before: those calls found no runtime on the caller's thread and were
/// skipped, so a token an API refused stayed in the store and a new replica was served it.
#[test]
fn an_invalidated_token_leaves_the_store_for_every_replica() {
    let tenant = start(FakeTenant::builder());
    let client = daemon(&tenant);
    let store = Arc::new(b2c_token::store::MemoryStore::new());
    let replica = || TokenCache::from_async(b2c_token::TokenCache::builder().store(store.clone()).build()).unwrap();
    let first = replica();
    let source = first.client_credentials(&client, &scopes(&tenant));
    let refused = source.token().unwrap();
    assert!(source.invalidate_if_current(&refused)); // the API answered 401
                                                     // The removal runs on the cache's thread: give it a moment.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !store.is_empty() && std::time::Instant::now() < deadline {
        thread::sleep(Duration::from_millis(10));
    }
    let late = replica().client_credentials(&client, &scopes(&tenant)).token().unwrap();
    assert_ne!(
        late.access_token().unwrap().expose_secret(),
        refused.access_token().unwrap().expose_secret(),
        "a new replica was served the token the API refused"
    );
    assert_eq!(tenant.total_token_requests(), 2);
}
