//! [`CredentialIdentity`]: who a client credential is, as cached tokens are bound to it.

use std::fmt;
use std::future::Future;
use std::pin::Pin;

use aws_lc_rs::digest::{Context, SHA256};
use zeroize::Zeroize;

use crate::error::Result;

/// Who a client credential is, for binding cached and stored tokens to it: a SHA-256 digest of
/// the secret the credential proves possession of (a private key), or of the identity its
/// assertion asserts (issuer, subject and audience of a federated token).
///
/// Never build it from a public value: a certificate's thumbprint, a file's path or a key's
/// name can be presented by anyone, and a token bound to one would be served to them. Only the
/// digest is kept; it is never shown (`Debug` prints `[REDACTED]`) and is hashed again, under
/// the store's keyed namespace, before it is compared or stored.
///
/// ```
/// use b2c_token::credential::CredentialIdentity;
///
/// let private_key_der: &[u8] = b"...the key's bytes...";
/// let identity = CredentialIdentity::from_secret(private_key_der);
/// assert_eq!(identity, CredentialIdentity::from_secret(private_key_der));
/// assert_ne!(identity, CredentialIdentity::from_secret(b"another key"));
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct CredentialIdentity {
    digest: [u8; 32],
}

impl CredentialIdentity {
    /// The identity of a credential whose secret (or asserted identity) is `material`.
    #[must_use]
    pub fn from_secret(material: &[u8]) -> Self {
        Self::from_parts(&[material])
    }

    /// The identity of several values at once, each length-prefixed so that no two lists of
    /// parts give the same bytes (`["ab", "c"]` is not `["a", "bc"]`).
    #[must_use]
    pub fn from_parts(parts: &[&[u8]]) -> Self {
        let mut context = Context::new(&SHA256);
        context.update(b"b2c-token credential identity v1\0");
        for part in parts {
            context.update(&(part.len() as u64).to_be_bytes());
            context.update(part);
        }
        let mut digest = [0u8; 32];
        digest.copy_from_slice(context.finish().as_ref());
        Self { digest }
    }

    pub(crate) fn as_bytes(&self) -> &[u8; 32] {
        &self.digest
    }
}

impl Drop for CredentialIdentity {
    fn drop(&mut self) {
        self.digest.zeroize();
    }
}

impl fmt::Debug for CredentialIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CredentialIdentity([REDACTED])")
    }
}

/// The future [`crate::credential::ClientAssertion::identity`] returns.
pub type IdentityFuture<'a> = Pin<Box<dyn Future<Output = Result<CredentialIdentity>> + Send + 'a>>;
