//! [`BearerInterceptor`] (feature `tonic`): the cached bearer token on every gRPC call.
//!
//! tonic's interceptors are synchronous, so the token comes from the cache without awaiting:
//! a hit costs what `TokenSource::cached` costs. Call [`BearerInterceptor::warm`] once before
//! the first call to fill the cache. If no token can be served (the first call without
//! `warm`, or the token endpoint failing past expiry), the call fails with
//! `Status::unauthenticated` saying so, and a fetch is started in the background so that the
//! next call has a token.

use std::fmt;
use std::sync::Arc;

use tonic::metadata::{Ascii, MetadataValue};
use tonic::{Request, Status};

use arc_swap::ArcSwapOption;

use super::provider::TokenProvider;
use crate::cache::TokenCache;
use crate::client::Client;
use crate::error::Result;
use crate::scope::Scopes;
use crate::secret::Password;
use crate::token::Token;

/// A `tonic::service::Interceptor` adding `authorization: Bearer …` (marked sensitive).
///
/// ```no_run
/// # async fn demo(source: b2c_token::TokenSource, channel: tonic::transport::Channel) -> Result<(), b2c_token::Error> {
/// let auth = b2c_token::outgoing::BearerInterceptor::new(source);
/// auth.warm().await?; // the first call then has a token
/// let client = tonic_health::pb::health_client::HealthClient::with_interceptor(channel, auth);
/// # let _ = client; Ok(()) }
/// ```
#[derive(Clone)]
pub struct BearerInterceptor {
    provider: Arc<dyn TokenProvider>,
    /// The metadata value of the last token seen: built once per token, not once per call.
    header: Arc<MetadataCache>,
}

impl BearerInterceptor {
    /// Tokens from `provider` (a `TokenSource`, or your own).
    #[must_use]
    pub fn new(provider: impl TokenProvider) -> Self {
        Self {
            provider: Arc::new(provider),
            header: Arc::new(MetadataCache::default()),
        }
    }

    /// Client-credentials tokens for `scopes` from `cache`.
    #[must_use]
    pub fn client_credentials(cache: &TokenCache, client: &Client, scopes: &Scopes) -> Self {
        Self::new(cache.client_credentials(client, scopes))
    }

    /// A user's ROPC tokens for `scopes` from `cache`.
    #[must_use]
    pub fn password(cache: &TokenCache, client: &Client, username: &str, password: &Password, scopes: &Scopes) -> Self {
        Self::new(cache.password(client, username, password, scopes))
    }

    /// Fetches a token now, so that the first call finds one in the cache.
    ///
    /// # Errors
    /// The fetch's error.
    pub async fn warm(&self) -> Result<()> {
        self.provider.token().await.map(|_| ())
    }

    /// Starts a fetch in the background, on the current runtime if there is one.
    fn fetch_in_background(&self) {
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let provider = Arc::clone(&self.provider);
            runtime.spawn(async move {
                if let Err(error) = provider.token().await {
                    tracing::warn!(%error, "gRPC bearer token: background fetch failed");
                }
            });
        }
    }
}

/// The metadata value of the last token sent: built once per token rather than once per call
/// (building one copies and validates the whole token); clones share its bytes. (A
/// `HeaderValue` is kept by the token itself: see [`Token::authorization_header`].)
#[derive(Default)]
struct MetadataCache(ArcSwapOption<(Token, MetadataValue<Ascii>)>);

impl MetadataCache {
    /// `token`'s value: the cached one if `token` is the last token seen, otherwise
    /// `build`'s, which is then kept.
    fn get_or_build(
        &self,
        token: &Token,
        build: impl FnOnce(&Token) -> Result<MetadataValue<Ascii>, Status>,
    ) -> Result<MetadataValue<Ascii>, Status> {
        if let Some((cached, value)) = self.0.load().as_deref() {
            if cached.same_as(token) {
                return Ok(value.clone());
            }
        }
        let value = build(token)?;
        self.0.store(Some(Arc::new((token.clone(), value.clone()))));
        Ok(value)
    }
}

impl tonic::service::Interceptor for BearerInterceptor {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        let Some(token) = self.provider.cached() else {
            self.fetch_in_background();
            return Err(Status::unauthenticated(
                "no bearer token cached yet: call BearerInterceptor::warm() before the first call (a fetch has been started)",
            ));
        };
        let value = self.header.get_or_build(&token, |token| {
            let header = token
                .authorization_bytes()
                .map_err(|error| Status::unauthenticated(error.to_string()))?;
            let mut value = MetadataValue::try_from(header)
                .map_err(|_| Status::unauthenticated("the access token cannot go in gRPC metadata"))?;
            value.set_sensitive(true);
            Ok::<_, Status>(value)
        })?;
        request.metadata_mut().insert("authorization", value);
        Ok(request)
    }
}

impl fmt::Debug for BearerInterceptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BearerInterceptor").finish_non_exhaustive()
    }
}
