//! What the fake tenant serves besides tokens: routing by B2C's URL forms, discovery and JWKS,
//! and the reply type every handler returns. Plain functions over a parsed request; no HTTP here.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use super::{PolicyKind, State};

/// An HTTP answer.
pub(super) struct Reply {
    pub(super) status: u16,
    pub(super) content_type: &'static str,
    pub(super) body: String,
}

impl Reply {
    pub(super) fn json(status: u16, body: &Value) -> Self {
        Self {
            status,
            content_type: "application/json; charset=utf-8",
            body: body.to_string(),
        }
    }

    pub(super) fn html(status: u16, text: &str) -> Self {
        Self {
            status,
            content_type: "text/html; charset=utf-8",
            body: format!("<!DOCTYPE html><html><head><title>Error</title></head><body><p>{text}</p></body></html>"),
        }
    }
}

/// What a path addresses.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Route {
    Token { policy: String },
    Metadata { policy: String },
    Keys { policy: String },
}

const TOKEN_TAIL: [&str; 3] = ["oauth2", "v2.0", "token"];
const METADATA_TAIL: [&str; 3] = ["v2.0", ".well-known", "openid-configuration"];
const KEYS_TAIL: [&str; 3] = ["discovery", "v2.0", "keys"];

/// Parses every form the SDK builds: `/{tenant}/{policy}/...`, `/{tenant}/...?p={policy}`,
/// `/tfp/{tenant}/{policy}/...` and `/te/...`, with the tenant as domain, name or GUID.
/// `None` is B2C's 404: unknown tenant, unknown policy, or no policy at all.
pub(super) fn route(state: &State, path: &str, query: Option<&str>) -> Option<Route> {
    let segments: Vec<String> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| percent_decode(s).to_ascii_lowercase())
        .collect();
    let mut segments: &[String] = &segments;
    if let Some(first) = segments.first() {
        if first == "tfp" || first == "te" {
            segments = &segments[1..];
        }
    }
    let (tenant, rest) = segments.split_first()?;
    let config = &state.config;
    let tenant_ok = *tenant == format!("{}.onmicrosoft.com", config.tenant) || *tenant == config.tenant_id;
    if !tenant_ok {
        return None;
    }
    if config.kind != crate::authority::AuthorityKind::B2c {
        // Entra and External ID: one authorization server per tenant, no policy.
        let tail: Vec<&str> = rest.iter().map(String::as_str).collect();
        let policy = String::new();
        return match tail.as_slice() {
            t if t == TOKEN_TAIL => Some(Route::Token { policy }),
            t if t == METADATA_TAIL => Some(Route::Metadata { policy }),
            t if t == KEYS_TAIL => Some(Route::Keys { policy }),
            _ => None,
        };
    }
    let query_policy = query.and_then(|q| {
        url::form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == "p")
            .map(|(_, v)| v.into_owned())
    });
    let (policy, tail) = match query_policy {
        Some(policy) => (policy, rest),
        None => {
            let (policy, tail) = rest.split_first()?;
            (policy.clone(), tail)
        }
    };
    let policy = find_policy(state, &policy)?.0.clone();
    let tail: Vec<&str> = tail.iter().map(String::as_str).collect();
    match tail.as_slice() {
        t if t == TOKEN_TAIL => Some(Route::Token { policy }),
        t if t == METADATA_TAIL => Some(Route::Metadata { policy }),
        t if t == KEYS_TAIL => Some(Route::Keys { policy }),
        _ => None,
    }
}

pub(super) fn find_policy<'a>(state: &'a State, name: &str) -> Option<&'a (String, PolicyKind)> {
    state.config.policies.iter().find(|(p, _)| p.eq_ignore_ascii_case(name))
}

fn percent_decode(segment: &str) -> String {
    url::form_urlencoded::parse(format!("x={}", segment.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

pub(super) fn app_id_uri(tenant: &str) -> String {
    format!("https://{tenant}.onmicrosoft.com/api")
}

/// B2C's issuer ends with a slash; Entra's and External ID's v2.0 issuers do not.
pub(super) fn issuer(state: &State) -> String {
    if state.config.kind == crate::authority::AuthorityKind::B2c {
        format!("{}{}/v2.0/", state.base_url, state.config.tenant_id)
    } else {
        format!("{}{}/v2.0", state.base_url, state.config.tenant_id)
    }
}

/// The OpenID discovery document for a policy, as B2C publishes it: endpoints in the
/// query form with the policy lower-cased (b2c-protocol §1.2).
pub(super) fn metadata(state: &State, policy: &str) -> Reply {
    let base = format!("{}{}.onmicrosoft.com", state.base_url, state.config.tenant);
    let p = policy.to_ascii_lowercase();
    Reply::json(
        200,
        &json!({
            "issuer": issuer(state),
            "authorization_endpoint": format!("{base}/oauth2/v2.0/authorize?p={p}"),
            "token_endpoint": format!("{base}/oauth2/v2.0/token?p={p}"),
            "end_session_endpoint": format!("{base}/oauth2/v2.0/logout?p={p}"),
            "jwks_uri": format!("{base}/discovery/v2.0/keys?p={p}"),
            "response_modes_supported": ["query", "fragment", "form_post"],
            "response_types_supported": ["code", "code id_token", "code token", "code id_token token", "id_token", "id_token token", "token", "token id_token"],
            "scopes_supported": ["openid"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
            "claims_supported": ["name", "emails", "idp", "sub", "tfp", "iss", "iat", "exp", "aud", "acr", "nonce", "auth_time"],
        }),
    )
}

pub(super) fn keys(state: &State) -> Reply {
    Reply::json(200, &state.keys.jwks())
}

pub(super) fn epoch(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}
