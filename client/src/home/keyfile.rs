//! The identity key file, `HOME/identity.key`.
//!
//! It holds the 32-byte Ed25519 seed as 64 lowercase hex characters and a
//! newline. It is created with mode 0600 by `open(O_CREAT | O_EXCL)`, so an
//! existing key is never overwritten, and a key file that group or others
//! can read is refused rather than used: anyone who reads it can read the
//! account's mail and speak for it. Every buffer that holds the seed or its
//! hex is wiped when dropped.

use std::fs;
use std::io::{ErrorKind, Read, Write};
use std::path::Path;

use allium_common::encoding;
use zeroize::Zeroizing;

use super::error::{HomeError, Result};

/// File name of the key inside the home directory.
pub const KEY_FILE: &str = "identity.key";

/// Longest key file read (64 hex, a newline and some slack for `\r\n` or
/// trailing spaces); anything longer is not a key file.
const MAX_KEY_FILE_LEN: u64 = 128;

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> HomeError + '_ {
    move |source| HomeError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Creates `dir` (and its parents) if missing, with mode 0700, and takes
/// group and other permissions away from it if it already existed with them.
pub(crate) fn create_private_dir(dir: &Path) -> Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir).map_err(io_err(dir))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(dir).map_err(io_err(dir))?.permissions().mode();
        if mode & 0o077 != 0 {
            fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(io_err(dir))?;
        }
    }
    Ok(())
}

/// Writes a new key file holding `seed`. Fails with
/// [`HomeError::IdentityExists`] if there is one already (checked
/// atomically by `create_new`). A file left half-written by a failed write is
/// removed again.
pub(crate) fn write_new(path: &Path, seed: &[u8; 32]) -> Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = match options.open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == ErrorKind::AlreadyExists => {
            return Err(HomeError::IdentityExists {
                path: path.to_path_buf(),
            });
        }
        Err(e) => return Err(io_err(path)(e)),
    };
    let text = Zeroizing::new(format!("{}\n", hex::encode(seed)));
    let written = file
        .write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(io_err(path));
    if written.is_err() {
        // We created this file a moment ago, so removing it destroys nothing.
        let _ = fs::remove_file(path);
    }
    written?;
    sync_parent(path);
    Ok(())
}

/// Makes the new directory entry durable (best effort: not every platform
/// or file system can fsync a directory).
fn sync_parent(path: &Path) {
    #[cfg(unix)]
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        && let Ok(d) = fs::File::open(dir)
    {
        let _ = d.sync_all();
    }
    #[cfg(not(unix))]
    let _ = path;
}

/// Reads the seed from an existing key file, refusing one that group or
/// others can read.
pub(crate) fn read(path: &Path) -> Result<Zeroizing<[u8; 32]>> {
    let mut file = match fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == ErrorKind::NotFound => {
            return Err(HomeError::NoIdentity {
                path: path.to_path_buf(),
            });
        }
        Err(e) => return Err(io_err(path)(e)),
    };
    // Check the file we opened, not the name, so the check and the read
    // see the same file.
    let meta = file.metadata().map_err(io_err(path))?;
    if !meta.is_file() {
        return Err(HomeError::KeyFile {
            path: path.to_path_buf(),
            reason: "not a regular file".into(),
        });
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(HomeError::KeyPermissions {
                path: path.to_path_buf(),
                mode,
            });
        }
    }
    let mut raw = Zeroizing::new(Vec::with_capacity(80));
    (&mut file)
        .take(MAX_KEY_FILE_LEN + 1)
        .read_to_end(&mut raw)
        .map_err(io_err(path))?;
    let bad = |reason: String| HomeError::KeyFile {
        path: path.to_path_buf(),
        reason,
    };
    if raw.len() as u64 > MAX_KEY_FILE_LEN {
        return Err(bad(format!("longer than {MAX_KEY_FILE_LEN} bytes")));
    }
    let text = std::str::from_utf8(&raw).map_err(|_| bad("not UTF-8 text".into()))?;
    // The decode error names only lengths and positions, never content.
    let seed = encoding::hex_array::<32>(text.trim())
        .map(Zeroizing::new)
        .map_err(|e| bad(format!("expected the 32-byte seed as 64 hex characters: {e}")))?;
    Ok(seed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    fn mode_of(path: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn written_key_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(KEY_FILE);
        write_new(&path, &[7u8; 32]).unwrap();
        assert_eq!(*read(&path).unwrap(), [7u8; 32]);
        assert_eq!(fs::read_to_string(&path).unwrap(), format!("{}\n", "07".repeat(32)));
        #[cfg(unix)]
        assert_eq!(mode_of(&path), 0o600);
    }

    #[test]
    fn existing_key_is_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(KEY_FILE);
        write_new(&path, &[1u8; 32]).unwrap();
        let err = write_new(&path, &[2u8; 32]).unwrap_err();
        assert!(matches!(err, HomeError::IdentityExists { .. }), "{err}");
        assert_eq!(*read(&path).unwrap(), [1u8; 32]);
    }

    #[test]
    fn corrupt_key_files_are_clear_errors_without_content() {
        let dir = tempfile::tempdir().unwrap();
        let cases: [&[u8]; 5] = [
            b"",
            b"secretsecret\n",
            &[0xff; 64],
            b"0707070707070707070707070707070707070707070707070707070707070707070707\n",
            &[b'0'; 200],
        ];
        for (i, content) in cases.into_iter().enumerate() {
            let path = dir.path().join(format!("key{i}"));
            let mut options = fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                options.mode(0o600);
            }
            options.open(&path).unwrap().write_all(content).unwrap();
            let err = read(&path).unwrap_err();
            let shown = err.to_string();
            assert!(matches!(err, HomeError::KeyFile { .. }), "{shown}");
            assert!(shown.contains(&format!("key{i}")), "{shown}");
            assert!(!shown.contains("secret"), "{shown}");
        }
    }

    #[test]
    fn a_directory_is_not_a_key_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(KEY_FILE);
        fs::create_dir(&path).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(&path, fs::Permissions::from_mode(0o700)).unwrap();
        }
        assert!(matches!(read(&path), Err(HomeError::KeyFile { .. })));
    }

    #[cfg(unix)]
    #[test]
    fn private_dir_is_created_0700_and_tightened() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("a/b");
        create_private_dir(&home).unwrap();
        assert_eq!(mode_of(&home), 0o700);
        fs::set_permissions(&home, fs::Permissions::from_mode(0o755)).unwrap();
        create_private_dir(&home).unwrap();
        assert_eq!(mode_of(&home), 0o700);
    }
}
