//! The fake tenant's signing keys: RS256 JWTs and the JWKS that verifies them. A ring of
//! keys, newest last, so that rotation can be rehearsed: tokens are signed with the newest,
//! and the JWKS lists every key still in the ring, as Azure publishes old and new during a
//! rollover.

use std::sync::{Arc, RwLock};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::KeyPair as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{json, Value};

/// How many keys the JWKS keeps after rotations (Azure lists a handful).
const RING_SIZE: usize = 3;

pub(super) struct SigningKey {
    key_pair: KeyPair,
    kid: String,
}

impl SigningKey {
    fn generate() -> std::io::Result<Self> {
        let key_pair = KeyPair::generate(KeySize::Rsa2048)
            .map_err(|_| std::io::Error::other("could not generate the fake tenant's RSA key"))?;
        Ok(Self {
            key_pair,
            kid: uuid::Uuid::new_v4().simple().to_string(),
        })
    }

    fn jwk(&self) -> Value {
        let public = self.key_pair.public_key();
        json!({
            "kid": self.kid,
            "use": "sig",
            "kty": "RSA",
            "alg": "RS256",
            "e": URL_SAFE_NO_PAD.encode(public.exponent().big_endian_without_leading_zero()),
            "n": URL_SAFE_NO_PAD.encode(public.modulus().big_endian_without_leading_zero()),
        })
    }
}

pub(super) struct KeyRing {
    keys: RwLock<Vec<Arc<SigningKey>>>,
    rng: SystemRandom,
}

impl KeyRing {
    pub(super) fn generate() -> std::io::Result<Self> {
        Ok(Self {
            keys: RwLock::new(vec![Arc::new(SigningKey::generate()?)]),
            rng: SystemRandom::new(),
        })
    }

    fn newest(&self) -> Arc<SigningKey> {
        let keys = self.keys.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        // The ring is created with one key and rotation only ever adds before it trims.
        Arc::clone(&keys[keys.len() - 1])
    }

    /// Adds a new signing key (the one used from now on) and drops the oldest beyond the
    /// ring's size. Returns the new key's `kid`.
    pub(super) fn rotate(&self) -> std::io::Result<String> {
        let key = Arc::new(SigningKey::generate()?);
        let kid = key.kid.clone();
        let mut keys = self.keys.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        keys.push(key);
        let excess = keys.len().saturating_sub(RING_SIZE);
        keys.drain(..excess);
        Ok(kid)
    }

    /// The newest key's `kid`.
    pub(super) fn current_kid(&self) -> String {
        self.newest().kid.clone()
    }

    /// A compact JWS over `claims` with the newest key: `{"typ":"JWT","alg":"RS256","kid":…}`.
    pub(super) fn sign(&self, claims: &Value) -> String {
        let key = self.newest();
        let header = json!({ "typ": "JWT", "alg": "RS256", "kid": key.kid });
        self.sign_raw(&header, claims)
    }

    /// A compact JWS with exactly this header, RS256-signed with the newest key whatever the
    /// header says (tests forge headers: other `alg`, no `kid`, a foreign `kid`).
    pub(super) fn sign_raw(&self, header: &Value, claims: &Value) -> String {
        let key = self.newest();
        // Signing with a key we generated over bytes we built cannot fail short of memory
        // exhaustion; an unsigned token would fail verification loudly in any test.
        crate::jws::sign_rs256(&key.key_pair, &self.rng, header, claims).unwrap_or_else(|_| {
            format!(
                "{}.{}.",
                URL_SAFE_NO_PAD.encode(header.to_string()),
                URL_SAFE_NO_PAD.encode(claims.to_string())
            )
        })
    }

    /// Every key in the ring, oldest first.
    pub(super) fn jwks(&self) -> Value {
        let keys = self.keys.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        json!({ "keys": keys.iter().map(|k| k.jwk()).collect::<Vec<_>>() })
    }

    /// Whether any key in the ring signed `message` (RS256).
    pub(super) fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        use aws_lc_rs::signature::{UnparsedPublicKey, RSA_PKCS1_2048_8192_SHA256};
        let keys = self.keys.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        keys.iter().any(|key| {
            UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, key.key_pair.public_key().as_ref())
                .verify(message, signature)
                .is_ok()
        })
    }

    /// The newest key's public key as DER (PKCS#1 `RSAPublicKey`), for forging `alg`
    /// confusion tokens in tests.
    pub(super) fn public_key_der(&self) -> Vec<u8> {
        self.newest().key_pair.public_key().as_ref().to_vec()
    }
}
