//! The fake tenant's HTTP plumbing: accept loop, request recording, fault injection.

use std::io;
use std::sync::Arc;

use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use url::Url;

use super::keys::KeyRing;
use super::request::TokenRequest;
use super::routes::{self, Reply, Route};
use super::{entra, grants, timestamps};
use super::{FakeTenant, FakeTenantBuilder, Fault, RecordedRequest, State};
use crate::authority::AuthorityKind;
use crate::client::grant::GrantKind;

/// Requests larger than this are not token requests; the fake refuses to buffer them.
const MAX_REQUEST_BYTES: usize = 64 * 1024;

pub(super) async fn start(config: FakeTenantBuilder) -> io::Result<FakeTenant> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    let (base_url, tls) = if config.tls {
        let (acceptor, ca_pem) = tls_acceptor()?;
        let url = format!("https://localhost:{}/", address.port());
        (url, Some((acceptor, ca_pem)))
    } else {
        (format!("http://{address}/"), None)
    };
    let base_url = Url::parse(&base_url).map_err(io::Error::other)?;
    let (acceptor, ca_pem) = tls.map_or((None, None), |(acceptor, pem)| (Some(acceptor), Some(pem)));
    let state = Arc::new(State {
        config,
        keys: KeyRing::generate()?,
        base_url,
        ca_pem,
        mutable: Default::default(),
    });

    let accept_state = Arc::clone(&state);
    let accept_loop = tokio::spawn(async move {
        let mut connections = JoinSet::new();
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            // TLS splits a response into several writes; with Nagle on, the last one waits for
            // the client's delayed ACK (40 ms) whenever it is small.
            let _ = stream.set_nodelay(true);
            while connections.try_join_next().is_some() {}
            let state = Arc::clone(&accept_state);
            let acceptor = acceptor.clone();
            connections.spawn(async move {
                let service = service_fn(move |request| handle(Arc::clone(&state), request));
                // A connection error is a test's dropped connection or a client gone away.
                match acceptor {
                    Some(acceptor) => {
                        let Ok(stream) = acceptor.accept(stream).await else {
                            return;
                        };
                        let _ = http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    }
                    None => {
                        let _ = http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    }
                }
            });
        }
    });
    Ok(FakeTenant { state, accept_loop })
}

/// A TLS acceptor with a certificate for `localhost` and `127.0.0.1`, issued by a CA made
/// for this tenant alone; the CA's PEM.
fn tls_acceptor() -> io::Result<(tokio_rustls::TlsAcceptor, String)> {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, SanType};
    let fail = |e: rcgen::Error| io::Error::other(format!("cannot make the fake tenant's certificate: {e}"));
    let ca_key = KeyPair::generate().map_err(fail)?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(fail)?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    // A name of its own: clients given several tenants' CAs in one bundle pick the issuer by
    // name, and two CAs with one name make each other's certificates fail to verify.
    ca_params.distinguished_name.push(
        DnType::CommonName,
        format!("b2c-token fake tenant CA {}", uuid::Uuid::new_v4().simple()),
    );
    let ca = ca_params.self_signed(&ca_key).map_err(fail)?;
    let leaf_key = KeyPair::generate().map_err(fail)?;
    let mut leaf_params = CertificateParams::new(vec!["localhost".to_owned()]).map_err(fail)?;
    leaf_params
        .subject_alt_names
        .push(SanType::IpAddress(std::net::IpAddr::from([127, 0, 0, 1])));
    let leaf = leaf_params.signed_by(&leaf_key, &ca, &ca_key).map_err(fail)?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(io::Error::other)?
        .with_no_client_auth()
        .with_single_cert(
            vec![leaf.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into()),
        )
        .map_err(io::Error::other)?;
    Ok((tokio_rustls::TlsAcceptor::from(Arc::new(config)), ca.pem()))
}

async fn handle(state: Arc<State>, request: Request<Incoming>) -> io::Result<Response<Full<Bytes>>> {
    let method = request.method().as_str().to_owned();
    let path = request.uri().path().to_owned();
    // The operator's side, for processes outside this one (benches/peers): counters and a
    // reset. Never recorded or counted; no tenant path starts with `_fake`.
    if let Some(admin) = path.strip_prefix("/_fake/") {
        return Ok(respond(admin_reply(&state, &method, admin)));
    }
    let query = request.uri().query().map(str::to_owned);
    let headers: Vec<(String, String)> = request
        .headers()
        .iter()
        .map(|(name, value)| {
            (
                name.as_str().to_owned(),
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            )
        })
        .collect();
    let basic_auth = headers
        .iter()
        .any(|(n, v)| n.eq_ignore_ascii_case("authorization") && v.to_ascii_lowercase().starts_with("basic "));
    let is_form = headers.iter().any(|(n, v)| {
        n.eq_ignore_ascii_case("content-type")
            && v.to_ascii_lowercase().starts_with("application/x-www-form-urlencoded")
    });
    let body = match Limited::new(request.into_body(), MAX_REQUEST_BYTES).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => return Ok(respond(Reply::html(413, "Request too large."))),
    };
    let form: Vec<(String, String)> = if is_form {
        url::form_urlencoded::parse(&body).into_owned().collect()
    } else {
        Vec::new()
    };
    let grant_type = form.iter().find(|(n, _)| n == "grant_type").map(|(_, v)| v.clone());
    state.lock().requests.push(RecordedRequest {
        method: method.clone(),
        path: path.clone(),
        query: query.clone(),
        headers,
        form: form.clone(),
    });

    let reply = match routes::route(&state, &path, query.as_deref()) {
        None => Reply::html(
            404,
            "The resource you are looking for has been removed, had its name changed, or is temporarily unavailable.",
        ),
        Some(Route::Metadata { policy }) => {
            if key_endpoint_down(&state, |counts| &mut counts.metadata_requests) {
                Reply::html(503, "Service unavailable.")
            } else if state.config.kind == crate::authority::AuthorityKind::B2c {
                routes::metadata(&state, &policy)
            } else {
                super::entra::metadata(&state)
            }
        }
        Some(Route::Keys { .. }) => {
            if key_endpoint_down(&state, |counts| &mut counts.jwks_requests) {
                Reply::html(503, "Service unavailable.")
            } else {
                routes::keys(&state)
            }
        }
        Some(Route::Token { policy }) => {
            if method != "POST" {
                return Ok(respond(Reply::html(405, "The token endpoint accepts POST only.")));
            }
            let fault = {
                let mut guard = state.lock();
                let counter = match grant_type.as_deref() {
                    Some("password") => GrantKind::Password.grant_type(),
                    Some("client_credentials") => GrantKind::ClientCredentials.grant_type(),
                    Some("refresh_token") => GrantKind::RefreshToken.grant_type(),
                    _ => "other",
                };
                *guard.token_requests.entry(counter).or_default() += 1;
                guard.faults.pop_front()
            };
            if let Some(fault) = fault {
                // `None` is a delay, after which the request is answered normally.
                if let Some(response) = fault_reply(fault).await? {
                    return Ok(response);
                }
            }
            let endpoint = format!("{}{}", state.base_url, path.trim_start_matches('/'));
            let request = TokenRequest {
                policy: &policy,
                endpoint: &endpoint,
                form: &form,
                basic_auth,
            };
            // B2C's token endpoint, or Entra's (External ID and Entra ID modes).
            if state.config.kind == AuthorityKind::B2c {
                grants::token(&state, &request)
            } else {
                entra::token(&state, &request)
            }
        }
    };
    Ok(respond(reply))
}

/// Counts a metadata or JWKS request; whether those endpoints are switched off.
fn key_endpoint_down(state: &State, counter: impl FnOnce(&mut super::Mutable) -> &mut usize) -> bool {
    let mut guard = state.lock();
    *counter(&mut guard) += 1;
    guard.key_endpoints_down
}

fn admin_reply(state: &State, method: &str, path: &str) -> Reply {
    match (method, path) {
        ("GET", "stats") => {
            let guard = state.lock();
            let counts: serde_json::Map<String, serde_json::Value> = guard
                .token_requests
                .iter()
                .map(|(grant, count)| ((*grant).to_owned(), (*count).into()))
                .collect();
            Reply::json(
                200,
                &serde_json::json!({
                    "token_requests": guard.token_requests.values().sum::<usize>(),
                    "by_grant": counts,
                    "metadata_requests": guard.metadata_requests,
                    "jwks_requests": guard.jwks_requests,
                }),
            )
        }
        ("POST", "reset") => {
            let mut guard = state.lock();
            guard.requests.clear();
            guard.token_requests.clear();
            guard.metadata_requests = 0;
            guard.jwks_requests = 0;
            Reply::json(200, &serde_json::json!({}))
        }
        _ => Reply::html(404, "Unknown admin path: GET /_fake/stats, POST /_fake/reset."),
    }
}

/// The faulty answer, `Ok(None)` to answer normally after a delay, or `Err` to drop the
/// connection without answering.
async fn fault_reply(fault: Fault) -> io::Result<Option<Response<Full<Bytes>>>> {
    let response = match fault {
        Fault::Delay(delay) => {
            tokio::time::sleep(delay).await;
            return Ok(None);
        }
        Fault::DropConnection => return Err(io::Error::other("fault injected: connection dropped")),
        Fault::TooManyRequests(seconds) => {
            let mut response = respond(Reply {
                status: 429,
                content_type: "text/plain",
                body: "Too Many Requests".into(),
            });
            if let Some(seconds) = seconds {
                insert(&mut response, "retry-after", &seconds.to_string());
            }
            response
        }
        Fault::TooManyRequestsUntil(delay) => {
            let mut response = respond(Reply {
                status: 429,
                content_type: "text/plain",
                body: "Too Many Requests".into(),
            });
            insert(&mut response, "retry-after", &timestamps::http_date_in(delay));
            response
        }
        Fault::ServiceUnavailable => respond(Reply::html(503, "Service Unavailable")),
        Fault::MalformedJson => respond(Reply {
            status: 200,
            content_type: "application/json; charset=utf-8",
            body: r#"{"access_token":"eyJ0eXAi","token_type":"Bearer","expires_in":"36"#.into(),
        }),
        Fault::HtmlPage => respond(Reply::html(200, "Sorry, but we're having trouble signing you in.")),
        Fault::TruncatedBody => {
            let body = r#"{"access_token":"eyJ0eXAi","token_type":"Bearer","#;
            let mut response = respond(Reply {
                status: 200,
                content_type: "application/json",
                body: body.into(),
            });
            insert(&mut response, "content-length", &(body.len() + 100).to_string());
            response
        }
        Fault::OversizedBody => respond(Reply {
            status: 200,
            content_type: "application/json",
            body: format!(
                r#"{{"access_token":"{}","token_type":"Bearer"}}"#,
                "a".repeat(2 * 1024 * 1024)
            ),
        }),
    };
    Ok(Some(response))
}

fn insert(response: &mut Response<Full<Bytes>>, name: &'static str, value: &str) {
    if let Ok(value) = hyper::header::HeaderValue::from_str(value) {
        response.headers_mut().insert(name, value);
    }
}

fn respond(reply: Reply) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(reply.body)));
    *response.status_mut() =
        hyper::StatusCode::from_u16(reply.status).unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    insert(&mut response, "content-type", reply.content_type);
    insert(
        &mut response,
        "x-ms-gateway-requestid",
        &uuid::Uuid::new_v4().to_string(),
    );
    response
}
