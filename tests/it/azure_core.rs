//! The Azure SDK adapters, both ways (issue 15): a `TokenSource` as a `TokenCredential`, and a
//! `TokenCredential` (a mock standing in for azure_identity) as a `TokenProvider` driving the
//! tonic interceptor and `BearerAuth`'s provider path.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use azure_core::credentials::{AccessToken, TokenCredential, TokenRequestOptions};
use azure_core::time::OffsetDateTime;
use b2c_token::test_tenant::{defaults, FakeTenant};
use b2c_token::{outgoing::CredentialProvider, outgoing::TokenProvider, Scopes, TokenCache};

#[tokio::test]
async fn a_token_source_is_a_token_credential() {
    let tenant = FakeTenant::start().await.unwrap();
    let client = tenant
        .confidential_client(defaults::SIGNIN_POLICY)
        .unwrap()
        .build()
        .unwrap();
    let cache = TokenCache::new();
    let scope = tenant.api_default_scope();
    let source = cache.client_credentials(&client, &Scopes::new([scope.as_str()]).unwrap());
    let credential: Arc<dyn TokenCredential> = Arc::new(source.clone());
    let access = credential.get_token(&[scope.as_str()], None).await.unwrap();
    let cached = source.cached().unwrap();
    assert_eq!(access.token.secret(), cached.access_token().unwrap().expose_secret());
    let expires = SystemTime::from(access.expires_on);
    let diff = expires
        .duration_since(cached.expires_on().unwrap())
        .unwrap_or_else(|e| e.duration());
    assert!(diff < Duration::from_secs(1), "expiry carried over");
    // Other scopes are refused with a message saying what to do.
    let error = credential
        .get_token(&["https://other/.default"], None)
        .await
        .unwrap_err();
    assert!(error.to_string().contains("source per scope set"), "{error}");
    assert_eq!(tenant.total_token_requests(), 1);
}

/// Stands in for azure_identity's credentials: counts calls, hands out numbered tokens.
#[derive(Debug, Default)]
struct Mock {
    calls: AtomicUsize,
}

#[async_trait::async_trait]
impl TokenCredential for Mock {
    async fn get_token(
        &self,
        scopes: &[&str],
        _options: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        assert_eq!(scopes, ["https://storage.azure.com/.default"]);
        let n = self.calls.fetch_add(1, Ordering::SeqCst);
        Ok(AccessToken::new(
            format!("entra-token-{n}"),
            OffsetDateTime::from(SystemTime::now() + Duration::from_secs(3600)),
        ))
    }
}

#[tokio::test]
async fn a_token_credential_is_a_token_provider() {
    let mock = Arc::new(Mock::default());
    let provider = CredentialProvider::new(mock.clone(), ["https://storage.azure.com/.default"]);
    assert!(provider.cached().is_none(), "nothing before the first fetch");
    let token = provider.token().await.unwrap();
    assert_eq!(token.access_token().unwrap().expose_secret(), "entra-token-0");
    assert!(token.is_bearer());
    // The synchronous path serves the last token while it has time left.
    let cached = provider.cached().unwrap();
    assert_eq!(cached.access_token().unwrap().expose_secret(), "entra-token-0");
    // A rejection drops it; the next fetch asks the credential again.
    assert!(provider.rejected(&cached));
    assert!(provider.cached().is_none());
    let next = provider.token().await.unwrap();
    assert_eq!(next.access_token().unwrap().expose_secret(), "entra-token-1");
    assert_eq!(mock.calls.load(Ordering::SeqCst), 2);

    // And the tonic interceptor takes it like any provider.
    let mut interceptor = b2c_token::outgoing::BearerInterceptor::new(provider);
    let request = tonic::service::Interceptor::call(&mut interceptor, tonic::Request::new(())).unwrap();
    assert_eq!(
        request.metadata().get("authorization").unwrap().to_str().unwrap(),
        "Bearer entra-token-1"
    );
}
