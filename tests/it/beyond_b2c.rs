//! Entra External ID and Entra ID on the fake tenant (issue 14): each authority kind with each
//! credential kind, the exact request form, client assertions decoded and checked, a fresh
//! `jti` per attempt, the grant matrix, discovery fetched once, a federated token file
//! rotating mid-run, and AADSTS errors parsed from Entra-shaped bodies.

use std::time::Duration;

use b2c_token::test_tenant::{defaults, FakeTenant, Fault};
use b2c_token::{
    authority::AuthorityKind, client::GrantKind, client::RetryPolicy, credential::ClientCertificate,
    credential::FederatedTokenFile, Authority, Client, Error, Password, Scopes, Validator,
};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::Value;

use crate::support::workload::{rsa_certificate, CERT_CLIENT, CLUSTER_ISSUER, FEDERATED_CLIENT, SERVICE_ACCOUNT};

async fn tenant(kind: AuthorityKind, certificate_pem: &str) -> FakeTenant {
    FakeTenant::builder()
        .kind(kind)
        .certificate_client(CERT_CLIENT, certificate_pem, &[defaults::API_APP_ROLE])
        .federated_client(
            FEDERATED_CLIENT,
            CLUSTER_ISSUER,
            SERVICE_ACCOUNT,
            &[defaults::API_APP_ROLE],
        )
        .mfa_user("bob@contoso.com")
        .user("bob@contoso.com", "Passw0rd!")
        .start()
        .await
        .expect("tenant")
}

fn api_scopes(tenant: &FakeTenant) -> Scopes {
    Scopes::new([tenant.api_default_scope()]).expect("scopes")
}

fn decode(part: &str) -> Value {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).expect("base64url")).expect("json")
}

fn rejection(error: Error) -> Box<b2c_token::error::Rejection> {
    match error {
        Error::Rejected(rejection) => rejection,
        other => panic!("expected a rejection, got {other:?}"),
    }
}

#[tokio::test]
async fn client_secrets_work_on_external_id_and_entra_with_the_exact_form() {
    let (cert, _) = rsa_certificate();
    for kind in [AuthorityKind::ExternalId, AuthorityKind::Entra] {
        let tenant = tenant(kind, &cert).await;
        let authority = tenant.tenant_authority().expect("authority");
        assert_eq!(authority.kind(), kind);
        assert!(authority
            .token_endpoint()
            .path()
            .ends_with("/contoso.onmicrosoft.com/oauth2/v2.0/token"));
        let client = Client::builder(authority.clone(), defaults::CONFIDENTIAL_CLIENT_ID)
            .client_secret(defaults::CLIENT_SECRET)
            .build()
            .expect("client");
        let token = client
            .acquire_token_by_client_credentials(&api_scopes(&tenant))
            .await
            .expect("token");
        let request = tenant.requests().into_iter().last().expect("a request");
        let names: Vec<&str> = request.form().iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["grant_type", "scope", "client_id", "client_secret"]);
        assert_eq!(request.form_value("grant_type"), Some("client_credentials"));

        // The API side validates the token on the same authority (no policy involved).
        let validator = Validator::builder(authority, defaults::API_CLIENT_ID)
            .build()
            .expect("validator");
        let access = token.access_token().expect("access token").expose_secret().to_owned();
        let claims = validator.validate(&access).await.expect("valid");
        assert!(
            claims.has_scope(defaults::API_APP_ROLE),
            "Entra puts app permissions in roles"
        );
        assert_eq!(claims.policy(), None);
    }
}

#[tokio::test]
async fn a_certificate_signs_a_fresh_assertion_for_every_attempt() {
    let (cert, key) = rsa_certificate();
    let tenant = tenant(AuthorityKind::Entra, &cert).await;
    let certificate = ClientCertificate::from_pem(cert.as_bytes(), key.as_bytes()).expect("certificate");
    let thumbprint = certificate.thumbprint().to_owned();
    let authority = tenant.tenant_authority().expect("authority");
    let client = Client::builder(authority.clone(), CERT_CLIENT)
        .client_certificate(certificate)
        .retry_policy(RetryPolicy::default().backoff(Duration::from_millis(1), Duration::from_millis(5)))
        .build()
        .expect("client");
    // The first attempt meets a 503: the retry must carry a new assertion.
    tenant.inject(Fault::ServiceUnavailable, 1);
    client
        .acquire_token_by_client_credentials(&api_scopes(&tenant))
        .await
        .expect("token after one retry");
    let requests = tenant.requests();
    assert_eq!(requests.len(), 2);
    let mut jtis = Vec::new();
    for request in &requests {
        assert_eq!(request.form_value("client_secret"), None);
        assert_eq!(
            request.form_value("client_assertion_type"),
            Some("urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
        );
        let assertion = request.form_value("client_assertion").expect("assertion");
        let parts: Vec<&str> = assertion.split('.').collect();
        let (header, claims) = (decode(parts[0]), decode(parts[1]));
        assert_eq!(header["alg"], "RS256");
        assert_eq!(header["x5t#S256"], thumbprint.as_str());
        assert_eq!(claims["aud"], authority.token_endpoint().as_str());
        assert_eq!(claims["iss"], CERT_CLIENT);
        assert_eq!(claims["sub"], CERT_CLIENT);
        let (nbf, exp) = (
            claims["nbf"].as_u64().expect("nbf"),
            claims["exp"].as_u64().expect("exp"),
        );
        assert!(exp > nbf && exp - nbf <= 600);
        jtis.push(claims["jti"].as_str().expect("jti").to_owned());
    }
    assert_ne!(jtis[0], jtis[1], "a retry must not reuse a jti");
    assert_eq!(
        tenant.client_assertions().len(),
        1,
        "the one that reached the endpoint verified"
    );

    // Replaying that assertion is refused by the tenant.
    let replay = tenant.client_assertions()[0].clone();
    let form = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("grant_type", "client_credentials"),
            ("client_id", CERT_CLIENT),
            ("scope", &tenant.api_default_scope()),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", &replay),
        ])
        .finish();
    let body = reqwest::Client::new()
        .post(authority.token_endpoint().clone())
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form)
        .send()
        .await
        .expect("response")
        .text()
        .await
        .expect("body");
    assert!(body.contains("AADSTS50013") && body.contains("replay"), "{body}");
}

#[tokio::test]
async fn an_unregistered_certificate_is_refused_with_its_fix() {
    let (registered, _) = rsa_certificate();
    let (other_cert, other_key) = rsa_certificate();
    let tenant = tenant(AuthorityKind::ExternalId, &registered).await;
    let client = Client::builder(tenant.tenant_authority().expect("authority"), CERT_CLIENT)
        .client_certificate(ClientCertificate::from_pem(other_cert.as_bytes(), other_key.as_bytes()).expect("cert"))
        .build()
        .expect("client");
    let error = client
        .acquire_token_by_client_credentials(&api_scopes(&tenant))
        .await
        .expect_err("unknown certificate");
    let text = error.to_string();
    let rejection = rejection(error);
    assert_eq!(rejection.aadsts_code().map(|c| c.number()), Some(700027));
    assert!(text.contains("upload this certificate"), "{text}");
    assert!(!text.contains(&tenant.client_assertions().join("")) || tenant.client_assertions().is_empty());
}

#[tokio::test]
async fn the_federated_token_file_is_reread_when_it_rotates() {
    let (cert, _) = rsa_certificate();
    let tenant = tenant(AuthorityKind::Entra, &cert).await;
    let dir = std::env::temp_dir().join(format!(
        "b2c-token-federated-{}-{:?}",
        std::process::id(),
        std::time::SystemTime::now()
    ));
    std::fs::create_dir_all(&dir).expect("dir");
    let file = dir.join("azure-identity-token");
    let write = |token: &str| {
        // As the kubelet does: write aside, then rename over.
        let staged = dir.join("staged");
        std::fs::write(&staged, token).expect("write");
        std::fs::rename(&staged, &file).expect("rename");
    };
    let first = tenant.mint_federated_token(CLUSTER_ISSUER, SERVICE_ACCOUNT, Duration::from_secs(3600));
    write(&first);
    let client = Client::builder(tenant.tenant_authority().expect("authority"), FEDERATED_CLIENT)
        .client_assertion(FederatedTokenFile::new(&file))
        .build()
        .expect("client");
    client
        .acquire_token_by_client_credentials(&api_scopes(&tenant))
        .await
        .expect("token");
    assert_eq!(tenant.client_assertions().last(), Some(&first));

    // Rotated mid-run: the next request sends the new token.
    let second = tenant.mint_federated_token(CLUSTER_ISSUER, SERVICE_ACCOUNT, Duration::from_secs(3600));
    write(&second);
    client
        .acquire_token_by_client_credentials(&api_scopes(&tenant))
        .await
        .expect("token");
    assert_eq!(tenant.client_assertions().last(), Some(&second));

    // A token for another service account: Entra's answer, with the fix.
    write(&tenant.mint_federated_token(
        CLUSTER_ISSUER,
        "system:serviceaccount:other:x",
        Duration::from_secs(3600),
    ));
    let error = client
        .acquire_token_by_client_credentials(&api_scopes(&tenant))
        .await
        .expect_err("wrong subject");
    assert!(error.to_string().contains("federated credential"), "{error}");
    assert_eq!(rejection(error).aadsts_code().map(|c| c.number()), Some(70021));

    // A missing file is a configuration error naming it, and nothing is sent.
    std::fs::remove_file(&file).expect("remove");
    let before = tenant.total_token_requests();
    let error = client
        .acquire_token_by_client_credentials(&api_scopes(&tenant))
        .await
        .expect_err("no file");
    assert!(
        matches!(error, Error::Config(_)) && error.to_string().contains("azure-identity-token"),
        "{error}"
    );
    assert_eq!(tenant.total_token_requests(), before);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn the_grant_matrix_is_enforced_before_anything_is_sent() {
    let (cert, key) = rsa_certificate();
    // ROPC on External ID: a configuration error naming the alternatives.
    let ciam = tenant(AuthorityKind::ExternalId, &cert).await;
    let public = Client::builder(ciam.tenant_authority().expect("authority"), defaults::PUBLIC_CLIENT_ID)
        .build()
        .expect("client");
    let error = public
        .acquire_token_by_password(defaults::USERNAME, &Password::new(defaults::PASSWORD), &Scopes::empty())
        .await
        .expect_err("no ROPC on External ID");
    assert!(matches!(error, Error::Config(_)), "{error:?}");
    assert!(error.to_string().contains("native authentication"), "{error}");
    assert_eq!(ciam.total_token_requests(), 0);

    // A certificate on B2C: refused at build, quoting B2C's limitation.
    let b2c = FakeTenant::start().await.expect("tenant");
    let error = Client::builder(b2c.authority(defaults::SIGNIN_POLICY).expect("authority"), CERT_CLIENT)
        .client_certificate(ClientCertificate::from_pem(cert.as_bytes(), key.as_bytes()).expect("cert"))
        .build()
        .expect_err("no certificates on B2C");
    assert!(error.to_string().contains("only client secrets"), "{error}");
    assert!(error.to_string().contains("AADB2C99027"), "{error}");

    // Confidential ROPC on Entra sends the secret; public ROPC does not.
    let entra = tenant(AuthorityKind::Entra, &cert).await;
    let scopes = Scopes::new([entra.api_scope("read")]).expect("scopes");
    let confidential = Client::builder(
        entra.tenant_authority().expect("authority"),
        defaults::CONFIDENTIAL_CLIENT_ID,
    )
    .client_secret(defaults::CLIENT_SECRET)
    .build()
    .expect("client");
    confidential
        .acquire_token_by_password(defaults::USERNAME, &Password::new(defaults::PASSWORD), &scopes)
        .await
        .expect("confidential ROPC on Entra");
    let sent = entra.requests().into_iter().last().expect("request");
    assert_eq!(sent.form_value("client_secret"), Some(defaults::CLIENT_SECRET));
    let public = Client::builder(entra.tenant_authority().expect("authority"), defaults::PUBLIC_CLIENT_ID)
        .build()
        .expect("client");
    public
        .acquire_token_by_password(defaults::USERNAME, &Password::new(defaults::PASSWORD), &scopes)
        .await
        .expect("public ROPC on Entra");
    assert_eq!(
        entra
            .requests()
            .into_iter()
            .last()
            .expect("request")
            .form_value("client_secret"),
        None
    );

    // ROPC for a user under MFA: Entra's code, and a fix that says ROPC cannot do it.
    let error = public
        .acquire_token_by_password("bob@contoso.com", &Password::new("Passw0rd!"), &scopes)
        .await
        .expect_err("MFA");
    assert!(error.to_string().contains("ROPC"), "{error}");
    assert_eq!(rejection(error).aadsts_code().map(|c| c.number()), Some(50076));
}

#[tokio::test]
async fn entra_errors_are_parsed_from_real_shaped_bodies() {
    let (cert, _) = rsa_certificate();
    let tenant = tenant(AuthorityKind::Entra, &cert).await;
    let client = Client::builder(
        tenant.tenant_authority().expect("authority"),
        defaults::CONFIDENTIAL_CLIENT_ID,
    )
    .client_secret("the-secret-id-not-its-value")
    .build()
    .expect("client");
    let error = client
        .acquire_token_by_client_credentials(&api_scopes(&tenant))
        .await
        .expect_err("wrong secret");
    assert!(!error.is_retryable());
    let text = error.to_string();
    let rejection = rejection(error);
    assert_eq!(rejection.status(), 401);
    assert_eq!(rejection.error(), "invalid_client");
    assert_eq!(rejection.aadsts_code().map(|c| c.number()), Some(7000215));
    assert!(rejection.correlation_id().is_some());
    assert!(rejection.message().starts_with("Invalid client secret provided."));
    assert!(!rejection.message().contains("Trace ID"));
    assert!(text.contains("Secret ID"), "{text}");
    assert!(!text.contains("the-secret-id-not-its-value"));
}

#[tokio::test]
async fn discovery_is_fetched_once_for_many_clients() {
    let (cert, _) = rsa_certificate();
    for kind in [AuthorityKind::ExternalId, AuthorityKind::Entra] {
        let tenant = tenant(kind, &cert).await;
        // Named by domain; the document's issuer names the tenant by GUID: allowed.
        let metadata = tenant
            .tenant_authority()
            .expect("authority")
            .metadata_endpoint()
            .expect("metadata")
            .clone();
        assert!(metadata.path().contains("contoso.onmicrosoft.com"));
        let authority = Authority::discover(metadata.as_str()).await.expect("discovered");
        assert_eq!(authority.issuer(), Some(tenant.issuer().as_str()));
        assert!(authority.jwks_uri().is_some());
        let clients: Vec<Client> = (0..10)
            .map(|_| {
                Client::builder(authority.clone(), defaults::CONFIDENTIAL_CLIENT_ID)
                    .client_secret(defaults::CLIENT_SECRET)
                    .build()
                    .expect("client")
            })
            .collect();
        for client in &clients {
            client
                .acquire_token_by_client_credentials(&api_scopes(&tenant))
                .await
                .expect("token");
        }
        assert_eq!(tenant.metadata_requests(), 1);
        assert_eq!(tenant.token_requests(GrantKind::ClientCredentials), 10);
    }
}

#[tokio::test]
async fn a_discovery_document_naming_another_issuer_is_refused() {
    let server = wiremock::MockServer::start().await;
    wiremock::Mock::given(wiremock::matchers::path(
        "/tenant/v2.0/.well-known/openid-configuration",
    ))
    .respond_with(wiremock::ResponseTemplate::new(200).set_body_json(serde_json::json!({
        "issuer": "https://evil.example.com/tenant/v2.0",
        "token_endpoint": format!("{}/tenant/oauth2/v2.0/token", server.uri()),
    })))
    .mount(&server)
    .await;
    let error = Authority::discover(&format!(
        "{}/tenant/v2.0/.well-known/openid-configuration",
        server.uri()
    ))
    .await
    .expect_err("foreign issuer");
    assert!(error.to_string().contains("does not belong"), "{error}");
}
