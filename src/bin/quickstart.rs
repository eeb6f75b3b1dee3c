//! The three headless grants, end to end.
//!
//! With no configuration this starts the embedded fake B2C tenant on loopback and runs
//! against it:
//!
//! ```text
//! cargo run --bin b2c-token-quickstart --features test-tenant
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
//! cargo run --bin b2c-token-quickstart --features test-tenant
//! ```
//!
//! The ROPC part runs when `B2C_USERNAME` and `B2C_PASSWORD` are set; the client-credentials
//! part when `B2C_CLIENT_SECRET` and `B2C_SCOPE` are set (`B2C_CONFIDENTIAL_CLIENT_ID`
//! defaults to `B2C_CLIENT_ID`).
//!
//! Beyond B2C: `--authority external-id` or `--authority entra` (or `B2C_AUTHORITY`) runs the
//! fake tenant as Microsoft Entra External ID or Entra ID, and adds a certificate credential:
//!
//! ```text
//! cargo run --bin b2c-token-quickstart --features test-tenant -- --authority external-id
//! cargo run --bin b2c-token-quickstart --features test-tenant -- --authority entra
//! ```

use std::env;
use std::error::Error as StdError;

use b2c_token::test_tenant::{defaults, FakeTenant};
use b2c_token::{authority::AuthorityKind, credential::ClientCertificate, Authority, Client, Password, Scopes, Token};

type BoxError = Box<dyn StdError + Send + Sync>;

/// What to run the grants with.
struct Setup {
    authority: Authority,
    public_client_id: String,
    user: Option<(String, Password)>,
    confidential: Option<(String, String, Scopes)>,
    /// A client ID with its certificate credential (Entra and External ID on the fake tenant).
    certificate: Option<(String, ClientCertificate)>,
}

/// A client the fake tenant knows by its certificate.
const CERTIFICATE_CLIENT_ID: &str = "44444444-4444-4444-8444-444444444444";

/// `--authority b2c|external-id|entra`, else `B2C_AUTHORITY`, else B2C.
fn requested_kind() -> Result<AuthorityKind, BoxError> {
    let args: Vec<String> = env::args().collect();
    let from_args = args
        .iter()
        .position(|a| a == "--authority")
        .map(|i| {
            args.get(i + 1)
                .cloned()
                .ok_or("--authority needs a value: b2c, external-id or entra")
        })
        .transpose()?;
    match from_args
        .or_else(|| env::var("B2C_AUTHORITY").ok())
        .as_deref()
        .map(str::trim)
    {
        None | Some("" | "b2c") => Ok(AuthorityKind::B2c),
        Some("external-id") => Ok(AuthorityKind::ExternalId),
        Some("entra") => Ok(AuthorityKind::Entra),
        Some(other) => Err(format!("unknown authority {other:?}: use b2c, external-id or entra").into()),
    }
}

#[tokio::main(flavor = "current_thread")]
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
    let kind = requested_kind()?;
    let (_fake, setup) = match configured {
        true => {
            println!("Using the tenant configured in the environment.");
            (None, real_tenant()?)
        }
        false => {
            let (certificate_pem, key_pem) = rsa_certificate()?;
            let fake = FakeTenant::builder()
                .kind(kind)
                .certificate_client(CERTIFICATE_CLIENT_ID, &certificate_pem, &[defaults::API_APP_ROLE])
                .start()
                .await?;
            let name = match kind {
                AuthorityKind::ExternalId => "Microsoft Entra External ID",
                AuthorityKind::Entra => "Microsoft Entra ID",
                _ => "B2C",
            };
            println!(
                "No B2C_TENANT set: started the embedded fake {name} tenant at {}.",
                fake.base_url()
            );
            let setup = fake_tenant(&fake, kind, &certificate_pem, &key_pem)?;
            (Some(fake), setup)
        }
    };
    println!("Token endpoint: {}", setup.authority.token_endpoint());

    if setup.authority.kind() == AuthorityKind::ExternalId {
        // The grant matrix: refused before anything is sent, with the alternative named.
        let client = Client::builder(setup.authority.clone(), &setup.public_client_id).build()?;
        let refused = client
            .acquire_token_by_password("alice@contoso.com", &Password::new("unused"), &Scopes::empty())
            .await
            .err()
            .ok_or("External ID accepted ROPC")?;
        println!("1-2. ROPC is not offered by External ID; the client says: {refused}");
    } else if let Some((username, password)) = &setup.user {
        let client = Client::builder(setup.authority.clone(), &setup.public_client_id).build()?;
        let token = client
            .acquire_token_by_password(username, password, &Scopes::empty())
            .await?;
        println!(
            "1. Signed in {username} with the password grant (ROPC): {}.",
            describe(&token)
        );

        if let Some(refresh_token) = token.refresh_token() {
            let refreshed = client
                .acquire_token_by_refresh_token(refresh_token, &Scopes::empty())
                .await?;
            println!(
                "2. Redeemed the refresh token for new tokens: {}.",
                describe(&refreshed)
            );
        } else {
            println!("2. No refresh token came back (request offline_access to get one).");
        }
    } else {
        println!("1-2. Skipped ROPC and refresh: set B2C_USERNAME and B2C_PASSWORD to run them.");
    }

    let api_scopes = setup.confidential.as_ref().map(|(_, _, scopes)| scopes.clone());
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

    if let (Some((client_id, certificate)), Some(scopes)) = (setup.certificate, api_scopes) {
        let thumbprint = certificate.thumbprint().to_owned();
        let client = Client::builder(setup.authority.clone(), &client_id)
            .client_certificate(certificate)
            .build()?;
        let token = client.acquire_token_by_client_credentials(&scopes).await?;
        println!(
            "4. Got an app-only token with a certificate (x5t#S256 {thumbprint}): {}.",
            describe(&token)
        );
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

/// A self-signed RSA certificate and key (PEM) for the certificate credential demo.
fn rsa_certificate() -> Result<(String, String), BoxError> {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256)?;
    let certificate = rcgen::CertificateParams::new(vec!["daemon.contoso.com".into()])?.self_signed(&key)?;
    Ok((certificate.pem(), key.serialize_pem()))
}

fn fake_tenant(
    fake: &FakeTenant,
    kind: AuthorityKind,
    certificate_pem: &str,
    key_pem: &str,
) -> Result<Setup, BoxError> {
    let (authority, certificate) = match kind {
        AuthorityKind::B2c => (fake.authority(defaults::ROPC_POLICY)?, None),
        _ => (
            fake.tenant_authority()?,
            Some((
                CERTIFICATE_CLIENT_ID.to_owned(),
                ClientCertificate::from_pem(certificate_pem.as_bytes(), key_pem.as_bytes())?,
            )),
        ),
    };
    Ok(Setup {
        authority,
        public_client_id: defaults::PUBLIC_CLIENT_ID.into(),
        user: Some((defaults::USERNAME.into(), Password::new(defaults::PASSWORD))),
        confidential: Some((
            defaults::CONFIDENTIAL_CLIENT_ID.into(),
            defaults::CLIENT_SECRET.into(),
            Scopes::new([fake.api_default_scope()])?,
        )),
        certificate,
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
        certificate: None,
    })
}
