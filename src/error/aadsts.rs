//! Microsoft Entra's `AADSTSnnnnn` codes (Entra ID and Entra External ID), beside B2C's own.
//!
//! Entra writes the code at the start of `error_description`
//! (`AADSTS7000215: Invalid client secret provided. …\r\nTrace ID: …\r\nCorrelation ID: …\r\nTimestamp: …`)
//! and again as the first number of the body's `error_codes` array.

use std::fmt;

use super::b2c_code::RetryAdvice;

/// A parsed `AADSTSnnnnn` code from an Entra error response. `Display` prints it as Entra
/// writes it; [`AadstsCode::hint`] says what to do for the common ones.
///
/// ```
/// use b2c_token::error::AadstsCode;
/// let code = AadstsCode::parse("AADSTS7000222: The provided client secret keys are expired.").unwrap();
/// assert_eq!(code.number(), 7000222);
/// assert_eq!(code.to_string(), "AADSTS7000222");
/// assert!(code.hint().unwrap().contains("expired"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AadstsCode(u32);

/// (number, what to do, retry advice) for the codes daemons and back-ends meet.
const KNOWN: &[(u32, &str, RetryAdvice)] = &[
    (7000215, "the client secret is wrong: use the secret's Value (not its Secret ID) from the app's Certificates & secrets", RetryAdvice::Never),
    (7000222, "the client secret has expired: create a new one under Certificates & secrets and deploy it", RetryAdvice::Never),
    (7000218, "the app is confidential: configure a client secret or certificate (or allow public client flows for ROPC)", RetryAdvice::Never),
    (700025, "the app is a public client: send no secret or assertion (or make it confidential)", RetryAdvice::Never),
    (700027, "the client assertion's signature does not verify: upload this certificate's public part to the app (Certificates & secrets), or use the matching private key", RetryAdvice::Never),
    (700023, "the client assertion's audience is wrong: it must be the token endpoint", RetryAdvice::Never),
    (700024, "the client assertion is outside its validity window: check this machine's clock", RetryAdvice::Once),
    (7000274, "the client assertion's key is not registered on the app: upload the certificate (or check its thumbprint)", RetryAdvice::Never),
    (70021, "no federated credential on the app matches the assertion (issuer, subject, audience): check the app's federated credentials against the workload's service account", RetryAdvice::Never),
    (700211, "no federated credential on the app has the assertion's issuer: add the cluster's OIDC issuer URL to the app's federated credential", RetryAdvice::Never),
    (700213, "no federated credential on the app has the assertion's subject: check the service account namespace and name", RetryAdvice::Never),
    (700016, "no app with this client ID exists in this tenant: check the client ID, and that the tenant is the app's (wrong tenant?)", RetryAdvice::Never),
    (90002, "the tenant does not exist: check the tenant ID or domain, and the cloud (AZURE_AUTHORITY_HOST)", RetryAdvice::Never),
    (900023, "the tenant is not a valid tenant ID or domain: check it", RetryAdvice::Never),
    (65001, "consent is missing: an administrator must grant consent to the app's API permissions (Grant admin consent)", RetryAdvice::Never),
    (70011, "the scope is not valid: client credentials need `{resource}/.default`", RetryAdvice::Never),
    (500011, "the scope's resource (API) is not in this tenant: check the App ID URI in the scope, and consent", RetryAdvice::Never),
    (50126, "wrong username or password: fix the credentials and do not retry automatically (accounts lock)", RetryAdvice::Never),
    (50034, "the user does not exist in this tenant", RetryAdvice::Never),
    (50053, "the account is locked after too many failed sign-ins: wait, and stop retrying", RetryAdvice::Never),
    (50055, "the user's password has expired: reset it interactively", RetryAdvice::Never),
    (50057, "the user account is disabled", RetryAdvice::Never),
    (50076, "multi-factor authentication is required, which the password grant (ROPC) cannot do: use client credentials, or an interactive flow", RetryAdvice::Never),
    (50079, "the user must register for multi-factor authentication, which ROPC cannot do: use client credentials, or an interactive flow", RetryAdvice::Never),
    (53003, "a Conditional Access policy blocked the sign-in: ask the tenant's administrator", RetryAdvice::Never),
    (70008, "the refresh token or code has expired or was revoked: sign in again", RetryAdvice::Never),
    (700082, "the refresh token expired after inactivity: sign in again", RetryAdvice::Never),
    (70003, "the server does not support this grant for this app or authority", RetryAdvice::Never),
    (50196, "the client is looping on the same request: back off and cache tokens", RetryAdvice::Throttled),
];

impl AadstsCode {
    /// The code for a number (the digits after `AADSTS`).
    #[must_use]
    pub const fn from_number(number: u32) -> Self {
        Self(number)
    }

    /// The number after `AADSTS`.
    #[must_use]
    pub const fn number(self) -> u32 {
        self.0
    }

    /// The code at the start of an `error_description`: `AADSTS` and 5 to 8 digits, then `:`.
    #[must_use]
    pub fn parse(description: &str) -> Option<Self> {
        let rest = description.trim_start().strip_prefix("AADSTS")?;
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if !(5..=8).contains(&digits) || rest.as_bytes().get(digits) != Some(&b':') {
            return None;
        }
        rest[..digits].parse().ok().map(Self)
    }

    /// What to do, for the codes this version knows.
    #[must_use]
    pub fn hint(self) -> Option<&'static str> {
        KNOWN.iter().find(|(n, ..)| *n == self.0).map(|(_, hint, _)| *hint)
    }

    /// Whether repeating the request may help; unknown codes defer to the HTTP status.
    #[must_use]
    pub fn retry_advice(self) -> Option<RetryAdvice> {
        KNOWN.iter().find(|(n, ..)| *n == self.0).map(|(.., advice)| *advice)
    }
}

impl fmt::Display for AadstsCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AADSTS{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_only_well_formed_prefixes() {
        assert_eq!(
            AadstsCode::parse("AADSTS50126: Error validating credentials."),
            Some(AadstsCode(50126))
        );
        assert_eq!(AadstsCode::parse("AADSTS7000215: x"), Some(AadstsCode(7000215)));
        for bad in [
            "AADSTS5012: x",
            "AADSTS123456789: x",
            "AADSTS50126 x",
            "AADSTS",
            "aadsts50126: x",
            "AADSTSÄ: x",
            "",
        ] {
            assert_eq!(AadstsCode::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn every_known_code_has_a_hint_and_is_listed_once() {
        for (i, (number, hint, _)) in KNOWN.iter().enumerate() {
            assert!(!hint.is_empty());
            assert!(KNOWN[i + 1..].iter().all(|(n, ..)| n != number), "{number} twice");
        }
    }
}
