//! `BearerAuth` against a local protected API and the fake tenant.

use crate::support;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use b2c_token::test_tenant::{defaults, FakeTenant};
use b2c_token::{
    client::GrantKind, client::RetryPolicy, outgoing::BearerAuth, outgoing::TokenScopes, Client, Scopes, TokenCache,
};
use reqwest_middleware::{ClientBuilder, ClientWithMiddleware, Middleware, Next};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

/// A protected API: records the bearer tokens it sees and rejects the ones it is told to.
#[derive(Clone, Default)]
struct Api {
    seen: Arc<Mutex<Vec<Option<String>>>>,
    rejected: Arc<Mutex<HashSet<String>>>,
    reject_all: Arc<Mutex<bool>>,
}

impl Respond for Api {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let bearer = request
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::to_owned);
        self.seen.lock().unwrap().push(bearer.clone());
        let reject = *self.reject_all.lock().unwrap()
            || bearer
                .as_ref()
                .is_none_or(|t| self.rejected.lock().unwrap().contains(t));
        if reject {
            ResponseTemplate::new(401).insert_header(
                "www-authenticate",
                r#"Bearer error="invalid_token", error_description="The token expired""#,
            )
        } else {
            ResponseTemplate::new(200).set_body_string("ok")
        }
    }
}

impl Api {
    fn seen(&self) -> Vec<Option<String>> {
        self.seen.lock().unwrap().clone()
    }
}

struct Setup {
    tenant: FakeTenant,
    api_server: MockServer,
    api: Api,
    http: ClientWithMiddleware,
    cache: TokenCache,
    client: Client,
}

async fn setup_with(extra: Option<Arc<dyn Middleware>>) -> Setup {
    let tenant = FakeTenant::start().await.unwrap();
    let api_server = MockServer::start().await;
    let api = Api::default();
    Mock::given(wiremock::matchers::any())
        .respond_with(api.clone())
        .mount(&api_server)
        .await;
    let client = support::fake_daemon(&tenant, defaults::SIGNIN_POLICY)
        .retry_policy(RetryPolicy::none())
        .build()
        .unwrap();
    let cache = TokenCache::new();
    let auth = BearerAuth::client_credentials(&cache, &client, &Scopes::new([tenant.api_default_scope()]).unwrap())
        .allow_host(&api_server.address().to_string())
        .unwrap();
    let mut builder = ClientBuilder::new(reqwest::Client::new()).with(auth);
    if let Some(extra) = extra {
        builder = builder.with_arc(extra);
    }
    Setup {
        tenant,
        api_server,
        api,
        http: builder.build(),
        cache,
        client,
    }
}

impl Setup {
    /// Sends one GET, then makes the API refuse the token it carried: that token, now stale.
    async fn refuse_first_token(&self) -> String {
        self.http.get(self.api_server.uri()).send().await.unwrap();
        let stale = self.api.seen()[0].clone().unwrap();
        self.api.rejected.lock().unwrap().insert(stale.clone());
        stale
    }
}

async fn setup() -> Setup {
    setup_with(None).await
}

#[tokio::test]
async fn attaches_the_cached_token_without_refetching() {
    let s = setup().await;
    for _ in 0..3 {
        let response = s
            .http
            .get(format!("{}/orders", s.api_server.uri()))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    let seen = s.api.seen();
    let expected = s
        .cache
        .client_credentials(&s.client, &Scopes::new([s.tenant.api_default_scope()]).unwrap())
        .cached()
        .unwrap();
    assert!(seen
        .iter()
        .all(|t| t.as_deref() == Some(expected.access_token().unwrap().expose_secret())));
    assert_eq!(s.tenant.token_requests(GrantKind::ClientCredentials), 1);
}

#[tokio::test]
async fn a_stale_token_gets_one_refresh_and_one_retry() {
    let s = setup().await;
    let stale = s.refuse_first_token().await;

    let response = s.http.post(s.api_server.uri()).body("payload").send().await.unwrap();
    assert_eq!(response.status(), 200);
    let seen = s.api.seen();
    assert_eq!(seen.len(), 3, "one rejected attempt, one retry");
    assert_eq!(seen[1].as_deref(), Some(stale.as_str()));
    assert_ne!(seen[2].as_deref(), Some(stale.as_str()));
    assert_eq!(s.tenant.token_requests(GrantKind::ClientCredentials), 2);
}

#[tokio::test]
async fn a_second_401_is_returned_without_looping() {
    let s = setup().await;
    *s.api.reject_all.lock().unwrap() = true;
    let response = s.http.get(s.api_server.uri()).send().await.unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(s.api.seen().len(), 2);
    assert_eq!(s.tenant.token_requests(GrantKind::ClientCredentials), 2);
}

#[tokio::test]
async fn other_hosts_get_no_token() {
    let s = setup().await;
    let elsewhere = MockServer::start().await;
    let other = Api::default();
    Mock::given(wiremock::matchers::any())
        .respond_with(other.clone())
        .mount(&elsewhere)
        .await;
    let response = s.http.get(elsewhere.uri()).send().await.unwrap();
    assert_eq!(response.status(), 401, "no token attached");
    assert_eq!(other.seen(), vec![None]);
    assert_eq!(s.tenant.total_token_requests(), 0, "no token even fetched");
}

#[tokio::test]
async fn plain_http_to_a_remote_host_is_refused() {
    let tenant = FakeTenant::start().await.unwrap();
    let client = support::fake_daemon(&tenant, defaults::SIGNIN_POLICY)
        .retry_policy(RetryPolicy::none())
        .build()
        .unwrap();
    let auth = BearerAuth::client_credentials(
        &TokenCache::new(),
        &client,
        &Scopes::new([tenant.api_default_scope()]).unwrap(),
    )
    .allow_host("api.example.invalid")
    .unwrap();
    let http = ClientBuilder::new(reqwest::Client::new()).with(auth).build();
    let err = http.get("http://api.example.invalid/x").send().await.unwrap_err();
    assert!(
        err.to_string().contains("refusing to send a bearer token over http://"),
        "{err}"
    );
    assert_eq!(tenant.total_token_requests(), 0);
}

/// Sits after `BearerAuth` and checks how the header was set.
struct InspectHeader(Arc<Mutex<Vec<bool>>>);

#[async_trait::async_trait]
impl Middleware for InspectHeader {
    async fn handle(
        &self,
        req: reqwest::Request,
        ext: &mut http::Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<reqwest::Response> {
        if let Some(value) = req.headers().get("authorization") {
            self.0.lock().unwrap().push(value.is_sensitive());
        }
        next.run(req, ext).await
    }
}

#[tokio::test]
async fn the_header_is_marked_sensitive() {
    let flags = Arc::new(Mutex::new(Vec::new()));
    let s = setup_with(Some(Arc::new(InspectHeader(flags.clone())))).await;
    s.http.get(s.api_server.uri()).send().await.unwrap();
    assert_eq!(*flags.lock().unwrap(), vec![true]);
}

#[tokio::test]
async fn per_request_scopes_use_their_own_token() {
    let s = setup().await;
    s.http.get(s.api_server.uri()).send().await.unwrap();
    // A second confidential app scope on the same tenant: the fake accepts only the API's
    // .default, so ask for it through the extension with a differently ordered duplicate-free set.
    let other = Scopes::new([s.tenant.api_default_scope()]).unwrap();
    let response = s
        .http
        .get(s.api_server.uri())
        .with_extension(TokenScopes(other))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        s.tenant.token_requests(GrantKind::ClientCredentials),
        1,
        "same scope set, same cached token"
    );

    let unknown = Scopes::new([s.tenant.api_scope("other/.default")]).unwrap();
    let err = s
        .http
        .get(s.api_server.uri())
        .with_extension(TokenScopes(unknown))
        .send()
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("AADB2C90117"),
        "the other scope's own token was requested: {err}"
    );
    assert_eq!(s.tenant.token_requests(GrantKind::ClientCredentials), 2);
}

#[tokio::test]
async fn an_expired_token_is_replaced_before_the_call() {
    let s = setup().await;
    let _clock = crate::support::clock::manual_clock();
    s.http.get(s.api_server.uri()).send().await.unwrap();
    // Background refreshes fail until the 1 h token has expired.
    s.tenant
        .inject(b2c_token::test_tenant::Fault::ServiceUnavailable, 10_000);
    tokio::time::advance(Duration::from_secs(3601)).await;
    let source = s
        .cache
        .client_credentials(&s.client, &Scopes::new([s.tenant.api_default_scope()]).unwrap());
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while source.cached().is_some() {
        assert!(std::time::Instant::now() < deadline);
        tokio::task::yield_now().await;
    }
    s.tenant.clear_faults();
    // The failed refreshes are remembered for their back-off (60 s at most).
    tokio::time::advance(Duration::from_secs(91)).await;
    let response = s.http.get(s.api_server.uri()).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let seen = s.api.seen();
    assert_eq!(seen.len(), 2, "the expired token was never sent");
    assert_ne!(seen[0], seen[1]);
}

#[tokio::test]
async fn plain_helper_gives_a_sensitive_bearer_header() {
    let tenant = FakeTenant::start().await.unwrap();
    let client = support::fake_daemon(&tenant, defaults::SIGNIN_POLICY)
        .retry_policy(RetryPolicy::none())
        .build()
        .unwrap();
    let source = TokenCache::new().client_credentials(&client, &Scopes::new([tenant.api_default_scope()]).unwrap());
    let header = source.authorization_header().await.unwrap();
    assert!(header.is_sensitive());
    assert!(header.to_str().unwrap().starts_with("Bearer eyJ"));
    assert!(!format!("{header:?}").contains("eyJ"));
    // Built once per token: later calls share the first one's bytes rather than copy them.
    let again = source.authorization_header().await.unwrap();
    assert_eq!(again.as_bytes().as_ptr(), header.as_bytes().as_ptr());
}

/// Issue 10, item 7: an API that keeps answering 401 does not drain the token endpoint. The
/// first 401 forces one refresh and one replay; further 401s within the cooldown leave the
/// fresh token alone (the token is not the problem) and are returned as they are.
#[tokio::test]
async fn an_api_that_keeps_answering_401_does_not_drain_the_token_endpoint() {
    let s = setup().await;
    *s.api.reject_all.lock().unwrap() = true;
    for _ in 0..20 {
        let response = s
            .http
            .get(format!("{}/orders", s.api_server.uri()))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401);
    }
    let token_requests = s.tenant.token_requests(GrantKind::ClientCredentials);
    assert_eq!(token_requests, 2, "the first token and one 401-forced refresh");
    // 20 calls, one replay: the API saw 21 requests.
    assert_eq!(s.api.seen().len(), 21);
}

/// Issue 15: a user-defined `TokenProvider` (here a mock that hands out tokens from a real
/// fetch, counting what `BearerAuth` asks of it) drives `BearerAuth` like a `TokenSource`:
/// the cached token first, one `rejected` call and one replay after a 401.
#[tokio::test]
async fn a_user_defined_provider_drives_bearer_auth() {
    use b2c_token::{outgoing::TokenProvider, outgoing::TokenProviderFuture, Token};
    use std::sync::atomic::{AtomicUsize, Ordering};

    struct Mock {
        tokens: Vec<Token>,
        next: AtomicUsize,
        rejected: AtomicUsize,
    }
    impl TokenProvider for Mock {
        fn token(&self) -> TokenProviderFuture<'_> {
            let token = self.tokens[self.next.load(Ordering::SeqCst) % self.tokens.len()].clone();
            Box::pin(async move { Ok(token) })
        }
        fn cached(&self) -> Option<Token> {
            Some(self.tokens[self.next.load(Ordering::SeqCst) % self.tokens.len()].clone())
        }
        fn rejected(&self, _: &Token) -> bool {
            self.rejected.fetch_add(1, Ordering::SeqCst);
            self.next.fetch_add(1, Ordering::SeqCst);
            true
        }
    }

    let s = setup().await;
    let scopes = Scopes::new([s.tenant.api_default_scope()]).unwrap();
    let first = s.client.acquire_token_by_client_credentials(&scopes).await.unwrap();
    let second = s.client.acquire_token_by_client_credentials(&scopes).await.unwrap();
    assert!(first.access_token().unwrap().expose_secret() != second.access_token().unwrap().expose_secret());
    let bearer = |token: &Token| Some(token.access_token().unwrap().expose_secret().to_owned());
    s.api.rejected.lock().unwrap().insert(bearer(&first).unwrap());
    let mock = Arc::new(Mock {
        tokens: vec![first.clone(), second.clone()],
        next: AtomicUsize::new(0),
        rejected: AtomicUsize::new(0),
    });
    struct Shared(Arc<Mock>);
    impl TokenProvider for Shared {
        fn token(&self) -> TokenProviderFuture<'_> {
            self.0.token()
        }
        fn cached(&self) -> Option<Token> {
            self.0.cached()
        }
        fn rejected(&self, token: &Token) -> bool {
            self.0.rejected(token)
        }
    }
    let auth = BearerAuth::new(Shared(Arc::clone(&mock)))
        .allow_host(&s.api_server.address().to_string())
        .unwrap();
    let http = ClientBuilder::new(reqwest::Client::new()).with(auth).build();
    let before = s.tenant.total_token_requests();
    let response = http.get(format!("{}/orders", s.api_server.uri())).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(mock.rejected.load(Ordering::SeqCst), 1);
    let seen = s.api.seen();
    assert!(seen.len() == 2 && seen[0] == bearer(&first) && seen[1] == bearer(&second));
    assert_eq!(
        s.tenant.total_token_requests(),
        before,
        "the mock, not the cache, supplied the tokens"
    );
}

/// A request without a body is replayed from its parts: same method, URL (query included),
/// headers and version, with the new token.
#[tokio::test]
async fn a_bodiless_request_is_replayed_whole() {
    let s = setup().await;
    let stale = s.refuse_first_token().await;
    let response = s
        .http
        .delete(format!("{}/orders/7?force=true", s.api_server.uri()))
        .header("x-request-tag", "keep-me")
        .timeout(std::time::Duration::from_secs(5))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let received = s.api_server.received_requests().await.unwrap();
    let (first, replay) = (&received[1], &received[2]);
    for request in [first, replay] {
        assert_eq!(request.method.as_str(), "DELETE");
        assert_eq!(request.url.path(), "/orders/7");
        assert_eq!(request.url.query(), Some("force=true"));
        assert_eq!(request.headers.get("x-request-tag").unwrap(), "keep-me");
    }
    let bearer = |r: &wiremock::Request| r.headers.get("authorization").unwrap().to_str().unwrap().to_owned();
    assert_eq!(bearer(first), format!("Bearer {stale}"));
    assert_ne!(bearer(replay), bearer(first));
}

/// A 401 that answered a redirected request is returned, not replayed: the replay would go
/// back to the first URL with a fresh token on the strength of another URL's refusal.
#[tokio::test]
async fn a_401_after_a_redirect_is_returned_not_replayed() {
    let s = setup().await;
    Mock::given(wiremock::matchers::path("/start"))
        .respond_with(ResponseTemplate::new(307).insert_header("location", "/final"))
        .with_priority(1)
        .mount(&s.api_server)
        .await;
    *s.api.reject_all.lock().unwrap() = true;
    let response = s
        .http
        .get(format!("{}/start", s.api_server.uri()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let paths: Vec<String> = s
        .api_server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| r.url.path().to_owned())
        .collect();
    assert_eq!(paths, ["/start", "/final"]);
}

/// The replay after a 401 carries the extensions the caller gave the request, to the layers
/// after `BearerAuth` (it sends a copy: the first attempt had the caller's own).
#[tokio::test]
async fn the_replay_carries_the_callers_extensions() {
    #[derive(Clone, Debug, PartialEq)]
    struct Tag(&'static str);
    struct Record(Arc<Mutex<Vec<Option<Tag>>>>);
    #[async_trait::async_trait]
    impl Middleware for Record {
        async fn handle(
            &self,
            request: reqwest::Request,
            extensions: &mut http::Extensions,
            next: reqwest_middleware::Next<'_>,
        ) -> reqwest_middleware::Result<reqwest::Response> {
            self.0.lock().unwrap().push(extensions.get::<Tag>().cloned());
            next.run(request, extensions).await
        }
    }
    let tags = Arc::new(Mutex::new(Vec::new()));
    let s = setup_with(Some(Arc::new(Record(Arc::clone(&tags))))).await;
    s.refuse_first_token().await;
    let response = s
        .http
        .get(s.api_server.uri())
        .with_extension(Tag("order-7"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        *tags.lock().unwrap(),
        [None, Some(Tag("order-7")), Some(Tag("order-7"))],
        "the first request had no tag; the second and its replay had the caller's"
    );
}

/// A 401 to a request whose body cannot be replayed (a stream) is returned, and the refused
/// token is still dropped: the next request fetches a fresh one instead of sending the
/// refused token again (as `BearerLayer` does).
#[tokio::test]
async fn a_401_to_a_streamed_body_drops_the_refused_token() {
    let s = setup().await;
    let stale = s.refuse_first_token().await;
    let response = s
        .http
        .post(s.api_server.uri())
        .body(reqwest::Body::wrap(String::from("order 7")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401, "a stream is not replayed");
    let response = s.http.get(s.api_server.uri()).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let seen = s.api.seen();
    assert_eq!(seen.len(), 3, "the GET after the 401 needed no replay");
    assert_eq!(seen[1].as_deref(), Some(stale.as_str()));
    assert_ne!(
        seen[2].as_deref(),
        Some(stale.as_str()),
        "the refused token was sent again"
    );
    assert_eq!(s.tenant.token_requests(GrantKind::ClientCredentials), 2);
}

/// Issue 27, item 6: a host entry with a scheme, path or query is refused when the layer is
/// made (before: accepted, and then no token was ever sent, with no error and no log).
#[tokio::test]
async fn allow_host_refuses_what_is_not_a_host() {
    let tenant = FakeTenant::start().await.unwrap();
    let cache = TokenCache::new();
    let client = support::daemon(&tenant);
    let scopes = Scopes::new([tenant.api_default_scope()]).unwrap();
    for entry in ["http://127.0.0.1:8080", "api.contoso.com/orders", "api.contoso.com?x"] {
        let error = BearerAuth::client_credentials(&cache, &client, &scopes)
            .allow_host(entry)
            .unwrap_err();
        assert!(error.to_string().contains("without a scheme, path or query"), "{error}");
        assert!(
            b2c_token::outgoing::BearerLayer::client_credentials(&cache, &client, &scopes)
                .allow_host(entry)
                .is_err()
        );
    }
    assert!(BearerAuth::client_credentials(&cache, &client, &scopes)
        .allow_host("127.0.0.1:8080")
        .is_ok());
}
