//! Bearer tokens on outgoing calls: one adapter per HTTP or RPC stack, each behind the
//! feature named after its dependency (a user who enables none compiles none of them).
//!
//! | your stack | type | feature |
//! |---|---|---|
//! | `reqwest` through `reqwest-middleware` | [`BearerAuth`] | `reqwest-middleware` |
//! | `tower` services (hyper, axum's client side) | [`BearerLayer`] | `tower` |
//! | `tonic` gRPC clients | [`BearerInterceptor`] | `tonic` |
//! | Azure SDK clients (`azure_core::credentials::TokenCredential`) | [`CredentialProvider`] | `azure-core` |
//!
//! Each takes a [`TokenProvider`] (a [`TokenSource`](crate::TokenSource) from the cache, or
//! your own) and sends its token only to the hosts you allow.

pub(crate) mod allow_list;
#[cfg(any(feature = "reqwest-middleware", feature = "tower"))]
pub(crate) mod bearer;
pub(crate) mod provider;

#[cfg(feature = "reqwest-middleware")]
#[cfg_attr(docsrs, doc(cfg(feature = "reqwest-middleware")))]
pub(crate) mod reqwest_middleware;

#[cfg(feature = "tower")]
#[cfg_attr(docsrs, doc(cfg(feature = "tower")))]
pub(crate) mod tower;

#[cfg(feature = "tonic")]
#[cfg_attr(docsrs, doc(cfg(feature = "tonic")))]
pub(crate) mod tonic;

#[cfg(feature = "azure-core")]
#[cfg_attr(docsrs, doc(cfg(feature = "azure-core")))]
pub(crate) mod azure_core;

pub use self::allow_list::TokenScopes;
#[cfg(feature = "azure-core")]
pub use self::azure_core::CredentialProvider;
pub use self::provider::{TokenProvider, TokenProviderFuture};
#[cfg(feature = "reqwest-middleware")]
pub use self::reqwest_middleware::BearerAuth;
#[cfg(feature = "tonic")]
pub use self::tonic::BearerInterceptor;
#[cfg(feature = "tower")]
pub use self::tower::{Bearer, BearerLayer, BoxError};
