//! An in-process fake Azure AD B2C tenant: a real HTTP server on loopback that answers token,
//! discovery and JWKS requests the way B2C does (b2c-protocol §1–7), for tests and demos.
//!
//! ```
//! use b2c_token::test_tenant::{defaults, FakeTenant};
//! use b2c_token::{Client, Password, Scopes};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let tenant = FakeTenant::start().await?;
//! let client = tenant.public_client(defaults::ROPC_POLICY)?.build()?;
//! let token = client
//!     .acquire_token_by_password(defaults::USERNAME, &Password::new(defaults::PASSWORD), &Scopes::empty())
//!     .await?;
//! assert!(token.access_token().is_some());
//! assert_eq!(tenant.token_requests(b2c_token::client::GrantKind::Password), 1);
//! # Ok(()) }
//! ```
//!
//! Tokens are RS256-signed JWTs with B2C's claims (`iss`, `aud`, `exp`, `nbf`, `iat`, `tfp`,
//! `scp`, `azp`, `oid`, `sub`, `ver`, `name`, `emails`); [`FakeTenant::jwks`] and the
//! per-policy discovery documents publish the key, so any OIDC library can verify them.
//! Errors carry B2C's codes (AADB2C90225, 90081, 90084, 90080, 90129, 90088, ...), an
//! unknown policy is a non-JSON 404, and [`FakeTenant::inject`] queues faults.

mod builder;
mod entra;
mod grants;
mod keys;
mod recorded;
mod request;
mod routes;
mod server;
mod timestamps;

pub use self::builder::FakeTenantBuilder;
use self::builder::{CertificateApp, User};
pub use self::recorded::RecordedRequest;

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use url::Url;

use crate::authority::{Authority, AuthorityBuilder, AuthorityKind};
use crate::client::grant::GrantKind;
use crate::client::{Client, ClientBuilder};

/// The names, IDs and secrets of the default fake tenant. All are fake, all are public.
pub mod defaults {
    /// Tenant name: `contoso` (`contoso.onmicrosoft.com`).
    pub const TENANT: &str = "contoso";
    /// Tenant GUID.
    pub const TENANT_ID: &str = "4ea0f7bf-7c1e-4a9d-9a33-6f1a2b0c9d11";
    /// An ROPC user flow ("Sign in using resource owner password credentials").
    pub const ROPC_POLICY: &str = "B2C_1_ropc";
    /// An ordinary sign-in user flow: serves client credentials but not ROPC.
    pub const SIGNIN_POLICY: &str = "B2C_1_signin";
    /// A public client ("Allow public client flows" = Yes), for ROPC.
    pub const PUBLIC_CLIENT_ID: &str = "11111111-1111-4111-8111-111111111111";
    /// A confidential client with a secret and the `app.read` app role on the API.
    pub const CONFIDENTIAL_CLIENT_ID: &str = "22222222-2222-4222-8222-222222222222";
    /// The confidential client's secret.
    pub const CLIENT_SECRET: &str = "fake-tenant-client-secret";
    /// The API's application (client) ID, the `aud` of tokens for it.
    pub const API_CLIENT_ID: &str = "33333333-3333-4333-8333-333333333333";
    /// The app role granted to the confidential client.
    pub const API_APP_ROLE: &str = "app.read";
    /// A local-account user.
    pub const USERNAME: &str = "alice@contoso.com";
    /// That user's password.
    pub const PASSWORD: &str = "Passw0rd!";
}

/// What kind of policy a name stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PolicyKind {
    /// A "sign in using resource owner password credentials" user flow: ROPC works.
    Ropc,
    /// Any other user flow or custom policy: client credentials work, ROPC does not.
    SignIn,
}

/// A fault the next token request(s) answer with instead of the normal response.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// HTTP 429, with `Retry-After` as delta-seconds (`Some`) or no header (`None`).
    TooManyRequests(Option<u64>),
    /// HTTP 429 with `Retry-After` as an HTTP-date this far in the future.
    TooManyRequestsUntil(Duration),
    /// HTTP 503 with an HTML body.
    ServiceUnavailable,
    /// Wait this long (on tokio's clock), then answer normally.
    Delay(Duration),
    /// Close the connection without answering.
    DropConnection,
    /// HTTP 200 with `application/json` that does not parse.
    MalformedJson,
    /// HTTP 200 with an HTML error page, as some custom policies do.
    HtmlPage,
    /// A `Content-Length` larger than the body actually sent.
    TruncatedBody,
    /// A 2 MiB JSON body.
    OversizedBody,
}

/// A running fake tenant. Stops when dropped.
pub struct FakeTenant {
    state: Arc<State>,
    accept_loop: tokio::task::JoinHandle<()>,
}

pub(crate) struct State {
    config: FakeTenantBuilder,
    keys: keys::KeyRing,
    base_url: Url,
    /// The private CA's certificate, with TLS.
    ca_pem: Option<String>,
    mutable: Mutex<Mutable>,
}

#[derive(Default)]
struct Mutable {
    faults: VecDeque<Fault>,
    requests: Vec<RecordedRequest>,
    token_requests: HashMap<&'static str, usize>,
    refresh_grants: HashMap<String, grants::RefreshGrant>,
    metadata_requests: usize,
    jwks_requests: usize,
    key_endpoints_down: bool,
    seen_jtis: std::collections::HashSet<String>,
    assertions: Vec<String>,
}

impl State {
    fn lock(&self) -> MutexGuard<'_, Mutable> {
        crate::sync::lock(&self.mutable)
    }
}

impl FakeTenant {
    /// Starts the default tenant (see [`defaults`]).
    ///
    /// # Errors
    /// As [`FakeTenantBuilder::start`].
    pub async fn start() -> std::io::Result<Self> {
        Self::builder().start().await
    }

    /// Configures a tenant.
    pub fn builder() -> FakeTenantBuilder {
        FakeTenantBuilder::default()
    }

    /// `http://127.0.0.1:{port}/`.
    #[must_use]
    pub fn base_url(&self) -> &Url {
        &self.state.base_url
    }

    /// The tenant GUID.
    #[must_use]
    pub fn tenant_id(&self) -> &str {
        &self.state.config.tenant_id
    }

    /// The PEM certificate of the CA that issued the server's certificate, when it serves
    /// HTTPS ([`FakeTenantBuilder::tls`]): trust it with `ClientBuilder::add_root_certificate`.
    #[must_use]
    pub fn ca_pem(&self) -> Option<&str> {
        self.state.ca_pem.as_deref()
    }

    /// An authority builder for `policy` on this server, to pick a URL form.
    pub fn authority_builder(&self, policy: &str) -> AuthorityBuilder {
        Authority::builder(&self.state.config.tenant, policy).base_url(self.state.base_url.as_str())
    }

    /// A builder for the tenant's public client ([`defaults::PUBLIC_CLIENT_ID`], no secret:
    /// the ROPC client) at `policy`. Chain more settings, then `build()`.
    ///
    /// # Errors
    /// If the policy name is not valid.
    pub fn public_client(&self, policy: &str) -> crate::error::Result<ClientBuilder> {
        Ok(Client::builder(self.authority(policy)?, defaults::PUBLIC_CLIENT_ID))
    }

    /// A builder for the tenant's confidential client ([`defaults::CONFIDENTIAL_CLIENT_ID`]
    /// with [`defaults::CLIENT_SECRET`]: the client-credentials daemon) at `policy`.
    ///
    /// # Errors
    /// If the policy name is not valid.
    pub fn confidential_client(&self, policy: &str) -> crate::error::Result<ClientBuilder> {
        Ok(
            Client::builder(self.authority(policy)?, defaults::CONFIDENTIAL_CLIENT_ID)
                .client_secret(defaults::CLIENT_SECRET),
        )
    }

    /// This tenant as an External ID or Entra authority (per [`FakeTenantBuilder::kind`]),
    /// addressed by tenant name; B2C tenants need a policy: use [`FakeTenant::authority`].
    ///
    /// # Errors
    /// If the tenant is a B2C one.
    pub fn tenant_authority(&self) -> crate::error::Result<Authority> {
        let config = &self.state.config;
        let builder = match config.kind {
            AuthorityKind::ExternalId => Authority::external_id_builder(&config.tenant),
            AuthorityKind::Entra => Authority::entra_builder(&config.tenant),
            _ => {
                return Err(crate::error::Error::config(
                    "a B2C fake tenant needs a policy: use FakeTenant::authority(policy)",
                ))
            }
        };
        builder.base_url(self.state.base_url.as_str()).build()
    }

    /// Every client assertion that passed verification, in order (decode them to check the
    /// claims a client sent).
    #[must_use]
    pub fn client_assertions(&self) -> Vec<String> {
        self.state.lock().assertions.clone()
    }

    /// A federated token as an external issuer (a Kubernetes cluster) would write it for
    /// workload identity: `iss`, `sub`, audience `api://AzureADTokenExchange`, valid for
    /// `lifetime`, signed with the tenant's current key (which plays that issuer's key).
    #[must_use]
    pub fn mint_federated_token(&self, issuer: &str, subject: &str, lifetime: Duration) -> String {
        let now = routes::epoch(std::time::SystemTime::now());
        let claims = serde_json::json!({
            "iss": issuer,
            "sub": subject,
            "aud": [entra::FEDERATED_AUDIENCE],
            "iat": now,
            "nbf": now,
            "exp": now + lifetime.as_secs(),
            "jti": uuid::Uuid::new_v4().to_string(),
        });
        self.state.keys.sign(&claims)
    }

    /// The canonical path-form authority for `policy` on this server.
    ///
    /// # Errors
    /// If the policy name is not valid.
    pub fn authority(&self, policy: &str) -> crate::error::Result<Authority> {
        self.authority_builder(policy).build()
    }

    /// The scope for client credentials against the tenant's API: `{App ID URI}/.default`.
    #[must_use]
    pub fn api_default_scope(&self) -> String {
        format!("{}/.default", routes::app_id_uri(&self.state.config.tenant))
    }

    /// A delegated API scope, e.g. `api_scope("read")`.
    #[must_use]
    pub fn api_scope(&self, name: &str) -> String {
        format!("{}/{name}", routes::app_id_uri(&self.state.config.tenant))
    }

    /// The JSON Web Key Set that verifies this tenant's tokens.
    #[must_use]
    pub fn jwks(&self) -> serde_json::Value {
        self.state.keys.jwks()
    }

    /// Starts signing with a new key, as Azure does at a key rollover: the JWKS lists it
    /// beside the previous ones (the last three), so tokens signed before stay verifiable.
    /// Returns the new key's `kid`.
    ///
    /// # Errors
    /// If the key cannot be generated.
    pub fn rotate_signing_key(&self) -> std::io::Result<String> {
        self.state.keys.rotate()
    }

    /// The `kid` of the key tokens are signed with now.
    #[must_use]
    pub fn signing_key_id(&self) -> String {
        self.state.keys.current_kid()
    }

    /// The claims of an access token for the tenant's API ([`defaults::API_CLIENT_ID`]) that
    /// the default user would get from `policy` for the delegated `scopes` (names such as
    /// `"read"`; none gives a token without `scp`, as B2C issues when only the client ID was
    /// asked for). Change any claim, then [`FakeTenant::mint`] it: that is how to test what
    /// an API does with a wrong audience, issuer or policy, an expired token, or no scope.
    ///
    /// ```
    /// use b2c_token::test_tenant::{defaults, FakeTenant};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> std::io::Result<()> {
    /// let tenant = FakeTenant::start().await?;
    /// let mut claims = tenant.access_token_claims(defaults::SIGNIN_POLICY, &["read"]);
    /// claims.insert("aud".into(), "someone-else".into());
    /// let token = tenant.mint(&claims);
    /// assert_eq!(token.split('.').count(), 3);
    /// # Ok(()) }
    /// ```
    #[must_use]
    pub fn access_token_claims(&self, policy: &str, scopes: &[&str]) -> serde_json::Map<String, serde_json::Value> {
        grants::access_token_claims(&self.state, policy, scopes)
    }

    /// Signs `claims` as the tenant signs its tokens (RS256, the current key's `kid`).
    #[must_use]
    pub fn mint(&self, claims: &serde_json::Map<String, serde_json::Value>) -> String {
        self.state.keys.sign(&serde_json::Value::Object(claims.clone()))
    }

    /// Signs `claims` under exactly this JWS `header` with the current key's RS256 signature,
    /// whatever the header claims (`"alg": "none"`, no `kid`, a `kid` nobody published...).
    #[must_use]
    pub fn mint_with_header(
        &self,
        header: &serde_json::Value,
        claims: &serde_json::Map<String, serde_json::Value>,
    ) -> String {
        self.state
            .keys
            .sign_raw(header, &serde_json::Value::Object(claims.clone()))
    }

    /// The current signing key's public key, DER (PKCS#1), the bytes an `alg`-confusion
    /// attack uses as an HMAC secret.
    #[must_use]
    pub fn public_key_der(&self) -> Vec<u8> {
        self.state.keys.public_key_der()
    }

    /// How many OpenID metadata documents were requested (any policy).
    #[must_use]
    pub fn metadata_requests(&self) -> usize {
        self.state.lock().metadata_requests
    }

    /// How many JWKS documents were requested (any policy).
    #[must_use]
    pub fn jwks_requests(&self) -> usize {
        self.state.lock().jwks_requests
    }

    /// While `true`, metadata and JWKS requests answer 503 (they are still counted).
    pub fn set_key_endpoints_down(&self, down: bool) {
        self.state.lock().key_endpoints_down = down;
    }

    /// The `iss` claim of this tenant's tokens.
    #[must_use]
    pub fn issuer(&self) -> String {
        routes::issuer(&self.state)
    }

    /// Answers the next `count` token requests with `fault`, after any already queued.
    pub fn inject(&self, fault: Fault, count: usize) {
        let mut state = self.state.lock();
        state.faults.extend(std::iter::repeat_n(fault, count));
    }

    /// Drops every queued fault.
    pub fn clear_faults(&self) {
        self.state.lock().faults.clear();
    }

    /// Revokes every refresh token issued to `username` (as Graph's `revokeSignInSessions`
    /// does): the next redeem answers AADB2C90129.
    pub fn revoke_refresh_tokens(&self, username: &str) {
        let mut state = self.state.lock();
        for grant in state.refresh_grants.values_mut() {
            if grant
                .username
                .as_deref()
                .is_some_and(|u| u.eq_ignore_ascii_case(username))
            {
                grant.revoked = true;
            }
        }
    }

    /// Every request received so far, in order.
    #[must_use]
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.state.lock().requests.clone()
    }

    /// How many token requests with this grant reached the token endpoint (faulted ones included).
    #[must_use]
    pub fn token_requests(&self, grant: GrantKind) -> usize {
        self.state
            .lock()
            .token_requests
            .get(grant.grant_type())
            .copied()
            .unwrap_or(0)
    }

    /// How many token requests in the log (see [`FakeTenant::clear_request_log`]) came from
    /// `client_id`, whatever their grant: what one application registration asked for.
    #[must_use]
    pub fn token_requests_from(&self, client_id: &str) -> usize {
        self.state
            .lock()
            .requests
            .iter()
            .filter(|r| r.form_value("grant_type").is_some() && r.form_value("client_id") == Some(client_id))
            .count()
    }

    /// Token requests of every grant.
    #[must_use]
    pub fn total_token_requests(&self) -> usize {
        self.state.lock().token_requests.values().sum()
    }

    /// Forgets recorded requests but keeps the counters (long-running tests call this to
    /// keep the log from growing).
    pub fn clear_request_log(&self) {
        self.state.lock().requests.clear();
    }

    /// Forgets recorded requests and counters: a fresh start within one test. (Another
    /// process can do the same with `POST {base_url}_fake/reset`, and read the counters with
    /// `GET {base_url}_fake/stats`.)
    pub fn reset(&self) {
        let mut state = self.state.lock();
        state.requests.clear();
        state.token_requests.clear();
        state.metadata_requests = 0;
        state.jwks_requests = 0;
    }
}

impl Drop for FakeTenant {
    fn drop(&mut self) {
        // Aborting the accept loop drops its JoinSet, which aborts every open connection.
        self.accept_loop.abort();
    }
}

impl fmt::Debug for FakeTenant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FakeTenant")
            .field("base_url", &self.state.base_url.as_str())
            .field("tenant", &self.state.config.tenant)
            .finish_non_exhaustive()
    }
}
