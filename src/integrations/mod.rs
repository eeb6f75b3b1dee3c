//! Thin adapters to other crates, one file per integration, each behind the feature named
//! after its dependency. A user who enables none compiles none of them.

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
