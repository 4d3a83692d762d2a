//! Fetching a file: its chunks into a part file (several at once,
//! resumable), then decrypted in order into the chosen directory. A chunk
//! that does not decrypt is fetched again from another member of its
//! swarm.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use allium_common::MailboxId;
use allium_common::encoding::from_base64;
use allium_common::files::{CHUNK_LEN, ChunkId, Decryptor, Manifest, StreamError};
use allium_common::node_list::NodeEntry;
use allium_common::rpc::{Call, Namespace, RetrievePublicParams};
use allium_common::sodium::Blake2b256;
use serde_json::Value;
use tokio::sync::mpsc;

use super::{CHUNK_TIMEOUT, ChunkSet, OnProgress, Progress, SAVE_EVERY, refusal, save, workers};
use crate::error::{Error, Result};
use crate::home::Home;
use crate::messenger::Messenger;

/// Most members of a chunk's swarm asked for it (more than a swarm has).
const MAX_MEMBERS_ASKED: usize = 16;

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Where the chunks of message `hash`'s file `index` wait: a name made
/// from the hash (which holds `/` and `+`), in the home's `files`.
fn part_path(home: &Home, hash: &str, index: u32) -> PathBuf {
    let tag: [u8; 16] = allium_common::sodium::blake2b(&[hash.as_bytes()]);
    home.dir()
        .join("files")
        .join(format!("{}-{index}.chunks", hex::encode(tag)))
}

/// A download's part file and what it holds.
struct Fetch<'a> {
    part: &'a Path,
    file: &'a std::fs::File,
    held: &'a mut ChunkSet,
    hash: &'a str,
    index: u32,
}

/// A file fetched, checked and written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Saved {
    /// Where it was written.
    pub path: PathBuf,
    /// How many chunks did not decrypt and were fetched again elsewhere.
    pub refetched: u32,
}

impl Messenger {
    /// Fetches file `index` of message `hash`, checks it, and writes it
    /// into `dir` under a safe form of the sender's name (numbered if the
    /// name is taken). Returns where. An interrupted download resumes with
    /// the chunks already fetched.
    pub async fn download_file(
        &mut self,
        hash: &str,
        index: u32,
        dir: &Path,
        on_progress: OnProgress<'_>,
    ) -> Result<Saved> {
        let file = self
            .home
            .files_of(hash)?
            .into_iter()
            .find(|f| f.index == index)
            .ok_or_else(|| Error::Usage(format!("no file {index} in message {hash}")))?;
        let manifest = file.manifest;
        let chunks = manifest.chunks();
        let files_dir = self.home.dir().join("files");
        std::fs::create_dir_all(&files_dir).map_err(io_error(&files_dir))?;
        let (part, mut held) = match self.home.download(hash, index, chunks)? {
            Some(found) if found.0.exists() => found,
            _ => (part_path(&self.home, hash, index), ChunkSet::empty(chunks)),
        };
        let part_file = std::fs::File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&part)
            .map_err(io_error(&part))?;
        part_file
            .set_len(u64::from(chunks) * CHUNK_LEN as u64)
            .map_err(io_error(&part))?;
        self.home.put_download(hash, index, &part, &held)?;
        self.nodes().await?;
        // Which member served each chunk fetched in this run.
        let mut served: HashMap<u32, [u8; 32]> = HashMap::new();
        let mut fetch = Fetch {
            part: &part,
            file: &part_file,
            held: &mut held,
            hash,
            index,
        };
        self.fetch_missing(&manifest, &mut fetch, &mut served, on_progress)
            .await?;
        let (temp, refetched) = self
            .decrypt_part(&manifest, &part, &part_file, &mut served, dir)
            .await?;
        let placed = save::place(&temp, dir, &manifest.name).map_err(io_error(dir))?;
        self.home.set_file_saved(hash, index, &placed)?;
        self.home.forget_download(hash, index)?;
        let _ = std::fs::remove_file(&part);
        Ok(Saved {
            path: placed,
            refetched,
        })
    }

    /// Decrypts the part file in order into a new temporary file in `dir`
    /// and checks the whole file's digest. A chunk that does not decrypt
    /// is fetched again from another member of its swarm (the decryptor
    /// stays where it was) until one gives the true chunk. Returns the
    /// temporary file and how many chunks were fetched again.
    async fn decrypt_part(
        &mut self,
        manifest: &Manifest,
        part: &Path,
        part_file: &std::fs::File,
        served: &mut HashMap<u32, [u8; 32]>,
        dir: &Path,
    ) -> Result<(PathBuf, u32)> {
        let mut decryptor =
            Decryptor::new(&manifest.key, &manifest.header, manifest.size).map_err(|e| Error::File(e.to_string()))?;
        let (temp, mut output) = save::temp_file(dir).map_err(io_error(dir))?;
        // Whatever goes wrong, the temporary file goes.
        let result = async {
            let mut hasher = Blake2b256::new();
            let mut chunk = vec![0u8; CHUNK_LEN];
            let mut refetched = 0;
            let mut i = 0u32;
            while !decryptor.is_done() {
                let offset = u64::from(i) * CHUNK_LEN as u64;
                part_file.read_exact_at(&mut chunk, offset).map_err(io_error(part))?;
                let mut avoid = HashSet::new();
                let plain = loop {
                    match decryptor.pull(&chunk) {
                        Ok(plain) => break plain,
                        Err(StreamError::Damaged(_)) if avoid.len() < MAX_MEMBERS_ASKED => {
                            tracing::info!(
                                chunk = i,
                                "a fetched chunk does not decrypt; fetching it again elsewhere"
                            );
                            refetched += 1;
                            avoid.extend(served.remove(&i));
                            let (fresh, node) = fetch_chunk(self, &manifest.upload_pk, i, avoid.clone()).await?;
                            avoid.insert(node);
                            served.insert(i, node);
                            part_file.write_all_at(&fresh, offset).map_err(io_error(part))?;
                            chunk = fresh;
                        }
                        Err(e) => {
                            return Err(Error::File(format!("{e}; no member of its swarm holds it whole")));
                        }
                    }
                };
                hasher.update(&plain);
                output.write_all(&plain).map_err(io_error(&temp))?;
                i += 1;
            }
            output.sync_all().map_err(io_error(&temp))?;
            if hasher.finish() != manifest.digest {
                return Err(Error::File(
                    "the file decrypts but its digest is not the one its message named: the sender's file \
                     is not what the message described"
                        .into(),
                ));
            }
            Ok(refetched)
        }
        .await;
        match result {
            Ok(refetched) => Ok((temp, refetched)),
            Err(e) => {
                let _ = std::fs::remove_file(&temp);
                Err(e)
            }
        }
    }

    /// Fetches every chunk the part file lacks into it.
    async fn fetch_missing(
        &mut self,
        manifest: &Manifest,
        fetch: &mut Fetch<'_>,
        served: &mut HashMap<u32, [u8; 32]>,
        on_progress: OnProgress<'_>,
    ) -> Result<()> {
        let Fetch {
            part: part_path,
            file: part,
            held,
            hash,
            index,
        } = fetch;
        let (part_path, hash, index) = (*part_path, *hash, *index);
        let progress = |held: &ChunkSet| Progress {
            done: held.count(),
            total: held.len(),
            size: manifest.size,
        };
        on_progress(progress(held));
        let missing: Vec<u32> = held.missing().collect();
        if missing.is_empty() {
            return Ok(());
        }
        // No more sessions than chunks to fetch: each opens the home and
        // loads the node list.
        let sessions = self.file_parallelism.min(missing.len());
        let (job_tx, job_rx) = mpsc::channel(missing.len());
        for i in missing {
            // Never full: the channel holds them all.
            let _ = job_tx.try_send((i, HashSet::new()));
        }
        drop(job_tx);
        let upload_pk = manifest.upload_pk;
        let mut results = workers::spawn(self, sessions, job_rx, move |mut m, (i, avoid)| async move {
            let result = fetch_chunk(&mut m, &upload_pk, i, avoid).await;
            (m, (i, result))
        })?;
        let mut failure = None;
        let mut unsaved = 0;
        while let Some((i, result)) = results.recv().await {
            match result {
                Ok((chunk, node)) => {
                    part.write_all_at(&chunk, u64::from(i) * CHUNK_LEN as u64)
                        .map_err(io_error(part_path))?;
                    held.insert(i);
                    served.insert(i, node);
                    unsaved += 1;
                    if unsaved >= SAVE_EVERY {
                        part.sync_data().map_err(io_error(part_path))?;
                        self.home.put_download(hash, index, part_path, held)?;
                        unsaved = 0;
                    }
                    on_progress(progress(held));
                }
                Err(e) => {
                    failure.get_or_insert(e);
                }
            }
        }
        part.sync_data().map_err(io_error(part_path))?;
        self.home.put_download(hash, index, part_path, held)?;
        match failure {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

/// Fetches chunk `index` of the upload `upload_pk` from a member of its
/// swarm (not one in `avoid`); a member that lacks it, or answers
/// something that is not a chunk, is left for another.
async fn fetch_chunk(
    m: &mut Messenger,
    upload_pk: &[u8; 32],
    index: u32,
    mut avoid: HashSet<[u8; 32]>,
) -> Result<(Vec<u8>, [u8; 32])> {
    let mailbox: MailboxId = ChunkId::of(upload_pk, index).into();
    let make = |_: &Home, _: &NodeEntry, _: u64| -> Result<Value> {
        Ok(Call::RetrievePublic(RetrievePublicParams {
            pubkey: mailbox,
            namespace: Namespace::FILES,
            last_hash: None,
            max_count: Some(1),
            max_size: None,
        })
        .to_json())
    };
    let mut last = String::new();
    // Every member may be asked: a chunk lost or damaged on most of them
    // is still whole on one.
    for _ in 0..MAX_MEMBERS_ASKED {
        let (status, body, node) = match m.call(&mailbox, &make, CHUNK_TIMEOUT, None, &avoid).await {
            Ok(answer) => answer,
            Err(e) if last.is_empty() => return Err(e),
            Err(_) => break,
        };
        let chunk = body["messages"][0]["data"].as_str().and_then(|d| from_base64(d).ok());
        match (status, chunk) {
            (200, Some(chunk)) if chunk.len() == CHUNK_LEN => return Ok((chunk, node.ed25519.0)),
            (200, Some(_)) => last = "a node answered something that is not a chunk".into(),
            (200, None) => last = "a node does not hold it".into(),
            _ => last = refusal(status, &body),
        }
        avoid.insert(node.ed25519.0);
    }
    Err(Error::File(format!(
        "chunk {index} could not be fetched (last: {last}); it may have expired, or been deleted by its sender"
    )))
}
