//! Ending a file before its time: the sender deletes its chunks with the
//! upload key (`unsend`). Chunks that share a swarm go in one `batch`.

use std::collections::BTreeMap;

use allium_common::encoding::{Hex32, Sig64};
use allium_common::files::ChunkId;
use allium_common::node_list::NodeEntry;
use allium_common::rpc::{self, Call, DeleteAllParams, MAX_SUBREQUESTS, Namespace, Request};
use allium_common::{Identity, MailboxId};
use serde_json::Value;
use tokio::sync::mpsc;

use super::{CHUNK_TIMEOUT, workers};
use crate::error::Result;
use crate::home::{Home, UploadRecord};
use crate::messenger::Messenger;

impl Messenger {
    /// Deletes the chunks of `upload` from their swarms; returns how many
    /// a node said it deleted. Chunks that cannot be reached now are left
    /// to expire.
    pub async fn delete_upload(&mut self, upload: &UploadRecord) -> Result<usize> {
        let key = Identity::from_ed25519_seed(&upload.seed);
        let ring = self.nodes().await?.list.swarm_ring();
        // Chunk indexes by swarm, in batches a node takes at once.
        let mut by_swarm: BTreeMap<_, Vec<u32>> = BTreeMap::new();
        for i in 0..upload.done.len() {
            let mailbox: MailboxId = ChunkId::of(key.ed25519_pk(), i).into();
            by_swarm.entry(ring.swarm_of(&mailbox)).or_default().push(i);
        }
        let batches: Vec<Vec<u32>> = by_swarm
            .into_values()
            .flat_map(|indexes| indexes.chunks(MAX_SUBREQUESTS).map(<[u32]>::to_vec).collect::<Vec<_>>())
            .collect();
        let sessions = self.file_parallelism.min(batches.len());
        let (job_tx, job_rx) = mpsc::channel(batches.len().max(1));
        for batch in batches {
            let _ = job_tx.try_send(batch);
        }
        drop(job_tx);
        let seed = upload.seed.clone();
        let mut results = workers::spawn(self, sessions, job_rx, move |mut m, batch: Vec<u32>| {
            let seed = seed.clone();
            async move {
                let result = delete_batch(&mut m, &Identity::from_ed25519_seed(&seed), &batch).await;
                (m, result)
            }
        })?;
        let mut deleted = 0;
        while let Some(result) = results.recv().await {
            match result {
                Ok(n) => deleted += n,
                Err(e) => tracing::debug!(error = %e, "some chunks stay until they expire"),
            }
        }
        Ok(deleted)
    }
}

/// Deletes the chunks `indexes` (all of one swarm) in one `batch`.
async fn delete_batch(m: &mut Messenger, key: &Identity, indexes: &[u32]) -> Result<usize> {
    let Some(&first) = indexes.first() else {
        return Ok(0);
    };
    let swarm_key: MailboxId = ChunkId::of(key.ed25519_pk(), first).into();
    let make = |_: &Home, _: &NodeEntry, now: u64| -> Result<Value> {
        let signature = Sig64(key.sign(&rpc::delete_all_signed_bytes(Namespace::FILES, now)));
        let calls = indexes
            .iter()
            .map(|&i| {
                Call::DeleteAll(DeleteAllParams {
                    pubkey: ChunkId::of(key.ed25519_pk(), i).into(),
                    pubkey_ed25519: Hex32(*key.ed25519_pk()),
                    namespace: Namespace::FILES,
                    timestamp: now,
                    signature,
                    chunk: Some(i),
                })
            })
            .collect();
        Ok(Request::Batch(calls).to_json())
    };
    let (status, body, _) = m
        .call(&swarm_key, &make, CHUNK_TIMEOUT, None, &Default::default())
        .await?;
    if status != 200 {
        return Ok(0);
    }
    Ok(body["results"].as_array().map_or(0, |r| {
        r.iter()
            .filter_map(|r| r["body"]["deleted"].as_array())
            .map(Vec::len)
            .sum()
    }))
}
