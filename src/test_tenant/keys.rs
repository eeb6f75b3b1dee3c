//! The fake tenant's signing key: RS256 JWTs and the JWKS that verifies them.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::{KeyPair as _, RSA_PKCS1_SHA256};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{json, Value};

pub(super) struct SigningKey {
    key_pair: KeyPair,
    kid: String,
    rng: SystemRandom,
}

impl SigningKey {
    pub(super) fn generate() -> std::io::Result<Self> {
        let key_pair = KeyPair::generate(KeySize::Rsa2048)
            .map_err(|_| std::io::Error::other("could not generate the fake tenant's RSA key"))?;
        let kid = uuid::Uuid::new_v4().simple().to_string();
        Ok(Self {
            key_pair,
            kid,
            rng: SystemRandom::new(),
        })
    }

    /// A compact JWS: `base64url(header).base64url(claims).base64url(signature)`.
    pub(super) fn sign(&self, claims: &Value) -> String {
        let header = json!({ "typ": "JWT", "alg": "RS256", "kid": self.kid });
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let mut signature = vec![0; self.key_pair.public_modulus_len()];
        // Signing with a key we generated over bytes we built cannot fail short of memory
        // exhaustion; an unsigned token would fail verification loudly in any test.
        if self
            .key_pair
            .sign(&RSA_PKCS1_SHA256, &self.rng, signing_input.as_bytes(), &mut signature)
            .is_err()
        {
            signature.clear();
        }
        format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature))
    }

    pub(super) fn jwks(&self) -> Value {
        let public = self.key_pair.public_key();
        json!({
            "keys": [{
                "kid": self.kid,
                "use": "sig",
                "kty": "RSA",
                "alg": "RS256",
                "e": URL_SAFE_NO_PAD.encode(public.exponent().big_endian_without_leading_zero()),
                "n": URL_SAFE_NO_PAD.encode(public.modulus().big_endian_without_leading_zero()),
            }]
        })
    }
}
