//! [`ClientCertificate`]: client assertions signed with a certificate's private key, as
//! Microsoft documents them (`x5t#S256` header; `aud` = token endpoint, `iss` = `sub` =
//! client ID, a fresh `jti`, `nbf`, `exp`).

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::digest::{digest, SHA256};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeyPair;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use secrecy::SecretString;
use serde_json::json;

use super::{AssertionFuture, AssertionRequest, ClientAssertion, CredentialIdentity, IdentityFuture};
use crate::error::{Error, Result};

/// How long a minted assertion is valid: Entra asks for a short lifetime.
const LIFETIME_SECS: u64 = 600;

/// A certificate credential: signs a client assertion (RS256) for every token request attempt.
///
/// Supported by Entra ID and Entra External ID; **not by Azure AD B2C** (a client built with
/// it on a B2C authority is refused at `build()`).
///
/// ```no_run
/// # fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use b2c_token::{Authority, Client, credential::ClientCertificate};
///
/// let certificate = ClientCertificate::from_pem(
///     &std::fs::read("/etc/daemon/cert.pem")?,
///     &std::fs::read("/etc/daemon/key.pem")?,
/// )?;
/// let client = Client::builder(Authority::entra("contoso.onmicrosoft.com")?, "<client id>")
///     .client_certificate(certificate)
///     .build()?;
/// # let _ = client; Ok(()) }
/// ```
pub struct ClientCertificate {
    key_pair: KeyPair,
    /// `base64url(SHA-256(certificate DER))`: the `x5t#S256` header. Public: not an identity.
    thumbprint: String,
    /// A digest of the private key: what cached tokens are bound to.
    identity: CredentialIdentity,
    rng: SystemRandom,
}

impl ClientCertificate {
    /// From a PEM certificate (the first `CERTIFICATE` block is used; a chain may follow) and
    /// a PEM RSA private key (`PRIVATE KEY` PKCS#8 or `RSA PRIVATE KEY` PKCS#1). Both may be
    /// the same file.
    ///
    /// # Errors
    /// [`Error::Config`] when there is no certificate, no RSA key, they do not parse, or the
    /// key is not the certificate's (its public key differs from the certificate's): Entra
    /// would refuse every assertion it signs.
    pub fn from_pem(certificate_pem: &[u8], private_key_pem: &[u8]) -> Result<Self> {
        let certificate = CertificateDer::pem_slice_iter(certificate_pem)
            .next()
            .and_then(std::result::Result::ok)
            .ok_or_else(|| Error::config("no PEM certificate (-----BEGIN CERTIFICATE-----) in the certificate file"))?;
        let key = PrivateKeyDer::from_pem_slice(private_key_pem).map_err(|_| {
            Error::config("no PEM private key (-----BEGIN PRIVATE KEY----- or RSA PRIVATE KEY) in the key file")
        })?;
        let key_der = match &key {
            PrivateKeyDer::Pkcs8(der) => der.secret_pkcs8_der(),
            PrivateKeyDer::Pkcs1(der) => der.secret_pkcs1_der(),
            _ => &[],
        };
        let key_pair = match &key {
            PrivateKeyDer::Pkcs8(der) => KeyPair::from_pkcs8(der.secret_pkcs8_der()),
            PrivateKeyDer::Pkcs1(der) => KeyPair::from_der(der.secret_pkcs1_der()),
            _ => {
                return Err(Error::config(
                    "the private key is not RSA: Entra accepts RS256 client assertions, so use an RSA key (2048 bits or more)",
                ))
            }
        }
        .map_err(|e| Error::config(format!("the private key is not a usable RSA key: {e}")))?;
        if !key_matches_certificate(&key_pair, &certificate)? {
            return Err(Error::config(
                "the private key does not match the certificate (its public key is not the certificate's): use the key the certificate was issued for",
            ));
        }
        let thumbprint = URL_SAFE_NO_PAD.encode(digest(&SHA256, certificate.as_ref()));
        Ok(Self {
            identity: CredentialIdentity::from_parts(&[b"rsa private key", key_der]),
            key_pair,
            thumbprint,
            rng: SystemRandom::new(),
        })
    }

    /// The certificate's SHA-256 thumbprint, base64url (the `x5t#S256` header value).
    #[must_use]
    pub fn thumbprint(&self) -> &str {
        &self.thumbprint
    }

    /// Mints one assertion; every call gets a new `jti`.
    fn mint(&self, request: AssertionRequest<'_>) -> Result<String> {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let header = json!({ "alg": "RS256", "typ": "JWT", "x5t#S256": self.thumbprint });
        let claims = json!({
            "aud": request.token_endpoint.as_str(),
            "iss": request.client_id,
            "sub": request.client_id,
            "jti": uuid::Uuid::new_v4().to_string(),
            "nbf": now,
            "iat": now,
            "exp": now + LIFETIME_SECS,
        });
        crate::jws::sign_rs256(&self.key_pair, &self.rng, &header, &claims)
            .map_err(|_| Error::config("signing the client assertion failed"))
    }
}

/// Whether the certificate's public key is the key pair's: its SubjectPublicKeyInfo ends with
/// the BIT STRING holding the RSA public key, whose DER `public_key()` gives.
fn key_matches_certificate(key_pair: &KeyPair, certificate: &CertificateDer<'_>) -> Result<bool> {
    use aws_lc_rs::signature::KeyPair as _;
    let parsed = webpki::EndEntityCert::try_from(certificate)
        .map_err(|e| Error::config(format!("the certificate does not parse as X.509: {e}")))?;
    let spki = parsed.subject_public_key_info();
    Ok(spki.as_ref().ends_with(key_pair.public_key().as_ref()))
}

impl ClientAssertion for ClientCertificate {
    fn identity(&self) -> IdentityFuture<'_> {
        let identity = self.identity.clone();
        Box::pin(async move { Ok(identity) })
    }

    fn assertion<'a>(&'a self, request: AssertionRequest<'a>) -> AssertionFuture<'a> {
        let minted = self.mint(request).map(SecretString::from);
        Box::pin(async move { minted })
    }
}

impl fmt::Debug for ClientCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCertificate")
            .field("thumbprint", &self.thumbprint)
            .finish_non_exhaustive()
    }
}
