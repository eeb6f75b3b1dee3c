//! The Azure SDK for Rust (feature `azure-core`), both ways:
//!
//! * a [`TokenSource`] is an `azure_core::credentials::TokenCredential`, for Azure SDK-style
//!   clients of **your own APIs** that take a credential (B2C tokens are for your APIs, not for
//!   Azure resources such as Storage or Key Vault);
//! * any `TokenCredential` (azure_identity's managed identity, workload identity, ...) is a
//!   [`TokenProvider`] through [`CredentialProvider`], so `BearerAuth`, `BearerLayer` and
//!   `BearerInterceptor` can attach **Entra ID** tokens to outgoing calls the same way.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwapOption;
use azure_core::credentials::{AccessToken, TokenCredential, TokenRequestOptions};
use azure_core::error::ErrorKind;
use azure_core::time::OffsetDateTime;

use super::provider::{TokenProvider, TokenProviderFuture};
use crate::cache::TokenSource;
use crate::error::Error;
use crate::scope::Scopes;
use crate::token::Token;

/// A cached token is handed out only while it has at least this long to live: the
/// credential refreshes well before, and a token must not expire on the way.
const MIN_REMAINING: Duration = Duration::from_secs(60);

#[async_trait::async_trait]
impl TokenCredential for TokenSource {
    /// The source's token. `scopes` must be the source's own (or empty): a source serves one
    /// scope set; make one source per set.
    async fn get_token(
        &self,
        scopes: &[&str],
        _options: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        let own = self.key().scopes();
        let asked =
            Scopes::new(scopes.iter().copied()).map_err(|e| azure_core::Error::new(ErrorKind::Credential, e))?;
        if !scopes.is_empty() && asked.sorted() != *own {
            return Err(azure_core::Error::with_message(
                ErrorKind::Credential,
                format!("this token source serves the scopes \"{own}\", not \"{asked}\": make a source per scope set"),
            ));
        }
        let token = self
            .token()
            .await
            .map_err(|e| azure_core::Error::new(ErrorKind::Credential, e))?;
        let access = token.access_token().ok_or_else(|| {
            azure_core::Error::with_message(
                ErrorKind::Credential,
                "the token has no access token: request a resource scope",
            )
        })?;
        let expires = token
            .expires_on()
            .unwrap_or_else(|| SystemTime::now() + Duration::from_secs(300));
        Ok(AccessToken::new(
            access.expose_secret().to_owned(),
            OffsetDateTime::from(expires),
        ))
    }
}

/// Any `TokenCredential` as a [`TokenProvider`], for one scope set: Entra ID tokens from
/// azure_identity on outgoing calls through `BearerAuth`, `BearerLayer` or
/// `BearerInterceptor`. The last token is kept so that the synchronous interceptor can use it.
///
/// ```no_run
/// # fn demo(credential: std::sync::Arc<dyn azure_core::credentials::TokenCredential>) {
/// let provider = b2c_token::outgoing::CredentialProvider::new(credential, ["https://storage.azure.com/.default"]);
/// let interceptor = b2c_token::outgoing::BearerInterceptor::new(provider);
/// # let _ = interceptor; }
/// ```
pub struct CredentialProvider {
    credential: Arc<dyn TokenCredential>,
    scopes: Vec<String>,
    last: ArcSwapOption<Token>,
}

impl CredentialProvider {
    /// Tokens for `scopes` from `credential`.
    pub fn new<I, S>(credential: Arc<dyn TokenCredential>, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            credential,
            scopes: scopes.into_iter().map(Into::into).collect(),
            last: ArcSwapOption::empty(),
        }
    }
}

impl TokenProvider for CredentialProvider {
    fn token(&self) -> TokenProviderFuture<'_> {
        Box::pin(async move {
            let scopes: Vec<&str> = self.scopes.iter().map(String::as_str).collect();
            let access = self
                .credential
                .get_token(&scopes, None)
                .await
                .map_err(|error| Error::RequestNotSent(format!("the Azure credential gave no token: {error}")))?;
            let token = Token::from_stored(
                Some(access.token.secret().to_owned()),
                None,
                None,
                "Bearer".to_owned(),
                Scopes::new(&self.scopes).unwrap_or_default(),
                None,
                None,
                SystemTime::now(),
                SystemTime::from(access.expires_on),
                None,
            );
            self.last.store(Some(Arc::new(token.clone())));
            Ok(token)
        })
    }

    fn cached(&self) -> Option<Token> {
        let last = self.last.load_full()?;
        let remaining = last.expires_on()?.duration_since(SystemTime::now()).ok()?;
        (remaining > MIN_REMAINING).then(|| (*last).clone())
    }

    fn rejected(&self, token: &Token) -> bool {
        if self.last.load().as_deref().is_some_and(|last| last.same_as(token)) {
            self.last.store(None);
        }
        true
    }
}

impl fmt::Debug for CredentialProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CredentialProvider")
            .field("credential", &self.credential)
            .field("scopes", &self.scopes)
            .finish_non_exhaustive()
    }
}
