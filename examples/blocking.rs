//! The blocking API: a program with no async runtime (no `#[tokio::main]`, no `.await`) gets
//! client-credentials tokens from a cache that refreshes them on a thread of its own.
//!
//! ```text
//! cargo run --example blocking --features blocking,test-tenant
//! ```
//!
//! With no configuration this starts the embedded fake tenant (on a runtime of its own: the
//! tenant is a server, not part of the program being shown). To use a real tenant, set the
//! variables `ClientBuilder::from_env` reads (`B2C_TENANT`, `B2C_POLICY`, `B2C_CLIENT_ID`,
//! `B2C_CLIENT_SECRET`...) and `B2C_SCOPE`.

use std::error::Error as StdError;
use std::thread;

use b2c_token::blocking::{Client, TokenCache};
use b2c_token::client::ClientBuilder;
use b2c_token::Scopes;

type BoxError = Box<dyn StdError + Send + Sync>;

fn main() -> Result<(), BoxError> {
    // Kept alive to the end: dropping it stops the fake tenant.
    let (client, scopes, _tenant) = match std::env::var("B2C_SCOPE") {
        Ok(scope) => (ClientBuilder::from_env()?.build()?, Scopes::new([scope])?, None),
        Err(_) => {
            let (tenant, runtime) = fake_tenant()?;
            let client = tenant
                .confidential_client(b2c_token::test_tenant::defaults::SIGNIN_POLICY)?
                .build()?;
            let scopes = Scopes::new([tenant.api_default_scope()])?;
            println!(
                "no B2C_SCOPE set: using the embedded fake tenant at {}",
                tenant.base_url()
            );
            (client, scopes, Some((tenant, runtime)))
        }
    };

    let client = Client::new(client)?;
    let cache = TokenCache::new()?;
    let source = cache.client_credentials(&client, &scopes);

    // Eight threads, a thousand calls each: one token request, every other call a hit.
    let workers: Vec<_> = (0..8)
        .map(|_| {
            let source = source.clone();
            thread::spawn(move || -> Result<usize, b2c_token::Error> {
                let mut bytes = 0;
                for _ in 0..1_000 {
                    bytes += source.token()?.access_token().map_or(0, |t| t.expose_secret().len());
                }
                Ok(bytes)
            })
        })
        .collect();
    for worker in workers {
        worker.join().map_err(|_| "a worker panicked")??;
    }
    let token = source.token()?;
    let stats = cache.stats();
    println!(
        "8,001 calls: {} hits, {} misses; the token expires in {:?}",
        stats.hits,
        stats.misses,
        token.expires_in().unwrap_or_default()
    );
    if let Some((tenant, _)) = &_tenant {
        println!("token requests the tenant saw: {}", tenant.total_token_requests());
        assert_eq!(tenant.total_token_requests(), 1);
    }
    Ok(())
}

/// The fake tenant on a runtime of its own, which this program otherwise does not use.
fn fake_tenant() -> Result<(b2c_token::test_tenant::FakeTenant, tokio::runtime::Runtime), BoxError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let tenant = runtime.block_on(b2c_token::test_tenant::FakeTenant::start())?;
    Ok((tenant, runtime))
}
