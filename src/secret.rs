//! Secret-carrying newtypes: client secret, password, and the three tokens.
//!
//! Every one wraps a [`secrecy::SecretString`], so the bytes are zeroized on drop, `Debug`
//! prints only the type name and `[REDACTED]`, and there is no `Display` and no `PartialEq`
//! that could leak a secret through a log line or a timing side channel. Reading the value
//! is always an explicit `expose_secret()` call, easy to find in review.

use secrecy::{ExposeSecret, SecretString};

macro_rules! secret_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone)]
        pub struct $name(SecretString);

        impl $name {
            /// Wraps a secret value. The value is zeroized when the last copy is dropped.
            #[must_use]
            pub fn new(value: impl Into<String>) -> Self {
                Self(SecretString::from(value.into()))
            }

            /// The secret value itself. Call this only where the value must leave the
            /// process (a request body or header); never log the result.
            #[must_use]
            pub fn expose_secret(&self) -> &str {
                self.0.expose_secret()
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(concat!(stringify!($name), "([REDACTED])"))
            }
        }

        impl From<String> for $name {
            fn from(value: String) -> Self {
                Self::new(value)
            }
        }

        impl From<&str> for $name {
            fn from(value: &str) -> Self {
                Self::new(value)
            }
        }

        impl From<SecretString> for $name {
            fn from(value: SecretString) -> Self {
                Self(value)
            }
        }
    };
}

secret_type! {
    /// A confidential client's secret (the *value* shown once in the portal, not its ID).
    ///
    /// ```
    /// let secret = b2c_token::ClientSecret::new("s3cr3t");
    /// assert_eq!(format!("{secret:?}"), "ClientSecret([REDACTED])");
    /// ```
    ClientSecret
}

secret_type! {
    /// A user's password for the resource-owner password (ROPC) grant.
    ///
    /// ```
    /// let password = b2c_token::Password::new("hunter2");
    /// assert!(!format!("{password:?}").contains("hunter2"));
    /// ```
    Password
}

secret_type! {
    /// An access token: the bearer credential sent to protected APIs.
    ///
    /// ```
    /// let token = b2c_token::secret::AccessToken::new("eyJ0eXAi...");
    /// assert_eq!(format!("{token:?}"), "AccessToken([REDACTED])");
    /// ```
    AccessToken
}

secret_type! {
    /// An OpenID Connect ID token (a JWT describing the signed-in user).
    ///
    /// ```
    /// let token = b2c_token::secret::IdToken::new("eyJ0eXAi...");
    /// assert_eq!(format!("{token:?}"), "IdToken([REDACTED])");
    /// ```
    IdToken
}

secret_type! {
    /// A refresh token: an opaque, long-lived grant that B2C rotates on every use.
    /// Never parse it; always keep the newest one.
    ///
    /// ```
    /// let token = b2c_token::secret::RefreshToken::new("eyJraWQi...");
    /// assert_eq!(format!("{token:?}"), "RefreshToken([REDACTED])");
    /// ```
    RefreshToken
}

impl AccessToken {
    /// A short prefix that is safe to show a person (`eyJ0eX…`), for logs and demos:
    /// the first 6 characters, which for a JWT is only the start of the public header.
    ///
    /// ```
    /// let token = b2c_token::secret::AccessToken::new("eyJ0eXAiOiJKV1Qi");
    /// assert_eq!(token.redacted_prefix(), "eyJ0eX…");
    /// ```
    #[must_use]
    pub fn redacted_prefix(&self) -> String {
        let prefix: String = self.expose_secret().chars().take(6).collect();
        format!("{prefix}…")
    }

    /// Eight hex digits that tell tokens apart without showing them, for logs and demos
    /// (every JWT starts with the same `eyJ…`, so a prefix cannot). A 32-bit hash: it
    /// identifies, it does not reveal.
    ///
    /// ```
    /// let a = b2c_token::secret::AccessToken::new("eyJ0eXAi.one.sig");
    /// let b = b2c_token::secret::AccessToken::new("eyJ0eXAi.two.sig");
    /// assert_ne!(a.fingerprint(), b.fingerprint());
    /// assert_eq!(a.fingerprint().len(), 8);
    /// ```
    #[must_use]
    pub fn fingerprint(&self) -> String {
        use std::hash::{Hash, Hasher};
        // DefaultHasher::new() has fixed keys: the same token gives the same fingerprint in
        // every process, so log lines from several replicas can be compared.
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        self.expose_secret().hash(&mut hasher);
        format!("{:08x}", hasher.finish() as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted_for_every_secret_type() {
        let value = "very-secret-value";
        let debugs = [
            format!("{:?}", ClientSecret::new(value)),
            format!("{:?}", Password::new(value)),
            format!("{:?}", AccessToken::new(value)),
            format!("{:?}", IdToken::new(value)),
            format!("{:?}", RefreshToken::new(value)),
        ];
        for debug in debugs {
            assert!(!debug.contains(value), "{debug}");
            assert!(debug.ends_with("([REDACTED])"), "{debug}");
        }
    }

    #[test]
    fn expose_secret_returns_the_value() {
        assert_eq!(Password::from("p@ss word").expose_secret(), "p@ss word");
    }
}
