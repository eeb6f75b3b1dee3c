//! One `b2c_token.fetch` span per fetch that tells why the request was made (issue 28, item 3):
//! the grant, the reason (a first miss, an expired token, an explicit invalidation, a 401 from
//! the API, a proactive refresh), the attempts, the request ID to quote to Microsoft, and the
//! outcome. Read from a captured subscriber, every field compared.

use std::time::Duration;

use crate::support::trace::{ClosedSpan, Spans};
use b2c_token::test_tenant::{defaults, FakeTenant, Fault};
use b2c_token::{Scopes, TokenCache};

fn fetches(spans: &Spans) -> Vec<ClosedSpan> {
    spans.closed("b2c_token.fetch")
}

fn field<'a>(span: &'a ClosedSpan, name: &str) -> &'a str {
    span.fields.get(name).map_or("<absent>", String::as_str)
}

#[tokio::test]
async fn each_fetch_says_why_it_was_made() {
    let (spans, _guard) = Spans::start();
    let tenant = FakeTenant::start().await.unwrap();
    let client = tenant
        .confidential_client(defaults::SIGNIN_POLICY)
        .unwrap()
        .build()
        .unwrap();
    let cache = TokenCache::new();
    let source = cache.client_credentials(&client, &Scopes::new([tenant.api_default_scope()]).unwrap());

    let first = source.token().await.unwrap();
    source.token().await.unwrap(); // a hit: no span
    assert!(source.invalidate_if_current(&first)); // an API answered 401
    source.token().await.unwrap();
    cache.invalidate(source.key());
    source.token().await.unwrap();
    // One attempt fails (503), the retry succeeds.
    tenant.inject(Fault::ServiceUnavailable, 1);
    cache.invalidate(source.key());
    source.token().await.unwrap();

    let fetches = fetches(&spans);
    let reasons: Vec<_> = fetches.iter().map(|span| field(span, "reason")).collect();
    assert_eq!(reasons, ["miss", "rejected_by_api", "invalidated", "invalidated"]);
    for span in &fetches {
        assert_eq!(field(span, "grant"), "client_credentials");
        assert_eq!(field(span, "outcome"), "token");
        assert!(crate::support::uuid_like(field(span, "correlation_id")), "{span:?}");
    }
    let attempts: Vec<_> = fetches.iter().map(|span| field(span, "attempts")).collect();
    assert_eq!(attempts, ["1", "1", "1", "2"]);
    // The request ID on the span is the one the tenant received last.
    let last_sent = tenant
        .requests()
        .last()
        .unwrap()
        .header("client-request-id")
        .unwrap()
        .to_owned();
    assert_eq!(field(&fetches[3], "correlation_id"), last_sent);
}

#[tokio::test]
async fn expiry_and_proactive_refresh_are_told_apart_and_failures_name_their_kind() {
    let (spans, _guard) = Spans::start();
    // 4 s tokens: the refresh window opens 2 s before expiry.
    let tenant = FakeTenant::builder()
        .access_token_lifetime(Duration::from_secs(4))
        .start()
        .await
        .unwrap();
    let client = tenant
        .confidential_client(defaults::SIGNIN_POLICY)
        .unwrap()
        .build()
        .unwrap();
    let cache = TokenCache::new();
    let scopes = Scopes::new([tenant.api_default_scope()]).unwrap();
    let source = cache.client_credentials(&client, &scopes);
    source.token().await.unwrap();
    // Same key, another credential, while the token is live: refused by the tenant.
    let wrong = tenant
        .confidential_client(defaults::SIGNIN_POLICY)
        .unwrap()
        .client_secret("not the secret")
        .build()
        .unwrap();
    assert!(cache.client_credentials(&wrong, &scopes).token().await.is_err());
    source.token().await.unwrap(); // read since the fetch: refreshed ahead of expiry
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    // Nobody reads the refreshed token: it expires, and the next call fetches.
    tokio::time::sleep(Duration::from_millis(4_000)).await;
    source.token().await.unwrap();

    let told: Vec<_> = fetches(&spans)
        .iter()
        .map(|span| (field(span, "reason").to_owned(), field(span, "outcome").to_owned()))
        .collect();
    let expected = [
        ("miss", "token"),
        ("other_credential", "rejected"),
        ("proactive_refresh", "token"),
        ("expired", "token"),
    ];
    assert_eq!(
        told,
        expected.map(|(reason, outcome)| (reason.to_owned(), outcome.to_owned()))
    );
}
