//! `BearerInterceptor` on a real tonic channel against a loopback tonic server (issue 15): the
//! server checks the bearer token on every call; the interceptor attaches it without an await,
//! says why when it has none, and starts a fetch so the next call has one.

use std::sync::{Arc, Mutex};

use b2c_token::test_tenant::{defaults, FakeTenant};
use b2c_token::{outgoing::BearerInterceptor, Scopes, TokenCache};
use tonic::transport::{Channel, Server};
use tonic::{Code, Request, Status};
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::health_server::HealthServer;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::server::{HealthReporter, HealthService};

/// A gRPC server on loopback whose health service demands a bearer token; records them.
async fn grpc_server(seen: Arc<Mutex<Vec<String>>>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let service = HealthService::from_health_reporter(HealthReporter::new());
    let check = move |request: Request<()>| -> Result<Request<()>, Status> {
        let bearer = request
            .metadata()
            .get("authorization")
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "))
            .ok_or_else(|| Status::unauthenticated("no bearer token"))?;
        seen.lock().unwrap().push(bearer.to_owned());
        Ok(request)
    };
    tokio::spawn(
        Server::builder()
            .add_service(HealthServer::with_interceptor(service, check))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    format!("http://{address}")
}

#[tokio::test]
async fn the_interceptor_attaches_the_cached_token_to_grpc_calls() {
    let tenant = FakeTenant::start().await.unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let address = grpc_server(Arc::clone(&seen)).await;
    let channel = Channel::from_shared(address).unwrap().connect().await.unwrap();

    let client = tenant
        .confidential_client(defaults::SIGNIN_POLICY)
        .unwrap()
        .build()
        .unwrap();
    let cache = TokenCache::new();
    let source = cache.client_credentials(&client, &Scopes::new([tenant.api_default_scope()]).unwrap());
    let interceptor = BearerInterceptor::new(source.clone());

    // Not warmed: a clear unauthenticated status, and a fetch started for the next call.
    let mut cold = HealthClient::with_interceptor(channel.clone(), interceptor.clone());
    let status = cold
        .check(HealthCheckRequest { service: String::new() })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    assert!(status.message().contains("warm()"), "{}", status.message());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while source.cached().is_none() {
        assert!(std::time::Instant::now() < deadline, "no background fetch");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }

    interceptor.warm().await.unwrap();
    let mut client = HealthClient::with_interceptor(channel, interceptor);
    for _ in 0..3 {
        client
            .check(HealthCheckRequest { service: String::new() })
            .await
            .unwrap();
    }
    let seen = seen.lock().unwrap().clone();
    let expected = source
        .cached()
        .unwrap()
        .access_token()
        .unwrap()
        .expose_secret()
        .to_owned();
    assert_eq!(seen.len(), 3);
    assert!(
        seen.iter().all(|token| *token == expected),
        "the cached token on every call"
    );
    assert_eq!(tenant.total_token_requests(), 1, "one fetch for all calls");
}
