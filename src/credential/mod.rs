//! How a confidential client proves who it is, beyond a secret: a signed client assertion
//! (RFC 7523 `private_key_jwt`), minted **per attempt** so that a retry never reuses a
//! `jti`. [`ClientCertificate`] signs one from a certificate and key; [`FederatedTokenFile`]
//! reads one a platform writes (Kubernetes workload identity); any other source implements
//! [`ClientAssertion`].

mod certificate;
mod federated;
mod identity;

use std::fmt;
use std::future::Future;
use std::pin::Pin;

use secrecy::SecretString;
use url::Url;

pub use self::certificate::ClientCertificate;
pub use self::federated::FederatedTokenFile;
pub use self::identity::{CredentialIdentity, IdentityFuture};
use crate::error::Result;

/// The `client_assertion_type` of a JWT client assertion (RFC 7523 §2.2).
pub(crate) const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// What an assertion is for: the client and the token endpoint (its `aud`).
#[derive(Debug, Clone, Copy)]
pub struct AssertionRequest<'a> {
    pub(crate) client_id: &'a str,
    pub(crate) token_endpoint: &'a Url,
}

impl AssertionRequest<'_> {
    /// The client ID: the assertion's `iss` and `sub`.
    #[must_use]
    pub fn client_id(&self) -> &str {
        self.client_id
    }

    /// The token endpoint: the assertion's `aud`.
    #[must_use]
    pub fn token_endpoint(&self) -> &Url {
        self.token_endpoint
    }
}

/// The future [`ClientAssertion::assertion`] returns.
pub type AssertionFuture<'a> = Pin<Box<dyn Future<Output = Result<SecretString>> + Send + 'a>>;

/// A source of client assertions (`client_assertion_type=…jwt-bearer`), asked once per token
/// request attempt, and who it is ([`ClientAssertion::identity`]), which cached tokens are
/// bound to.
///
/// ```
/// use b2c_token::{credential::AssertionFuture, credential::AssertionRequest, credential::ClientAssertion, credential::CredentialIdentity, credential::IdentityFuture};
///
/// /// Assertions from a secrets manager that signs them with a key only it holds.
/// #[derive(Debug)]
/// struct Vault {
///     /// A secret the vault gave this daemon for the key it signs with (never a key's name).
///     key_secret: Vec<u8>,
/// }
///
/// impl ClientAssertion for Vault {
///     fn identity(&self) -> IdentityFuture<'_> {
///         let identity = CredentialIdentity::from_secret(&self.key_secret);
///         Box::pin(async move { Ok(identity) })
///     }
///     fn assertion<'a>(&'a self, request: AssertionRequest<'a>) -> AssertionFuture<'a> {
///         let audience = request.token_endpoint().to_string();
///         Box::pin(async move { Ok(format!("signed-for-{audience}").into()) })
///     }
/// }
/// ```
pub trait ClientAssertion: Send + Sync + fmt::Debug {
    /// Who this credential is: derived from the secret it proves possession of (a private
    /// key) or from the identity its assertion asserts (a federated token's issuer, subject
    /// and audience), never from a public value such as a thumbprint or a path.
    ///
    /// Within one process a token is served only to the [`crate::Client`] (and its clones)
    /// that earned it. Across processes sharing a [`crate::store::TokenStore`], a stored token is
    /// adopted only when this identity, asked at that moment, equals the identity of the
    /// credential that earned it, and a token is stored under the identity asked when it is
    /// saved. An error (no valid assertion) adopts and stores nothing.
    fn identity(&self) -> IdentityFuture<'_>;

    /// A fresh assertion for one attempt. Never logged; scrubbed from anything a server echoes.
    fn assertion<'a>(&'a self, request: AssertionRequest<'a>) -> AssertionFuture<'a>;
}
