//! [`ValidateLayer`]: a `tower::Layer` that lets a request through only with a valid bearer
//! token, and answers the others as RFC 6750 §3 says.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::header::{HeaderValue, AUTHORIZATION, RETRY_AFTER, WWW_AUTHENTICATE};
use http::{Request, Response, StatusCode};

use super::InvalidToken;
use super::{Claims, Validator};
use crate::error::Error;

/// Puts a [`Validator`] in front of a service: a request with a valid bearer token goes on
/// with its [`Claims`] in the request's extensions; any other gets an empty answer:
///
/// | request | answer |
/// |---|---|
/// | no `Authorization: Bearer` | 401, `WWW-Authenticate: Bearer` |
/// | token refused | 401, `WWW-Authenticate: Bearer error="invalid_token", error_description="…"` |
/// | token lacks a required scope | 403, `WWW-Authenticate: Bearer error="insufficient_scope", error_description="…", scope="…"` |
/// | no signing keys could be fetched | 503, `Retry-After: 10` |
///
/// Works with any `tower::Service<http::Request<B>>` whose response body has a `Default`
/// (axum, tonic, hyper with `Full`/`Empty`). Per-route requirements: one layer per route
/// with [`ValidateLayer::require_scope`].
///
/// ```
/// use axum::{routing::get, Extension, Router};
/// use b2c_token::{validate::Claims, validate::ValidateLayer, Validator};
///
/// fn app(validator: Validator) -> Router {
///     Router::new()
///         .route("/orders", get(|Extension(claims): Extension<Claims>| async move {
///             format!("orders of {}", claims.subject().unwrap_or("?"))
///         }))
///         .route_layer(ValidateLayer::new(validator).require_scope("orders.read"))
/// }
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct ValidateLayer {
    validator: Validator,
    scopes: Arc<[String]>,
}

impl ValidateLayer {
    /// Validates with `validator` (its own required scopes included).
    pub fn new(validator: Validator) -> Self {
        Self {
            validator,
            scopes: Arc::from([]),
        }
    }

    /// Requires this scope (in `scp` or `roles`) for the routes behind this layer.
    pub fn require_scope(self, scope: &str) -> Self {
        let mut scopes = self.scopes.to_vec();
        scopes.push(scope.to_owned());
        Self {
            scopes: scopes.into(),
            ..self
        }
    }
}

impl<S> tower_layer::Layer<S> for ValidateLayer {
    type Service = Validate<S>;

    fn layer(&self, inner: S) -> Validate<S> {
        Validate {
            inner,
            validator: self.validator.clone(),
            scopes: Arc::clone(&self.scopes),
        }
    }
}

/// The service [`ValidateLayer`] makes.
#[derive(Debug, Clone)]
pub struct Validate<S> {
    inner: S,
    validator: Validator,
    scopes: Arc<[String]>,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, B, ResBody> tower_service::Service<Request<B>> for Validate<S>
where
    S: tower_service::Service<Request<B>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send,
    B: Send + 'static,
    ResBody: Default,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Response<ResBody>, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        // The clone that was polled ready serves this request; the fresh one waits for the next.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let validator = self.validator.clone();
        let scopes = Arc::clone(&self.scopes);
        // A cheap clone (`Bytes` inside): the future must not borrow the request, whose
        // body need not be `Sync`.
        let authorization = single_authorization(&request);
        Box::pin(async move {
            match authorize(&validator, &scopes, authorization).await {
                Ok(claims) => {
                    request.extensions_mut().insert(claims);
                    inner.call(request).await
                }
                Err(error) => Ok(refusal(&error)),
            }
        })
    }
}

async fn authorize(
    validator: &Validator,
    scopes: &[String],
    authorization: Option<HeaderValue>,
) -> Result<Claims, Error> {
    let authorization = authorization.ok_or(Error::InvalidToken(InvalidToken::Missing))?;
    let token = bearer_token(&authorization)?;
    let claims = validator.validate(token).await?;
    validator.check_scopes(&claims, scopes)?;
    Ok(claims)
}

/// The `Authorization` header when there is exactly one.
fn single_authorization<B>(request: &Request<B>) -> Option<HeaderValue> {
    let mut values = request.headers().get_all(AUTHORIZATION).iter();
    match (values.next(), values.next()) {
        (Some(value), None) => Some(value.clone()),
        _ => None,
    }
}

/// The token of an `Authorization: Bearer …` header (scheme case-insensitive).
fn bearer_token(value: &HeaderValue) -> Result<&str, Error> {
    let value = value
        .to_str()
        .map_err(|_| Error::InvalidToken(InvalidToken::Malformed("the Authorization header is not ASCII")))?;
    match value.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() => Ok(token.trim()),
        _ => Err(Error::InvalidToken(InvalidToken::Missing)),
    }
}

/// The answer to a refused request (RFC 6750 §3).
pub(super) fn refusal<B: Default>(error: &Error) -> Response<B> {
    let mut response = Response::new(B::default());
    match error {
        Error::InvalidToken(reason) => {
            tracing::debug!(reason = %reason, "bearer token refused");
            let mut challenge = String::from("Bearer");
            if let Some(code) = reason.oauth_error() {
                challenge.push_str(&format!(
                    " error=\"{code}\", error_description=\"{}\"",
                    quoted_string(&reason.to_string())
                ));
            }
            if let InvalidToken::InsufficientScope { required, .. } = reason {
                challenge.push_str(&format!(", scope=\"{}\"", quoted_string(&required.join(" "))));
            }
            *response.status_mut() = match reason {
                InvalidToken::InsufficientScope { .. } => StatusCode::FORBIDDEN,
                _ => StatusCode::UNAUTHORIZED,
            };
            if let Ok(value) = HeaderValue::from_str(&challenge) {
                response.headers_mut().insert(WWW_AUTHENTICATE, value);
            }
        }
        other => {
            tracing::warn!(error = %other, "no signing keys to validate bearer tokens with");
            *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
            response
                .headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from_static("10"));
        }
    }
    response
}

/// RFC 6750's `error_description` and `scope` allow %x20-21 / %x23-5B / %x5D-7E only:
/// no `"`, no `\`, nothing outside printable ASCII.
fn quoted_string(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '"' | '\\' => '\'',
            ' '..='~' => c,
            _ => '?',
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_follow_rfc_6750() {
        let missing: Response<()> = refusal(&Error::InvalidToken(InvalidToken::Missing));
        assert_eq!(missing.status(), 401);
        assert_eq!(missing.headers()[WWW_AUTHENTICATE], "Bearer");

        let expired: Response<()> = refusal(&Error::InvalidToken(InvalidToken::Expired));
        assert_eq!(expired.status(), 401);
        assert_eq!(
            expired.headers()[WWW_AUTHENTICATE],
            "Bearer error=\"invalid_token\", error_description=\"bearer token refused: token has expired: get a new one\""
                .replace("bearer token refused: ", "")
        );

        let scope: Response<()> = refusal(&Error::InvalidToken(InvalidToken::InsufficientScope {
            required: vec!["read".into(), "write".into()],
            none_granted: false,
            app_id_uri: None,
            app_only: false,
        }));
        assert_eq!(scope.status(), 403);
        assert_eq!(
            scope.headers()[WWW_AUTHENTICATE],
            "Bearer error=\"insufficient_scope\", error_description=\"token lacks a required scope: request `read` `write`\", scope=\"read write\""
        );
    }

    #[test]
    fn descriptions_carry_only_allowed_characters() {
        let alg: Response<()> = refusal(&Error::InvalidToken(InvalidToken::Algorithm("\"é\\".into())));
        let value = alg.headers()[WWW_AUTHENTICATE].to_str().expect("ascii");
        let description = value.split("error_description=\"").nth(1).expect("description");
        let description = description.strip_suffix('"').expect("closing quote");
        assert!(description
            .chars()
            .all(|c| matches!(c, ' '..='!' | '#'..='[' | ']'..='~')));
    }
}
