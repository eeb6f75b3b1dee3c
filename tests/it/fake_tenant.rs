//! The fake tenant behaves like B2C: URL forms, signed JWTs verifiable through discovery,
//! B2C's error codes, refresh-token rotation and revocation, fault knobs, request log.

use crate::support;

use std::time::Duration;

use b2c_token::test_tenant::{defaults, FakeTenant, Fault};
use b2c_token::{
    authority::PolicyForm, client::ClientBuilder, client::GrantKind, client::RetryPolicy, error::B2cCode,
    error::UnexpectedKind, secret::RefreshToken, Client, Error, Password, Scopes,
};
use jsonwebtoken::{decode, decode_header, Algorithm, DecodingKey, Validation};
use serde_json::Value;

/// POSTs a raw form to the tenant's ROPC token endpoint, for what the SDK never sends.
async fn post_form(tenant: &FakeTenant, body: String) -> reqwest::Response {
    let url = tenant
        .authority(defaults::ROPC_POLICY)
        .unwrap()
        .token_endpoint()
        .clone();
    reqwest::Client::new()
        .post(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap()
}

/// A client that reports each response as it came: these tests check the tenant, not retries.
fn no_retries(builder: ClientBuilder) -> Client {
    builder.retry_policy(RetryPolicy::none()).build().unwrap()
}

fn ropc_client(tenant: &FakeTenant) -> Client {
    no_retries(support::fake_public(tenant, defaults::ROPC_POLICY))
}

fn daemon_client(tenant: &FakeTenant) -> Client {
    no_retries(support::fake_daemon(tenant, defaults::SIGNIN_POLICY))
}

fn alice() -> Password {
    Password::new(defaults::PASSWORD)
}

async fn sign_in(client: &Client, scopes: &Scopes) -> Result<b2c_token::Token, Error> {
    client
        .acquire_token_by_password(defaults::USERNAME, &alice(), scopes)
        .await
}

/// Verifies a JWT the way a resource server would: discovery → jwks_uri → key by kid.
async fn verify(tenant: &FakeTenant, policy: &str, jwt: &str, audience: &str) -> Value {
    let http = reqwest::Client::new();
    let metadata_url = tenant.authority(policy).unwrap().metadata_endpoint().unwrap().clone();
    let metadata: Value = http.get(metadata_url).send().await.unwrap().json().await.unwrap();
    assert_eq!(metadata["issuer"], tenant.issuer());
    assert_eq!(metadata["id_token_signing_alg_values_supported"][0], "RS256");
    let jwks_uri = metadata["jwks_uri"].as_str().unwrap();
    assert!(
        jwks_uri.ends_with(&format!("?p={}", policy.to_ascii_lowercase())),
        "{jwks_uri}"
    );
    let jwks: jsonwebtoken::jwk::JwkSet = http.get(jwks_uri).send().await.unwrap().json().await.unwrap();
    let kid = decode_header(jwt).unwrap().kid.unwrap();
    let jwk = jwks.find(&kid).expect("the token's kid is published");
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_audience(&[audience]);
    validation.set_issuer(&[tenant.issuer()]);
    decode::<Value>(jwt, &DecodingKey::from_jwk(jwk).unwrap(), &validation)
        .unwrap()
        .claims
}

#[tokio::test]
async fn ropc_tokens_are_signed_jwts_with_b2c_claims() {
    let tenant = FakeTenant::start().await.unwrap();
    let scopes = Scopes::new(["openid", &tenant.api_scope("read"), "offline_access"]).unwrap();
    let token = sign_in(&ropc_client(&tenant), &scopes).await.unwrap();

    let access = verify(
        &tenant,
        defaults::ROPC_POLICY,
        token.access_token().unwrap().expose_secret(),
        defaults::API_CLIENT_ID,
    )
    .await;
    assert_eq!(access["tfp"], defaults::ROPC_POLICY);
    assert_eq!(access["scp"], "read");
    assert_eq!(access["azp"], defaults::PUBLIC_CLIENT_ID);
    assert_eq!(access["emails"][0], defaults::USERNAME);
    assert_eq!(access["ver"], "1.0");
    assert_eq!(access["sub"], access["oid"]);
    assert_eq!(
        access["iss"],
        format!("{}{}/v2.0/", tenant.base_url(), defaults::TENANT_ID)
    );
    let lifetime = access["exp"].as_u64().unwrap() - access["iat"].as_u64().unwrap();
    assert_eq!(lifetime, 3600);
    assert_eq!(access["nbf"], access["iat"]);

    let id = verify(
        &tenant,
        defaults::ROPC_POLICY,
        token.id_token().unwrap().expose_secret(),
        defaults::PUBLIC_CLIENT_ID,
    )
    .await;
    assert_eq!(id["name"], "alice");
}

#[tokio::test]
async fn client_id_as_scope_has_no_scp_or_azp() {
    let tenant = FakeTenant::start().await.unwrap();
    let token = sign_in(&ropc_client(&tenant), &Scopes::empty()).await.unwrap();
    let claims = verify(
        &tenant,
        defaults::ROPC_POLICY,
        token.access_token().unwrap().expose_secret(),
        defaults::PUBLIC_CLIENT_ID,
    )
    .await;
    assert!(claims.get("scp").is_none() && claims.get("azp").is_none(), "{claims}");
}

#[tokio::test]
async fn client_credentials_token_carries_app_roles() {
    let tenant = FakeTenant::start().await.unwrap();
    let token = daemon_client(&tenant)
        .acquire_token_by_client_credentials(&Scopes::new([tenant.api_default_scope()]).unwrap())
        .await
        .unwrap();
    assert!(token.id_token().is_none() && token.refresh_token().is_none());
    assert_eq!(token.resource(), Some(defaults::API_CLIENT_ID));
    let claims = verify(
        &tenant,
        defaults::SIGNIN_POLICY,
        token.access_token().unwrap().expose_secret(),
        defaults::API_CLIENT_ID,
    )
    .await;
    assert_eq!(claims["scp"], defaults::API_APP_ROLE);
    assert_eq!(claims["azp"], defaults::CONFIDENTIAL_CLIENT_ID);
    assert_eq!(claims["sub"], defaults::CONFIDENTIAL_CLIENT_ID);
    assert_eq!(claims["ver"], "2.0");
}

#[tokio::test]
async fn expires_in_is_a_string_for_ropc_and_a_number_for_client_credentials() {
    let tenant = FakeTenant::start().await.unwrap();
    let ropc: Value = post_form(&tenant, format!("grant_type=password&username=alice%40contoso.com&password=Passw0rd%21&scope=openid+{0}+offline_access&client_id={0}", defaults::PUBLIC_CLIENT_ID))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(ropc["expires_in"], "3600");
    let cc: Value = post_form(
        &tenant,
        format!(
            "grant_type=client_credentials&scope={}&client_id={}&client_secret={}",
            url::form_urlencoded::byte_serialize(tenant.api_default_scope().as_bytes()).collect::<String>(),
            defaults::CONFIDENTIAL_CLIENT_ID,
            defaults::CLIENT_SECRET
        ),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(cc["expires_in"], 3600);
}

#[tokio::test]
async fn every_url_form_is_served() {
    let tenant = FakeTenant::start().await.unwrap();
    let forms = [
        tenant
            .authority_builder(defaults::ROPC_POLICY)
            .policy_form(PolicyForm::Query)
            .build()
            .unwrap(),
        tenant
            .authority_builder(defaults::ROPC_POLICY)
            .policy_form(PolicyForm::Tfp)
            .build()
            .unwrap(),
        tenant
            .authority_builder(defaults::ROPC_POLICY)
            .tenant_id(defaults::TENANT_ID)
            .build()
            .unwrap(),
        tenant.authority_builder("b2c_1_ROPC").build().unwrap(),
    ];
    for authority in forms {
        let url = authority.token_endpoint().to_string();
        let client = no_retries(Client::builder(authority, defaults::PUBLIC_CLIENT_ID));
        assert!(sign_in(&client, &Scopes::empty()).await.is_ok(), "{url}");
    }
    assert_eq!(tenant.token_requests(GrantKind::Password), 4);
}

fn rejection(result: Result<b2c_token::Token, Error>) -> (u16, String, Option<B2cCode>) {
    match result {
        Err(Error::Rejected(r)) => (r.status(), r.error().to_owned(), r.b2c_code()),
        other => panic!("expected a rejection, got {other:?}"),
    }
}

#[tokio::test]
async fn b2c_errors_for_bad_input() {
    let tenant = FakeTenant::start().await.unwrap();
    let ropc = ropc_client(&tenant);

    let wrong_password = ropc
        .acquire_token_by_password(defaults::USERNAME, &Password::new("nope"), &Scopes::empty())
        .await;
    assert_eq!(
        rejection(wrong_password),
        (400, "access_denied".into(), Some(B2cCode::InvalidCredentials))
    );
    let unknown_user = ropc
        .acquire_token_by_password("bob@contoso.com", &alice(), &Scopes::empty())
        .await;
    assert_eq!(rejection(unknown_user).2, Some(B2cCode::InvalidCredentials));

    let bad_secret = no_retries(support::fake_daemon(&tenant, defaults::SIGNIN_POLICY).client_secret("wrong"))
        .acquire_token_by_client_credentials(&Scopes::new([tenant.api_default_scope()]).unwrap())
        .await;
    assert_eq!(
        rejection(bad_secret),
        (400, "invalid_client".into(), Some(B2cCode::ClientSecretMismatch))
    );

    let ropc_on_signin_policy = no_retries(support::fake_public(&tenant, defaults::SIGNIN_POLICY));
    assert_eq!(
        rejection(sign_in(&ropc_on_signin_policy, &Scopes::empty()).await).2,
        Some(B2cCode::RopcNotEnabled)
    );

    let confidential_doing_ropc = no_retries(Client::builder(
        tenant.authority(defaults::ROPC_POLICY).unwrap(),
        defaults::CONFIDENTIAL_CLIENT_ID,
    ));
    assert_eq!(
        rejection(sign_in(&confidential_doing_ropc, &Scopes::empty()).await).2,
        Some(B2cCode::PublicClientNotAllowed)
    );

    let unknown_scope = sign_in(&ropc, &Scopes::new(["https://other.example/api/x"]).unwrap()).await;
    assert_eq!(rejection(unknown_scope).2, Some(B2cCode::UnsupportedScopeValue));
}

#[tokio::test]
async fn secret_on_ropc_is_rejected_with_90084() {
    // The SDK never sends a secret with ROPC, so speak raw HTTP to check the tenant.
    let tenant = FakeTenant::start().await.unwrap();
    let response = post_form(
        &tenant,
        format!(
            "grant_type=password&username=a&password=b&scope=openid&client_id={}&client_secret=x",
            defaults::PUBLIC_CLIENT_ID
        ),
    )
    .await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "invalid_request");
    assert!(body["error_description"].as_str().unwrap().starts_with("AADB2C90084: "));
}

#[tokio::test]
async fn unknown_policy_or_tenant_is_a_non_json_404() {
    let tenant = FakeTenant::start().await.unwrap();
    for authority in [
        tenant.authority("B2C_1_nope").unwrap(),
        b2c_token::Authority::builder("fabrikam", defaults::ROPC_POLICY)
            .base_url(tenant.base_url().as_str())
            .build()
            .unwrap(),
    ] {
        let client = no_retries(Client::builder(authority, defaults::PUBLIC_CLIENT_ID));
        let err = sign_in(&client, &Scopes::empty()).await.unwrap_err();
        assert!(
            matches!(&err, Error::UnexpectedResponse(r) if r.status() == Some(404) && r.kind() == &UnexpectedKind::ErrorStatus),
            "{err:?}"
        );
    }
}

#[tokio::test]
async fn refresh_rotates_and_the_old_token_dies() {
    let tenant = FakeTenant::start().await.unwrap();
    let client = ropc_client(&tenant);
    let first = sign_in(&client, &Scopes::empty()).await.unwrap();
    let old = first.refresh_token().unwrap();
    let second = client
        .acquire_token_by_refresh_token(old, &Scopes::empty())
        .await
        .unwrap();
    let new = second.refresh_token().unwrap();
    assert_ne!(
        old.expose_secret(),
        new.expose_secret(),
        "each redeem returns a new refresh token"
    );
    assert!(
        second.refresh_token_expires_on().is_some(),
        "refresh responses carry refresh_token_expires_in"
    );

    assert_eq!(
        rejection(client.acquire_token_by_refresh_token(old, &Scopes::empty()).await).2,
        Some(B2cCode::GrantRevoked)
    );
    assert!(client
        .acquire_token_by_refresh_token(new, &Scopes::empty())
        .await
        .is_ok());
}

#[tokio::test]
async fn old_refresh_tokens_can_stay_valid() {
    let tenant = FakeTenant::builder()
        .old_refresh_tokens_stay_valid(true)
        .start()
        .await
        .unwrap();
    let client = ropc_client(&tenant);
    let first = sign_in(&client, &Scopes::empty()).await.unwrap();
    let old = first.refresh_token().unwrap();
    client
        .acquire_token_by_refresh_token(old, &Scopes::empty())
        .await
        .unwrap();
    assert!(client
        .acquire_token_by_refresh_token(old, &Scopes::empty())
        .await
        .is_ok());
}

#[tokio::test]
async fn refresh_errors_expired_revoked_other_policy_other_client_and_secret() {
    let tenant = FakeTenant::builder()
        .refresh_token_lifetime(Duration::from_millis(300))
        .start()
        .await
        .unwrap();
    let client = ropc_client(&tenant);
    let token = sign_in(&client, &Scopes::empty()).await.unwrap();
    let refresh = token.refresh_token().unwrap().clone();

    let other_policy = no_retries(support::fake_public(&tenant, defaults::SIGNIN_POLICY));
    assert_eq!(
        rejection(
            other_policy
                .acquire_token_by_refresh_token(&refresh, &Scopes::empty())
                .await
        )
        .2,
        Some(B2cCode::GrantPolicyMismatch)
    );
    let other_client = no_retries(Client::builder(
        tenant.authority(defaults::ROPC_POLICY).unwrap(),
        defaults::CONFIDENTIAL_CLIENT_ID,
    ));
    assert_eq!(
        rejection(
            other_client
                .acquire_token_by_refresh_token(&refresh, &Scopes::empty())
                .await
        )
        .2,
        Some(B2cCode::GrantClientMismatch)
    );
    let with_secret = no_retries(support::fake_public(&tenant, defaults::ROPC_POLICY).client_secret("s"));
    assert_eq!(
        rejection(
            with_secret
                .acquire_token_by_refresh_token(&refresh, &Scopes::empty())
                .await
        )
        .2,
        Some(B2cCode::PublicClientSentSecret)
    );
    let garbage = client
        .acquire_token_by_refresh_token(&RefreshToken::new("not-a-jwe"), &Scopes::empty())
        .await;
    assert_eq!(rejection(garbage).2, Some(B2cCode::MalformedGrant));

    tokio::time::sleep(Duration::from_millis(400)).await;
    let expired = client.acquire_token_by_refresh_token(&refresh, &Scopes::empty()).await;
    let err = expired.unwrap_err();
    assert_eq!(err.b2c_code(), Some(B2cCode::GrantExpired));
    assert!(err.is_invalid_grant());
}

#[tokio::test]
async fn revocation_kills_a_users_refresh_tokens() {
    let tenant = FakeTenant::start().await.unwrap();
    let client = ropc_client(&tenant);
    let token = sign_in(&client, &Scopes::empty()).await.unwrap();
    tenant.revoke_refresh_tokens(defaults::USERNAME);
    let err = client
        .acquire_token_by_refresh_token(token.refresh_token().unwrap(), &Scopes::empty())
        .await
        .unwrap_err();
    assert_eq!(err.b2c_code(), Some(B2cCode::GrantRevoked));
    assert!(err.is_invalid_grant());
}

#[tokio::test]
async fn basic_client_auth_fails_like_b2c() {
    let tenant = FakeTenant::start().await.unwrap();
    let client = no_retries(
        support::fake_daemon(&tenant, defaults::SIGNIN_POLICY)
            .client_authentication(b2c_token::client::ClientAuthentication::Basic),
    );
    let err = client
        .acquire_token_by_client_credentials(&Scopes::new([tenant.api_default_scope()]).unwrap())
        .await
        .unwrap_err();
    assert_eq!(err.b2c_code(), Some(B2cCode::InternalError));
}

#[tokio::test]
async fn fault_knobs() {
    let tenant = FakeTenant::start().await.unwrap();
    // The lockout rails would answer repeats of a password whose reply was lost from memory;
    // this test is about the tenant's knobs, so every call must reach it.
    let client = no_retries(
        support::fake_public(&tenant, defaults::ROPC_POLICY)
            .timeout(Duration::from_millis(500))
            .remember_rejected_credentials(Duration::ZERO),
    );
    let empty = Scopes::empty();
    let run = || sign_in(&client, &empty);

    tenant.inject(Fault::TooManyRequests(Some(7)), 1);
    let err = run().await.unwrap_err();
    assert_eq!(
        (err.status(), err.retry_after()),
        (Some(429), Some(Duration::from_secs(7)))
    );
    assert!(err.is_retryable());

    tenant.inject(Fault::ServiceUnavailable, 2);
    assert_eq!(run().await.unwrap_err().status(), Some(503));
    assert_eq!(run().await.unwrap_err().status(), Some(503), "count = 2 answers twice");

    tenant.inject(Fault::Delay(Duration::from_secs(2)), 1);
    assert!(run().await.unwrap_err().is_timeout());

    tenant.inject(Fault::DropConnection, 1);
    assert!(matches!(run().await.unwrap_err(), Error::Transport { .. }));

    tenant.inject(Fault::MalformedJson, 1);
    let err = run().await.unwrap_err();
    assert!(
        matches!(&err, Error::UnexpectedResponse(r) if matches!(r.kind(), UnexpectedKind::MalformedJson { .. })),
        "{err:?}"
    );

    tenant.inject(Fault::HtmlPage, 1);
    let err = run().await.unwrap_err();
    assert!(
        matches!(&err, Error::UnexpectedResponse(r) if r.kind() == &UnexpectedKind::NotJson),
        "{err:?}"
    );

    tenant.inject(Fault::TruncatedBody, 1);
    let err = run().await.unwrap_err();
    assert!(matches!(err, Error::Transport { .. }), "{err:?}");

    tenant.inject(Fault::OversizedBody, 1);
    let err = run().await.unwrap_err();
    assert!(
        matches!(&err, Error::UnexpectedResponse(r) if matches!(r.kind(), UnexpectedKind::BodyTooLarge { .. })),
        "{err:?}"
    );

    // Faults are used up: the next request succeeds.
    assert!(run().await.is_ok());
    assert_eq!(tenant.token_requests(GrantKind::Password), 10);
}

#[tokio::test]
async fn retry_after_as_http_date() {
    let tenant = FakeTenant::start().await.unwrap();
    tenant.inject(Fault::TooManyRequestsUntil(Duration::from_secs(30)), 1);
    let url = tenant
        .authority(defaults::ROPC_POLICY)
        .unwrap()
        .token_endpoint()
        .clone();
    let response = reqwest::Client::new().post(url).send().await.unwrap();
    assert_eq!(response.status(), 429);
    let date = response.headers()["retry-after"].to_str().unwrap();
    assert!(date.ends_with(" GMT"), "{date}");
}

#[tokio::test]
async fn request_log_records_what_was_sent_and_debug_redacts_it() {
    let tenant = FakeTenant::start().await.unwrap();
    sign_in(&ropc_client(&tenant), &Scopes::empty()).await.unwrap();
    let requests = tenant.requests();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(request.method(), "POST");
    assert_eq!(request.path(), "/contoso.onmicrosoft.com/B2C_1_ropc/oauth2/v2.0/token");
    assert_eq!(request.form_value("grant_type"), Some("password"));
    assert_eq!(request.form_value("password"), Some(defaults::PASSWORD));
    assert_eq!(request.header("accept"), Some("application/json"));
    assert!(request.header("client-request-id").is_some());
    assert!(!format!("{request:?}").contains(defaults::PASSWORD));
    tenant.reset();
    assert_eq!(tenant.total_token_requests(), 0);
}

#[tokio::test]
async fn stops_when_dropped() {
    let tenant = FakeTenant::start().await.unwrap();
    let client = ropc_client(&tenant);
    drop(tenant);
    tokio::task::yield_now().await;
    let err = sign_in(&client, &Scopes::empty()).await.unwrap_err();
    assert!(matches!(err, Error::Transport { .. }), "{err:?}");
}

/// The TLS listener: a private CA of the tenant's own, trusted in one step by clients.
#[tokio::test]
async fn a_tls_tenant_serves_https_trusted_through_its_ca() {
    let tenant = FakeTenant::builder().tls(true).start().await.unwrap();
    assert_eq!(tenant.base_url().scheme(), "https");
    let ca = tenant.ca_pem().expect("a CA with TLS").to_owned();
    let scopes = Scopes::new([tenant.api_default_scope()]).unwrap();
    let untrusting = no_retries(tenant.confidential_client(defaults::SIGNIN_POLICY).unwrap());
    let error = untrusting
        .acquire_token_by_client_credentials(&scopes)
        .await
        .unwrap_err();
    assert!(error.is_certificate_error(), "{error:?}");
    let trusting = no_retries(
        tenant
            .confidential_client(defaults::SIGNIN_POLICY)
            .unwrap()
            .add_root_certificate(ca.as_bytes()),
    );
    let token = trusting.acquire_token_by_client_credentials(&scopes).await.unwrap();
    assert!(token.access_token().is_some());
    assert!(FakeTenant::start().await.unwrap().ca_pem().is_none());
}

/// `trust_only_added_roots`: the given CA is trusted, nothing else is (another tenant's CA
/// does not vouch for this one), and asking for it without a CA is a configuration error.
#[tokio::test]
async fn only_the_added_roots_are_trusted_when_asked() {
    let tenant = FakeTenant::builder().tls(true).start().await.unwrap();
    let other = FakeTenant::builder().tls(true).start().await.unwrap();
    let scopes = Scopes::new([tenant.api_default_scope()]).unwrap();
    let only = |pem: &str| {
        no_retries(
            tenant
                .confidential_client(defaults::SIGNIN_POLICY)
                .unwrap()
                .add_root_certificate(pem.as_bytes())
                .trust_only_added_roots(true),
        )
    };
    let own = only(tenant.ca_pem().unwrap());
    assert!(own.acquire_token_by_client_credentials(&scopes).await.is_ok());
    let foreign = only(other.ca_pem().unwrap());
    let error = foreign.acquire_token_by_client_credentials(&scopes).await.unwrap_err();
    assert!(error.is_certificate_error(), "{error:?}");
    let error = tenant
        .confidential_client(defaults::SIGNIN_POLICY)
        .unwrap()
        .trust_only_added_roots(true)
        .build()
        .unwrap_err();
    assert!(error.to_string().contains("add_root_certificate"), "{error}");
}
