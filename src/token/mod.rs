//! The typed [`Token`]; `response.rs` reads B2C's token responses into it, leniently
//! (b2c-protocol §5).

use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use reqwest::header::HeaderValue;
use tokio::time::Instant;
use zeroize::Zeroizing;

mod response;

#[cfg(any(test, fuzzing))]
pub(crate) use self::response::jwt_exp;
pub(crate) use self::response::{parse_error_body, parse_token_response, SentAt};
use crate::error::{Error, Result};
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

// `repr(C)`, the `Authorization` slot first: it then shares a cache line with the reference
// count that every bearer-layer hit bumps.
#[repr(C)]
struct TokenInner {
    /// [`Token::authorization_header`], built on first use: the bearer layers send it with
    /// every request, and building it copies and checks the whole token. Inline rather than
    /// boxed: one pointer fewer to follow on every request (benches/middleware.rs), and a
    /// token whose header is built saves the box's allocation.
    authorization: OnceLock<HeaderValue>,
    access_token: Option<AccessToken>,
    /// `None` for a client-credentials token, which has none of a user's parts.
    user: Option<Box<UserParts>>,
    token_type: TokenType,
    requested_scopes: Scopes,
    // Boxed strings, not `String`s: a cached token keeps these for its lifetime, and a
    // `Box<str>` is a word shorter and never over-allocated.
    granted_scope: Option<Box<str>>,
    resource: Option<Box<str>>,
    issued_at: Instant,
    expires_at: Option<Instant>,
    expires_on: Option<SystemTime>,
}

/// What only a token for a user carries (password and refresh-token grants). Boxed, and only
/// when there is any: a cache of client-credentials tokens keeps many of them for hours, and
/// inline these fields would cost each of them 48 bytes it never uses.
struct UserParts {
    id_token: Option<IdToken>,
    refresh_token: Option<RefreshToken>,
    refresh_token_expires_on: Option<SystemTime>,
}

impl UserParts {
    fn boxed(
        id_token: Option<IdToken>,
        refresh_token: Option<RefreshToken>,
        refresh_token_expires_on: Option<SystemTime>,
    ) -> Option<Box<Self>> {
        (id_token.is_some() || refresh_token.is_some() || refresh_token_expires_on.is_some()).then(|| {
            Box::new(Self {
                id_token,
                refresh_token,
                refresh_token_expires_on,
            })
        })
    }
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
            user: UserParts::boxed(
                id_token.map(IdToken::new),
                refresh_token.map(RefreshToken::new),
                refresh_token_expires_on,
            ),
            token_type: TokenType::new(token_type),
            requested_scopes,
            granted_scope: granted_scope.map(Into::into),
            resource: resource.map(Into::into),
            issued_at: now.checked_sub(ago).unwrap_or(now),
            expires_at: now.checked_add(remaining.min(MAX_LIFETIME)),
            expires_on: Some(expires),
            authorization: OnceLock::new(),
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
        self.0.user.as_ref()?.id_token.as_ref()
    }

    /// The refresh token, if `offline_access` was requested. Always keep the newest one:
    /// B2C rotates it on every use.
    #[must_use]
    pub fn refresh_token(&self) -> Option<&RefreshToken> {
        self.0.user.as_ref()?.refresh_token.as_ref()
    }

    /// The token type as sent, e.g. `Bearer`.
    #[must_use]
    pub fn token_type(&self) -> &str {
        self.0.token_type.as_str()
    }

    /// Whether the token type is `Bearer` (compared case-insensitively: `bearer` occurs).
    #[must_use]
    pub fn is_bearer(&self) -> bool {
        self.0.token_type.as_str().eq_ignore_ascii_case("bearer")
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
        self.0.user.as_ref()?.refresh_token_expires_on
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
    /// `request.header(AUTHORIZATION, token.authorization_header()?)`. Built once per token;
    /// every call after the first returns a clone that shares its bytes, so it is cheap to
    /// call per request.
    ///
    /// # Errors
    /// [`Error::UnusableToken`] if the token is not a bearer token (`token_type` other than
    /// `Bearer`), has no access token (only `openid`/`offline_access` were requested) or its
    /// characters cannot go in a header.
    pub fn authorization_header(&self) -> Result<HeaderValue, Error> {
        if let Some(value) = self.0.authorization.get() {
            return Ok(value.clone());
        }
        let mut value = HeaderValue::from_maybe_shared(self.authorization_bytes()?)
            .map_err(|_| Error::UnusableToken("the access token has characters a header cannot carry".into()))?;
        value.set_sensitive(true);
        // Two first calls at once may both build it: one value is kept, the other dropped.
        Ok(self.0.authorization.get_or_init(|| value).clone())
    }

    /// `Bearer {access token}` in a buffer that is zeroized when the last value sharing it is
    /// dropped. Header values (`HeaderValue`, tonic's `MetadataValue`) made from it share it
    /// rather than copy it: one is built per token and outlives many requests in the bearer
    /// layers' caches, so it must not leave the token in freed memory.
    pub(crate) fn authorization_bytes(&self) -> Result<bytes::Bytes, Error> {
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
        let secret = access.expose_secret().as_bytes();
        let mut bytes = Zeroizing::new(Vec::with_capacity(7 + secret.len()));
        bytes.extend_from_slice(b"Bearer ");
        bytes.extend_from_slice(secret);
        Ok(bytes::Bytes::from_owner(HeaderBytes(bytes)))
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
            .field("id_token", &self.id_token())
            .field("refresh_token", &self.refresh_token())
            .field("token_type", &t.token_type.as_str())
            .field("scopes", &t.requested_scopes)
            .field("granted_scope", &t.granted_scope)
            .field("expires_in", &self.expires_in())
            .finish_non_exhaustive()
    }
}

/// The bytes of [`Token::authorization_bytes`]: zeroized when dropped.
struct HeaderBytes(Zeroizing<Vec<u8>>);

impl AsRef<[u8]> for HeaderBytes {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

/// A token's `token_type` as sent, without an allocation for the usual `Bearer`.
pub(crate) struct TokenType(Option<Box<str>>);

impl TokenType {
    pub(crate) fn new(sent: String) -> Self {
        Self((sent != "Bearer").then(|| sent.into()))
    }

    fn as_str(&self) -> &str {
        self.0.as_deref().unwrap_or("Bearer")
    }
}
