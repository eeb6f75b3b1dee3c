//! A background job that calls a protected API every second with client-credentials tokens
//! attached by `BearerAuth`. The token is refreshed in the background; the job never notices.
//!
//! ```text
//! cargo run --example daemon --features test-tenant,reqwest-middleware                 # against the embedded fake tenant, 10 calls
//! DAEMON_CALLS=30 cargo run --example daemon --features test-tenant,reqwest-middleware
//! cargo run --example daemon --features test-tenant,reqwest-middleware,metrics       # prints the metrics at the end
//! ```
//!
//! With `metrics`, the client and the cache report to an OpenTelemetry SDK meter provider (an
//! in-memory exporter here; OTLP or Prometheus in a real service) and the job prints what was
//! collected when it ends.
//!
//! The fake tenant issues 4-second tokens here so that refreshes are visible: watch the token
//! prefix change while every call keeps succeeding. Against a real tenant, build the `Client`
//! from your authority and secret instead (see the quickstart) and point `API_URL` at your API.

use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use b2c_token::test_tenant::{defaults, FakeTenant};
use b2c_token::{client::GrantKind, outgoing::BearerAuth, Scopes, TokenCache};
use http_body_util::Full;
use hyper::body::Bytes;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let calls: usize = std::env::var("DAEMON_CALLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let tenant = FakeTenant::builder()
        .access_token_lifetime(Duration::from_secs(4))
        .start()
        .await?;
    let api = start_protected_api().await?;
    println!("Fake tenant at {}, protected API at http://{api}/.", tenant.base_url());

    // Once, at start-up: the client, the cache, and the HTTP client wrapped with BearerAuth.
    #[cfg(feature = "metrics")]
    let (provider, exporter) = metrics::provider();
    let client = tenant.confidential_client(defaults::SIGNIN_POLICY)?;
    #[cfg(feature = "metrics")]
    let client = client.meter(&metrics::meter(&provider));
    let client = client.build()?;
    let cache = TokenCache::builder();
    #[cfg(feature = "metrics")]
    let cache = cache.meter(&metrics::meter(&provider));
    let cache = cache.build();
    let scopes = Scopes::new([tenant.api_default_scope()])?;
    let auth = BearerAuth::client_credentials(&cache, &client, &scopes).allow_host(&api.to_string())?;
    let http = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
        .with(auth)
        .build();
    let source = cache.client_credentials(&client, &scopes);

    // The job: no token handling in sight.
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    for call in 1..=calls {
        ticker.tick().await;
        let response = http.get(format!("http://{api}/reports")).send().await?;
        let status = response.status();
        let shown = source
            .cached()
            .and_then(|t| t.access_token().map(|a| a.fingerprint()))
            .unwrap_or_default();
        println!(
            "call {call:>2}: HTTP {status}, token fingerprint {shown}, token requests so far: {}",
            tenant.token_requests(GrantKind::ClientCredentials)
        );
        if !status.is_success() {
            return Err(format!("the API answered {status}").into());
        }
    }
    println!(
        "{calls} calls, {} token requests: the token was refreshed in the background while the job ran.",
        tenant.token_requests(GrantKind::ClientCredentials)
    );
    #[cfg(feature = "metrics")]
    metrics::print(&provider, &exporter)?;
    Ok(())
}

/// An OpenTelemetry SDK set up as a service would (with an in-memory exporter standing in for
/// OTLP or Prometheus), and what it collected, printed.
#[cfg(feature = "metrics")]
mod metrics {
    use opentelemetry::metrics::MeterProvider as _;
    use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData};
    use opentelemetry_sdk::metrics::{InMemoryMetricExporter, PeriodicReader, SdkMeterProvider};

    pub(crate) fn provider() -> (SdkMeterProvider, InMemoryMetricExporter) {
        let exporter = InMemoryMetricExporter::default();
        let provider = SdkMeterProvider::builder()
            .with_reader(PeriodicReader::builder(exporter.clone()).build())
            .build();
        (provider, exporter)
    }

    pub(crate) fn meter(provider: &SdkMeterProvider) -> opentelemetry::metrics::Meter {
        provider.meter("daemon")
    }

    pub(crate) fn print(provider: &SdkMeterProvider, exporter: &InMemoryMetricExporter) -> Result<(), super::BoxError> {
        provider.force_flush()?;
        println!("Metrics:");
        let finished = exporter.get_finished_metrics()?;
        let Some(last) = finished.last() else {
            return Ok(());
        };
        for metric in last.scope_metrics().flat_map(|scope| scope.metrics()) {
            let points: Vec<String> = match metric.data() {
                AggregatedMetrics::U64(MetricData::Sum(sum)) => sum
                    .data_points()
                    .map(|p| format!("{}{}", p.value(), attributes(p.attributes())))
                    .collect(),
                AggregatedMetrics::F64(MetricData::Histogram(histogram)) => histogram
                    .data_points()
                    .map(|p| {
                        format!(
                            "{} calls, {:.1} ms total{}",
                            p.count(),
                            p.sum() * 1e3,
                            attributes(p.attributes())
                        )
                    })
                    .collect(),
                _ => continue,
            };
            println!("  {} ({}): {}", metric.name(), metric.unit(), points.join("; "));
        }
        Ok(())
    }

    fn attributes<'a>(attributes: impl Iterator<Item = &'a opentelemetry::KeyValue>) -> String {
        let shown: Vec<String> = attributes.map(|kv| format!("{}={}", kv.key, kv.value)).collect();
        if shown.is_empty() {
            String::new()
        } else {
            format!(" {{{}}}", shown.join(", "))
        }
    }
}

/// A tiny API that answers 200 to requests carrying a bearer token and 401 otherwise.
async fn start_protected_api() -> Result<std::net::SocketAddr, BoxError> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    let served = Arc::new(AtomicUsize::new(0));
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let served = Arc::clone(&served);
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
                    let served = Arc::clone(&served);
                    async move {
                        let authorized = request
                            .headers()
                            .get("authorization")
                            .and_then(|v| v.to_str().ok())
                            .is_some_and(|v| v.starts_with("Bearer "));
                        served.fetch_add(1, Ordering::Relaxed);
                        let mut response = hyper::Response::new(Full::new(Bytes::from_static(b"ok")));
                        if !authorized {
                            *response.status_mut() = hyper::StatusCode::UNAUTHORIZED;
                        }
                        Ok::<_, Infallible>(response)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok(address)
}
