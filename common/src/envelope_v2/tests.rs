//! Envelope v2: limits, round trip, and each refusal.

use super::*;
use crate::envelope;
use crate::keys::AccountKeyPair;

fn alice() -> Identity {
    Identity::from_ed25519_seed(&[0xa1; 32])
}
fn bob() -> Identity {
    Identity::from_ed25519_seed(&[0xb0; 32])
}
fn bob_key() -> AccountKeyPair {
    AccountKeyPair::from_seed(&[0xc2; 32])
}
fn published() -> PublishedKey {
    bob_key().publish(0, 86_400_000)
}
/// Bob's device: holds the secret of `bob_key` and no other.
fn bob_secrets(id: &KeyId) -> Option<Secret32> {
    let key = bob_key();
    (*id == key.key_id()).then(|| key.secret_key().clone())
}
fn sealed(text: &str) -> Vec<u8> {
    seal(
        &alice(),
        &bob().account_id(),
        &published(),
        &Content::text(text, 1),
        &[5; 64],
    )
    .unwrap()
}

#[test]
fn limits_add_up() {
    assert_eq!(HEADER_LEN, 1_129);
    assert_eq!(ENVELOPE_OVERHEAD, 1 + 8 + 1_120 + 16 + 32 + 64);
    assert_eq!(ENVELOPE_OVERHEAD, 1_241, "docs/envelope-v2.md");
    assert_eq!(MAX_PADDED_LEN, (76_800 - 1_241) / 160 * 160);
    assert_eq!(MAX_PADDED_LEN, 75_520);
    assert_eq!(MAX_CONTENT_LEN, 75_519);
    const { assert!(MAX_PADDED_LEN + ENVELOPE_OVERHEAD <= MAX_ENVELOPE_LEN) };
    let biggest = seal_bytes(
        &alice(),
        &bob().account_id(),
        &published(),
        &vec![b'x'; MAX_CONTENT_LEN],
        &[1; 64],
    )
    .unwrap();
    assert_eq!(biggest.len(), MAX_PADDED_LEN + ENVELOPE_OVERHEAD);
    assert_eq!(
        seal_bytes(
            &alice(),
            &bob().account_id(),
            &published(),
            &vec![0; MAX_CONTENT_LEN + 1],
            &[1; 64]
        ),
        Err(EnvelopeV2Error::TooLarge {
            len: MAX_CONTENT_LEN + 1,
            max: MAX_CONTENT_LEN
        })
    );
}

#[test]
fn a_one_line_message_is_1401_bytes() {
    let data = sealed("hello bob");
    assert_eq!(data.len(), 1_401);
    assert_eq!(data.len(), ENVELOPE_OVERHEAD + PAD_BLOCK);
}

#[test]
fn seal_then_open() {
    let content = Content::text("hello bob", 1_700_000_000_000);
    let data = seal(&alice(), &bob().account_id(), &published(), &content, &[7; 64]).unwrap();
    assert_eq!(data[0], ENVELOPE_V2);
    assert_eq!(key_id_of(&data), Some(bob_key().key_id()));
    let opened = open(&bob(), bob_secrets, &data).unwrap();
    assert_eq!(opened.sender, alice().account_id());
    assert_eq!(&opened.sender_ed25519, alice().ed25519_pk());
    assert_eq!(opened.content, content);
    // A fresh encapsulation seed gives another envelope that opens the same.
    let again = seal(&alice(), &bob().account_id(), &published(), &content, &[8; 64]).unwrap();
    assert_ne!(again, data);
    assert_eq!(open(&bob(), bob_secrets, &again).unwrap().content, content);
}

#[test]
fn every_flipped_byte_is_refused() {
    let data = sealed("tamper with me");
    let body_start = HEADER_LEN;
    let mut positions: Vec<usize> = vec![0, 1, 8, 9, 10, 500, 1_088, 1_089, HEADER_LEN - 1];
    positions.extend((body_start..data.len()).step_by(37));
    positions.push(data.len() - 1);
    for i in positions {
        let mut bad = data.clone();
        bad[i] ^= 0x40;
        let result = open(&bob(), bob_secrets, &bad);
        match i {
            0 => assert_eq!(result, Err(EnvelopeV2Error::Version(0x42)), "byte {i}"),
            1..=8 => assert!(matches!(result, Err(EnvelopeV2Error::UnknownKey(_))), "byte {i}"),
            _ => assert_eq!(result, Err(EnvelopeV2Error::Decrypt), "byte {i}"),
        }
    }
}

#[test]
fn a_key_id_pointing_to_another_held_key_does_not_decrypt() {
    // The id is rewritten to a key the device does hold: the AEAD refuses.
    let other = AccountKeyPair::from_seed(&[0xc3; 32]);
    let mut data = sealed("x");
    data[1..9].copy_from_slice(&other.key_id());
    let any = |_: &KeyId| Some(other.secret_key().clone());
    assert_eq!(open(&bob(), any, &data), Err(EnvelopeV2Error::Decrypt));
}

#[test]
fn a_message_for_another_account_fails_the_signature_check() {
    // Sealed to Bob's key, but the signed recipient is Carol: Bob's device
    // decrypts it and refuses it.
    let carol = Identity::from_ed25519_seed(&[0xc0; 32]);
    let data = seal(
        &alice(),
        &carol.account_id(),
        &published(),
        &Content::text("x", 1),
        &[5; 64],
    )
    .unwrap();
    assert_eq!(open(&bob(), bob_secrets, &data), Err(EnvelopeV2Error::BadSignature));
    // And Carol, given the key, refuses a message signed for Bob.
    assert_eq!(
        open(&carol, bob_secrets, &sealed("x")),
        Err(EnvelopeV2Error::BadSignature)
    );
}

#[test]
fn a_forged_sender_is_refused() {
    // Mallory signs, but the envelope claims Alice's key.
    let mallory = Identity::from_ed25519_seed(&[0x66; 32]);
    let key = published();
    let (ct, ss) = sodium::xwing_enc_deterministic(&key.public_key, &[3; 64]).unwrap();
    let header = header(&key.key_id(), &ct);
    let padded = pad(&Content::text("trust me", 1).to_bytes());
    let sig = mallory.sign(&signed_bytes(&bob().account_id(), &header, &padded));
    let inner = [alice().ed25519_pk().as_slice(), &sig, &padded].concat();
    let data = [
        header.clone(),
        sodium::xchacha_encrypt(&message_key(&ss, &header), &NONCE, &inner, &header),
    ]
    .concat();
    assert_eq!(open(&bob(), bob_secrets, &data), Err(EnvelopeV2Error::BadSignature));
}

#[test]
fn bad_padding_and_bad_content_are_refused() {
    // Correctly signed and sealed, but the plaintext is not pad(content).
    let seal_padded = |padded: &[u8]| {
        let key = published();
        let (ct, ss) = sodium::xwing_enc_deterministic(&key.public_key, &[3; 64]).unwrap();
        let header = header(&key.key_id(), &ct);
        let sig = alice().sign(&signed_bytes(&bob().account_id(), &header, padded));
        let inner = [alice().ed25519_pk().as_slice(), &sig, padded].concat();
        [
            header.clone(),
            sodium::xchacha_encrypt(&message_key(&ss, &header), &NONCE, &inner, &header),
        ]
        .concat()
    };
    assert_eq!(
        open(&bob(), bob_secrets, &seal_padded(&[0; 160])),
        Err(EnvelopeV2Error::Padding)
    );
    assert!(matches!(
        open(&bob(), bob_secrets, &seal_padded(&pad(b"not json"))),
        Err(EnvelopeV2Error::Content(_))
    ));
}

#[test]
fn an_unknown_key_id_is_reported() {
    let data = sealed("x");
    assert_eq!(
        open(&bob(), |_| None, &data),
        Err(EnvelopeV2Error::UnknownKey(bob_key().key_id()))
    );
    let shown = EnvelopeV2Error::UnknownKey(bob_key().key_id()).to_string();
    assert!(shown.contains(&hex::encode(bob_key().key_id())), "{shown}");
}

#[test]
fn v1_data_is_refused_as_a_version() {
    let v1 = envelope::seal(&alice(), &bob().account_id(), &Content::text("x", 1), &[7; 32]).unwrap();
    assert_eq!(open(&bob(), bob_secrets, &v1), Err(EnvelopeV2Error::Version(1)));
    assert_eq!(key_id_of(&v1), None);
    // And v1 reports v2 as a version it does not read.
    assert_eq!(
        envelope::open(&bob(), &sealed("x")),
        Err(envelope::EnvelopeError::Version(2))
    );
}

#[test]
fn version_and_length_errors() {
    assert_eq!(open(&bob(), bob_secrets, &[]), Err(EnvelopeV2Error::Empty));
    assert_eq!(open(&bob(), bob_secrets, &[3, 0]), Err(EnvelopeV2Error::Version(3)));
    assert_eq!(
        open(&bob(), bob_secrets, &[2; 100]),
        Err(EnvelopeV2Error::TooShort(100))
    );
    let data = sealed("x");
    assert_eq!(
        open(&bob(), bob_secrets, &data[..data.len() - 1]),
        Err(EnvelopeV2Error::TooShort(1_400))
    );
    assert_eq!(key_id_of(&data[..HEADER_LEN - 1]), None);
}

#[test]
fn an_unusable_recipient_key_is_refused_when_sealing() {
    let bad = PublishedKey::new(0, 1, [0xff; sodium::XWING_PUBLIC_KEY_LEN]);
    assert_eq!(
        seal(&alice(), &bob().account_id(), &bad, &Content::text("x", 1), &[5; 64]),
        Err(EnvelopeV2Error::RecipientKey)
    );
}

/// The X-Wing layout: ML-KEM-768 then X25519, in the public key (1,184 +
/// 32) and in the ciphertext (1,088 + 32).
const MLKEM_PK_LEN: usize = 1_184;
const MLKEM_CT_LEN: usize = 1_088;

/// A key with the ML-KEM half of `mlkem` and the X25519 half of `x25519`.
fn spliced(mlkem: &AccountKeyPair, x25519: &AccountKeyPair) -> PublishedKey {
    let mut pk = *mlkem.public_key();
    pk[MLKEM_PK_LEN..].copy_from_slice(&x25519.public_key()[MLKEM_PK_LEN..]);
    PublishedKey::new(0, 86_400_000, pk)
}

/// What a recorder with a quantum computer would need: the message key
/// depends on both halves. Sealed with one encapsulation seed to Bob's key
/// and to keys that share one half of it (so with the same X25519 or the
/// same ML-KEM shared secret as Bob's envelope), only Bob's own opens with
/// his secret: recovering the X25519 secret alone (or the ML-KEM one
/// alone) gives no message key.
#[test]
fn the_message_key_needs_both_the_ml_kem_and_the_x25519_secret() {
    let bob_key = bob_key();
    let other = AccountKeyPair::from_seed(&[0xc9; 32]);
    let content = Content::text("both halves", 1);
    let seal_to = |key: &PublishedKey| seal(&alice(), &bob().account_id(), key, &content, &[7; 64]).unwrap();
    let genuine = seal_to(&published());
    let same_x25519 = seal_to(&spliced(&other, &bob_key));
    let same_mlkem = seal_to(&spliced(&bob_key, &other));
    let ct = |data: &[u8]| data[1 + KEY_ID_LEN..HEADER_LEN].to_vec();
    assert_eq!(
        ct(&genuine)[MLKEM_CT_LEN..],
        ct(&same_x25519)[MLKEM_CT_LEN..],
        "one X25519 exchange"
    );
    assert_ne!(ct(&genuine)[..MLKEM_CT_LEN], ct(&same_x25519)[..MLKEM_CT_LEN]);
    // The X25519 half of a ciphertext is the ephemeral public key, the same
    // whichever key it went to; the ML-KEM half is the same too here.
    assert_eq!(
        ct(&genuine),
        ct(&same_mlkem),
        "one ML-KEM encapsulation, one ephemeral key"
    );
    let bobs = |_: &KeyId| Some(bob_key.secret_key().clone());
    assert!(open(&bob(), bobs, &genuine).is_ok());
    assert_eq!(open(&bob(), bobs, &same_x25519), Err(EnvelopeV2Error::Decrypt));
    assert_eq!(open(&bob(), bobs, &same_mlkem), Err(EnvelopeV2Error::Decrypt));
}
