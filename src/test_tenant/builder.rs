//! The fake tenant's configuration: its tenant, policies, registered clients and users, and
//! token lifetimes, collected before [`FakeTenantBuilder::start`] brings the server up.

use std::fmt;
use std::time::Duration;

use super::{defaults, server, FakeTenant, PolicyKind};
use crate::authority::AuthorityKind;

#[derive(Clone)]
pub(super) struct ConfidentialApp {
    pub(super) client_id: String,
    pub(super) secret: String,
    pub(super) roles: Vec<String>,
}

/// A confidential client that proves itself with a certificate (client assertions).
#[derive(Debug, Clone)]
pub(super) struct CertificateApp {
    pub(super) client_id: String,
    pub(super) certificate: rustls::pki_types::CertificateDer<'static>,
    /// `base64url(SHA-256(DER))`, the `x5t#S256` its assertions must carry.
    pub(super) thumbprint: String,
    pub(super) roles: Vec<String>,
}

/// A confidential client trusted through a federated credential (workload identity).
#[derive(Debug, Clone)]
pub(super) struct FederatedApp {
    pub(super) client_id: String,
    pub(super) issuer: String,
    pub(super) subject: String,
    pub(super) roles: Vec<String>,
}

#[derive(Clone)]
pub(super) struct User {
    pub(super) username: String,
    pub(super) password: String,
    pub(super) object_id: String,
    pub(super) display_name: String,
}

impl fmt::Debug for ConfidentialApp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConfidentialApp")
            .field("client_id", &self.client_id)
            .field("roles", &self.roles)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for User {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("User")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// Configures a [`FakeTenant`]. Starts from [`defaults`]; each call adds to or replaces them.
#[derive(Debug, Clone)]
#[must_use]
pub struct FakeTenantBuilder {
    pub(super) tenant: String,
    pub(super) tenant_id: String,
    pub(super) policies: Vec<(String, PolicyKind)>,
    pub(super) public_clients: Vec<String>,
    pub(super) confidential_clients: Vec<ConfidentialApp>,
    pub(super) users: Vec<User>,
    pub(super) api_client_id: String,
    pub(super) access_token_lifetime: Duration,
    pub(super) refresh_token_lifetime: Duration,
    pub(super) old_refresh_tokens_stay_valid: bool,
    pub(super) tls: bool,
    pub(super) kind: AuthorityKind,
    pub(super) certificate_clients: Vec<CertificateApp>,
    pub(super) federated_clients: Vec<FederatedApp>,
    pub(super) mfa_users: Vec<String>,
}

impl Default for FakeTenantBuilder {
    fn default() -> Self {
        use defaults::*;
        Self {
            tenant: TENANT.into(),
            tenant_id: TENANT_ID.into(),
            policies: vec![
                (ROPC_POLICY.into(), PolicyKind::Ropc),
                (SIGNIN_POLICY.into(), PolicyKind::SignIn),
            ],
            public_clients: vec![PUBLIC_CLIENT_ID.into()],
            confidential_clients: vec![ConfidentialApp {
                client_id: CONFIDENTIAL_CLIENT_ID.into(),
                secret: CLIENT_SECRET.into(),
                roles: vec![API_APP_ROLE.into()],
            }],
            users: vec![],
            api_client_id: API_CLIENT_ID.into(),
            access_token_lifetime: Duration::from_secs(3600),
            refresh_token_lifetime: Duration::from_secs(14 * 24 * 3600),
            old_refresh_tokens_stay_valid: false,
            tls: false,
            kind: AuthorityKind::B2c,
            certificate_clients: Vec::new(),
            federated_clients: Vec::new(),
            mfa_users: Vec::new(),
        }
        .user(USERNAME, PASSWORD)
    }
}

impl FakeTenantBuilder {
    /// Tenant name (`contoso`) and GUID.
    pub fn tenant(mut self, name: &str, guid: &str) -> Self {
        self.tenant = name.to_ascii_lowercase();
        self.tenant_id = guid.to_ascii_lowercase();
        self
    }

    /// Adds a policy.
    pub fn policy(mut self, name: &str, kind: PolicyKind) -> Self {
        self.policies.push((name.to_owned(), kind));
        self
    }

    /// Adds a public client (ROPC allowed).
    pub fn public_client(mut self, client_id: &str) -> Self {
        self.public_clients.push(client_id.to_owned());
        self
    }

    /// Adds a confidential client with a secret and the API app roles it was granted.
    pub fn confidential_client(mut self, client_id: &str, secret: &str, roles: &[&str]) -> Self {
        self.confidential_clients.push(ConfidentialApp {
            client_id: client_id.to_owned(),
            secret: secret.to_owned(),
            roles: roles.iter().map(|r| (*r).to_owned()).collect(),
        });
        self
    }

    /// Adds a local-account user.
    pub fn user(mut self, username: &str, password: &str) -> Self {
        let display_name = username.split('@').next().unwrap_or(username).to_owned();
        self.users.push(User {
            username: username.to_owned(),
            password: password.to_owned(),
            object_id: uuid::Uuid::new_v4().to_string(),
            display_name,
        });
        self
    }

    /// How long access and ID tokens live. Short lifetimes let tests watch refreshes.
    pub fn access_token_lifetime(mut self, lifetime: Duration) -> Self {
        self.access_token_lifetime = lifetime;
        self
    }

    /// How long refresh tokens live (tokio's clock: pause and advance it to expire them).
    pub fn refresh_token_lifetime(mut self, lifetime: Duration) -> Self {
        self.refresh_token_lifetime = lifetime;
        self
    }

    /// Whether a refresh token stays valid after it was redeemed (B2C's behaviour here is
    /// unverified: b2c-protocol §4.2). Default `false`: each redeem invalidates it.
    pub fn old_refresh_tokens_stay_valid(mut self, valid: bool) -> Self {
        self.old_refresh_tokens_stay_valid = valid;
        self
    }

    /// Serves HTTPS instead of HTTP, with a certificate for `localhost` and `127.0.0.1` issued
    /// at start by a private CA of its own ([`FakeTenant::ca_pem`]): for testing private-CA
    /// setups (`ClientBuilder::add_root_certificate`, the CLI's `--ca-file`) and clients that
    /// insist on HTTPS authorities. The base URL is then `https://localhost:{port}/`.
    pub fn tls(mut self, tls: bool) -> Self {
        self.tls = tls;
        self
    }

    /// Which service to be: B2C (default), or [`AuthorityKind::ExternalId`] /
    /// [`AuthorityKind::Entra`]: no policies (`/{tenant}/oauth2/v2.0/token`), issuer
    /// `{base}{tenant GUID}/v2.0`, `AADSTS` errors with `error_codes`, app roles in `roles`,
    /// certificate and federated credentials; External ID refuses ROPC. Build clients with
    /// [`FakeTenant::tenant_authority`].
    pub fn kind(mut self, kind: AuthorityKind) -> Self {
        self.kind = if kind == AuthorityKind::Other {
            AuthorityKind::Entra
        } else {
            kind
        };
        self
    }

    /// Registers a confidential client that authenticates with a certificate (Entra and
    /// External ID modes): its assertions must carry this certificate's `x5t#S256`, verify
    /// with its key, name the token endpoint as `aud` and the client as `iss`/`sub`, be
    /// within their time window, and never reuse a `jti`.
    ///
    /// # Panics
    /// If `certificate_pem` holds no PEM certificate (a test's own mistake).
    pub fn certificate_client(mut self, client_id: &str, certificate_pem: &str, roles: &[&str]) -> Self {
        use rustls::pki_types::pem::PemObject as _;
        #[allow(clippy::expect_used)]
        let certificate = rustls::pki_types::CertificateDer::from_pem_slice(certificate_pem.as_bytes())
            .expect("certificate_client needs a PEM certificate");
        let thumbprint = {
            use base64::Engine as _;
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(aws_lc_rs::digest::digest(
                &aws_lc_rs::digest::SHA256,
                certificate.as_ref(),
            ))
        };
        self.certificate_clients.push(CertificateApp {
            client_id: client_id.to_owned(),
            certificate,
            thumbprint,
            roles: roles.iter().map(|r| (*r).to_owned()).collect(),
        });
        self
    }

    /// Registers a client trusted through a federated credential: assertions are tokens from
    /// `issuer` about `subject` with audience `api://AzureADTokenExchange` (Entra and External
    /// ID modes). [`FakeTenant::mint_federated_token`] plays the issuer.
    pub fn federated_client(mut self, client_id: &str, issuer: &str, subject: &str, roles: &[&str]) -> Self {
        self.federated_clients.push(FederatedApp {
            client_id: client_id.to_owned(),
            issuer: issuer.to_owned(),
            subject: subject.to_owned(),
            roles: roles.iter().map(|r| (*r).to_owned()).collect(),
        });
        self
    }

    /// Makes a user's password sign-ins require MFA (Entra mode: ROPC answers AADSTS50076).
    pub fn mfa_user(mut self, username: &str) -> Self {
        self.mfa_users.push(username.to_owned());
        self
    }

    /// Starts the server on `127.0.0.1` at a free port, on the current tokio runtime.
    ///
    /// # Errors
    /// If no port can be bound or the signing key cannot be generated.
    pub async fn start(self) -> std::io::Result<FakeTenant> {
        server::start(self).await
    }
}
