//! The lockout rails key on the account, not on its spelling (issue 24, item 5): one wrong
//! password for one B2C account reaches the server once, whichever URL form, policy case or
//! tenant spelling the authority uses, however the username is padded or cased, and however
//! many `Client`s a daemon builds. (Before: 6 spellings sent it 6 times, and a daemon that
//! built a fresh client per attempt sent 20 of 20.)

use b2c_token::{authority::PolicyForm, client::RetryPolicy, Authority, Client, Password, Scopes};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support;

const TENANT_ID: &str = "4ea0f7bf-7c1e-4a9d-9a33-6f1a2b0c9d11";

async fn rejecting_server() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(400)
                .set_body_raw(support::fixture("error_invalid_credentials.json"), "application/json"),
        )
        .mount(&server)
        .await;
    server
}

fn client(authority: Authority) -> Client {
    Client::builder(authority, support::CLIENT_ID)
        .retry_policy(RetryPolicy::none())
        .build()
        .unwrap()
}

async fn requests(server: &MockServer) -> usize {
    server.received_requests().await.unwrap().len()
}

#[tokio::test]
async fn one_wrong_password_reaches_the_server_once_however_the_authority_is_spelled() {
    let server = rejecting_server().await;
    let spelled = |tenant: &str, policy: &str, form: PolicyForm| {
        Authority::builder(tenant, policy)
            .base_url(&server.uri())
            .policy_form(form)
            .build()
            .unwrap()
    };
    let authorities = [
        spelled("contoso", "B2C_1_ropc", PolicyForm::Path),
        spelled("contoso", "B2C_1_ropc", PolicyForm::Query),
        spelled("contoso", "B2C_1_ropc", PolicyForm::Tfp),
        spelled("contoso", "b2c_1_ROPC", PolicyForm::Path),
        spelled("contoso.onmicrosoft.com", "B2C_1_ropc", PolicyForm::Path),
        Authority::builder("contoso", "B2C_1_ropc")
            .tenant_id(TENANT_ID)
            .base_url(&server.uri())
            .build()
            .unwrap(),
    ];
    let password = Password::new("wrong horse");
    for authority in authorities {
        let error = client(authority)
            .acquire_token_by_password("bob@contoso.com", &password, &Scopes::empty())
            .await
            .unwrap_err();
        assert!(
            error.to_string().contains("AADB2C90225") || error.to_string().contains("remembered"),
            "{error}"
        );
    }
    assert_eq!(requests(&server).await, 1, "one wrong password, one request");
}

#[tokio::test]
async fn usernames_are_compared_as_b2c_compares_them_and_memory_outlives_a_client() {
    // Its own user: the memory is per account and per process, and the test above rejects
    // bob@contoso.com on the same loopback host at the same time.
    let server = rejecting_server().await;
    let authority = support::authority(&server, PolicyForm::Path);
    let password = Password::new("wrong horse");
    for username in [
        "carol@contoso.com",
        "Carol@Contoso.com ",
        "carol@contoso.com\t",
        " CAROL@CONTOSO.COM",
    ] {
        client(authority.clone())
            .acquire_token_by_password(username, &password, &Scopes::empty())
            .await
            .unwrap_err();
    }
    // A daemon that builds a fresh client for every attempt.
    for _ in 0..20 {
        client(authority.clone())
            .acquire_token_by_password("carol@contoso.com", &password, &Scopes::empty())
            .await
            .unwrap_err();
    }
    assert_eq!(requests(&server).await, 1);
    // Another password is another attempt.
    client(authority)
        .acquire_token_by_password("carol@contoso.com", &Password::new("other"), &Scopes::empty())
        .await
        .unwrap_err();
    assert_eq!(requests(&server).await, 2);
}
