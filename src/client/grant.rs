//! The three grants as form parameters. The only place the `grant_type` strings live.
//!
//! Grants differ only in their parameters; [`crate::client::transport`] sends all of them.

use crate::secret::{Password, RefreshToken};

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

    /// Whether an empty scope list gets the ROPC default (`openid {client_id} offline_access`).
    pub(crate) fn defaults_scopes_to_ropc(&self) -> bool {
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
