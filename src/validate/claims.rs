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
    subject: Option<String>,
    object_id: Option<String>,
    name: Option<String>,
    emails: Vec<String>,
    policy: Option<String>,
    scopes: Vec<String>,
    roles: Vec<String>,
    issuer: String,
    audience: String,
    expires_at: u64,
    raw: Map<String, Value>,
}

impl Claims {
    pub(super) fn new(raw: Map<String, Value>, issuer: String, audience: String, expires_at: u64) -> Self {
        let text = |name: &str| raw.get(name).and_then(Value::as_str).map(str::to_owned);
        let strings = |name: &str| match raw.get(name) {
            Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).map(str::to_owned).collect(),
            Some(Value::String(one)) => vec![one.clone()],
            _ => Vec::new(),
        };
        let scopes = text("scp")
            .map(|scp| scp.split_whitespace().map(str::to_owned).collect())
            .unwrap_or_default();
        Self(Arc::new(Inner {
            subject: text("sub"),
            object_id: text("oid"),
            name: text("name"),
            emails: strings("emails"),
            policy: policy_of(&raw).map(str::to_owned),
            scopes,
            roles: strings("roles"),
            issuer,
            audience,
            expires_at,
            raw,
        }))
    }

    /// `sub`: the user's object ID for user tokens (B2C's default subject), the client ID
    /// for client-credentials tokens.
    #[must_use]
    pub fn subject(&self) -> Option<&str> {
        self.0.subject.as_deref()
    }

    /// `oid`: the object ID of the user or service principal.
    #[must_use]
    pub fn object_id(&self) -> Option<&str> {
        self.0.object_id.as_deref()
    }

    /// `name`: the display name, when the policy returns it.
    #[must_use]
    pub fn name(&self) -> Option<&str> {
        self.0.name.as_deref()
    }

    /// `emails`, when the policy returns them.
    #[must_use]
    pub fn emails(&self) -> &[String] {
        &self.0.emails
    }

    /// The policy that issued the token (`tfp`, or `acr` for older tenants).
    #[must_use]
    pub fn policy(&self) -> Option<&str> {
        self.0.policy.as_deref()
    }

    /// The scopes granted (`scp`, space-separated). For client-credentials tokens B2C puts
    /// the granted app roles here.
    #[must_use]
    pub fn scopes(&self) -> &[String] {
        &self.0.scopes
    }

    /// The app roles granted (`roles`).
    #[must_use]
    pub fn roles(&self) -> &[String] {
        &self.0.roles
    }

    /// Whether the token grants `scope`, in `scp` or as a role.
    #[must_use]
    pub fn has_scope(&self, scope: &str) -> bool {
        self.0.scopes.iter().chain(&self.0.roles).any(|s| s == scope)
    }

    /// `iss`.
    #[must_use]
    pub fn issuer(&self) -> &str {
        &self.0.issuer
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
            .field("subject", &self.0.subject)
            .field("object_id", &self.0.object_id)
            .field("policy", &self.0.policy)
            .field("scopes", &self.0.scopes)
            .field("roles", &self.0.roles)
            .field("issuer", &self.0.issuer)
            .field("audience", &self.0.audience)
            .field("expires_at", &self.0.expires_at)
            .finish_non_exhaustive()
    }
}
