//! The fake tenant as Entra External ID or Entra ID (`FakeTenantBuilder::kind`): one token
//! endpoint per tenant (no policies), `AADSTS` errors shaped as Entra sends them, client
//! secrets, certificate assertions (signature against the registered certificate,
//! `x5t#S256`, `aud`, `iss`/`sub`, time window, `jti` replay) and federated assertions.
//! Plain functions over a parsed request; no HTTP here.

use std::time::SystemTime;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{json, Map, Value};

use super::request::TokenRequest;
use super::routes::{app_id_uri, epoch, issuer, Reply};
use super::timestamps::b2c_timestamp;
use super::{CertificateApp, State};
use crate::authority::AuthorityKind;

/// The audience Entra requires of federated tokens.
pub(super) const FEDERATED_AUDIENCE: &str = "api://AzureADTokenExchange";

/// An Entra error: `AADSTSnnnnn: …\r\nTrace ID: …\r\nCorrelation ID: …\r\nTimestamp: …` and
/// the `error_codes` array.
pub(super) fn entra_error(status: u16, error: &str, code: u32, message: &str) -> Reply {
    let trace_id = uuid::Uuid::new_v4().to_string();
    let correlation_id = uuid::Uuid::new_v4().to_string();
    let timestamp = b2c_timestamp(SystemTime::now());
    let description = format!(
        "AADSTS{code}: {message}\r\nTrace ID: {trace_id}\r\nCorrelation ID: {correlation_id}\r\nTimestamp: {timestamp}"
    );
    Reply::json(
        status,
        &json!({
            "error": error,
            "error_description": description,
            "error_codes": [code],
            "timestamp": timestamp,
            "trace_id": trace_id,
            "correlation_id": correlation_id,
        }),
    )
}

/// The token endpoint; `request.endpoint` is the URL the client posted to (an assertion's `aud`).
pub(super) fn token(state: &State, request: &TokenRequest<'_>) -> Reply {
    let endpoint = request.endpoint;
    let Some(client_id) = request.field("client_id") else {
        return entra_error(
            400,
            "invalid_request",
            900144,
            "The request body must contain the following parameter: 'client_id'.",
        );
    };
    match request.field("grant_type") {
        Some("client_credentials") => client_credentials(state, request, client_id, endpoint),
        Some("password") if state.config.kind == AuthorityKind::ExternalId => entra_error(
            400,
            "unsupported_grant_type",
            70003,
            "The app requested an unsupported grant type 'password'.",
        ),
        Some("password") => password(state, request, client_id, endpoint),
        Some(other) => entra_error(
            400,
            "unsupported_grant_type",
            70003,
            &format!("The app requested an unsupported grant type '{other}'."),
        ),
        None => entra_error(
            400,
            "invalid_request",
            900144,
            "The request body must contain the following parameter: 'grant_type'.",
        ),
    }
}

/// Checks the client's credential: `None` when it proves the client, else the error reply.
fn authenticate(
    state: &State,
    request: &TokenRequest<'_>,
    client_id: &str,
    endpoint: &str,
) -> Result<Vec<String>, Reply> {
    let config = &state.config;
    if let Some(app) = config.confidential_clients.iter().find(|c| c.client_id == client_id) {
        return match request.field("client_secret") {
            Some(secret) if secret == app.secret => Ok(app.roles.clone()),
            Some(_) => Err(entra_error(401, "invalid_client", 7000215, &format!("Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{client_id}'."))),
            None => Err(entra_error(401, "invalid_client", 7000218, "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.")),
        };
    }
    if let Some(app) = config.certificate_clients.iter().find(|c| c.client_id == client_id) {
        let assertion = assertion_of(request)?;
        verify_certificate_assertion(state, app, assertion, client_id, endpoint)?;
        return Ok(app.roles.clone());
    }
    if let Some(app) = config.federated_clients.iter().find(|c| c.client_id == client_id) {
        let assertion = assertion_of(request)?;
        let claims = verified_by_tenant_keys(state, assertion)?;
        let text = |name: &str| claims.get(name).and_then(Value::as_str).unwrap_or_default().to_owned();
        let audience_ok = match claims.get("aud") {
            Some(Value::String(aud)) => aud == FEDERATED_AUDIENCE,
            Some(Value::Array(auds)) => auds.iter().any(|a| a.as_str() == Some(FEDERATED_AUDIENCE)),
            _ => false,
        };
        if !audience_ok {
            return Err(entra_error(
                400,
                "invalid_client",
                700212,
                "No matching federated identity record found for presented assertion audience.",
            ));
        }
        if text("iss") != app.issuer || text("sub") != app.subject {
            return Err(entra_error(400, "invalid_client", 70021, &format!("No matching federated identity record found for presented assertion. Assertion Issuer: '{}'. Assertion Subject: '{}'.", text("iss"), text("sub"))));
        }
        check_window(&claims)?;
        return Ok(app.roles.clone());
    }
    if config.public_clients.iter().any(|c| c == client_id) {
        return Ok(Vec::new());
    }
    Err(entra_error(
        400,
        "unauthorized_client",
        700016,
        &format!(
            "Application with identifier '{client_id}' was not found in the directory '{}'.",
            config.tenant_id
        ),
    ))
}

fn assertion_of<'a>(request: &'a TokenRequest<'_>) -> Result<&'a str, Reply> {
    let missing = || {
        entra_error(
            401,
            "invalid_client",
            7000218,
            "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
        )
    };
    match (
        request.field("client_assertion_type"),
        request.field("client_assertion"),
    ) {
        (Some("urn:ietf:params:oauth:client-assertion-type:jwt-bearer"), Some(assertion)) => Ok(assertion),
        (Some(_), Some(_)) => Err(entra_error(
            400,
            "invalid_request",
            50027,
            "The client_assertion_type is not supported.",
        )),
        _ => Err(missing()),
    }
}

fn invalid_assertion(code: u32, message: &str) -> Reply {
    entra_error(401, "invalid_client", code, message)
}

/// A compact JWS taken apart: header, claims, the signed part, the signature.
type Parts = (Map<String, Value>, Map<String, Value>, String, Vec<u8>);

fn split(assertion: &str) -> Result<Parts, Reply> {
    let bad = || invalid_assertion(50013, "Assertion is invalid: it is not a signed JWT.");
    let mut parts = assertion.split('.');
    let (Some(h), Some(c), Some(s), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(bad());
    };
    let json = |part: &str| -> Option<Map<String, Value>> {
        match serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).ok()?).ok()? {
            Value::Object(map) => Some(map),
            _ => None,
        }
    };
    let (Some(header), Some(claims), Ok(signature)) = (json(h), json(c), URL_SAFE_NO_PAD.decode(s)) else {
        return Err(bad());
    };
    Ok((header, claims, format!("{h}.{c}"), signature))
}

fn verify_certificate_assertion(
    state: &State,
    app: &CertificateApp,
    assertion: &str,
    client_id: &str,
    endpoint: &str,
) -> Result<(), Reply> {
    let (header, claims, signed, signature) = split(assertion)?;
    if header.get("alg").and_then(Value::as_str) != Some("RS256") {
        return Err(invalid_assertion(
            700027,
            "Client assertion failed signature validation: only RS256 is accepted here.",
        ));
    }
    if header.get("x5t#S256").and_then(Value::as_str) != Some(app.thumbprint.as_str()) {
        return Err(invalid_assertion(700027, &format!("Client assertion failed signature validation. [Reason - The key was not found., Thumbprint of key used by client: '{}']", header.get("x5t#S256").and_then(Value::as_str).unwrap_or("none"))));
    }
    let certificate = webpki::EndEntityCert::try_from(&app.certificate)
        .map_err(|_| invalid_assertion(700027, "The registered certificate does not parse."))?;
    certificate
        .verify_signature(
            webpki::aws_lc_rs::RSA_PKCS1_2048_8192_SHA256,
            signed.as_bytes(),
            &signature,
        )
        .map_err(|_| invalid_assertion(700027, "Client assertion failed signature validation."))?;
    let text = |name: &str| claims.get(name).and_then(Value::as_str).unwrap_or_default();
    if text("aud") != endpoint {
        return Err(invalid_assertion(50013, &format!("Assertion audience does not match the Client app presenting the assertion. The audience in the assertion was '{}' and the expected audience is '{endpoint}'.", text("aud"))));
    }
    if text("iss") != client_id || text("sub") != client_id {
        return Err(invalid_assertion(
            50013,
            "Assertion is invalid: iss and sub must be the client ID.",
        ));
    }
    check_window(&claims)?;
    let jti = text("jti");
    if jti.is_empty() {
        return Err(invalid_assertion(50013, "Assertion is invalid: it has no jti."));
    }
    let mut guard = state.lock();
    if !guard.seen_jtis.insert(jti.to_owned()) {
        return Err(invalid_assertion(
            50013,
            "Assertion is invalid: its jti was already used (replay).",
        ));
    }
    guard.assertions.push(assertion.to_owned());
    Ok(())
}

/// A federated token is signed by its issuer; here the tenant's own keys play that issuer.
fn verified_by_tenant_keys(state: &State, assertion: &str) -> Result<Map<String, Value>, Reply> {
    let (_, claims, signed, signature) = split(assertion)?;
    if !state.keys.verify(signed.as_bytes(), &signature) {
        return Err(invalid_assertion(
            700027,
            "Client assertion failed signature validation.",
        ));
    }
    state.lock().assertions.push(assertion.to_owned());
    Ok(claims)
}

fn check_window(claims: &Map<String, Value>) -> Result<(), Reply> {
    let now = epoch(SystemTime::now());
    let number = |name: &str| claims.get(name).and_then(Value::as_u64);
    match (number("exp"), number("nbf")) {
        (Some(exp), nbf) if now < exp && nbf.is_none_or(|nbf| nbf <= now + 300) => Ok(()),
        _ => Err(invalid_assertion(
            700024,
            "Client assertion is not within its valid time range.",
        )),
    }
}

fn client_credentials(state: &State, request: &TokenRequest<'_>, client_id: &str, endpoint: &str) -> Reply {
    let roles = match authenticate(state, request, client_id, endpoint) {
        Ok(roles) => roles,
        Err(reply) => return reply,
    };
    let expected = format!("{}/.default", app_id_uri(&state.config.tenant));
    if request.field("scope") != Some(expected.as_str()) {
        return entra_error(400, "invalid_scope", 1002012, &format!("The provided value for scope {} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).", request.field("scope").unwrap_or_default()));
    }
    // Entra puts granted application permissions in `roles` (B2C puts them in `scp`).
    let object_id = uuid::Uuid::new_v4().to_string();
    issue(
        state,
        client_id,
        json!({ "azpacr": "1", "oid": object_id, "sub": client_id, "roles": roles }),
        None,
    )
}

/// An access token for the tenant's API with Entra's common claims plus `own`, and the
/// response Entra sends with it.
fn issue(state: &State, client_id: &str, own: Value, scope: Option<&str>) -> Reply {
    let now = SystemTime::now();
    let lifetime = state.config.access_token_lifetime.as_secs();
    let mut claims = json!({
        "iss": issuer(state),
        "aud": state.config.api_client_id,
        "exp": epoch(now) + lifetime,
        "nbf": epoch(now),
        "iat": epoch(now),
        "azp": client_id,
        "tid": state.config.tenant_id,
        "ver": "2.0",
    });
    if let (Some(claims), Value::Object(own)) = (claims.as_object_mut(), own) {
        claims.extend(own);
    }
    let mut response = json!({
        "token_type": "Bearer",
        "expires_in": lifetime,
        "ext_expires_in": lifetime,
        "access_token": state.keys.sign(&claims),
    });
    if let (Some(scope), Some(response)) = (scope, response.as_object_mut()) {
        response.insert("scope".into(), json!(scope));
    }
    Reply::json(200, &response)
}

fn password(state: &State, request: &TokenRequest<'_>, client_id: &str, endpoint: &str) -> Reply {
    if let Err(reply) = authenticate(state, request, client_id, endpoint) {
        return reply;
    }
    let (Some(username), Some(password)) = (request.field("username"), request.field("password")) else {
        return entra_error(
            400,
            "invalid_request",
            900144,
            "The request body must contain the following parameter: 'username' or 'password'.",
        );
    };
    let Some(user) = state
        .config
        .users
        .iter()
        .find(|u| u.username.eq_ignore_ascii_case(username) && u.password == password)
    else {
        return entra_error(
            400,
            "invalid_grant",
            50126,
            "Error validating credentials due to invalid username or password.",
        );
    };
    if state.config.mfa_users.iter().any(|u| u.eq_ignore_ascii_case(username)) {
        return entra_error(400, "invalid_grant", 50076, "Due to a configuration change made by your administrator, or because you moved to a new location, you must use multi-factor authentication to access the resource.");
    }
    issue(
        state,
        client_id,
        json!({
            "oid": user.object_id,
            "sub": user.object_id,
            "name": user.display_name,
            "preferred_username": user.username,
            "scp": "read",
        }),
        Some(request.field("scope").unwrap_or_default()),
    )
}

/// Entra's discovery document for the tenant.
pub(super) fn metadata(state: &State) -> Reply {
    let base = format!("{}{}", state.base_url, state.config.tenant_id);
    Reply::json(
        200,
        &json!({
            "issuer": issuer(state),
            "token_endpoint": format!("{base}/oauth2/v2.0/token"),
            "authorization_endpoint": format!("{base}/oauth2/v2.0/authorize"),
            "jwks_uri": format!("{base}/discovery/v2.0/keys"),
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "tenant_region_scope": "EU",
        }),
    )
}
