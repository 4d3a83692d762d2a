//! Profile avatars: an image stored as a file like any other, its
//! manifest in the account's synced profile and in every message's
//! `profile`, so contacts fetch it as they would a small file.
//!
//! A node keeps a file 14 days at most, so the device that holds the
//! image (`HOME/avatar`) stores it again after 12 days; the manifest in
//! the profile changes, and contacts fetch the new copy.

use std::path::{Path, PathBuf};

use allium_common::AccountId;
use allium_common::files::Manifest;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::messenger::{MESSAGE_TTL_MS, Messenger};
use crate::sync;

/// The largest avatar sent or fetched.
pub const MAX_AVATAR_BYTES: u64 = 5_000_000;
/// The profile key of the avatar's manifest.
pub const PROFILE_AVATAR: &str = "profile/avatar";
/// The profile key of when the avatar was last stored (network ms).
pub const PROFILE_AVATAR_AT: &str = "profile/avatar_at";
/// The avatar is stored again once its copy is this old.
pub const AVATAR_REFRESH_MS: u64 = 12 * 24 * 3600 * 1000;

/// Where this device keeps its own avatar's image.
fn own_image(m: &Messenger) -> PathBuf {
    m.home.dir().join("avatar")
}

/// Where a contact's avatar is kept.
pub fn avatar_path(home_dir: &Path, account: &AccountId) -> PathBuf {
    home_dir.join("avatars").join(account.to_string())
}

/// The pseudo message under which a contact's avatar is fetched.
fn avatar_key(account: &AccountId) -> String {
    format!("avatar:{account}")
}

impl Messenger {
    /// Makes the image at `path` this account's avatar (`None`: no
    /// avatar): stores it on the swarms and puts its manifest in the
    /// profile (synced by the caller).
    pub async fn set_avatar(&mut self, path: Option<&Path>) -> Result<()> {
        let Some(path) = path else {
            let _ = std::fs::remove_file(own_image(self));
            return self.edit_account_state(sync::PROFILE, |state, stamp| {
                state.remove(PROFILE_AVATAR, stamp);
                state.remove(PROFILE_AVATAR_AT, stamp);
            });
        };
        let size = std::fs::metadata(path)
            .map_err(|source| Error::Io {
                path: path.to_path_buf(),
                source,
            })?
            .len();
        if size > MAX_AVATAR_BYTES {
            return Err(Error::Usage(format!(
                "an avatar is at most {MAX_AVATAR_BYTES} bytes; {} is {size}",
                path.display()
            )));
        }
        let image = own_image(self);
        std::fs::copy(path, &image).map_err(|source| Error::Io {
            path: image.clone(),
            source,
        })?;
        self.store_avatar(&image).await
    }

    /// Stores the avatar image again if its copy on the swarms is old
    /// (run after every round; nothing if this device holds no image).
    pub async fn refresh_avatar(&mut self) -> Result<bool> {
        let image = own_image(self);
        let state = self.account_state(sync::PROFILE)?;
        let at = state.get(PROFILE_AVATAR_AT).and_then(Value::as_u64);
        let due = at.is_none_or(|at| self.network_now().saturating_sub(at) >= AVATAR_REFRESH_MS);
        if !image.exists() || state.get(PROFILE_AVATAR).is_none() || !due {
            return Ok(false);
        }
        self.store_avatar(&image).await?;
        Ok(true)
    }

    async fn store_avatar(&mut self, image: &Path) -> Result<()> {
        let mut upload = self.upload_file(image, MESSAGE_TTL_MS, &|_| {}).await?;
        upload.manifest.name = "avatar".into();
        self.home.mark_upload_sent(upload.id)?;
        let manifest = upload.manifest.to_json();
        let now = self.network_now();
        self.edit_account_state(sync::PROFILE, |state, stamp| {
            state.set(PROFILE_AVATAR, manifest, stamp);
            state.set(PROFILE_AVATAR_AT, Value::from(now), stamp);
        })
    }

    /// This account's avatar manifest, as messages carry it.
    pub(crate) fn own_avatar(&self) -> Result<Option<Value>> {
        Ok(self.account_state(sync::PROFILE)?.get(PROFILE_AVATAR).cloned())
    }

    /// Fetches contact `from`'s avatar named by `manifest` into
    /// `HOME/avatars`, unless it is the one held already or too large.
    /// Returns whether a new one was fetched.
    pub async fn fetch_avatar(&mut self, from: &AccountId, manifest: &Manifest) -> Result<bool> {
        if manifest.size > MAX_AVATAR_BYTES {
            return Ok(false);
        }
        let key = avatar_key(from);
        let target = avatar_path(self.home.dir(), from);
        let held = self.home.files_of(&key)?;
        if held.first().is_some_and(|f| f.manifest.upload_pk == manifest.upload_pk) && target.exists() {
            return Ok(false);
        }
        self.home.forget_files(&key)?;
        self.home.put_files(&key, &[(manifest.clone(), None)])?;
        let dir = self.home.dir().join("avatars").join("incoming");
        std::fs::create_dir_all(&dir).map_err(|source| Error::Io {
            path: dir.clone(),
            source,
        })?;
        let saved = self.download_file(&key, 0, &dir, &|_| {}).await?;
        std::fs::rename(&saved.path, &target).map_err(|source| Error::Io {
            path: target.clone(),
            source,
        })?;
        self.home.set_file_saved(&key, 0, &target)?;
        Ok(true)
    }
}
