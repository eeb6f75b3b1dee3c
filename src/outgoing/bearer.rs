//! What the two bearer layers (`BearerAuth` for reqwest-middleware, `BearerLayer` for tower)
//! share: which provider serves a request, the hosts a token may go to, and the token with its
//! header value (built once per token, by the token). Each layer keeps only its client's
//! plumbing: how to send, how to replay.

use std::sync::Arc;

use reqwest::header::HeaderValue;

use super::allow_list::{AllowList, TokenScopes, Verdict};
use super::provider::TokenProvider;
use crate::cache::{TokenCache, TokenSource};
use crate::client::Client;
use crate::error::{Error, Result};
use crate::scope::Scopes;
use crate::secret::Password;
use crate::token::Token;

/// Chooses the provider for one request: another scope set asks the cache for its source.
pub(crate) type ProviderFor = dyn Fn(&Scopes) -> Arc<dyn TokenProvider> + Send + Sync;

/// A layer's own provider. A cache's source is held as it is, not as a trait object: its
/// hit path is inlined into the layer's and one pointer fewer is followed per request
/// (after a network round trip each is likely a cache miss: see benches/middleware.rs).
#[derive(Clone)]
pub(crate) enum Provider {
    Source(TokenSource),
    Custom(Arc<dyn TokenProvider>),
}

impl Provider {
    /// Any provider, with a cache's source recognised (by type) and held as itself: every
    /// layer's `new` takes `impl TokenProvider` and still gets the source's inlined hit path.
    pub(crate) fn of<P: TokenProvider>(provider: P) -> Self {
        match (&provider as &dyn std::any::Any).downcast_ref::<TokenSource>() {
            Some(source) => Self::Source(source.clone()),
            None => Self::Custom(Arc::new(provider)),
        }
    }
}

/// The provider [`BearerConfig::provider`] chose for one request.
pub(crate) enum Chosen<'a> {
    Source(&'a TokenSource),
    Custom(&'a dyn TokenProvider),
    ForScopes(Arc<dyn TokenProvider>),
}

impl Chosen<'_> {
    pub(crate) fn get(&self) -> &dyn TokenProvider {
        match self {
            Self::Source(source) => *source,
            Self::Custom(provider) => *provider,
            Self::ForScopes(provider) => &**provider,
        }
    }

    /// A valid token and its `Authorization` value (which the token builds once): the cached
    /// token when there is one (no allocation, no await), otherwise the provider's fetch.
    pub(crate) async fn bearer(&self) -> Result<(Token, HeaderValue)> {
        if let Some(hit) = self.cached_bearer() {
            return hit;
        }
        let token = self.get().token().await?;
        let header = token.authorization_header()?;
        Ok((token, header))
    }

    /// [`Chosen::bearer`]'s hit path, without a future: `None` when the provider has no valid
    /// token cached.
    #[inline]
    pub(crate) fn cached_bearer(&self) -> Option<Result<(Token, HeaderValue)>> {
        let token = match self {
            Self::Source(source) => source.cached(),
            other => other.get().cached(),
        }?;
        Some(token.authorization_header().map(|header| (token, header)))
    }
}

/// One bearer layer's configuration.
#[derive(Clone)]
pub(crate) struct BearerConfig {
    provider: Provider,
    provider_for: Option<Arc<ProviderFor>>,
    allow_list: AllowList,
}

impl BearerConfig {
    pub(crate) fn new(provider: Provider, provider_for: Option<Arc<ProviderFor>>) -> Self {
        Self {
            provider,
            provider_for,
            allow_list: AllowList::default(),
        }
    }

    /// The client-credentials source for `scopes`, and for a request's own scopes.
    pub(crate) fn client_credentials(cache: &TokenCache, client: &Client, scopes: &Scopes) -> Self {
        let (cache, client) = (cache.clone(), client.clone());
        let source = cache.client_credentials(&client, scopes);
        Self::new(
            Provider::Source(source),
            Some(Arc::new(move |scopes| {
                Arc::new(cache.client_credentials(&client, scopes))
            })),
        )
    }

    /// A user's ROPC source for `scopes`, and for a request's own scopes.
    pub(crate) fn password(
        cache: &TokenCache,
        client: &Client,
        username: &str,
        password: &Password,
        scopes: &Scopes,
    ) -> Self {
        let (cache, client, username, password) =
            (cache.clone(), client.clone(), username.to_owned(), password.clone());
        let source = cache.password(&client, &username, &password, scopes);
        Self::new(
            Provider::Source(source),
            Some(Arc::new(move |scopes| {
                Arc::new(cache.password(&client, &username, &password, scopes))
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
            (None, _) => Ok(match &self.provider {
                Provider::Source(source) => Chosen::Source(source),
                Provider::Custom(provider) => Chosen::Custom(&**provider),
            }),
            (Some(TokenScopes(scopes)), Some(provider_for)) => Ok(Chosen::ForScopes(provider_for(scopes))),
            (Some(_), None) => Err(Error::RequestNotSent(format!(
                "per-request TokenScopes need {constructors}"
            ))),
        }
    }
}
