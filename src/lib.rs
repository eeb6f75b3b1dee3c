//! Headless Azure AD B2C access tokens for Rust services.
//!
//! B2C's documentation assumes a browser; daemons and back-end jobs have none. This crate
//! gets tokens with the three grants that need no person at the keyboard, and tells you
//! precisely what went wrong when B2C says no:
//!
//! * [`Authority`] builds the token endpoint from tenant + policy in every form B2C serves
//!   (path, `?p=`, `tfp`, tenant GUID, custom domain, China cloud), for Entra External ID
//!   ([`Authority::external_id`]) and Entra ID ([`Authority::entra`]), from any OpenID
//!   provider's discovery document ([`Authority::discover`]), or takes any OAuth2 token URL.
//! * [`Client`] sends the grants: [`Client::acquire_token_by_password`] (ROPC),
//!   [`Client::acquire_token_by_client_credentials`] and
//!   [`Client::acquire_token_by_refresh_token`], each as one form-encoded POST; a confidential
//!   client proves itself with a secret, a [`ClientCertificate`] or any [`ClientAssertion`]
//!   (workload identity: [`FederatedTokenFile`]), as each service allows.
//! * [`Token`] reads B2C's quirky responses (`expires_in` as a number *or* a string, no
//!   access token for `openid`-only requests) into absolute expiry times.
//! * [`Error`] says what to do: [`Error::Rejected`] carries the parsed [`B2cCode`]
//!   (`AADB2C90225`, ...) or [`AadstsCode`], the correlation ID and a one-line fix.
//! * [`TokenCache`] keeps tokens fresh: [`TokenSource::token`] costs ~30 ns on a hit, refreshes
//!   early in the background, and sends one request per key however many callers wait.
//! * [`BearerAuth`] (feature `reqwest-middleware`) attaches the cached token to outgoing
//!   reqwest calls and refreshes once on a 401.
//! * Failed requests are retried within a budget ([`RetryPolicy`]), `Retry-After` honoured, and
//!   rejected ROPC passwords are never resent for a while (B2C locks accounts).
//! * [`ClientBuilder::from_env`] reads the same `B2C_*` variables as the command line tool.
//!
//! Secrets ([`Password`], [`ClientSecret`], [`AccessToken`], [`RefreshToken`], [`IdToken`])
//! are zeroized on drop and never appear in `Debug`, `Display`, errors or logs.
//!
//! # Example
//!
//! ```no_run
//! use b2c_token::{Authority, Client, Scopes};
//!
//! # async fn demo() -> Result<(), b2c_token::Error> {
//! let authority = Authority::b2c("contoso", "B2C_1_signin")?;
//! let client = Client::builder(authority, "22222222-2222-2222-2222-222222222222")
//!     .client_secret(std::env::var("B2C_CLIENT_SECRET").unwrap_or_default())
//!     .build()?;
//! let scopes = Scopes::new(["https://contoso.onmicrosoft.com/api/.default"])?;
//! let token = client.acquire_token_by_client_credentials(&scopes).await?;
//! let bearer = token.access_token().expect("client credentials return an access token");
//! # let _ = bearer;
//! # Ok(()) }
//! ```
//!
//! # Features
//!
//! * `reqwest-middleware`: [`BearerAuth`], a `reqwest_middleware::Middleware`.
//! * `redis`: [`RedisStore`], a [`TokenStore`] that lets a fleet of replicas share one token
//!   per lifetime (encrypted at rest, cross-replica single flight, invalidation by pub/sub).
//! * `tower`: [`BearerLayer`], a `tower::Layer` adding bearer tokens to `http::Request`s
//!   (hyper and other tower clients).
//! * `tonic`: [`BearerInterceptor`], the cached token on every gRPC call, without an await.
//! * `azure-core`: a [`TokenSource`] as an `azure_core` `TokenCredential`, and any
//!   `TokenCredential` as a [`TokenProvider`] ([`CredentialProvider`]).
//! * `validate`: the API side. [`Validator`] checks B2C access tokens (per-policy keys,
//!   RS256, issuer, audience, expiry, policy, scopes); [`ValidateLayer`] puts it in front of
//!   tower services (axum, tonic, hyper) and answers as RFC 6750 says.
//! * `axum`: [`Claims`] as an axum extractor.
//! * `cli`: the `b2c-token` command (see the README).
//! * `test-tenant`: [`test_tenant::FakeTenant`], an in-process fake B2C tenant on loopback
//!   that issues real RS256-signed JWTs, for your tests and for the quickstart.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![warn(unreachable_pub, clippy::unwrap_used)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod authority;
mod cache;
mod client;
mod clock;
mod env;
mod error;
mod integrations;
mod jitter;
mod json;
mod jws;
mod net;
mod scope;
mod secret;
mod sync;
mod token;
mod untrusted_file;
#[cfg(feature = "validate")]
#[cfg_attr(docsrs, doc(cfg(feature = "validate")))]
mod validate;

/// Entry points for the fuzz targets in fuzz/ (cargo-fuzz builds with `--cfg fuzzing`);
/// compiled into the crate's own tests for the CI-sized smoke run. Not part of the API.
#[cfg(any(fuzzing, test))]
#[doc(hidden)]
pub mod fuzzing;

#[cfg(feature = "test-tenant")]
#[cfg_attr(docsrs, doc(cfg(feature = "test-tenant")))]
pub mod test_tenant;

pub use authority::{Authority, AuthorityBuilder, AuthorityKind, Cloud, EntraAuthorityBuilder, Policy, PolicyForm};
pub use cache::{
    CacheKey, CacheStats, FileEntry, FileStore, InvalidationHub, MemoryStore, StoreError, StoreFuture,
    StoreInvalidations, StoreKey, StoreLock, StoreNamespace, StoreResult, StoredToken, TokenCache, TokenCacheBuilder,
    TokenFuture, TokenSource, TokenStore,
};
#[cfg(feature = "redis")]
pub use cache::{RedisStore, RedisStoreBuilder};
pub use client::credential::{
    AssertionFuture, AssertionRequest, ClientAssertion, ClientCertificate, CredentialIdentity, FederatedTokenFile,
    IdentityFuture,
};
pub use client::grant::GrantKind;
pub use client::retry::RetryPolicy;
pub use client::{Client, ClientAuthentication, ClientBuilder};
pub use error::aadsts::AadstsCode;
pub use error::b2c_code::{B2cCode, RetryAdvice};
#[cfg(feature = "validate")]
pub use error::InvalidToken;
pub use error::{Error, Rejection, Result, UnexpectedKind, UnexpectedResponse};
pub use integrations::allow_list::TokenScopes;
#[cfg(feature = "azure-core")]
pub use integrations::azure_core::CredentialProvider;
pub use integrations::provider::{TokenProvider, TokenProviderFuture};
#[cfg(feature = "reqwest-middleware")]
pub use integrations::reqwest_middleware::BearerAuth;
#[cfg(feature = "tonic")]
pub use integrations::tonic::BearerInterceptor;
#[cfg(feature = "tower")]
pub use integrations::tower::{Bearer, BearerLayer, BoxError, ReplayBody};
pub use scope::Scopes;
pub use secret::{AccessToken, ClientSecret, IdToken, Password, RefreshToken};
pub use token::Token;
#[cfg(feature = "validate")]
pub use validate::{Claims, Validate, ValidateLayer, Validator, ValidatorBuilder, DEFAULT_MAX_TOKEN_BYTES};

#[cfg(test)]
mod auto_traits {
    //! Compile-time checks: handles cross threads, and clones of them are cheap `Arc` bumps.
    use super::*;

    fn send_sync<T: Send + Sync>() {}
    fn cheap_clone<T: Clone>() {}

    #[test]
    fn public_types_are_send_and_sync() {
        send_sync::<Client>();
        send_sync::<TokenCache>();
        send_sync::<TokenSource>();
        cheap_clone::<TokenSource>();
        cheap_clone::<TokenCache>();
        // A source holds its entry and credential directly (a hit follows one pointer fewer):
        // cloning it bumps two counts and copies the fingerprint.
        assert_eq!(std::mem::size_of::<TokenSource>(), 3 * std::mem::size_of::<usize>());
        send_sync::<Token>();
        send_sync::<Authority>();
        send_sync::<Error>();
        send_sync::<AccessToken>();
        send_sync::<RefreshToken>();
        cheap_clone::<Client>();
        cheap_clone::<Token>();
        // Client and Token are one Arc each: cloning copies a pointer.
        assert_eq!(std::mem::size_of::<Client>(), std::mem::size_of::<usize>());
        assert_eq!(std::mem::size_of::<Token>(), std::mem::size_of::<usize>());
    }

    #[allow(dead_code)]
    fn futures_are_send(client: &Client, password: &Password, scopes: &Scopes, refresh: &RefreshToken) {
        fn is_send<T: Send>(_: T) {}
        is_send(client.acquire_token_by_password("u", password, scopes));
        is_send(client.acquire_token_by_client_credentials(scopes));
        is_send(client.acquire_token_by_refresh_token(refresh, scopes));
        let source = TokenCache::new().client_credentials(client, scopes);
        is_send(async move { source.token().await });
    }
}

/// The README's examples, compiled and run as doctests so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
