//! Azure AD B2C's `AADB2Cxxxxx` error codes, what they mean, and what to do about them.
//!
//! B2C puts the code at the start of `error_description` (b2c-protocol §6.1); the OAuth
//! `error` value beside it varies, so the code is the better guide to the cause.

use std::fmt;

/// Whether repeating a failed request may help, and how: the one classification behind
/// [`B2cCode::retry_advice`], [`crate::Error::retry_advice`], [`crate::Error::is_retryable`]
/// and the client's retry loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RetryAdvice {
    /// Never repeat automatically: the request, configuration or credentials are wrong.
    Never,
    /// Usually configuration, occasionally transient: repeat at most once.
    Once,
    /// The service failed or was briefly unavailable: repeat with back-off.
    Transient,
    /// The service is throttling: repeat only after `Retry-After`, or a long back-off.
    Throttled,
}

macro_rules! b2c_codes {
    ($($(#[$doc:meta])* $variant:ident = $number:literal, $retry:ident, $hint:literal;)*) => {
        /// A parsed `AADB2Cxxxxx` code from a B2C error response.
        ///
        /// Known codes have names; any other number is kept in [`B2cCode::Other`].
        /// `Display` prints the code as B2C writes it, e.g. `AADB2C90225`.
        ///
        /// ```
        /// use b2c_token::error::B2cCode;
        /// let code = B2cCode::from_number(90225);
        /// assert_eq!(code, B2cCode::InvalidCredentials);
        /// assert_eq!(code.to_string(), "AADB2C90225");
        /// assert!(code.hint().contains("password"));
        /// ```
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum B2cCode {
            $($(#[$doc])* $variant,)*
            /// A code this version of the SDK does not know.
            Other(u32),
        }

        impl B2cCode {
            /// The code for a number (the digits after `AADB2C`).
            #[must_use]
            pub const fn from_number(number: u32) -> Self {
                match number {
                    $($number => Self::$variant,)*
                    other => Self::Other(other),
                }
            }

            /// The number after `AADB2C`, e.g. `90225`.
            #[must_use]
            pub const fn number(self) -> u32 {
                match self {
                    $(Self::$variant => $number,)*
                    Self::Other(number) => number,
                }
            }

            /// One line saying what to do about this error.
            #[must_use]
            pub const fn hint(self) -> &'static str {
                match self {
                    $(Self::$variant => $hint,)*
                    Self::Other(_) => "look the code up in docs/troubleshooting.md or Microsoft's Azure AD B2C error code list",
                }
            }

            /// Whether a request that failed with this code may be repeated.
            #[must_use]
            pub const fn retry_advice(self) -> RetryAdvice {
                match self {
                    $(Self::$variant => RetryAdvice::$retry,)*
                    Self::Other(_) => RetryAdvice::Never,
                }
            }
        }
    };
}

b2c_codes! {
    /// AADB2C90008: the request has no `client_id`.
    MissingClientId = 90008, Never, "send client_id: the Application (client) ID from the app registration";
    /// AADB2C90010: the request has no `scope`.
    MissingScope = 90010, Never, "send a scope, e.g. `openid <client-id> offline_access` for ROPC or `<App ID URI>/.default` for client credentials";
    /// AADB2C90011: the client ID does not match the one registered in the policy.
    ClientIdMismatch = 90011, Never, "use the client ID of the application registered for this policy";
    /// AADB2C90012: a requested scope is not supported.
    UnsupportedScope = 90012, Never, "request only scopes the API exposes (App ID URI + scope name), joined with spaces";
    /// AADB2C90117: a requested scope is not supported.
    UnsupportedScopeValue = 90117, Never, "request only scopes the API exposes (App ID URI + scope name), joined with spaces";
    /// AADB2C90018: the client ID is not registered in this tenant.
    ClientNotRegistered = 90018, Never, "check the tenant and the Application (client) ID: this app is not registered in this tenant";
    /// AADB2C90035: the service is temporarily unavailable.
    ServiceUnavailable = 90035, Transient, "B2C is temporarily unavailable: retry after a few minutes";
    /// AADB2C90052: invalid username or password.
    InvalidUsernameOrPassword = 90052, Never, "check the username and password; do not retry automatically (B2C locks accounts)";
    /// AADB2C90053: no user with the given credential.
    UserNotFound = 90053, Never, "no such user: check the username (ROPC accepts local accounts only)";
    /// AADB2C90054: invalid username or password.
    WrongUsernameOrPassword = 90054, Never, "check the username and password; do not retry automatically (B2C locks accounts)";
    /// AADB2C90055: a scope does not name a resource.
    ScopeWithoutResource = 90055, Never, "prefix the scope with the API's App ID URI, e.g. https://contoso.onmicrosoft.com/api/read";
    /// AADB2C90057: the application does not allow the implicit flow (ROPC with `response_type=token`).
    ImplicitFlowNotAllowed = 90057, Never, "set oauth2AllowImplicitFlow to true in the app manifest, or stop sending response_type";
    /// AADB2C90058: the application does not allow public clients.
    PublicClientNotAllowed = 90058, Never, "in the app registration set \"Allow public client flows\" to Yes (ROPC is a public-client flow)";
    /// AADB2C90079: a confidential grant was redeemed without a client secret.
    ClientSecretRequired = 90079, Never, "this grant was issued to a confidential client: configure the client secret";
    /// AADB2C90080: the grant (refresh token or code) has expired.
    GrantExpired = 90080, Never, "the refresh token expired: sign in again with the original grant";
    /// AADB2C90081: the client secret does not match.
    ClientSecretMismatch = 90081, Never, "the client secret is wrong or expired: create a new secret and use its value, not its ID";
    /// AADB2C90083: a required parameter is missing.
    MissingParameter = 90083, Never, "a required parameter is missing from the request: check the grant's inputs";
    /// AADB2C90084: a public client sent a client secret.
    PublicClientSentSecret = 90084, Never, "ROPC is a public-client flow: drop the client secret from this client";
    /// AADB2C90085: internal error, usually configuration.
    InternalError = 90085, Once, "usually configuration: send the secret in the form body (not Basic auth) and check the b2c-extensions-app still exists";
    /// AADB2C90086: the grant type is not supported.
    UnsupportedGrantType = 90086, Never, "this policy or tenant does not support the grant: for client credentials use a tenant with the feature enabled";
    /// AADB2C90088: the grant was issued for another policy.
    GrantPolicyMismatch = 90088, Never, "redeem the refresh token under the same policy (and client) that issued it";
    /// AADB2C90090: the grant is not a valid token.
    MalformedGrant = 90090, Never, "the refresh token is malformed or truncated: pass it unchanged as B2C returned it";
    /// AADB2C90107: the `openid` scope is missing for an ID token.
    OpenIdScopeMissing = 90107, Never, "add the openid scope to get an id_token";
    /// AADB2C90110: the `openid` scope is missing.
    OpenIdScopeRequired = 90110, Never, "add the openid scope to get an id_token";
    /// AADB2C90111: the account is locked.
    AccountLocked = 90111, Never, "the account is locked: an administrator must unlock it";
    /// AADB2C90114: the account is temporarily locked.
    AccountTemporarilyLocked = 90114, Never, "the account is temporarily locked after failed sign-ins: wait, and fix the credentials before trying again";
    /// AADB2C90118: the user forgot their password.
    PasswordForgotten = 90118, Never, "the user must reset their password interactively";
    /// AADB2C90128: the account that owns the grant no longer exists.
    AccountDeleted = 90128, Never, "the user was deleted: sign in with another account";
    /// AADB2C90129: the grant was revoked.
    GrantRevoked = 90129, Never, "the refresh token was revoked: sign in again with the original grant";
    /// AADB2C90146: the scopes name more than one resource.
    MultipleResources = 90146, Never, "request scopes of one resource per token (not the client ID and an API scope together)";
    /// AADB2C90205: insufficient permissions.
    InsufficientPermissions = 90205, Never, "grant the app the API permissions (and admin consent) it requests";
    /// AADB2C90224: ROPC is not enabled for the application.
    RopcNotEnabled = 90224, Never, "enable the resource owner password flow: use an ROPC user flow and allow public client flows";
    /// AADB2C90225: invalid username or password.
    InvalidCredentials = 90225, Never, "the username or password is wrong (or the user does not exist): do not retry automatically (B2C locks accounts)";
    /// AADB2C90229: throttled.
    Throttled = 90229, Throttled, "B2C is throttling this client: back off and cache tokens longer";
    /// AADB2C90244: too many requests.
    TooManyRequests = 90244, Throttled, "too many requests: wait and retry with back-off, and reuse cached tokens";
    /// AADB2C90248: ROPC needs an app created through the B2C admin portal.
    RopcAppNotFromB2cPortal = 90248, Never, "register the app through the Azure AD B2C blade of the portal";
    /// AADB2C90279: the client ID differs from the one that received the grant.
    GrantClientMismatch = 90279, Never, "redeem the refresh token with the same client ID that received it";
    /// AADB2C90285: application not found.
    ApplicationNotFound = 90285, Never, "check the Application (client) ID and the tenant";
    /// AADB2C99005: illegal character in the scope.
    IllegalScopeCharacter = 99005, Never, "join scopes with spaces, never commas";
    /// AADB2C99013: unsupported grant type / token type combination.
    UnsupportedGrantTokenCombination = 99013, Never, "this grant cannot be combined with the requested token type";
    /// AADB2C99015: the policy lacks the input claims ROPC needs.
    RopcPolicyMissingInputClaims = 99015, Never, "the custom policy is not an ROPC journey: add the input claims it needs, or use an ROPC user flow";
    /// AADB2C99027: client assertions (certificates) are not supported.
    ClientAssertionUnsupported = 99027, Never, "B2C accepts only client secrets for client credentials: use a secret, not a certificate";
}

impl B2cCode {
    /// Finds `AADB2Cnnnnn:` at the start of an `error_description` (after any whitespace).
    ///
    /// ```
    /// use b2c_token::error::B2cCode;
    /// assert_eq!(B2cCode::parse("AADB2C90080: The provided grant has expired."), Some(B2cCode::GrantExpired));
    /// assert_eq!(B2cCode::parse("something else"), None);
    /// ```
    #[must_use]
    pub fn parse(description: &str) -> Option<Self> {
        let rest = description.trim_start().strip_prefix("AADB2C")?;
        let digits = rest.get(..5)?;
        if !digits.bytes().all(|b| b.is_ascii_digit()) || !rest[5..].starts_with(':') {
            return None;
        }
        digits.parse().ok().map(Self::from_number)
    }
}

impl fmt::Display for B2cCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AADB2C{:05}", self.number())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_round_trip() {
        for number in [90008, 90057, 90084, 90225, 99027, 12345] {
            assert_eq!(B2cCode::from_number(number).number(), number);
        }
        assert_eq!(B2cCode::from_number(12345), B2cCode::Other(12345));
    }

    #[test]
    fn parse_requires_five_digits_and_colon() {
        assert_eq!(B2cCode::parse("AADB2C9022: x"), None);
        assert_eq!(B2cCode::parse("AADB2C902255: x"), None);
        assert_eq!(B2cCode::parse("AADB2C9022x: x"), None);
        assert_eq!(B2cCode::parse("AADB2C"), None);
        assert_eq!(B2cCode::parse("AADB2C90225"), None);
        assert_eq!(B2cCode::parse("AADB2C90225:"), Some(B2cCode::InvalidCredentials));
        assert_eq!(B2cCode::parse("AADB2CÄÄÄ: x"), None);
    }

    #[test]
    fn retryable_codes_are_the_documented_ones() {
        assert_eq!(B2cCode::ServiceUnavailable.retry_advice(), RetryAdvice::Transient);
        assert_eq!(B2cCode::Throttled.retry_advice(), RetryAdvice::Throttled);
        assert_eq!(B2cCode::TooManyRequests.retry_advice(), RetryAdvice::Throttled);
        assert_eq!(B2cCode::InternalError.retry_advice(), RetryAdvice::Once);
        assert_eq!(B2cCode::InvalidCredentials.retry_advice(), RetryAdvice::Never);
        assert_eq!(B2cCode::Other(1).retry_advice(), RetryAdvice::Never);
    }

    #[test]
    fn display_pads_to_five_digits() {
        assert_eq!(B2cCode::Other(7).to_string(), "AADB2C00007");
    }
}
