//! HTTP plumbing that every concept shares, below all of them: the crate's own `reqwest`
//! client (no redirects, bounded timeouts), the form POST, JSON documents fetched with a body
//! cap, `Retry-After`, and transport failures turned into [`crate::Error`]s.
//!
//! Nothing here knows about grants, tokens, caches or validation: the authority's discovery,
//! the client's token requests and the validator's key fetches all come through it, so the
//! rules a request obeys (where it may go, how much of an answer is read, how long it may
//! take) are written once.

mod body;
mod document;
mod failure;
mod form;
mod retry_after;

use std::time::Duration;

use url::Url;

pub(crate) use self::body::BodyError;
#[cfg(feature = "validate")]
pub(crate) use self::document::invalid_document_field;
pub(crate) use self::document::{document_string, get_json, Document};
pub(crate) use self::failure::{transport_error, transport_error_at};
pub(crate) use self::form::{post_form, Reply};
pub(crate) use self::retry_after::parse_retry_after;

/// The HTTP client a [`crate::Client`] sends with: the crate's own, a user's builder that the
/// crate finishes with its rules ([`secure`]), or a user's finished client.
pub(crate) enum HttpChoice {
    Own,
    Builder(Box<reqwest::ClientBuilder>),
    Client(reqwest::Client),
}
use crate::error::{Error, Result};

/// The `User-Agent` sent with every request.
pub(crate) const USER_AGENT: &str = concat!(env!("CARGO_PKG_NAME"), "/", env!("CARGO_PKG_VERSION"));

/// Default total timeout of one request.
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Default connect timeout.
pub(crate) const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The crate's own HTTP client: [`secure`] applied to a fresh `reqwest` builder.
pub(crate) fn http_client(
    timeout: Duration,
    connect_timeout: Duration,
    endpoint: &Url,
    extra_roots: Vec<reqwest::Certificate>,
    only_extra_roots: bool,
) -> Result<reqwest::Client> {
    secure(
        reqwest::Client::builder(),
        timeout,
        connect_timeout,
        endpoint,
        extra_roots,
        only_extra_roots,
    )
}

/// Where a request may go, applied to any `reqwest` builder (the crate's own, or one a user
/// configured): no redirects (a redirect would re-send the form, secrets included, to
/// wherever the server points, even when it comes back to the same URL in the end), bounded
/// timeouts, the extra trusted roots on top of the system's. For a plain `http://` endpoint
/// (loopback only) no proxy is ever used: a proxy from `HTTP_PROXY`, `ALL_PROXY` or the
/// builder's own settings would receive the form, password included, in clear text. `https://`
/// goes through a configured proxy as usual (the proxy sees only the TLS stream).
pub(crate) fn secure(
    builder: reqwest::ClientBuilder,
    timeout: Duration,
    connect_timeout: Duration,
    endpoint: &Url,
    extra_roots: Vec<reqwest::Certificate>,
    only_extra_roots: bool,
) -> Result<reqwest::Client> {
    let mut builder = builder
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .connect_timeout(connect_timeout)
        .user_agent(USER_AGENT);
    if endpoint.scheme() == "http" {
        builder = builder.no_proxy();
    }
    if only_extra_roots {
        // No system roots to load: the first handshake is ~30 ms faster, and only the given
        // CAs are trusted.
        builder = builder.tls_certs_only(extra_roots);
    } else if !extra_roots.is_empty() {
        builder = builder.tls_certs_merge(extra_roots);
    }
    builder
        .build()
        .map_err(|e| Error::config(format!("could not build the HTTP client: {e}")))
}
