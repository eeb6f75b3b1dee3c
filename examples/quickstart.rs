//! The three headless grants, end to end.
//!
//! With no configuration this starts the embedded fake B2C tenant on loopback and runs
//! against it:
//!
//! ```text
//! cargo run --example quickstart
//! ```
//!
//! To run against a real tenant instead, set the same variables the `b2c-token` command reads
//! (`B2C_TOKEN_URL`, `B2C_DOMAIN`, `B2C_CLOUD`, `B2C_POLICY_FORM` work too):
//!
//! ```text
//! B2C_TENANT=contoso B2C_POLICY=B2C_1_ropc B2C_CLIENT_ID=<public client id> \
//! B2C_USERNAME=alice@contoso.com B2C_PASSWORD=... \
//! B2C_CONFIDENTIAL_CLIENT_ID=<confidential client id> B2C_CLIENT_SECRET=... \
//! B2C_SCOPE=https://contoso.onmicrosoft.com/api/.default \
//! cargo run --example quickstart
//! ```
//!
//! The ROPC part runs when `B2C_USERNAME` and `B2C_PASSWORD` are set; the client-credentials
//! part when `B2C_CLIENT_SECRET` and `B2C_SCOPE` are set (`B2C_CONFIDENTIAL_CLIENT_ID`
//! defaults to `B2C_CLIENT_ID`).

use std::env;
use std::error::Error as StdError;

use b2c_token::test_tenant::{defaults, FakeTenant};
use b2c_token::{Authority, Client, Password, Scopes, Token};

type BoxError = Box<dyn StdError + Send + Sync>;

/// What to run the grants with.
struct Setup {
    authority: Authority,
    public_client_id: String,
    user: Option<(String, Password)>,
    confidential: Option<(String, String, Scopes)>,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            // Display, not Debug: the error already says what went wrong and what to do.
            eprintln!("error: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), BoxError> {
    // Keeps the fake tenant alive until the end of main when no real tenant is configured.
    let configured = env::var_os("B2C_TENANT").is_some() || env::var_os("B2C_TOKEN_URL").is_some();
    let (_fake, setup) = match configured {
        true => {
            println!("Using the tenant configured in the environment.");
            (None, real_tenant()?)
        }
        false => {
            let fake = FakeTenant::start().await?;
            println!(
                "No B2C_TENANT set: started the embedded fake B2C tenant at {}.",
                fake.base_url()
            );
            let setup = fake_tenant(&fake)?;
            (Some(fake), setup)
        }
    };
    println!("Token endpoint: {}", setup.authority.token_endpoint());

    if let Some((username, password)) = &setup.user {
        let client = Client::builder(setup.authority.clone(), &setup.public_client_id).build()?;
        let token = client
            .acquire_token_by_password(username, password, &Scopes::empty())
            .await?;
        println!(
            "1. Signed in {username} with the password grant (ROPC): {}.",
            describe(&token)
        );

        let refresh_token = token
            .refresh_token()
            .ok_or("B2C sent no refresh token: request offline_access")?;
        let refreshed = client
            .acquire_token_by_refresh_token(refresh_token, &Scopes::empty())
            .await?;
        println!(
            "2. Redeemed the refresh token for new tokens: {}.",
            describe(&refreshed)
        );
    } else {
        println!("1-2. Skipped ROPC and refresh: set B2C_USERNAME and B2C_PASSWORD to run them.");
    }

    if let Some((client_id, secret, scopes)) = setup.confidential {
        let client = Client::builder(setup.authority.clone(), &client_id)
            .client_secret(secret)
            .build()?;
        let token = client.acquire_token_by_client_credentials(&scopes).await?;
        println!(
            "3. Got an app-only token with client credentials for {scopes}: {}.",
            describe(&token)
        );
    } else {
        println!("3. Skipped client credentials: set B2C_CLIENT_SECRET and B2C_SCOPE to run it.");
    }
    println!("Done.");
    Ok(())
}

/// A sentence about a token that shows no more than a short prefix of it.
fn describe(token: &Token) -> String {
    let access = token.access_token().map_or("no access token".to_owned(), |t| {
        format!("access token {}", t.redacted_prefix())
    });
    let expiry = token
        .expires_in()
        .map_or("unknown expiry".to_owned(), |d| format!("valid for {} s", d.as_secs()));
    let extras = [
        ("an ID token", token.id_token().is_some()),
        ("a refresh token", token.refresh_token().is_some()),
    ]
    .iter()
    .filter(|(_, present)| *present)
    .map(|(name, _)| *name)
    .collect::<Vec<_>>();
    let extras = if extras.is_empty() {
        String::new()
    } else {
        format!(", plus {}", extras.join(" and "))
    };
    format!("{access}, {expiry}{extras}")
}

fn fake_tenant(fake: &FakeTenant) -> Result<Setup, BoxError> {
    Ok(Setup {
        authority: fake.authority(defaults::ROPC_POLICY)?,
        public_client_id: defaults::PUBLIC_CLIENT_ID.into(),
        user: Some((defaults::USERNAME.into(), Password::new(defaults::PASSWORD))),
        confidential: Some((
            defaults::CONFIDENTIAL_CLIENT_ID.into(),
            defaults::CLIENT_SECRET.into(),
            Scopes::new([fake.api_default_scope()])?,
        )),
    })
}

/// The same `B2C_*` variables as the `b2c-token` command: the authority through
/// `Authority::from_env` (so `B2C_TOKEN_URL`, `B2C_DOMAIN`, `B2C_CLOUD`, ... apply too).
fn real_tenant() -> Result<Setup, BoxError> {
    let authority = Authority::from_env()?;
    let client_id = env::var("B2C_CLIENT_ID").map_err(|_| "B2C_CLIENT_ID must be set")?;
    let user = match (env::var("B2C_USERNAME"), env::var("B2C_PASSWORD")) {
        (Ok(username), Ok(password)) => Some((username, Password::new(password))),
        _ => None,
    };
    let confidential = match (env::var("B2C_CLIENT_SECRET"), env::var("B2C_SCOPE")) {
        (Ok(secret), Ok(scope)) => {
            let id = env::var("B2C_CONFIDENTIAL_CLIENT_ID").unwrap_or_else(|_| client_id.clone());
            Some((id, secret, Scopes::parse(&scope)?))
        }
        _ => None,
    };
    Ok(Setup {
        authority,
        public_client_id: client_id,
        user,
        confidential,
    })
}
