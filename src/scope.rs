//! [`Scopes`]: what a token request asks for. A request input, validated before anything is
//! sent; a [`crate::Token`] remembers the scopes it was requested with.

use std::fmt;

use crate::error::{Error, Result};

/// The scopes requested for a token, in the order given, without duplicates.
///
/// B2C wants them joined with single spaces; a comma is rejected by B2C (AADB2C99005), so
/// it is rejected here before anything is sent.
///
/// ```
/// use b2c_token::Scopes;
/// let scopes = Scopes::new(["https://contoso.onmicrosoft.com/api/.default"])?;
/// assert_eq!(scopes.to_string(), "https://contoso.onmicrosoft.com/api/.default");
/// let parsed = Scopes::parse("openid  offline_access openid")?;
/// assert_eq!(parsed.to_string(), "openid offline_access");
/// assert!(Scopes::parse("read,write").is_err());
/// # Ok::<(), b2c_token::Error>(())
/// ```
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Scopes(
    /// The scopes joined with single spaces, exactly as sent. Validated scopes contain no
    /// whitespace, so this is lossless; shared, so that a cache key, its entry and every
    /// token fetched for it hold one allocation between them.
    std::sync::Arc<str>,
);

impl Scopes {
    /// Scopes from separate items. Each must be a non-empty scope token (RFC 6749 §3.3)
    /// without commas.
    ///
    /// # Errors
    /// [`Error::Config`] for an empty item, whitespace inside an item, a comma, a quote,
    /// a backslash or a control character.
    pub fn new<I, S>(scopes: I) -> Result<Self>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut joined = String::new();
        for scope in scopes {
            let scope = scope.as_ref();
            validate_scope(scope)?;
            if !joined.split(' ').any(|s| s == scope) {
                if !joined.is_empty() {
                    joined.push(' ');
                }
                joined.push_str(scope);
            }
        }
        Ok(Self(joined.into()))
    }

    /// Scopes from one space-separated string, as B2C documents them.
    ///
    /// # Errors
    /// As [`Scopes::new`].
    pub fn parse(space_separated: &str) -> Result<Self> {
        Self::new(space_separated.split_whitespace())
    }

    /// No scopes: the grant's default applies (`openid {client_id} offline_access` for ROPC
    /// and refresh).
    #[must_use]
    pub fn empty() -> Self {
        Self::default()
    }

    /// Whether there are no scopes.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The scopes in order.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.split(' ').filter(|s| !s.is_empty())
    }

    /// The scopes joined with single spaces, as the `scope` form field wants them.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The same set in sorted order: the form cache keys use.
    pub(crate) fn sorted(&self) -> Self {
        let mut list: Vec<&str> = self.iter().collect();
        if list.is_sorted() {
            return self.clone();
        }
        list.sort_unstable();
        Self(list.join(" ").into())
    }
}

fn validate_scope(scope: &str) -> Result<()> {
    if scope.is_empty() {
        return Err(Error::config("a scope is empty"));
    }
    if scope.contains(',') {
        return Err(Error::config(format!(
            "scope {scope:?} contains a comma: pass scopes as separate items (B2C rejects commas with AADB2C99005)"
        )));
    }
    // RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
    if let Some(bad) = scope
        .chars()
        .find(|&c| !matches!(c, '\x21' | '\x23'..='\x5B' | '\x5D'..='\x7E'))
    {
        return Err(Error::config(format!(
            "scope {scope:?} contains {bad:?}, which a scope may not contain"
        )));
    }
    Ok(())
}

impl fmt::Display for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}
