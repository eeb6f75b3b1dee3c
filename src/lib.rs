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
//!   client proves itself with a secret, a [`ClientCertificate`](crate::credential::ClientCertificate) or any [`ClientAssertion`](crate::credential::ClientAssertion)
//!   (workload identity: [`FederatedTokenFile`](crate::credential::FederatedTokenFile)), as each service allows.
//! * [`Token`] reads B2C's quirky responses (`expires_in` as a number *or* a string, no
//!   access token for `openid`-only requests) into absolute expiry times.
//! * [`Error`] says what to do: [`Error::Rejected`] carries the parsed [`B2cCode`](crate::error::B2cCode)
//!   (`AADB2C90225`, ...) or [`AadstsCode`](crate::error::AadstsCode), the correlation ID and a one-line fix.
//! * [`TokenCache`] keeps tokens fresh: [`TokenSource::token`] costs ~30 ns on a hit, refreshes
//!   early in the background, and sends one request per key however many callers wait.
//! * [`BearerAuth`](crate::outgoing::BearerAuth) (feature `reqwest-middleware`) attaches the cached token to outgoing
//!   reqwest calls and refreshes once on a 401.
//! * Failed requests are retried within a budget ([`RetryPolicy`](crate::client::RetryPolicy)), `Retry-After` honoured, and
//!   rejected ROPC passwords are never resent for a while (B2C locks accounts).
//! * [`ClientBuilder::from_env`](crate::client::ClientBuilder::from_env) reads the same `B2C_*` variables as the command line tool.
//!
//! Secrets ([`Password`], [`ClientSecret`], [`AccessToken`](crate::secret::AccessToken), [`RefreshToken`](crate::secret::RefreshToken), [`IdToken`](crate::secret::IdToken))
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
//! # Where things are
//!
//! The root holds what nearly every user names: [`Authority`], [`Client`], [`Scopes`],
//! [`Token`], [`TokenCache`] and [`TokenSource`], [`Password`] and [`ClientSecret`],
//! [`Error`] and [`Result`], and (feature `validate`) [`Validator`]. The rest lives in the
//! module of its concept:
//!
//! | module | what is in it |
//! |---|---|
//! | [`authority`] | the builders and kinds behind [`Authority`]: B2C URL forms, clouds, Entra |
//! | [`client`] | [`ClientBuilder`](client::ClientBuilder) (and its environment variables), grants, retries |
//! | [`credential`] | how a confidential client proves itself beyond a secret: certificates, federated tokens, your own assertions |
//! | [`cache`] | the cache's builder, futures and counters |
//! | [`store`] | stores shared by replicas: memory, files, Redis, and the contract for your own |
//! | [`outgoing`] | bearer tokens on outgoing calls: reqwest-middleware, tower, tonic, azure_core |
//! | [`validate`] | the API side: the validator's builder, the layer, claims, why a token was refused |
//! | [`error`] | what an [`Error`] carries: rejections, B2C and AADSTS codes, unexpected responses |
//! | [`secret`] | the secret-holding types: tokens, passwords, client secrets |
//! | [`blocking`] | the client and the cache without async (feature `blocking`) |
//!
//! # Features
//!
//! * `reqwest-middleware`: [`BearerAuth`](crate::outgoing::BearerAuth), a `reqwest_middleware::Middleware`.
//! * `redis`: [`RedisStore`](crate::store::RedisStore), a [`TokenStore`](crate::store::TokenStore) that lets a fleet of replicas share one token
//!   per lifetime (encrypted at rest, cross-replica single flight, invalidation by pub/sub).
//! * `tower`: [`BearerLayer`](crate::outgoing::BearerLayer), a `tower::Layer` adding bearer tokens to `http::Request`s
//!   (hyper and other tower clients).
//! * `tonic`: [`BearerInterceptor`](crate::outgoing::BearerInterceptor), the cached token on every gRPC call, without an await.
//! * `azure-core`: a [`TokenSource`] as an `azure_core` `TokenCredential`, and any
//!   `TokenCredential` as a [`TokenProvider`](crate::outgoing::TokenProvider) ([`CredentialProvider`](crate::outgoing::CredentialProvider)).
//! * `validate`: the API side. [`Validator`] checks B2C access tokens (per-policy keys,
//!   RS256, issuer, audience, expiry, policy, scopes); [`ValidateLayer`](crate::validate::ValidateLayer) puts it in front of
//!   tower services (axum, tonic, hyper) and answers as RFC 6750 says.
//! * `axum`: [`Claims`](crate::validate::Claims) as an axum extractor.
//! * `blocking`: [`blocking::Client`] and [`blocking::TokenCache`], the client and the cache
//!   for programs without an async runtime.
//! * `metrics`: OpenTelemetry metrics from the client, the cache and the validator
//!   (names and attributes: [`metrics`]).
//! * `cli`: the `b2c-token` command (see the README).
//! * `test-tenant`: [`test_tenant::FakeTenant`], an in-process fake B2C tenant on loopback
//!   that issues real RS256-signed JWTs, for your tests and for the quickstart.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![warn(unreachable_pub, clippy::unwrap_used)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod authority;
#[cfg(feature = "blocking")]
#[cfg_attr(docsrs, doc(cfg(feature = "blocking")))]
pub mod blocking;
pub mod cache;
pub mod client;
mod clock;
pub mod credential;
mod env;
pub mod error;
mod jitter;
mod json;
mod jws;
#[cfg(feature = "metrics")]
#[cfg_attr(docsrs, doc(cfg(feature = "metrics")))]
pub mod metrics;
mod net;
pub mod outgoing;
mod scope;
pub mod secret;
pub mod store;
mod striped;
mod sync;
mod token;
mod untrusted_file;
#[cfg(feature = "validate")]
#[cfg_attr(docsrs, doc(cfg(feature = "validate")))]
pub mod validate;

/// Entry points for the fuzz targets in fuzz/ (cargo-fuzz builds with `--cfg fuzzing`);
/// compiled into the crate's own tests for the CI-sized smoke run. Not part of the API.
#[cfg(any(fuzzing, test))]
#[doc(hidden)]
pub mod fuzzing;

#[cfg(feature = "test-tenant")]
#[cfg_attr(docsrs, doc(cfg(feature = "test-tenant")))]
pub mod test_tenant;

// The handful every user names; the rest lives in the module of its concept.
pub use authority::Authority;
pub use cache::{TokenCache, TokenSource};
pub use client::Client;
pub use error::{Error, Result};
pub use scope::Scopes;
pub use secret::{ClientSecret, Password};
pub use token::Token;
#[cfg(feature = "validate")]
pub use validate::Validator;

#[cfg(test)]
mod auto_traits {
    //! Compile-time checks: handles cross threads, and clones of them are cheap `Arc` bumps.
    use super::*;
    use crate::secret::{AccessToken, RefreshToken};

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

/// The Rust snippets of docs/, compiled (and run where they need no network) as doctests, each
/// file under the features its snippets use.
#[cfg(doctest)]
mod docs_doctests {
    #[doc = include_str!("../docs/migrating-to-external-id.md")]
    struct MigratingToExternalId;
    #[cfg(feature = "redis")]
    #[doc = include_str!("../docs/scaling.md")]
    struct Scaling;
    #[cfg(feature = "test-tenant")]
    #[doc = include_str!("../docs/testing-with-the-fake-tenant.md")]
    struct TestingWithTheFakeTenant;
    #[doc = include_str!("../docs/troubleshooting.md")]
    struct Troubleshooting;
    #[cfg(all(feature = "validate", feature = "axum", feature = "test-tenant"))]
    #[doc = include_str!("../docs/validating-tokens.md")]
    struct ValidatingTokens;
}
