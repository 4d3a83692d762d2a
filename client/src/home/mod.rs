//! The client's home directory (`--home DIR` / `ALLIUM_HOME`): everything the
//! `allium` CLI keeps on disk.
//!
//! ```text
//! HOME/               mode 0700
//!   identity.key      mode 0600: the Ed25519 seed, 64 hex characters + "\n"
//!   allium.db         mode 0600: SQLite (WAL) with the account state (profile,
//!                     contacts), history, outbox,
//!                     retrieve cursors, the cached node list and settings
//! ```
//!
//! No networking happens here, and time is always passed in (`now_ms`, Unix
//! milliseconds), so every operation is deterministic and testable.
//!
//! [`Home::create`] writes a new key file and refuses to overwrite one;
//! [`Home::open`] refuses a key file that group or others can read. The
//! database records the Account ID it belongs to, and a home whose key file
//! and database disagree is refused rather than mixed.
//!
//! Several `allium` processes may use one home at once (`allium watch` in
//! one terminal, `allium send` in another): SQLite's WAL and a busy timeout
//! serialise their writes, and every multi-step change is one transaction.

mod account;
mod cache;
mod devices;
mod error;
mod files;
mod groups;
mod history;
mod keyfile;
mod keys;
mod names;
mod outbox;
mod schema;

use std::fmt;
use std::path::{Path, PathBuf};

use allium_common::mnemonic::PhraseKind;
use allium_common::{AccountId, Identity};
use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};

pub use cache::{MAX_CURSOR_KEY_LEN, MAX_CURSORS, MAX_SOURCE_LEN};
pub use devices::TrustedDevice;
pub use error::{ECHO_MAX, HomeError, Result};
pub use files::{FileRecord, UploadRecord};
pub use groups::{GroupEntry, GroupRecord, MAX_GROUPS};
pub use history::{Direction, HistoryEntry, MAX_BODY_LEN, ReceiptLevel};
pub use keyfile::KEY_FILE;
pub use names::{MAX_CONTACT_NAME_CHARS, MAX_CONTACTS, validate_name};
pub use outbox::{MAX_LAST_ERROR_LEN, MAX_OUTBOX, OutboxItem};
pub use schema::{APPLICATION_ID, MIGRATIONS, current_version};

/// File name of the database inside the home directory.
pub const DB_FILE: &str = "allium.db";

/// Meta key holding the Account ID the database belongs to.
pub const META_ACCOUNT_ID: &str = "account_id";
/// Meta key holding where the identity came from ([`IdentitySource`]).
pub const META_CREATED_FROM: &str = "created_from";
/// Longest meta key, in bytes.
pub const MAX_META_KEY_LEN: usize = 64;
/// Longest meta value, in bytes.
pub const MAX_META_VALUE_LEN: usize = 4096;

/// What kind of recovery phrase an identity was made from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IdentitySource {
    /// A BIP39 English phrase (every new identity; `allium restore` of one).
    Bip39,
    /// A legacy 13-word Session phrase.
    Legacy,
}

impl IdentitySource {
    /// The form stored in the database: `"bip39"` or `"legacy"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Bip39 => "bip39",
            Self::Legacy => "legacy",
        }
    }

    /// Parses [`IdentitySource::as_str`]'s form.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "bip39" => Some(Self::Bip39),
            "legacy" => Some(Self::Legacy),
            _ => None,
        }
    }
}

impl From<PhraseKind> for IdentitySource {
    fn from(kind: PhraseKind) -> Self {
        match kind {
            PhraseKind::Bip39(_) => Self::Bip39,
            PhraseKind::LegacySession => Self::Legacy,
        }
    }
}

impl fmt::Display for IdentitySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An open home directory: the identity and the database.
///
/// Not `Sync` (one SQLite connection); open one `Home` per thread or task,
/// or share it behind a mutex.
pub struct Home {
    dir: PathBuf,
    db_path: PathBuf,
    identity: Identity,
    conn: Connection,
}

impl fmt::Debug for Home {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The identity's Debug shows only the Account ID.
        f.debug_struct("Home")
            .field("dir", &self.dir)
            .field("identity", &self.identity)
            .finish_non_exhaustive()
    }
}

impl Home {
    /// Makes a new home in `dir` (created with mode 0700 if missing, its
    /// group and other permissions removed if present) for the identity
    /// of `identity_seed`.
    ///
    /// Fails with [`HomeError::IdentityExists`] if `dir` already has a key
    /// file: `allium init` and `allium restore` never overwrite one. A
    /// database left from an earlier identity (its key file deleted) is
    /// refused with [`HomeError::IdentityMismatch`] before anything is
    /// written; a database of the same identity is kept, so restoring a
    /// deleted key file keeps contacts and history.
    pub fn create(dir: &Path, identity_seed: &[u8; 32], created_from: IdentitySource) -> Result<Self> {
        let key_path = dir.join(KEY_FILE);
        keyfile::create_private_dir(dir)?;
        // Checked again atomically when the file is created; this early
        // check only avoids touching the database when the answer is known.
        if key_path.symlink_metadata().is_ok() {
            return Err(HomeError::IdentityExists { path: key_path });
        }
        let identity = Identity::from_ed25519_seed(identity_seed);
        let home = Self::with_database(dir, identity)?;
        home.check_account()?;
        keyfile::write_new(&key_path, identity_seed)?;
        home.write_meta(META_ACCOUNT_ID, &home.identity.account_id().to_string())?;
        home.write_meta(META_CREATED_FROM, created_from.as_str())?;
        Ok(home)
    }

    /// The home for `identity` with its database opened (created if new).
    fn with_database(dir: &Path, identity: Identity) -> Result<Self> {
        let db_path = dir.join(DB_FILE);
        let conn = schema::open(&db_path)?;
        Ok(Self {
            dir: dir.to_path_buf(),
            db_path,
            identity,
            conn,
        })
    }

    /// Opens an existing home. Fails with [`HomeError::NoIdentity`] if
    /// there is no key file, [`HomeError::KeyPermissions`] if group or
    /// others can read it, and [`HomeError::IdentityMismatch`] if the
    /// database belongs to another identity.
    pub fn open(dir: &Path) -> Result<Self> {
        let seed = keyfile::read(&dir.join(KEY_FILE))?;
        let identity = Identity::from_ed25519_seed(&seed);
        let home = Self::with_database(dir, identity)?;
        if !home.check_account()? {
            // The database was deleted (or never written): adopt it.
            home.write_meta(META_ACCOUNT_ID, &home.identity.account_id().to_string())?;
        }
        Ok(home)
    }

    /// The identity.
    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// The Account ID (shorthand for `identity().account_id()`).
    pub fn account_id(&self) -> AccountId {
        self.identity.account_id()
    }

    /// The home directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Path of the key file.
    pub fn key_path(&self) -> PathBuf {
        self.dir.join(KEY_FILE)
    }

    /// Path of the database.
    pub fn db_path(&self) -> &Path {
        &self.db_path
    }

    /// What the identity was made from, if recorded.
    pub fn created_from(&self) -> Result<Option<IdentitySource>> {
        Ok(self.meta(META_CREATED_FROM)?.as_deref().and_then(IdentitySource::parse))
    }

    /// A small setting, if set.
    pub fn meta(&self, key: &str) -> Result<Option<String>> {
        check_meta_key(key)?;
        self.conn
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()
            .map_err(self.db_err("reading a setting"))
    }

    /// Sets a small setting (key ≤ [`MAX_META_KEY_LEN`] bytes, value ≤
    /// [`MAX_META_VALUE_LEN`] bytes). [`META_ACCOUNT_ID`] is reserved: it
    /// ties the database to the key file.
    pub fn set_meta(&mut self, key: &str, value: &str) -> Result<()> {
        check_meta_key(key)?;
        if key == META_ACCOUNT_ID {
            return Err(HomeError::InvalidArgument {
                what: "setting name",
                value: key.to_owned(),
                reason: "reserved: it records which identity the database belongs to",
            });
        }
        if value.len() > MAX_META_VALUE_LEN {
            return Err(HomeError::InvalidArgument {
                what: "setting value",
                value: error::echo(value),
                reason: "longer than 4096 bytes",
            });
        }
        self.write_meta(key, value)
    }

    fn write_meta(&self, key: &str, value: &str) -> Result<()> {
        self.conn
            .execute(
                "INSERT INTO meta (key, value) VALUES (?1, ?2)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                params![key, value],
            )
            .map_err(self.db_err("writing a setting"))?;
        Ok(())
    }

    /// Checks that the database belongs to this identity. Returns whether
    /// it records an Account ID at all.
    fn check_account(&self) -> Result<bool> {
        let Some(stored) = self.meta(META_ACCOUNT_ID)? else {
            return Ok(false);
        };
        let key = self.identity.account_id();
        if stored == key.to_string() {
            Ok(true)
        } else {
            Err(HomeError::IdentityMismatch {
                path: self.db_path.clone(),
                stored: error::echo(&stored),
                key,
            })
        }
    }

    /// Starts a write transaction that takes the database's write lock at
    /// once, so a read-check-write sequence (a count against a limit, say)
    /// cannot race another `allium` process. Methods that change the
    /// database take `&mut self`, so transactions never nest.
    fn immediate_tx(&self, op: &'static str) -> Result<Transaction<'_>> {
        Transaction::new_unchecked(&self.conn, TransactionBehavior::Immediate).map_err(self.db_err(op))
    }

    /// Maps a SQLite error to [`HomeError::Database`] with this home's path.
    fn db_err(&self, op: &'static str) -> impl FnOnce(rusqlite::Error) -> HomeError + '_ {
        move |source| HomeError::Database {
            path: self.db_path.clone(),
            op,
            source,
        }
    }

    /// A [`HomeError::Corrupt`] for this database.
    fn corrupt(&self, what: &'static str, reason: impl Into<String>) -> HomeError {
        HomeError::Corrupt {
            path: self.db_path.clone(),
            what,
            reason: reason.into(),
        }
    }
}

fn check_meta_key(key: &str) -> Result<()> {
    if key.is_empty() || key.len() > MAX_META_KEY_LEN {
        return Err(HomeError::InvalidArgument {
            what: "setting name",
            value: error::echo(key),
            reason: "must be 1 to 64 bytes",
        });
    }
    Ok(())
}

/// A `u64` (time, TTL) as SQLite's `i64`, or [`HomeError::OutOfRange`].
fn to_i64(what: &'static str, value: u64) -> Result<i64> {
    i64::try_from(value).map_err(|_| HomeError::OutOfRange { what, value })
}

/// Checks a message hash as the client receives it from nodes: 1 to 128
/// printable ASCII characters (a real one is 43 characters of base64).
fn check_hash(hash: &str) -> Result<()> {
    if hash.is_empty() || hash.len() > 128 || !hash.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(HomeError::InvalidArgument {
            what: "message hash",
            value: error::echo(hash),
            reason: "must be 1 to 128 printable ASCII characters",
        });
    }
    Ok(())
}

/// Parses a stored Account ID.
fn parse_account(home: &Home, what: &'static str, s: &str) -> Result<AccountId> {
    s.parse()
        .map_err(|e: allium_common::identity::AccountIdError| home.corrupt(what, e.to_string()))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A fresh home in a temp dir, with the identity of seed `[n; 32]`.
    pub(crate) fn temp_home(n: u8) -> (tempfile::TempDir, Home) {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::create(&dir.path().join("home"), &[n; 32], IdentitySource::Bip39).unwrap();
        (dir, home)
    }

    /// The Account ID of seed `[n; 32]`.
    pub(crate) fn account(n: u8) -> AccountId {
        Identity::from_ed25519_seed(&[n; 32]).account_id()
    }

    #[cfg(unix)]
    fn mode_of(path: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn create_then_open_keeps_the_identity() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested/home");
        let created = Home::create(&path, &[9; 32], IdentitySource::Legacy).unwrap();
        let id = created.account_id();
        assert_eq!(id, account(9));
        #[cfg(unix)]
        {
            assert_eq!(mode_of(&path), 0o700);
            assert_eq!(mode_of(&path.join(KEY_FILE)), 0o600);
            assert_eq!(mode_of(&path.join(DB_FILE)), 0o600);
        }
        drop(created);
        let opened = Home::open(&path).unwrap();
        assert_eq!(opened.identity().account_id(), id);
        assert_eq!(opened.identity().ed25519_seed(), &[9; 32]);
        assert_eq!(opened.created_from().unwrap(), Some(IdentitySource::Legacy));
        assert_eq!(opened.meta(META_ACCOUNT_ID).unwrap(), Some(id.to_string()));
    }

    #[test]
    fn init_refuses_to_overwrite_an_identity() {
        let (dir, home) = temp_home(1);
        let path = home.dir().to_path_buf();
        drop(home);
        for seed in [[1u8; 32], [2u8; 32]] {
            let err = Home::create(&path, &seed, IdentitySource::Bip39).unwrap_err();
            assert!(matches!(&err, HomeError::IdentityExists { path: p } if p == &path.join(KEY_FILE)));
            assert!(err.to_string().contains("refusing to overwrite"), "{err}");
        }
        assert_eq!(Home::open(&path).unwrap().account_id(), account(1));
        drop(dir);
    }

    #[test]
    fn open_without_identity_says_what_to_run() {
        let dir = tempfile::tempdir().unwrap();
        let err = Home::open(dir.path()).unwrap_err();
        assert!(matches!(err, HomeError::NoIdentity { .. }));
        assert!(err.to_string().contains("allium init"), "{err}");
    }

    #[cfg(unix)]
    #[test]
    fn loose_key_permissions_are_refused_with_the_chmod_hint() {
        use std::os::unix::fs::PermissionsExt;
        let (_dir, home) = temp_home(3);
        let key = home.key_path();
        let path = home.dir().to_path_buf();
        drop(home);
        for mode in [0o640, 0o604, 0o644] {
            std::fs::set_permissions(&key, std::fs::Permissions::from_mode(mode)).unwrap();
            let err = Home::open(&path).unwrap_err();
            assert!(matches!(err, HomeError::KeyPermissions { .. }), "{err}");
            let shown = err.to_string();
            assert!(shown.contains(&format!("chmod 600 {}", key.display())), "{shown}");
        }
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o400)).unwrap();
        assert_eq!(Home::open(&path).unwrap().account_id(), account(3));
    }

    #[test]
    fn corrupt_key_file_is_a_clear_error() {
        let (_dir, home) = temp_home(4);
        let key = home.key_path();
        let path = home.dir().to_path_buf();
        drop(home);
        std::fs::write(&key, "zz not a key\n").unwrap();
        let err = Home::open(&path).unwrap_err();
        assert!(matches!(err, HomeError::KeyFile { .. }), "{err}");
        assert!(err.to_string().contains(KEY_FILE), "{err}");
    }

    #[test]
    fn database_of_another_identity_is_refused() {
        let (_dir, home) = temp_home(5);
        let path = home.dir().to_path_buf();
        let key = home.key_path();
        drop(home);
        std::fs::remove_file(&key).unwrap();
        // A different identity must not adopt the old history...
        let err = Home::create(&path, &[6; 32], IdentitySource::Bip39).unwrap_err();
        assert!(matches!(err, HomeError::IdentityMismatch { .. }), "{err}");
        assert!(!key.exists(), "nothing written when refused");
        // ...but restoring the same identity keeps it.
        Home::create(&path, &[5; 32], IdentitySource::Bip39).unwrap();
    }

    #[test]
    fn deleted_database_is_recreated_on_open() {
        let (_dir, home) = temp_home(7);
        let path = home.dir().to_path_buf();
        drop(home);
        std::fs::remove_file(path.join(DB_FILE)).unwrap();
        let home = Home::open(&path).unwrap();
        assert_eq!(home.meta(META_ACCOUNT_ID).unwrap(), Some(account(7).to_string()));
    }

    #[test]
    fn meta_round_trips_and_guards_the_account_id() {
        let (_dir, mut home) = temp_home(8);
        assert_eq!(home.meta("theme").unwrap(), None);
        home.set_meta("theme", "dark").unwrap();
        home.set_meta("theme", "light").unwrap();
        assert_eq!(home.meta("theme").unwrap().as_deref(), Some("light"));
        assert!(home.set_meta(META_ACCOUNT_ID, "05ab").is_err());
        assert!(home.set_meta("", "x").is_err());
        assert!(home.set_meta(&"k".repeat(65), "x").is_err());
        assert!(home.set_meta("big", &"v".repeat(MAX_META_VALUE_LEN + 1)).is_err());
    }

    #[test]
    fn debug_never_shows_the_seed() {
        let (_dir, home) = temp_home(0xab);
        let shown = format!("{home:?}");
        assert!(shown.contains(&account(0xab).to_string()), "{shown}");
        assert!(!shown.contains(&"ab".repeat(32)), "{shown}");
    }

    #[test]
    fn identity_source_matches_phrase_kind() {
        assert_eq!(IdentitySource::from(PhraseKind::Bip39(24)), IdentitySource::Bip39);
        assert_eq!(IdentitySource::from(PhraseKind::LegacySession), IdentitySource::Legacy);
        for s in [IdentitySource::Bip39, IdentitySource::Legacy] {
            assert_eq!(IdentitySource::parse(s.as_str()), Some(s));
        }
    }
}
