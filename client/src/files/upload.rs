//! Sending a file: encrypt it chunk by chunk and store each chunk on the
//! swarm its ID maps to, several at once, resumably.

use std::collections::HashSet;
use std::io::Read;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use allium_common::encoding::{Base64Bytes, Hex32, Sig64};
use allium_common::files::{ChunkId, Encryptor, MAX_FILE_LEN, Manifest, RECORD_LEN};
use allium_common::node_list::NodeEntry;
use allium_common::rpc::{self, Call, Namespace, StoreParams};
use allium_common::sodium::{Blake2b256, random_array};
use allium_common::{Identity, MailboxId};
use serde_json::Value;
use tokio::sync::mpsc;
use zeroize::Zeroizing;

use super::{CHUNK_TIMEOUT, ChunkSet, OnProgress, Progress, SAVE_EVERY, TRIES_PER_CHUNK, refusal, workers};
use crate::error::{Error, Result};
use crate::home::{Home, UploadRecord};
use crate::messenger::Messenger;

/// A read error of the file being sent.
fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Reads the file in 64 KiB blocks, giving each to `each`; returns the
/// whole file's digest. Fails if the file is not `size` bytes long.
fn read_blocks(path: &Path, size: u64, mut each: impl FnMut(u32, &[u8]) -> bool) -> Result<[u8; 32]> {
    let mut file = std::fs::File::open(path).map_err(io_error(path))?;
    let mut hasher = Blake2b256::new();
    let mut block = Zeroizing::new(vec![0u8; RECORD_LEN]);
    let mut read_total = 0u64;
    let mut index = 0u32;
    loop {
        let want = usize::try_from((size - read_total).min(RECORD_LEN as u64)).unwrap_or(RECORD_LEN);
        file.read_exact(&mut block[..want]).map_err(|e| {
            // Shorter than it was: the file changed; anything else is the
            // disk's or the system's to say.
            if e.kind() == std::io::ErrorKind::UnexpectedEof {
                changed()
            } else {
                io_error(path)(e)
            }
        })?;
        hasher.update(&block[..want]);
        read_total += want as u64;
        if !each(index, &block[..want]) {
            break;
        }
        index += 1;
        if read_total == size {
            // Nothing may follow: the file grew.
            if file.read(&mut block[..1]).map_err(io_error(path))? != 0 {
                return Err(changed());
            }
            break;
        }
    }
    Ok(hasher.finish())
}

fn changed() -> Error {
    Error::File("the file changed while it was being sent; send it again".into())
}

/// Size and modification time (Unix ms) of a regular file.
fn stat(path: &Path) -> Result<(u64, u64)> {
    let meta = std::fs::metadata(path).map_err(io_error(path))?;
    if !meta.is_file() {
        return Err(Error::Usage(format!("{} is not a regular file", path.display())));
    }
    let modified = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    Ok((meta.len(), modified))
}

impl Messenger {
    /// How long a file sent to `to` lives on the swarms: 14 days, or the
    /// conversation's disappearing time after sending if shorter.
    pub fn file_ttl_for(&self, to: &allium_common::AccountId) -> Result<u64> {
        let rule = self.book()?.get(to).and_then(|c| c.disappearing);
        Ok(match rule {
            Some(r) if r.after == allium_common::content::DisappearAfter::Send => {
                r.ms.clamp(rpc::MIN_TTL_MS, crate::messenger::MESSAGE_TTL_MS)
            }
            _ => crate::messenger::MESSAGE_TTL_MS,
        })
    }

    /// Stores the file at `path` on the swarms as encrypted chunks that
    /// live `ttl_ms`, and returns the upload (its manifest goes into the
    /// message that sends it). The same file (path, size and modification
    /// time) given again while no message carries it resumes the upload
    /// where it stopped. `on_progress` hears of every stored chunk.
    pub async fn upload_file(&mut self, path: &Path, ttl_ms: u64, on_progress: OnProgress<'_>) -> Result<UploadRecord> {
        let path = path.canonicalize().map_err(io_error(path))?;
        let (size, modified_ms) = stat(&path)?;
        if size > MAX_FILE_LEN {
            return Err(Error::Usage(format!(
                "{} is {size} bytes; a file may be at most {MAX_FILE_LEN} (1 GiB)",
                path.display()
            )));
        }
        let now = self.network_now();
        self.home.purge_uploads(now)?;
        // Resumed only if the chunks stored so far outlive the message by
        // an hour; else it starts afresh.
        let upload = match self
            .home
            .unsent_upload(&path.to_string_lossy(), size, modified_ms, now + 3_600_000)?
        {
            Some(held) => held,
            None => self.new_upload(&path, size, modified_ms, ttl_ms).await?,
        };
        self.nodes().await?;
        self.store_chunks(upload, on_progress).await
    }

    /// A new upload of the file: its digest, a fresh key, header and
    /// upload key.
    async fn new_upload(&mut self, path: &Path, size: u64, modified_ms: u64, ttl_ms: u64) -> Result<UploadRecord> {
        let reading = path.to_path_buf();
        let digest = tokio::task::spawn_blocking(move || read_blocks(&reading, size, |_, _| true))
            .await
            .map_err(|e| Error::File(format!("reading the file failed: {e}")))??;
        let name = path
            .file_name()
            .map(|n| {
                n.to_string_lossy()
                    .chars()
                    .take(allium_common::files::MAX_NAME_CHARS)
                    .collect()
            })
            .unwrap_or_default();
        let seed = Zeroizing::new(random_array::<32>());
        let manifest = Manifest {
            key: Zeroizing::new(random_array::<32>()),
            header: random_array(),
            upload_pk: *Identity::from_ed25519_seed(&seed).ed25519_pk(),
            size,
            digest,
            name,
            content_type: super::content_type_of(path).to_owned(),
        };
        let chunks = manifest.chunks();
        let mut upload = UploadRecord {
            id: 0,
            path: path.to_path_buf(),
            size,
            modified_ms,
            manifest,
            seed,
            done: ChunkSet::empty(chunks),
            expires_ms: self.network_now().saturating_add(ttl_ms),
            sent: false,
        };
        upload.id = self.home.add_upload(&upload, crate::now_ms())?;
        Ok(upload)
    }

    /// Encrypts the file again from the start (the same key and header
    /// give the same chunks) and stores the chunks not yet confirmed.
    async fn store_chunks(&mut self, mut upload: UploadRecord, on_progress: OnProgress<'_>) -> Result<UploadRecord> {
        let total = upload.done.len();
        let progress = |done: &ChunkSet| Progress {
            done: done.count(),
            total,
            size: upload.size,
        };
        on_progress(progress(&upload.done));
        if upload.done.is_full() {
            return Ok(upload);
        }
        let stop = Arc::new(AtomicBool::new(false));
        let (job_tx, job_rx) = mpsc::channel::<(u32, Vec<u8>)>(self.file_parallelism);
        let producer = {
            let (path, size, done, stop) = (upload.path.clone(), upload.size, upload.done.clone(), Arc::clone(&stop));
            let mut encryptor = Encryptor::new(&upload.manifest.key, &upload.manifest.header, size)
                .map_err(|e| Error::File(e.to_string()))?;
            tokio::task::spawn_blocking(move || {
                read_blocks(&path, size, |index, block| {
                    let Ok(chunk) = encryptor.push(block) else {
                        return false;
                    };
                    done.contains(index)
                        || (!stop.load(Ordering::Relaxed) && job_tx.blocking_send((index, chunk)).is_ok())
                })
            })
        };
        let key = Arc::new(Identity::from_ed25519_seed(&upload.seed));
        let expires_ms = upload.expires_ms;
        // No more sessions than chunks to store.
        let sessions = self.file_parallelism.min((total - upload.done.count()) as usize);
        let mut results = workers::spawn(self, sessions, job_rx, move |mut m, (index, chunk)| {
            let key = Arc::clone(&key);
            async move {
                let result = store_chunk(&mut m, &key, index, chunk, expires_ms).await;
                (m, (index, result))
            }
        })?;
        let mut failure = None;
        let mut unsaved = 0;
        while let Some((index, result)) = results.recv().await {
            match result {
                Ok(()) => {
                    upload.done.insert(index);
                    unsaved += 1;
                    if unsaved >= SAVE_EVERY {
                        self.home.set_upload_done(upload.id, &upload.done)?;
                        unsaved = 0;
                    }
                    on_progress(progress(&upload.done));
                }
                Err(e) => {
                    stop.store(true, Ordering::Relaxed);
                    failure.get_or_insert(e);
                }
            }
        }
        self.home.set_upload_done(upload.id, &upload.done)?;
        let digest = producer
            .await
            .map_err(|e| Error::File(format!("reading the file failed: {e}")))?;
        if let Some(e) = failure {
            return Err(e);
        }
        if digest? != upload.manifest.digest {
            return Err(changed());
        }
        if !upload.done.is_full() {
            return Err(Error::File(format!(
                "{} of {total} chunks stored; run the command again to go on",
                upload.done.count()
            )));
        }
        Ok(upload)
    }
}

/// Stores chunk `index` (signed by the upload key) on a member of its
/// swarm; a member that cannot take it (full, failing) is left for
/// another, a refusal that no member would mend (400, 401, 413) ends it.
async fn store_chunk(m: &mut Messenger, key: &Identity, index: u32, chunk: Vec<u8>, expires_ms: u64) -> Result<()> {
    let mailbox: MailboxId = ChunkId::of(key.ed25519_pk(), index).into();
    let hash = rpc::message_hash(&mailbox, Namespace::FILES, &chunk);
    let data = Base64Bytes(chunk);
    let make = |_: &Home, _: &NodeEntry, now: u64| -> Result<Value> {
        let ttl = expires_ms.saturating_sub(now).clamp(rpc::MIN_TTL_MS, rpc::MAX_TTL_MS);
        Ok(Call::Store(StoreParams {
            pubkey: mailbox,
            namespace: Namespace::FILES,
            timestamp: now,
            ttl,
            data: data.clone(),
            pubkey_ed25519: Some(Hex32(*key.ed25519_pk())),
            signature: Some(Sig64(key.sign(&rpc::store_signed_bytes(Namespace::FILES, now, &hash)))),
            credential: None,
            chunk: Some(index),
        })
        .to_json())
    };
    let mut avoid = HashSet::new();
    let mut last = String::new();
    for _ in 0..TRIES_PER_CHUNK {
        let (status, body, node) = m.call(&mailbox, &make, CHUNK_TIMEOUT, None, &avoid).await?;
        match status {
            200 => return Ok(()),
            400 | 401 | 413 => {
                return Err(Error::File(format!(
                    "a node refused chunk {index}: {}",
                    refusal(status, &body)
                )));
            }
            _ => {
                last = refusal(status, &body);
                avoid.insert(node.ed25519.0);
            }
        }
    }
    Err(Error::File(format!(
        "no member of its swarm took chunk {index} (last: {last}); run the command again to go on"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_read_whole_gives_its_digest_and_a_changed_one_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let data: Vec<u8> = (0..150_000u32).map(|i| (i % 249) as u8).collect();
        std::fs::write(&path, &data).unwrap();
        let mut blocks = Vec::new();
        let digest = read_blocks(&path, data.len() as u64, |i, b| {
            blocks.push((i, b.len()));
            true
        })
        .unwrap();
        assert_eq!(digest, allium_common::files::digest(&data));
        assert_eq!(blocks, [(0, 65_536), (1, 65_536), (2, 150_000 - 131_072)]);
        // Shorter or longer than the size the upload began with.
        for size in [data.len() as u64 + 1, data.len() as u64 - 1] {
            let e = read_blocks(&path, size, |_, _| true).unwrap_err();
            assert!(e.to_string().contains("changed"), "{size}: {e}");
        }
        // An empty file is one empty block.
        std::fs::write(&path, b"").unwrap();
        let mut calls = 0;
        read_blocks(&path, 0, |_, b| {
            calls += 1;
            b.is_empty()
        })
        .unwrap();
        assert_eq!(calls, 1);
    }
}
