//! This crate's side of the MSAL comparison (benches/peers/run.sh): the same workload as
//! benches/peers/msal_python.py and msal_node.mjs, against the same fake tenant processes.
//!
//! ```text
//! cargo run --release --example peer_workload -- TENANT_JSON EXPIRY_TENANT_JSON
//! ```
//!
//! The second tenant issues short-lived tokens (3 s): the crowd arrives after the cached
//! token expired. Prints one JSON object. Memory is counted by a counting global allocator
//! (live bytes), which only this measuring program installs.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::{Duration, Instant};

use b2c_token::{Authority, Client, Password, Scopes, TokenCache};
use serde_json::{json, Value};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Live heap bytes.
static LIVE: AtomicIsize = AtomicIsize::new(0);

struct Counting;

// SAFETY: forwards to the system allocator unchanged; only counts sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: the caller's contract is the system allocator's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size as isize - layout.size() as isize, Ordering::Relaxed);
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// p50/p99 over batches: a clock read per call would cost more than a cached call.
const BATCHES: usize = 200;
const BATCH: usize = 100;
const CROWD: usize = 1000;

fn read_json(path: &str) -> Result<Value, BoxError> {
    Ok(serde_json::from_str(&std::fs::read_to_string(path)?)?)
}

fn text<'a>(info: &'a Value, name: &str) -> Result<&'a str, BoxError> {
    info[name]
        .as_str()
        .ok_or_else(|| format!("{name} missing from the tenant's JSON").into())
}

fn authority(info: &Value, policy_field: &str) -> Result<Authority, BoxError> {
    Ok(Authority::builder(text(info, "tenant")?, text(info, policy_field)?)
        .base_url(text(info, "base_url")?)
        .build()?)
}

async fn admin(http: &reqwest::Client, info: &Value, path: &str, post: bool) -> Result<Value, BoxError> {
    let url = format!("{}_fake/{path}", text(info, "base_url")?);
    let request = if post { http.post(url) } else { http.get(url) };
    Ok(serde_json::from_slice(&request.send().await?.bytes().await?)?)
}

fn percentiles(mut samples: Vec<u64>) -> (u64, u64) {
    samples.sort_unstable();
    (samples[samples.len() / 2], samples[samples.len() * 99 / 100])
}

async fn timed<F, Fut>(mut call: F) -> Result<(u64, u64), BoxError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), BoxError>>,
{
    let mut samples = Vec::with_capacity(BATCHES);
    for _ in 0..BATCHES {
        let start = Instant::now();
        for _ in 0..BATCH {
            call().await?;
        }
        samples.push(start.elapsed().as_nanos() as u64 / BATCH as u64);
    }
    Ok(percentiles(samples))
}

/// As [`timed`], for a kept source: the call itself, with no closure or future around it.
async fn timed_source(source: &b2c_token::TokenSource) -> Result<(u64, u64), BoxError> {
    let mut samples = Vec::with_capacity(BATCHES);
    for _ in 0..BATCHES {
        let start = Instant::now();
        for _ in 0..BATCH {
            std::hint::black_box(source.token().await?);
        }
        samples.push(start.elapsed().as_nanos() as u64 / BATCH as u64);
    }
    Ok(percentiles(samples))
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let args: Vec<String> = std::env::args().collect();
    let (info, expiry) = match (args.get(1), args.get(2)) {
        (Some(a), Some(b)) => (read_json(a)?, read_json(b)?),
        _ => return Err("usage: peer_workload TENANT_JSON EXPIRY_TENANT_JSON".into()),
    };
    let ca = std::fs::read(text(&info, "ca_file")?)?;
    // Only the tenants' CAs are trusted, as MSAL Python is told (REQUESTS_CA_BUNDLE replaces
    // its bundle): no system roots loaded on either side.
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .tls_certs_only(reqwest::Certificate::from_pem_bundle(&ca)?)
        .build()?;
    let secret = text(&info, "client_secret")?.to_owned();
    let cc_scopes = Scopes::new([text(&info, "api_default_scope")?])?;
    let user_scopes = Scopes::new([text(&info, "api_read_scope")?])?;
    let mut out = serde_json::Map::new();
    out.insert(
        "library".into(),
        json!(format!("b2c-token {}", env!("CARGO_PKG_VERSION"))),
    );

    // Cold: a new client and cache to the first token, in-process.
    let start = Instant::now();
    let client = Client::builder(
        authority(&info, "signin_policy")?,
        text(&info, "confidential_client_id")?,
    )
    .client_secret(secret.clone())
    .add_root_certificate(&ca)
    .trust_only_added_roots(true)
    .build()?;
    let cache = TokenCache::new();
    cache.client_credentials(&client, &cc_scopes).token().await?;
    out.insert("cold_acquire_ms".into(), json!(start.elapsed().as_secs_f64() * 1000.0));

    // Cached client credentials: the key looked up on every call, as MSAL's acquire does...
    let (p50, p99) = timed(|| {
        let source = cache.client_credentials(&client, &cc_scopes);
        async move { source.token().await.map(drop).map_err(Into::into) }
    })
    .await?;
    out.insert("cached_cc_lookup_p50_ns".into(), json!(p50));
    out.insert("cached_cc_lookup_p99_ns".into(), json!(p99));
    // ...and with the source kept, as a long-lived service holds it (the documented idiom).
    let source = cache.client_credentials(&client, &cc_scopes);
    let (p50, p99) = timed_source(&source).await?;
    out.insert("cached_cc_p50_ns".into(), json!(p50));
    out.insert("cached_cc_p99_ns".into(), json!(p99));

    // Cached user token (ROPC, then served from the cache): key looked up per call, and kept.
    let public = Client::builder(authority(&info, "ropc_policy")?, text(&info, "public_client_id")?)
        .http_client(http.clone())
        .build()?;
    let username = text(&info, "username")?.to_owned();
    let password = Password::new(text(&info, "password")?);
    let user = cache.password(&public, &username, &password, &user_scopes);
    user.token().await?;
    let (p50, p99) = timed(|| {
        let source = cache.password(&public, &username, &password, &user_scopes);
        async move { source.token().await.map(drop).map_err(Into::into) }
    })
    .await?;
    out.insert("cached_silent_lookup_p50_ns".into(), json!(p50));
    out.insert("cached_silent_lookup_p99_ns".into(), json!(p99));
    let (p50, p99) = timed_source(&user).await?;
    out.insert("cached_silent_p50_ns".into(), json!(p50));
    out.insert("cached_silent_p99_ns".into(), json!(p99));

    // N concurrent callers arrive after the cached token expired.
    let lifetime = expiry["lifetime_secs"].as_u64().unwrap_or(3);
    let crowd_client = Client::builder(
        authority(&expiry, "signin_policy")?,
        text(&info, "confidential_client_id")?,
    )
    .client_secret(secret.clone())
    .http_client(http.clone())
    .build()?;
    let crowd_cache = TokenCache::new();
    crowd_cache
        .client_credentials(&crowd_client, &cc_scopes)
        .token()
        .await?;
    // From here on every request counts, the cache's own refresh ahead of expiry included.
    admin(&http, &expiry, "reset", true).await?;
    tokio::time::sleep(Duration::from_secs(lifetime) + Duration::from_millis(200)).await;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..CROWD {
        let (cache, client, scopes) = (crowd_cache.clone(), crowd_client.clone(), cc_scopes.clone());
        tasks.spawn(async move { cache.client_credentials(&client, &scopes).token().await.map(drop) });
    }
    while let Some(result) = tasks.join_next().await {
        result??;
    }
    out.insert("concurrent_callers".into(), json!(CROWD));
    out.insert(
        "concurrent_requests".into(),
        admin(&http, &expiry, "stats", false).await?["token_requests"].clone(),
    );

    // Memory per cached token: 1,000 clients (one per client ID) sharing one HTTP client and
    // one cache each cache a token; then the cache is dropped. Live bytes before and after.
    let extra = info["extra_clients"].as_u64().unwrap_or(0) as usize;
    let authority = authority(&info, "signin_policy")?;
    let clients: Vec<Client> = (0..extra)
        .map(|n| {
            Client::builder(authority.clone(), &format!("00000000-0000-4000-8000-{n:012}"))
                .client_secret(secret.clone())
                .http_client(http.clone())
                .build()
        })
        .collect::<Result<_, _>>()?;
    let memory_cache = TokenCache::new();
    for client in &clients {
        memory_cache.client_credentials(client, &cc_scopes).token().await?;
    }
    let with_tokens = LIVE.load(Ordering::Relaxed);
    drop(memory_cache);
    tokio::time::sleep(Duration::from_millis(100)).await; // the cache's scheduler task ends
    let without_tokens = LIVE.load(Ordering::Relaxed);
    out.insert("memory_tokens".into(), json!(extra));
    out.insert(
        "memory_per_token_bytes".into(),
        json!((with_tokens - without_tokens) as f64 / extra.max(1) as f64),
    );

    println!("{}", Value::Object(out));
    Ok(())
}
