//! [`Client`]: the three grants, waiting for their answer.

use std::fmt;

use super::runtime::Background;
use crate::error::Result;
use crate::scope::Scopes;
use crate::secret::{Password, RefreshToken};
use crate::token::Token;

/// A [`crate::Client`] whose calls wait for their answer. Cheap to clone (the clones share
/// the connection pool and the background thread).
///
/// ```no_run
/// # fn demo(async_client: b2c_token::Client, scopes: b2c_token::Scopes) -> Result<(), b2c_token::Error> {
/// let client = b2c_token::blocking::Client::new(async_client)?;
/// let token = client.acquire_token_by_client_credentials(&scopes)?;
/// # let _ = token; Ok(()) }
/// ```
#[derive(Clone)]
pub struct Client {
    inner: crate::Client,
    background: Background,
}

impl Client {
    /// Wraps `client` (built as usual with [`crate::Client::builder`]) and starts the
    /// background thread its requests run on.
    ///
    /// # Errors
    /// [`crate::Error::Config`] when the thread cannot be started.
    pub fn new(client: crate::Client) -> Result<Self> {
        Ok(Self {
            inner: client,
            background: Background::start()?,
        })
    }

    /// The async client inside, for code that has a runtime after all.
    #[must_use]
    pub fn as_async(&self) -> &crate::Client {
        &self.inner
    }

    /// As [`crate::Client::acquire_token_by_password`].
    ///
    /// # Errors
    /// As the async call, and [`crate::Error::BlockingInsideAsyncRuntime`] from inside an
    /// async runtime.
    pub fn acquire_token_by_password(&self, username: &str, password: &Password, scopes: &Scopes) -> Result<Token> {
        self.background
            .wait(self.inner.acquire_token_by_password(username, password, scopes))?
    }

    /// As [`crate::Client::acquire_token_by_client_credentials`].
    ///
    /// # Errors
    /// As the async call, and [`crate::Error::BlockingInsideAsyncRuntime`] from inside an
    /// async runtime.
    pub fn acquire_token_by_client_credentials(&self, scopes: &Scopes) -> Result<Token> {
        self.background
            .wait(self.inner.acquire_token_by_client_credentials(scopes))?
    }

    /// As [`crate::Client::acquire_token_by_refresh_token`].
    ///
    /// # Errors
    /// As the async call, and [`crate::Error::BlockingInsideAsyncRuntime`] from inside an
    /// async runtime.
    pub fn acquire_token_by_refresh_token(&self, refresh_token: &RefreshToken, scopes: &Scopes) -> Result<Token> {
        self.background
            .wait(self.inner.acquire_token_by_refresh_token(refresh_token, scopes))?
    }
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("blocking::Client").field("client", &self.inner).finish()
    }
}
