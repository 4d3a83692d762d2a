//! File chunks on a real local network (seed + 5 node processes): the
//! upload key stores a chunk at its ID, the chunk's swarm replicates it,
//! anyone who names it reads it, only the upload key deletes it, and a
//! node over its files quota or per-file limit says so
//! (`docs/files.md`, `docs/protocol.md` §5.7).
#![allow(clippy::unwrap_used)]

mod support;

use std::time::{Duration, Instant};

use allium_common::encoding::{Base64Bytes, Hex32, Sig64};
use allium_common::files::{CHUNK_LEN, ChunkId};
use allium_common::rpc::{self, Call, DeleteAllParams, Namespace, RetrievePublicParams, StoreParams};
use allium_common::{Identity, MailboxId};
use serde_json::Value;
use support::*;

const DAY: u64 = 24 * 3600 * 1000;

fn chunk_mailbox(upload: &Identity, index: u32) -> MailboxId {
    ChunkId::of(upload.ed25519_pk(), index).into()
}

/// Chunk `index` of `upload`'s file, `data` signed by `signer`.
fn store_chunk(upload: &Identity, index: u32, data: &[u8], signer: &Identity) -> Value {
    let mailbox = chunk_mailbox(upload, index);
    let ts = now_ms();
    let hash = rpc::message_hash(&mailbox, Namespace::FILES, data);
    Call::Store(StoreParams {
        pubkey: mailbox,
        namespace: Namespace::FILES,
        timestamp: ts,
        ttl: DAY,
        data: Base64Bytes(data.to_vec()),
        pubkey_ed25519: Some(Hex32(*signer.ed25519_pk())),
        signature: Some(Sig64(signer.sign(&rpc::store_signed_bytes(
            Namespace::FILES,
            ts,
            &hash,
        )))),
        credential: None,
        chunk: Some(index),
    })
    .to_json()
}

fn read_chunk(upload: &Identity, index: u32) -> Value {
    Call::RetrievePublic(RetrievePublicParams {
        pubkey: chunk_mailbox(upload, index),
        namespace: Namespace::FILES,
        last_hash: None,
        max_count: None,
        max_size: None,
    })
    .to_json()
}

fn delete_chunk(upload: &Identity, index: u32, signer: &Identity) -> Value {
    let ts = now_ms();
    Call::DeleteAll(DeleteAllParams {
        pubkey: chunk_mailbox(upload, index),
        pubkey_ed25519: Hex32(*signer.ed25519_pk()),
        namespace: Namespace::FILES,
        timestamp: ts,
        signature: Sig64(signer.sign(&rpc::delete_all_signed_bytes(Namespace::FILES, ts))),
        chunk: Some(index),
    })
    .to_json()
}

fn data_of(body: &Value) -> Vec<Vec<u8>> {
    body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let text = m["data"].as_str().unwrap();
            serde_json::from_value::<Base64Bytes>(Value::String(text.to_owned()))
                .unwrap()
                .0
        })
        .collect()
}

/// Waits until `node` answers `read` with `expected` chunks.
async fn wait_for_count(net: &Net, node: &str, read: &Value, expected: usize) -> Value {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (status, body) = net.rpc(node, read).await;
        assert_eq!(status, 200, "{body}");
        if data_of(&body).len() == expected {
            return body;
        }
        assert!(Instant::now() < deadline, "{node}: {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunks_live_on_their_own_swarm_and_only_their_upload_key_changes_them() {
    // Files of at most 8 chunks.
    let net = Net::start_with(5, &format!("[limits]\nmax_file_bytes = {}\n", 8 * 65_536)).await;
    let upload = identity(0x71);
    let stranger = identity(0x72);
    let chunk: Vec<u8> = (0..CHUNK_LEN).map(|i| (i % 251) as u8).collect();

    // Stored at one member of the chunk's swarm, read at another.
    let swarm = net.swarm_of(&chunk_mailbox(&upload, 0)).await;
    assert!(swarm.len() >= 2, "the test needs two swarm members");
    let (a, b) = (swarm[0].address.clone(), swarm[1].address.clone());
    let (status, body) = net.rpc(&a, &store_chunk(&upload, 0, &chunk, &upload)).await;
    assert_eq!(status, 200, "{body}");
    let read = read_chunk(&upload, 0);
    let body = wait_for_count(&net, &b, &read, 1).await;
    assert_eq!(data_of(&body), std::slice::from_ref(&chunk));

    // Another key at the same chunk ID, and the upload key with other data
    // there, are refused; the stored chunk stays as it was.
    let (status, body) = net.rpc(&a, &store_chunk(&upload, 0, &chunk, &stranger)).await;
    assert_eq!(status, 401, "{body}");
    let mut other = chunk.clone();
    other[0] ^= 1;
    let (status, body) = net.rpc(&a, &store_chunk(&upload, 0, &other, &upload)).await;
    assert_eq!(status, 507, "{body}");
    let (_, body) = net.rpc(&a, &read).await;
    assert_eq!(data_of(&body), std::slice::from_ref(&chunk));

    // A chunk past the operator's largest file: 413, saying why.
    let far = net.swarm_of(&chunk_mailbox(&upload, 8)).await[0].address.clone();
    let (status, body) = net.rpc(&far, &store_chunk(&upload, 8, &chunk, &upload)).await;
    assert_eq!(status, 413, "{body}");
    assert!(body["message"].as_str().unwrap().contains("files of up to"), "{body}");

    // A stranger's delete does nothing; the upload key's empties the chunk
    // on every member of its swarm.
    let (status, _) = net.rpc(&a, &delete_chunk(&upload, 0, &stranger)).await;
    assert_eq!(status, 401);
    let (status, body) = net.rpc(&a, &delete_chunk(&upload, 0, &upload)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["deleted"].as_array().unwrap().len(), 1, "{body}");
    for member in &swarm {
        wait_for_count(&net, &member.address, &read, 0).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_over_its_files_quota_refuses_chunks_with_507() {
    let net = Net::start_with(3, &format!("[limits]\nmax_files_bytes = {}\n", 2 * CHUNK_LEN)).await;
    let upload = identity(0x73);
    let chunk = vec![9u8; CHUNK_LEN];
    // With 3 nodes every swarm is the whole network: the third chunk finds
    // every node full.
    let node = net.swarm_of(&chunk_mailbox(&upload, 0)).await[0].address.clone();
    for index in 0..2 {
        let (status, body) = net.rpc(&node, &store_chunk(&upload, index, &chunk, &upload)).await;
        assert_eq!(status, 200, "chunk {index}: {body}");
    }
    let (status, body) = net.rpc(&node, &store_chunk(&upload, 2, &chunk, &upload)).await;
    assert_eq!(status, 507, "{body}");
    assert!(body["message"].as_str().unwrap().contains("files quota"), "{body}");
    assert_eq!(net.metric(&node, "allium_file_bytes").await, 2 * CHUNK_LEN as u64);
    // Messages still go in: the quota is the files' own.
    let owner = identity(0x74);
    let (status, body) = net.rpc(&node, &store(&owner.account_id(), b"still room", DAY)).await;
    assert_eq!(status, 200, "{body}");
}
