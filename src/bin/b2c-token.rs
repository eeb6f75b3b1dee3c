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

use std::io::{BufRead, Read, Write};
use std::process::ExitCode;

use std::sync::Arc;

use b2c_token::{
    Authority, AuthorityKind, Client, ClientAuthentication, Cloud, Error, FileStore, Password, PolicyForm,
    RefreshToken, Scopes, Token, TokenCache,
};
use base64::Engine as _;
use clap::{Args, Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "b2c-token",
    version,
    about = "Get Azure AD B2C access tokens without a browser"
)]
struct Cli {
    #[command(flatten)]
    authority: AuthorityArgs,

    /// Application (client) ID (without it, AZURE_CLIENT_ID).
    #[arg(long, env = "B2C_CLIENT_ID", global = true)]
    client_id: Option<String>,

    /// Scopes, space-separated (default for password and refresh: `openid {client_id} offline_access`).
    #[arg(long, env = "B2C_SCOPE", global = true)]
    scope: Option<String>,

    /// Print the whole token response as JSON instead of the access token alone.
    #[arg(long, global = true, conflicts_with = "decode")]
    json: bool,

    /// Print the access token's claims (decoded WITHOUT verifying the signature).
    #[arg(long, global = true)]
    decode: bool,

    /// Log the requests (never secrets) to standard error.
    #[arg(short, long, global = true)]
    verbose: bool,

    /// Keep tokens in a private file cache (0700 directory, 0600 files) and reuse them until
    /// they are due for refresh: a shell loop makes one request per token lifetime.
    #[arg(long, env = "B2C_TOKEN_CACHE", global = true, value_parser = clap::builder::FalseyValueParser::new())]
    cache: bool,

    /// The token cache directory [default: $XDG_CACHE_HOME/b2c-token or ~/.cache/b2c-token].
    #[arg(long, env = "B2C_TOKEN_CACHE_DIR", global = true)]
    cache_dir: Option<std::path::PathBuf>,

    /// Also trust the CA certificate(s) in this PEM file, for a token endpoint behind a
    /// private CA (the system's roots stay trusted).
    #[arg(long, env = "B2C_CA_FILE", global = true)]
    ca_file: Option<std::path::PathBuf>,

    /// Trust only the --ca-file CA(s), not the system's roots (narrower trust, ~30 ms faster start).
    #[arg(long, env = "B2C_CA_ONLY", global = true, requires = "ca_file", value_parser = clap::builder::FalseyValueParser::new())]
    ca_only: bool,

    #[command(subcommand)]
    grant: GrantCommand,
}

/// Where tokens come from. Deliberately no `env =` here: clap would treat a variable as if
/// the flag were given, so `B2C_TENANT` in the environment would conflict with `--token-url`.
/// [`authority`] applies one rule instead: a flag beats any variable, and `B2C_TOKEN_URL`
/// beats the tenant/policy variables (as `Authority::from_env` does).
#[derive(Args, Debug)]
struct AuthorityArgs {
    /// Tenant: `contoso`, `contoso.onmicrosoft.com` or a GUID [env: B2C_TENANT].
    #[arg(long, global = true)]
    tenant: Option<String>,
    /// User flow or custom policy, e.g. `B2C_1_ropc` [env: B2C_POLICY].
    #[arg(long, global = true)]
    policy: Option<String>,
    /// Tenant GUID to put in the path [env: B2C_TENANT_ID].
    #[arg(long, global = true)]
    tenant_id: Option<String>,
    /// Custom domain (Azure Front Door), e.g. `login.contoso.com`, or a base URL [env: B2C_DOMAIN].
    #[arg(long, global = true)]
    domain: Option<String>,
    /// National cloud: global, china or usgovernment [env: B2C_CLOUD].
    #[arg(long, global = true)]
    cloud: Option<Cloud>,
    /// Put the policy in the query (`?p=`) instead of the path [env: B2C_POLICY_FORM=query].
    #[arg(long, global = true, conflicts_with = "tfp")]
    query_policy: bool,
    /// Use the `/tfp/` URL form [env: B2C_POLICY_FORM=tfp].
    #[arg(long, global = true)]
    tfp: bool,
    /// A token endpoint used as given, instead of tenant + policy [env: B2C_TOKEN_URL].
    #[arg(long, global = true, conflicts_with_all = ["tenant", "policy"])]
    token_url: Option<String>,
    /// The service: b2c (default), external-id or entra (no policy; `AZURE_TENANT_ID` names the
    /// tenant too) [env: B2C_AUTHORITY].
    #[arg(long, global = true)]
    authority: Option<AuthorityKind>,
}

#[derive(Subcommand, Debug)]
enum CacheCommand {
    /// List the cached tokens: key ids (keyed hashes) and expiry, never the tokens.
    List,
    /// Delete every cached token.
    Clear,
}

#[derive(Subcommand, Debug)]
enum GrantCommand {
    /// The token cache kept by `--cache`.
    Cache {
        #[command(subcommand)]
        action: CacheCommand,
    },
    /// Resource-owner password (ROPC): password from B2C_PASSWORD or --password-stdin.
    Password {
        /// The local account's sign-in name.
        #[arg(long, env = "B2C_USERNAME")]
        username: String,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
        /// Also send the client secret (B2C_CLIENT_SECRET), for servers that require a
        /// confidential client for ROPC such as Entra ID. Never for B2C.
        #[arg(long)]
        confidential: bool,
    },
    /// Client credentials: secret from B2C_CLIENT_SECRET (or AZURE_CLIENT_SECRET) or
    /// --client-secret-stdin.
    ClientCredentials {
        /// Read the client secret from the first line of standard input.
        #[arg(long)]
        client_secret_stdin: bool,
        /// Send the secret with HTTP Basic instead of in the form body (not for B2C).
        #[arg(long)]
        basic_auth: bool,
    },
    /// Redeem a refresh token: from B2C_REFRESH_TOKEN or --refresh-token-stdin.
    Refresh {
        /// Read the refresh token from the first line of standard input.
        #[arg(long)]
        refresh_token_stdin: bool,
        /// Send the client secret (if B2C_CLIENT_SECRET is set) with HTTP Basic instead of
        /// in the form body (not for B2C).
        #[arg(long)]
        basic_auth: bool,
    },
}

/// A failure and its exit code.
struct Failure {
    code: u8,
    message: String,
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

fn usage(message: impl Into<String>) -> Failure {
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
    if !is_b64token(access) {
        // Printed into `curl -H "Authorization: Bearer $(b2c-token …)"`, a CR/LF or space
        // would inject a header: print nothing rather than that.
        return Err(Failure {
            code: 4,
            message: "error: the server's access token is not a valid bearer token (RFC 6750 b64token: letters, digits and -._~+/ then =): not printing it".into(),
        });
    }
    Ok(access.to_owned())
}

/// RFC 6750 §2.1: `b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`.
fn is_b64token(token: &str) -> bool {
    let body = token.trim_end_matches('=');
    !body.is_empty()
        && body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/'))
}

/// The authority from typed flags, each setting not given as a flag read from its variable.
/// A flag beats any variable; `--token-url` or `B2C_TOKEN_URL` is used as given unless
/// `--tenant`/`--policy` flags ask for a B2C authority.
fn authority(args: &AuthorityArgs) -> Result<Authority, Failure> {
    if let Some(url) = &args.token_url {
        return Ok(Authority::from_token_url(url)?);
    }
    let kind = match args.authority {
        Some(kind) => kind,
        None => var("B2C_AUTHORITY")
            .map(|value| value.parse::<AuthorityKind>())
            .transpose()?
            .unwrap_or(AuthorityKind::B2c),
    };
    if kind != AuthorityKind::B2c {
        // The library's own reading of the variables, with the flags laid over them.
        let overlay = |name: &str| -> Option<String> {
            match name {
                "B2C_AUTHORITY" => Some(kind.to_string()),
                // Not a B2C URL: the flag asked for another service.
                "B2C_TOKEN_URL" => None,
                "B2C_TENANT" => args.tenant.clone().or_else(|| var(name)),
                "B2C_TENANT_ID" => args.tenant_id.clone().or_else(|| var(name)),
                "B2C_DOMAIN" => args.domain.clone().or_else(|| var(name)),
                "B2C_CLOUD" => args.cloud.map(|cloud| cloud.to_string()).or_else(|| var(name)),
                _ => var(name),
            }
        };
        return Ok(Authority::from_vars(overlay)?);
    }
    let b2c_flags = args.tenant.is_some() || args.policy.is_some();
    if !b2c_flags {
        if let Some(url) = var("B2C_TOKEN_URL") {
            return Ok(Authority::from_token_url(&url)?);
        }
    }
    let (Some(tenant), Some(policy)) = (
        args.tenant.clone().or_else(|| var("B2C_TENANT")),
        args.policy.clone().or_else(|| var("B2C_POLICY")),
    ) else {
        return Err(usage(
            "give --tenant and --policy (or B2C_TENANT and B2C_POLICY), or --token-url (or B2C_TOKEN_URL)",
        ));
    };
    let mut builder = Authority::builder(&tenant, &policy);
    if let Some(id) = args.tenant_id.clone().or_else(|| var("B2C_TENANT_ID")) {
        builder = builder.tenant_id(&id);
    }
    if let Some(base) = args.domain.clone().or_else(|| var("B2C_DOMAIN")) {
        builder = builder.base_url(&base);
    }
    let cloud = match args.cloud {
        Some(cloud) => Some(cloud),
        None => var("B2C_CLOUD").map(|value| value.parse::<Cloud>()).transpose()?,
    };
    if let Some(cloud) = cloud {
        builder = builder.cloud(cloud);
    }
    let form = if args.query_policy {
        Some(PolicyForm::Query)
    } else if args.tfp {
        Some(PolicyForm::Tfp)
    } else {
        var("B2C_POLICY_FORM")
            .map(|value| value.parse::<PolicyForm>())
            .transpose()?
    };
    if let Some(form) = form {
        builder = builder.policy_form(form);
    }
    Ok(builder.build()?)
}

/// The most bytes read from standard input for a secret: secrets are short, and an endless
/// or huge input must not eat memory.
const MAX_STDIN_SECRET: u64 = 64 * 1024;

/// A setting's variable, unless unset or blank.
fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|value| !value.trim().is_empty())
}

/// Where the client secret is read from, first set first (as `ClientBuilder::from_env`).
const CLIENT_SECRET_VARIABLES: &[&str] = &["B2C_CLIENT_SECRET", "AZURE_CLIENT_SECRET"];

/// A secret from standard input (first line) or from the first of `variables` that is set,
/// never argv.
fn secret(variables: &[&str], from_stdin: bool, what: &str) -> Result<String, Failure> {
    if from_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .take(MAX_STDIN_SECRET + 1)
            .read_line(&mut line)
            .map_err(|e| usage(format!("cannot read the {what} from standard input: {e}")))?;
        if line.len() as u64 > MAX_STDIN_SECRET {
            return Err(usage(format!(
                "the {what} on standard input is longer than {} KiB: pass the secret alone on the first line",
                MAX_STDIN_SECRET / 1024
            )));
        }
        let value = line.trim_end_matches(['\r', '\n']).to_owned();
        if value.is_empty() {
            return Err(usage(format!("standard input held no {what}")));
        }
        return Ok(value);
    }
    secret_variable(variables).ok_or_else(|| {
        usage(format!(
            "set {} or pass --{}-stdin: secrets are never taken as arguments",
            variables.join(" or "),
            what.replace(' ', "-")
        ))
    })
}

/// The first of `variables` that is set and not empty.
fn secret_variable(variables: &[&str]) -> Option<String> {
    variables
        .iter()
        .find_map(|variable| std::env::var(variable).ok().filter(|v| !v.is_empty()))
}

fn json(token: &Token) -> String {
    let epoch = |time: Option<std::time::SystemTime>| {
        time.and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_secs())
    };
    let value = serde_json::json!({
        "token_type": token.token_type(),
        "access_token": token.access_token().map(|t| t.expose_secret()),
        "id_token": token.id_token().map(|t| t.expose_secret()),
        "refresh_token": token.refresh_token().map(|t| t.expose_secret()),
        "expires_in": token.expires_in().map(|d| d.as_secs()),
        "expires_on": epoch(token.expires_on()),
        "refresh_token_expires_on": epoch(token.refresh_token_expires_on()),
        "scope": token.granted_scope(),
        "resource": token.resource(),
    });
    serde_json::to_string_pretty(&value).unwrap_or_default()
}

fn decode_claims(jwt: &str) -> Result<String, Failure> {
    let not_a_jwt = || Failure {
        code: 4,
        message: "error: the access token is not a JWT whose claims can be shown".into(),
    };
    let payload = jwt.split('.').nth(1).ok_or_else(not_a_jwt)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .map_err(|_| not_a_jwt())?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).map_err(|_| not_a_jwt())?;
    serde_json::to_string_pretty(&claims).map_err(|_| not_a_jwt())
}
