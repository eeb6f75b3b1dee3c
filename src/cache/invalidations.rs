//! Invalidations between processes, in the crate's own types: a store that carries them
//! (Redis pub/sub, a database's notifications...) publishes into an [`InvalidationHub`], and
//! every cache using the store listens on a [`StoreInvalidations`]. Stores written by users see
//! only these, never the channel beneath.

use tokio::sync::broadcast;

use super::store::StoreKey;

/// Where a [`crate::store::TokenStore`] announces the keys other processes invalidated, to every
/// cache of this process that uses the store. Cheap to clone.
///
/// ```
/// use b2c_token::{store::InvalidationHub, store::StoreKey};
///
/// let hub = InvalidationHub::new();
/// let mut listener = hub.subscribe();
/// let key = StoreKey::from_hex("000102030405060708090a0b0c0d0e0f").unwrap();
/// hub.publish(key);
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// assert_eq!(listener.next().await, Some(key));
/// # });
/// ```
#[derive(Debug, Clone)]
pub struct InvalidationHub {
    sender: broadcast::Sender<StoreKey>,
}

impl Default for InvalidationHub {
    fn default() -> Self {
        Self::new()
    }
}

impl InvalidationHub {
    /// A hub that holds the 1,024 most recent keys for listeners that fall behind.
    #[must_use]
    pub fn new() -> Self {
        Self {
            sender: broadcast::channel(1024).0,
        }
    }

    /// Announces that another process invalidated `key`'s token. Without listeners it is
    /// dropped.
    pub fn publish(&self, key: StoreKey) {
        let _ = self.sender.send(key);
    }

    /// A listener for what is published from now on: what
    /// [`crate::store::TokenStore::invalidations`] returns.
    #[must_use]
    pub fn subscribe(&self) -> StoreInvalidations {
        StoreInvalidations {
            receiver: self.sender.subscribe(),
        }
    }
}

/// The keys other processes invalidated, as a cache receives them from its store.
#[derive(Debug)]
pub struct StoreInvalidations {
    receiver: broadcast::Receiver<StoreKey>,
}

impl StoreInvalidations {
    /// The next invalidated key; `None` once the hub is gone. A listener that fell more than
    /// 1,024 keys behind skips the oldest (they were for tokens long replaced).
    pub async fn next(&mut self) -> Option<StoreKey> {
        loop {
            match self.receiver.recv().await {
                Ok(key) => return Some(key),
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }
}
