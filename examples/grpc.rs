//! A gRPC client calling a protected gRPC service, both on loopback, with the bearer token from
//! the cache attached by `BearerInterceptor` (no await on the call path).
//!
//! `cargo run --example grpc --features test-tenant,tonic` (uses the embedded fake tenant; the server is tonic's health
//! service behind an interceptor that demands a bearer token).

use std::error::Error;

use b2c_token::test_tenant::{defaults, FakeTenant};
use b2c_token::{outgoing::BearerInterceptor, Scopes, TokenCache};
use tonic::transport::{Channel, Server};
use tonic::{Request, Status};
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::health_server::HealthServer;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::server::{HealthReporter, HealthService};

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let tenant = FakeTenant::start().await?;

    // The protected service: refuses calls without a bearer token.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = format!("http://{}", listener.local_addr()?);
    let require_bearer = |request: Request<()>| -> Result<Request<()>, Status> {
        match request.metadata().get("authorization").and_then(|v| v.to_str().ok()) {
            Some(value) if value.starts_with("Bearer ") => Ok(request),
            _ => Err(Status::unauthenticated("no bearer token")),
        }
    };
    let service = HealthService::from_health_reporter(HealthReporter::new());
    tokio::spawn(
        Server::builder()
            .add_service(HealthServer::with_interceptor(service, require_bearer))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );

    // The client: a cached, self-refreshing token on every call.
    let client = tenant.confidential_client(defaults::SIGNIN_POLICY)?.build()?;
    let cache = TokenCache::new();
    let source = cache.client_credentials(&client, &Scopes::new([tenant.api_default_scope()])?);
    let auth = BearerInterceptor::new(source);
    auth.warm().await?;
    let channel = Channel::from_shared(address)?.connect().await?;
    let mut health = HealthClient::with_interceptor(channel, auth);
    for call in 1..=3 {
        let response = health.check(HealthCheckRequest { service: String::new() }).await?;
        println!("call {call}: status {:?}", response.into_inner().status());
    }
    println!(
        "3 gRPC calls, {} token request(s): the interceptor reads the cache, no await per call.",
        tenant.total_token_requests()
    );
    Ok(())
}
