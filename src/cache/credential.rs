//! Whose token is this: the one place that derives a credential's identity, from the secret
//! material each grant proves possession of. Every token the cache serves, stores or adopts
//! is bound to it, so a credential kind added later cannot be bound by something public.
//!
//! | grant, client credential | what the identity covers |
//! |---|---|
//! | password (ROPC) | the password; and the client credential when the grant sends it (`confidential_password_grant`, Entra) |
//! | client credentials, secret | the client secret |
//! | any grant, certificate | in-process: the client that holds it; in a store: the private key (its digest) |
//! | any grant, federated token file | in-process: the client that holds it; in a store: the file's `iss`, `sub`, `aud`, read when asked |
//! | any grant, other [`crate::credential::ClientAssertion`] | in-process: the client that holds it; in a store: its [`crate::credential::ClientAssertion::identity`] |
//!
//! The endpoint and the client ID are the entry's key (`CacheKey`), the username too: the
//! identity says who may be served the entry's token.

use crate::client::grant::{GrantKind, SentCredential};
use crate::client::Client;
use crate::error::Result;
use crate::secret::Password;

use super::store::StoreNamespace;

/// The original grant of a source, used again when no refresh token works.
pub(super) enum SourceGrant {
    ClientCredentials,
    Password { username: String, password: Password },
}

impl SourceGrant {
    fn kind(&self) -> GrantKind {
        match self {
            Self::ClientCredentials => GrantKind::ClientCredentials,
            Self::Password { .. } => GrantKind::Password,
        }
    }
}

/// What a source proves itself with: its client (and so its client credential), its grant,
/// and their keyed fingerprint. Shared by the source and, once it earned a token, the entry.
pub(super) struct Credential {
    pub(super) client: Client,
    pub(super) grant: SourceGrant,
    /// The identity within this process, compared on every hit.
    pub(super) fingerprint: u64,
}

/// How an assertion credential counts in an identity.
enum Assertion<'a> {
    /// Within one process: the client holding the credential object (a random id per built
    /// client), so no other client's token is ever served to it.
    ThisClient,
    /// Across processes: what the credential proves now ([`crate::credential::ClientAssertion::identity`]).
    Proven(&'a crate::credential::CredentialIdentity),
}

impl Credential {
    pub(super) fn new(namespace: &StoreNamespace, client: &Client, grant: SourceGrant) -> Self {
        let fingerprint = identity(namespace, client, &grant, Assertion::ThisClient);
        Self {
            client: client.clone(),
            grant,
            fingerprint,
        }
    }

    /// The identity this credential proves right now, which tokens shared with other
    /// processes are stored under and adopted by: the in-process fingerprint for passwords and
    /// secrets; for an assertion credential, its identity asked at this moment.
    ///
    /// # Errors
    /// When the assertion credential cannot say who it is (no valid federated token).
    pub(super) async fn proven(&self, namespace: &StoreNamespace) -> Result<u64> {
        match self.client.sent_credential(self.grant.kind()) {
            Some(SentCredential::Assertion(assertion)) => {
                let proven = assertion.identity().await?;
                Ok(identity(
                    namespace,
                    &self.client,
                    &self.grant,
                    Assertion::Proven(&proven),
                ))
            }
            _ => Ok(self.fingerprint),
        }
    }
}

/// The keyed hash of everything `grant` proves possession of with `client`: the grant's own
/// secret (a password) and the client credential the grant sends, by the same rule the form
/// follows (`FormSettings::sent_credential`). Each part is tagged and length-prefixed.
fn identity(namespace: &StoreNamespace, client: &Client, grant: &SourceGrant, assertion: Assertion<'_>) -> u64 {
    let mut parts: Vec<&[u8]> = vec![grant.kind().grant_type().as_bytes()];
    if let SourceGrant::Password { password, .. } = grant {
        parts.extend([b"password".as_slice(), password.expose_secret().as_bytes()]);
    }
    let instance = client.instance().to_le_bytes();
    match client.sent_credential(grant.kind()) {
        Some(SentCredential::None) => parts.push(b"no client credential"),
        // The grant cannot be sent at all: nothing it could earn is served to it.
        None => parts.extend([b"missing client credential".as_slice(), &instance]),
        Some(SentCredential::Secret(secret)) => {
            parts.extend([b"client secret".as_slice(), secret.expose_secret().as_bytes()])
        }
        Some(SentCredential::Assertion(_)) => match assertion {
            Assertion::ThisClient => parts.extend([b"assertion of client".as_slice(), &instance]),
            Assertion::Proven(proven) => parts.extend([b"assertion".as_slice(), proven.as_bytes()]),
        },
    }
    namespace.fingerprint(&parts)
}

#[cfg(test)]
mod tests {
    //! The rule itself, for every credential kind and every secret it sends: changing any of
    //! them changes the identity; what the same credential proves from another client (another
    //! replica) does not.
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;

    use super::*;
    use crate::authority::Authority;
    use crate::credential::{ClientCertificate, FederatedTokenFile};

    fn namespace() -> StoreNamespace {
        StoreNamespace::from_secret(b"a fleet's shared secret, 32 bytes")
    }

    fn b2c() -> Authority {
        Authority::b2c("contoso", "B2C_1_ropc").unwrap()
    }

    fn entra() -> Authority {
        Authority::entra("contoso.onmicrosoft.com").unwrap()
    }

    fn with_secret(authority: Authority, secret: &str) -> Client {
        Client::builder(authority, "client")
            .client_secret(secret)
            .build()
            .unwrap()
    }

    fn password(value: &str) -> SourceGrant {
        SourceGrant::Password {
            username: "alice@contoso.com".into(),
            password: Password::new(value),
        }
    }

    fn fingerprint(client: &Client, grant: SourceGrant) -> u64 {
        Credential::new(&namespace(), client, grant).fingerprint
    }

    async fn proven(client: &Client, grant: SourceGrant) -> Result<u64> {
        Credential::new(&namespace(), client, grant).proven(&namespace()).await
    }

    #[tokio::test]
    async fn client_secrets_and_passwords() {
        let (a, b) = (with_secret(b2c(), "secret-a"), with_secret(b2c(), "secret-b"));
        // Client credentials: the secret, whichever client object carries it.
        assert_ne!(
            fingerprint(&a, SourceGrant::ClientCredentials),
            fingerprint(&b, SourceGrant::ClientCredentials)
        );
        let a2 = with_secret(b2c(), "secret-a");
        assert_eq!(
            fingerprint(&a, SourceGrant::ClientCredentials),
            fingerprint(&a2, SourceGrant::ClientCredentials)
        );
        assert_eq!(
            proven(&a, SourceGrant::ClientCredentials).await.unwrap(),
            fingerprint(&a2, SourceGrant::ClientCredentials)
        );
        // B2C's ROPC sends no client secret: the password alone.
        assert_ne!(fingerprint(&a, password("one")), fingerprint(&a, password("two")));
        assert_eq!(fingerprint(&a, password("one")), fingerprint(&b, password("one")));
        // A confidential password grant sends the secret: both count.
        let confidential = |secret: &str| {
            Client::builder(b2c(), "client")
                .client_secret(secret)
                .confidential_password_grant(true)
                .build()
                .unwrap()
        };
        let (ca, cb) = (confidential("secret-a"), confidential("secret-b"));
        assert_ne!(fingerprint(&ca, password("one")), fingerprint(&cb, password("one")));
        assert_ne!(fingerprint(&ca, password("one")), fingerprint(&ca, password("two")));
        // Entra always sends a confidential client's credential with ROPC.
        let (ea, eb) = (with_secret(entra(), "secret-a"), with_secret(entra(), "secret-b"));
        assert_ne!(fingerprint(&ea, password("one")), fingerprint(&eb, password("one")));
        // The grant itself is part of it: a password never stands in for a client secret.
        let same = with_secret(b2c(), "one");
        assert_ne!(
            fingerprint(&same, password("one")),
            fingerprint(&same, SourceGrant::ClientCredentials)
        );
    }

    fn rsa_certificate() -> (String, String) {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).unwrap();
        let cert = rcgen::CertificateParams::new(vec!["daemon".into()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        (cert.pem(), key.serialize_pem())
    }

    fn with_certificate(cert: &str, key: &str) -> Client {
        Client::builder(entra(), "client")
            .client_certificate(ClientCertificate::from_pem(cert.as_bytes(), key.as_bytes()).unwrap())
            .build()
            .unwrap()
    }

    #[tokio::test]
    async fn certificates_are_their_private_keys() {
        let ((cert, key), (other_cert, other_key)) = (rsa_certificate(), rsa_certificate());
        let (a, a2, b) = (
            with_certificate(&cert, &key),
            with_certificate(&cert, &key),
            with_certificate(&other_cert, &other_key),
        );
        let cc = || SourceGrant::ClientCredentials;
        // Across processes: the key, whichever client holds it.
        assert_eq!(proven(&a, cc()).await.unwrap(), proven(&a2, cc()).await.unwrap());
        assert_ne!(proven(&a, cc()).await.unwrap(), proven(&b, cc()).await.unwrap());
        // Within one: only the client (and its clones) that earned the token.
        assert_ne!(fingerprint(&a, cc()), fingerprint(&a2, cc()));
        assert_eq!(fingerprint(&a, cc()), fingerprint(&a.clone(), cc()));
        // A proven identity is never an in-process one, nor a secret's.
        assert_ne!(proven(&a, cc()).await.unwrap(), fingerprint(&a, cc()));
    }

    fn jwt(claims: &serde_json::Value) -> String {
        format!(
            "{}.{}.c2ln",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"RS256","kid":"k"}"#),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        )
    }

    #[tokio::test]
    async fn federated_credentials_are_what_their_assertions_assert() {
        let dir = std::env::temp_dir().join(format!("b2c-token-identity-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("token");
        let client = Client::builder(entra(), "client")
            .client_assertion(FederatedTokenFile::new(&file))
            .build()
            .unwrap();
        let claims = |iss: &str, sub: &str, aud: &str, jti: &str| serde_json::json!({ "iss": iss, "sub": sub, "aud": [aud], "jti": jti, "exp": 4_000_000_000u64 });
        let identity_of = |text: String| {
            std::fs::write(&file, text).unwrap();
            let client = client.clone();
            async move { proven(&client, SourceGrant::ClientCredentials).await }
        };
        let base = identity_of(jwt(&claims("iss", "sub", "aud", "1"))).await.unwrap();
        // Another token of the same workload (another pod, a rotation): the same identity.
        assert_eq!(identity_of(jwt(&claims("iss", "sub", "aud", "2"))).await.unwrap(), base);
        // Each asserted part counts.
        for (iss, sub, aud) in [
            ("other", "sub", "aud"),
            ("iss", "other", "aud"),
            ("iss", "sub", "other"),
        ] {
            assert_ne!(identity_of(jwt(&claims(iss, sub, aud, "1"))).await.unwrap(), base);
        }
        // No valid assertion: no identity at all.
        for text in [
            "not a token".to_owned(),
            jwt(&serde_json::json!({ "iss": "iss", "sub": "sub" })),
            jwt(&serde_json::json!({ "iss": "iss", "sub": "sub", "aud": "aud", "exp": 1 })),
        ] {
            assert!(identity_of(text).await.is_err());
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[derive(Debug)]
    struct Custom(&'static [u8]);

    impl crate::credential::ClientAssertion for Custom {
        fn identity(&self) -> crate::credential::IdentityFuture<'_> {
            Box::pin(async move { Ok(crate::credential::CredentialIdentity::from_secret(self.0)) })
        }
        fn assertion<'a>(
            &'a self,
            _: crate::credential::AssertionRequest<'a>,
        ) -> crate::credential::AssertionFuture<'a> {
            Box::pin(async { Ok("a.b.c".into()) })
        }
    }

    #[tokio::test]
    async fn other_assertions_are_what_they_say_they_are() {
        let client = |secret: &'static [u8]| {
            Client::builder(entra(), "client")
                .client_assertion(Custom(secret))
                .build()
                .unwrap()
        };
        let cc = || SourceGrant::ClientCredentials;
        assert_eq!(
            proven(&client(b"k1"), cc()).await.unwrap(),
            proven(&client(b"k1"), cc()).await.unwrap()
        );
        assert_ne!(
            proven(&client(b"k1"), cc()).await.unwrap(),
            proven(&client(b"k2"), cc()).await.unwrap()
        );
    }
}
