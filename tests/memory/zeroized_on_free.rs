//! Freed memory never holds a bearer token in clear: the header values the crate builds from
//! a token (`Token::authorization_header`, the tower layer's and the tonic interceptor's
//! cached values) and the token itself are zeroized before the allocator gets their memory
//! back. An allocator that scans every freed block for a piece of the token proves it.
//!
//! What is out of the crate's hands is left out of the window: the HTTP stack's buffers
//! (hyper copies a header into its write buffer) and the fake tenant's records.

use crate::support;

use std::sync::atomic::Ordering;

use b2c_token::test_tenant::FakeTenant;
use b2c_token::{outgoing::BearerInterceptor, outgoing::BearerLayer, Scopes, Token, TokenCache};
use tower_layer::Layer as _;
use tower_service::Service as _;

/// Looks for 32 bytes from the middle of `token`'s access token (its signature) in every
/// block freed until [`disarm`].
fn arm(token: &Token) {
    let access = token.access_token().unwrap().expose_secret().as_bytes();
    let middle = access.len() - 40;
    let needle: &'static [u8] = Box::leak(access[middle..middle + 32].to_vec().into_boxed_slice());
    crate::FOUND.store(0, Ordering::Relaxed);
    crate::NEEDLE.store(needle.as_ptr().cast_mut(), Ordering::Release);
    crate::NEEDLE_LEN.store(needle.len(), Ordering::Release);
}

/// Stops scanning; the number of freed blocks that held the token.
fn disarm() -> usize {
    crate::NEEDLE_LEN.store(0, Ordering::Release);
    crate::FOUND.load(Ordering::Relaxed)
}

/// A service that answers 200 to requests that carry a token, without any I/O.
#[derive(Clone)]
struct Answer;

impl tower_service::Service<http::Request<String>> for Answer {
    type Response = http::Response<String>;
    type Error = std::convert::Infallible;
    type Future = std::future::Ready<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, _: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<String>) -> Self::Future {
        assert!(request.headers().contains_key(http::header::AUTHORIZATION));
        std::future::ready(Ok(http::Response::new(String::new())))
    }
}

#[tokio::test(flavor = "current_thread")]
async fn header_values_and_tokens_leave_no_copy_of_the_token_in_freed_memory() {
    let _turn = crate::ONE_AT_A_TIME.lock().await;
    let tenant = FakeTenant::start().await.unwrap();
    let daemon = support::daemon(&tenant);
    let cache = TokenCache::new();
    let api = Scopes::new([tenant.api_default_scope()]).unwrap();
    let source = cache.client_credentials(&daemon, &api);
    let token = source.token().await.unwrap();

    // The scanner sees a copy that is not zeroized: otherwise a pass would prove nothing.
    arm(&token);
    drop(std::hint::black_box(
        token.access_token().unwrap().expose_secret().to_owned(),
    ));
    assert_eq!(
        disarm(),
        1,
        "the scanner finds a plain copy of the token when it is freed"
    );

    arm(&token);
    // A header value and its clones, as callers and `BearerAuth` use them.
    let header = token.authorization_header().unwrap();
    drop(header.clone());
    drop(header);
    // The tower layer's cached header value, and the request that carried it.
    let mut service = BearerLayer::client_credentials(&cache, &daemon, &api)
        .allow_any_host()
        .layer(Answer);
    std::future::poll_fn(|cx| service.poll_ready(cx)).await.unwrap();
    let request = http::Request::get("https://api.contoso.com/orders")
        .body(String::new())
        .unwrap();
    service.call(request).await.unwrap();
    drop(service);
    // The tonic interceptor's cached metadata value, and the request that carried it.
    let mut interceptor = BearerInterceptor::new(source.clone());
    let request = tonic::service::Interceptor::call(&mut interceptor, tonic::Request::new(())).unwrap();
    assert!(request.metadata().contains_key("authorization"));
    drop(request);
    drop(interceptor);
    // The token itself, once nothing holds it any more.
    drop(token);
    drop(source);
    drop(cache);
    assert_eq!(disarm(), 0, "freed blocks held the access token in clear");
    drop(tenant);
}
