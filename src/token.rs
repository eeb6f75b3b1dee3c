//! The typed token, and the lenient reading of B2C's token responses (b2c-protocol §5).

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use reqwest::header::HeaderValue;
use serde_json::{Map, Value};
use tokio::time::Instant;

use crate::error::{Error, Result, UnexpectedKind};
use crate::scope::Scopes;
use crate::secret::{AccessToken, IdToken, RefreshToken};

/// The longest lifetime the SDK believes. Anything longer is a server bug, and would
/// overflow instant arithmetic if taken at face value.
const MAX_LIFETIME: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

/// Tokens from one successful token response.
///
/// A cheap-to-clone handle (`Arc` inside). The expiry is absolute: it was computed from the
/// moment the request was *sent*, so network latency never makes a token look fresher than
/// it is. Time uses tokio's clock, so tests can pause and advance it.
///
/// ```
/// # async fn demo(client: b2c_token::Client) -> Result<(), b2c_token::Error> {
/// let token = client.acquire_token_by_client_credentials(
///     &b2c_token::Scopes::new(["https://contoso.onmicrosoft.com/api/.default"])?,
/// ).await?;
/// if let Some(access) = token.access_token() {
///     println!("got {} expiring in {:?}", access.redacted_prefix(), token.expires_in());
/// }
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Token(Arc<TokenInner>);

struct TokenInner {
    access_token: Option<AccessToken>,
    id_token: Option<IdToken>,
    refresh_token: Option<RefreshToken>,
    token_type: String,
    requested_scopes: Scopes,
    granted_scope: Option<String>,
    resource: Option<String>,
    issued_at: Instant,
    expires_at: Option<Instant>,
    expires_on: Option<SystemTime>,
    refresh_token_expires_on: Option<SystemTime>,
}

impl Token {
    /// A token rebuilt from a store: absolute wall-clock times mapped onto this process's
    /// clock as of now.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn from_stored(
        access_token: Option<String>,
        id_token: Option<String>,
        refresh_token: Option<String>,
        token_type: String,
        requested_scopes: Scopes,
        granted_scope: Option<String>,
        resource: Option<String>,
        issued: SystemTime,
        expires: SystemTime,
        refresh_token_expires_on: Option<SystemTime>,
    ) -> Self {
        let (now, now_system) = (Instant::now(), SystemTime::now());
        let ago = now_system.duration_since(issued).unwrap_or(Duration::ZERO);
        let remaining = expires.duration_since(now_system).unwrap_or(Duration::ZERO);
        Self(Arc::new(TokenInner {
            access_token: access_token.map(AccessToken::new),
            id_token: id_token.map(IdToken::new),
            refresh_token: refresh_token.map(RefreshToken::new),
            token_type,
            requested_scopes,
            granted_scope,
            resource,
            issued_at: now.checked_sub(ago).unwrap_or(now),
            expires_at: now.checked_add(remaining.min(MAX_LIFETIME)),
            expires_on: Some(expires),
            refresh_token_expires_on,
        }))
    }

    /// How long ago the request that got this token was sent.
    pub(crate) fn age(&self) -> Duration {
        self.0.issued_at.elapsed()
    }

    /// The access token, if the response had one. B2C omits it when only `openid` and
    /// `offline_access` were requested.
    #[must_use]
    pub fn access_token(&self) -> Option<&AccessToken> {
        self.0.access_token.as_ref()
    }

    /// The ID token, if `openid` was requested.
    #[must_use]
    pub fn id_token(&self) -> Option<&IdToken> {
        self.0.id_token.as_ref()
    }

    /// The refresh token, if `offline_access` was requested. Always keep the newest one:
    /// B2C rotates it on every use.
    #[must_use]
    pub fn refresh_token(&self) -> Option<&RefreshToken> {
        self.0.refresh_token.as_ref()
    }

    /// The token type as sent, e.g. `Bearer`.
    #[must_use]
    pub fn token_type(&self) -> &str {
        &self.0.token_type
    }

    /// Whether the token type is `Bearer` (compared case-insensitively: `bearer` occurs).
    #[must_use]
    pub fn is_bearer(&self) -> bool {
        self.0.token_type.eq_ignore_ascii_case("bearer")
    }

    /// The scopes that were requested. Use these, not [`Token::granted_scope`], to decide
    /// what the token is for: B2C sometimes answers `"/"` or `""`.
    #[must_use]
    pub fn scopes(&self) -> &Scopes {
        &self.0.requested_scopes
    }

    /// The `scope` value the server returned, verbatim, if any.
    #[must_use]
    pub fn granted_scope(&self) -> Option<&str> {
        self.0.granted_scope.as_deref()
    }

    /// The `resource` value (the API's application ID) the server returned, if any.
    #[must_use]
    pub fn resource(&self) -> Option<&str> {
        self.0.resource.as_deref()
    }

    /// When the token (the access token, or the ID token when there is no access token)
    /// expires, on tokio's monotonic clock. `None` if the server gave no lifetime at all.
    #[must_use]
    pub fn expires_at(&self) -> Option<Instant> {
        self.0.expires_at
    }

    /// When the token expires, on the wall clock, for display.
    #[must_use]
    pub fn expires_on(&self) -> Option<SystemTime> {
        self.0.expires_on
    }

    /// When the refresh token expires, if the server said (`refresh_token_expires_in`).
    #[must_use]
    pub fn refresh_token_expires_on(&self) -> Option<SystemTime> {
        self.0.refresh_token_expires_on
    }

    /// Time left before expiry (zero once expired), or `None` if unknown.
    #[must_use]
    pub fn expires_in(&self) -> Option<Duration> {
        self.0.expires_at.map(|at| at.saturating_duration_since(Instant::now()))
    }

    /// Whether both handles are the same response (not merely equal strings).
    pub(crate) fn same_as(&self, other: &Token) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    /// When the request that produced this token was sent (tokio's clock).
    pub(crate) fn issued_at(&self) -> Instant {
        self.0.issued_at
    }

    /// `Bearer {access token}` as a header value marked sensitive (hidden from `Debug` and
    /// from HTTP/2 header compression), for callers who add the header themselves:
    /// `request.header(AUTHORIZATION, token.authorization_header()?)`.
    ///
    /// # Errors
    /// [`Error::UnusableToken`] if the token is not a bearer token (`token_type` other than
    /// `Bearer`), has no access token (only `openid`/`offline_access` were requested) or its
    /// characters cannot go in a header.
    pub fn authorization_header(&self) -> Result<HeaderValue, Error> {
        if !self.is_bearer() {
            // A `mac` or `pop` token sent as a bearer token would be refused at best, and
            // misused at worst: it needs a proof the SDK does not compute.
            return Err(Error::UnusableToken(format!(
                "the token type is {:?}, not Bearer: it cannot be sent as a bearer token",
                self.token_type()
            )));
        }
        let access = self.access_token().ok_or_else(|| {
            Error::UnusableToken(
                "the token has no access token: request a resource scope (an API scope or the client ID)".into(),
            )
        })?;
        // Built as bytes and handed over without another copy: this runs on every request.
        let secret = access.expose_secret().as_bytes();
        let mut bytes = Vec::with_capacity(7 + secret.len());
        bytes.extend_from_slice(b"Bearer ");
        bytes.extend_from_slice(secret);
        let mut value = HeaderValue::try_from(bytes)
            .map_err(|_| Error::UnusableToken("the access token has characters a header cannot carry".into()))?;
        value.set_sensitive(true);
        Ok(value)
    }

    /// Whether the expiry is known and has passed.
    #[must_use]
    pub fn is_expired(&self) -> bool {
        self.0.expires_at.is_some_and(|at| at <= Instant::now())
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = &self.0;
        f.debug_struct("Token")
            .field("access_token", &t.access_token)
            .field("id_token", &t.id_token)
            .field("refresh_token", &t.refresh_token)
            .field("token_type", &t.token_type)
            .field("scopes", &t.requested_scopes)
            .field("granted_scope", &t.granted_scope)
            .field("expires_in", &self.expires_in())
            .finish_non_exhaustive()
    }
}

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
        id_token,
        refresh_token,
        token_type,
        requested_scopes,
        granted_scope: string_field(&map, "scope").ok().flatten(),
        resource: string_field(&map, "resource").ok().flatten(),
        issued_at: sent.instant,
        expires_at: lifetime.and_then(|l| sent.instant.checked_add(l)),
        expires_on: lifetime.and_then(|l| sent.system.checked_add(l)),
        refresh_token_expires_on: refresh_lifetime.and_then(|l| sent.system.checked_add(l)),
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

/// A JSON object whose keys are unique: `{"expires_in":3600,"expires_in":0}` is ambiguous
/// (parsers disagree on which one wins), so it is refused rather than guessed at.
struct UniqueObject(Map<String, Value>);

impl<'de> serde::Deserialize<'de> for UniqueObject {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = UniqueObject;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut access: A) -> Result<UniqueObject, A::Error> {
                let mut map = Map::new();
                while let Some((key, value)) = access.next_entry::<String, Value>()? {
                    if map.contains_key(&key) {
                        // The marker is matched below; the key itself is not repeated.
                        return Err(serde::de::Error::custom(DUPLICATE_KEY));
                    }
                    map.insert(key, value);
                }
                Ok(UniqueObject(map))
            }
        }
        deserializer.deserialize_map(Visitor)
    }
}

const DUPLICATE_KEY: &str = "b2c-token: duplicate key";

fn parse_object(body: &[u8]) -> Result<Map<String, Value>, UnexpectedKind> {
    // A leading UTF-8 byte order mark is harmless; some servers send one.
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    match serde_json::from_slice::<UniqueObject>(body) {
        Ok(UniqueObject(map)) => Ok(map),
        Err(e) if e.to_string().starts_with(DUPLICATE_KEY) => Err(UnexpectedKind::DuplicateField),
        Err(e) if e.classify() == serde_json::error::Category::Data => Err(UnexpectedKind::InvalidField {
            field: "(body)",
            expected: "a JSON object",
        }),
        // serde_json's messages can quote the input; keep only the position.
        Err(e) => Err(UnexpectedKind::MalformedJson {
            position: format!("line {} column {}", e.line(), e.column()),
        }),
    }
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
