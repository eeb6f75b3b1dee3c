//! Where a secret may go (issue 25): server numbers that overflow, and what the CLI prints or
//! sends. Each test failed on the code before its fix.

use std::time::{Duration, Instant};

use b2c_token::{Authority, Client, Error, Scopes};

use crate::support::hostile::{response, token, HostileServer};

/// Item 5: `Retry-After` past what a u64 holds is "longer than the budget", not "absent":
/// one request, then `Throttled` at once (before: treated as absent, retried for 48 s).
#[tokio::test]
async fn an_overflowing_retry_after_fails_fast_after_one_request() {
    let server = HostileServer::start(|_| response(429, &[("retry-after", "99999999999999999999999")], "")).await;
    let client = Client::builder(Authority::from_token_url(&server.url("/token")).unwrap(), "client")
        .client_secret("s")
        .build()
        .unwrap();
    let started = Instant::now();
    let error = client
        .acquire_token_by_client_credentials(&Scopes::new(["api://x/.default"]).unwrap())
        .await
        .unwrap_err();
    assert!(matches!(error, Error::Throttled { .. }), "{error:?}");
    assert_eq!(server.requests(), 1);
    assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
}

/// Item 2: the CLI prints only what can follow `Bearer `: a `mac` token is the unusable-token
/// error (exit 4), in every output mode.
#[cfg(feature = "cli")]
#[tokio::test]
async fn the_cli_refuses_a_token_that_is_not_a_bearer_token() {
    let server = HostileServer::start(|_| token("abc.def.ghi", "mac")).await;
    let url = server.url("/token");
    for extra in [&[][..], &["--json"][..], &["--decode"][..]] {
        let mut args = vec!["client-credentials", "--scope", "api://x/.default"];
        args.extend_from_slice(extra);
        let (code, stdout, stderr) = crate::hostile_servers::cli(
            &args,
            &[
                ("B2C_TOKEN_URL", &url),
                ("B2C_CLIENT_ID", "client"),
                ("B2C_CLIENT_SECRET", "s"),
            ],
        )
        .await;
        assert_eq!(code, 4, "{extra:?}: {stderr}");
        assert!(stdout.is_empty(), "{extra:?}: {stdout}");
        assert!(stderr.contains("Bearer"), "{stderr}");
    }
}

/// Item 2: a username with a control character and a blank client secret are usage errors,
/// and nothing is sent.
#[cfg(feature = "cli")]
#[tokio::test]
async fn the_cli_refuses_control_characters_in_usernames_and_blank_secrets() {
    let server = HostileServer::start(|_| token("abc.def.ghi", "Bearer")).await;
    let url = server.url("/token");
    for username in ["alice\nbob", "alice\t", "al\u{7f}ice"] {
        let (code, _, stderr) = crate::hostile_servers::cli(
            &["password", "--username", username],
            &[
                ("B2C_TOKEN_URL", &url),
                ("B2C_CLIENT_ID", "client"),
                ("B2C_PASSWORD", "pw"),
            ],
        )
        .await;
        assert_eq!(code, 2, "{username:?}: {stderr}");
        assert!(stderr.contains("control character"), "{stderr}");
    }
    let (code, _, stderr) = crate::hostile_servers::cli(
        &["client-credentials", "--scope", "api://x/.default"],
        &[
            ("B2C_TOKEN_URL", &url),
            ("B2C_CLIENT_ID", "client"),
            ("B2C_CLIENT_SECRET", "  \t "),
        ],
    )
    .await;
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("blank"), "{stderr}");
    assert_eq!(server.requests(), 0);
}

/// A token endpoint that sends the first POST to `elsewhere` with a 307, and answers a token
/// once the form comes back: what a redirect chain that ends at the token URL looks like.
async fn there_and_back() -> (HostileServer, HostileServer) {
    let token_url = std::sync::Arc::new(std::sync::OnceLock::<String>::new());
    let back = std::sync::Arc::clone(&token_url);
    let elsewhere = HostileServer::start(move |_| {
        let location = back.get().cloned().unwrap_or_default();
        response(307, &[("location", location.as_str())], "")
    })
    .await;
    let first = std::sync::atomic::AtomicBool::new(true);
    let away = elsewhere.url("/collect");
    let endpoint = HostileServer::start(move |_| {
        if first.swap(false, std::sync::atomic::Ordering::SeqCst) {
            response(307, &[("location", away.as_str())], "")
        } else {
            token("abc.def.ghi", "Bearer")
        }
    })
    .await;
    token_url.set(endpoint.url("/token")).unwrap();
    (endpoint, elsewhere)
}

/// Item 1: a user's HTTP client gets the crate's guarantees. Its builder is finished with the
/// crate's rules: the 307 is the answer, and the other host never sees the form. A finished
/// client, whose redirect and proxy settings cannot be read, is refused for a plain `http://`
/// endpoint. (Before: `http_client(reqwest::Client::new())` followed the redirect there and
/// back, the other host received the client secret and password, and a token came back.)
#[tokio::test]
async fn a_users_client_never_follows_a_redirect_there_and_back() {
    let (endpoint, elsewhere) = there_and_back().await;
    let authority = || Authority::from_token_url(&endpoint.url("/token")).unwrap();
    let error = Client::builder(authority(), "client")
        .client_secret("s3cret")
        .http_client_builder(reqwest::Client::builder())
        .build()
        .unwrap()
        .acquire_token_by_password("alice", &b2c_token::Password::new("pw"), &Scopes::empty())
        .await
        .unwrap_err();
    assert!(
        matches!(&error, Error::UnexpectedResponse(r) if r.status() == Some(307)),
        "{error:?}"
    );
    assert_eq!(elsewhere.requests(), 0, "the form went to the other host");
    let refused = Client::builder(authority(), "client")
        .client_secret("s3cret")
        .http_client(reqwest::Client::new())
        .build()
        .unwrap_err();
    assert!(matches!(refused, Error::Config(_)), "{refused:?}");
    assert_eq!(elsewhere.requests(), 0);
}

/// Item 1: with every proxy variable set, a user's client builder still sends a loopback
/// `http://` form directly. The variables are process-wide, so the check runs in a child
/// process (this test binary, running only this test, with them set).
#[tokio::test]
async fn a_users_client_never_sends_a_loopback_form_through_a_proxy() {
    const CHILD: &str = "B2C_TOKEN_TEST_PROXY_CHILD";
    if let Ok(url) = std::env::var(CHILD) {
        for host in ["127.0.0.1", "localhost"] {
            let client = Client::builder(
                Authority::from_token_url(&url.replace("127.0.0.1", host)).unwrap(),
                "client",
            )
            .client_secret("s3cret")
            .http_client_builder(reqwest::Client::builder())
            .build()
            .unwrap();
            client
                .acquire_token_by_password("alice", &b2c_token::Password::new("pw"), &Scopes::empty())
                .await
                .expect("a direct answer");
        }
        return;
    }
    let proxy = HostileServer::start(|_| token("via-proxy", "Bearer")).await;
    let endpoint = HostileServer::start(|_| token("direct", "Bearer")).await;
    let proxy_url = proxy.url("");
    let output = tokio::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "where_secrets_go::a_users_client_never_sends_a_loopback_form_through_a_proxy",
        ])
        .env(CHILD, endpoint.url("/token"))
        .envs(["HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"].map(|name| (name, proxy_url.as_str())))
        .env_remove("NO_PROXY")
        .env_remove("no_proxy")
        .output()
        .await
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stdout));
    assert_eq!(proxy.requests(), 0, "the password went through the proxy in clear text");
    assert_eq!(endpoint.requests(), 2);
}
