//! The [`Client`]: one application registration at one authority, and the three grants.

use std::fmt;
use std::sync::Arc;

mod builder;
pub(crate) mod grant;
mod lockout;
#[cfg(feature = "metrics")]
pub(crate) mod metrics;
pub(crate) mod retry;
pub(crate) mod transport;

pub use self::builder::ClientBuilder;
pub use self::grant::{ClientAuthentication, GrantKind};
use self::grant::{ClientSecretUse, FormSettings, Grant, SentCredential};
use self::lockout::{Flight, RejectedCredentials, MAX_PASSWORD_ATTEMPTS};
use self::retry::send_with_retries;
pub use self::retry::RetryPolicy;
use self::transport::Transport;
use crate::authority::{Authority, AuthorityKind};
use crate::credential::ClientAssertion;
use crate::error::{Error, Result};
use crate::scope::Scopes;
use crate::secret::{ClientSecret, Password, RefreshToken};
use crate::token::Token;

/// Gets tokens from one authority for one application registration.
///
/// A cheap-to-clone handle (`Arc` inside): clone it into every task; all clones share one
/// connection pool.
///
/// ```no_run
/// use b2c_token::{Authority, Client, Password, Scopes};
///
/// # async fn demo() -> Result<(), b2c_token::Error> {
/// let client = Client::builder(Authority::b2c("contoso", "B2C_1_ropc")?, "11111111-1111-1111-1111-111111111111")
///     .build()?;
/// let token = client
///     .acquire_token_by_password("alice@contoso.com", &Password::new("correct horse"), &Scopes::empty())
///     .await?;
/// assert!(token.refresh_token().is_some());
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Client {
    inner: Arc<ClientInner>,
}

struct ClientInner {
    authority: Authority,
    /// Token endpoint (lower-cased: hosts, tenants and policies are case-insensitive) and
    /// client ID: the part of a cache key every token of this client shares.
    cache_identity: Arc<str>,
    /// Random, per built client: see `Client::instance`.
    instance: u64,
    client_id: String,
    client_secret: Option<ClientSecret>,
    assertion: Option<Arc<dyn ClientAssertion>>,
    client_authentication: ClientAuthentication,
    send_response_type: bool,
    confidential_password_grant: bool,
    refresh_resource: Option<String>,
    transport: Transport,
    retry: RetryPolicy,
    rejected_credentials: RejectedCredentials,
}

impl Client {
    /// Starts a client for `client_id` (the Application (client) ID of the registration).
    pub fn builder(authority: Authority, client_id: &str) -> ClientBuilder {
        ClientBuilder::new(authority, client_id)
    }

    /// The authority tokens come from.
    #[must_use]
    pub fn authority(&self) -> &Authority {
        &self.inner.authority
    }

    /// The application (client) ID.
    #[must_use]
    pub fn client_id(&self) -> &str {
        &self.inner.client_id
    }

    pub(crate) fn cache_identity(&self) -> &Arc<str> {
        &self.inner.cache_identity
    }

    /// This client and its clones, apart from every other: tokens earned with an assertion
    /// are served in-process only to the client whose credential object earned them.
    pub(crate) fn instance(&self) -> u64 {
        self.inner.instance
    }

    /// The client credential a `grant` sends (`None` if it needs one this client lacks): the
    /// same rule the form follows.
    pub(crate) fn sent_credential(&self, grant: GrantKind) -> Option<SentCredential<'_>> {
        let secret_use = match grant {
            GrantKind::Password => ClientSecretUse::Never,
            GrantKind::ClientCredentials => ClientSecretUse::Required,
            GrantKind::RefreshToken => ClientSecretUse::IfConfigured,
        };
        self.form_settings().sent_credential(secret_use)
    }

    /// What every grant's form needs from this client's configuration.
    fn form_settings(&self) -> FormSettings<'_> {
        let inner = &*self.inner;
        FormSettings {
            url: inner.authority.token_endpoint(),
            client_id: &inner.client_id,
            client_secret: inner.client_secret.as_ref(),
            assertion: inner.assertion.as_deref(),
            client_authentication: inner.client_authentication,
            send_response_type: inner.send_response_type,
            // Entra ID requires a confidential client's credential with ROPC.
            confidential_password_grant: inner.confidential_password_grant
                || (inner.authority.kind() == AuthorityKind::Entra && self.is_confidential()),
            b2c: inner.authority.is_b2c(),
        }
    }

    /// Whether a client credential (secret, certificate or assertion) is configured.
    #[must_use]
    pub fn is_confidential(&self) -> bool {
        self.inner.client_secret.is_some() || self.inner.assertion.is_some()
    }

    /// Resource-owner password credentials (ROPC): a local account's username and password.
    ///
    /// Empty `scopes` means B2C's documented default, `openid {client_id} offline_access`,
    /// which returns an access token for the app itself, an ID token and a refresh token
    /// (`openid offline_access` for authorities that are not B2C, see [`Authority::is_b2c`]).
    /// In B2C, ROPC is a public-client flow: the client secret is never sent, even if
    /// configured, unless [`ClientBuilder::confidential_password_grant`] asks for it (servers
    /// such as Entra ID require it for confidential clients).
    ///
    /// # Errors
    /// [`Error::Rejected`] with [`crate::error::B2cCode::InvalidCredentials`] for a wrong username or
    /// password (do not retry it: B2C locks accounts), other [`Error`]s as documented there.
    pub async fn acquire_token_by_password(
        &self,
        username: &str,
        password: &Password,
        scopes: &Scopes,
    ) -> Result<Token> {
        if username.trim().is_empty() {
            return Err(Error::config("the username is empty"));
        }
        if username.chars().any(char::is_control) {
            // A newline or tab is never part of a sign-in name; sent as is, it would reach the
            // server's logs and the lockout counter of an account nobody meant.
            return Err(Error::config(
                "the username contains a control character (newline, tab...): check how it was read",
            ));
        }
        if self.inner.authority.kind() == AuthorityKind::ExternalId {
            return Err(Error::config(
                "Microsoft Entra External ID does not support the resource owner password (ROPC) grant: use client credentials for daemons and services, and native authentication for apps that sign users in (docs/migrating-to-external-id.md)",
            ));
        }
        self.request(Grant::Password { username, password }, scopes).await
    }

    /// Client credentials: the application's own identity, for daemon-to-API calls.
    ///
    /// `scopes` is normally one `{App ID URI}/.default`, e.g.
    /// `https://contoso.onmicrosoft.com/api/.default`. Needs a client secret.
    ///
    /// # Errors
    /// [`Error::Config`] without a secret or scopes; [`Error::Rejected`] with
    /// [`crate::error::B2cCode::ClientSecretMismatch`] for a wrong secret, and so on.
    pub async fn acquire_token_by_client_credentials(&self, scopes: &Scopes) -> Result<Token> {
        self.request(Grant::ClientCredentials, scopes).await
    }

    /// Redeems a refresh token for new tokens (and a new refresh token: keep it, B2C rotates).
    ///
    /// Sends `scope` (empty means `openid {client_id} offline_access`), plus `resource` if
    /// [`ClientBuilder::refresh_resource`] was set. The client secret is sent if configured:
    /// for a refresh token from ROPC use a client without a secret (B2C answers AADB2C90084
    /// otherwise). The policy and client must be the ones that issued the token.
    ///
    /// # Errors
    /// [`Error::Rejected`] where [`Error::is_invalid_grant`] is true when the refresh token
    /// expired or was revoked: sign in again with the original grant.
    pub async fn acquire_token_by_refresh_token(&self, refresh_token: &RefreshToken, scopes: &Scopes) -> Result<Token> {
        self.refresh(refresh_token, scopes, false).await
    }

    /// Refresh; `public` marks a refresh token from ROPC, redeemed without the secret.
    pub(crate) async fn refresh(&self, refresh_token: &RefreshToken, scopes: &Scopes, public: bool) -> Result<Token> {
        let resource = self.inner.refresh_resource.as_deref();
        self.request(
            Grant::RefreshToken {
                refresh_token,
                resource,
                public,
            },
            scopes,
        )
        .await
    }

    /// Every grant ends here: build the form, check the lockout rails, send with retries.
    async fn request(&self, grant: Grant<'_>, scopes: &Scopes) -> Result<Token> {
        let inner = &*self.inner;
        let request = grant.form(&self.form_settings(), scopes)?;

        // Lockout rails: credentials B2C just rejected are not sent again for a while, and
        // identical requests in flight share one.
        let Grant::Password { username, password } = &grant else {
            return send_with_retries(&inner.transport, &inner.retry, &inner.authority, grant.kind(), &request).await;
        };
        let rails = &inner.rejected_credentials;
        let key = RejectedCredentials::keys(
            &inner.authority.account_scope(),
            &inner.cache_identity,
            username,
            password.expose_secret(),
        );
        loop {
            if let Some(error) = rails.check(key) {
                tracing::warn!(
                    grant = grant.kind().grant_type(),
                    code = error.b2c_code().map(tracing::field::display),
                    "this password was rejected, or its reply lost, moments ago: not sending it again (B2C locks accounts)"
                );
                return Err(error);
            }
            match rails.join(key) {
                Flight::Follower(shared) => {
                    if let Some(result) = RejectedCredentials::wait(shared).await {
                        return result;
                    }
                    // The caller sending it was cancelled: check the memory and try again.
                }
                Flight::Leader(leader) => {
                    let policy = inner
                        .retry
                        .max_retries(inner.retry.max_retries.min(MAX_PASSWORD_ATTEMPTS - 1));
                    let result =
                        send_with_retries(&inner.transport, &policy, &inner.authority, grant.kind(), &request).await;
                    if let Err(error) = &result {
                        rails.record(key, error);
                    }
                    leader.finish(&result);
                    return result;
                }
            }
        }
    }
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = &*self.inner;
        f.debug_struct("Client")
            .field("token_endpoint", &inner.authority.token_endpoint().as_str())
            .field("client_id", &inner.client_id)
            .field("client_secret", &inner.client_secret)
            .field("assertion", &inner.assertion)
            .field("client_authentication", &inner.client_authentication)
            .finish_non_exhaustive()
    }
}
