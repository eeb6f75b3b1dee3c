//! ROPC lockout rails: remember rejected credentials for a while and answer repeats from
//! memory, so a misconfigured daemon cannot hammer B2C with a bad password and get the account
//! (or the server's IP) locked (b2c-protocol §2: B2C treats many failed server-side sign-ins
//! from one IP as an attack).
//!
//! Keyed by a keyed hash (SipHash with this process's random key) of the endpoint, client,
//! username and password: the password itself is never stored.

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use crate::error::b2c_code::B2cCode;
use crate::error::Error;

/// How many rejected credential sets are remembered at most.
const MAX_REMEMBERED: usize = 1024;

pub(crate) struct RejectedCredentials {
    window: Duration,
    hasher: RandomState,
    remembered: Mutex<HashMap<u64, (Instant, Error)>>,
}

impl RejectedCredentials {
    pub(crate) fn new(window: Duration) -> Self {
        Self {
            window,
            hasher: RandomState::new(),
            remembered: Mutex::new(HashMap::new()),
        }
    }

    pub(crate) fn key(&self, endpoint: &str, client_id: &str, username: &str, password: &str) -> u64 {
        self.hasher
            .hash_one((endpoint, client_id, username.to_lowercase(), password))
    }

    /// The remembered rejection for these credentials, if still within the window.
    pub(crate) fn check(&self, key: u64) -> Option<Error> {
        if self.window.is_zero() {
            return None;
        }
        let remembered = crate::sync::lock(&self.remembered);
        let (at, error) = remembered.get(&key)?;
        (at.elapsed() < self.window).then(|| error.clone())
    }

    /// Remembers `error` if it says the credentials themselves are wrong.
    pub(crate) fn record(&self, key: u64, error: &Error) {
        if self.window.is_zero() || !is_credential_rejection(error) {
            return;
        }
        let mut remembered = crate::sync::lock(&self.remembered);
        let window = self.window;
        remembered.retain(|_, (at, _)| at.elapsed() < window);
        if remembered.len() >= MAX_REMEMBERED {
            if let Some(oldest) = remembered.iter().min_by_key(|(_, (at, _))| *at).map(|(k, _)| *k) {
                remembered.remove(&oldest);
            }
        }
        let mut error = error.clone();
        if let Error::Rejected(rejection) = &mut error {
            rejection.remembered = true;
        }
        remembered.insert(key, (Instant::now(), error));
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
