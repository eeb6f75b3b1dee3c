//! [`Claims`]: what a validated B2C token says, typed, with the raw map for the rest.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value};

/// The claims of a validated token: who (`sub`, `oid`, `name`, `emails`), through which
/// policy, with which scopes and roles, until when; any other claim through
/// [`Claims::get`]. A cheap-to-clone handle: the tower layer puts it in the request's
/// extensions, and the axum extractor (feature `axum`) hands it to handlers.
///
/// `Debug` lists the typed fields only; the raw map can hold whatever the tenant's policy
/// adds, so it is left out.
#[derive(Clone)]
pub struct Claims(Arc<Inner>);

struct Inner {
    audience: String,
    expires_at: u64,
    raw: Map<String, Value>,
}

impl Claims {
    /// Typed reads go to the map when asked: validating builds nothing it may not need.
    pub(super) fn new(raw: Map<String, Value>, audience: String, expires_at: u64) -> Self {
        Self(Arc::new(Inner {
            audience,
            expires_at,
            raw,
        }))
    }

    fn text(&self, name: &str) -> Option<&str> {
        self.0.raw.get(name).and_then(Value::as_str)
    }

    /// A claim that is a string or an array of strings.
    fn strings(&self, name: &str) -> impl Iterator<Item = &str> {
        let (one, many) = match self.0.raw.get(name) {
            Some(Value::String(one)) => (Some(one.as_str()), None),
            Some(Value::Array(items)) => (None, Some(items.iter().filter_map(Value::as_str))),
            _ => (None, None),
        };
        one.into_iter().chain(many.into_iter().flatten())
    }

    /// `sub`: the user's object ID for user tokens (B2C's default subject), the client ID
    /// for client-credentials tokens.
    #[must_use]
    pub fn subject(&self) -> Option<&str> {
        self.text("sub")
    }

    /// `oid`: the object ID of the user or service principal.
    #[must_use]
    pub fn object_id(&self) -> Option<&str> {
        self.text("oid")
    }

    /// `name`: the display name, when the policy returns it.
    #[must_use]
    pub fn name(&self) -> Option<&str> {
        self.text("name")
    }

    /// `emails`, when the policy returns them.
    pub fn emails(&self) -> impl Iterator<Item = &str> {
        self.strings("emails")
    }

    /// The policy that issued the token (`tfp`, or `acr` for older tenants).
    #[must_use]
    pub fn policy(&self) -> Option<&str> {
        policy_of(&self.0.raw)
    }

    /// The scopes granted (`scp`, space-separated). For client-credentials tokens B2C puts
    /// the granted app roles here.
    pub fn scopes(&self) -> impl Iterator<Item = &str> {
        self.text("scp").unwrap_or_default().split_whitespace()
    }

    /// The app roles granted (`roles`).
    pub fn roles(&self) -> impl Iterator<Item = &str> {
        self.strings("roles")
    }

    /// Whether the token was issued to an application acting for itself (client credentials),
    /// not for a user: Entra says so with `idtyp: "app"`, or by app roles without scopes; B2C
    /// by a subject that is the client itself (`sub` = `azp`).
    #[must_use]
    pub fn is_app_only(&self) -> bool {
        self.text("idtyp") == Some("app")
            || (self.text("scp").is_none() && self.roles().next().is_some())
            || self.text("sub").is_some_and(|sub| Some(sub) == self.text("azp"))
    }

    /// Whether the token grants `scope`, in `scp` or as a role.
    #[must_use]
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes().chain(self.roles()).any(|s| s == scope)
    }

    /// `iss`.
    #[must_use]
    pub fn issuer(&self) -> &str {
        self.text("iss").unwrap_or_default()
    }

    /// The audience that matched one of the API's client IDs.
    #[must_use]
    pub fn audience(&self) -> &str {
        &self.0.audience
    }

    /// `exp` as a time.
    #[must_use]
    pub fn expires_at(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(self.0.expires_at)
    }

    /// Any claim by name, as JSON: custom claims your policy adds (`extension_…`, `idp`, ...).
    #[must_use]
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.0.raw.get(name)
    }

    /// Every claim.
    #[must_use]
    pub fn raw(&self) -> &Map<String, Value> {
        &self.0.raw
    }
}

/// The policy a B2C token names: `tfp`, else `acr`.
pub(super) fn policy_of(claims: &Map<String, Value>) -> Option<&str> {
    ["tfp", "acr"]
        .iter()
        .find_map(|name| claims.get(*name).and_then(Value::as_str))
}

impl fmt::Debug for Claims {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Claims")
            .field("subject", &self.subject())
            .field("object_id", &self.object_id())
            .field("policy", &self.policy())
            .field("scopes", &self.scopes().collect::<Vec<_>>())
            .field("roles", &self.roles().collect::<Vec<_>>())
            .field("issuer", &self.issuer())
            .field("audience", &self.0.audience)
            .field("expires_at", &self.0.expires_at)
            .finish_non_exhaustive()
    }
}
