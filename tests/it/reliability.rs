//! Faults × grants, retries, throttling and the ROPC lockout rails, against the fake tenant.
//!
//! Each cell of the fault matrix ends in success after the expected number of attempts or in
//! the right typed error, with the request count asserted and nothing bad left in the cache.

use crate::support;

use std::time::Duration;

use b2c_token::test_tenant::{defaults, FakeTenant, Fault};
use b2c_token::{
    client::RetryPolicy, error::B2cCode, error::UnexpectedKind, Client, Error, Password, Scopes, Token, TokenCache,
    TokenSource,
};

/// Fast back-offs so the suite runs in seconds; `Retry-After` up to 2 s is honoured as sent.
fn quick_retries() -> RetryPolicy {
    RetryPolicy::default()
        .backoff(Duration::from_millis(10), Duration::from_millis(50))
        .throttle_backoff(Duration::from_millis(10))
        .max_retry_after(Duration::from_secs(2))
        .budget(Duration::from_secs(10))
}

fn client(tenant: &FakeTenant, policy: &str, confidential: bool) -> Client {
    let id = if confidential {
        defaults::CONFIDENTIAL_CLIENT_ID
    } else {
        defaults::PUBLIC_CLIENT_ID
    };
    let mut builder = Client::builder(tenant.authority(policy).unwrap(), id)
        .timeout(Duration::from_millis(500))
        .retry_policy(quick_retries());
    if confidential {
        builder = builder.client_secret(defaults::CLIENT_SECRET);
    }
    builder.build().unwrap()
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Grant {
    Password,
    ClientCredentials,
    Refresh,
}

#[derive(Debug)]
enum Expect {
    /// Success after this many requests.
    Token(usize),
    /// This error after one request.
    Fails(fn(&Error) -> bool),
}

struct Cell {
    name: &'static str,
    fault: Option<Fault>,
    unknown_policy: bool,
    expect: Expect,
}

fn matrix() -> Vec<Cell> {
    let cell = |name, fault, expect| Cell {
        name,
        fault: Some(fault),
        unknown_policy: false,
        expect,
    };
    vec![
        cell(
            "429 Retry-After seconds",
            Fault::TooManyRequests(Some(1)),
            Expect::Token(2),
        ),
        cell(
            "429 Retry-After HTTP-date",
            Fault::TooManyRequestsUntil(Duration::from_secs(1)),
            Expect::Token(2),
        ),
        cell("503", Fault::ServiceUnavailable, Expect::Token(2)),
        cell("connection dropped", Fault::DropConnection, Expect::Token(2)),
        cell(
            "delay past timeout",
            Fault::Delay(Duration::from_secs(2)),
            Expect::Token(2),
        ),
        cell("truncated body", Fault::TruncatedBody, Expect::Token(2)),
        cell(
            "malformed JSON",
            Fault::MalformedJson,
            Expect::Fails(
                |e| matches!(e, Error::UnexpectedResponse(r) if matches!(r.kind(), UnexpectedKind::MalformedJson { .. })),
            ),
        ),
        cell(
            "HTML with 200",
            Fault::HtmlPage,
            Expect::Fails(|e| matches!(e, Error::UnexpectedResponse(r) if r.kind() == &UnexpectedKind::NotJson)),
        ),
        cell(
            "oversized body",
            Fault::OversizedBody,
            Expect::Fails(
                |e| matches!(e, Error::UnexpectedResponse(r) if matches!(r.kind(), UnexpectedKind::BodyTooLarge { .. })),
            ),
        ),
        Cell {
            name: "404 unknown policy",
            fault: None,
            unknown_policy: true,
            expect: Expect::Fails(|e| e.status() == Some(404) && !e.is_retryable()),
        },
    ]
}

/// Runs one cell: the grant's request with the fault in front of it.
async fn run(grant: Grant, cell: &Cell) {
    let tenant = FakeTenant::start().await.unwrap();
    let policy = match (grant, cell.unknown_policy) {
        (_, true) => "B2C_1_unknown",
        (Grant::ClientCredentials, false) => defaults::SIGNIN_POLICY,
        _ => defaults::ROPC_POLICY,
    };
    let cache = TokenCache::new();
    let api = Scopes::new([tenant.api_default_scope()]).unwrap();
    // The refresh grant needs a refresh token: sign in first, before any fault.
    let refresh_token = if grant == Grant::Refresh {
        let signed_in = client(&tenant, defaults::ROPC_POLICY, false)
            .acquire_token_by_password(defaults::USERNAME, &Password::new(defaults::PASSWORD), &Scopes::empty())
            .await
            .unwrap();
        signed_in.refresh_token().cloned()
    } else {
        None
    };
    let client = client(&tenant, policy, grant == Grant::ClientCredentials);
    let source: Option<TokenSource> = match grant {
        Grant::Password => Some(cache.password(
            &client,
            defaults::USERNAME,
            &Password::new(defaults::PASSWORD),
            &Scopes::empty(),
        )),
        Grant::ClientCredentials => Some(cache.client_credentials(&client, &api)),
        Grant::Refresh => None,
    };
    if let Some(fault) = &cell.fault {
        tenant.inject(fault.clone(), 1);
    }
    let before = tenant.requests().len();
    let result: Result<Token, Error> = match (&source, &refresh_token) {
        (Some(source), _) => source.token().await,
        (None, Some(refresh_token)) => {
            client
                .acquire_token_by_refresh_token(refresh_token, &Scopes::empty())
                .await
        }
        (None, None) => unreachable!(),
    };
    let sent = tenant.requests().len() - before;
    let what = format!("{grant:?} × {}", cell.name);
    match (&cell.expect, result) {
        (Expect::Token(requests), Ok(token)) => {
            assert_eq!(sent, *requests, "{what}: requests");
            assert!(token.access_token().is_some(), "{what}");
            if let Some(source) = &source {
                assert!(source.cached().is_some(), "{what}: the good token is cached");
            }
        }
        (Expect::Fails(check), Err(error)) => {
            assert!(check(&error), "{what}: wrong error {error:?}");
            assert_eq!(sent, 1, "{what}: not retried");
            if let Some(source) = &source {
                assert!(source.cached().is_none(), "{what}: nothing cached after a failure");
            }
        }
        (expect, result) => panic!("{what}: expected {expect:?}, got {result:?}"),
    }
}

#[tokio::test]
async fn fault_matrix_password() {
    for cell in matrix() {
        run(Grant::Password, &cell).await;
    }
}

#[tokio::test]
async fn fault_matrix_client_credentials() {
    for cell in matrix() {
        run(Grant::ClientCredentials, &cell).await;
    }
}

#[tokio::test]
async fn fault_matrix_refresh() {
    for cell in matrix() {
        run(Grant::Refresh, &cell).await;
    }
}

#[tokio::test]
async fn retries_stop_at_the_limit_and_return_the_last_error() {
    let tenant = FakeTenant::start().await.unwrap();
    let client = support::fake_daemon(&tenant, defaults::SIGNIN_POLICY)
        .retry_policy(quick_retries().max_retries(2))
        .build()
        .unwrap();
    tenant.inject(Fault::ServiceUnavailable, 10);
    let err = client
        .acquire_token_by_client_credentials(&Scopes::new([tenant.api_default_scope()]).unwrap())
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(503));
    assert_eq!(tenant.total_token_requests(), 3, "first attempt + 2 retries");
}

#[tokio::test]
async fn a_retry_after_beyond_the_budget_fails_fast_as_throttled() {
    let tenant = FakeTenant::start().await.unwrap();
    let client = support::fake_daemon(&tenant, defaults::SIGNIN_POLICY)
        .retry_policy(RetryPolicy::default().budget(Duration::from_secs(5)))
        .build()
        .unwrap();
    tenant.inject(Fault::TooManyRequests(Some(3600)), 1);
    let started = std::time::Instant::now();
    let err = client
        .acquire_token_by_client_credentials(&Scopes::new([tenant.api_default_scope()]).unwrap())
        .await
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(2), "failed fast");
    match &err {
        Error::Throttled {
            retry_after, status, ..
        } => {
            assert_eq!(
                *retry_after,
                Duration::from_secs(60),
                "Retry-After capped at 60 s by default"
            );
            assert_eq!(*status, Some(429));
        }
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().contains("retry after 60 s"), "{err}");
    assert_eq!(tenant.total_token_requests(), 1);
}

#[tokio::test]
async fn wrong_passwords_are_not_retried_and_not_resent() {
    let tenant = FakeTenant::start().await.unwrap();
    let client = client(&tenant, defaults::ROPC_POLICY, false);
    let wrong = Password::new("not-the-password");

    let first = client
        .acquire_token_by_password(defaults::USERNAME, &wrong, &Scopes::empty())
        .await
        .unwrap_err();
    assert_eq!(first.b2c_code(), Some(B2cCode::InvalidCredentials));
    assert_eq!(tenant.total_token_requests(), 1, "a rejected password is never retried");

    for _ in 0..5 {
        let again = client
            .acquire_token_by_password("ALICE@contoso.com", &wrong, &Scopes::empty())
            .await
            .unwrap_err();
        assert_eq!(again.b2c_code(), Some(B2cCode::InvalidCredentials));
        assert!(matches!(&again, Error::Rejected(r) if r.is_remembered()), "{again}");
        assert!(again.to_string().contains("not sent again"), "{again}");
    }
    assert_eq!(tenant.total_token_requests(), 1, "repeats answered from memory");

    // Other credentials are not affected.
    client
        .acquire_token_by_password(defaults::USERNAME, &Password::new(defaults::PASSWORD), &Scopes::empty())
        .await
        .unwrap();
    assert_eq!(tenant.total_token_requests(), 2);
    // The memory keeps no password: the client's Debug and the error show none.
    assert!(!format!("{client:?}{first:?}").contains("not-the-password"));
}

#[tokio::test]
async fn the_memory_of_a_rejection_expires() {
    let tenant = FakeTenant::start().await.unwrap();
    let client = support::fake_public(&tenant, defaults::ROPC_POLICY)
        .remember_rejected_credentials(Duration::from_millis(200))
        .build()
        .unwrap();
    let wrong = Password::new("nope");
    for _ in 0..3 {
        let _ = client
            .acquire_token_by_password(defaults::USERNAME, &wrong, &Scopes::empty())
            .await;
    }
    assert_eq!(tenant.total_token_requests(), 1);
    tokio::time::sleep(Duration::from_millis(250)).await;
    let _ = client
        .acquire_token_by_password(defaults::USERNAME, &wrong, &Scopes::empty())
        .await;
    assert_eq!(tenant.total_token_requests(), 2);
}

mod b2c_codes {
    use super::*;
    use wiremock::matchers::method;
    use wiremock::{Mock, MockServer, ResponseTemplate};

    async fn server_answering(first: &str, times: u64) -> (MockServer, Client) {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(400).set_body_raw(first.to_owned(), "application/json"))
            .up_to_n_times(times)
            .mount(&server)
            .await;
        let ok = r#"{"access_token":"a.b.c","token_type":"Bearer","expires_in":3600}"#;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(200).set_body_raw(ok, "application/json"))
            .mount(&server)
            .await;
        let authority = b2c_token::Authority::from_token_url(&format!("{}/token", server.uri())).unwrap();
        let client = Client::builder(authority, "client")
            .client_secret("s")
            .retry_policy(quick_retries())
            .build()
            .unwrap();
        (server, client)
    }

    fn body(code: &str) -> String {
        format!(
            r#"{{"error":"invalid_request","error_description":"{code}: busy\r\nCorrelation ID: 00000000-0000-0000-0000-000000000000\r\n"}}"#
        )
    }

    #[tokio::test]
    async fn busy_codes_are_retried() {
        for code in ["AADB2C90035", "AADB2C90229", "AADB2C90244"] {
            let (server, client) = server_answering(&body(code), 2).await;
            client
                .acquire_token_by_client_credentials(&Scopes::parse("api/.default").unwrap())
                .await
                .unwrap();
            assert_eq!(server.received_requests().await.unwrap().len(), 3, "{code}");
        }
    }

    #[tokio::test]
    async fn internal_error_is_retried_once_only() {
        let (server, client) = server_answering(&body("AADB2C90085"), 5).await;
        let err = client
            .acquire_token_by_client_credentials(&Scopes::parse("api/.default").unwrap())
            .await
            .unwrap_err();
        assert_eq!(err.b2c_code(), Some(B2cCode::InternalError));
        assert_eq!(server.received_requests().await.unwrap().len(), 2);
    }

    #[tokio::test]
    async fn other_4xx_are_never_retried() {
        for code in ["AADB2C90081", "AADB2C90084", "AADB2C99027", "AADB2C90117"] {
            let (server, client) = server_answering(&body(code), 5).await;
            let err = client
                .acquire_token_by_client_credentials(&Scopes::parse("api/.default").unwrap())
                .await
                .unwrap_err();
            assert!(!err.is_retryable(), "{code}");
            assert_eq!(server.received_requests().await.unwrap().len(), 1, "{code}");
        }
    }
}
