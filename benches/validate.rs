//! The API side, measured side by side in one run:
//! - validating a fresh token (full path, nothing remembered) vs a bare RS256 verify of the
//!   same token with the same library (aws-lc-rs, key parsed once): target ≤ 1.2×;
//! - a repeated token (answered from the validator's memory): target ≤ 300 ns;
//! - requests through an axum route behind `ValidateLayer` vs the same route without it,
//!   over loopback HTTP (paired rounds);
//! - requests/s through the same axum route guarded by `ValidateLayer` and by `jwt-authorizer`
//!   (fresh tokens, a repeated token), each server a release build of
//!   `benches/peers/layers` in a process of its own, loaded in alternating rounds. The peer is
//!   built on first use (a few minutes, needs crates.io); `B2C_BENCH_SKIP_PEERS=1` skips it.
//!
//! Run: `cargo bench --bench validate`. Figures and the machine are in docs/benchmarks.md.

use std::future::Future;
use std::hint::black_box;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use aws_lc_rs::rsa::PublicKeyComponents;
use aws_lc_rs::signature::{ParsedPublicKey, RSA_PKCS1_2048_8192_SHA256};
use b2c_token::test_tenant::{defaults, FakeTenant};
use b2c_token::{validate::ValidateLayer, Validator};
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
    let fresh = Validator::builder(authority.clone(), defaults::API_CLIENT_ID)
        .cache_capacity(0)
        .build()
        .unwrap();
    let remembering = Validator::builder(authority, defaults::API_CLIENT_ID).build().unwrap();
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
            tenant.authority(defaults::SIGNIN_POLICY).unwrap(),
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

/// Builds the peer server (its own workspace and target directory, so this crate's lockfile
/// and build stay untouched) and returns the binary's path.
fn build_layers_peer() -> Result<std::path::PathBuf, String> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let target = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("layers");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    println!("building benches/peers/layers (release; the first time takes a few minutes)");
    let status = std::process::Command::new(cargo)
        .args(["build", "--release", "--quiet", "--manifest-path"])
        .arg(root.join("benches/peers/layers/Cargo.toml"))
        .env("CARGO_TARGET_DIR", &target)
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !status.success() {
        return Err(format!("cargo build of benches/peers/layers failed: {status}"));
    }
    Ok(target.join("release/b2c-token-bench-layers"))
}

/// One peer server: killed when dropped.
struct Server {
    child: std::process::Child,
    base: String,
}

impl Server {
    fn start(binary: &std::path::Path, layer: &str, metadata_url: &str) -> Server {
        use std::io::BufRead as _;
        let mut child = std::process::Command::new(binary)
            .args([layer, metadata_url, defaults::API_CLIENT_ID])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert!(line.starts_with("http://"), "{layer} did not start: {line:?}");
        Server {
            child,
            base: line.trim().to_owned(),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn versus_jwt_authorizer(_: &mut Criterion) {
    const ROUNDS: usize = 20;
    const PER_ROUND: usize = 200;
    if std::env::var_os("B2C_BENCH_SKIP_PEERS").is_some() {
        return;
    }
    let binary = match build_layers_peer() {
        Ok(binary) => binary,
        Err(e) => return println!("the jwt-authorizer comparison is skipped: {e}"),
    };
    // A runtime with a worker thread: the tenant answers the servers' metadata and key
    // requests while this thread waits for them to start.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let tenant = runtime.block_on(FakeTenant::start()).unwrap();
    let authority = tenant.authority(defaults::SIGNIN_POLICY).unwrap();
    let metadata_url = authority.metadata_endpoint().unwrap().to_string();
    let servers = [
        (
            "b2c-token ValidateLayer",
            Server::start(&binary, "b2c-token", &metadata_url),
        ),
        (
            "jwt-authorizer 0.15",
            Server::start(&binary, "jwt-authorizer", &metadata_url),
        ),
    ];
    // Every fresh token is sent once to each server: distinct `uti` claims, so nothing a
    // layer remembers can answer for it.
    let mint = |n: usize| {
        let mut claims = tenant.access_token_claims(defaults::SIGNIN_POLICY, &["read"]);
        claims.insert("uti".into(), format!("bench-{n}").into());
        tenant.mint(&claims)
    };
    let fresh: Vec<String> = (0..ROUNDS * PER_ROUND).map(mint).collect();
    let repeated = mint(usize::MAX);
    let http = reqwest::Client::new();
    let round = |base: &str, tokens: &[String]| {
        let start = std::time::Instant::now();
        runtime.block_on(async {
            for token in tokens {
                let response = http
                    .get(format!("{base}/guarded"))
                    .bearer_auth(token)
                    .send()
                    .await
                    .unwrap();
                assert!(response.status().is_success(), "{base}: {}", response.status());
                response.bytes().await.unwrap();
            }
        });
        tokens.len() as f64 / start.elapsed().as_secs_f64()
    };
    let repeated_tokens = vec![repeated; PER_ROUND];
    for (_, server) in &servers {
        round(&server.base, &repeated_tokens); // warm: connections, key sets
    }
    let mut rates = [[Vec::new(), Vec::new()], [Vec::new(), Vec::new()]];
    for r in 0..ROUNDS {
        let tokens = &fresh[r * PER_ROUND..(r + 1) * PER_ROUND];
        // Alternate which server goes first, so drift on a noisy host falls on both.
        let order = if r % 2 == 0 { [0, 1] } else { [1, 0] };
        for i in order {
            rates[i][0].push(round(&servers[i].1.base, tokens));
            rates[i][1].push(round(&servers[i].1.base, &repeated_tokens));
        }
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let mut medians = [[0.0; 2]; 2];
    for i in 0..2 {
        for k in 0..2 {
            medians[i][k] = median(&mut rates[i][k]);
        }
    }
    println!("same axum route, {ROUNDS} alternating rounds of {PER_ROUND} sequential requests, median requests/s:");
    for (i, (name, _)) in servers.iter().enumerate() {
        println!(
            "  {name:<24} fresh tokens {:>8.0}   repeated token {:>8.0}",
            medians[i][0], medians[i][1]
        );
    }
    println!(
        "  b2c-token / jwt-authorizer: fresh {:.2}x, repeated {:.2}x",
        medians[0][0] / medians[1][0],
        medians[0][1] / medians[1][1]
    );
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(4)).warm_up_time(Duration::from_secs(1));
    targets = validating, through_axum, versus_jwt_authorizer
}
criterion_main!(benches);
