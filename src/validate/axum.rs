//! Handlers take [`Claims`] as an argument (feature `axum`): the claims [`ValidateLayer`]
//! put in the request.
//!
//! [`ValidateLayer`]: super::ValidateLayer

use axum_core::extract::{FromRequestParts, OptionalFromRequestParts};
use http::request::Parts;
use http::StatusCode;

use super::Claims;

/// Extracts the [`Claims`] of the validated token. A route without
/// [`ValidateLayer`](super::ValidateLayer) in front has none: that is a server
/// misconfiguration, answered 500 (never as if the request were authenticated).
///
/// ```
/// use axum::{routing::get, Router};
/// use b2c_token::{validate::Claims, validate::ValidateLayer, Validator};
///
/// async fn me(claims: Claims) -> String {
///     claims.name().unwrap_or("anonymous").to_owned()
/// }
///
/// fn app(validator: Validator) -> Router {
///     Router::new().route("/me", get(me)).layer(ValidateLayer::new(validator))
/// }
/// ```
impl<S: Send + Sync> FromRequestParts<S> for Claims {
    type Rejection = StatusCode;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts.extensions.get::<Claims>().cloned().ok_or_else(|| {
            tracing::error!("a handler asks for Claims but no ValidateLayer is in front of its route");
            StatusCode::INTERNAL_SERVER_ERROR
        })
    }
}

/// `Option<Claims>`: for routes that serve anonymous callers too (behind no layer, or one
/// that let them through).
impl<S: Send + Sync> OptionalFromRequestParts<S> for Claims {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Option<Self>, Self::Rejection> {
        Ok(parts.extensions.get::<Claims>().cloned())
    }
}
