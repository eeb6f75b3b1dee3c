//! What the command prints: a token as JSON or as a bare bearer value, decoded claims.

use b2c_token::Token;
use base64::Engine as _;

use crate::Failure;

/// RFC 6750 §2.1: `b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`.
pub(crate) fn is_b64token(token: &str) -> bool {
    let body = token.trim_end_matches('=');
    !body.is_empty()
        && body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/'))
}

pub(crate) fn json(token: &Token) -> String {
    let epoch = |time: Option<std::time::SystemTime>| {
        time.and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_secs())
    };
    let value = serde_json::json!({
        "token_type": token.token_type(),
        "access_token": token.access_token().map(|t| t.expose_secret()),
        "id_token": token.id_token().map(|t| t.expose_secret()),
        "refresh_token": token.refresh_token().map(|t| t.expose_secret()),
        "expires_in": token.expires_in().map(|d| d.as_secs()),
        "expires_on": epoch(token.expires_on()),
        "refresh_token_expires_on": epoch(token.refresh_token_expires_on()),
        "scope": token.granted_scope(),
        "resource": token.resource(),
    });
    serde_json::to_string_pretty(&value).unwrap_or_default()
}

pub(crate) fn decode_claims(jwt: &str) -> Result<String, Failure> {
    let not_a_jwt = || Failure {
        code: 4,
        message: "error: the access token is not a JWT whose claims can be shown".into(),
    };
    let payload = jwt.split('.').nth(1).ok_or_else(not_a_jwt)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .map_err(|_| not_a_jwt())?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).map_err(|_| not_a_jwt())?;
    serde_json::to_string_pretty(&claims).map_err(|_| not_a_jwt())
}
