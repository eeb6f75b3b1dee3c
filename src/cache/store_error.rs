//! What a failed store operation reports (a leaf of the cache: stores and the stored-token
//! format both return it).

/// A store operation that failed: the cache logs it (once per outage), counts it, and goes on
/// without the store (its own copy and the token endpoint still work).
#[derive(Debug, Clone, thiserror::Error)]
#[error("token store: {message}")]
pub struct StoreError {
    message: String,
}

impl StoreError {
    /// An error with this message (say what failed, never a token).
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }
}

/// The result of a store operation.
pub type StoreResult<T> = Result<T, StoreError>;
