//! Shared helpers for the HTTP tests: a wiremock token endpoint, fixtures, request capture.
#![allow(dead_code, unreachable_pub)]

pub mod clock;
pub mod hostile;
pub mod redis;
pub mod replay_store;
pub mod trace;
pub mod workload;

use b2c_token::{authority::PolicyForm, client::ClientBuilder, Authority, Client};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

pub const TENANT: &str = "contoso";
pub const POLICY: &str = "B2C_1_ropc";
pub const CLIENT_ID: &str = "bef22d56-552f-4a5b-b90a-1988a7d634ce";
pub const TOKEN_PATH: &str = "/contoso.onmicrosoft.com/B2C_1_ropc/oauth2/v2.0/token";

/// A fixture file's text, from the crate's own copy.
pub fn fixture(name: &str) -> String {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// An authority in the canonical path form, served by `server`.
pub fn authority(server: &MockServer, form: PolicyForm) -> Authority {
    Authority::builder(TENANT, POLICY)
        .base_url(&server.uri())
        .policy_form(form)
        .build()
        .unwrap()
}

/// A client for `server` that does not retry: these tests check what one response maps to.
pub fn client_builder(server: &MockServer) -> ClientBuilder {
    Client::builder(authority(server, PolicyForm::Path), CLIENT_ID).retry_policy(b2c_token::client::RetryPolicy::none())
}

/// Answers every POST to the canonical token path with `status` and `body` as JSON.
pub async fn token_endpoint(server: &MockServer, status: u16, body: &str) {
    Mock::given(method("POST"))
        .and(path(TOKEN_PATH))
        .respond_with(ResponseTemplate::new(status).set_body_raw(body.to_owned(), "application/json"))
        .mount(server)
        .await;
}

/// The one request the server received.
pub async fn only_request(server: &MockServer) -> Request {
    let mut requests = server.received_requests().await.unwrap();
    assert_eq!(requests.len(), 1, "expected exactly one request");
    requests.remove(0)
}

pub fn body(request: &Request) -> String {
    String::from_utf8(request.body.clone()).unwrap()
}

pub fn header<'a>(request: &'a Request, name: &str) -> Option<&'a str> {
    request.headers.get(name).map(|v| v.to_str().unwrap())
}

/// Asserts the headers every token request carries.
pub fn assert_standard_headers(request: &Request) {
    assert_eq!(request.method.as_str(), "POST");
    assert_eq!(
        header(request, "content-type"),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(header(request, "accept"), Some("application/json"));
    assert_eq!(
        header(request, "user-agent"),
        Some(concat!("b2c-token/", env!("CARGO_PKG_VERSION")))
    );
    let id = header(request, "client-request-id").expect("client-request-id");
    assert!(uuid_like(id), "{id}");
}

pub fn uuid_like(s: &str) -> bool {
    s.len() == 36
        && s.chars().enumerate().all(|(i, c)| {
            if [8, 13, 18, 23].contains(&i) {
                c == '-'
            } else {
                c.is_ascii_hexdigit()
            }
        })
}

/// The fake tenant's confidential client (with its secret) at `policy`.
pub fn fake_daemon(tenant: &b2c_token::test_tenant::FakeTenant, policy: &str) -> ClientBuilder {
    tenant.confidential_client(policy).unwrap()
}

/// The fake tenant's confidential client at its sign-in policy, built, without retries: what
/// most cache and integration tests talk to.
pub fn daemon(tenant: &b2c_token::test_tenant::FakeTenant) -> Client {
    tenant
        .confidential_client(b2c_token::test_tenant::defaults::SIGNIN_POLICY)
        .unwrap()
        .retry_policy(b2c_token::client::RetryPolicy::none())
        .build()
        .unwrap()
}

/// The fake tenant's public (ROPC) client at `policy`.
pub fn fake_public(tenant: &b2c_token::test_tenant::FakeTenant, policy: &str) -> ClientBuilder {
    tenant.public_client(policy).unwrap()
}
