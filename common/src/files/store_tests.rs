//! What a node checks of a chunk's `store` and `delete_all` (the rules
//! live in `rpc::request`; they are tested here, beside the chunk IDs).

use crate::Identity;
use crate::encoding::{Base64Bytes, Hex32, Sig64};
use crate::files::{CHUNK_LEN, ChunkId, MAX_FILE_CHUNKS};
use crate::mailbox::MailboxId;
use crate::rpc::{
    Call, DeleteAllParams, MIN_TTL_MS, Namespace, RetrievePublicParams, RpcError, StoreParams, delete_all_signed_bytes,
    message_hash, store_signed_bytes,
};

const NOW: u64 = 1_700_000_000_000;

fn upload_key() -> Identity {
    Identity::from_ed25519_seed(&[0x41; 32])
}

/// A store of `data` as chunk `index`, into `mailbox`, signed by `signer`.
fn store_as(mailbox: MailboxId, index: Option<u32>, data: &[u8], signer: &Identity) -> StoreParams {
    let hash = message_hash(&mailbox, Namespace::FILES, data);
    StoreParams {
        pubkey: mailbox,
        namespace: Namespace::FILES,
        timestamp: NOW,
        ttl: MIN_TTL_MS,
        data: Base64Bytes(data.to_vec()),
        pubkey_ed25519: Some(Hex32(*signer.ed25519_pk())),
        signature: Some(Sig64(signer.sign(&store_signed_bytes(Namespace::FILES, NOW, &hash)))),
        credential: None,
        chunk: index,
    }
}

fn store(index: u32, data: &[u8]) -> Call {
    let key = upload_key();
    Call::Store(store_as(
        ChunkId::of(key.ed25519_pk(), index).into(),
        Some(index),
        data,
        &key,
    ))
}

fn param(e: Result<(), RpcError>) -> Option<&'static str> {
    match e {
        Err(RpcError::InvalidParam { param, .. }) => Some(param),
        _ => None,
    }
}

#[test]
fn the_upload_key_stores_a_whole_chunk_at_its_own_id() {
    let chunk = vec![7; CHUNK_LEN];
    assert_eq!(store(0, &chunk).validate(NOW), Ok(()));
    assert_eq!(store(MAX_FILE_CHUNKS - 1, &chunk).validate(NOW), Ok(()));
}

#[test]
fn a_chunk_under_another_index_or_key_is_refused() {
    let chunk = vec![7; CHUNK_LEN];
    let key = upload_key();
    // Chunk 1's ID claimed as chunk 2.
    let moved = store_as(ChunkId::of(key.ed25519_pk(), 1).into(), Some(2), &chunk, &key);
    assert_eq!(Call::Store(moved).validate(NOW), Err(RpcError::KeyMismatch));
    // A stranger's key at the upload's chunk ID.
    let stranger = Identity::from_ed25519_seed(&[0x42; 32]);
    let squat = store_as(ChunkId::of(key.ed25519_pk(), 1).into(), Some(1), &chunk, &stranger);
    assert_eq!(Call::Store(squat).validate(NOW), Err(RpcError::KeyMismatch));
    // The right key and index, signed for other data.
    let Call::Store(mut swapped) = store(3, &chunk) else {
        unreachable!()
    };
    swapped.data = Base64Bytes(vec![8; CHUNK_LEN]);
    assert_eq!(Call::Store(swapped).validate(NOW), Err(RpcError::BadSignature));
}

#[test]
fn chunks_are_whole_records_of_a_file_of_at_most_one_gib() {
    assert_eq!(param(store(0, &[7; 100]).validate(NOW)), Some("data"));
    assert_eq!(param(store(0, &vec![7; CHUNK_LEN + 1]).validate(NOW)), Some("data"));
    assert_eq!(
        param(store(MAX_FILE_CHUNKS, &vec![7; CHUNK_LEN]).validate(NOW)),
        Some("chunk")
    );
    let key = upload_key();
    let unnamed = store_as(ChunkId::of(key.ed25519_pk(), 0).into(), None, &vec![7; CHUNK_LEN], &key);
    assert_eq!(param(Call::Store(unnamed).validate(NOW)), Some("chunk"));
}

#[test]
fn chunks_and_accounts_keep_to_their_own_namespaces_and_parameters() {
    let key = upload_key();
    let account: MailboxId = key.account_id().into();
    // An account's store with a chunk index.
    let into_account = StoreParams {
        namespace: Namespace(1),
        ..store_as(account, Some(0), b"x", &key)
    };
    assert_eq!(param(Call::Store(into_account).validate(NOW)), Some("chunk"));
    // An account's own store into namespace 16.
    let account_16 = store_as(account, None, b"x", &key);
    assert_eq!(param(Call::Store(account_16).validate(NOW)), Some("namespace"));
    // A chunk outside namespace 16.
    let Call::Store(mut chunk_0) = store(0, &vec![7; CHUNK_LEN]) else {
        unreachable!()
    };
    chunk_0.namespace = Namespace(0);
    assert_eq!(param(Call::Store(chunk_0.clone()).validate(NOW)), Some("namespace"));
    // A credential on a chunk.
    chunk_0.namespace = Namespace::FILES;
    chunk_0.credential = Some(Base64Bytes(vec![0; 139]));
    assert_eq!(param(Call::Store(chunk_0).validate(NOW)), Some("credential"));
}

#[test]
fn anyone_who_names_a_chunk_reads_it() {
    let read = |namespace| {
        Call::RetrievePublic(RetrievePublicParams {
            pubkey: ChunkId::of(upload_key().ed25519_pk(), 5).into(),
            namespace,
            last_hash: None,
            max_count: None,
            max_size: None,
        })
        .validate(NOW)
    };
    assert_eq!(read(Namespace::FILES), Ok(()));
    assert_eq!(param(read(Namespace(0))), Some("namespace"));
}

#[test]
fn only_the_upload_key_deletes_a_chunk() {
    let delete = |signer: &Identity, index: Option<u32>| {
        let key = upload_key();
        Call::DeleteAll(DeleteAllParams {
            pubkey: ChunkId::of(key.ed25519_pk(), 9).into(),
            pubkey_ed25519: Hex32(*signer.ed25519_pk()),
            namespace: Namespace::FILES,
            timestamp: NOW,
            signature: Sig64(signer.sign(&delete_all_signed_bytes(Namespace::FILES, NOW))),
            chunk: index,
        })
        .validate(NOW)
    };
    assert_eq!(delete(&upload_key(), Some(9)), Ok(()));
    assert_eq!(delete(&upload_key(), Some(8)), Err(RpcError::KeyMismatch));
    let stranger = Identity::from_ed25519_seed(&[0x43; 32]);
    assert_eq!(delete(&stranger, Some(9)), Err(RpcError::KeyMismatch));
    assert_eq!(param(delete(&upload_key(), None)), Some("chunk"));
}
