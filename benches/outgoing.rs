//! The outgoing integrations of issue 15: `BearerLayer` on a hyper client vs the same client
//! with a fixed header (paired rounds, same server, same run), and `BearerInterceptor`'s cost
//! per gRPC call beyond the cache hit it reads.
//!
//! Run: `cargo bench --bench outgoing`. Figures and the machine are in docs/benchmarks.md.

use std::convert::Infallible;
use std::hint::black_box;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use b2c_token::test_tenant::{defaults, FakeTenant};
use b2c_token::{outgoing::BearerInterceptor, outgoing::BearerLayer, outgoing::BoxError, Scopes, TokenCache};
use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion};
use http_body_util::{BodyExt as _, Full};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::rt::TokioExecutor;
use tonic::service::Interceptor as _;
use tower_layer::Layer as _;
use tower_service::Service;

/// The smallest API: 200 "ok" to everything, HTTP/1.1 keep-alive.
async fn start_api() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
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

async fn call<S>(service: &mut S, url: &str, header: Option<&http::HeaderValue>)
where
    S: Service<http::Request<Full<Bytes>>, Response = http::Response<hyper::body::Incoming>>,
    S::Error: Into<BoxError>,
{
    let mut request = http::Request::get(url).body(Full::new(Bytes::new())).unwrap();
    if let Some(header) = header {
        request
            .headers_mut()
            .insert(http::header::AUTHORIZATION, header.clone());
    }
    std::future::poll_fn(|cx| service.poll_ready(cx))
        .await
        .map_err(Into::into)
        .unwrap();
    let response = service.call(request).await.map_err(Into::into).unwrap();
    let _ = response.into_body().collect().await;
}

fn outgoing(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (tenant, address) = runtime.block_on(async { (FakeTenant::start().await.unwrap(), start_api().await) });
    let client = tenant
        .confidential_client(defaults::SIGNIN_POLICY)
        .unwrap()
        .build()
        .unwrap();
    let cache = TokenCache::new();
    let scopes = Scopes::new([tenant.api_default_scope()]).unwrap();
    let source = cache.client_credentials(&client, &scopes);
    let token = runtime.block_on(source.token()).unwrap();
    let fixed = token.authorization_header().unwrap();
    let url = format!("http://{address}/orders");

    // The interceptor: per call, beyond the cache hit it reads.
    let mut interceptor = BearerInterceptor::new(source.clone());
    let mut group = c.benchmark_group("tonic");
    group.bench_function("cached() hit", |b| b.iter(|| black_box(source.cached())));
    // What tonic itself costs for a request with one metadata entry, for reference.
    let fixed_metadata: tonic::metadata::MetadataValue<tonic::metadata::Ascii> =
        tonic::metadata::MetadataValue::try_from(fixed.as_bytes()).unwrap();
    group.bench_function("Request::new + a fixed metadata value", |b| {
        b.iter(|| {
            let mut request = tonic::Request::new(());
            request.metadata_mut().insert("authorization", fixed_metadata.clone());
            black_box(request)
        })
    });
    group.bench_function("BearerInterceptor::call", |b| {
        b.iter(|| black_box(interceptor.call(tonic::Request::new(())).unwrap()))
    });
    group.finish();

    // The tower layer vs a fixed header on the same hyper client, paired rounds.
    let hyper = HyperClient::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let mut plain = hyper.clone();
    let mut layered = BearerLayer::new(source.clone())
        .allow_host(&address.to_string())
        .unwrap()
        .layer(hyper);
    let mut ratios = Vec::new();
    runtime.block_on(async {
        for _ in 0..50 {
            call(&mut plain, &url, Some(&fixed)).await;
            call(&mut layered, &url, None).await;
        }
        for _ in 0..30 {
            let started = Instant::now();
            for _ in 0..200 {
                call(&mut plain, &url, Some(&fixed)).await;
            }
            let plain_time = started.elapsed();
            let started = Instant::now();
            for _ in 0..200 {
                call(&mut layered, &url, None).await;
            }
            ratios.push(started.elapsed().as_secs_f64() / plain_time.as_secs_f64());
        }
    });
    ratios.sort_by(f64::total_cmp);
    println!(
        "paired ratio BearerLayer / fixed header, 30 rounds of 200 calls: median {:.3} (min {:.3}, max {:.3})",
        ratios[ratios.len() / 2],
        ratios[0],
        ratios[ratios.len() - 1]
    );
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = outgoing
}
criterion_main!(benches);
