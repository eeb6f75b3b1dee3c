//! Every fixture in tests/fixtures/ served over HTTP and read through the client: tokens
//! parse with B2C's quirks, errors map to the right typed error.

use std::time::Duration;

use crate::support::*;
use b2c_token::{client::RetryPolicy, error::B2cCode, error::UnexpectedKind, Error, Password, Scopes};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

async fn ropc_against(status: u16, content_type: &str, body: &str) -> Result<b2c_token::Token, Error> {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(status).set_body_raw(body.to_owned(), content_type))
        .mount(&server)
        .await;
    let client = client_builder(&server).build().unwrap();
    client
        // A username of its own: the lockout memory is per process and account, and wiremock
        // hands the same pooled server (one account) to test after test.
        .acquire_token_by_password(
            &format!("alice-{}", uuid::Uuid::new_v4()),
            &Password::new("pw"),
            &Scopes::empty(),
        )
        .await
}

async fn token_from(fixture_name: &str) -> b2c_token::Token {
    ropc_against(200, "application/json; charset=utf-8", &fixture(fixture_name))
        .await
        .unwrap()
}

#[tokio::test]
async fn success_fixtures_parse_with_their_lifetimes() {
    // (fixture, access token?, id token?, refresh token?, lifetime in seconds)
    let cases = [
        ("ropc_initial_string_expiry.json", true, true, true, Some(3600)),
        ("ropc_refresh_numeric.json", true, true, true, Some(3600)),
        ("all_strings.json", true, true, true, Some(3600)),
        ("client_credentials.json", true, false, false, Some(3600)),
        ("client_credentials_15min.json", true, false, false, Some(900)),
        ("id_token_only.json", false, true, false, Some(3600)),
        ("refresh_string_times.json", true, false, true, Some(3600)),
    ];
    for (name, access, id, refresh, lifetime) in cases {
        let token = token_from(name).await;
        assert_eq!(token.access_token().is_some(), access, "{name}");
        assert_eq!(token.id_token().is_some(), id, "{name}");
        assert_eq!(token.refresh_token().is_some(), refresh, "{name}");
        // Expiry counts from when the request was sent, so a little has already passed.
        let left = token.expires_in().map(|d| d.as_secs_f64());
        match (left, lifetime) {
            (Some(left), Some(full)) => assert!(left <= full as f64 && left > full as f64 - 5.0, "{name}: {left}"),
            (left, full) => assert_eq!(left.is_some(), full.is_some(), "{name}"),
        }
        assert!(token.is_bearer(), "{name}");
        assert!(
            token.scopes().is_empty(),
            "{name}: requested scopes are kept, not the returned ones"
        );
    }
}

#[tokio::test]
async fn returned_fields_are_kept_verbatim() {
    let token = token_from("all_strings.json").await;
    assert_eq!(token.granted_scope(), Some("scope1 scope2"));
    assert_eq!(token.resource(), Some("resource-id-guid"));
    assert_eq!(token.access_token().unwrap().expose_secret(), "eyJ0e");
    let refresh = token_from("ropc_refresh_numeric.json").await;
    let refresh_left = refresh
        .refresh_token_expires_on()
        .unwrap()
        .duration_since(std::time::SystemTime::now())
        .unwrap();
    assert!(refresh_left > Duration::from_secs(1_209_500), "{refresh_left:?}");
}

#[tokio::test]
async fn error_fixtures_map_to_typed_rejections() {
    let cases = [
        (
            "error_invalid_credentials.json",
            "access_denied",
            B2cCode::InvalidCredentials,
            Some("9b3c19e2-6084-4bcd-b7d3-aab8d2c34dd9"),
        ),
        (
            "error_grant_expired.json",
            "invalid_grant",
            B2cCode::GrantExpired,
            Some("1cb64b4c-9b6e-4c1f-8bb6-6f8fbc0a3c2e"),
        ),
        (
            "error_bad_client_secret.json",
            "invalid_client",
            B2cCode::ClientSecretMismatch,
            Some("5d1f0c7a-2b0e-4a43-9d8f-0b1c2d3e4f50"),
        ),
        (
            "error_client_assertion_unsupported.json",
            "invalid_request",
            B2cCode::ClientAssertionUnsupported,
            Some("0a1b2c3d-4e5f-6071-8293-a4b5c6d7e8f9"),
        ),
        (
            "error_policy_mismatch.json",
            "invalid_grant",
            B2cCode::GrantPolicyMismatch,
            Some("7e6d5c4b-3a29-1807-f6e5-d4c3b2a19080"),
        ),
        (
            "error_throttled.json",
            "invalid_request",
            B2cCode::TooManyRequests,
            Some("11111111-2222-3333-4444-555555555555"),
        ),
    ];
    for (name, oauth_error, code, correlation) in cases {
        let err = ropc_against(400, "application/json", &fixture(name)).await.unwrap_err();
        let Error::Rejected(rejection) = &err else {
            panic!("{name}: {err:?}")
        };
        assert_eq!(rejection.status(), 400, "{name}");
        assert_eq!(rejection.error(), oauth_error, "{name}");
        assert_eq!(rejection.b2c_code(), Some(code), "{name}");
        assert_eq!(rejection.correlation_id(), correlation, "{name}");
        assert!(rejection.timestamp().is_some_and(|t| t.ends_with('Z')), "{name}");
        assert!(rejection.client_request_id().is_some_and(uuid_like), "{name}");
        assert!(
            !rejection.message().contains("AADB2C") && !rejection.message().contains("Correlation"),
            "{name}"
        );
        assert!(
            err.to_string().contains(&code.to_string()) && err.to_string().contains(code.hint()),
            "{name}: {err}"
        );
        assert_eq!(err.is_retryable(), code == B2cCode::TooManyRequests, "{name}");
        assert_eq!(err.is_invalid_grant(), oauth_error == "invalid_grant", "{name}");
    }
}

#[tokio::test]
async fn html_with_200_is_not_a_token() {
    let err = ropc_against(200, "text/html; charset=utf-8", &fixture("error_html_200.html"))
        .await
        .unwrap_err();
    let Error::UnexpectedResponse(response) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(response.kind(), &UnexpectedKind::NotJson);
    assert_eq!(response.status(), Some(200));
    assert!(!err.to_string().contains("Sorry"), "the body is never quoted: {err}");
}

#[tokio::test]
async fn unknown_policy_404_is_its_own_error_with_a_hint() {
    let err = ropc_against(
        404,
        "text/html",
        "<html>The resource you are looking for has been removed</html>",
    )
    .await
    .unwrap_err();
    let Error::UnexpectedResponse(response) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(response.kind(), &UnexpectedKind::ErrorStatus);
    assert_eq!(err.status(), Some(404));
    assert!(err.to_string().contains("policy"), "{err}");
    assert!(!err.is_retryable());
}

#[tokio::test]
async fn other_servers_error_shapes_keep_the_status() {
    // Empty 401.
    let err = ropc_against(401, "text/plain", "").await.unwrap_err();
    assert!(
        matches!(&err, Error::UnexpectedResponse(r) if r.kind() == &UnexpectedKind::ErrorStatus),
        "{err:?}"
    );
    assert_eq!(err.status(), Some(401));
    // A plain OAuth error without a description (e.g. Keycloak, Entra External ID).
    let err = ropc_against(401, "application/json", r#"{"error":"invalid_client"}"#)
        .await
        .unwrap_err();
    let Error::Rejected(rejection) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(
        (rejection.status(), rejection.error(), rejection.b2c_code()),
        (401, "invalid_client", None)
    );
    // JSON that is not an OAuth error.
    let err = ropc_against(500, "application/json", r#"{"message":"boom"}"#)
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(500));
    assert!(err.is_retryable());
    // An error sent with status 200 is still an error.
    let err = ropc_against(200, "application/json", &fixture("error_invalid_credentials.json"))
        .await
        .unwrap_err();
    assert_eq!(err.b2c_code(), Some(B2cCode::InvalidCredentials));
}

#[tokio::test]
async fn success_without_a_token_or_with_bad_fields_is_rejected() {
    let err = ropc_against(200, "application/json", r#"{"token_type":"Bearer","expires_in":3600}"#)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::UnexpectedResponse(r) if r.kind() == &UnexpectedKind::NoToken),
        "{err:?}"
    );
    let err = ropc_against(
        200,
        "application/json",
        r#"{"access_token":"secret-at","token_type":"Bearer","expires_in":"an hour"}"#,
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("expires_in"), "{err}");
    assert!(!err.to_string().contains("an hour") && !format!("{err:?}").contains("secret-at"));
    let err = ropc_against(
        200,
        "application/json",
        r#"{"access_token":"secret-at","token_type":"Bea"#,
    )
    .await
    .unwrap_err();
    assert!(matches!(&err, Error::UnexpectedResponse(r) if matches!(r.kind(), UnexpectedKind::MalformedJson { .. })));
    assert!(!format!("{err:?}{err}").contains("secret-at"));
}

#[tokio::test]
async fn oversized_body_is_an_error_not_an_allocation() {
    let huge = format!(
        r#"{{"access_token":"{}","token_type":"Bearer"}}"#,
        "a".repeat(300 * 1024)
    );
    let err = ropc_against(200, "application/json", &huge).await.unwrap_err();
    assert!(
        matches!(&err, Error::UnexpectedResponse(r) if matches!(r.kind(), UnexpectedKind::BodyTooLarge { .. })),
        "{err:?}"
    );
}

#[tokio::test]
async fn connection_refused_is_a_retryable_transport_error() {
    // A port that was free a moment ago: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let authority = b2c_token::Authority::builder(TENANT, POLICY)
        .base_url(&format!("http://127.0.0.1:{port}"))
        .build()
        .unwrap();
    let client = b2c_token::Client::builder(authority, CLIENT_ID)
        .retry_policy(RetryPolicy::none())
        .build()
        .unwrap();
    let err = client
        .acquire_token_by_password("u", &Password::new("pw"), &Scopes::empty())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Transport { .. }), "{err:?}");
    assert!(err.is_retryable());
}

#[tokio::test]
async fn slow_server_times_out() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_raw(fixture("client_credentials.json"), "application/json")
                .set_delay(Duration::from_secs(5)),
        )
        .mount(&server)
        .await;
    let client = client_builder(&server)
        .timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    let err = client
        .acquire_token_by_password("u", &Password::new("pw"), &Scopes::empty())
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
}
