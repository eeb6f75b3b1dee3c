//! The crate without `async` (feature `blocking`), as `reqwest::blocking` is for reqwest: for
//! CLIs, build tools, synchronous daemons and FFI callers that have no async runtime.
//!
//! [`Client`] and [`TokenCache`] wrap the async ones and keep every promise of theirs: one
//! request per key however many threads wait (single flight), refresh ahead of expiry in the
//! background, never an expired token, a token served only to the credential that earned it.
//! Each owns a small tokio runtime on a background thread of its own (named `b2c-token`): the
//! refreshes run there, and a waiting call parks its own thread on it.
//!
//! A cached token is returned without touching the runtime (no lock, no wait). A call that
//! would wait, made from inside an async runtime (where blocking would stall the runtime, or
//! deadlock a single-threaded one), returns [`Error::BlockingInsideAsyncRuntime`] at once:
//! use the async API there.
//!
//! ```no_run
//! use b2c_token::blocking::{Client, TokenCache};
//! use b2c_token::{Authority, Scopes};
//!
//! fn main() -> Result<(), b2c_token::Error> {
//!     let authority = Authority::b2c("contoso", "B2C_1_signin")?;
//!     let client = Client::new(
//!         b2c_token::Client::builder(authority, "22222222-2222-2222-2222-222222222222")
//!             .client_secret(std::env::var("B2C_CLIENT_SECRET").unwrap_or_default())
//!             .build()?,
//!     )?;
//!     let cache = TokenCache::new()?;
//!     let scopes = Scopes::new(["https://contoso.onmicrosoft.com/api/.default"])?;
//!     let source = cache.client_credentials(&client, &scopes);
//!     let token = source.token()?; // waits for the first fetch; later calls are hits
//!     # let _ = token;
//!     Ok(())
//! }
//! ```
//!
//! [`Error::BlockingInsideAsyncRuntime`]: crate::Error::BlockingInsideAsyncRuntime

mod cache;
mod client;
mod runtime;

pub use self::cache::{TokenCache, TokenSource};
pub use self::client::Client;
