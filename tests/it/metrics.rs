//! The `metrics` feature (issue 28, item 2): what the client, the cache and the validator report
//! through a real OpenTelemetry SDK (in-memory exporter), with OpenTelemetry's naming, and that
//! no attribute value carries a user name, client ID, tenant, scope, secret or token.

use std::collections::BTreeMap;

use b2c_token::metrics as names;
use b2c_token::test_tenant::{defaults, FakeTenant};
use b2c_token::{Password, Scopes, TokenCache, Validator};
use opentelemetry::metrics::MeterProvider as _;
use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData};
use opentelemetry_sdk::metrics::{InMemoryMetricExporter, PeriodicReader, SdkMeterProvider};

const REFUSED_USER: &str = "metrics-test@contoso.com";

/// One data point: its attributes and its value (a sum) or count (a histogram).
#[derive(Debug, Clone)]
struct Point {
    attributes: BTreeMap<String, String>,
    value: f64,
}

/// An OpenTelemetry SDK as an application sets it up, with an in-memory exporter to read.
fn sdk() -> (SdkMeterProvider, InMemoryMetricExporter, opentelemetry::metrics::Meter) {
    let exporter = InMemoryMetricExporter::default();
    let provider = SdkMeterProvider::builder()
        .with_reader(PeriodicReader::builder(exporter.clone()).build())
        .build();
    let meter = provider.meter("test");
    (provider, exporter, meter)
}

/// Everything reported so far, by metric name.
fn collected(provider: &SdkMeterProvider, exporter: &InMemoryMetricExporter) -> BTreeMap<String, (String, Vec<Point>)> {
    provider.force_flush().unwrap();
    points(exporter)
}

fn points(exporter: &InMemoryMetricExporter) -> BTreeMap<String, (String, Vec<Point>)> {
    let mut out: BTreeMap<String, (String, Vec<Point>)> = BTreeMap::new();
    let finished = exporter.get_finished_metrics().unwrap();
    // Cumulative temporality: the last export holds every count.
    let last = finished.last().expect("an export");
    for scope in last.scope_metrics() {
        for metric in scope.metrics() {
            let attributes = |kvs: &mut dyn Iterator<Item = &opentelemetry::KeyValue>| {
                kvs.map(|kv| (kv.key.to_string(), kv.value.to_string()))
                    .collect::<BTreeMap<_, _>>()
            };
            let found: Vec<Point> = match metric.data() {
                AggregatedMetrics::U64(MetricData::Sum(sum)) => sum
                    .data_points()
                    .map(|p| Point {
                        attributes: attributes(&mut p.attributes()),
                        value: p.value() as f64,
                    })
                    .collect(),
                AggregatedMetrics::F64(MetricData::Histogram(histogram)) => histogram
                    .data_points()
                    .map(|p| Point {
                        attributes: attributes(&mut p.attributes()),
                        value: p.count() as f64,
                    })
                    .collect(),
                other => panic!("{}: unexpected data {other:?}", metric.name()),
            };
            out.insert(metric.name().to_owned(), (metric.unit().to_owned(), found));
        }
    }
    out
}

fn sum(points: &[Point], filter: &[(&str, &str)]) -> f64 {
    points
        .iter()
        .filter(|p| {
            filter
                .iter()
                .all(|(k, v)| p.attributes.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|p| p.value)
        .sum()
}

#[tokio::test]
async fn client_cache_and_validator_report_through_opentelemetry_without_identifiers() {
    let (provider, exporter, meter) = sdk();

    let tenant = FakeTenant::start().await.unwrap();
    let daemon = tenant
        .confidential_client(defaults::SIGNIN_POLICY)
        .unwrap()
        .meter(&meter)
        .build()
        .unwrap();
    let cache = TokenCache::builder().meter(&meter).build();
    let scopes = Scopes::new([tenant.api_default_scope()]).unwrap();
    let source = cache.client_credentials(&daemon, &scopes);
    for _ in 0..10 {
        source.token().await.unwrap(); // 1 miss, 9 hits
    }
    let user = tenant
        .public_client(defaults::ROPC_POLICY)
        .unwrap()
        .meter(&meter)
        .build()
        .unwrap();
    let user_scopes = Scopes::new([tenant.api_scope("read")]).unwrap();
    user.acquire_token_by_password(defaults::USERNAME, &Password::from(defaults::PASSWORD), &user_scopes)
        .await
        .unwrap();
    // A user of this test's own: rejected passwords are remembered per account and process.
    let refused = user
        .acquire_token_by_password(REFUSED_USER, &Password::from("wrong password"), &user_scopes)
        .await;
    assert!(refused.is_err());

    let validator = Validator::builder(
        tenant.authority(defaults::SIGNIN_POLICY).unwrap(),
        defaults::API_CLIENT_ID,
    )
    .meter(&meter)
    .build()
    .unwrap();
    let token = source.token().await.unwrap();
    let bearer = token.access_token().unwrap().expose_secret().to_owned();
    validator.validate(&bearer).await.unwrap();
    validator.validate(&bearer).await.unwrap(); // remembered: counted all the same
    let mut expired = tenant.access_token_claims(defaults::SIGNIN_POLICY, &["read"]);
    expired.insert("exp".into(), 1_000_000_000.into());
    assert!(validator.validate(&tenant.mint(&expired)).await.is_err());
    assert!(validator.validate("not.a.token").await.is_err());

    let metrics = collected(&provider, &exporter);

    let (unit, requests) = &metrics[names::TOKEN_REQUESTS];
    assert_eq!(unit, "{request}");
    assert_eq!(sum(requests, &[("b2c_token.grant", "client_credentials")]), 1.0);
    assert_eq!(sum(requests, &[("b2c_token.grant", "password")]), 2.0);
    assert_eq!(
        sum(requests, &[("b2c_token.grant", "password"), ("error.type", "rejected")]),
        1.0
    );
    let (unit, durations) = &metrics[names::TOKEN_DURATION];
    assert_eq!(unit, "s");
    assert_eq!(sum(durations, &[]), 3.0, "one duration per call");

    let (_, lookups) = &metrics[names::CACHE_LOOKUPS];
    assert_eq!(sum(lookups, &[("b2c_token.cache.result", "miss")]), 1.0);
    assert!(sum(lookups, &[("b2c_token.cache.result", "hit")]) >= 9.0);
    assert!(metrics.contains_key(names::CACHE_REFRESHES));
    assert!(metrics.contains_key(names::CACHE_FETCH_FAILURES));
    assert!(metrics.contains_key(names::STORE_ERRORS));

    let (_, validations) = &metrics[names::VALIDATIONS];
    let result = |name| sum(validations, &[("b2c_token.validation.result", name)]);
    assert_eq!(
        (result("valid"), result("expired"), result("malformed")),
        (2.0, 1.0, 1.0)
    );
    let (_, key_fetches) = &metrics[names::KEY_FETCHES];
    assert_eq!(sum(key_fetches, &[]), 1.0);

    // Every name is one of the documented ones, in the crate's namespace.
    let documented = [
        names::TOKEN_REQUESTS,
        names::TOKEN_DURATION,
        names::CACHE_LOOKUPS,
        names::CACHE_REFRESHES,
        names::CACHE_FETCH_FAILURES,
        names::STORE_ERRORS,
        names::STORE_LOCK_WAIT,
        names::VALIDATIONS,
        names::KEY_FETCHES,
    ];
    // No attribute value identifies anyone or carries a secret: every value is from a short list.
    let forbidden = [
        defaults::USERNAME,
        REFUSED_USER,
        defaults::PASSWORD,
        defaults::CONFIDENTIAL_CLIENT_ID,
        defaults::PUBLIC_CLIENT_ID,
        defaults::CLIENT_SECRET,
        defaults::API_CLIENT_ID,
        defaults::TENANT,
        defaults::TENANT_ID,
        "onmicrosoft",
        "eyJ",
    ];
    for (name, (_, points)) in &metrics {
        assert!(documented.contains(&name.as_str()), "undocumented metric {name}");
        for point in points {
            for (key, value) in &point.attributes {
                assert!(
                    !forbidden.iter().any(|f| value.contains(f) || key.contains(f)),
                    "{name}: {key}={value}"
                );
            }
        }
    }
}

/// Caches and validators are observed per handle: two on one meter keep their own counts under
/// their names (before names, the last one observed stood for both).
#[tokio::test]
async fn two_caches_on_one_meter_report_under_their_names() {
    let (provider, exporter, meter) = sdk();
    let tenant = FakeTenant::start().await.unwrap();
    let daemon = tenant
        .confidential_client(defaults::SIGNIN_POLICY)
        .unwrap()
        .build()
        .unwrap();
    let scopes = Scopes::new([tenant.api_default_scope()]).unwrap();
    let orders = TokenCache::builder().meter(&meter).metrics_name("orders").build();
    let billing = TokenCache::builder().meter(&meter).metrics_name("billing").build();
    let unnamed = TokenCache::builder().meter(&meter).build();
    for (cache, calls) in [(&orders, 3), (&billing, 5), (&unnamed, 2)] {
        let source = cache.client_credentials(&daemon, &scopes);
        for _ in 0..calls {
            source.token().await.unwrap();
        }
    }
    let metrics = collected(&provider, &exporter);
    let (_, lookups) = &metrics[names::CACHE_LOOKUPS];
    let lookups_of = |name| sum(lookups, &[("b2c_token.cache.name", name)]);
    assert_eq!(
        (lookups_of("orders"), lookups_of("billing"), lookups_of("default")),
        (3.0, 5.0, 2.0),
        "{lookups:?}"
    );
}
