//! [`FederatedTokenFile`]: a client assertion a platform writes to a file and rotates,
//! as Kubernetes workload identity does (`AZURE_FEDERATED_TOKEN_FILE`).

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use secrecy::SecretString;

use super::{AssertionFuture, AssertionRequest, ClientAssertion, CredentialIdentity, IdentityFuture};
use crate::error::{Error, Result};
use crate::untrusted_file;

/// Federated tokens are a few kilobytes; a larger file is not one.
const MAX_BYTES: u64 = 64 * 1024;

/// Workload identity federation: the assertion is a token another issuer (a Kubernetes
/// cluster, GitHub Actions...) writes to a file; Entra trusts it through a federated
/// credential on the app.
///
/// The file is read for every token request attempt (once per token lifetime, not per
/// call), on tokio's blocking pool so the runtime never waits on the disk, so a rotated
/// file is picked up at once. It is read as untrusted input: a regular file of at most 64 KiB
/// (symbolic links are followed, as Kubernetes' projected volumes need), within 2 s, holding a
/// compact JWS with `iss`, `sub` and `aud`; anything else is a configuration error and nothing
/// is sent. Cached tokens are bound to those three claims, read again whenever a token is
/// adopted from or saved to a shared store: replicas of one workload share one token, and a
/// replica whose file names another workload, or holds no valid token, adopts none.
///
/// ```no_run
/// # fn demo() -> Result<(), b2c_token::Error> {
/// use b2c_token::{Authority, Client, credential::FederatedTokenFile};
///
/// // AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_FEDERATED_TOKEN_FILE as the webhook sets them.
/// let client = Client::builder(Authority::entra(&std::env::var("AZURE_TENANT_ID").unwrap_or_default())?, "<client id>")
///     .client_assertion(FederatedTokenFile::from_env()?)
///     .build()?;
/// # let _ = client; Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct FederatedTokenFile {
    path: PathBuf,
}

impl FederatedTokenFile {
    /// The token in the file at `path`.
    pub fn new(path: impl AsRef<Path>) -> Self {
        Self {
            path: path.as_ref().to_path_buf(),
        }
    }

    /// The file named by `AZURE_FEDERATED_TOKEN_FILE`.
    ///
    /// # Errors
    /// [`Error::Config`] when the variable is not set.
    pub fn from_env() -> Result<Self> {
        std::env::var_os("AZURE_FEDERATED_TOKEN_FILE")
            .filter(|v| !v.is_empty())
            .map(Self::new)
            .ok_or_else(|| {
                Error::config("AZURE_FEDERATED_TOKEN_FILE is not set (workload identity sets it in the pod)")
            })
    }

    /// The file's path.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// How long reading the file may take: a FIFO, a stalled network mount or a huge file must
/// not hold a token request forever.
const READ_TIMEOUT: Duration = Duration::from_secs(2);

/// The file's token, read as untrusted input: a regular file only (a FIFO or device at the
/// path is refused without blocking on it), at most [`MAX_BYTES`], within [`READ_TIMEOUT`], and
/// only if it holds a compact JWS whose claims name an issuer, a subject and an audience, so
/// that whatever else a path may point at (`/etc/shadow`...) is never sent.
async fn read_assertion(path: &Path) -> Result<Assertion> {
    let owned = path.to_path_buf();
    let read = tokio::time::timeout(READ_TIMEOUT, tokio::task::spawn_blocking(move || read_file(&owned))).await;
    let text = match read {
        Ok(Ok(text)) => text?,
        Ok(Err(e)) => return Err(Error::config(format!("reading the federated token file failed: {e}"))),
        Err(_) => {
            return Err(Error::config(format!(
                "reading the federated token file {} took longer than {} s: is it a regular file on a working disk?",
                path.display(),
                READ_TIMEOUT.as_secs()
            )))
        }
    };
    Assertion::parse(text).ok_or_else(|| {
        Error::config(format!(
            "the federated token file {} does not hold a JWT naming an issuer, subject and audience (iss, sub, aud): not sent",
            path.display()
        ))
    })
}

fn read_file(path: &Path) -> Result<String> {
    let rules = untrusted_file::Rules {
        max_bytes: MAX_BYTES,
        // Kubernetes projects the file through symbolic links (`..data/`), owned by root.
        private: false,
    };
    let bytes = untrusted_file::read(path, rules).map_err(|refused| {
        Error::config(format!(
            "could not read the federated token file {}: {refused}",
            path.display()
        ))
    })?;
    let text = String::from_utf8(bytes).map_err(|_| {
        Error::config(format!(
            "the federated token file {} is not text: not a token",
            path.display()
        ))
    })?;
    if text.trim().is_empty() {
        return Err(Error::config(format!(
            "the federated token file {} is empty",
            path.display()
        )));
    }
    Ok(text.trim().to_owned())
}

/// A federated token as read: the compact JWS and who it says it is.
struct Assertion {
    token: String,
    identity: CredentialIdentity,
}

impl Assertion {
    /// A compact JWS (three base64url parts, a JSON header with `alg`) whose claims hold `iss`,
    /// `sub` (strings) and `aud` (a string or strings), not expired; `None` otherwise.
    fn parse(token: String) -> Option<Self> {
        let mut parts = token.split('.');
        let (header, payload, signature) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() || signature.is_empty() {
            return None;
        }
        let json = |part: &str| -> Option<serde_json::Map<String, serde_json::Value>> {
            match serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).ok()?).ok()? {
                serde_json::Value::Object(map) => Some(map),
                _ => None,
            }
        };
        URL_SAFE_NO_PAD.decode(signature).ok()?;
        json(header)?.get("alg")?.as_str()?;
        let claims = json(payload)?;
        let text = |name: &str| claims.get(name)?.as_str().filter(|v| !v.is_empty());
        let (issuer, subject) = (text("iss")?, text("sub")?);
        let mut audiences: Vec<&str> = match claims.get("aud")? {
            serde_json::Value::String(one) => vec![one.as_str()],
            serde_json::Value::Array(many) => many.iter().map(serde_json::Value::as_str).collect::<Option<_>>()?,
            _ => return None,
        };
        if audiences.is_empty() {
            return None;
        }
        audiences.sort_unstable();
        if let Some(exp) = claims.get("exp") {
            let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
            if exp.as_u64()? <= now {
                return None;
            }
        }
        let mut identity: Vec<&[u8]> = vec![b"federated", issuer.as_bytes(), subject.as_bytes()];
        identity.extend(audiences.iter().map(|aud| aud.as_bytes()));
        let identity = CredentialIdentity::from_parts(&identity);
        Some(Self { token, identity })
    }
}

impl ClientAssertion for FederatedTokenFile {
    fn identity(&self) -> IdentityFuture<'_> {
        Box::pin(async move { Ok(read_assertion(&self.path).await?.identity) })
    }

    fn assertion<'a>(&'a self, _request: AssertionRequest<'a>) -> AssertionFuture<'a> {
        Box::pin(async move { Ok(SecretString::from(read_assertion(&self.path).await?.token)) })
    }
}
