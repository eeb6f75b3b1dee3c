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
//! Rejections are remembered **per account, for the whole process**: B2C counts failed
//! sign-ins per account whichever client or URL spelling sent them, and a daemon that builds a
//! fresh `Client` for every attempt must not get a fresh memory with it. The account is the
//! authority's [`crate::Authority::account_scope`] (for B2C: host and lower-cased policy, so
//! the path, `?p=` and `tfp` forms, policy case and tenant domain or GUID are one account) and
//! the username trimmed and lower-cased. Requests in flight are shared per client only (a
//! token one application registration earned is never handed to another).
//!
//! Keyed by a keyed hash (SipHash with this process's random key) of those and the password:
//! the password itself is never stored. Only the error (already scrubbed of secrets, see
//! `error/server_text.rs`) is remembered, at most [`MAX_REMEMBERED`] of them.

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use tokio::sync::watch;
// The process's own monotonic clock, not tokio's: the memory is shared by every runtime of the
// process, and a runtime whose clock is paused or advanced (tests) must not age or keep
// another's entries.
use std::time::Instant;

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

/// The rails of one client: its window and its requests in flight. What was rejected is
/// remembered process-wide ([`remembered`]).
pub(crate) struct RejectedCredentials {
    window: Duration,
    in_flight: Mutex<HashMap<u64, Shared>>,
}

/// Rejected credentials, remembered for every client of the process: one process, one memory
/// of which accounts' passwords were refused (bounded), the one piece of state this crate
/// keeps beyond a handle's life, because the account's lockout counter at B2C outlives them too.
struct Remembered {
    hasher: RandomState,
    entries: Mutex<HashMap<u64, (Instant, Duration, Error)>>,
}

fn remembered() -> &'static Remembered {
    static REMEMBERED: OnceLock<Remembered> = OnceLock::new();
    REMEMBERED.get_or_init(|| Remembered {
        hasher: RandomState::new(),
        entries: Mutex::new(HashMap::new()),
    })
}

/// The two keys of one password attempt.
#[derive(Clone, Copy)]
pub(crate) struct Keys {
    /// Account and password: what rejections are remembered under.
    account: u64,
    /// That and the client: what requests in flight are shared under.
    flight: u64,
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
            in_flight: Mutex::new(HashMap::new()),
        }
    }

    /// The keys of `password` for `username` at `account` (an authority's account scope)
    /// through `client` (its endpoint and client ID). The username is compared as B2C does:
    /// trimmed and case-insensitively.
    pub(crate) fn keys(account: &str, client: &str, username: &str, password: &str) -> Keys {
        let hasher = &remembered().hasher;
        let account = hasher.hash_one((account, username.trim().to_lowercase(), password));
        Keys {
            account,
            flight: hasher.hash_one((account, client)),
        }
    }

    /// The remembered rejection or lost reply for these credentials, if still within its window.
    pub(crate) fn check(&self, keys: Keys) -> Option<Error> {
        let remembered = crate::sync::lock(&remembered().entries);
        let (at, window, error) = remembered.get(&keys.account)?;
        (at.elapsed() < *window).then(|| error.clone())
    }

    /// Joins the request in flight for these keys, or becomes the one sending it.
    pub(crate) fn join(&self, keys: Keys) -> Flight<'_> {
        let key = keys.flight;
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
    pub(crate) fn record(&self, keys: Keys, error: &Error) {
        let key = keys.account;
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
        let mut remembered = crate::sync::lock(&remembered().entries);
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
