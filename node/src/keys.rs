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
use allium_common::consensus::SigningKeyCert;
use allium_common::encoding;
use allium_common::sodium;
use zeroize::Zeroizing;

use crate::error::{Error, Result};

/// File name of the node key inside the data directory.
pub const KEY_FILE: &str = "node_key";
/// File name, in a seed's data directory, of the certificate by which the
/// seed's offline identity key lets its node key sign for it.
pub const SEED_CERT_FILE: &str = "seed_key_cert.json";

/// Loads the node identity from `data_dir`, creating a new one if there is
/// none. Returns the identity and whether it was just created.
pub fn load_or_create(data_dir: &Path) -> Result<(Identity, bool)> {
    create_private_dir(data_dir)?;
    let path = data_dir.join(KEY_FILE);
    match read_key_file(&path) {
        Ok(identity) => Ok((identity, false)),
        Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            Ok((create_key_file(&path)?, true))
        }
        Err(e) => Err(e),
    }
}

/// Reads a key file (64 hex characters of an Ed25519 seed), refusing one
/// that others may read.
pub fn read_key_file(path: &Path) -> Result<Identity> {
    let text = Zeroizing::new(fs::read_to_string(path).map_err(|e| Error::io(path, e))?);
    check_private(path)?;
    let seed = Zeroizing::new(encoding::hex_array::<32>(text.trim()).map_err(|e| Error::KeyFile {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?);
    Ok(Identity::from_ed25519_seed(&seed))
}

/// Makes a new key file at `path` (mode 0600; never over an existing file).
pub fn create_key_file(path: &Path) -> Result<Identity> {
    let seed = Zeroizing::new(sodium::random_array::<32>());
    write_private(path, &Zeroizing::new(format!("{}\n", hex::encode(*seed))))?;
    Ok(Identity::from_ed25519_seed(&seed))
}

/// The seed's signing-key certificate, if its data directory has one: it
/// must certify this node's key `signing` and hold at `now_ms` (a seed
/// whose certificate has lapsed signs nothing anyone accepts, so it does
/// not start).
pub fn load_seed_cert(data_dir: &Path, signing: &[u8; 32], now_ms: u64) -> Result<Option<SigningKeyCert>> {
    let path = data_dir.join(SEED_CERT_FILE);
    let text = match fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(&path, e)),
    };
    let bad = |reason: String| Error::KeyFile {
        path: path.clone(),
        reason,
    };
    let cert: SigningKeyCert = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
    if &cert.signing.0 != signing {
        return Err(bad(format!(
            "it certifies the key {}, not this seed's {}",
            hex::encode(cert.signing.0),
            hex::encode(signing)
        )));
    }
    cert.check(now_ms).map_err(|e| bad(e.to_string()))?;
    Ok(Some(cert))
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

/// `allium-node seed-key certify`: the offline identity key in
/// `identity_file` certifies `signing` for `days` days from `now_ms`.
pub fn certify(identity_file: &Path, signing: [u8; 32], now_ms: u64, days: u64) -> Result<SigningKeyCert> {
    let identity = read_key_file(identity_file)?;
    let lifetime = days.saturating_mul(24 * 60 * 60 * 1000);
    if lifetime == 0 || lifetime > allium_common::consensus::MAX_CERT_LIFETIME_MS {
        return Err(Error::config(format!("--days must be 1 to 366, not {days}")));
    }
    Ok(SigningKeyCert::issue(&identity, signing, now_ms, now_ms + lifetime))
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
    fn a_seed_certificate_must_name_this_key_and_hold_now() {
        const NOW: u64 = 1_700_000_000_000;
        const DAY: u64 = 86_400_000;
        let dir = tempfile::tempdir().unwrap();
        let identity_file = dir.path().join("identity");
        let identity = create_key_file(&identity_file).unwrap();
        let data = dir.path().join("data");
        let (node, _) = load_or_create(&data).unwrap();
        assert_eq!(
            load_seed_cert(&data, node.ed25519_pk(), NOW).unwrap(),
            None,
            "none: the key is the identity"
        );
        let cert = certify(&identity_file, *node.ed25519_pk(), NOW, 30).unwrap();
        assert_eq!(cert.identity.0, *identity.ed25519_pk());
        fs::write(data.join(SEED_CERT_FILE), serde_json::to_string(&cert).unwrap()).unwrap();
        assert_eq!(load_seed_cert(&data, node.ed25519_pk(), NOW + DAY).unwrap(), Some(cert));
        let expired = load_seed_cert(&data, node.ed25519_pk(), NOW + 31 * DAY).unwrap_err();
        assert!(expired.to_string().contains("expired"), "{expired}");
        let other = load_seed_cert(&data, &[7; 32], NOW + DAY).unwrap_err();
        assert!(other.to_string().contains("not this seed's"), "{other}");
        assert!(certify(&identity_file, [1; 32], NOW, 400).is_err(), "over a year");
    }

    #[test]
    fn corrupt_key_file_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        write_private(&key_path(dir.path()), "not hex\n").unwrap();
        let err = load_or_create(dir.path()).unwrap_err();
        assert!(err.to_string().contains("node_key"), "{err}");
    }
}
