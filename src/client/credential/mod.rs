//! How a confidential client proves who it is, beyond a secret: a signed client assertion
//! (RFC 7523 `private_key_jwt`), minted **per attempt** so that a retry never reuses a
//! `jti`. [`ClientCertificate`] signs one from a certificate and key; [`FederatedTokenFile`]
//! reads one a platform writes (Kubernetes workload identity); any other source implements
//! [`ClientAssertion`].

mod certificate;
mod federated;

use std::fmt;
use std::future::Future;
use std::pin::Pin;

use secrecy::SecretString;
use url::Url;

pub use self::certificate::ClientCertificate;
pub use self::federated::FederatedTokenFile;
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
/// request attempt.
///
/// ```
/// use b2c_token::{AssertionFuture, AssertionRequest, ClientAssertion};
///
/// /// Assertions from a secrets manager that signs them.
/// #[derive(Debug)]
/// struct Vault;
///
/// impl ClientAssertion for Vault {
///     fn id(&self) -> &str {
///         "vault:orders-daemon"
///     }
///     fn assertion<'a>(&'a self, request: AssertionRequest<'a>) -> AssertionFuture<'a> {
///         let audience = request.token_endpoint().to_string();
///         Box::pin(async move { Ok(format!("signed-for-{audience}").into()) })
///     }
/// }
/// ```
pub trait ClientAssertion: Send + Sync + fmt::Debug {
    /// A stable identifier of the credential that is not itself secret (a certificate
    /// thumbprint, a file path): cached tokens are bound to it.
    fn id(&self) -> &str;

    /// A fresh assertion for one attempt. Never logged; scrubbed from anything a server echoes.
    fn assertion<'a>(&'a self, request: AssertionRequest<'a>) -> AssertionFuture<'a>;
}
