//! Reading token endpoint responses: B2C's quirks tolerated (times as numbers or numeric
//! strings, no access token for `openid`-only requests, a leading BOM), ambiguity refused
//! (duplicate keys), and never a body quoted in an error.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use serde_json::{Map, Value};
use tokio::time::Instant;

use super::{Token, TokenInner, MAX_LIFETIME};
use crate::error::UnexpectedKind;
use crate::json::ObjectError;
use crate::scope::Scopes;
use crate::secret::{AccessToken, IdToken, RefreshToken};

/// The clocks read just before a request was sent.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SentAt {
    pub(crate) instant: Instant,
    pub(crate) system: SystemTime,
}

impl SentAt {
    pub(crate) fn now() -> Self {
        Self {
            instant: Instant::now(),
            system: SystemTime::now(),
        }
    }
}

/// Reads a success body into a [`Token`]. Never quotes the body in an error.
pub(crate) fn parse_token_response(
    body: &[u8],
    requested_scopes: Scopes,
    sent: SentAt,
) -> Result<Token, UnexpectedKind> {
    let map = parse_object(body)?;
    let access_token = string_field(&map, "access_token")?.map(AccessToken::new);
    let id_token = string_field(&map, "id_token")?.map(IdToken::new);
    let refresh_token = string_field(&map, "refresh_token")?.map(RefreshToken::new);
    if access_token.is_none() && id_token.is_none() {
        return Err(UnexpectedKind::NoToken);
    }
    let token_type = string_field(&map, "token_type")?.ok_or(UnexpectedKind::InvalidField {
        field: "token_type",
        expected: "present (e.g. \"Bearer\")",
    })?;
    let expires_in = seconds_field(&map, "expires_in")?;
    let expires_on = seconds_field(&map, "expires_on")?;
    let id_token_expires_in = seconds_field(&map, "id_token_expires_in")?;
    let refresh_token_expires_in = seconds_field(&map, "refresh_token_expires_in")?;
    // Validated for shape like every time field, though nothing depends on it.
    seconds_field(&map, "not_before")?;

    let lifetime = match (&access_token, &id_token) {
        (Some(access), _) => expires_in
            .or_else(|| jwt_exp(access.expose_secret()).and_then(|exp| seconds_until(exp, sent.system)))
            .or_else(|| expires_on.and_then(|exp| seconds_until(exp, sent.system))),
        (None, Some(id)) => id_token_expires_in
            .or(expires_in)
            .or_else(|| jwt_exp(id.expose_secret()).and_then(|exp| seconds_until(exp, sent.system))),
        (None, None) => None,
    };
    let lifetime = lifetime.map(Duration::from_secs);
    let refresh_lifetime = refresh_token_expires_in.map(Duration::from_secs);
    Ok(Token(Arc::new(TokenInner {
        access_token,
        user: super::UserParts::boxed(
            id_token,
            refresh_token,
            refresh_lifetime.and_then(|l| sent.system.checked_add(l)),
        ),
        token_type: super::TokenType::new(token_type),
        requested_scopes,
        granted_scope: string_field(&map, "scope").ok().flatten().map(Into::into),
        resource: string_field(&map, "resource").ok().flatten().map(Into::into),
        issued_at: sent.instant,
        expires_at: lifetime.and_then(|l| sent.instant.checked_add(l)),
        expires_on: lifetime.and_then(|l| sent.system.checked_add(l)),
        authorization: std::sync::OnceLock::new(),
    })))
}

/// An OAuth error body: `error` and `error_description`, if the body is one.
pub(crate) fn parse_error_body(body: &[u8]) -> Option<(String, String)> {
    let map = parse_object(body).ok()?;
    let error = map.get("error")?.as_str()?.to_owned();
    let description = map
        .get("error_description")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    Some((error, description))
}

fn parse_object(body: &[u8]) -> Result<Map<String, Value>, UnexpectedKind> {
    crate::json::object(body).map_err(|error| match error {
        ObjectError::DuplicateKey => UnexpectedKind::DuplicateField,
        ObjectError::NotAnObject => UnexpectedKind::InvalidField {
            field: "(body)",
            expected: "a JSON object",
        },
        ObjectError::Malformed { line, column } => UnexpectedKind::MalformedJson {
            position: format!("line {line} column {column}"),
        },
    })
}

/// A string field; absent, `null` and `""` all mean "not there".
fn string_field(map: &Map<String, Value>, field: &'static str) -> Result<Option<String>, UnexpectedKind> {
    match map.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(UnexpectedKind::InvalidField {
            field,
            expected: "a string",
        }),
    }
}

/// A time field sent as a number (`3600`) or a numeric string (`"3600"`): B2C does both,
/// even across calls to one tenant.
fn seconds_field(map: &Map<String, Value>, field: &'static str) -> Result<Option<u64>, UnexpectedKind> {
    let invalid = UnexpectedKind::InvalidField {
        field,
        expected: "a whole number of seconds, as a number or a numeric string",
    };
    let seconds = match map.get(field) {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Number(n)) => n.as_u64().ok_or(invalid)?,
        Some(Value::String(s)) => {
            let s = s.trim();
            if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
                return Err(invalid);
            }
            s.parse::<u64>().map_err(|_| invalid)?
        }
        Some(_) => return Err(invalid),
    };
    // Absolute fields (`expires_on`, `not_before`) are epoch seconds; relative ones are bounded.
    let is_relative = field.ends_with("_in");
    if is_relative && seconds > MAX_LIFETIME.as_secs() {
        return Err(UnexpectedKind::InvalidField {
            field,
            expected: "a lifetime of at most 10 years",
        });
    }
    Ok(Some(seconds))
}

/// Seconds from `now` to the epoch time `exp`, bounded like any lifetime.
fn seconds_until(exp: u64, now: SystemTime) -> Option<u64> {
    let now = now.duration_since(UNIX_EPOCH).ok()?.as_secs();
    Some(exp.saturating_sub(now).min(MAX_LIFETIME.as_secs()))
}

/// The `exp` claim of a JWT, read without verifying the signature: only to learn when to
/// refresh, never to trust the token.
pub(crate) fn jwt_exp(jwt: &str) -> Option<u64> {
    let payload = jwt.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let claims: Value = serde_json::from_slice(&bytes).ok()?;
    let exp = claims.get("exp")?;
    exp.as_u64().or_else(|| exp.as_str().and_then(|s| s.parse().ok()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(body: &str) -> Result<Token, UnexpectedKind> {
        parse_token_response(body.as_bytes(), Scopes::empty(), SentAt::now())
    }

    #[tokio::test(start_paused = true)]
    async fn expires_in_string_and_number_agree() {
        let a = parse(r#"{"access_token":"a","token_type":"Bearer","expires_in":"3600"}"#).unwrap();
        let b = parse(r#"{"access_token":"a","token_type":"Bearer","expires_in":3600}"#).unwrap();
        assert_eq!(a.expires_in(), Some(Duration::from_secs(3600)));
        assert_eq!(a.expires_in(), b.expires_in());
    }

    #[test]
    fn bad_time_fields_are_rejected_by_name() {
        for (body, field) in [
            (
                r#"{"access_token":"a","token_type":"Bearer","expires_in":"soon"}"#,
                "expires_in",
            ),
            (
                r#"{"access_token":"a","token_type":"Bearer","expires_in":-5}"#,
                "expires_in",
            ),
            (
                r#"{"access_token":"a","token_type":"Bearer","expires_in":1.5}"#,
                "expires_in",
            ),
            (
                r#"{"access_token":"a","token_type":"Bearer","expires_in":true}"#,
                "expires_in",
            ),
            (
                r#"{"access_token":"a","token_type":"Bearer","expires_in":"99999999999999999999999"}"#,
                "expires_in",
            ),
            (
                r#"{"access_token":"a","token_type":"Bearer","expires_in":999999999999}"#,
                "expires_in",
            ),
            (
                r#"{"access_token":"a","token_type":"Bearer","not_before":"x"}"#,
                "not_before",
            ),
            (
                r#"{"access_token":"a","token_type":"Bearer","expires_on":[1]}"#,
                "expires_on",
            ),
            (
                r#"{"access_token":"a","token_type":"Bearer","refresh_token_expires_in":"1e9"}"#,
                "refresh_token_expires_in",
            ),
            (
                r#"{"id_token":"a","token_type":"Bearer","id_token_expires_in":{}}"#,
                "id_token_expires_in",
            ),
            (r#"{"access_token":5,"token_type":"Bearer"}"#, "access_token"),
        ] {
            match parse(body) {
                Err(UnexpectedKind::InvalidField { field: f, .. }) => assert_eq!(f, field, "{body}"),
                other => panic!("{body}: {other:?}"),
            }
        }
    }

    #[test]
    fn no_token_and_empty_token_are_not_tokens() {
        assert_eq!(
            parse(r#"{"token_type":"Bearer"}"#).unwrap_err(),
            UnexpectedKind::NoToken
        );
        assert_eq!(
            parse(r#"{"access_token":"","token_type":"Bearer"}"#).unwrap_err(),
            UnexpectedKind::NoToken
        );
        assert!(matches!(parse("[1]"), Err(UnexpectedKind::InvalidField { .. })));
        assert!(matches!(
            parse("{\"access_token\":"),
            Err(UnexpectedKind::MalformedJson { .. })
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn falls_back_to_jwt_exp() {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
        let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!(r#"{{"exp":{}}}"#, now + 600));
        let body = format!(r#"{{"access_token":"h.{payload}.s","token_type":"bearer"}}"#);
        let token = parse(&body).unwrap();
        let left = token.expires_in().unwrap().as_secs();
        assert!((599..=600).contains(&left), "{left}");
        assert!(token.is_bearer());
    }

    #[test]
    fn jwt_exp_tolerates_garbage() {
        assert_eq!(jwt_exp("not-a-jwt"), None);
        assert_eq!(jwt_exp("a.!!!.c"), None);
        assert_eq!(jwt_exp("a.e30.c"), None); // {}
    }
}
