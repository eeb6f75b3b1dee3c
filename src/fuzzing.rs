//! Entry points for the fuzz targets (fuzz/): every parser that reads bytes from the network.
//! Built when cargo-fuzz sets `--cfg fuzzing`, and in the crate's own tests, which run a short,
//! deterministic fuzz pass that CI can afford.

use std::time::{Duration, SystemTime};

/// A token endpoint response body, as success and as error, plus the headers and JWT
/// fields read from it. Must never panic.
pub fn response(bytes: &[u8]) {
    let sent = crate::token::SentAt::now();
    if let Ok(token) = crate::token::parse_token_response(bytes, crate::scope::Scopes::empty(), sent) {
        let _ = (token.expires_in(), token.is_bearer(), format!("{token:?}"));
    }
    if let Some((error, description)) = crate::token::parse_error_body(bytes) {
        let rejection = crate::error::Rejection::from_oauth_error(400, error, &description);
        let _ = (rejection.to_string(), rejection.hint(), format!("{rejection:?}"));
    }
    if let Ok(text) = std::str::from_utf8(bytes) {
        let _ = crate::error::b2c_code::B2cCode::parse(text);
        let _ = crate::error::aadsts::AadstsCode::parse(text);
        let _ = crate::token::jwt_exp(text);
        let _ = crate::net::parse_retry_after(text, SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000));
        let _ = crate::scope::Scopes::parse(text);
    }
}

/// A bearer token as the validator takes it apart (size, shape, header, claims), before any
/// key. Must never panic.
#[cfg(feature = "validate")]
pub fn jwt(bytes: &[u8]) {
    if let Ok(token) = std::str::from_utf8(bytes) {
        if let Ok(jws) = crate::validate::jwt::parse(token, 16 * 1024) {
            let _ = (
                jws.kid.len(),
                jws.claims.len(),
                jws.signature.len(),
                jws.signing_input.len(),
            );
        }
    }
}

/// A JSON Web Key Set as the validator reads it. Must never panic.
#[cfg(feature = "validate")]
pub fn jwks(bytes: &[u8]) {
    if let Ok(map) = crate::json::object(bytes) {
        let _ = crate::validate::keys::parse_jwks(&map);
    }
}

/// An OpenID discovery document as `Authority::discover` and the validator read it: the
/// fields, the issuer check against its own URL, the token endpoint. Must never panic.
pub fn metadata(bytes: &[u8]) {
    let Ok(map) = crate::json::object(bytes) else { return };
    let Ok(metadata_url) = url::Url::parse(
        "https://contoso.b2clogin.com/contoso.onmicrosoft.com/B2C_1_x/v2.0/.well-known/openid-configuration",
    ) else {
        return;
    };
    if let Ok(issuer) = crate::net::document_string(&map, "issuer") {
        let _ = crate::authority::discovery::check_issuer(&metadata_url, &issuer);
    }
    if let Ok(endpoint) = crate::net::document_string(&map, "token_endpoint") {
        let _ = crate::authority::Authority::from_token_url(&endpoint);
    }
    let _ = crate::net::document_string(&map, "jwks_uri").map(|uri| url::Url::parse(&uri));
}

#[cfg(test)]
mod smoke {
    // A short, deterministic fuzz run that CI can afford: the fuzz target's entry point on every
    // fixture and on 200,000 mutations of them. The long runs use cargo-fuzz (docs/reliability.md);
    // any crash they find is added to `REGRESSIONS` here.

    use super::{metadata, response};

    /// Inputs that once broke a parser (none found so far), plus hand-picked edge cases.
    const REGRESSIONS: &[&[u8]] = &[
        b"",
        b"{",
        b"[]",
        b"null",
        br#"{"access_token":"a","token_type":"Bearer","expires_in":"18446744073709551616"}"#,
        br#"{"access_token":"a","token_type":"Bearer","expires_in":18446744073709551615}"#,
        br#"{"access_token":"a","token_type":"Bearer","expires_on":18446744073709551615}"#,
        br#"{"access_token":"h.eyJleHAiOjE4NDQ2NzQ0MDczNzA5NTUxNjE1fQ.s","token_type":"Bearer"}"#,
        br#"{"error":"x","error_description":"AADB2C9Correlation ID:Timestamp:"}"#,
        b"AADB2C\xc3\xa4\xc3\xa4\xc3\xa4: x",
        b"Sun, 06 Nov 1994 08:49:37 GMT",
        b"99999999999999999999999",
    ];

    #[test]
    fn regressions_and_edge_cases_do_not_panic() {
        for input in REGRESSIONS {
            response(input);
            metadata(input);
            #[cfg(feature = "validate")]
            {
                super::jwt(input);
                super::jwks(input);
            }
        }
    }

    #[test]
    fn mutated_fixtures_do_not_panic() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");
        let seeds: Vec<Vec<u8>> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| std::fs::read(e.unwrap().path()).unwrap())
            .collect();
        // xorshift64*: deterministic, so a failure reproduces.
        let mut state = 0x9E37_79B9_7F4A_7C15_u64;
        let mut next = move || {
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            state.wrapping_mul(0x2545_F491_4F6C_DD1D)
        };
        let interesting: &[&[u8]] = &[
            b"\"",
            b"\\",
            b"{",
            b"}",
            b"-1",
            b"1e999",
            b"\"3600\"",
            b"null",
            b"\xff",
            b"\r\n",
            b":",
        ];
        for round in 0..200_000u32 {
            let mut input = seeds[round as usize % seeds.len()].clone();
            for _ in 0..=(next() % 4) {
                let at = if input.is_empty() {
                    0
                } else {
                    (next() as usize) % input.len()
                };
                match next() % 4 {
                    0 if !input.is_empty() => input[at] = next() as u8,
                    1 => {
                        let piece = interesting[(next() as usize) % interesting.len()];
                        input.splice(at..at, piece.iter().copied());
                    }
                    2 if !input.is_empty() => {
                        let end = (at + 1 + (next() as usize) % 16).min(input.len());
                        input.drain(at..end);
                    }
                    _ => input.truncate(at),
                }
            }
            response(&input);
            metadata(&input);
            #[cfg(feature = "validate")]
            super::jwks(&input);
        }
    }
}
