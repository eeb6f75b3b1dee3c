//! What an entry remembers of its fetches: the last result (for callers that waited through
//! it), failures per credential with their back-off, and short-lived tokens, so that a key
//! does not ask the token endpoint again too soon.

use std::time::Duration;

use tokio::time::Instant;

use crate::error::Error;
use crate::secret::RefreshToken;
use crate::token::Token;

/// How many credentials' failures an entry remembers at once (a wrong password and the
/// right one, say); the oldest is forgotten first.
pub(super) const MAX_REMEMBERED_FAILURES: usize = 8;

/// The result of the last fetch, for the callers that waited through it.
pub(super) struct Outcome {
    pub(super) fingerprint: u64,
    /// The error boxed: kept in every entry, an inline `Error` would cost each of them 40 bytes
    /// for the rare failure.
    pub(super) result: Result<Token, Box<Error>>,
}

/// A failed fetch, answered from memory until `until`.
pub(super) struct Failure {
    pub(super) fingerprint: u64,
    /// The entry's invalidation count when it was recorded: `invalidate` forgets it.
    pub(super) epoch: u64,
    pub(super) error: Error,
    pub(super) until: Instant,
    pub(super) backoff: Duration,
}

#[derive(Default)]
pub(super) struct RefreshState {
    /// The newest refresh token, with the fingerprint of the credential it was issued to.
    pub(super) refresh_token: Option<(u64, RefreshToken)>,
    /// Bumped after every fetch attempt; callers that waited through an attempt take its result.
    pub(super) fetch_generation: u64,
    pub(super) last: Option<Outcome>,
    /// Boxed, and only while there is any: most entries never fail, and inline it would
    /// cost each of them 48 bytes.
    pub(super) trouble: Option<Box<Trouble>>,
}

/// What an entry remembers of failed or useless fetches.
#[derive(Default)]
pub(super) struct Trouble {
    pub(super) failures: Vec<Failure>,
    /// After a fetch returned a token living less than `MIN_FETCH_INTERVAL`: for which
    /// credential, until when, in which epoch the key does not ask again.
    pub(super) short_lived: Option<(u64, Instant, u64)>,
    /// Wait before the next background retry; zero until a background refresh fails.
    pub(super) backoff: Duration,
}

impl RefreshState {
    pub(super) fn failures(&self) -> &[Failure] {
        self.trouble.as_ref().map_or(&[], |trouble| &trouble.failures)
    }

    pub(super) fn short_lived(&self) -> Option<(u64, Instant, u64)> {
        self.trouble.as_ref().and_then(|trouble| trouble.short_lived)
    }

    pub(super) fn trouble_mut(&mut self) -> &mut Trouble {
        self.trouble.get_or_insert_with(Box::default)
    }

    /// A fetch for `fingerprint` succeeded: forget its failures and the back-off, and
    /// remember `short_lived` (or that there is none).
    pub(super) fn succeeded(&mut self, fingerprint: u64, short_lived: Option<(u64, Instant, u64)>) {
        if self.trouble.is_none() && short_lived.is_none() {
            return;
        }
        let trouble = self.trouble_mut();
        trouble.failures.retain(|failure| failure.fingerprint != fingerprint);
        trouble.backoff = Duration::ZERO;
        trouble.short_lived = short_lived;
        if trouble.failures.is_empty() && trouble.short_lived.is_none() {
            self.trouble = None;
        }
    }
}
