//! Files: chunking and encryption round trips at the edges of a chunk, every
//! chunk the same size, deterministic chunks for a resumed upload, and every
//! way of tampering with the chunks refused; chunk IDs; the manifest.

use super::*;
use crate::sodium::SECRETSTREAM_HEADER_LEN;

const KEY: [u8; 32] = [0x5f; 32];
const HEADER: [u8; SECRETSTREAM_HEADER_LEN] = [0x3c; SECRETSTREAM_HEADER_LEN];

/// A file of `size` bytes that differs at every position.
fn file(size: usize) -> Vec<u8> {
    (0..size).map(|i| (i * 7 + i / 251) as u8).collect()
}

fn encrypt(plaintext: &[u8]) -> Vec<Vec<u8>> {
    let mut enc = Encryptor::new(&KEY, &HEADER, plaintext.len() as u64).unwrap();
    let mut chunks = Vec::new();
    if plaintext.is_empty() {
        chunks.push(enc.push(&[]).unwrap());
    }
    for piece in plaintext.chunks(RECORD_LEN) {
        chunks.push(enc.push(piece).unwrap());
    }
    assert_eq!(enc.next_index(), enc.chunks());
    chunks
}

fn decrypt(size: usize, chunks: &[Vec<u8>]) -> Result<Vec<u8>, StreamError> {
    let mut dec = Decryptor::new(&KEY, &HEADER, size as u64)?;
    let mut out = Vec::new();
    for c in chunks {
        out.extend_from_slice(&dec.pull(c)?);
    }
    assert!(dec.is_done(), "every chunk taken");
    Ok(out)
}

#[test]
fn files_round_trip_at_the_edges_of_a_chunk_in_chunks_of_one_size() {
    for size in [0, 1, RECORD_LEN - 1, RECORD_LEN, RECORD_LEN + 1, 3 * RECORD_LEN + 5] {
        let plaintext = file(size);
        let chunks = encrypt(&plaintext);
        assert_eq!(chunks.len() as u64, chunk_count(size as u64), "size {size}");
        assert!(chunks.iter().all(|c| c.len() == CHUNK_LEN), "size {size}");
        assert_eq!(decrypt(size, &chunks).unwrap(), plaintext, "size {size}");
    }
    assert_eq!(CHUNK_LEN, 65_553);
    assert_eq!(chunk_count(MAX_FILE_LEN), 16_384);
}

#[test]
fn the_same_key_and_header_give_the_same_chunks_so_an_upload_resumes() {
    let plaintext = file(2 * RECORD_LEN + 9);
    assert_eq!(encrypt(&plaintext), encrypt(&plaintext));
    let mut other = Encryptor::new(&KEY, &[0x3d; SECRETSTREAM_HEADER_LEN], plaintext.len() as u64).unwrap();
    assert_ne!(other.push(&plaintext[..RECORD_LEN]).unwrap(), encrypt(&plaintext)[0]);
}

#[test]
fn a_changed_moved_dropped_or_added_chunk_is_refused() {
    let size = 3 * RECORD_LEN + 5;
    let plaintext = file(size);
    let chunks = encrypt(&plaintext);

    let mut flipped = chunks.clone();
    flipped[1][100] ^= 1;
    assert_eq!(decrypt(size, &flipped), Err(StreamError::Damaged(1)));

    let mut swapped = chunks.clone();
    swapped.swap(1, 2);
    assert_eq!(decrypt(size, &swapped), Err(StreamError::Damaged(1)));

    // The last chunk dropped: what arrived decrypts, but the file is not
    // done; and the third chunk is no last chunk.
    let mut dec = Decryptor::new(&KEY, &HEADER, size as u64).unwrap();
    for c in &chunks[..3] {
        dec.pull(c).unwrap();
    }
    assert!(!dec.is_done());
    let shorter = Decryptor::new(&KEY, &HEADER, (3 * RECORD_LEN) as u64).unwrap();
    let mut shorter = shorter;
    for c in &chunks[..2] {
        shorter.pull(c).unwrap();
    }
    assert_eq!(shorter.pull(&chunks[2]), Err(StreamError::Final(2)));
    assert!(!shorter.is_done(), "a file cut short is never whole");

    // One chunk too many.
    let mut dec = Decryptor::new(&KEY, &HEADER, size as u64).unwrap();
    for c in &chunks {
        dec.pull(c).unwrap();
    }
    assert_eq!(dec.pull(&chunks[0]), Err(StreamError::Extra(4)));

    // Another file's chunk, and a chunk of the wrong length.
    let mut dec = Decryptor::new(&[0x60; 32], &HEADER, size as u64).unwrap();
    assert_eq!(dec.pull(&chunks[0]), Err(StreamError::Damaged(0)));
    assert_eq!(dec.pull(&chunks[0][1..]), Err(StreamError::ChunkLength(CHUNK_LEN - 1)));
}

#[test]
fn a_damaged_chunk_fetched_again_is_taken_in_its_place() {
    let size = 2 * RECORD_LEN;
    let chunks = encrypt(&file(size));
    let mut dec = Decryptor::new(&KEY, &HEADER, size as u64).unwrap();
    dec.pull(&chunks[0]).unwrap();
    let mut bad = chunks[1].clone();
    bad[CHUNK_LEN - 1] ^= 0x80;
    assert_eq!(dec.pull(&bad), Err(StreamError::Damaged(1)));
    assert_eq!(*dec.pull(&chunks[1]).unwrap(), file(size)[RECORD_LEN..]);
    assert!(dec.is_done());
}

#[test]
fn the_encryptor_takes_exactly_the_files_bytes() {
    let mut enc = Encryptor::new(&KEY, &HEADER, (RECORD_LEN + 3) as u64).unwrap();
    assert_eq!(
        enc.push(&file(RECORD_LEN - 1)),
        Err(StreamError::Overrun((RECORD_LEN + 3) as u64))
    );
    enc.push(&file(RECORD_LEN)).unwrap();
    assert!(enc.push(&file(4)).is_err(), "more than the file's last 3 bytes");
    enc.push(&file(3)).unwrap();
    assert_eq!(enc.push(&[]), Err(StreamError::Extra(2)));
    assert_eq!(
        Encryptor::new(&KEY, &HEADER, MAX_FILE_LEN + 1).map(|_| ()),
        Err(StreamError::TooLarge(MAX_FILE_LEN + 1))
    );
}

#[test]
fn chunk_ids_differ_per_index_and_upload_key() {
    let a = chunk_id(&[1; 32], 0);
    assert_ne!(a, chunk_id(&[1; 32], 1));
    assert_ne!(a, chunk_id(&[2; 32], 0));
    assert_eq!(a, chunk_id(&[1; 32], 0));
}

fn manifest() -> Manifest {
    Manifest {
        key: zeroize::Zeroizing::new(KEY),
        header: HEADER,
        upload_pk: [0x21; 32],
        size: 3 * RECORD_LEN as u64 + 5,
        digest: digest(&file(3 * RECORD_LEN + 5)),
        name: "holiday.jpg".into(),
        content_type: "image/jpeg".into(),
    }
}

#[test]
fn a_manifest_reads_back_and_its_chunk_count_must_be_its_sizes() {
    let m = manifest();
    let json = m.to_json();
    assert_eq!(json["chunks"], 4);
    assert_eq!(Manifest::from_json(&json).unwrap(), m);
    assert_eq!(m.chunk_id(3), chunk_id(&[0x21; 32], 3));
    assert!(
        !format!("{m:?}").contains(&crate::encoding::to_base64(&KEY)),
        "the key is not printed"
    );

    let edit = |f: &dyn Fn(&mut serde_json::Value)| {
        let mut j = m.to_json();
        f(&mut j);
        Manifest::from_json(&j)
    };
    assert!(matches!(edit(&|j| j["chunks"] = 5.into()), Err(ManifestError::Size(_))));
    assert!(matches!(
        edit(&|j| {
            j["size"] = (MAX_FILE_LEN + 1).into();
            j["chunks"] = chunk_count(MAX_FILE_LEN + 1).into();
        }),
        Err(ManifestError::Size(_))
    ));
    assert_eq!(edit(&|j| j["v"] = 2.into()), Err(ManifestError::Version(2)));
    assert!(matches!(
        edit(&|j| j["key"] = "AAAA".into()),
        Err(ManifestError::Malformed(_))
    ));
    assert!(matches!(
        edit(&|j| j["upload_pk"] = "zz".into()),
        Err(ManifestError::Malformed(_))
    ));
    assert!(matches!(
        edit(&|j| j["name"] = "x".repeat(256).into()),
        Err(ManifestError::Malformed(_))
    ));
    assert!(matches!(
        edit(&|j| j["extra"] = 1.into()),
        Err(ManifestError::Malformed(_))
    ));
}

#[test]
fn the_digest_of_pieces_is_the_digest_of_the_whole() {
    let data: Vec<u8> = (0..200_000u32).map(|i| (i % 253) as u8).collect();
    let mut hasher = crate::sodium::Blake2b256::new();
    for piece in data.chunks(65_536) {
        hasher.update(piece);
    }
    assert_eq!(hasher.finish(), super::digest(&data));
    assert_ne!(crate::sodium::Blake2b256::new().finish(), super::digest(&data));
}
