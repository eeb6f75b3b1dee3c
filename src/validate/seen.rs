//! Tokens already validated, so that a client presenting the same token again costs a
//! lookup and a comparison, not an RSA verify.
//!
//! A fixed array of slots, direct-mapped by a keyed hash of the token's tail (the signature,
//! random for every token): bounded memory, no lock, an insert simply replaces whatever held
//! the slot. A hit compares the whole token, so no hash collision can hand one token's
//! claims to another; the copy is zeroized when the entry is dropped.

use arc_swap::ArcSwapOption;
use siphasher::sip::SipHasher13;
use std::hash::Hasher as _;
use std::sync::Arc;
use zeroize::Zeroizing;

use super::claims::Claims;
use crate::clock::wall_ms;

/// Bytes of the token's end that pick the slot: inside the signature.
const TAIL: usize = 32;

struct Entry {
    token: Zeroizing<Box<str>>,
    claims: Claims,
    /// `exp` (plus leeway) in wall-clock milliseconds.
    valid_until_ms: u64,
}

pub(super) struct Seen {
    slots: Box<[ArcSwapOption<Entry>]>,
    key: (u64, u64),
}

impl Seen {
    /// Room for about `capacity` tokens (rounded up to a power of two); 0 turns it off.
    pub(super) fn new(capacity: usize) -> Self {
        let slots = if capacity == 0 { 0 } else { capacity.next_power_of_two() };
        let random = uuid::Uuid::new_v4().as_u64_pair();
        Self {
            slots: (0..slots).map(|_| ArcSwapOption::empty()).collect(),
            key: random,
        }
    }

    #[inline]
    fn slot(&self, token: &str) -> Option<&ArcSwapOption<Entry>> {
        if self.slots.is_empty() {
            return None;
        }
        let bytes = token.as_bytes();
        let mut hasher = SipHasher13::new_with_keys(self.key.0, self.key.1);
        hasher.write(&bytes[bytes.len().saturating_sub(TAIL)..]);
        hasher.write_usize(bytes.len());
        // The mask keeps the index in range; `u64 as usize` keeps the low bits on 32-bit too.
        #[allow(clippy::cast_possible_truncation)]
        let index = hasher.finish() as usize & (self.slots.len() - 1);
        self.slots.get(index)
    }

    /// The claims of `token` if it was validated before and has not expired since.
    #[inline]
    pub(super) fn get(&self, token: &str) -> Option<Claims> {
        let slot = self.slot(token)?;
        let guard = slot.load();
        let entry = guard.as_ref()?;
        (entry.token.as_bytes() == token.as_bytes() && wall_ms() < entry.valid_until_ms).then(|| entry.claims.clone())
    }

    pub(super) fn insert(&self, token: &str, claims: &Claims, valid_until_ms: u64) {
        if let Some(slot) = self.slot(token) {
            slot.store(Some(Arc::new(Entry {
                token: Zeroizing::new(token.into()),
                claims: claims.clone(),
                valid_until_ms,
            })));
        }
    }

    /// Forgets every token: their keys may have been withdrawn.
    pub(super) fn clear(&self) {
        for slot in &*self.slots {
            slot.store(None);
        }
    }
}
