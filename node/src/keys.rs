//! The node's long-term identity: an Ed25519 seed kept in `DATA_DIR/node_key`.
//!
//! The file holds the 32-byte seed as 64 hex characters and a newline. It
//! is created with mode 0600 (in a 0700 directory) on first start and
//! reused afterwards; a file with looser permissions is refused rather than
//! silently used, because anyone who reads it can impersonate the node.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use allium_common::Identity;
use allium_common::encoding;
use allium_common::sodium;
use zeroize::Zeroizing;

use crate::error::{Error, Result};

/// File name of the node key inside the data directory.
pub const KEY_FILE: &str = "node_key";

/// Loads the node identity from `data_dir`, creating a new one if there is
/// none. Returns the identity and whether it was just created.
pub fn load_or_create(data_dir: &Path) -> Result<(Identity, bool)> {
    create_private_dir(data_dir)?;
    let path = data_dir.join(KEY_FILE);
    match fs::read_to_string(&path) {
        Ok(text) => {
            check_private(&path)?;
            let text = Zeroizing::new(text);
            let seed = Zeroizing::new(encoding::hex_array::<32>(text.trim()).map_err(|e| Error::KeyFile {
                path: path.clone(),
                reason: e.to_string(),
            })?);
            Ok((Identity::from_ed25519_seed(&seed), false))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let seed = Zeroizing::new(sodium::random_array::<32>());
            write_private(&path, &Zeroizing::new(format!("{}\n", hex::encode(*seed))))?;
            Ok((Identity::from_ed25519_seed(&seed), true))
        }
        Err(e) => Err(Error::io(&path, e)),
    }
}

fn create_private_dir(dir: &Path) -> Result<()> {
    fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(dir).map_err(|e| Error::io(dir, e))?.permissions().mode();
        if mode & 0o077 != 0 {
            fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(|e| Error::io(dir, e))?;
        }
    }
    Ok(())
}

/// Writes `contents` to a new file readable only by its owner. Fails if the
/// file exists, so a key is never overwritten.
fn write_private(path: &Path, contents: &str) -> Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(|e| Error::io(path, e))?;
    file.write_all(contents.as_bytes()).map_err(|e| Error::io(path, e))?;
    file.sync_all().map_err(|e| Error::io(path, e))
}

fn check_private(path: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(path).map_err(|e| Error::io(path, e))?.permissions().mode();
        if mode & 0o077 != 0 {
            return Err(Error::KeyFile {
                path: path.to_path_buf(),
                reason: format!("permissions are {:o}; run `chmod 600 {}`", mode & 0o777, path.display()),
            });
        }
    }
    Ok(())
}

/// Path of the key file in a data directory.
pub fn key_path(data_dir: &Path) -> PathBuf {
    data_dir.join(KEY_FILE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_once_then_reused_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let (first, created) = load_or_create(&data).unwrap();
        assert!(created);
        let (second, created) = load_or_create(&data).unwrap();
        assert!(!created);
        assert_eq!(first.ed25519_pk(), second.ed25519_pk());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(key_path(&data)).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
            let dir_mode = fs::metadata(&data).unwrap().permissions().mode();
            assert_eq!(dir_mode & 0o777, 0o700);
        }
    }

    #[cfg(unix)]
    #[test]
    fn readable_key_file_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        load_or_create(dir.path()).unwrap();
        fs::set_permissions(key_path(dir.path()), fs::Permissions::from_mode(0o644)).unwrap();
        let err = load_or_create(dir.path()).unwrap_err();
        assert!(err.to_string().contains("chmod 600"), "{err}");
    }

    #[test]
    fn corrupt_key_file_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        write_private(&key_path(dir.path()), "not hex\n").unwrap();
        let err = load_or_create(dir.path()).unwrap_err();
        assert!(err.to_string().contains("node_key"), "{err}");
    }
}
