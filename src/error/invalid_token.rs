//! Why a [`crate::Validator`] refused a bearer token, each reason with what to do about it.
//! The token itself is never quoted: only claim values that identify no one (issuer, policy,
//! algorithm), cut short.

use std::fmt;

/// Why a bearer token was refused. [`Error::InvalidToken`](crate::Error::InvalidToken) holds
/// it; the tower layer answers 401 `invalid_token` for every reason but
/// [`InvalidToken::InsufficientScope`], which is 403 `insufficient_scope` (RFC 6750 §3.1).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum InvalidToken {
    /// The request had no `Authorization: Bearer` token.
    Missing,
    /// Longer than the validator accepts (16 KiB by default): not a B2C token.
    TooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// Not a compact JWS (three base64url parts with JSON header and claims).
    Malformed(&'static str),
    /// The header names another algorithm than RS256, the only one B2C signs with.
    Algorithm(String),
    /// The header has no `kid`: B2C always names the signing key.
    MissingKeyId,
    /// No published key has this `kid`, even after refreshing the keys.
    UnknownKeyId,
    /// The signature does not verify with the published key.
    BadSignature,
    /// `iss` is not the tenant's issuer for this policy.
    Issuer(String),
    /// `aud` names none of the API's client IDs.
    Audience,
    /// `exp` (plus the leeway) has passed.
    Expired,
    /// `nbf` (less the leeway) is still ahead.
    NotYetValid,
    /// A required claim (`exp`, `iss`, `aud`, ...) is missing or has the wrong type.
    MissingClaim(&'static str),
    /// The token came from a policy (`tfp` or `acr`) the API does not accept.
    Policy(Option<String>),
    /// The token is valid but grants none of the scopes or roles the route requires.
    InsufficientScope {
        /// The scopes the route requires (all of them).
        required: Vec<String>,
        /// Whether the token has no `scp` and no `roles` at all.
        none_granted: bool,
        /// The API's App ID URI, when configured: the hint names the full scope to request.
        app_id_uri: Option<String>,
        /// Whether the token is an application's own (client credentials): what it lacks are
        /// app roles an administrator grants, not scopes it could request.
        app_only: bool,
    },
}

impl InvalidToken {
    /// Every reason's stable name, in [`InvalidToken::reason`]'s order.
    pub(crate) const REASONS: [&'static str; 14] = [
        "missing",
        "too_large",
        "malformed",
        "algorithm",
        "missing_key_id",
        "unknown_key_id",
        "bad_signature",
        "issuer",
        "audience",
        "expired",
        "not_yet_valid",
        "missing_claim",
        "policy",
        "insufficient_scope",
    ];

    /// A stable snake_case name for the reason (`expired`, `bad_signature`, `audience`...),
    /// without the details: for logs and metrics, where a value must come from a short list.
    #[must_use]
    pub fn reason(&self) -> &'static str {
        Self::REASONS[self.reason_index()]
    }

    pub(crate) fn reason_index(&self) -> usize {
        match self {
            Self::Missing => 0,
            Self::TooLarge { .. } => 1,
            Self::Malformed(_) => 2,
            Self::Algorithm(_) => 3,
            Self::MissingKeyId => 4,
            Self::UnknownKeyId => 5,
            Self::BadSignature => 6,
            Self::Issuer(_) => 7,
            Self::Audience => 8,
            Self::Expired => 9,
            Self::NotYetValid => 10,
            Self::MissingClaim(_) => 11,
            Self::Policy(_) => 12,
            Self::InsufficientScope { .. } => 13,
        }
    }

    /// The RFC 6750 error code: `invalid_token`, `insufficient_scope`, or `None` for a
    /// request without a token (the RFC asks for no code then).
    #[must_use]
    pub fn oauth_error(&self) -> Option<&'static str> {
        match self {
            Self::Missing => None,
            Self::InsufficientScope { .. } => Some("insufficient_scope"),
            _ => Some("invalid_token"),
        }
    }
}

/// Claim values quoted in messages are cut to this many characters.
const QUOTE_LIMIT: usize = 80;

fn quote(value: &str) -> String {
    let cut: String = value.chars().filter(|c| !c.is_control()).take(QUOTE_LIMIT).collect();
    format!("{cut:?}")
}

impl fmt::Display for InvalidToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Missing => f.write_str("no bearer token: send `Authorization: Bearer <access token>`"),
            Self::TooLarge { limit } => write!(f, "token is longer than {limit} bytes: not an access token"),
            Self::Malformed(what) => write!(f, "token is not a signed JWT: {what}"),
            Self::Algorithm(alg) => write!(
                f,
                "token is signed with {}: only RS256 is accepted (B2C signs with RS256)",
                quote(alg)
            ),
            Self::MissingKeyId => f.write_str("token header has no `kid`: B2C tokens always name their signing key"),
            Self::UnknownKeyId => f.write_str(
                "token is signed with a key the tenant does not publish: it comes from another tenant or policy, or is forged",
            ),
            Self::BadSignature => f.write_str("token signature does not verify: it was altered or forged"),
            Self::Issuer(iss) => write!(
                f,
                "token issuer {} is not this tenant's: check the tenant, the domain the client gets tokens from, and ValidatorBuilder::issuer",
                quote(iss)
            ),
            Self::Audience => f.write_str(
                "token is for another audience: the client must request this API's scope (its `aud` must be the API's client ID)",
            ),
            Self::Expired => f.write_str("token has expired: get a new one"),
            Self::NotYetValid => f.write_str("token is not valid yet (`nbf`): check the clocks"),
            Self::MissingClaim(claim) => write!(f, "token has no valid `{claim}` claim"),
            Self::Policy(Some(policy)) => write!(
                f,
                "token comes from policy {} which this API does not accept",
                quote(policy)
            ),
            Self::Policy(None) => f.write_str("token names no policy (`tfp` or `acr`)"),
            Self::InsufficientScope {
                required,
                none_granted,
                app_id_uri,
                app_only,
            } => {
                let wanted: Vec<String> = required
                    .iter()
                    .map(|s| match app_id_uri {
                        Some(uri) => format!("`{}/{s}`", uri.trim_end_matches('/')),
                        None => format!("`{s}`"),
                    })
                    .collect();
                if *app_only {
                    let roles: Vec<String> = required.iter().map(|s| format!("`{s}`")).collect();
                    write!(
                        f,
                        "the application's token lacks the app role {}: a daemon cannot ask for it; an administrator grants it to the client's app registration (API permissions, application permission, admin consent), then the daemon gets a new token",
                        roles.join(" ")
                    )
                } else if *none_granted {
                    write!(
                        f,
                        "token grants no scope (no `scp`): the client asked only for `openid` or its own client ID; request the API scope {}",
                        wanted.join(" ")
                    )
                } else {
                    write!(f, "token lacks a required scope: request {}", wanted.join(" "))
                }
            }
        }
    }
}
