//! What the two bearer layers (`BearerAuth` for reqwest-middleware, `BearerLayer` for tower)
//! share: which provider serves a request, the hosts a token may go to, and the token with its
//! header value (built once per token, by the token). Each layer keeps only its client's
//! plumbing: how to send, how to replay.

use std::sync::Arc;

use reqwest::header::HeaderValue;

use super::allow_list::{AllowList, TokenScopes, Verdict};
use super::provider::TokenProvider;
use crate::cache::TokenCache;
use crate::client::Client;
use crate::error::{Error, Result};
use crate::scope::Scopes;
use crate::token::Token;

/// Chooses the provider for one request: another scope set asks the cache for its source.
pub(crate) type ProviderFor = dyn Fn(&Scopes) -> Arc<dyn TokenProvider> + Send + Sync;

/// The provider [`BearerConfig::provider`] chose for one request.
pub(crate) enum Chosen<'a> {
    Own(&'a dyn TokenProvider),
    ForScopes(Arc<dyn TokenProvider>),
}

impl Chosen<'_> {
    pub(crate) fn get(&self) -> &dyn TokenProvider {
        match self {
            Self::Own(provider) => *provider,
            Self::ForScopes(provider) => &**provider,
        }
    }
}

/// One bearer layer's configuration.
#[derive(Clone)]
pub(crate) struct BearerConfig {
    provider: Arc<dyn TokenProvider>,
    provider_for: Option<Arc<ProviderFor>>,
    allow_list: AllowList,
}

impl BearerConfig {
    pub(crate) fn new(provider: Arc<dyn TokenProvider>, provider_for: Option<Arc<ProviderFor>>) -> Self {
        Self {
            provider,
            provider_for,
            allow_list: AllowList::default(),
        }
    }

    /// The client-credentials source for `scopes`, and for a request's own scopes.
    pub(crate) fn client_credentials(cache: &TokenCache, client: &Client, scopes: &Scopes) -> Self {
        let (cache, client) = (cache.clone(), client.clone());
        let source = Arc::new(cache.client_credentials(&client, scopes));
        Self::new(
            source,
            Some(Arc::new(move |scopes| {
                Arc::new(cache.client_credentials(&client, scopes))
            })),
        )
    }

    pub(crate) fn allow_list(&self) -> &AllowList {
        &self.allow_list
    }

    pub(crate) fn allow_list_mut(&mut self) -> &mut AllowList {
        &mut self.allow_list
    }

    /// Whether a request to `scheme://host:port` gets the token (see [`AllowList::check`]).
    pub(crate) fn check(&self, scheme: &str, host: Option<&str>, port: Option<u16>) -> Result<Verdict> {
        self.allow_list.check(scheme, host, port)
    }

    /// The provider for a request: the layer's own (borrowed: no reference count touched per
    /// request), or for a request that asked for its own `scopes`, the cache's source for them.
    /// `constructors` names the layer's constructors that support per-request scopes, for the
    /// error when this one does not.
    pub(crate) fn provider(&self, scopes: Option<&TokenScopes>, constructors: &str) -> Result<Chosen<'_>> {
        match (scopes, &self.provider_for) {
            (None, _) => Ok(Chosen::Own(&*self.provider)),
            (Some(TokenScopes(scopes)), Some(provider_for)) => Ok(Chosen::ForScopes(provider_for(scopes))),
            (Some(_), None) => Err(Error::RequestNotSent(format!(
                "per-request TokenScopes need {constructors}"
            ))),
        }
    }
}

/// A valid token from `provider` and its `Authorization` value (which the token builds once):
/// the cached token when there is one (no allocation, no await), otherwise the provider's fetch.
pub(crate) async fn bearer(provider: &dyn TokenProvider) -> Result<(Token, HeaderValue)> {
    if let Some(hit) = cached_bearer(provider) {
        return hit;
    }
    let token = provider.token().await?;
    let header = token.authorization_header()?;
    Ok((token, header))
}

/// [`bearer`]'s hit path, without a future: `None` when the provider has no valid token cached.
#[inline]
pub(crate) fn cached_bearer(provider: &dyn TokenProvider) -> Option<Result<(Token, HeaderValue)>> {
    let token = provider.cached()?;
    Some(token.authorization_header().map(|header| (token, header)))
}
