//! `BearerLayer` on a real hyper client against a loopback API (issue 15): the header, the
//! allow-list, one replay after a 401, no replay when the body cannot be cloned, and the layer
//! over axum's and hyper's own body types (issue 27, item 5).

use crate::support;

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use crate::support::hostile::{response, HostileServer};
use b2c_token::outgoing::{BearerLayer, BoxError};
use b2c_token::test_tenant::{defaults, FakeTenant};
use b2c_token::{Password, Scopes, TokenCache};
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::rt::TokioExecutor;
use tower_layer::Layer as _;
use tower_service::Service as _;

/// An API that records the bearer tokens it sees and refuses the ones in `refused`.
struct Api {
    server: HostileServer,
    seen: Arc<Mutex<Vec<Option<String>>>>,
    refused: Arc<Mutex<Vec<String>>>,
}

async fn api() -> Api {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let refused: Arc<Mutex<Vec<String>>> = Arc::new(Mutex::new(Vec::new()));
    let (record, refuse) = (Arc::clone(&seen), Arc::clone(&refused));
    let server = HostileServer::start(move |request| {
        let bearer = request
            .header("authorization")
            .and_then(|value| value.strip_prefix("Bearer "))
            .map(str::to_owned);
        record.lock().unwrap().push(bearer.clone());
        if bearer.is_some_and(|token| refuse.lock().unwrap().contains(&token)) {
            response(401, &[("www-authenticate", "Bearer error=\"invalid_token\"")], "")
        } else {
            response(200, &[], "ok")
        }
    })
    .await;
    Api { server, seen, refused }
}

async fn send<S, B>(service: &mut S, request: http::Request<B>) -> http::Response<hyper::body::Incoming>
where
    S: tower_service::Service<http::Request<B>, Response = http::Response<hyper::body::Incoming>, Error = BoxError>,
{
    std::future::poll_fn(|cx| service.poll_ready(cx)).await.unwrap();
    service.call(request).await.unwrap()
}

fn get(url: &str) -> http::Request<Full<Bytes>> {
    http::Request::get(url).body(Full::new(Bytes::new())).unwrap()
}

#[tokio::test]
async fn the_layer_attaches_the_token_only_for_allowed_hosts_and_replays_once_after_a_401() {
    let tenant = FakeTenant::start().await.unwrap();
    let api = api().await;
    let client = support::daemon(&tenant);
    let cache = TokenCache::new();
    let scopes = Scopes::new([tenant.api_default_scope()]).unwrap();
    let layer = BearerLayer::client_credentials(&cache, &client, &scopes)
        .allow_host(&api.server.addr.to_string())
        .unwrap();
    let hyper = HyperClient::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let mut service = layer.layer(hyper);

    let ok = send(&mut service, get(&api.server.url("/orders"))).await;
    assert_eq!(ok.status(), 200);
    let first = api.seen.lock().unwrap()[0].clone().expect("a bearer token");
    assert!(first.starts_with("eyJ"));

    // Another host (the same server under another name): no token.
    let other = format!("http://localhost:{}/orders", api.server.addr.port());
    send(&mut service, get(&other)).await;
    assert_eq!(
        api.seen.lock().unwrap()[1],
        None,
        "the token went to a host not allowed"
    );

    // The API refuses the token: one refresh, one replay with the new token.
    api.refused.lock().unwrap().push(first.clone());
    let replayed = send(&mut service, get(&api.server.url("/orders"))).await;
    assert_eq!(replayed.status(), 200);
    let seen = api.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 4);
    assert!(seen[2].as_deref() == Some(first.as_str()) && seen[3].is_some() && seen[3] != seen[2]);
    assert_eq!(tenant.total_token_requests(), 2);
    let _ = replayed.into_body().collect().await;
}

/// A body that cannot be sent twice (as a stream would be).
struct Streaming(Full<Bytes>);

impl http_body::Body for Streaming {
    type Data = Bytes;
    type Error = std::convert::Infallible;
    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        Pin::new(&mut self.0).poll_frame(cx)
    }
}

#[tokio::test]
async fn a_body_that_cannot_be_cloned_is_not_replayed() {
    let tenant = FakeTenant::start().await.unwrap();
    let api = api().await;
    let client = tenant
        .confidential_client(defaults::SIGNIN_POLICY)
        .unwrap()
        .build()
        .unwrap();
    let cache = TokenCache::new();
    let source = cache.client_credentials(&client, &Scopes::new([tenant.api_default_scope()]).unwrap());
    let token = source.token().await.unwrap();
    api.refused
        .lock()
        .unwrap()
        .push(token.access_token().unwrap().expose_secret().to_owned());
    let layer = BearerLayer::new(source)
        .allow_host(&api.server.addr.to_string())
        .unwrap();
    let hyper = HyperClient::builder(TokioExecutor::new()).build_http::<Streaming>();
    let mut service = layer.layer(hyper);
    let request = http::Request::post(api.server.url("/upload"))
        .body(Streaming(Full::new(Bytes::from_static(b"payload"))))
        .unwrap();
    let refused = send(&mut service, request).await;
    assert_eq!(refused.status(), 401, "the 401 goes to the caller");
    assert_eq!(api.server.requests(), 1, "no replay of a body that cannot be cloned");
}

/// The replay after a 401 is the same request: its extensions too, which the services below
/// the layer may read (a per-request setting, a tracing context).
#[tokio::test]
async fn the_replay_keeps_the_requests_extensions() {
    #[derive(Clone, Debug, PartialEq)]
    struct Tag(&'static str);

    /// Answers 401 to the first token it sees and 200 to any other; records each request's tag.
    #[derive(Clone)]
    struct Recorder {
        tags: Arc<Mutex<Vec<Option<Tag>>>>,
        first_token: Arc<Mutex<Option<http::HeaderValue>>>,
    }

    impl tower_service::Service<http::Request<String>> for Recorder {
        type Response = http::Response<String>;
        type Error = std::convert::Infallible;
        type Future = std::future::Ready<Result<Self::Response, Self::Error>>;

        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, request: http::Request<String>) -> Self::Future {
            self.tags
                .lock()
                .unwrap()
                .push(request.extensions().get::<Tag>().cloned());
            let token = request.headers().get(http::header::AUTHORIZATION).cloned();
            let mut first = self.first_token.lock().unwrap();
            let refused = first.is_none() || *first == token;
            first.get_or_insert_with(|| token.unwrap());
            let status = if refused { 401 } else { 200 };
            let mut response = http::Response::new(String::new());
            *response.status_mut() = http::StatusCode::from_u16(status).unwrap();
            std::future::ready(Ok(response))
        }
    }

    let tenant = FakeTenant::start().await.unwrap();
    let cache = TokenCache::new();
    let scopes = Scopes::new([tenant.api_default_scope()]).unwrap();
    let recorder = Recorder {
        tags: Arc::new(Mutex::new(Vec::new())),
        first_token: Arc::new(Mutex::new(None)),
    };
    let mut service = BearerLayer::client_credentials(&cache, &support::daemon(&tenant), &scopes)
        .allow_host("api.contoso.com")
        .unwrap()
        .layer(recorder.clone());
    let mut request = http::Request::get("https://api.contoso.com/orders")
        .body(String::new())
        .unwrap();
    request.extensions_mut().insert(Tag("order-7"));
    std::future::poll_fn(|cx| service.poll_ready(cx)).await.unwrap();
    let response = service.call(request).await.unwrap();
    assert_eq!(response.status(), 200, "replayed with a fresh token");
    assert_eq!(
        *recorder.tags.lock().unwrap(),
        [Some(Tag("order-7")), Some(Tag("order-7"))],
        "the replay lost the request's extensions"
    );
}

/// The layer takes any body type, axum's and hyper's boxed and streaming bodies included
/// (before, only bodies implementing the crate's `ReplayBody`, which a user could not implement
/// for them). A streaming body is sent once: a 401 goes to the caller and the next request has
/// a new token. Also: `BearerLayer::password`, the constructor every layer now has.
#[tokio::test]
async fn the_layer_works_over_axum_and_hyper_bodies() {
    type Boxed = http_body_util::combinators::BoxBody<Bytes, std::convert::Infallible>;
    let tenant = FakeTenant::start().await.unwrap();
    let api = api().await;
    let client = tenant.public_client(defaults::ROPC_POLICY).unwrap().build().unwrap();
    let cache = TokenCache::new();
    let scopes = Scopes::new([tenant.api_scope("read")]).unwrap();
    let password = Password::from(defaults::PASSWORD);
    let layer = BearerLayer::password(&cache, &client, defaults::USERNAME, &password, &scopes)
        .allow_host(&api.server.addr.to_string())
        .unwrap();

    let mut axum_service = layer.layer(HyperClient::builder(TokioExecutor::new()).build_http::<axum::body::Body>());
    let request = http::Request::post(api.server.url("/upload"))
        .body(axum::body::Body::from("payload"))
        .unwrap();
    assert_eq!(send(&mut axum_service, request).await.status(), 200);
    let first = api.seen.lock().unwrap()[0].clone().expect("a bearer token");

    let mut boxed_service = layer.layer(HyperClient::builder(TokioExecutor::new()).build_http::<Boxed>());
    let boxed = |text: &'static str| Full::new(Bytes::from_static(text.as_bytes())).boxed();
    let request = http::Request::post(api.server.url("/upload"))
        .body(boxed("payload"))
        .unwrap();
    assert_eq!(send(&mut boxed_service, request).await.status(), 200);
    assert_eq!(api.seen.lock().unwrap()[1].as_deref(), Some(first.as_str()));

    // Refused: an axum body is not replayed; the next request carries a new token. (The fake
    // tenant's user tokens carry whole-second times: a second later the new one differs.)
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    api.refused.lock().unwrap().push(first.clone());
    let request = http::Request::post(api.server.url("/upload"))
        .body(axum::body::Body::from("payload"))
        .unwrap();
    assert_eq!(
        send(&mut axum_service, request).await.status(),
        401,
        "the 401 goes to the caller"
    );
    assert_eq!(api.server.requests(), 3, "a streaming body is not sent twice");
    let request = http::Request::post(api.server.url("/upload"))
        .body(axum::body::Body::from("payload"))
        .unwrap();
    assert_eq!(send(&mut axum_service, request).await.status(), 200);
    let seen = api.seen.lock().unwrap().clone();
    assert!(seen[3].is_some() && seen[3].as_deref() != Some(first.as_str()));
}
