//! Fetching small files as their messages arrive, as messengers do for
//! photos and voice notes: only from contacts (a stranger cannot make this
//! client fetch anything), only up to the size the user set.

use std::path::PathBuf;

use super::FileNote;
use crate::error::Result;
use crate::messenger::Messenger;

/// A file [`Messenger::auto_save`] fetched, or tried to.
#[derive(Debug)]
pub struct AutoSaved {
    /// The message.
    pub hash: String,
    /// The file's place in it.
    pub index: u32,
    /// Its name, as the sender gave it.
    pub name: String,
    /// Where it went, or why not.
    pub result: Result<PathBuf>,
}

impl Messenger {
    /// Fetches the files of `messages` (hash, files; from contacts: the
    /// caller decides) that are no larger than the auto-download size and
    /// not saved yet, into the download directory. Nothing if auto-download
    /// is off.
    pub async fn auto_save(&mut self, messages: &[(String, Vec<FileNote>)]) -> Vec<AutoSaved> {
        let Some((max_bytes, dir)) = self.auto_download.clone() else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (hash, files) in messages {
            for note in files.iter().filter(|n| n.size <= max_bytes && n.saved.is_none()) {
                let result = self.auto_save_one(hash, note.index, &dir).await;
                out.push(AutoSaved {
                    hash: hash.clone(),
                    index: note.index,
                    name: note.name.clone(),
                    result,
                });
            }
        }
        out
    }

    async fn auto_save_one(&mut self, hash: &str, index: u32, dir: &std::path::Path) -> Result<PathBuf> {
        if !dir.exists() {
            create_private_dir(dir)?;
        }
        let saved = self.download_file(hash, index, dir, &|_| {}).await?;
        Ok(saved.path)
    }
}

/// Creates `dir` (and its parents) readable by this user only.
fn create_private_dir(dir: &std::path::Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt as _;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|source| crate::error::Error::Io {
            path: dir.to_path_buf(),
            source,
        })
}
