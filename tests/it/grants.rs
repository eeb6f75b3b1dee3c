//! Every grant and every URL form, asserting the exact request on the wire.

use crate::support::*;
use b2c_token::{
    authority::PolicyForm, client::ClientAuthentication, secret::RefreshToken, Authority, Client, Password, Scopes,
};
use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

const API_DEFAULT: &str = "https://contoso.onmicrosoft.com/api/.default";

#[tokio::test]
async fn ropc_sends_the_documented_form_without_a_secret() {
    let server = MockServer::start().await;
    token_endpoint(&server, 200, &fixture("ropc_initial_string_expiry.json")).await;
    // A secret is configured, and must still not be sent: ROPC is a public-client flow.
    let client = client_builder(&server)
        .client_secret("the-client-secret")
        .build()
        .unwrap();

    let token = client
        .acquire_token_by_password("alice@contoso.com", &Password::new("Passxword1"), &Scopes::empty())
        .await
        .unwrap();

    let request = only_request(&server).await;
    assert_eq!(request.url.path(), TOKEN_PATH);
    assert_eq!(request.url.query(), None);
    assert_standard_headers(&request);
    assert_eq!(header(&request, "authorization"), None);
    assert_eq!(
        body(&request),
        format!("grant_type=password&username=alice%40contoso.com&password=Passxword1&scope=openid+{CLIENT_ID}+offline_access&client_id={CLIENT_ID}")
    );
    assert!(token.access_token().is_some() && token.refresh_token().is_some() && token.id_token().is_some());
}

#[tokio::test]
async fn ropc_with_explicit_scopes_and_response_type() {
    let server = MockServer::start().await;
    token_endpoint(&server, 200, &fixture("ropc_initial_string_expiry.json")).await;
    let client = client_builder(&server).send_response_type(true).build().unwrap();
    let scopes = Scopes::new(["openid", "https://contoso.onmicrosoft.com/api/read", "offline_access"]).unwrap();

    client
        .acquire_token_by_password("alice", &Password::new("pw"), &scopes)
        .await
        .unwrap();

    assert_eq!(
        body(&only_request(&server).await),
        format!("grant_type=password&username=alice&password=pw&scope=openid+https%3A%2F%2Fcontoso.onmicrosoft.com%2Fapi%2Fread+offline_access&response_type=token+id_token&client_id={CLIENT_ID}")
    );
}

#[tokio::test]
async fn special_characters_in_credentials_are_form_encoded() {
    let server = MockServer::start().await;
    token_endpoint(&server, 200, &fixture("ropc_initial_string_expiry.json")).await;
    let client = client_builder(&server).build().unwrap();

    client
        .acquire_token_by_password("a b&c=d+e%f/g", &Password::new("p w&x=y+z%25/ü€"), &Scopes::empty())
        .await
        .unwrap();

    let body = body(&only_request(&server).await);
    assert!(body.contains("&username=a+b%26c%3Dd%2Be%25f%2Fg&"), "{body}");
    assert!(
        body.contains("&password=p+w%26x%3Dy%2Bz%2525%2F%C3%BC%E2%82%AC&"),
        "{body}"
    );
    // And it decodes back to exactly what was given.
    let fields: Vec<(String, String)> = url::form_urlencoded::parse(body.as_bytes()).into_owned().collect();
    assert!(fields.contains(&("username".into(), "a b&c=d+e%f/g".into())));
    assert!(fields.contains(&("password".into(), "p w&x=y+z%25/ü€".into())));
}

#[tokio::test]
async fn client_credentials_sends_the_secret_in_the_body() {
    let server = MockServer::start().await;
    token_endpoint(&server, 200, &fixture("client_credentials.json")).await;
    let client = client_builder(&server).client_secret("s3cr3t value").build().unwrap();

    let token = client
        .acquire_token_by_client_credentials(&Scopes::new([API_DEFAULT]).unwrap())
        .await
        .unwrap();

    let request = only_request(&server).await;
    assert_standard_headers(&request);
    assert_eq!(header(&request, "authorization"), None);
    assert_eq!(
        body(&request),
        format!("grant_type=client_credentials&scope=https%3A%2F%2Fcontoso.onmicrosoft.com%2Fapi%2F.default&client_id={CLIENT_ID}&client_secret=s3cr3t+value")
    );
    assert!(token.access_token().is_some());
    assert!(token.refresh_token().is_none() && token.id_token().is_none());
}

#[tokio::test]
async fn client_credentials_with_basic_authentication() {
    let server = MockServer::start().await;
    token_endpoint(&server, 200, &fixture("client_credentials.json")).await;
    let client = Client::builder(authority(&server, PolicyForm::Path), "my-client:1")
        .client_secret("p@ss:w rd")
        .client_authentication(ClientAuthentication::Basic)
        .build()
        .unwrap();

    client
        .acquire_token_by_client_credentials(&Scopes::new([API_DEFAULT]).unwrap())
        .await
        .unwrap();

    let request = only_request(&server).await;
    // RFC 6749 §2.3.1: form-encode each part, then base64("id:secret").
    use base64::Engine as _;
    let expected = base64::engine::general_purpose::STANDARD.encode("my-client%3A1:p%40ss%3Aw+rd");
    assert_eq!(
        header(&request, "authorization"),
        Some(format!("Basic {expected}").as_str())
    );
    assert_eq!(
        body(&request),
        "grant_type=client_credentials&scope=https%3A%2F%2Fcontoso.onmicrosoft.com%2Fapi%2F.default&client_id=my-client%3A1"
    );
}

#[tokio::test]
async fn client_credentials_without_secret_or_scope_is_a_config_error_and_sends_nothing() {
    let server = MockServer::start().await;
    token_endpoint(&server, 200, &fixture("client_credentials.json")).await;
    let public = client_builder(&server).build().unwrap();
    let err = public
        .acquire_token_by_client_credentials(&Scopes::new([API_DEFAULT]).unwrap())
        .await
        .unwrap_err();
    assert!(matches!(err, b2c_token::Error::Config(_)), "{err}");
    assert!(err.to_string().contains("client secret"), "{err}");
    let confidential = client_builder(&server).client_secret("x").build().unwrap();
    let err = confidential
        .acquire_token_by_client_credentials(&Scopes::empty())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("scope"), "{err}");
    assert!(server.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn refresh_sends_scope_and_only_the_configured_extras() {
    let server = MockServer::start().await;
    token_endpoint(&server, 200, &fixture("ropc_refresh_numeric.json")).await;
    let public = client_builder(&server).build().unwrap();
    let refresh = RefreshToken::new("eyJraWQiOiJjcGltY29yZV8wOTI1MjAxNSJ9.a.b.c.d");

    let token = public
        .acquire_token_by_refresh_token(&refresh, &Scopes::empty())
        .await
        .unwrap();

    assert_eq!(
        body(&only_request(&server).await),
        format!("grant_type=refresh_token&refresh_token=eyJraWQiOiJjcGltY29yZV8wOTI1MjAxNSJ9.a.b.c.d&scope=openid+{CLIENT_ID}+offline_access&client_id={CLIENT_ID}")
    );
    assert_eq!(
        token.refresh_token().unwrap().expose_secret(),
        "eyJraWQiOiJjcGltY29yZV8wOTI1MjAxNSIsInZlciI6IjEuMCIsInppcCI6IkRlZmxhdGUiLCJzZXIiOiIxLjAi"
    );
}

#[tokio::test]
async fn refresh_of_a_confidential_grant_sends_secret_and_resource() {
    let server = MockServer::start().await;
    token_endpoint(&server, 200, &fixture("refresh_string_times.json")).await;
    let client = client_builder(&server)
        .client_secret("web-secret")
        .refresh_resource("bef22d56")
        .build()
        .unwrap();
    let scopes = Scopes::new(["https://contoso.onmicrosoft.com/api/read", "offline_access"]).unwrap();

    client
        .acquire_token_by_refresh_token(&RefreshToken::new("rt"), &scopes)
        .await
        .unwrap();

    assert_eq!(
        body(&only_request(&server).await),
        format!("grant_type=refresh_token&refresh_token=rt&resource=bef22d56&scope=https%3A%2F%2Fcontoso.onmicrosoft.com%2Fapi%2Fread+offline_access&client_id={CLIENT_ID}&client_secret=web-secret")
    );
}

/// Each URL form reaches the path and query B2C expects.
#[tokio::test]
async fn every_authority_form_posts_to_the_right_place() {
    let guid = "914d88b1-1111-4222-8333-944455556666";
    type MakeAuthority = Box<dyn Fn(&str) -> Authority>;
    let cases: Vec<(MakeAuthority, &str, Option<&str>)> = vec![
        (
            Box::new(|base| Authority::builder(TENANT, POLICY).base_url(base).build().unwrap()),
            TOKEN_PATH,
            None,
        ),
        (
            Box::new(|base| {
                Authority::builder(TENANT, POLICY)
                    .base_url(base)
                    .policy_form(PolicyForm::Query)
                    .build()
                    .unwrap()
            }),
            "/contoso.onmicrosoft.com/oauth2/v2.0/token",
            Some("p=B2C_1_ropc"),
        ),
        (
            Box::new(|base| {
                Authority::builder(TENANT, POLICY)
                    .base_url(base)
                    .policy_form(PolicyForm::Tfp)
                    .build()
                    .unwrap()
            }),
            "/tfp/contoso.onmicrosoft.com/B2C_1_ropc/oauth2/v2.0/token",
            None,
        ),
        (
            Box::new(move |base| Authority::builder(guid, POLICY).base_url(base).build().unwrap()),
            "/914d88b1-1111-4222-8333-944455556666/B2C_1_ropc/oauth2/v2.0/token",
            None,
        ),
        (
            Box::new(move |base| {
                Authority::builder(TENANT, POLICY)
                    .tenant_id(guid)
                    .base_url(base)
                    .policy_form(PolicyForm::Query)
                    .build()
                    .unwrap()
            }),
            "/914d88b1-1111-4222-8333-944455556666/oauth2/v2.0/token",
            Some("p=B2C_1_ropc"),
        ),
        (
            Box::new(|base| Authority::from_token_url(&format!("{base}/any/oauth2/token")).unwrap()),
            "/any/oauth2/token",
            None,
        ),
    ];
    for (make, expected_path, expected_query) in cases {
        let server = MockServer::start().await;
        let mut mock = Mock::given(method("POST")).and(path(expected_path));
        if let Some(q) = expected_query {
            let (k, v) = q.split_once('=').unwrap();
            mock = mock.and(query_param(k, v));
        }
        mock.respond_with(
            ResponseTemplate::new(200).set_body_raw(fixture("client_credentials.json"), "application/json"),
        )
        .expect(1)
        .mount(&server)
        .await;
        let client = Client::builder(make(&server.uri()), CLIENT_ID)
            .client_secret("s")
            .build()
            .unwrap();
        client
            .acquire_token_by_client_credentials(&Scopes::new([API_DEFAULT]).unwrap())
            .await
            .unwrap();
        let request = only_request(&server).await;
        assert_eq!(request.url.path(), expected_path);
        assert_eq!(request.url.query(), expected_query);
    }
}

#[tokio::test]
async fn token_client_does_not_follow_redirects() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(TOKEN_PATH))
        .respond_with(ResponseTemplate::new(307).insert_header("location", format!("{}/elsewhere", server.uri())))
        .mount(&server)
        .await;
    let client = client_builder(&server).build().unwrap();
    let err = client
        .acquire_token_by_password("u", &Password::new("pw"), &Scopes::empty())
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(307));
    assert_eq!(
        server.received_requests().await.unwrap().len(),
        1,
        "the redirect must not be followed"
    );
}
