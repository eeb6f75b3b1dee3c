//! The integration tests: one binary, so that the crate and its features are linked once
//! rather than once per file. Each module is one concern; `support/` holds what they share.
//! Modules that need an optional integration are compiled when its feature is on
//! (`cargo test --all-features` runs them all). The fake tenant (`test-tenant`) is required:
//! Cargo.toml names it in this binary's `required-features`.
//!
//! The tests that install a global allocator live in `tests/memory/`, their own binary.

#[path = "../support/mod.rs"]
mod support;

#[cfg(all(feature = "azure-core", feature = "tonic", feature = "reqwest-middleware"))]
mod azure_core;
#[cfg(feature = "validate")]
mod beyond_b2c;
#[cfg(feature = "blocking")]
mod blocking;
mod cache;
mod cache_attacks;
#[cfg(feature = "cli")]
mod cli;
mod discovery;
mod docs;
mod fake_tenant;
mod fetch_spans;
mod grants;
#[cfg(feature = "cli")]
mod hostile_servers;
mod lockout;
#[cfg(all(feature = "metrics", feature = "validate"))]
mod metrics;
#[cfg(all(feature = "reqwest-middleware", feature = "tower"))]
mod middleware;
mod model;
#[cfg(feature = "reqwest-middleware")]
mod redaction;
#[cfg(feature = "redis")]
mod redis_store;
mod reliability;
mod responses;
mod soak;
#[cfg(feature = "tonic")]
mod tonic_interceptor;
#[cfg(feature = "tower")]
mod tower_layer;
mod user_store;
#[cfg(all(feature = "validate", feature = "axum"))]
mod validate;
mod where_secrets_go;
mod whose_token;
