//! A fleet of replicas on one Redis (issue 12): the hit cost with a `RedisStore` configured
//! vs without (same run), token requests per lifetime for 1, 10 and 50 replicas, and how a
//! replica keeps serving when Redis goes down.
//!
//! Run: `cargo bench --bench fleet` (needs `redis-server`). Figures in docs/benchmarks.md.

#[path = "../tests/support/redis.rs"]
#[allow(dead_code)]
mod redis_server;

use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use b2c_token::test_tenant::{defaults, FakeTenant};
use b2c_token::{store::RedisStore, Scopes, TokenCache, TokenSource};
use criterion::{criterion_group, criterion_main, Criterion};
use redis_server::RedisServer;

const KEY: [u8; 32] = *b"0123456789abcdef0123456789abcdef";

fn poll_once<F: Future>(future: F) -> Option<F::Output> {
    let mut future = pin!(future);
    match future.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(output) => Some(output),
        Poll::Pending => None,
    }
}

async fn replica(redis: &RedisServer, tenant: &FakeTenant) -> (TokenCache, TokenSource) {
    let store = RedisStore::builder(&redis.url(), KEY)
        .namespace_secret(b"bench-fleet-namespace")
        .build()
        .await
        .unwrap();
    let cache = TokenCache::builder().store(Arc::new(store)).build();
    let client = tenant
        .confidential_client(defaults::SIGNIN_POLICY)
        .unwrap()
        .build()
        .unwrap();
    let source = cache.client_credentials(&client, &Scopes::new([tenant.api_default_scope()]).unwrap());
    (cache, source)
}

fn fleet(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut redis = RedisServer::start();
    let tenant = runtime.block_on(FakeTenant::start()).unwrap();

    // Hit cost, with and without a Redis store, side by side.
    let plain_cache = TokenCache::new();
    let client = tenant
        .confidential_client(defaults::SIGNIN_POLICY)
        .unwrap()
        .build()
        .unwrap();
    let plain = plain_cache.client_credentials(&client, &Scopes::new([tenant.api_default_scope()]).unwrap());
    runtime.block_on(plain.token()).unwrap();
    let (_redis_cache, with_redis) = runtime.block_on(replica(&redis, &tenant));
    runtime.block_on(with_redis.token()).unwrap();
    let mut group = c.benchmark_group("fleet_hit");
    group.bench_function("token().await/no store", |b| {
        b.iter(|| black_box(poll_once(plain.token())))
    });
    group.bench_function("token().await/RedisStore", |b| {
        b.iter(|| black_box(poll_once(with_redis.token())))
    });
    group.finish();

    // Requests per token lifetime for 1, 10 and 50 replicas (2 s tokens, 8 s of reads).
    for replicas in [1usize, 10, 50] {
        let lifetime = Duration::from_secs(2);
        let (requests, cycles) = runtime.block_on(async {
            let redis = RedisServer::start();
            let tenant = FakeTenant::builder()
                .access_token_lifetime(lifetime)
                .start()
                .await
                .unwrap();
            let mut fleet = Vec::new();
            for _ in 0..replicas {
                fleet.push(replica(&redis, &tenant).await);
            }
            let started = Instant::now();
            let deadline = tokio::time::Instant::now() + Duration::from_secs(8);
            let mut tasks = tokio::task::JoinSet::new();
            for (_, source) in &fleet {
                let source = source.clone();
                tasks.spawn(async move {
                    while tokio::time::Instant::now() < deadline {
                        source.token().await.unwrap();
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                });
            }
            while tasks.join_next().await.is_some() {}
            let cycles = 1.0 + started.elapsed().as_secs_f64() / (lifetime.as_secs_f64() / 2.0);
            (tenant.total_token_requests(), cycles)
        });
        println!(
            "fleet: {replicas:>2} replicas: {requests} token requests in 8 s of 2 s tokens ({cycles:.1} refresh cycles): {:.2} per cycle",
            requests as f64 / cycles
        );
    }

    // Redis goes down: hits go on at once, a miss is served from the token endpoint.
    redis.stop();
    let started = Instant::now();
    for _ in 0..1_000_000 {
        black_box(poll_once(with_redis.token()));
    }
    let hit = started.elapsed() / 1_000_000;
    let down = runtime.block_on(async {
        // A replica whose Redis vanished after it connected.
        let mut redis = RedisServer::start();
        let (cache, source) = replica(&redis, &tenant).await;
        redis.stop();
        let started = Instant::now();
        source.token().await.unwrap();
        let first = started.elapsed();
        // A second new key while Redis is still down: the store is left alone.
        let client = tenant.public_client(defaults::ROPC_POLICY).unwrap().build().unwrap();
        let user = cache.password(
            &client,
            defaults::USERNAME,
            &b2c_token::Password::new(defaults::PASSWORD),
            &Scopes::empty(),
        );
        let started = Instant::now();
        user.token().await.unwrap();
        (first, started.elapsed())
    });
    println!(
        "fleet: Redis down: hits {hit:?} each; first token for a new key {:?} (the store call fails first), the next new key {:?} (the store is left alone)",
        down.0, down.1
    );
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = fleet
}
criterion_main!(benches);
