//! The command line: flags, subcommands and the variables each one falls back to (clap).

use b2c_token::{authority::AuthorityKind, authority::Cloud};
use clap::{Args, Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "b2c-token",
    version,
    about = "Get Azure AD B2C access tokens without a browser"
)]
pub(crate) struct Cli {
    #[command(flatten)]
    pub(crate) authority: AuthorityArgs,

    /// Application (client) ID (without it, AZURE_CLIENT_ID).
    #[arg(long, env = "B2C_CLIENT_ID", global = true)]
    pub(crate) client_id: Option<String>,

    /// Scopes, space-separated (default for password and refresh: `openid {client_id} offline_access`).
    #[arg(long, env = "B2C_SCOPE", global = true)]
    pub(crate) scope: Option<String>,

    /// Print the whole token response as JSON instead of the access token alone.
    #[arg(long, global = true, conflicts_with = "decode")]
    pub(crate) json: bool,

    /// Print the access token's claims (decoded WITHOUT verifying the signature).
    #[arg(long, global = true)]
    pub(crate) decode: bool,

    /// Log the requests (never secrets) to standard error.
    #[arg(short, long, global = true)]
    pub(crate) verbose: bool,

    /// Keep tokens in a private file cache (0700 directory, 0600 files) and reuse them until
    /// they are due for refresh: a shell loop makes one request per token lifetime.
    #[arg(long, env = "B2C_TOKEN_CACHE", global = true, value_parser = clap::builder::FalseyValueParser::new())]
    pub(crate) cache: bool,

    /// The token cache directory [default: $XDG_CACHE_HOME/b2c-token or ~/.cache/b2c-token].
    #[arg(long, env = "B2C_TOKEN_CACHE_DIR", global = true)]
    pub(crate) cache_dir: Option<std::path::PathBuf>,

    /// Also trust the CA certificate(s) in this PEM file, for a token endpoint behind a
    /// private CA (the system's roots stay trusted).
    #[arg(long, env = "B2C_CA_FILE", global = true)]
    pub(crate) ca_file: Option<std::path::PathBuf>,

    /// Trust only the --ca-file CA(s), not the system's roots (narrower trust, ~30 ms faster start).
    #[arg(long, env = "B2C_CA_ONLY", global = true, requires = "ca_file", value_parser = clap::builder::FalseyValueParser::new())]
    pub(crate) ca_only: bool,

    #[command(subcommand)]
    pub(crate) grant: GrantCommand,
}

/// Where tokens come from. Deliberately no `env =` here: clap would treat a variable as if
/// the flag were given, so `B2C_TENANT` in the environment would conflict with `--token-url`.
/// [`authority`] applies one rule instead: a flag beats any variable, and `B2C_TOKEN_URL`
/// beats the tenant/policy variables (as `Authority::from_env` does).
#[derive(Args, Debug)]
pub(crate) struct AuthorityArgs {
    /// Tenant: `contoso`, `contoso.onmicrosoft.com` or a GUID [env: B2C_TENANT].
    #[arg(long, global = true)]
    pub(crate) tenant: Option<String>,
    /// User flow or custom policy, e.g. `B2C_1_ropc` [env: B2C_POLICY].
    #[arg(long, global = true)]
    pub(crate) policy: Option<String>,
    /// Tenant GUID to put in the path [env: B2C_TENANT_ID].
    #[arg(long, global = true)]
    pub(crate) tenant_id: Option<String>,
    /// Custom domain (Azure Front Door), e.g. `login.contoso.com`, or a base URL [env: B2C_DOMAIN].
    #[arg(long, global = true)]
    pub(crate) domain: Option<String>,
    /// National cloud: global, china or usgovernment [env: B2C_CLOUD].
    #[arg(long, global = true)]
    pub(crate) cloud: Option<Cloud>,
    /// Put the policy in the query (`?p=`) instead of the path [env: B2C_POLICY_FORM=query].
    #[arg(long, global = true, conflicts_with = "tfp")]
    pub(crate) query_policy: bool,
    /// Use the `/tfp/` URL form [env: B2C_POLICY_FORM=tfp].
    #[arg(long, global = true)]
    pub(crate) tfp: bool,
    /// A token endpoint used as given, instead of tenant + policy [env: B2C_TOKEN_URL].
    #[arg(long, global = true, conflicts_with_all = ["tenant", "policy"])]
    pub(crate) token_url: Option<String>,
    /// The service: b2c (default), external-id or entra (no policy; `AZURE_TENANT_ID` names the
    /// tenant too) [env: B2C_AUTHORITY].
    #[arg(long, global = true)]
    pub(crate) authority: Option<AuthorityKind>,
}

#[derive(Subcommand, Debug)]
pub(crate) enum CacheCommand {
    /// List the cached tokens: key ids (keyed hashes) and expiry, never the tokens.
    List,
    /// Delete every cached token.
    Clear,
}

#[derive(Subcommand, Debug)]
pub(crate) enum GrantCommand {
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
