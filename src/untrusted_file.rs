//! A leaf: how every file the crate did not write itself in this call is read (the federated
//! token file, the file cache's tokens and locks). One function, so that no path forgets a
//! rule: opened without blocking (a FIFO or device at the path cannot hang the caller, and is
//! refused), checked on the opened handle (no race between check and read): a regular file,
//! at most `max_bytes`, and, where asked, not a symbolic link and owned by this process's
//! effective user with no access for anyone else.

use std::fs;
use std::io::Read as _;
use std::path::Path;

/// What a file must be to be read.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Rules {
    /// Refuse more than this many bytes (read at most one more to know).
    pub(crate) max_bytes: u64,
    /// Only a file this user owns, that no one else may read or write, reached without a
    /// symbolic link (the file cache's own files).
    pub(crate) private: bool,
}

/// Why a file was not read.
#[derive(Debug)]
pub(crate) enum Refused {
    Io(std::io::Error),
    NotRegular,
    TooLarge,
    NotPrivate(String),
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Io(e) => write!(f, "{e}"),
            Self::NotRegular => f.write_str("not a regular file"),
            Self::TooLarge => f.write_str("larger than any file of its kind"),
            Self::NotPrivate(why) => f.write_str(why),
        }
    }
}

/// The file's bytes, if it follows `rules`.
pub(crate) fn read(path: &Path, rules: Rules) -> Result<Vec<u8>, Refused> {
    let file = open(path, rules.private).map_err(Refused::Io)?;
    let metadata = file.metadata().map_err(Refused::Io)?;
    if !metadata.is_file() {
        return Err(Refused::NotRegular);
    }
    if rules.private {
        require_owned_and_private(&metadata)?;
    }
    if metadata.len() > rules.max_bytes {
        return Err(Refused::TooLarge);
    }
    let mut bytes = Vec::with_capacity(usize::try_from(metadata.len()).unwrap_or(0));
    file.take(rules.max_bytes + 1)
        .read_to_end(&mut bytes)
        .map_err(Refused::Io)?;
    if bytes.len() as u64 > rules.max_bytes {
        return Err(Refused::TooLarge);
    }
    Ok(bytes)
}

#[cfg(unix)]
fn open(path: &Path, no_follow: bool) -> std::io::Result<fs::File> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut flags = libc::O_NONBLOCK;
    if no_follow {
        flags |= libc::O_NOFOLLOW;
    }
    fs::OpenOptions::new().read(true).custom_flags(flags).open(path)
}

#[cfg(not(unix))]
fn open(path: &Path, _no_follow: bool) -> std::io::Result<fs::File> {
    fs::File::open(path)
}

/// Owned by this process's effective user, and no access for group or others: another user
/// (root's cache directory made by someone else, say) could plant or read tokens otherwise.
#[cfg(unix)]
pub(crate) fn require_owned_and_private(metadata: &fs::Metadata) -> Result<(), Refused> {
    use std::os::unix::fs::MetadataExt as _;
    let me = rustix::process::geteuid().as_raw();
    if metadata.uid() != me {
        return Err(Refused::NotPrivate(format!(
            "owned by uid {}, not by this user (uid {me})",
            metadata.uid()
        )));
    }
    let mode = metadata.mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(Refused::NotPrivate(format!(
            "mode {mode:o}: other users could read or change it"
        )));
    }
    Ok(())
}

#[cfg(not(unix))]
pub(crate) fn require_owned_and_private(_: &fs::Metadata) -> Result<(), Refused> {
    Ok(())
}

#[cfg(all(test, unix))]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn dir() -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("b2c-token-untrusted-{}", uuid::Uuid::new_v4()));
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    const OPEN: Rules = Rules {
        max_bytes: 16,
        private: false,
    };
    const PRIVATE: Rules = Rules {
        max_bytes: 16,
        private: true,
    };

    #[test]
    fn fifos_are_refused_without_blocking_and_sizes_are_capped() {
        let dir = dir();
        let fifo = dir.join("fifo");
        assert!(std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success());
        assert!(matches!(read(&fifo, OPEN), Err(Refused::NotRegular)));
        let big = dir.join("big");
        fs::File::create(&big).unwrap().set_len(1 << 30).unwrap(); // sparse: costs nothing
        assert!(matches!(read(&big, OPEN), Err(Refused::TooLarge)));
        fs::write(dir.join("small"), b"ok").unwrap();
        assert_eq!(read(&dir.join("small"), OPEN).unwrap(), b"ok");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn private_files_are_ours_alone_and_not_links() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = dir();
        let file = dir.join("token");
        fs::write(&file, b"x").unwrap();
        fs::set_permissions(&file, fs::Permissions::from_mode(0o600)).unwrap();
        assert!(read(&file, PRIVATE).is_ok());
        fs::set_permissions(&file, fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(read(&file, PRIVATE), Err(Refused::NotPrivate(_))));
        fs::set_permissions(&file, fs::Permissions::from_mode(0o600)).unwrap();
        let link = dir.join("link");
        std::os::unix::fs::symlink(&file, &link).unwrap();
        assert!(read(&link, PRIVATE).is_err(), "followed a symbolic link");
        assert!(read(&link, OPEN).is_ok());
        if rustix::process::geteuid().is_root() {
            std::os::unix::fs::chown(&file, Some(65534), Some(65534)).unwrap();
            assert!(matches!(read(&file, PRIVATE), Err(Refused::NotPrivate(_))));
        } else {
            eprintln!("not root: the other-owner case needs a second uid (CI runs it as root)");
        }
        fs::remove_dir_all(&dir).unwrap();
    }
}
