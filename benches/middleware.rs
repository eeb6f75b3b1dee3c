//! A loopback GET through `BearerAuth` vs plain reqwest with the same fixed header, in the
//! same run against the same server; then each layer's own cost without the network (a last
//! layer answers at once), where nanoseconds are not lost in a round trip's noise.
//!
//! Run: `cargo bench --bench middleware` (`PAIRED_ONLY=1` skips criterion's own timing at the
//! end, for repeated runs). Figures and the machine are in docs/benchmarks.md.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use b2c_token::test_tenant::{defaults, FakeTenant};
use b2c_token::{outgoing::BearerAuth, Scopes, TokenCache};
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

/// The last layer, answering at once: what is left to time is the layers before it.
struct Answer;

#[async_trait::async_trait]
impl reqwest_middleware::Middleware for Answer {
    async fn handle(
        &self,
        request: reqwest::Request,
        _: &mut http::Extensions,
        _: reqwest_middleware::Next<'_>,
    ) -> reqwest_middleware::Result<reqwest::Response> {
        std::hint::black_box(&request);
        Ok(reqwest::Response::from(http::Response::new("ok")))
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

/// The ways of sending the same GET that are compared.
#[derive(Clone, Copy)]
enum Variant {
    Plain,
    NoLayer,
    PassThrough,
    BearerAuth,
}

impl Variant {
    const ALL: [Variant; 4] = [
        Variant::Plain,
        Variant::NoLayer,
        Variant::PassThrough,
        Variant::BearerAuth,
    ];

    fn name(self) -> &'static str {
        match self {
            Variant::Plain => "reqwest + fixed header",
            Variant::NoLayer => "reqwest-middleware (no layer) + fixed header",
            Variant::PassThrough => "reqwest-middleware + pass-through layer + fixed header",
            Variant::BearerAuth => "reqwest-middleware + BearerAuth",
        }
    }
}

struct Clients {
    plain: reqwest::Client,
    no_layer: reqwest_middleware::ClientWithMiddleware,
    pass_through: reqwest_middleware::ClientWithMiddleware,
    bearer_auth: reqwest_middleware::ClientWithMiddleware,
    /// The token `BearerAuth` would attach, for the fixed-header variants.
    header: reqwest::header::HeaderValue,
    url: String,
}

impl Clients {
    async fn get(&self, variant: Variant) {
        let fixed = |request: reqwest_middleware::RequestBuilder| {
            request.header(reqwest::header::AUTHORIZATION, self.header.clone())
        };
        let response = match variant {
            Variant::Plain => self
                .plain
                .get(&self.url)
                .header(reqwest::header::AUTHORIZATION, self.header.clone())
                .send()
                .await
                .unwrap(),
            Variant::NoLayer => fixed(self.no_layer.get(&self.url)).send().await.unwrap(),
            Variant::PassThrough => fixed(self.pass_through.get(&self.url)).send().await.unwrap(),
            Variant::BearerAuth => self.bearer_auth.get(&self.url).send().await.unwrap(),
        };
        assert!(response.status().is_success());
        response.bytes().await.unwrap();
    }
}

/// Paired rounds, a multiple of the number of variants so that each runs at each position
/// equally often.
const ROUNDS: usize = 200;
const CALLS_PER_ROUND: usize = 1000;

fn loopback_get(c: &mut Criterion) {
    // One thread for client and server alike: the least scheduling noise on a 2-core machine.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (tenant, clients, no_network) = runtime.block_on(async {
        let tenant = FakeTenant::start().await.unwrap();
        let api = start_api().await;
        let client = tenant
            .confidential_client(defaults::SIGNIN_POLICY)
            .unwrap()
            .build()
            .unwrap();
        let cache = TokenCache::new();
        let scopes = Scopes::new([tenant.api_default_scope()]).unwrap();
        let header = cache
            .client_credentials(&client, &scopes)
            .authorization_header()
            .await
            .unwrap();
        let auth = BearerAuth::client_credentials(&cache, &client, &scopes)
            .allow_host(&api.to_string())
            .unwrap();
        let layered = || reqwest_middleware::ClientBuilder::new(reqwest::Client::new());
        let no_network = Clients {
            plain: reqwest::Client::new(),
            no_layer: layered().with(Answer).build(),
            pass_through: layered().with(PassThrough).with(Answer).build(),
            bearer_auth: layered().with(auth.clone()).with(Answer).build(),
            header: header.clone(),
            url: format!("http://{api}/orders"),
        };
        let clients = Clients {
            plain: reqwest::Client::new(),
            no_layer: layered().build(),
            pass_through: layered().with(PassThrough).build(),
            bearer_auth: layered().with(auth).build(),
            header,
            url: format!("http://{api}/orders"),
        };
        (tenant, clients, no_network)
    });

    // Paired rounds: each round times the same number of calls every way back to back, so
    // drift in machine speed affects both sides of each ratio alike; the order rotates from
    // round to round, so that no variant always runs first or last. Median of the rounds.
    let mut ratios: Vec<Vec<f64>> = vec![Vec::new(); Variant::ALL.len()];
    runtime.block_on(async {
        for round in 0..ROUNDS {
            let mut times = [0.0; Variant::ALL.len()];
            for step in 0..Variant::ALL.len() {
                let i = (round + step) % Variant::ALL.len();
                let variant = Variant::ALL[i];
                let start = std::time::Instant::now();
                for _ in 0..CALLS_PER_ROUND {
                    clients.get(variant).await;
                }
                times[i] = start.elapsed().as_secs_f64();
            }
            for (i, time) in times.iter().enumerate() {
                ratios[i].push(time / times[0]);
            }
        }
    });
    for (variant, ratios) in Variant::ALL.into_iter().zip(&mut ratios).skip(1) {
        ratios.sort_by(f64::total_cmp);
        println!(
            "paired ratio {} / {}, {ROUNDS} rounds of {CALLS_PER_ROUND} calls: median {:.3} (min {:.3}, max {:.3})",
            variant.name(),
            Variant::Plain.name(),
            ratios[ratios.len() / 2],
            ratios[0],
            ratios[ratios.len() - 1]
        );
    }
    // Each layer's own cost: the same requests answered by a last layer without any I/O.
    // Paired rounds again; the difference from the no-layer client, in ns per request.
    let mut extra: Vec<Vec<f64>> = vec![Vec::new(); Variant::ALL.len()];
    runtime.block_on(async {
        const CALLS: usize = 10_000;
        for round in 0..ROUNDS {
            let mut times = [0.0; Variant::ALL.len()];
            for step in 1..Variant::ALL.len() {
                let i = 1 + (round + step) % (Variant::ALL.len() - 1);
                let start = std::time::Instant::now();
                for _ in 0..CALLS {
                    no_network.get(Variant::ALL[i]).await;
                }
                times[i] = start.elapsed().as_secs_f64() * 1e9 / CALLS as f64;
            }
            for (i, time) in times.iter().enumerate().skip(2) {
                extra[i].push(time - times[1]);
            }
        }
    });
    for (variant, extra) in Variant::ALL.into_iter().zip(&mut extra).skip(2) {
        extra.sort_by(f64::total_cmp);
        println!(
            "without the network, {} costs {:.0} ns per request more than {} (median of {ROUNDS} paired rounds)",
            variant.name(),
            extra[extra.len() / 2],
            Variant::NoLayer.name()
        );
    }

    if std::env::var_os("PAIRED_ONLY").is_none() {
        let mut group = c.benchmark_group("loopback_get");
        for variant in Variant::ALL {
            group.bench_function(variant.name(), |b| b.to_async(&runtime).iter(|| clients.get(variant)));
        }
        group.finish();
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
