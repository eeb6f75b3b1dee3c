//! A leaf: signing a compact JWS with RS256 (`base64url(header).base64url(claims).base64url(signature)`),
//! the one place client assertions and the fake tenant's tokens are made.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeyPair;
use aws_lc_rs::signature::RSA_PKCS1_SHA256;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::Value;

/// `header` and `claims` signed with `key`; `Err` only if aws-lc cannot sign (out of memory).
pub(crate) fn sign_rs256(
    key: &KeyPair,
    rng: &SystemRandom,
    header: &Value,
    claims: &Value,
) -> Result<String, aws_lc_rs::error::Unspecified> {
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let mut signature = vec![0; key.public_modulus_len()];
    key.sign(&RSA_PKCS1_SHA256, rng, signing_input.as_bytes(), &mut signature)?;
    Ok(format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature)))
}
