//! The fake tenant's token endpoint: the three grants with B2C's error codes, refresh-token
//! records with rotation and revocation. Plain functions over a parsed request; no HTTP here.

use std::time::{Duration, SystemTime};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{json, Map, Value};
use tokio::time::Instant;

use super::request::TokenRequest;
use super::timestamps::b2c_timestamp;
use super::{PolicyKind, State, User};

use super::routes::{app_id_uri, epoch, find_policy, issuer, Reply};

/// A redeemable refresh token's record.
pub(super) struct RefreshGrant {
    pub(super) username: Option<String>,
    client_id: String,
    policy: String,
    scope: String,
    expires_at: Instant,
    pub(super) revoked: bool,
    redeemed: bool,
}

/// The token endpoint.
pub(super) fn token(state: &State, request: &TokenRequest<'_>) -> Reply {
    if request.basic_auth {
        // Observed B2C behaviour for client_secret_basic (b2c-protocol §3).
        return b2c_error(
            "invalid_grant",
            90085,
            "The service has encountered an internal error. Please reauthenticate and try again.",
        );
    }
    let Some(client_id) = request.field("client_id") else {
        return b2c_error(
            "invalid_request",
            90008,
            "The request does not contain a client id parameter.",
        );
    };
    match request.field("grant_type") {
        Some("password") => password(state, request, client_id),
        Some("client_credentials") => client_credentials(state, request, client_id),
        Some("refresh_token") => refresh(state, request, client_id),
        Some(other) => b2c_error(
            "unsupported_grant_type",
            90086,
            &format!("The supplied grant_type [{other}] is not supported."),
        ),
        None => b2c_error(
            "invalid_request",
            90083,
            "The request is missing required parameter: grant_type.",
        ),
    }
}

fn password(state: &State, request: &TokenRequest<'_>, client_id: &str) -> Reply {
    let config = &state.config;
    if request.field("client_secret").is_some() {
        return b2c_error(
            "invalid_request",
            90084,
            "Public clients should not send a client_secret when redeeming a publicly acquired grant.",
        );
    }
    if !config.public_clients.iter().any(|c| c == client_id) {
        if config.confidential_clients.iter().any(|c| c.client_id == client_id) {
            return b2c_error(
                "invalid_request",
                90058,
                "The provided application is not configured to allow public clients.",
            );
        }
        return b2c_error("invalid_request", 90018, &format!("The client id '{client_id}' specified in the request is not registered in tenant '{}.onmicrosoft.com'.", config.tenant));
    }
    if find_policy(state, request.policy).is_some_and(|(_, kind)| *kind != PolicyKind::Ropc) {
        return b2c_error(
            "invalid_request",
            90224,
            "Resource owner flow has not been enabled for the application.",
        );
    }
    let (Some(username), Some(password)) = (request.field("username"), request.field("password")) else {
        return b2c_error(
            "invalid_request",
            90083,
            "The request is missing required parameter: username or password.",
        );
    };
    let Some(user) = config
        .users
        .iter()
        .find(|u| u.username.eq_ignore_ascii_case(username) && u.password == password)
    else {
        // B2C's ROPC answers unknown users and wrong passwords alike (b2c-protocol §6.2).
        return b2c_error(
            "access_denied",
            90225,
            "The username or password provided in the request are invalid.",
        );
    };
    let scope = request.field("scope").unwrap_or_default().to_owned();
    issue_user_tokens(state, request.policy, client_id, user, &scope, false)
}

/// Tokens for a user: access token for the requested resource, ID token with `openid`,
/// refresh token with `offline_access`.
fn issue_user_tokens(state: &State, policy: &str, client_id: &str, user: &User, scope: &str, refreshed: bool) -> Reply {
    if scope.is_empty() {
        return b2c_error(
            "invalid_request",
            90010,
            "The request does not contain a scope parameter.",
        );
    }
    if scope.contains(',') {
        return b2c_error(
            "invalid_request",
            99005,
            "The request contains an invalid scope parameter which includes an illegal character ','.",
        );
    }
    let api = app_id_uri(&state.config.tenant);
    let mut audience: Option<(String, Option<String>)> = None; // (aud, scp)
    let mut api_scopes: Vec<&str> = Vec::new();
    for item in scope.split_whitespace() {
        match item {
            "openid" | "offline_access" | "profile" => {}
            id if id == client_id => {
                if audience.is_some() {
                    return b2c_error("invalid_request", 90146, "The scope provided in request specifies more than one resource for an access token, which is not supported.");
                }
                audience = Some((client_id.to_owned(), None));
            }
            other => match other.strip_prefix(&format!("{api}/")) {
                Some(name) if !name.is_empty() && name != ".default" => api_scopes.push(name),
                _ => {
                    return b2c_error(
                        "invalid_request",
                        90117,
                        &format!("The scope '{other}' provided in request is not supported."),
                    )
                }
            },
        }
    }
    if !api_scopes.is_empty() {
        if audience.is_some() {
            return b2c_error("invalid_request", 90146, "The scope provided in request specifies more than one resource for an access token, which is not supported.");
        }
        audience = Some((state.config.api_client_id.clone(), Some(api_scopes.join(" "))));
    }
    let now = SystemTime::now();
    let lifetime = state.config.access_token_lifetime.as_secs();
    let mut response = Map::new();
    if let Some((aud, scp)) = &audience {
        let claims = user_claims(state, policy, user, aud, scp.as_deref().map(|scp| (scp, client_id)));
        response.insert("access_token".into(), json!(state.keys.sign(&Value::Object(claims))));
    }
    let scopes: Vec<&str> = scope.split_whitespace().collect();
    if scopes.contains(&"openid") {
        let claims = user_claims(state, policy, user, client_id, None);
        response.insert("id_token".into(), json!(state.keys.sign(&Value::Object(claims))));
    }
    if !response.contains_key("access_token") && !response.contains_key("id_token") {
        return b2c_error(
            "invalid_request",
            90055,
            "The scope provided in the request must specify a resource.",
        );
    }
    response.insert("token_type".into(), json!("Bearer"));
    if scopes.contains(&"offline_access") {
        let refresh = new_refresh_token(state, Some(&user.username), client_id, policy, scope);
        response.insert("refresh_token".into(), json!(refresh));
    }
    if refreshed {
        // B2C's refresh responses use numbers and carry the extra fields (fixture F2).
        response.insert("not_before".into(), json!(epoch(now)));
        response.insert("expires_on".into(), json!(epoch(now) + lifetime));
        if response.contains_key("access_token") {
            response.insert("expires_in".into(), json!(lifetime));
        }
        response.insert("id_token_expires_in".into(), json!(lifetime));
        response.insert(
            "refresh_token_expires_in".into(),
            json!(state.config.refresh_token_lifetime.as_secs()),
        );
        if let Some((aud, _)) = audience {
            response.insert("resource".into(), json!(aud));
        }
    } else if response.contains_key("access_token") {
        // B2C's first ROPC response sends expires_in as a string (fixture F1).
        response.insert("expires_in".into(), json!(lifetime.to_string()));
    }
    Reply::json(200, &Value::Object(response))
}

/// A user's token claims as B2C issues them, for audience `aud`; `scope` is the granted
/// `scp` and the `azp` that goes with it (both absent when the client ID itself was the scope,
/// b2c-protocol §7).
fn user_claims(state: &State, policy: &str, user: &User, aud: &str, scope: Option<(&str, &str)>) -> Map<String, Value> {
    let now = epoch(SystemTime::now());
    let lifetime = state.config.access_token_lifetime.as_secs();
    let mut claims = Map::new();
    claims.insert("iss".into(), json!(issuer(state)));
    claims.insert("exp".into(), json!(now + lifetime));
    claims.insert("nbf".into(), json!(now));
    claims.insert("iat".into(), json!(now));
    claims.insert("aud".into(), json!(aud));
    claims.insert("oid".into(), json!(user.object_id));
    claims.insert("sub".into(), json!(user.object_id));
    claims.insert("name".into(), json!(user.display_name));
    claims.insert("emails".into(), json!([user.username]));
    claims.insert("idp".into(), json!("LocalAccount"));
    claims.insert("tfp".into(), json!(policy));
    claims.insert("ver".into(), json!("1.0"));
    if let Some((scp, azp)) = scope {
        claims.insert("scp".into(), json!(scp));
        claims.insert("azp".into(), json!(azp));
    }
    claims
}

/// An API access token's claims for the tenant's first user, as `issue_user_tokens` makes them
/// (through the public client).
pub(super) fn access_token_claims(state: &State, policy: &str, scopes: &[&str]) -> Map<String, Value> {
    let nobody = User {
        username: String::new(),
        password: String::new(),
        object_id: uuid::Uuid::nil().to_string(),
        display_name: String::new(),
    };
    let user = state.config.users.first().unwrap_or(&nobody);
    let policy = find_policy(state, policy).map_or(policy, |(p, _)| p.as_str());
    let scp = scopes.join(" ");
    let granted = (!scopes.is_empty()).then_some((scp.as_str(), crate::test_tenant::defaults::PUBLIC_CLIENT_ID));
    user_claims(state, policy, user, &state.config.api_client_id, granted)
}

fn new_refresh_token(state: &State, username: Option<&str>, client_id: &str, policy: &str, scope: &str) -> String {
    // B2C's refresh tokens are 5-segment JWE-like strings starting with this header.
    let header = URL_SAFE_NO_PAD.encode(r#"{"kid":"cpimcore_09252015","ver":"1.0","zip":"Deflate","ser":"1.0"}"#);
    let token = format!(
        "{header}.{}.{}.{}.fake",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    let grant = RefreshGrant {
        username: username.map(str::to_owned),
        client_id: client_id.to_owned(),
        policy: policy.to_owned(),
        scope: scope.to_owned(),
        expires_at: Instant::now() + state.config.refresh_token_lifetime,
        revoked: false,
        redeemed: false,
    };
    let mut guard = state.lock();
    // Grants that expired over a minute ago are forgotten (a redeem then answers "not a valid
    // grant" rather than "expired"), so a long-running tenant's memory stays flat.
    let forget_before = Instant::now().checked_sub(Duration::from_secs(60));
    guard
        .refresh_grants
        .retain(|_, grant| forget_before.is_none_or(|limit| grant.expires_at > limit));
    guard.refresh_grants.insert(token.clone(), grant);
    token
}

fn client_credentials(state: &State, request: &TokenRequest<'_>, client_id: &str) -> Reply {
    let config = &state.config;
    let Some(app) = config.confidential_clients.iter().find(|c| c.client_id == client_id) else {
        if config.public_clients.iter().any(|c| c == client_id) {
            return b2c_error(
                "invalid_request",
                90079,
                "Clients must send a client_secret when redeeming a confidential grant.",
            );
        }
        return b2c_error("invalid_request", 90018, &format!("The client id '{client_id}' specified in the request is not registered in tenant '{}.onmicrosoft.com'.", config.tenant));
    };
    if request.field("client_assertion").is_some() {
        return b2c_error("invalid_request", 99027, &format!("Policy '{}' does not contain a AuthorizationTechnicalProfile with a corresponding ClientAssertionType.", request.policy));
    }
    match request.field("client_secret") {
        None => return b2c_error("invalid_request", 90079, "Clients must send a client_secret when redeeming a confidential grant."),
        Some(secret) if secret != app.secret => {
            return b2c_error("invalid_client", 90081, "The specified client_secret does not match the expected value for this client. Please correct the client_secret and try again.")
        }
        Some(_) => {}
    }
    let expected = format!("{}/.default", app_id_uri(&config.tenant));
    match request.field("scope") {
        None => {
            return b2c_error(
                "invalid_request",
                90010,
                "The request does not contain a scope parameter.",
            )
        }
        Some(scope) if scope.contains(',') => {
            return b2c_error(
                "invalid_request",
                99005,
                "The request contains an invalid scope parameter which includes an illegal character ','.",
            )
        }
        Some(scope) if scope != expected => {
            return b2c_error(
                "invalid_request",
                90117,
                &format!("The scope '{scope}' provided in request is not supported."),
            )
        }
        Some(_) => {}
    }
    let now = SystemTime::now();
    let lifetime = config.access_token_lifetime.as_secs();
    let claims = json!({
        "iss": issuer(state),
        "exp": epoch(now) + lifetime,
        "nbf": epoch(now),
        "iat": epoch(now),
        "aud": config.api_client_id,
        "sub": client_id,
        "azp": client_id,
        "oid": uuid::Uuid::new_v4().to_string(),
        "tfp": request.policy,
        "scp": app.roles.join(" "),
        "azpacr": "1",
        "ver": "2.0",
    });
    // B2C's client-credentials response: numbers, no id_token, no refresh_token (fixture F4).
    Reply::json(
        200,
        &json!({
            "access_token": state.keys.sign(&claims),
            "token_type": "Bearer",
            "not_before": epoch(now),
            "expires_in": lifetime,
            "expires_on": epoch(now) + lifetime,
            "resource": config.api_client_id,
        }),
    )
}

fn refresh(state: &State, request: &TokenRequest<'_>, client_id: &str) -> Reply {
    let Some(presented) = request.field("refresh_token") else {
        return b2c_error(
            "invalid_request",
            90083,
            "The request is missing required parameter: refresh_token.",
        );
    };
    if presented.split('.').count() != 5 {
        return b2c_error(
            "invalid_grant",
            90090,
            "The provided JWE is not a valid 5 segment token.",
        );
    }
    let keep_old = state.config.old_refresh_tokens_stay_valid;
    let (username, scope) = {
        let mut guard = state.lock();
        let Some(grant) = guard.refresh_grants.get_mut(presented) else {
            return b2c_error("invalid_grant", 90090, "The provided grant is not valid.");
        };
        if grant.revoked || (grant.redeemed && !keep_old) {
            return b2c_error(
                "invalid_grant",
                90129,
                "The provided grant has been revoked. Please reauthenticate and try again.",
            );
        }
        if Instant::now() >= grant.expires_at {
            return b2c_error(
                "invalid_grant",
                90080,
                &format!(
                    "The provided grant has expired. Please re-authenticate and try again. Current time: {}",
                    epoch(SystemTime::now())
                ),
            );
        }
        if !grant.policy.eq_ignore_ascii_case(request.policy) {
            return b2c_error("invalid_grant", 90088, &format!("The provided grant has not been issued for this endpoint. Actual Value : {} and Expected Value : {}", request.policy, grant.policy));
        }
        if grant.client_id != client_id {
            return b2c_error(
                "invalid_grant",
                90279,
                &format!("The provided client id '{client_id}' does not match the client id that issued the grant."),
            );
        }
        if request.field("client_secret").is_some() && grant.username.is_some() {
            return b2c_error(
                "invalid_request",
                90084,
                "Public clients should not send a client_secret when redeeming a publicly acquired grant.",
            );
        }
        grant.redeemed = true;
        (
            grant.username.clone(),
            request
                .field("scope")
                .map_or_else(|| grant.scope.clone(), str::to_owned),
        )
    };
    let Some(user) = username.and_then(|name| state.config.users.iter().find(|u| u.username == name)) else {
        return b2c_error(
            "invalid_grant",
            90128,
            "The account associated with this grant no longer exists. Please reauthenticate and try again.",
        );
    };
    issue_user_tokens(state, request.policy, client_id, user, &scope, true)
}

/// B2C's error body: `AADB2Cnnnnn: message\r\nCorrelation ID: ...\r\nTimestamp: ...\r\n`.
fn b2c_error(error: &str, code: u32, message: &str) -> Reply {
    let description = format!(
        "AADB2C{code:05}: {message}\r\nCorrelation ID: {}\r\nTimestamp: {}\r\n",
        uuid::Uuid::new_v4(),
        b2c_timestamp(SystemTime::now())
    );
    Reply::json(400, &json!({ "error": error, "error_description": description }))
}
