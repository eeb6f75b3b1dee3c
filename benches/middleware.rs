//! A loopback GET through `BearerAuth` vs plain reqwest with the same fixed header, in the
//! same run against the same server.
//!
//! Run: `cargo bench --bench middleware`. Figures and the machine are in docs/benchmarks.md.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use b2c_token::test_tenant::{defaults, FakeTenant};
use b2c_token::{BearerAuth, Client, Scopes, TokenCache};
use criterion::{criterion_group, criterion_main, Criterion};
use http_body_util::Full;
use hyper::body::Bytes;

/// A layer that only passes the request on: what any one layer costs in reqwest-middleware.
struct PassThrough;

#[async_trait::async_trait]
impl reqwest_middleware::Middleware for PassThrough {
    async fn handle(
        &self,
        request: reqwest::Request,
        extensions: &mut http::Extensions,
        next: reqwest_middleware::Next<'_>,
    ) -> reqwest_middleware::Result<reqwest::Response> {
        next.run(request, extensions).await
    }
}

/// The smallest API: 200 "ok" to everything, HTTP/1.1 keep-alive.
async fn start_api() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                let service = hyper::service::service_fn(|_request| async {
                    Ok::<_, Infallible>(hyper::Response::new(Full::new(Bytes::from_static(b"ok"))))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    address
}

fn loopback_get(c: &mut Criterion) {
    // One thread for client and server alike: the least scheduling noise on a 2-core machine.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (tenant, api, with_auth, bare_middleware, pass_through, plain, header) = runtime.block_on(async {
        let tenant = FakeTenant::start().await.unwrap();
        let api = start_api().await;
        let client = Client::builder(
            tenant.authority(defaults::SIGNIN_POLICY).unwrap(),
            defaults::CONFIDENTIAL_CLIENT_ID,
        )
        .client_secret(defaults::CLIENT_SECRET)
        .build()
        .unwrap();
        let cache = TokenCache::new();
        let scopes = Scopes::new([tenant.api_default_scope()]).unwrap();
        let header = cache
            .client_credentials(&client, &scopes)
            .authorization_header()
            .await
            .unwrap();
        let auth = BearerAuth::client_credentials(&cache, &client, &scopes).allow_host(&api.to_string());
        let with_auth = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
            .with(auth)
            .build();
        let bare_middleware = reqwest_middleware::ClientBuilder::new(reqwest::Client::new()).build();
        let pass_through = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
            .with(PassThrough)
            .build();
        (
            tenant,
            api,
            with_auth,
            bare_middleware,
            pass_through,
            reqwest::Client::new(),
            header,
        )
    });
    let url = format!("http://{api}/orders");

    let mut group = c.benchmark_group("loopback_get");
    group.bench_function("reqwest + fixed header", |b| {
        b.to_async(&runtime).iter(|| async {
            let response = plain
                .get(&url)
                .header(reqwest::header::AUTHORIZATION, header.clone())
                .send()
                .await
                .unwrap();
            assert!(response.status().is_success());
            response.bytes().await.unwrap()
        })
    });
    group.bench_function("reqwest-middleware (no layer) + fixed header", |b| {
        b.to_async(&runtime).iter(|| async {
            let response = bare_middleware
                .get(&url)
                .header(reqwest::header::AUTHORIZATION, header.clone())
                .send()
                .await
                .unwrap();
            assert!(response.status().is_success());
            response.bytes().await.unwrap()
        })
    });
    group.bench_function("reqwest-middleware + pass-through layer + fixed header", |b| {
        b.to_async(&runtime).iter(|| async {
            let response = pass_through
                .get(&url)
                .header(reqwest::header::AUTHORIZATION, header.clone())
                .send()
                .await
                .unwrap();
            assert!(response.status().is_success());
            response.bytes().await.unwrap()
        })
    });
    group.bench_function("reqwest-middleware + BearerAuth", |b| {
        b.to_async(&runtime).iter(|| async {
            let response = with_auth.get(&url).send().await.unwrap();
            assert!(response.status().is_success());
            response.bytes().await.unwrap()
        })
    });
    group.finish();

    // Paired rounds: each round times the same number of calls both ways back to back, so
    // drift in machine speed affects both sides of each ratio alike. Median of the rounds.
    let (mut with_auth_ratios, mut bare_ratios, mut pass_ratios) = runtime.block_on(async {
        let (mut with_auth_ratios, mut bare_ratios, mut pass_ratios) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..30 {
            let start = std::time::Instant::now();
            for _ in 0..200 {
                plain
                    .get(&url)
                    .header(reqwest::header::AUTHORIZATION, header.clone())
                    .send()
                    .await
                    .unwrap()
                    .bytes()
                    .await
                    .unwrap();
            }
            let plain_time = start.elapsed().as_secs_f64();
            let start = std::time::Instant::now();
            for _ in 0..200 {
                bare_middleware
                    .get(&url)
                    .header(reqwest::header::AUTHORIZATION, header.clone())
                    .send()
                    .await
                    .unwrap()
                    .bytes()
                    .await
                    .unwrap();
            }
            bare_ratios.push(start.elapsed().as_secs_f64() / plain_time);
            let start = std::time::Instant::now();
            for _ in 0..200 {
                pass_through
                    .get(&url)
                    .header(reqwest::header::AUTHORIZATION, header.clone())
                    .send()
                    .await
                    .unwrap()
                    .bytes()
                    .await
                    .unwrap();
            }
            pass_ratios.push(start.elapsed().as_secs_f64() / plain_time);
            let start = std::time::Instant::now();
            for _ in 0..200 {
                with_auth.get(&url).send().await.unwrap().bytes().await.unwrap();
            }
            with_auth_ratios.push(start.elapsed().as_secs_f64() / plain_time);
        }
        (with_auth_ratios, bare_ratios, pass_ratios)
    });
    for (name, ratios) in [
        ("reqwest-middleware + BearerAuth", &mut with_auth_ratios),
        ("reqwest-middleware, no layer", &mut bare_ratios),
        ("reqwest-middleware + pass-through layer", &mut pass_ratios),
    ] {
        ratios.sort_by(f64::total_cmp);
        println!(
            "paired ratio {name} / reqwest + fixed header, 30 rounds of 200 calls: median {:.3} (min {:.3}, max {:.3})",
            ratios[ratios.len() / 2],
            ratios[0],
            ratios[ratios.len() - 1]
        );
    }
    assert_eq!(
        tenant.total_token_requests(),
        1,
        "every benchmarked call was a cache hit"
    );
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(5)).warm_up_time(Duration::from_secs(2));
    targets = loopback_get
}
criterion_main!(benches);
