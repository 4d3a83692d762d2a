//! Files in the home (`docs/files.md`): the files messages carried, the
//! uploads this device made, and the downloads under way.

use std::path::PathBuf;

use allium_common::files::Manifest;
use rusqlite::{OptionalExtension, params};
use zeroize::Zeroizing;

use super::error::Result;
use super::{Home, to_i64};
use crate::files::ChunkSet;

/// A file a message carried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRecord {
    /// The message's hash (direct or group history).
    pub hash: String,
    /// Its place among the message's attachments.
    pub index: u32,
    /// Its manifest (holds the file's key).
    pub manifest: Manifest,
    /// Where it was saved, once it was.
    pub saved: Option<PathBuf>,
    /// The upload that stored it, for a file this device sent.
    pub upload: Option<i64>,
}

/// A file this device stored on the swarms, or is storing.
#[derive(Clone)]
pub struct UploadRecord {
    /// Its row.
    pub id: i64,
    /// The file sent.
    pub path: PathBuf,
    /// Its size and modification time when the upload began: a resumed
    /// upload goes on only if the file is still the same.
    pub size: u64,
    /// See `size`.
    pub modified_ms: u64,
    /// The manifest the upload makes.
    pub manifest: Manifest,
    /// The upload key's seed.
    pub seed: Zeroizing<[u8; 32]>,
    /// The chunks a swarm confirmed.
    pub done: ChunkSet,
    /// When its chunks expire.
    pub expires_ms: u64,
    /// Whether a message carrying it was queued.
    pub sent: bool,
}

impl std::fmt::Debug for UploadRecord {
    // Never print the key or the seed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UploadRecord")
            .field("id", &self.id)
            .field("path", &self.path)
            .field("done", &self.done.count())
            .field("sent", &self.sent)
            .finish_non_exhaustive()
    }
}

type UploadRow = (i64, String, i64, i64, String, Zeroizing<Vec<u8>>, Vec<u8>, i64, i64);

const UPLOAD_COLUMNS: &str = "id, path, size, modified_ms, manifest, seed, done, expires_ms, sent";

fn upload_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<UploadRow> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        Zeroizing::new(r.get(5)?),
        r.get(6)?,
        r.get(7)?,
        r.get(8)?,
    ))
}

impl Home {
    fn read_manifest(&self, text: &str) -> Result<Manifest> {
        serde_json::from_str(text)
            .ok()
            .and_then(|v| Manifest::from_json(&v).ok())
            .ok_or_else(|| self.corrupt("file manifest", "not a manifest"))
    }

    fn upload_from_row(&self, r: UploadRow) -> Result<UploadRecord> {
        let (id, path, size, modified_ms, manifest, seed, done, expires_ms, sent) = r;
        let manifest = self.read_manifest(&manifest)?;
        let seed: [u8; 32] = seed
            .as_slice()
            .try_into()
            .map_err(|_| self.corrupt("upload seed", "not 32 bytes"))?;
        let chunks = manifest.chunks();
        Ok(UploadRecord {
            id,
            path: PathBuf::from(path),
            size: u64::try_from(size).unwrap_or_default(),
            modified_ms: u64::try_from(modified_ms).unwrap_or_default(),
            done: ChunkSet::from_bytes(&done, chunks),
            manifest,
            seed: Zeroizing::new(seed),
            expires_ms: u64::try_from(expires_ms).unwrap_or_default(),
            sent: sent != 0,
        })
    }

    /// Starts an upload; returns its row.
    pub fn add_upload(&mut self, u: &UploadRecord, now_ms: u64) -> Result<i64> {
        self.conn
            .execute(
                "INSERT INTO uploads (path, size, modified_ms, manifest, seed, done, expires_ms, created_ms) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    u.path.to_string_lossy(),
                    to_i64("file size", u.size)?,
                    to_i64("file time", u.modified_ms)?,
                    u.manifest.to_json().to_string(),
                    u.seed.to_vec(),
                    u.done.to_bytes(),
                    to_i64("upload expiry", u.expires_ms)?,
                    to_i64("upload time", now_ms)?,
                ],
            )
            .map_err(self.db_err("starting an upload"))?;
        Ok(self.conn.last_insert_rowid())
    }

    /// An upload of this very file (path, size and modification time) that
    /// no message carries yet and whose chunks have not expired: what a
    /// repeated `send --file` resumes.
    pub fn unsent_upload(&self, path: &str, size: u64, modified_ms: u64, now_ms: u64) -> Result<Option<UploadRecord>> {
        let row = self
            .conn
            .query_row(
                &format!(
                    "SELECT {UPLOAD_COLUMNS} FROM uploads WHERE path = ?1 AND size = ?2 AND modified_ms = ?3 \
                     AND sent = 0 AND expires_ms > ?4 ORDER BY id DESC LIMIT 1"
                ),
                params![
                    path,
                    to_i64("file size", size)?,
                    to_i64("file time", modified_ms)?,
                    to_i64("now", now_ms)?
                ],
                upload_row,
            )
            .optional()
            .map_err(self.db_err("finding an upload"))?;
        row.map(|r| self.upload_from_row(r)).transpose()
    }

    /// One upload.
    pub fn upload(&self, id: i64) -> Result<Option<UploadRecord>> {
        let row = self
            .conn
            .query_row(
                &format!("SELECT {UPLOAD_COLUMNS} FROM uploads WHERE id = ?1"),
                [id],
                upload_row,
            )
            .optional()
            .map_err(self.db_err("reading an upload"))?;
        row.map(|r| self.upload_from_row(r)).transpose()
    }

    /// Records which chunks of upload `id` a swarm confirmed.
    pub fn set_upload_done(&mut self, id: i64, done: &ChunkSet) -> Result<()> {
        self.conn
            .execute(
                "UPDATE uploads SET done = ?1 WHERE id = ?2",
                params![done.to_bytes(), id],
            )
            .map_err(self.db_err("saving an upload's progress"))?;
        Ok(())
    }

    /// Marks upload `id` as carried by a queued message.
    pub fn mark_upload_sent(&mut self, id: i64) -> Result<()> {
        self.conn
            .execute("UPDATE uploads SET sent = 1 WHERE id = ?1", [id])
            .map_err(self.db_err("marking an upload sent"))?;
        Ok(())
    }

    /// Forgets uploads whose chunks have expired (nothing is left to
    /// resume or delete).
    pub fn purge_uploads(&mut self, now_ms: u64) -> Result<usize> {
        self.conn
            .execute("DELETE FROM uploads WHERE expires_ms <= ?1", [to_i64("now", now_ms)?])
            .map_err(self.db_err("forgetting expired uploads"))
    }

    /// Records the files message `hash` carried (a received message's, or
    /// one this device sent with `upload`s), keeping what is held already
    /// (where a file was saved).
    pub fn put_files(&mut self, hash: &str, files: &[(Manifest, Option<i64>)]) -> Result<()> {
        let tx = self.immediate_tx("recording files")?;
        for (index, (manifest, upload)) in files.iter().enumerate() {
            tx.execute(
                "INSERT INTO files (hash, idx, manifest, name, size, type, upload) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) \
                 ON CONFLICT (hash, idx) DO UPDATE SET upload = coalesce(upload, excluded.upload)",
                params![
                    hash,
                    i64::try_from(index).unwrap_or(i64::MAX),
                    manifest.to_json().to_string(),
                    manifest.name,
                    to_i64("file size", manifest.size)?,
                    manifest.content_type,
                    upload
                ],
            )
            .map_err(self.db_err("recording files"))?;
        }
        tx.commit().map_err(self.db_err("recording files"))
    }

    /// The files message `hash` carried, in order.
    pub fn files_of(&self, hash: &str) -> Result<Vec<FileRecord>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT idx, manifest, saved, upload FROM files WHERE hash = ?1 ORDER BY idx")
            .map_err(self.db_err("listing a message's files"))?;
        let rows = stmt
            .query_map([hash], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, Option<String>>(2)?,
                    r.get::<_, Option<i64>>(3)?,
                ))
            })
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
            .map_err(self.db_err("listing a message's files"))?;
        rows.into_iter()
            .map(|(index, manifest, saved, upload)| {
                Ok(FileRecord {
                    hash: hash.to_owned(),
                    index: u32::try_from(index).unwrap_or(u32::MAX),
                    manifest: self.read_manifest(&manifest)?,
                    saved: saved.map(PathBuf::from),
                    upload,
                })
            })
            .collect()
    }

    /// Records where file `index` of message `hash` was saved.
    pub fn set_file_saved(&mut self, hash: &str, index: u32, path: &std::path::Path) -> Result<()> {
        self.conn
            .execute(
                "UPDATE files SET saved = ?1 WHERE hash = ?2 AND idx = ?3",
                params![path.to_string_lossy(), hash, index],
            )
            .map_err(self.db_err("recording a saved file"))?;
        Ok(())
    }

    /// Forgets the files of message `hash` (taken back, or gone) and their
    /// downloads; returns the uploads that stored them, whose chunks the
    /// caller may delete.
    pub fn forget_files(&mut self, hash: &str) -> Result<Vec<UploadRecord>> {
        let uploads = self
            .files_of(hash)?
            .into_iter()
            .filter_map(|f| f.upload)
            .map(|id| self.upload(id))
            .collect::<Result<Vec<_>>>()?
            .into_iter()
            .flatten()
            .collect();
        let parts: Vec<String> = self
            .conn
            .prepare("SELECT part FROM downloads WHERE hash = ?1")
            .and_then(|mut s| s.query_map([hash], |r| r.get(0))?.collect())
            .map_err(self.db_err("forgetting files"))?;
        for part in parts {
            // A fetched part of a file taken back goes too.
            let _ = std::fs::remove_file(part);
        }
        let tx = self.immediate_tx("forgetting files")?;
        for table in ["files", "downloads"] {
            tx.execute(&format!("DELETE FROM {table} WHERE hash = ?1"), [hash])
                .map_err(self.db_err("forgetting files"))?;
        }
        tx.commit().map_err(self.db_err("forgetting files"))?;
        Ok(uploads)
    }

    /// A download under way: its part file and the chunks it holds.
    pub fn download(&self, hash: &str, index: u32, chunks: u32) -> Result<Option<(PathBuf, ChunkSet)>> {
        let row = self
            .conn
            .query_row(
                "SELECT part, held FROM downloads WHERE hash = ?1 AND idx = ?2",
                params![hash, index],
                |r| Ok((r.get::<_, String>(0)?, r.get::<_, Vec<u8>>(1)?)),
            )
            .optional()
            .map_err(self.db_err("reading a download"))?;
        Ok(row.map(|(part, held)| (PathBuf::from(part), ChunkSet::from_bytes(&held, chunks))))
    }

    /// Records a download's part file and the chunks it holds.
    pub fn put_download(&mut self, hash: &str, index: u32, part: &std::path::Path, held: &ChunkSet) -> Result<()> {
        self.conn
            .execute(
                "INSERT INTO downloads (hash, idx, part, held) VALUES (?1, ?2, ?3, ?4) \
                 ON CONFLICT (hash, idx) DO UPDATE SET part = excluded.part, held = excluded.held",
                params![hash, index, part.to_string_lossy(), held.to_bytes()],
            )
            .map_err(self.db_err("saving a download's progress"))?;
        Ok(())
    }

    /// Forgets a download (done, or given up).
    pub fn forget_download(&mut self, hash: &str, index: u32) -> Result<()> {
        self.conn
            .execute(
                "DELETE FROM downloads WHERE hash = ?1 AND idx = ?2",
                params![hash, index],
            )
            .map_err(self.db_err("forgetting a download"))?;
        Ok(())
    }
}
