//! No secret used in a request ever shows up in Debug, Display, an error or a log line.
//!
//! The hostile side (a server echoing every encoding of every secret, in every output channel
//! including the CLI's and the lockout memory's replays) is in tests/hostile_servers.rs.

use crate::support;

use crate::support::trace::Captured;
use crate::support::*;
use b2c_token::{secret::RefreshToken, Authority, ClientSecret, Password, Scopes};
use wiremock::matchers::{body_string_contains, method};
use wiremock::{Mock, MockServer, ResponseTemplate};

const PASSWORD: &str = "Pa55-word-DO-NOT-LEAK";
const CLIENT_SECRET: &str = "client-secret-DO-NOT-LEAK";
const REFRESH: &str = "refresh-token-DO-NOT-LEAK";
const ACCESS: &str = "access-token-DO-NOT-LEAK";
const SECRETS: [&str; 4] = [PASSWORD, CLIENT_SECRET, REFRESH, ACCESS];

fn assert_clean(what: &str, text: &str) {
    for secret in SECRETS {
        assert!(!text.contains(secret), "{what} leaks {secret}: {text}");
    }
}

#[tokio::test]
async fn no_secret_in_debug_display_errors_or_trace_logs() {
    let (captured, _guard) = Captured::start();

    let server = MockServer::start().await;
    let success = format!(
        r#"{{"access_token":"{ACCESS}","token_type":"Bearer","expires_in":"3600","refresh_token":"{REFRESH}","id_token":"{ACCESS}"}}"#
    );
    // A server that echoes the secret it was sent back in its error message.
    let echo = |secret: &str| {
        format!(
            r#"{{"error":"invalid_grant","error_description":"AADB2C90080: grant {secret} has expired.\r\nCorrelation ID: 00000000-0000-0000-0000-000000000000\r\n"}}"#
        )
    };
    Mock::given(method("POST"))
        .and(body_string_contains("grant_type=password"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(success.clone(), "application/json"))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(body_string_contains("grant_type=refresh_token"))
        .respond_with(ResponseTemplate::new(400).set_body_raw(echo(REFRESH), "application/json"))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(body_string_contains("grant_type=client_credentials"))
        .respond_with(ResponseTemplate::new(401).set_body_raw(
            format!(r#"{{"error":"invalid_client","error_description":"bad secret {CLIENT_SECRET}"}}"#),
            "application/json",
        ))
        .mount(&server)
        .await;

    let builder = client_builder(&server).client_secret(ClientSecret::new(CLIENT_SECRET));
    let builder_debug = format!("{builder:?}");
    let client = builder.build().unwrap();
    let password = Password::new(PASSWORD);
    let refresh = RefreshToken::new(REFRESH);

    let token = client
        .acquire_token_by_password("alice", &password, &Scopes::empty())
        .await
        .unwrap();
    let refresh_error = client
        .acquire_token_by_refresh_token(&refresh, &Scopes::empty())
        .await
        .unwrap_err();
    let cc_error = client
        .acquire_token_by_client_credentials(&Scopes::new(["api/.default"]).unwrap())
        .await
        .unwrap_err();
    // Secrets are still usable: the redaction is only in what is printed.
    assert_eq!(token.access_token().unwrap().expose_secret(), ACCESS);
    assert!(refresh_error.to_string().contains("[REDACTED]"), "{refresh_error}");

    let mut printed = vec![
        ("builder Debug", builder_debug),
        ("client Debug", format!("{client:?}")),
        ("token Debug", format!("{token:?}")),
        ("access Debug", format!("{:?}", token.access_token())),
        ("refresh Debug", format!("{:?}", token.refresh_token())),
        ("id Debug", format!("{:?}", token.id_token())),
        ("password Debug", format!("{password:?}")),
        ("refresh input Debug", format!("{refresh:?}")),
        (
            "authority Debug",
            format!("{:?}", Authority::b2c("contoso", "B2C_1_x").unwrap()),
        ),
        ("prefix", token.access_token().unwrap().redacted_prefix()),
    ];
    for error in [&refresh_error, &cc_error] {
        printed.push(("error Display", error.to_string()));
        printed.push(("error Debug", format!("{error:?}")));
        printed.push(("error alternate Debug", format!("{error:#?}")));
        let mut source = std::error::Error::source(error);
        while let Some(cause) = source {
            printed.push(("error source", format!("{cause} {cause:?}")));
            source = cause.source();
        }
    }
    for (what, text) in &printed {
        assert_clean(what, text);
    }

    let logs = captured.text();
    assert!(
        logs.contains("b2c_token.request"),
        "TRACE capture saw the request spans: {logs}"
    );
    assert_clean("trace logs", &logs);
}

/// The `Debug` of every public type that can hold or be near a secret, with real secrets in
/// play: none of them may appear.
#[tokio::test]
async fn debug_of_every_public_type_is_clean() {
    use b2c_token::test_tenant::{defaults, FakeTenant};
    use b2c_token::{client::RetryPolicy, outgoing::BearerAuth, outgoing::TokenScopes, store::MemoryStore, TokenCache};

    let tenant = FakeTenant::builder()
        .user("bob@contoso.com", PASSWORD)
        .confidential_client("cc-2", CLIENT_SECRET, &["app.read"])
        .start()
        .await
        .unwrap();
    let cache = TokenCache::builder()
        .store(std::sync::Arc::new(MemoryStore::new()))
        .build();
    let user_client = support::fake_public(&tenant, defaults::ROPC_POLICY).build().unwrap();
    let password = Password::new(PASSWORD);
    let source = cache.password(&user_client, "bob@contoso.com", &password, &Scopes::empty());
    let token = source.token().await.unwrap();
    let access = token.access_token().unwrap().expose_secret().to_owned();
    let refresh = token.refresh_token().unwrap().expose_secret().to_owned();
    let daemon = b2c_token::Client::builder(tenant.authority(defaults::SIGNIN_POLICY).unwrap(), "cc-2")
        .client_secret(CLIENT_SECRET)
        .retry_policy(RetryPolicy::none())
        .build()
        .unwrap();
    let auth = BearerAuth::password(&cache, &user_client, "bob@contoso.com", &password, &Scopes::empty())
        .allow_host("api.contoso.com")
        .unwrap();
    let wrong = user_client
        .acquire_token_by_password("bob@contoso.com", &Password::new("Wrong-DO-NOT-LEAK"), &Scopes::empty())
        .await
        .unwrap_err();
    let remembered = user_client
        .acquire_token_by_password("bob@contoso.com", &Password::new("Wrong-DO-NOT-LEAK"), &Scopes::empty())
        .await
        .unwrap_err();

    let printed = [
        format!("{cache:?}"),
        format!("{source:?}"),
        format!("{:?}", source.key()),
        format!("{:?}", source.token()),
        format!("{auth:?}"),
        format!("{daemon:?}"),
        format!("{user_client:?}"),
        format!("{tenant:?}"),
        format!("{:?}", tenant.requests()),
        format!("{:?}", FakeTenant::builder().user("x", PASSWORD)),
        format!("{:?}", TokenScopes(Scopes::empty())),
        format!("{:?}", RetryPolicy::default()),
        format!("{token:?}"),
        format!("{wrong:?} {wrong}"),
        format!("{remembered:?} {remembered}"),
        format!("{:?}", source.authorization_header().await.unwrap()),
    ];
    for text in &printed {
        for secret in [
            PASSWORD,
            CLIENT_SECRET,
            access.as_str(),
            refresh.as_str(),
            "Wrong-DO-NOT-LEAK",
        ] {
            assert!(!text.contains(secret), "leak of {secret}: {text}");
        }
    }
}
