//! [`FederatedTokenFile`]: a client assertion a platform writes to a file and rotates,
//! as Kubernetes workload identity does (`AZURE_FEDERATED_TOKEN_FILE`).

use std::path::{Path, PathBuf};

use secrecy::SecretString;

use super::{AssertionFuture, AssertionRequest, ClientAssertion};
use crate::error::{Error, Result};

/// Federated tokens are a few kilobytes; a larger file is not one.
const MAX_BYTES: u64 = 64 * 1024;

/// Workload identity federation: the assertion is a token another issuer (a Kubernetes
/// cluster, GitHub Actions...) writes to a file; Entra trusts it through a federated
/// credential on the app.
///
/// The file is read for every token request attempt (once per token lifetime, not per
/// call), on tokio's blocking pool so the runtime never waits on the disk, so a rotated
/// file is picked up at once.
///
/// ```no_run
/// # fn demo() -> Result<(), b2c_token::Error> {
/// use b2c_token::{Authority, Client, FederatedTokenFile};
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
    id: String,
}

impl FederatedTokenFile {
    /// The token in the file at `path`.
    pub fn new(path: impl AsRef<Path>) -> Self {
        let path = path.as_ref().to_path_buf();
        let id = format!("federated:{}", path.display());
        Self { path, id }
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

fn read(path: &Path) -> Result<String> {
    use std::io::Read as _;
    let failed = |e: std::io::Error| {
        Error::config(format!(
            "could not read the federated token file {}: {e}",
            path.display()
        ))
    };
    let mut text = String::new();
    std::fs::File::open(path)
        .map_err(failed)?
        .take(MAX_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(failed)?;
    if text.len() as u64 > MAX_BYTES {
        return Err(Error::config(format!(
            "the federated token file {} is larger than {MAX_BYTES} bytes: not a token",
            path.display()
        )));
    }
    let token = text.trim();
    if token.is_empty() {
        return Err(Error::config(format!(
            "the federated token file {} is empty",
            path.display()
        )));
    }
    Ok(token.to_owned())
}

impl ClientAssertion for FederatedTokenFile {
    fn id(&self) -> &str {
        &self.id
    }

    fn assertion<'a>(&'a self, _request: AssertionRequest<'a>) -> AssertionFuture<'a> {
        let path = self.path.clone();
        Box::pin(async move {
            let read = tokio::task::spawn_blocking(move || read(&path)).await;
            match read {
                Ok(token) => token.map(SecretString::from),
                Err(e) => Err(Error::config(format!("reading the federated token file failed: {e}"))),
            }
        })
    }
}
