//! Serves `GET /guarded` ("ok") behind one JWT layer, for `benches/validate.rs`:
//!
//!     b2c-token-bench-layers (b2c-token|jwt-authorizer) METADATA_URL AUDIENCE
//!
//! Both layers are configured from the same OpenID metadata document and check the same
//! things a plain API needs: RS256 signature by a key from the JWKS, `iss`, `aud`, `exp`/`nbf`.
//! Prints `http://ADDRESS` on one line once it listens, then serves until killed.

use std::error::Error;

type Result<T> = std::result::Result<T, Box<dyn Error>>;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, layer, metadata_url, audience] = &args[..] else {
        return Err("usage: b2c-token-bench-layers (b2c-token|jwt-authorizer) METADATA_URL AUDIENCE".into());
    };
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    listener.set_nonblocking(true)?;
    let address = listener.local_addr()?;
    let listener = tokio::net::TcpListener::from_std(listener)?;
    match layer.as_str() {
        "b2c-token" => {
            let app = b2c_token_app(metadata_url, audience).await?;
            println!("http://{address}");
            axum::serve(listener, app).await?;
        }
        "jwt-authorizer" => {
            let app = jwt_authorizer_app(metadata_url, audience).await?;
            println!("http://{address}");
            axum07::serve(listener, app).await?;
        }
        other => return Err(format!("unknown layer {other}").into()),
    }
    Ok(())
}

async fn b2c_token_app(metadata_url: &str, audience: &str) -> Result<axum::Router> {
    use b2c_token::{Authority, validate::ValidateLayer, Validator};
    let authority = Authority::discover(metadata_url).await?;
    let validator = Validator::builder(authority, audience).build()?;
    validator.fetch_keys().await?;
    Ok(axum::Router::new().route(
        "/guarded",
        axum::routing::get(|| async { "ok" }).layer(ValidateLayer::new(validator)),
    ))
}

async fn jwt_authorizer_app(metadata_url: &str, audience: &str) -> Result<axum07::Router> {
    use jwt_authorizer::{IntoLayer, JwtAuthorizer, RegisteredClaims, Validation};
    // B2C's issuer is not where its metadata lives (the policy sits in the path), so
    // `from_oidc(issuer)` cannot find it: read the document once and hand over its JWKS URL.
    let metadata: serde_json::Value = reqwest012::get(metadata_url).await?.json().await?;
    let issuer = metadata["issuer"].as_str().ok_or("metadata without issuer")?;
    let jwks_uri = metadata["jwks_uri"].as_str().ok_or("metadata without jwks_uri")?;
    let authorizer = JwtAuthorizer::<RegisteredClaims>::from_jwks_url(jwks_uri)
        .validation(Validation::new().iss(&[issuer]).aud(&[audience]))
        .build()
        .await?;
    Ok(axum07::Router::new()
        .route("/guarded", axum07::routing::get(|| async { "ok" }))
        .layer(authorizer.into_layer()))
}
