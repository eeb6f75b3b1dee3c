//! A compact JWS taken apart, cheaply and strictly: size first, then shape, then the small
//! header, and only then the claims and the signature. Nothing here trusts anything; the
//! signature is checked by the caller with a key chosen by the tenant's JWKS, never by the
//! token (`jwk`, `jku`, `x5u`, `x5c` in the header are ignored, `crit` is refused, whatever
//! its value). Header and claims are read strictly (`crate::json`): a key given twice, at any
//! depth, is refused.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{Map, Value};

use super::InvalidToken;

/// A JWS header is a few dozen bytes; more is not a B2C token.
const MAX_HEADER_BYTES: usize = 1024;

/// A token taken apart, signature not yet checked.
pub(crate) struct Jws<'a> {
    /// `base64url(header).base64url(claims)`: what the signature covers.
    pub(crate) signing_input: &'a [u8],
    pub(crate) kid: String,
    pub(crate) claims: Map<String, Value>,
    pub(crate) signature: Vec<u8>,
}

/// Splits and decodes `token`, refusing anything but an RS256 JWS with a `kid`.
pub(crate) fn parse(token: &str, max_bytes: usize) -> Result<Jws<'_>, InvalidToken> {
    if token.len() > max_bytes {
        return Err(InvalidToken::TooLarge { limit: max_bytes });
    }
    let mut parts = token.split('.');
    let (Some(header), Some(claims), Some(signature), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(InvalidToken::Malformed("expected three dot-separated parts"));
    };
    if header.len() > MAX_HEADER_BYTES * 4 / 3 + 4 {
        return Err(InvalidToken::Malformed("header is too long"));
    }
    let header = URL_SAFE_NO_PAD
        .decode(header)
        .map_err(|_| InvalidToken::Malformed("header is not base64url"))?;
    let header = strict_object(&header, "header")?;
    let alg = match header.get("alg") {
        Some(Value::String(alg)) => alg,
        Some(_) => return Err(InvalidToken::Malformed("header's `alg` is not a string")),
        None => return Err(InvalidToken::Malformed("header has no `alg`")),
    };
    // Exact and case-sensitive (RFC 7515 §4.1.1): `none`, `HS256`, `rs256` are all refused
    // before any key is looked at, so a public key can never become an HMAC secret.
    if alg != "RS256" {
        return Err(InvalidToken::Algorithm(alg.clone()));
    }
    // Present at all, even `null` or `[]`: extensions this validator does not understand.
    if header.contains_key("crit") {
        return Err(InvalidToken::Malformed(
            "header has `crit` extensions this validator does not understand",
        ));
    }
    let kid = match header.get("kid") {
        Some(Value::String(kid)) if !kid.is_empty() && kid.len() <= 256 => kid.clone(),
        _ => return Err(InvalidToken::MissingKeyId),
    };
    let signature = URL_SAFE_NO_PAD
        .decode(signature)
        .map_err(|_| InvalidToken::Malformed("signature is not base64url"))?;
    if signature.is_empty() {
        return Err(InvalidToken::BadSignature);
    }
    let claims = decode_claims(claims)?;
    let signing_input_len = token.len() - signature_len(token);
    Ok(Jws {
        signing_input: &token.as_bytes()[..signing_input_len],
        kid,
        claims,
        signature,
    })
}

/// Length of `.signature` at the end of a token known to have three parts.
fn signature_len(token: &str) -> usize {
    token.rfind('.').map_or(0, |dot| token.len() - dot)
}

fn decode_claims(part: &str) -> Result<Map<String, Value>, InvalidToken> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| InvalidToken::Malformed("claims are not base64url"))?;
    strict_object(&bytes, "claims")
}

/// A header or claims object, every key unique at every depth.
fn strict_object(bytes: &[u8], what: &'static str) -> Result<Map<String, Value>, InvalidToken> {
    match crate::json::object(bytes) {
        Ok(map) => Ok(map),
        Err(crate::json::ObjectError::DuplicateKey) => Err(InvalidToken::Malformed(if what == "header" {
            "header gives a key twice"
        } else {
            "claims give a key twice"
        })),
        Err(_) => Err(InvalidToken::Malformed(if what == "header" {
            "header is not a JSON object"
        } else {
            "claims are not a JSON object"
        })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(text: &str) -> String {
        URL_SAFE_NO_PAD.encode(text)
    }

    #[test]
    fn refuses_every_other_algorithm_before_looking_for_keys() {
        for alg in ["none", "HS256", "rs256", "RS384", "PS256", "ES256"] {
            let token = format!("{}.{}.c2ln", b64(&format!(r#"{{"alg":"{alg}","kid":"k"}}"#)), b64("{}"));
            assert!(
                matches!(parse(&token, 16384), Err(InvalidToken::Algorithm(a)) if a == alg),
                "{alg}"
            );
        }
    }

    #[test]
    fn malformed_tokens_are_refused_with_a_reason() {
        let header = b64(r#"{"alg":"RS256","kid":"k"}"#);
        for bad in [
            String::new(),
            "a.b".into(),
            "a.b.c.d".into(),
            format!("{header}.!!.c2ln"),
            format!("{header}.{}.c2ln", b64("[1]")),
            format!("{}.{}.c2ln", b64(r#"{"alg":"RS256"}"#), b64("{}")),
            format!(
                "{}.{}.c2ln",
                b64(r#"{"alg":"RS256","kid":"k","crit":["x"]}"#),
                b64("{}")
            ),
            format!("{header}.{}.", b64("{}")),
            format!(
                "{}.{}.c2ln",
                b64(r#"{"alg":"RS256","alg":"none","kid":"k"}"#),
                b64("{}")
            ),
            // Issue 26, item 5: each of these was accepted before.
            format!(
                "{}.{}.c2ln",
                b64(r#"{"alg":"RS256","kid":"k","typ":"JWT","typ":"x"}"#),
                b64("{}")
            ),
            format!(
                "{}.{}.c2ln",
                b64(r#"{"alg":"RS256","kid":"k","jku":"a","jku":"b"}"#),
                b64("{}")
            ),
            format!("{}.{}.c2ln", b64(r#"{"alg":"RS256","kid":"k","crit":null}"#), b64("{}")),
            format!("{header}.{}.c2ln", b64(r#"{"aud":"evil","aud":"api"}"#)),
            format!("{header}.{}.c2ln", b64(r#"{"x":{"y":1,"y":2}}"#)),
        ] {
            assert!(parse(&bad, 16384).is_err(), "{bad}");
        }
        let long = "a".repeat(16385);
        assert_eq!(parse(&long, 16384).err(), Some(InvalidToken::TooLarge { limit: 16384 }));
    }

    #[test]
    fn signing_input_is_the_first_two_parts() {
        let token = format!("{}.{}.c2ln", b64(r#"{"alg":"RS256","kid":"k"}"#), b64(r#"{"a":1}"#));
        let jws = parse(&token, 16384).expect("parses");
        assert_eq!(
            jws.signing_input,
            token.rsplit_once('.').map(|(a, _)| a).unwrap_or_default().as_bytes()
        );
        assert_eq!(jws.kid, "k");
        assert_eq!(jws.signature, b"sig");
    }
}
