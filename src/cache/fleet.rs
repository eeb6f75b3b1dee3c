//! The store protocol every fetch follows (docs/scaling.md): adopt a stored token earned by the
//! same credential and not yet due for refresh (a due one still hands over its refresh token);
//! otherwise fetch under the store's lock while other replicas wait for that token. Without a
//! store, or while it fails, fetch alone.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::credential::Credential;
use super::failure_memory::RefreshState;
use super::refresh::Entry;
use crate::error::Result;
use crate::token::Token;

impl Entry {
    /// A stored token for `credential` that is not yet due for refresh, installed; a due one
    /// only gives its refresh token. Tokens another credential earned are not taken, nor any
    /// while the credential cannot say who it is (`Credential::proven`).
    pub(super) async fn adopt_stored(
        self: &Arc<Self>,
        state: &mut RefreshState,
        credential: &Arc<Credential>,
    ) -> Option<Token> {
        let (store, key) = (self.shared.store.as_ref()?, self.store_key.as_ref()?);
        let stored = self.shared.store_call("load", store.load(key)).await??;
        if self.was_rejected(stored.version()) {
            tracing::debug!(key = ?self.key, "the stored token was invalidated: not adopted");
            return None;
        }
        // Whose token is it: the credential must prove, now, the identity that earned it.
        let proven = credential.proven(&self.shared.namespace).await.ok()?;
        if stored.fingerprint() != proven {
            return None;
        }
        let token = stored.to_token(self.key.scopes.clone());
        let (refresh_at, _) = self.refresh_times(&token);
        if Instant::now() >= refresh_at {
            // Due, so not served; but its refresh token is the fleet's newest unless this
            // replica holds a later token: the refresh about to happen must use it (B2C
            // refuses a rotated-away one, and without one the user would sign in again).
            self.take_newer_refresh_token(state, credential, &token);
            return None;
        }
        tracing::debug!(key = ?self.key, "token from the store");
        self.install_versioned(state, credential, token.clone(), stored.version());
        Some(token)
    }

    /// Takes `stored`'s refresh token (proven to be this credential's) unless the newest token
    /// this entry had for the credential (installed, or the last fetched, even if since
    /// retired) was issued later.
    fn take_newer_refresh_token(&self, state: &mut RefreshState, credential: &Credential, stored: &Token) {
        let Some(refresh_token) = stored.refresh_token() else {
            return;
        };
        let installed = self.current.load();
        let installed = installed
            .as_deref()
            .filter(|installed| installed.fingerprint == credential.fingerprint)
            .map(|installed| installed.token.issued_at());
        let last_fetched = state
            .last
            .as_ref()
            .filter(|last| last.fingerprint == credential.fingerprint)
            .and_then(|last| last.result.as_ref().ok())
            .map(Token::issued_at);
        let ours_is_newer = installed
            .into_iter()
            .chain(last_fetched)
            .any(|ours| ours > stored.issued_at());
        if !ours_is_newer {
            state.refresh_token = Some((credential.fingerprint, refresh_token.clone()));
        }
    }

    /// Every fetch goes through here: the store first (another replica may have the token),
    /// then one replica fetches under the store's lock while the others wait for its token.
    /// Without a store, or when it fails, this process fetches on its own.
    pub(super) async fn fetch_shared(
        self: &Arc<Self>,
        state: &mut RefreshState,
        credential: &Arc<Credential>,
    ) -> Result<Token> {
        let (Some(store), Some(key)) = (self.shared.store.clone(), self.store_key.as_deref().copied()) else {
            let result = self.fetch(state, credential).await;
            return self.finish(state, credential, result).await;
        };
        if !self.shared.store_resting() {
            if let Some(token) = self.adopt_stored(state, credential).await {
                return Ok(token);
            }
        }
        if self.shared.store_resting() {
            // The store just failed: do not wait for its lock to fail too.
            let result = self.fetch(state, credential).await;
            return self.finish(state, credential, result).await;
        }
        // Two rounds: if the holder died, its lock expires and one waiter takes over.
        for _ in 0..2 {
            match self
                .shared
                .store_call("lock", store.try_lock(&key, self.shared.config.store_lock_ttl))
                .await
            {
                Some(Some(lock)) => {
                    // Re-check: the previous holder may have saved while we asked.
                    let result = match self.adopt_stored(state, credential).await {
                        Some(token) => Ok(token),
                        None => {
                            let result = self.fetch(state, credential).await;
                            self.finish(state, credential, result).await
                        }
                    };
                    self.shared.store_call("unlock", store.unlock(&key, lock)).await;
                    return result;
                }
                Some(None) => {
                    // Another replica is fetching: wait for its token, polling with back-off.
                    let waiting_since = Instant::now();
                    let deadline = waiting_since + self.shared.config.store_lock_ttl;
                    let mut wait = Duration::from_millis(20);
                    while Instant::now() < deadline {
                        tokio::time::sleep(wait).await;
                        if let Some(token) = self.adopt_stored(state, credential).await {
                            self.shared.waited_for_lock(waiting_since.elapsed());
                            return Ok(token);
                        }
                        wait = (wait * 2).min(Duration::from_millis(500));
                    }
                    self.shared.waited_for_lock(waiting_since.elapsed());
                }
                None => break, // the store is failing: fetch alone
            }
        }
        let result = self.fetch(state, credential).await;
        self.finish(state, credential, result).await
    }
}
