//! The three grants as form parameters, and the one function that turns a grant into the
//! form a token endpoint receives (scope defaults, client authentication, Basic auth). The
//! only place the `grant_type` strings live.
//!
//! Grants differ only in their parameters; [`crate::client::transport`] sends all of them.

use base64::Engine as _;
use reqwest::header::HeaderValue;
use url::{form_urlencoded, Url};

use super::transport::FormRequest;
use crate::credential::ClientAssertion;
use crate::error::{Error, Result};
use crate::scope::Scopes;
use crate::secret::{ClientSecret, Password, RefreshToken};

/// How a confidential client proves its identity to the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ClientAuthentication {
    /// `client_id` and `client_secret` in the form body (`client_secret_post`). B2C needs
    /// this: Basic authentication has been seen to fail with AADB2C90085.
    #[default]
    FormBody,
    /// HTTP Basic (`client_secret_basic`, RFC 6749 §2.3.1), for other OAuth2 servers: the
    /// ID and secret are form-encoded, joined with `:` and base64-encoded.
    Basic,
}

/// What the form needs from the client's configuration.
pub(crate) struct FormSettings<'a> {
    pub(crate) url: &'a Url,
    pub(crate) client_id: &'a str,
    pub(crate) client_secret: Option<&'a ClientSecret>,
    /// A certificate or federated credential instead of a secret.
    pub(crate) assertion: Option<&'a dyn ClientAssertion>,
    pub(crate) client_authentication: ClientAuthentication,
    pub(crate) send_response_type: bool,
    /// Send the secret with ROPC and its refresh tokens (`ClientBuilder::confidential_password_grant`).
    pub(crate) confidential_password_grant: bool,
    /// Whether the authority is B2C, whose ROPC default scope names the client ID.
    pub(crate) b2c: bool,
}

/// Which grant a request uses, for logs, metrics and cache keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum GrantKind {
    /// Resource-owner password credentials (ROPC): a user's name and password.
    Password,
    /// Client credentials: the application's own identity.
    ClientCredentials,
    /// A refresh token from an earlier response.
    RefreshToken,
}

impl GrantKind {
    /// The OAuth `grant_type` value.
    #[must_use]
    pub const fn grant_type(self) -> &'static str {
        match self {
            Self::Password => "password",
            Self::ClientCredentials => "client_credentials",
            Self::RefreshToken => "refresh_token",
        }
    }
}

/// Whether the client secret goes with a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ClientSecretUse {
    /// Public-client grant: never send it (B2C answers AADB2C90084 if we do).
    Never,
    /// Send it if the client has one.
    IfConfigured,
    /// The grant cannot work without it.
    Required,
}

/// The client credential a request carries: what the grant proves possession of besides its
/// own inputs (a password, a refresh token).
#[derive(Clone, Copy)]
pub(crate) enum SentCredential<'a> {
    /// None: a public-client grant, or a client without a credential where none is required.
    None,
    Secret(&'a ClientSecret),
    Assertion(&'a dyn ClientAssertion),
}

impl<'a> FormSettings<'a> {
    /// The one rule for which client credential goes with a grant whose own need is
    /// `secret_use`: the form sends exactly this, and the cache binds tokens to exactly this
    /// (`cache/credential.rs`). `None` when the grant needs a credential the client lacks.
    pub(crate) fn sent_credential(&self, secret_use: ClientSecretUse) -> Option<SentCredential<'a>> {
        let secret_use = match secret_use {
            ClientSecretUse::Never if self.confidential_password_grant => ClientSecretUse::Required,
            other => other,
        };
        match (secret_use, self.client_secret, self.assertion) {
            (ClientSecretUse::Never, ..) => Some(SentCredential::None),
            (_, Some(secret), _) => Some(SentCredential::Secret(secret)),
            (_, None, Some(assertion)) => Some(SentCredential::Assertion(assertion)),
            (ClientSecretUse::IfConfigured, None, None) => Some(SentCredential::None),
            (ClientSecretUse::Required, None, None) => None,
        }
    }
}

/// One grant with its inputs.
pub(crate) enum Grant<'a> {
    Password {
        username: &'a str,
        password: &'a Password,
    },
    ClientCredentials,
    /// `public` marks a refresh token that came from a public-client grant (ROPC), which
    /// must be redeemed without the secret.
    RefreshToken {
        refresh_token: &'a RefreshToken,
        resource: Option<&'a str>,
        public: bool,
    },
}

impl Grant<'_> {
    pub(crate) fn kind(&self) -> GrantKind {
        match self {
            Self::Password { .. } => GrantKind::Password,
            Self::ClientCredentials => GrantKind::ClientCredentials,
            Self::RefreshToken { .. } => GrantKind::RefreshToken,
        }
    }

    pub(crate) fn client_secret_use(&self) -> ClientSecretUse {
        match self {
            Self::Password { .. } | Self::RefreshToken { public: true, .. } => ClientSecretUse::Never,
            Self::ClientCredentials => ClientSecretUse::Required,
            Self::RefreshToken { public: false, .. } => ClientSecretUse::IfConfigured,
        }
    }

    /// The grant's form with scope and client authentication, ready to send (and resend).
    pub(crate) fn form<'a>(&'a self, settings: &FormSettings<'a>, scopes: &Scopes) -> Result<FormRequest<'a>> {
        let grant = self;
        let default_scopes;
        let scope_value = if !scopes.is_empty() {
            scopes.as_str()
        } else if grant.defaults_to_user_scopes() && settings.b2c {
            // B2C's documented default: an access token for the app itself.
            default_scopes = format!("openid {} offline_access", settings.client_id);
            default_scopes.as_str()
        } else if grant.defaults_to_user_scopes() {
            // Elsewhere a bare client ID is not a scope (`invalid_scope`).
            "openid offline_access"
        } else {
            return Err(Error::config(
                "client credentials need a scope such as https://contoso.onmicrosoft.com/api/.default",
            ));
        };

        let (secret, assertion) = match settings.sent_credential(grant.client_secret_use()) {
            Some(SentCredential::None) => (None, None),
            Some(SentCredential::Secret(secret)) => (Some(secret), None),
            Some(SentCredential::Assertion(assertion)) => (None, Some(assertion)),
            None => {
                return Err(Error::config(
                    "this grant needs a client secret or certificate (client credentials, or ROPC with confidential_password_grant): set ClientBuilder::client_secret (the secret's value, not its ID), client_certificate or client_assertion",
                ))
            }
        };

        let mut params: Vec<(&'static str, &str)> = Vec::with_capacity(8);
        grant.push_params(&mut params);
        params.push(("scope", scope_value));
        if grant.kind() == GrantKind::Password && settings.send_response_type {
            params.push(("response_type", "token id_token"));
        }
        params.push(("client_id", settings.client_id));
        let mut basic_auth = None;
        match (secret, settings.client_authentication) {
            (Some(secret), ClientAuthentication::Basic) => {
                basic_auth = Some(basic_authorization(settings.client_id, secret)?)
            }
            (Some(secret), ClientAuthentication::FormBody) => params.push(("client_secret", secret.expose_secret())),
            (None, _) => {}
        }
        let body = form_urlencoded::Serializer::new(String::with_capacity(256))
            .extend_pairs(params)
            .finish();

        let mut secrets: Vec<&str> = grant.secrets().into_iter().collect();
        secrets.extend(secret.map(ClientSecret::expose_secret));
        Ok(FormRequest {
            url: settings.url,
            body,
            basic_auth,
            requested_scopes: scopes.clone(),
            secrets,
            assertion,
            client_id: settings.client_id,
        })
    }

    /// Whether an empty scope list gets the ROPC default (`openid {client_id} offline_access`).
    pub(crate) fn defaults_to_user_scopes(&self) -> bool {
        !matches!(self, Self::ClientCredentials)
    }

    /// The grant's own form parameters (after `grant_type`, before scope and client auth).
    pub(crate) fn push_params<'s>(&'s self, params: &mut Vec<(&'static str, &'s str)>) {
        params.push(("grant_type", self.kind().grant_type()));
        match self {
            Self::Password { username, password } => {
                params.push(("username", username));
                params.push(("password", password.expose_secret()));
            }
            Self::ClientCredentials => {}
            Self::RefreshToken {
                refresh_token,
                resource,
                ..
            } => {
                params.push(("refresh_token", refresh_token.expose_secret()));
                if let Some(resource) = resource {
                    params.push(("resource", resource));
                }
            }
        }
    }

    /// The secret values this grant sends, to scrub from anything a server echoes back.
    pub(crate) fn secrets(&self) -> Option<&str> {
        match self {
            Self::Password { password, .. } => Some(password.expose_secret()),
            Self::ClientCredentials => None,
            Self::RefreshToken { refresh_token, .. } => Some(refresh_token.expose_secret()),
        }
    }
}

/// RFC 6749 §2.3.1: form-encode the ID and secret, join with `:`, base64.
fn basic_authorization(client_id: &str, secret: &ClientSecret) -> Result<HeaderValue> {
    let encode = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let credentials = format!("{}:{}", encode(client_id), encode(secret.expose_secret()));
    let value = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(credentials)
    );
    let mut header =
        HeaderValue::from_str(&value).map_err(|_| Error::config("client credentials do not form a valid header"))?;
    header.set_sensitive(true);
    Ok(header)
}
