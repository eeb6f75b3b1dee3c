//! Whose token is this (issue 24): a cached or stored token goes only to a caller who proves
//! the secret its credential holds, for every credential kind, and distinct endpoints never
//! share an entry. Each test failed on the code before the credential identity was derived
//! in one place (`src/cache/credential.rs`).

use std::sync::Arc;
use std::time::Duration;

use b2c_token::test_tenant::{defaults, FakeTenant};
use b2c_token::{
    authority::AuthorityKind, client::RetryPolicy, credential::ClientCertificate, credential::FederatedTokenFile,
    store::MemoryStore, Authority, Client, Error, Password, Scopes, TokenCache,
};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support;

use crate::support::workload::{rsa_certificate, CERT_CLIENT, CLUSTER_ISSUER, FEDERATED_CLIENT, SERVICE_ACCOUNT};

async fn entra_tenant(certificate_pem: &str) -> FakeTenant {
    FakeTenant::builder()
        .kind(AuthorityKind::Entra)
        .certificate_client(CERT_CLIENT, certificate_pem, &[defaults::API_APP_ROLE])
        .federated_client(
            FEDERATED_CLIENT,
            CLUSTER_ISSUER,
            SERVICE_ACCOUNT,
            &[defaults::API_APP_ROLE],
        )
        .start()
        .await
        .expect("tenant")
}

fn api(tenant: &FakeTenant) -> Scopes {
    Scopes::new([tenant.api_default_scope()]).expect("scopes")
}

/// Item 1: the victim's public certificate with any other RSA key is refused when the
/// credential is made, before anything could be served to it or sent.
#[test]
fn a_certificate_with_someone_elses_private_key_is_refused() {
    let (victim_cert, _) = rsa_certificate();
    let (_, other_key) = rsa_certificate();
    let error = ClientCertificate::from_pem(victim_cert.as_bytes(), other_key.as_bytes())
        .expect_err("a key that does not match the certificate");
    assert!(matches!(error, Error::Config(_)), "{error:?}");
    assert!(error.to_string().contains("does not match"), "{error}");
}

/// Item 1: two certificates of the same app are two credentials: the second one's caller
/// gets no token the first earned, in one cache and through a shared store.
#[tokio::test]
async fn certificate_tokens_are_bound_to_the_key_that_earned_them() {
    let (cert, key) = rsa_certificate();
    let (other_cert, other_key) = rsa_certificate();
    let tenant = entra_tenant(&cert).await;
    let store = Arc::new(MemoryStore::new());
    let cache = |store: &Arc<MemoryStore>| TokenCache::builder().store(store.clone()).build();
    let client = |cert: &str, key: &str| {
        Client::builder(tenant.tenant_authority().expect("authority"), CERT_CLIENT)
            .client_certificate(ClientCertificate::from_pem(cert.as_bytes(), key.as_bytes()).expect("cert"))
            .retry_policy(RetryPolicy::none())
            .build()
            .expect("client")
    };
    let (first, second) = (cache(&store), cache(&store));
    first
        .client_credentials(&client(&cert, &key), &api(&tenant))
        .token()
        .await
        .expect("token");
    assert_eq!(tenant.total_token_requests(), 1);
    // The right key in another replica: adopted from the store, no request.
    second
        .client_credentials(&client(&cert, &key), &api(&tenant))
        .token()
        .await
        .expect("adopted");
    assert_eq!(tenant.total_token_requests(), 1);
    // Another key pair: its own request (refused: not the registered certificate).
    let intruder = client(&other_cert, &other_key);
    for cache in [&first, &second] {
        cache
            .client_credentials(&intruder, &api(&tenant))
            .token()
            .await
            .expect_err("not registered");
    }
    assert_eq!(tenant.total_token_requests(), 3);
}

struct TokenFile {
    dir: std::path::PathBuf,
}

impl TokenFile {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "b2c-token-{name}-{}-{:?}",
            std::process::id(),
            std::time::SystemTime::now()
        ));
        std::fs::create_dir_all(&dir).expect("dir");
        Self { dir }
    }
    fn path(&self) -> std::path::PathBuf {
        self.dir.join("azure-identity-token")
    }
    /// As the kubelet does: write aside, then rename over.
    fn write(&self, text: &str) {
        let staged = self.dir.join("staged");
        std::fs::write(&staged, text).expect("write");
        std::fs::rename(&staged, self.path()).expect("rename");
    }
}

impl Drop for TokenFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Item 2: replicas share a token only while their federated token files assert the same
/// identity (issuer, subject, audience), however the files differ; a file with no valid
/// assertion, or one naming another workload, adopts nothing.
#[tokio::test]
async fn federated_replicas_share_only_while_their_assertions_name_the_same_workload() {
    let (cert, _) = rsa_certificate();
    let tenant = entra_tenant(&cert).await;
    let store = Arc::new(MemoryStore::new());
    let file = TokenFile::new("federated-replicas");
    let replica = || {
        let cache = TokenCache::builder().store(store.clone()).build();
        let client = Client::builder(tenant.tenant_authority().expect("authority"), FEDERATED_CLIENT)
            .client_assertion(FederatedTokenFile::new(file.path()))
            .retry_policy(RetryPolicy::none())
            .build()
            .expect("client");
        cache.client_credentials(&client, &api(&tenant))
    };
    file.write(&tenant.mint_federated_token(CLUSTER_ISSUER, SERVICE_ACCOUNT, Duration::from_secs(3600)));
    replica().token().await.expect("first replica");
    assert_eq!(tenant.total_token_requests(), 1);

    // Another pod, same path, no assertion at all: nothing adopted, nothing sent.
    file.write("not a token");
    let error = replica().token().await.expect_err("no assertion");
    assert!(matches!(error, Error::Config(_)), "{error:?}");
    assert_eq!(tenant.total_token_requests(), 1);

    // Another pod whose assertion names another workload: its own request (refused).
    file.write(&tenant.mint_federated_token(
        CLUSTER_ISSUER,
        "system:serviceaccount:other:x",
        Duration::from_secs(3600),
    ));
    replica().token().await.expect_err("another workload");
    assert_eq!(tenant.total_token_requests(), 2);

    // Another pod of the same workload (its own file, same claims): adopted, no request.
    file.write(&tenant.mint_federated_token(CLUSTER_ISSUER, SERVICE_ACCOUNT, Duration::from_secs(3600)));
    replica().token().await.expect("adopted");
    assert_eq!(tenant.total_token_requests(), 2);
}

/// Item 3: a confidential password grant sends the client secret too, so the wrong secret
/// with the right password gets no cached token.
#[tokio::test]
async fn confidential_password_grants_bind_the_client_secret_too() {
    let (cert, _) = rsa_certificate();
    let tenant = entra_tenant(&cert).await;
    let cache = TokenCache::new();
    let client = |secret: &str| {
        Client::builder(
            tenant.tenant_authority().expect("authority"),
            defaults::CONFIDENTIAL_CLIENT_ID,
        )
        .client_secret(secret)
        .retry_policy(RetryPolicy::none())
        .build()
        .expect("client")
    };
    let password = Password::new(defaults::PASSWORD);
    let scopes = Scopes::empty();
    cache
        .password(&client(defaults::CLIENT_SECRET), defaults::USERNAME, &password, &scopes)
        .token()
        .await
        .expect("token");
    assert_eq!(tenant.total_token_requests(), 1);
    cache
        .password(&client("wrong-secret"), defaults::USERNAME, &password, &scopes)
        .token()
        .await
        .expect_err("wrong client secret");
    assert_eq!(tenant.total_token_requests(), 2);
}

/// Item 4: token URLs that differ in path or query case are distinct endpoints (only the
/// scheme and host are case-insensitive), in the library's cache.
#[tokio::test]
async fn endpoints_that_differ_in_path_or_query_case_do_not_share_an_entry() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(200).set_body_raw(support::fixture("client_credentials.json"), "application/json"),
        )
        .mount(&server)
        .await;
    let cache = TokenCache::new();
    let scopes = Scopes::new(["api://x/.default"]).expect("scopes");
    for (i, path) in [
        "/TenantA/token",
        "/tenanta/token",
        "/t/token?tenant=A",
        "/t/token?tenant=a",
    ]
    .into_iter()
    .enumerate()
    {
        let url = format!("{}{path}", server.uri());
        let client = Client::builder(Authority::from_token_url(&url).expect("authority"), "client")
            .client_secret("s")
            .build()
            .expect("client");
        cache.client_credentials(&client, &scopes).token().await.expect("token");
        assert_eq!(
            server.received_requests().await.expect("requests").len(),
            i + 1,
            "{path}"
        );
    }
}

/// Calls by another credential are no demand for the token an entry holds: a caller with a
/// wrong secret, calling all the time, must not keep the right credential's token refreshed
/// ahead of expiry (each refresh is a request for nobody). Failed before: every call set the
/// entry's "read since refresh" bit before the credential was compared, and the right
/// credential's token was refreshed again in a window only the wrong caller called in.
#[tokio::test]
async fn another_credentials_calls_do_not_keep_a_token_refreshed() {
    let tenant = FakeTenant::builder()
        .access_token_lifetime(Duration::from_secs(4))
        .start()
        .await
        .unwrap();
    let client = |secret: &str| {
        tenant
            .confidential_client(defaults::SIGNIN_POLICY)
            .unwrap()
            .client_secret(secret)
            .retry_policy(b2c_token::client::RetryPolicy::none())
            .build()
            .unwrap()
    };
    let cache = TokenCache::new();
    let right = cache.client_credentials(&client(defaults::CLIENT_SECRET), &api(&tenant));
    let wrong = cache.client_credentials(&client("not the secret"), &api(&tenant));
    let right_requests = || {
        tenant
            .requests()
            .iter()
            .filter(|r| r.form_value("client_secret") == Some(defaults::CLIENT_SECRET))
            .count()
    };
    right.token().await.unwrap(); // fetched, and (its caller counting as a reader) refreshed once
    tokio::time::sleep(Duration::from_millis(2_400)).await;
    assert_eq!(right_requests(), 2, "the first proactive refresh");
    // The next window: only the wrong credential calls.
    let until = tokio::time::Instant::now() + Duration::from_millis(2_200);
    while tokio::time::Instant::now() < until {
        assert!(wrong.token().await.is_err());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(right_requests(), 2, "refreshed for a caller it cannot serve");
}
