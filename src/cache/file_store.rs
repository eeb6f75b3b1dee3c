//! [`FileStore`]: tokens in files, for the command line tool (a shell loop calling
//! `b2c-token` makes one request per token lifetime, not one per call) and for single-host
//! daemons.
//!
//! One file per key, named by the key's keyed hash, in a directory only the user can read:
//! the directory must be mode 0700 and the files 0600 (looser ones are refused, not used).
//! Writes go to a temporary file renamed into place, so a reader never sees half a token. A
//! lock file created with `O_EXCL` is the fetch lock: concurrent processes make one request.
//! Refresh tokens are left out unless asked for ([`FileStore::keep_refresh_tokens`]).

use std::fmt;
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use secrecy::{ExposeSecret, SecretSlice};

use super::store::{
    StoreError, StoreFuture, StoreKey, StoreLock, StoreNamespace, StoreResult, StoredToken, TokenStore,
};
use crate::error::{Error, Result};
use crate::untrusted_file;

const NAMESPACE_FILE: &str = "namespace";
const TOKEN_SUFFIX: &str = ".token";
const LOCK_SUFFIX: &str = ".lock";
const TEMPORARY_SUFFIX: &str = ".tmp";

/// The store's own files: this user's, mode 0600, regular, reached without a link, and no
/// larger than a stored token can be (access, refresh and ID tokens: a few kilobytes).
const PRIVATE_FILE: untrusted_file::Rules = untrusted_file::Rules {
    max_bytes: 64 * 1024,
    private: true,
};

/// The token in the file at `path`, or `None` (logged) for anything else.
fn read_token(path: &Path) -> Option<StoredToken> {
    match untrusted_file::read(path, PRIVATE_FILE) {
        Ok(bytes) => StoredToken::from_bytes(&SecretSlice::from(bytes)).ok(),
        Err(untrusted_file::Refused::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(refused) => {
            tracing::warn!(path = %path.display(), %refused, "token file ignored");
            None
        }
    }
}

/// A [`TokenStore`] in a private directory. See the module docs of the crate's cache.
///
/// ```no_run
/// # fn demo() -> Result<(), b2c_token::Error> {
/// let store = b2c_token::store::FileStore::open(b2c_token::store::FileStore::default_dir()?)?;
/// let cache = b2c_token::TokenCache::builder().store(std::sync::Arc::new(store)).build();
/// # let _ = cache; Ok(()) }
/// ```
pub struct FileStore {
    dir: PathBuf,
    namespace: StoreNamespace,
    keep_refresh_tokens: bool,
}

/// One stored token, as [`FileStore::list`] reports it: no usernames, client IDs or tokens.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct FileEntry {
    /// The key's id (a keyed hash).
    pub id: String,
    /// When the token expires.
    pub expires_at: SystemTime,
}

impl FileStore {
    /// `$XDG_CACHE_HOME/b2c-token`, or `~/.cache/b2c-token`.
    ///
    /// # Errors
    /// [`Error::Config`] if neither `XDG_CACHE_HOME` nor `HOME` is set.
    pub fn default_dir() -> Result<PathBuf> {
        let base = std::env::var_os("XDG_CACHE_HOME")
            .filter(|dir| !dir.is_empty())
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))
            .ok_or_else(|| Error::config("set HOME or XDG_CACHE_HOME for the token cache directory"))?;
        Ok(base.join("b2c-token"))
    }

    /// Opens (creating if needed, mode 0700) the store in `dir`.
    ///
    /// # Errors
    /// [`Error::Config`] if the directory cannot be created, or it or its namespace file can
    /// be read by other users (fix the modes: 0700 for the directory, 0600 for the files).
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self> {
        let dir = dir.into();
        create_private_dir(&dir)?;
        require_private_dir(&dir)?;
        let namespace_file = dir.join(NAMESPACE_FILE);
        if fs::symlink_metadata(&namespace_file).is_err() {
            // Processes started together race to create it: the first link wins, and every
            // process then reads the winner's secret, so they all agree on key ids.
            let mut secret = Vec::with_capacity(32);
            for _ in 0..4 {
                secret.extend_from_slice(&super::stored_token::random_u64().to_le_bytes());
            }
            create_once(&dir, &namespace_file, &secret)
                .map_err(|e| Error::config(format!("cannot write {}: {e}", namespace_file.display())))?;
        }
        let secret = untrusted_file::read(&namespace_file, PRIVATE_FILE).map_err(|refused| {
            Error::config(format!(
                "cannot use {}: {refused} (it must be a file of this user's, mode 0600)",
                namespace_file.display()
            ))
        })?;
        if secret.len() < 16 {
            return Err(Error::config(format!(
                "{} is too short: delete it and a new one is made",
                namespace_file.display()
            )));
        }
        Ok(Self {
            namespace: StoreNamespace::from_secret(&secret),
            dir,
            keep_refresh_tokens: false,
        })
    }

    /// Also store refresh tokens (off by default: an access token expires within the hour,
    /// a refresh token lives for days).
    #[must_use]
    pub fn keep_refresh_tokens(mut self, keep: bool) -> Self {
        self.keep_refresh_tokens = keep;
        self
    }

    /// The stored tokens (expired ones included until they are overwritten or cleared).
    ///
    /// # Errors
    /// [`Error::Config`] if the directory cannot be read.
    pub fn list(&self) -> Result<Vec<FileEntry>> {
        let mut entries = Vec::new();
        for file in
            fs::read_dir(&self.dir).map_err(|e| Error::config(format!("cannot read {}: {e}", self.dir.display())))?
        {
            let Ok(file) = file else { continue };
            let name = file.file_name().to_string_lossy().into_owned();
            let Some(id) = name.strip_suffix(TOKEN_SUFFIX) else {
                continue;
            };
            let Some(key) = StoreKey::from_hex(id) else { continue };
            if let Some(token) = self.read(&key) {
                entries.push(FileEntry {
                    id: id.to_owned(),
                    expires_at: token.expires_at(),
                });
            }
        }
        entries.sort_by_key(|entry| entry.expires_at);
        Ok(entries)
    }

    /// Deletes every stored token and lock, and any temporary file a crashed writer left
    /// (it may hold a token). Returns how many tokens were deleted.
    ///
    /// # Errors
    /// [`Error::Config`] if the directory cannot be read.
    pub fn clear(&self) -> Result<usize> {
        let mut deleted = 0;
        for file in
            fs::read_dir(&self.dir).map_err(|e| Error::config(format!("cannot read {}: {e}", self.dir.display())))?
        {
            let Ok(file) = file else { continue };
            let name = file.file_name().to_string_lossy().into_owned();
            let temporary = name.starts_with('.') && name.ends_with(TEMPORARY_SUFFIX);
            if (name.ends_with(TOKEN_SUFFIX) || name.ends_with(LOCK_SUFFIX) || temporary)
                && fs::remove_file(file.path()).is_ok()
            {
                deleted += usize::from(name.ends_with(TOKEN_SUFFIX));
            }
        }
        Ok(deleted)
    }

    fn path(&self, key: &StoreKey, suffix: &str) -> PathBuf {
        self.dir.join(format!("{key}{suffix}"))
    }

    /// The token in `key`'s file, if it is this user's own regular file (mode 0600, not a
    /// link, not a FIFO), small enough to be one, and parses; anything else is a miss.
    fn read(&self, key: &StoreKey) -> Option<StoredToken> {
        read_token(&self.path(key, TOKEN_SUFFIX))
    }
}

impl TokenStore for FileStore {
    fn namespace(&self) -> &StoreNamespace {
        &self.namespace
    }

    fn load<'a>(&'a self, key: &'a StoreKey) -> StoreFuture<'a, StoreResult<Option<StoredToken>>> {
        // Read on the blocking pool, inside the future: the cache's time limit on store calls
        // applies, and a slow disk never stalls the runtime.
        let path = self.path(key, TOKEN_SUFFIX);
        Box::pin(async move {
            tokio::task::spawn_blocking(move || read_token(&path))
                .await
                .map_err(|_| StoreError::new("reading a token file failed"))
        })
    }

    fn save<'a>(&'a self, key: &'a StoreKey, token: &'a StoredToken) -> StoreFuture<'a, StoreResult<()>> {
        let token = if self.keep_refresh_tokens {
            token.clone()
        } else {
            token.without_refresh_token()
        };
        let bytes = token.to_bytes();
        let result = write_atomically(&self.dir, &self.path(key, TOKEN_SUFFIX), bytes.expose_secret())
            .map_err(|e| StoreError::new(format!("cannot write a token file: {}", e.kind())));
        Box::pin(async move { result })
    }

    fn remove_if<'a>(&'a self, key: &'a StoreKey, version: u64) -> StoreFuture<'a, StoreResult<bool>> {
        let matches = self.read(key).is_some_and(|stored| stored.version() == version);
        let removed = matches && fs::remove_file(self.path(key, TOKEN_SUFFIX)).is_ok();
        Box::pin(async move { Ok(removed) })
    }

    fn try_lock<'a>(&'a self, key: &'a StoreKey, ttl: Duration) -> StoreFuture<'a, StoreResult<Option<StoreLock>>> {
        let path = self.path(key, LOCK_SUFFIX);
        // A lock older than its TTL belonged to a process that died: take it over. Whatever
        // is not a regular file (a dangling symbolic link, say) is no lock at all. The link
        // itself is looked at, never followed.
        let stale = fs::symlink_metadata(&path).is_ok_and(|meta| {
            !meta.is_file()
                || meta
                    .modified()
                    .ok()
                    .and_then(|at| at.elapsed().ok())
                    .is_some_and(|age| age > ttl)
        });
        if stale {
            let _ = fs::remove_file(&path);
        }
        let lock = StoreLock(super::stored_token::random_u64());
        let result = match create_private_file(&path) {
            Ok(mut file) => file
                .write_all(&lock.0.to_be_bytes())
                .map(|()| Some(lock))
                .map_err(|e| StoreError::new(format!("cannot write a lock file: {}", e.kind()))),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(None),
            Err(e) => Err(StoreError::new(format!("cannot create a lock file: {}", e.kind()))),
        };
        Box::pin(async move { result })
    }

    fn unlock<'a>(&'a self, key: &'a StoreKey, lock: StoreLock) -> StoreFuture<'a, StoreResult<()>> {
        let path = self.path(key, LOCK_SUFFIX);
        if untrusted_file::read(&path, PRIVATE_FILE).is_ok_and(|held| held == lock.0.to_be_bytes()) {
            let _ = fs::remove_file(&path);
        }
        Box::pin(async { Ok(()) })
    }
}

impl fmt::Debug for FileStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileStore")
            .field("dir", &self.dir)
            .field("keep_refresh_tokens", &self.keep_refresh_tokens)
            .finish_non_exhaustive()
    }
}

/// Writes `bytes` to a new private temporary file in `dir`, then renames it over `path`.
fn write_atomically(dir: &Path, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let temporary = dir.join(format!(".{:016x}{TEMPORARY_SUFFIX}", super::stored_token::random_u64()));
    let written = create_private_file(&temporary).and_then(|mut file| {
        file.write_all(bytes)?;
        file.sync_all()
    });
    match written.and_then(|()| fs::rename(&temporary, path)) {
        Ok(()) => Ok(()),
        Err(error) => {
            let _ = fs::remove_file(&temporary);
            Err(error)
        }
    }
}

/// Writes `bytes` to `path` unless it exists: complete or absent, never half-written, and
/// never replacing another process's file.
fn create_once(dir: &Path, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let temporary = dir.join(format!(".{:016x}{TEMPORARY_SUFFIX}", super::stored_token::random_u64()));
    let written = create_private_file(&temporary).and_then(|mut file| {
        file.write_all(bytes)?;
        file.sync_all()
    });
    let linked = written.and_then(|()| match fs::hard_link(&temporary, path) {
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        other => other,
    });
    let _ = fs::remove_file(&temporary);
    linked
}

#[cfg(unix)]
fn create_private_file(path: &Path) -> std::io::Result<fs::File> {
    use std::os::unix::fs::OpenOptionsExt as _;
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

#[cfg(not(unix))]
fn create_private_file(path: &Path) -> std::io::Result<fs::File> {
    fs::OpenOptions::new().write(true).create_new(true).open(path)
}

#[cfg(unix)]
fn create_private_dir(dir: &Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt as _;
    if dir.is_dir() {
        return Ok(());
    }
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| {
            Error::config(format!(
                "cannot create the token cache directory {}: {e}",
                dir.display()
            ))
        })
}

#[cfg(not(unix))]
fn create_private_dir(dir: &Path) -> Result<()> {
    fs::create_dir_all(dir).map_err(|e| {
        Error::config(format!(
            "cannot create the token cache directory {}: {e}",
            dir.display()
        ))
    })
}

/// Refuses a directory another user owns or can read or write: tokens are credentials, and a
/// directory someone else controls lets them plant or swap files (as root, a cache directory
/// made by another user).
fn require_private_dir(dir: &Path) -> Result<()> {
    let meta = fs::metadata(dir).map_err(|e| Error::config(format!("cannot read {}: {e}", dir.display())))?;
    untrusted_file::require_owned_and_private(&meta).map_err(|refused| {
        Error::config(format!(
            "the token cache directory {} is {refused}: it must be this user's, mode 0700 (chown and chmod 700 it, or choose another directory)",
            dir.display()
        ))
    })
}
