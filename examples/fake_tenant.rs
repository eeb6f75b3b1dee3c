//! The fake tenant as a stand-alone server, for clients in other processes and languages
//! (benches/peers/run.sh points MSAL Python and msal-node at it).
//!
//! ```text
//! cargo run --release --example fake_tenant --features test-tenant -- [--tls] [--ca-file PATH] [--clients N] [--lifetime SECS]
//! ```
//!
//! Prints one JSON line with the base URL, the CA file (with `--tls`), the tenant's names,
//! IDs and secrets, then serves until killed. `--clients N` registers N more confidential
//! clients (`00000000-0000-4000-8000-{n:012}`, same secret) for memory-per-token measurements;
//! `--lifetime` sets the access tokens' lifetime (default 3600 s).
//! Counters: `GET {base}_fake/stats`; reset: `POST {base}_fake/reset`.

use std::time::Duration;

use b2c_token::test_tenant::{defaults, FakeTenant};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn flag_value(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let args: Vec<String> = std::env::args().collect();
    let tls = args.iter().any(|a| a == "--tls");
    let extra_clients: usize = flag_value(&args, "--clients").map_or(Ok(0), |n| n.parse())?;
    let lifetime: u64 = flag_value(&args, "--lifetime").map_or(Ok(3600), |n| n.parse())?;
    let mut builder = FakeTenant::builder()
        .tls(tls)
        .access_token_lifetime(Duration::from_secs(lifetime));
    for n in 0..extra_clients {
        builder = builder.confidential_client(
            &format!("00000000-0000-4000-8000-{n:012}"),
            defaults::CLIENT_SECRET,
            &[defaults::API_APP_ROLE],
        );
    }
    let tenant = builder.start().await?;
    let ca_file = match (tenant.ca_pem(), flag_value(&args, "--ca-file")) {
        (Some(pem), Some(path)) => {
            std::fs::write(&path, pem)?;
            Some(path)
        }
        _ => None,
    };
    let info = serde_json::json!({
        "base_url": tenant.base_url().as_str(),
        "ca_file": ca_file,
        "tenant": defaults::TENANT,
        "tenant_id": defaults::TENANT_ID,
        "ropc_policy": defaults::ROPC_POLICY,
        "signin_policy": defaults::SIGNIN_POLICY,
        "public_client_id": defaults::PUBLIC_CLIENT_ID,
        "confidential_client_id": defaults::CONFIDENTIAL_CLIENT_ID,
        "client_secret": defaults::CLIENT_SECRET,
        "api_default_scope": tenant.api_default_scope(),
        "api_read_scope": tenant.api_scope("read"),
        "username": defaults::USERNAME,
        "password": defaults::PASSWORD,
        "extra_clients": extra_clients,
        "lifetime_secs": lifetime,
    });
    println!("{info}");
    // Stays up until killed; the tenant stops when dropped.
    loop {
        tokio::time::sleep(Duration::from_secs(3600)).await;
    }
}
