//! Cache hit costs: one key vs 100,000 keys, one thread vs two, and memory per entry.
//!
//! Run: `cargo bench --bench cache` (`--features blocking,metrics` adds the blocking API's hit
//! and the hit of a cache reporting to an OpenTelemetry SDK). Figures and the machine are in docs/benchmarks.md.

use std::alloc::{GlobalAlloc, Layout, System};
use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use b2c_token::test_tenant::{defaults, FakeTenant};
#[path = "../tests/support/replay_store.rs"]
mod replay_store;

use b2c_token::{Client, Scopes, TokenCache, TokenSource};
use criterion::{criterion_group, criterion_main, Criterion};
use replay_store::ReplayStore;

/// Counts live heap bytes, to measure what a cache entry costs.
struct Counting;

static LIVE_BYTES: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE_BYTES.fetch_add(layout.size(), Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE_BYTES.fetch_sub(layout.size(), Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Polls a future once with a no-op waker: the cost of `token().await` on a hit, without
/// an executor's own overhead.
fn poll_once<F: Future>(future: F) -> Option<F::Output> {
    let mut future = pin!(future);
    match future.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(output) => Some(output),
        Poll::Pending => None,
    }
}

struct Fixture {
    _runtime: tokio::runtime::Runtime,
    _tenant: FakeTenant,
    client: Client,
    scope_base: String,
}

fn fixture() -> Fixture {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (tenant, client) = runtime.block_on(async {
        let tenant = FakeTenant::start().await.unwrap();
        let client = tenant
            .confidential_client(defaults::SIGNIN_POLICY)
            .unwrap()
            .build()
            .unwrap();
        (tenant, client)
    });
    let scope_base = tenant.api_scope("bench");
    Fixture {
        _runtime: runtime,
        _tenant: tenant,
        client,
        scope_base,
    }
}

/// `n` sources, each holding a token, loaded through a store so that one request fills them.
fn filled_cache(f: &Fixture, n: usize) -> (TokenCache, Vec<TokenSource>) {
    let cache = TokenCache::builder()
        .max_entries(n)
        .store(Arc::new(ReplayStore::new()))
        .build();
    prime(f, &cache);
    let sources: Vec<TokenSource> = (0..n)
        .map(|i| cache.client_credentials(&f.client, &Scopes::new([format!("{}{i}", f.scope_base)]).unwrap()))
        .collect();
    f._runtime.block_on(async {
        for source in &sources {
            source.token().await.unwrap();
        }
    });
    (cache, sources)
}

/// One real fetch (the fake tenant's `.default` scope), which the replay store then hands out.
fn prime(f: &Fixture, cache: &TokenCache) {
    let scopes = Scopes::new([f._tenant.api_default_scope()]).unwrap();
    f._runtime
        .block_on(cache.client_credentials(&f.client, &scopes).token())
        .unwrap();
}

/// A blocking source holding a token, its tenant on a runtime of its own (the blocking cache's
/// fetch runs on the cache's background thread, so the tenant must be served meanwhile).
#[cfg(feature = "blocking")]
fn blocking_source() -> (tokio::runtime::Runtime, FakeTenant, b2c_token::blocking::TokenSource) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let tenant = runtime.block_on(FakeTenant::start()).unwrap();
    let client = b2c_token::blocking::Client::new(
        tenant
            .confidential_client(defaults::SIGNIN_POLICY)
            .unwrap()
            .build()
            .unwrap(),
    )
    .unwrap();
    let cache = b2c_token::blocking::TokenCache::new().unwrap();
    let source = cache.client_credentials(&client, &Scopes::new([tenant.api_default_scope()]).unwrap());
    source.token().unwrap();
    (runtime, tenant, source)
}

fn hits(c: &mut Criterion) {
    let f = fixture();
    let (_one_cache, one) = filled_cache(&f, 1);
    let (many_cache, many) = filled_cache(&f, 100_000);
    let hot = &many[12_345];

    let mut group = c.benchmark_group("cache_hit");
    group.bench_function("cached()/1 key", |b| b.iter(|| black_box(one[0].cached())));
    group.bench_function("with_cached()/1 key", |b| {
        b.iter(|| black_box(one[0].with_cached(|t| t.is_bearer())))
    });
    group.bench_function("token().await/1 key", |b| {
        b.iter(|| black_box(poll_once(one[0].token())))
    });
    #[cfg(feature = "blocking")]
    {
        // The blocking API's hit beside the async one (issue 28: ≤ async + 20 ns).
        let (_tenant_runtime, _tenant, source) = blocking_source();
        group.bench_function("blocking token()/1 key", |b| b.iter(|| black_box(source.token())));
    }
    #[cfg(feature = "metrics")]
    let _provider = {
        // The same hit in a cache that reports to a real OpenTelemetry SDK (issue 28: ≤ 5 ns
        // more): its instruments are observable, read by the reader's thread, not by a hit.
        use opentelemetry::metrics::MeterProvider as _;
        let provider = opentelemetry_sdk::metrics::SdkMeterProvider::builder()
            .with_reader(
                opentelemetry_sdk::metrics::PeriodicReader::builder(
                    opentelemetry_sdk::metrics::InMemoryMetricExporter::default(),
                )
                .build(),
            )
            .build();
        let cache = TokenCache::builder().meter(&provider.meter("bench")).build();
        prime(&f, &cache);
        let source = cache.client_credentials(&f.client, &Scopes::new([f._tenant.api_default_scope()]).unwrap());
        group.bench_function("token().await/1 key, metrics on", |b| {
            b.iter(|| black_box(poll_once(source.token())))
        });
        provider
    };
    group.bench_function("token().await/hot key among 100k", |b| {
        b.iter(|| black_box(poll_once(hot.token())))
    });
    let mut i = 0usize;
    group.bench_function("token().await/round robin over 100k", |b| {
        b.iter(|| {
            // A stride co-prime with 100,000 visits every key in a cache-unfriendly order.
            i = (i + 7_919) % many.len();
            black_box(poll_once(many[i].token()))
        })
    });
    group.finish();

    let mut group = c.benchmark_group("cache_lookup");
    let scopes = Scopes::new([format!("{}12345", f.scope_base)]).unwrap();
    let one_scopes = Scopes::new([format!("{}0", f.scope_base)]).unwrap();
    group.bench_function("client_credentials(..)/1 key", |b| {
        b.iter(|| black_box(_one_cache.client_credentials(&f.client, &one_scopes)))
    });
    group.bench_function("client_credentials(..)/100k keys", |b| {
        b.iter(|| black_box(many_cache.client_credentials(&f.client, &scopes)))
    });
    group.finish();

    // Two keys with tokens of their own, so that "own keys" share no reference count.
    let (own_cache, own) = f._runtime.block_on(async {
        let cache = TokenCache::new();
        let ropc = f._tenant.public_client(defaults::ROPC_POLICY).unwrap().build().unwrap();
        let password = b2c_token::Password::new(defaults::PASSWORD);
        let sources = vec![
            cache.client_credentials(&f.client, &Scopes::new([f._tenant.api_default_scope()]).unwrap()),
            cache.password(&ropc, defaults::USERNAME, &password, &Scopes::empty()),
        ];
        for source in &sources {
            source.token().await.unwrap();
        }
        (cache, sources)
    });
    let mut group = c.benchmark_group("cache_hit_threads");
    type Hit = fn(&TokenSource) -> bool;
    let token_hit: Hit = |s| poll_once(s.token()).is_some();
    let borrow_hit: Hit = |s| s.with_cached(|t| t.access_token().is_some()).unwrap_or(false);
    for (name, threads, shared, hit) in [
        ("token()/1 thread", 1, true, token_hit),
        ("token()/2 threads, same key", 2, true, token_hit),
        ("token()/2 threads, own keys", 2, false, token_hit),
        ("with_cached()/1 thread", 1, true, borrow_hit),
        ("with_cached()/2 threads, same key", 2, true, borrow_hit),
    ] {
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                std::thread::scope(|scope| {
                    for t in 0..threads {
                        let source = if shared { &own[0] } else { &own[t] };
                        scope.spawn(move || {
                            for _ in 0..iters {
                                black_box(hit(black_box(source)));
                            }
                        });
                    }
                });
                // Wall time per hit across all threads: throughput that scales halves it.
                start.elapsed() / threads as u32
            })
        });
    }
    group.finish();
    drop(own_cache);
    drop(many_cache);
}

fn memory(_: &mut Criterion) {
    let f = fixture();
    let n = 100_000;
    let live = || LIVE_BYTES.load(Ordering::Relaxed) as f64;
    let store = Arc::new(ReplayStore::new());
    let start = live();
    let cache = TokenCache::builder().max_entries(n).store(store.clone()).build();
    let sources: Vec<TokenSource> = (0..n)
        .map(|i| cache.client_credentials(&f.client, &Scopes::new([format!("{}{i}", f.scope_base)]).unwrap()))
        .collect();
    let sources_bytes = sources.capacity() * std::mem::size_of::<TokenSource>();
    let created = live() - sources_bytes as f64;
    // One real fetch fills the store, which hands that token to every other key.
    prime(&f, &cache);
    let stored = live();
    f._runtime.block_on(async {
        for source in &sources {
            source.token().await.unwrap();
        }
    });
    let installed = live();
    // A token adopted from a store is each entry's own copy (its instants are this process's),
    // so the installed figure includes the token's strings; they are printed alongside.
    let token = sources[1].cached().unwrap();
    let token_strings = token.access_token().map_or(0, |t| t.expose_secret().len())
        + token.token_type().len()
        + token.granted_scope().map_or(0, str::len);
    let per_entry_empty = (created - start) / n as f64;
    let per_entry_installed = per_entry_empty + (installed - stored) / n as f64;
    println!(
        "memory per entry: {per_entry_empty:.0} B before a token, {per_entry_installed:.0} B with a token installed, of which {token_strings} B are the token's own strings: {:.0} B of cache overhead",
        per_entry_installed - token_strings as f64
    );
    drop(sources);
    drop(cache);
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = memory, hits
}
criterion_main!(benches);
