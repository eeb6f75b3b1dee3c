//! `b2c-token`: get an Azure AD B2C token from a shell.
//!
//! ```text
//! export B2C_TENANT=contoso B2C_POLICY=B2C_1_ropc B2C_CLIENT_ID=… B2C_PASSWORD=…
//! b2c-token password --username alice@contoso.com
//! curl -H "Authorization: Bearer $(b2c-token client-credentials --scope https://contoso.onmicrosoft.com/api/.default)" …
//! ```
//!
//! Secrets are never taken from the command line (where `ps` and shell history show them):
//! the password, client secret and refresh token come from `B2C_PASSWORD`,
//! `B2C_CLIENT_SECRET` (or `AZURE_CLIENT_SECRET`) and `B2C_REFRESH_TOKEN`, or from standard
//! input. `AZURE_CLIENT_ID` stands in for `B2C_CLIENT_ID`.
//!
//! Exit codes: 0 success, 2 usage or configuration, 3 the server rejected the request,
//! 4 transport failure, throttling or an unexpected response.

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;

use b2c_token::{
    client::ClientAuthentication, secret::RefreshToken, store::FileStore, Client, Error, Password, Scopes, TokenCache,
};
use clap::Parser as _;

mod args;
mod config;
mod output;

use crate::args::{CacheCommand, Cli, GrantCommand};
use crate::config::{authority, secret, secret_variable, var, CLIENT_SECRET_VARIABLES};
use crate::output::{decode_claims, is_b64token, json};

/// A failure and its exit code.
pub(crate) struct Failure {
    pub(crate) code: u8,
    pub(crate) message: String,
}

impl From<Error> for Failure {
    fn from(error: Error) -> Self {
        let code = match &error {
            Error::Config(_) => 2,
            Error::Rejected(_) => 3,
            // An empty 400/401/403 is a refusal all the same, just without the words.
            Error::UnexpectedResponse(response) if matches!(response.status(), Some(400 | 401 | 403)) => 3,
            _ => 4,
        };
        let mut message = format!("error: {error}");
        if let Error::Rejected(rejection) = &error {
            // The pieces on their own lines, for people and for grep.
            let code = rejection
                .b2c_code()
                .map_or_else(|| rejection.error().to_owned(), |c| c.to_string());
            message.push_str(&format!("\n  code: {code}"));
            if !rejection.message().is_empty() {
                message.push_str(&format!("\n  message: {}", rejection.message()));
            }
            message.push_str(&format!("\n  fix: {}", rejection.hint()));
            if let Some(id) = rejection.correlation_id() {
                message.push_str(&format!("\n  correlation ID: {id}"));
            }
        }
        Self { code, message }
    }
}

pub(crate) fn usage(message: impl Into<String>) -> Failure {
    Failure {
        code: 2,
        message: format!("error: {}", message.into()),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if cli.verbose {
        tracing_subscriber::fmt()
            .with_writer(std::io::stderr)
            .with_max_level(tracing::Level::DEBUG)
            .init();
    }
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(4);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(output) => {
            let mut stdout = std::io::stdout().lock();
            // A closed pipe (`| head`) is not an error worth reporting.
            let _ = writeln!(stdout, "{output}");
            ExitCode::SUCCESS
        }
        Err(failure) => {
            eprintln!("{}", failure.message);
            ExitCode::from(failure.code)
        }
    }
}

fn file_store(cli: &Cli) -> Result<FileStore, Failure> {
    let dir = match &cli.cache_dir {
        Some(dir) => dir.clone(),
        None => FileStore::default_dir()?,
    };
    Ok(FileStore::open(dir)?)
}

fn cache_command(cli: &Cli, action: &CacheCommand) -> Result<String, Failure> {
    let store = file_store(cli)?;
    match action {
        CacheCommand::List => {
            let now = std::time::SystemTime::now();
            Ok(store
                .list()?
                .iter()
                .map(|entry| match entry.expires_at.duration_since(now) {
                    Ok(left) => format!("{}  expires in {} s", entry.id, left.as_secs()),
                    Err(_) => format!("{}  expired", entry.id),
                })
                .collect::<Vec<_>>()
                .join("\n"))
        }
        CacheCommand::Clear => Ok(format!("{} cached token(s) deleted", store.clear()?)),
    }
}

async fn run(cli: Cli) -> Result<String, Failure> {
    if let GrantCommand::Cache { action } = &cli.grant {
        return cache_command(&cli, action);
    }
    // With --cache, password and client-credentials tokens go through a TokenCache on a
    // FileStore: reused across runs, one request per lifetime across parallel runs.
    let cache = if cli.cache {
        Some(TokenCache::builder().store(Arc::new(file_store(&cli)?)).build())
    } else {
        None
    };
    let authority = authority(&cli.authority)?;
    // Azure's variable as the library's `from_env` reads it: a workload identity webhook
    // sets it.
    let client_id = cli
        .client_id
        .clone()
        .or_else(|| var("AZURE_CLIENT_ID"))
        .ok_or_else(|| usage("--client-id (or B2C_CLIENT_ID, or AZURE_CLIENT_ID) is required"))?;
    let scopes = match &cli.scope {
        Some(scope) => Scopes::parse(scope)?,
        None => Scopes::empty(),
    };
    let mut builder = Client::builder(authority, &client_id);
    if let Some(path) = &cli.ca_file {
        let pem = std::fs::read(path).map_err(|e| usage(format!("cannot read the CA file {}: {e}", path.display())))?;
        builder = builder.add_root_certificate(&pem).trust_only_added_roots(cli.ca_only);
    }
    let token = match &cli.grant {
        GrantCommand::Password {
            username,
            password_stdin,
            confidential,
        } => {
            let password = secret(&["B2C_PASSWORD"], *password_stdin, "password")?;
            if *confidential {
                let client_secret = secret(CLIENT_SECRET_VARIABLES, false, "client secret")?;
                builder = builder.client_secret(client_secret).confidential_password_grant(true);
            }
            let client = builder.build()?;
            let password = Password::new(password);
            match &cache {
                Some(cache) => cache.password(&client, username, &password, &scopes).token().await?,
                None => client.acquire_token_by_password(username, &password, &scopes).await?,
            }
        }
        GrantCommand::ClientCredentials {
            client_secret_stdin,
            basic_auth,
        } => {
            let secret = secret(CLIENT_SECRET_VARIABLES, *client_secret_stdin, "client secret")?;
            let method = if *basic_auth {
                ClientAuthentication::Basic
            } else {
                ClientAuthentication::FormBody
            };
            let client = builder.client_secret(secret).client_authentication(method).build()?;
            match &cache {
                Some(cache) => cache.client_credentials(&client, &scopes).token().await?,
                None => client.acquire_token_by_client_credentials(&scopes).await?,
            }
        }
        GrantCommand::Cache { action } => return cache_command(&cli, action),
        GrantCommand::Refresh {
            refresh_token_stdin,
            basic_auth,
        } => {
            let refresh = secret(&["B2C_REFRESH_TOKEN"], *refresh_token_stdin, "refresh token")?;
            // Optional here: a public client refreshes without one.
            if let Some(secret) = secret_variable(CLIENT_SECRET_VARIABLES) {
                builder = builder.client_secret(secret);
            }
            if *basic_auth {
                builder = builder.client_authentication(ClientAuthentication::Basic);
            }
            builder
                .build()?
                .acquire_token_by_refresh_token(&RefreshToken::new(refresh), &scopes)
                .await?
        }
    };
    // Whatever is printed must be usable after `Bearer `: RFC 6750's characters (a CR/LF or
    // space in `curl -H "Authorization: Bearer $(b2c-token …)"` would inject a header), then
    // the same check the library's layers make (a `mac` or `pop` token is the unusable-token
    // error). Printing nothing beats printing that.
    if let Some(access) = token.access_token() {
        if !is_b64token(access.expose_secret()) {
            return Err(Failure {
                code: 4,
                message: "error: the server's access token is not a valid bearer token (RFC 6750 b64token: letters, digits and -._~+/ then =): not printing it".into(),
            });
        }
        token.authorization_header()?;
    }
    if cli.json {
        return Ok(json(&token));
    }
    let access = token.access_token().ok_or_else(|| {
        Failure::from(Error::UnusableToken(
            "the response has no access token: request a resource scope".into(),
        ))
    })?;
    if cli.decode {
        eprintln!("note: claims decoded without verifying the signature");
        return decode_claims(access.expose_secret());
    }
    let access = access.expose_secret();
    Ok(access.to_owned())
}
