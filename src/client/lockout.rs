//! ROPC lockout rails: a password is sent as few times as possible, so a misconfigured or
//! busy daemon cannot get the account (or the server's IP) locked (b2c-protocol §2: B2C treats
//! many failed server-side sign-ins from one IP as an attack).
//!
//! * Rejected credentials are remembered for a while (5 minutes by default) and answered
//!   from memory instead of being sent again.
//! * Identical requests in flight (same endpoint, client, username and password) share one
//!   request and its result: 100 concurrent calls with one wrong password send it once.
//! * When a reply is lost (timeout, connection dropped after the request went out), the
//!   server may have counted the attempt: the same password is not re-sent for
//!   [`LOST_REPLY_WINDOW`], and a call sends it at most twice.
//!
//! Keyed by a keyed hash (SipHash with this process's random key) of the endpoint, client,
//! username and password: the password itself is never stored. Only the error (already
//! scrubbed of secrets, see `error/server_text.rs`) is remembered.

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use crate::error::b2c_code::B2cCode;
use crate::error::{Error, Result};
use crate::token::Token;

/// How many rejected credential sets are remembered at most.
const MAX_REMEMBERED: usize = 1024;
/// How long a password whose reply was lost is not re-sent.
pub(crate) const LOST_REPLY_WINDOW: Duration = Duration::from_secs(10);
/// The most times one call sends a password (the first attempt and one retry).
pub(crate) const MAX_PASSWORD_ATTEMPTS: u32 = 2;

type Shared = watch::Receiver<Option<Result<Token>>>;

pub(crate) struct RejectedCredentials {
    window: Duration,
    hasher: RandomState,
    remembered: Mutex<HashMap<u64, (Instant, Duration, Error)>>,
    in_flight: Mutex<HashMap<u64, Shared>>,
}

/// A caller's place in the single flight for one credential set.
pub(crate) enum Flight<'a> {
    /// Send the request, then [`Leader::finish`] with the result.
    Leader(Leader<'a>),
    /// Another call is sending the same password: wait for its result.
    Follower(Shared),
}

/// The one caller sending a password; removes the flight when done or dropped, so that a
/// cancelled leader does not leave followers waiting for ever (they see the sender gone).
pub(crate) struct Leader<'a> {
    rails: &'a RejectedCredentials,
    key: u64,
    sender: watch::Sender<Option<Result<Token>>>,
}

impl Leader<'_> {
    pub(crate) fn finish(self, result: &Result<Token>) {
        self.sender.send_replace(Some(result.clone()));
    }
}

impl Drop for Leader<'_> {
    fn drop(&mut self) {
        crate::sync::lock(&self.rails.in_flight).remove(&self.key);
    }
}

impl RejectedCredentials {
    pub(crate) fn new(window: Duration) -> Self {
        Self {
            window,
            hasher: RandomState::new(),
            remembered: Mutex::new(HashMap::new()),
            in_flight: Mutex::new(HashMap::new()),
        }
    }

    pub(crate) fn key(&self, endpoint: &str, client_id: &str, username: &str, password: &str) -> u64 {
        self.hasher
            .hash_one((endpoint, client_id, username.to_lowercase(), password))
    }

    /// The remembered rejection or lost reply for these credentials, if still within its window.
    pub(crate) fn check(&self, key: u64) -> Option<Error> {
        let remembered = crate::sync::lock(&self.remembered);
        let (at, window, error) = remembered.get(&key)?;
        (at.elapsed() < *window).then(|| error.clone())
    }

    /// Joins the request in flight for `key`, or becomes the one sending it.
    pub(crate) fn join(&self, key: u64) -> Flight<'_> {
        let mut in_flight = crate::sync::lock(&self.in_flight);
        if let Some(receiver) = in_flight.get(&key) {
            return Flight::Follower(receiver.clone());
        }
        let (sender, receiver) = watch::channel(None);
        in_flight.insert(key, receiver);
        Flight::Leader(Leader {
            rails: self,
            key,
            sender,
        })
    }

    /// Waits for the leader's result; `None` if the leader was cancelled before it had one.
    pub(crate) async fn wait(mut shared: Shared) -> Option<Result<Token>> {
        let result = shared.wait_for(Option::is_some).await.ok()?;
        result.clone()
    }

    /// Remembers `error` if it says the credentials themselves are wrong, or that the reply
    /// to them was lost.
    pub(crate) fn record(&self, key: u64, error: &Error) {
        if self.window.is_zero() {
            return; // the rails are turned off
        }
        let window = if is_credential_rejection(error) {
            self.window
        } else if matches!(error, Error::Transport { certificate: false, .. }) {
            LOST_REPLY_WINDOW
        } else {
            return;
        };
        let mut remembered = crate::sync::lock(&self.remembered);
        remembered.retain(|_, (at, window, _)| at.elapsed() < *window);
        if remembered.len() >= MAX_REMEMBERED {
            if let Some(oldest) = remembered.iter().min_by_key(|(_, (at, _, _))| *at).map(|(k, _)| *k) {
                remembered.remove(&oldest);
            }
        }
        let mut error = error.clone();
        match &mut error {
            Error::Rejected(rejection) => rejection.remembered = true,
            Error::Transport { message, .. } => {
                *message = format!(
                    "{message}; the reply to this password was lost, so the server may have counted the attempt: not sending it again for {} s",
                    LOST_REPLY_WINDOW.as_secs()
                );
            }
            _ => {}
        }
        remembered.insert(key, (Instant::now(), window, error));
    }
}

/// Rejections that mean "these credentials are wrong", as opposed to a busy or broken server.
fn is_credential_rejection(error: &Error) -> bool {
    let Error::Rejected(rejection) = error else {
        return false;
    };
    match rejection.b2c_code() {
        Some(code) => matches!(
            code,
            B2cCode::InvalidCredentials
                | B2cCode::InvalidUsernameOrPassword
                | B2cCode::WrongUsernameOrPassword
                | B2cCode::UserNotFound
                | B2cCode::AccountLocked
                | B2cCode::AccountTemporarilyLocked
        ),
        // RFC 6749 §5.2: other servers say invalid_grant for wrong resource-owner credentials.
        None => matches!(rejection.error(), "invalid_grant" | "access_denied"),
    }
}
