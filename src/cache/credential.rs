//! Which credential a source proves itself with, and its fingerprint: what binds a token to
//! the credential that earned it.

use crate::client::Client;
use crate::secret::Password;

/// The original grant of a source, used again when no refresh token works.
pub(super) enum SourceGrant {
    ClientCredentials,
    Password { username: String, password: Password },
}

/// What a source proves itself with: its client (and so its client secret), its grant, and
/// their keyed fingerprint. Shared by the source and, once it earned a token, the entry.
pub(super) struct Credential {
    pub(super) client: Client,
    pub(super) grant: SourceGrant,
    pub(super) fingerprint: u64,
}
