//! The API side, measured side by side in one run:
//! - validating a fresh token (full path, nothing remembered) vs a bare RS256 verify of the
//!   same token with the same library (aws-lc-rs, key parsed once): target ≤ 1.2×;
//! - a repeated token (answered from the validator's memory): target ≤ 300 ns;
//! - requests through an axum route behind `ValidateLayer` vs the same route without it,
//!   over loopback HTTP (paired rounds).
//!
//! Run: `cargo bench --bench validate`. Figures and the machine are in docs/benchmarks.md.

use std::future::Future;
use std::hint::black_box;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use aws_lc_rs::rsa::PublicKeyComponents;
use aws_lc_rs::signature::{ParsedPublicKey, RSA_PKCS1_2048_8192_SHA256};
use b2c_token::test_tenant::{defaults, FakeTenant};
use b2c_token::{ValidateLayer, Validator};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use criterion::{criterion_group, criterion_main, Criterion};

/// Polls a future that is expected to be ready at once (a remembered token).
fn ready<F: Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    match future.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("expected an answer without waiting"),
    }
}

fn bare_key(tenant: &FakeTenant) -> ParsedPublicKey {
    let jwks = tenant.jwks();
    let key = &jwks["keys"][0];
    let n = URL_SAFE_NO_PAD.decode(key["n"].as_str().unwrap()).unwrap();
    let e = URL_SAFE_NO_PAD.decode(key["e"].as_str().unwrap()).unwrap();
    PublicKeyComponents { n: &n[..], e: &e[..] }
        .to_parsed_public_key(&RSA_PKCS1_2048_8192_SHA256)
        .unwrap()
}

/// What "a bare verify" means: split off the signature, decode it, verify the signing input.
fn bare_verify(key: &ParsedPublicKey, token: &str) {
    let (input, signature) = token.rsplit_once('.').unwrap();
    let signature = URL_SAFE_NO_PAD.decode(signature).unwrap();
    key.verify_sig(input.as_bytes(), &signature).unwrap();
}

fn validating(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let tenant = runtime.block_on(FakeTenant::start()).unwrap();
    let authority = tenant.authority(defaults::SIGNIN_POLICY).unwrap();
    // Nothing remembered: every validation is the full path.
    let fresh = Validator::builder(&authority, defaults::API_CLIENT_ID)
        .cache_capacity(0)
        .build()
        .unwrap();
    let remembering = Validator::builder(&authority, defaults::API_CLIENT_ID).build().unwrap();
    runtime.block_on(async {
        fresh.fetch_keys().await.unwrap();
        remembering.fetch_keys().await.unwrap();
    });
    let tokens: Vec<String> = (0..256)
        .map(|i| {
            let mut claims = tenant.access_token_claims(defaults::SIGNIN_POLICY, &["read"]);
            claims.insert("oid".into(), format!("user-{i}").into());
            tenant.mint(&claims)
        })
        .collect();
    let key = bare_key(&tenant);
    for token in &tokens {
        ready(fresh.validate(token)).unwrap();
        bare_verify(&key, token);
    }
    ready(remembering.validate(&tokens[0])).unwrap();

    let mut group = c.benchmark_group("validate");
    let mut i = 0;
    group.bench_function("bare RS256 verify (aws-lc-rs)", |b| {
        b.iter(|| {
            i = (i + 1) % tokens.len();
            bare_verify(&key, black_box(&tokens[i]));
        });
    });
    group.bench_function("Validator::validate, fresh token", |b| {
        b.iter(|| {
            i = (i + 1) % tokens.len();
            ready(fresh.validate(black_box(&tokens[i]))).unwrap()
        });
    });
    group.bench_function("Validator::validate, repeated token", |b| {
        b.iter(|| ready(remembering.validate(black_box(&tokens[0]))).unwrap());
    });
    group.finish();

    // Paired rounds for the ratio: both ways back to back, median of the rounds.
    let mut ratios = Vec::new();
    for _ in 0..30 {
        let start = std::time::Instant::now();
        for token in &tokens {
            bare_verify(&key, token);
        }
        let bare = start.elapsed().as_secs_f64();
        let start = std::time::Instant::now();
        for token in &tokens {
            ready(fresh.validate(token)).unwrap();
        }
        ratios.push(start.elapsed().as_secs_f64() / bare);
    }
    ratios.sort_by(f64::total_cmp);
    println!(
        "paired ratio fresh validate / bare verify, 30 rounds of {} tokens: median {:.3} (min {:.3}, max {:.3})",
        tokens.len(),
        ratios[ratios.len() / 2],
        ratios[0],
        ratios[ratios.len() - 1]
    );
}

async fn serve(app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{address}")
}

fn through_axum(c: &mut Criterion) {
    use axum::routing::get;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (base, token) = runtime.block_on(async {
        let tenant = FakeTenant::start().await.unwrap();
        let validator = Validator::builder(
            &tenant.authority(defaults::SIGNIN_POLICY).unwrap(),
            defaults::API_CLIENT_ID,
        )
        .build()
        .unwrap();
        validator.fetch_keys().await.unwrap();
        let app = axum::Router::new()
            .route("/open", get(|| async { "ok" }))
            .route("/guarded", get(|| async { "ok" }).layer(ValidateLayer::new(validator)));
        let token = tenant.mint(&tenant.access_token_claims(defaults::SIGNIN_POLICY, &["read"]));
        std::mem::forget(tenant);
        (serve(app).await, token)
    });
    let http = reqwest::Client::new();
    let get = |path: &'static str| {
        let request = http.get(format!("{base}{path}")).bearer_auth(&token);
        async move {
            let response = request.send().await.unwrap();
            assert!(response.status().is_success());
            response.bytes().await.unwrap();
        }
    };
    let mut group = c.benchmark_group("axum_route");
    group.bench_function("without ValidateLayer", |b| b.to_async(&runtime).iter(|| get("/open")));
    group.bench_function("with ValidateLayer (repeated token)", |b| {
        b.to_async(&runtime).iter(|| get("/guarded"))
    });
    group.finish();

    let mut ratios = Vec::new();
    runtime.block_on(async {
        for _ in 0..30 {
            let start = std::time::Instant::now();
            for _ in 0..200 {
                get("/open").await;
            }
            let open = start.elapsed().as_secs_f64();
            let start = std::time::Instant::now();
            for _ in 0..200 {
                get("/guarded").await;
            }
            ratios.push(open / start.elapsed().as_secs_f64());
        }
    });
    ratios.sort_by(f64::total_cmp);
    println!(
        "paired requests/s with ValidateLayer / without, 30 rounds of 200 requests: median {:.3} (min {:.3}, max {:.3})",
        ratios[ratios.len() / 2],
        ratios[0],
        ratios[ratios.len() - 1]
    );
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(4)).warm_up_time(Duration::from_secs(1));
    targets = validating, through_axum
}
criterion_main!(benches);
