//! The whole story, client to API, on the embedded fake tenant: an axum API that validates
//! B2C tokens with `ValidateLayer`, and a daemon that calls it through `BearerAuth` with
//! client-credentials tokens it never handles itself.
//!
//! ```text
//! cargo run --example api --features test-tenant,validate,axum,reqwest-middleware
//! ```
//!
//! The API has two routes: `/reports` needs the `app.read` permission (granted to the daemon
//! as an app role, which B2C puts in `scp`), `/admin` needs `app.admin` (not granted: 403 with
//! an RFC 6750 challenge naming the scope). A call without a token gets 401.
//! Against a real tenant: build the `Validator` from your own `Authority::b2c(tenant, policy)`
//! and the API's client ID, and keep the rest.

use std::time::Duration;

use axum::routing::get;
use axum::Router;
use b2c_token::test_tenant::{defaults, FakeTenant};
use b2c_token::{
    client::GrantKind, outgoing::BearerAuth, validate::Claims, validate::ValidateLayer, Scopes, TokenCache, Validator,
};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A handler sees the validated claims; it never sees a token.
async fn reports(claims: Claims) -> String {
    format!(
        "reports for {} (policy {}, scopes {:?})",
        claims.subject().unwrap_or("?"),
        claims.policy().unwrap_or("?"),
        claims.scopes().collect::<Vec<_>>()
    )
}

async fn admin(claims: Claims) -> String {
    format!("admin console for {}", claims.subject().unwrap_or("?"))
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let tenant = FakeTenant::builder()
        .access_token_lifetime(Duration::from_secs(3600))
        .start()
        .await?;

    // The API side: one validator for the policy the clients use, checked at start-up.
    let validator = Validator::builder(tenant.authority(defaults::SIGNIN_POLICY)?, defaults::API_CLIENT_ID)
        .app_id_uri(tenant.api_scope("").trim_end_matches('/'))
        .build()?;
    validator.fetch_keys().await?;
    let app = Router::new()
        .route(
            "/reports",
            get(reports).layer(ValidateLayer::new(validator.clone()).require_scope(defaults::API_APP_ROLE)),
        )
        .route(
            "/admin",
            get(admin).layer(ValidateLayer::new(validator).require_scope("app.admin")),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let api = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    println!("Fake tenant at {}, API at http://{api}/.", tenant.base_url());

    // The client side: a daemon with a cache and BearerAuth.
    let client = tenant.confidential_client(defaults::SIGNIN_POLICY)?.build()?;
    let cache = TokenCache::new();
    let scopes = Scopes::new([tenant.api_default_scope()])?;
    let http = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
        .with(BearerAuth::client_credentials(&cache, &client, &scopes).allow_host(&api.to_string())?)
        .build();

    for _ in 0..3 {
        let response = http.get(format!("http://{api}/reports")).send().await?;
        let status = response.status();
        println!("GET /reports with a token: HTTP {status}: {}", response.text().await?);
        if status != 200 {
            return Err(format!("expected 200, got {status}").into());
        }
    }
    let response = http.get(format!("http://{api}/admin")).send().await?;
    let challenge = header(&response, "www-authenticate");
    println!(
        "GET /admin with a token lacking app.admin: HTTP {}\n  WWW-Authenticate: {challenge}",
        response.status()
    );
    if response.status() != 403 {
        return Err("expected 403".into());
    }
    let response = reqwest::get(format!("http://{api}/reports")).await?;
    println!(
        "GET /reports without a token: HTTP {}\n  WWW-Authenticate: {}",
        response.status(),
        header(&response, "www-authenticate")
    );
    if response.status() != 401 {
        return Err("expected 401".into());
    }
    println!(
        "{} token request(s), {} metadata and {} key fetch(es): the daemon reused its token, the API its keys.",
        tenant.token_requests(GrantKind::ClientCredentials),
        tenant.metadata_requests(),
        tenant.jwks_requests()
    );
    Ok(())
}

fn header(response: &reqwest::Response, name: &str) -> String {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}
