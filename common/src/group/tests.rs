//! Groups: the Group ID, a 1,000-member rekey, and group messages.

use zeroize::Zeroizing;

use super::keys::{ENTRY_BLOCK, ENTRY_LEN, GroupKeys, GroupKeysError, MAX_KEYS_LEN, MAX_MEMBERS};
use super::message::{self, GroupMessageError, MAX_CONTENT_LEN};
use super::*;
use crate::content::Content;
use crate::identity::Identity;
use crate::sodium;

fn group_key() -> Identity {
    Identity::from_ed25519_seed(&[0x91; 32])
}

fn group() -> GroupId {
    GroupId::from_ed25519(*group_key().ed25519_pk())
}

/// The account X25519 key pairs of `n` members.
fn members(n: usize) -> Vec<Identity> {
    (0..n)
        .map(|i| {
            let mut seed = [0u8; 32];
            seed[..8].copy_from_slice(&(i as u64).to_be_bytes());
            seed[31] = 0x5a;
            Identity::from_ed25519_seed(&seed)
        })
        .collect()
}

fn public(ids: &[Identity]) -> Vec<[u8; 32]> {
    ids.iter().map(|m| *m.x25519_pk()).collect()
}

#[test]
fn group_ids_read_and_print_with_the_03_prefix() {
    let id = group();
    let text = id.to_string();
    assert!(text.starts_with("03") && text.len() == 66, "{text}");
    assert_eq!(text.parse::<GroupId>(), Ok(id));
    let account = group_key().account_id().to_string();
    assert_eq!(
        account.parse::<GroupId>(),
        Err(GroupIdError),
        "an account's 05 ID is not a group's"
    );
    assert_eq!("03abcd".parse::<GroupId>(), Err(GroupIdError));
    assert_eq!(id.to_bytes()[0], 0x03);
}

#[test]
fn a_key_message_holds_at_most_1575_members_in_one_stored_message() {
    assert_eq!(MAX_MEMBERS, 1_575);
    let full = 1 + 33 + 4 + 32 + 2 + MAX_MEMBERS * ENTRY_LEN + 64;
    assert!(full <= MAX_KEYS_LEN, "{full}");
    assert!(
        full + ENTRY_BLOCK * ENTRY_LEN > MAX_KEYS_LEN,
        "one more block would not fit"
    );
    let too_many = vec![[9u8; 32]; MAX_MEMBERS + 1];
    assert_eq!(
        GroupKeys::seal(&group_key(), 1, &[1; 32], &too_many, &[2; 32], &[3; 32]),
        Err(GroupKeysError::MemberCount(MAX_MEMBERS + 1))
    );
    assert_eq!(
        GroupKeys::seal(&group_key(), 1, &[1; 32], &[], &[2; 32], &[3; 32]),
        Err(GroupKeysError::MemberCount(0))
    );
}

/// The issue's scale: a 1,000-member group is rekeyed in one message that
/// every member opens to the same key, whose size tells the member count
/// only to within 75, and that an outsider cannot open. Removing member 0
/// rekeys without it: the others get the new key, it does not.
#[test]
fn a_thousand_member_rekey_fits_one_message_and_every_member_opens_it_and_what_is_sent_after() {
    let people = members(1_000);
    let key = [0x4b; 32];
    let bytes = GroupKeys::seal(&group_key(), 7, &key, &public(&people), &[5; 32], &[6; 32]).unwrap();
    assert_eq!(
        bytes.len(),
        1 + 33 + 4 + 32 + 2 + 1_050 * 48 + 64,
        "1,050 entries: 50,536 bytes"
    );
    assert!(bytes.len() <= MAX_KEYS_LEN);
    let keys = GroupKeys::decode(&bytes, &group()).unwrap();
    assert_eq!((keys.generation, keys.entries()), (7, 1_050));
    for m in &people {
        assert_eq!(*keys.open(m.x25519_sk(), m.x25519_pk()).unwrap(), key);
    }
    let outsider = Identity::from_ed25519_seed(&[0x77; 32]);
    assert_eq!(
        keys.open(outsider.x25519_sk(), outsider.x25519_pk()),
        Err(GroupKeysError::NotAMember)
    );
    let sizes: Vec<usize> = [1, 75, 76, 150]
        .iter()
        .map(|&n| {
            GroupKeys::seal(&group_key(), 1, &key, &public(&people[..n]), &[5; 32], &[6; 32])
                .unwrap()
                .len()
        })
        .collect();
    assert_eq!(sizes[0], sizes[1], "1 and 75 members look the same");
    assert_eq!(sizes[2], sizes[3], "so do 76 and 150");
    assert_eq!(sizes[2] - sizes[1], 75 * 48);

    let new_key = [0x4c; 32];
    let rekey = GroupKeys::seal(&group_key(), 8, &new_key, &public(&people[1..]), &[8; 32], &[9; 32]).unwrap();
    let rekey = GroupKeys::decode(&rekey, &group()).unwrap();
    assert_eq!(
        rekey.open(people[0].x25519_sk(), people[0].x25519_pk()),
        Err(GroupKeysError::NotAMember),
        "the removed member gets no new key"
    );
    assert_eq!(
        *rekey.open(people[999].x25519_sk(), people[999].x25519_pk()).unwrap(),
        new_key
    );

    // A message sent under the new generation: every remaining member,
    // holding the key its entry gave it, opens it; the removed member,
    // holding only generation 7, does not.
    let sent = message::seal(
        &people[1],
        &group(),
        8,
        &new_key,
        &Content::text("after the rekey", 1),
        &[3; 24],
    )
    .unwrap();
    for m in &people[1..] {
        let k = rekey.open(m.x25519_sk(), m.x25519_pk()).unwrap();
        let opened = message::open(&group(), |g| (g == 8).then(|| k.clone()), &sent).unwrap();
        assert_eq!(opened.sender, people[1].account_id());
    }
    let old = keys.open(people[0].x25519_sk(), people[0].x25519_pk()).unwrap();
    assert_eq!(
        message::open(&group(), |_| Some(old.clone()), &sent),
        Err(GroupMessageError::Decrypt)
    );
}

#[test]
fn a_key_message_is_refused_for_another_group_or_when_altered() {
    let people = members(3);
    let bytes = GroupKeys::seal(&group_key(), 1, &[1; 32], &public(&people), &[2; 32], &[3; 32]).unwrap();
    let other = GroupId::from_ed25519(*Identity::from_ed25519_seed(&[0x92; 32]).ed25519_pk());
    assert_eq!(GroupKeys::decode(&bytes, &other), Err(GroupKeysError::BadSignature));
    // A forger who rewrites the group ID cannot sign for it.
    let forger = Identity::from_ed25519_seed(&[0x93; 32]);
    let forged = GroupKeys::seal(&forger, 1, &[1; 32], &public(&people), &[2; 32], &[3; 32]).unwrap();
    let mut relabelled = forged.clone();
    relabelled[1..34].copy_from_slice(&group().to_bytes());
    assert_eq!(
        GroupKeys::decode(&relabelled, &group()),
        Err(GroupKeysError::BadSignature)
    );
    for i in [0, 40, 70, 72, 100, bytes.len() - 1] {
        let mut bad = bytes.clone();
        bad[i] ^= 1;
        assert!(GroupKeys::decode(&bad, &group()).is_err(), "byte {i}");
    }
    for len in [0, 10, 72, 136, bytes.len() - 1] {
        assert!(GroupKeys::decode(&bytes[..len], &group()).is_err(), "cut at {len}");
    }
}

fn text(body: &str) -> Content {
    Content::text(body, 1_700_000_000_000)
}

fn key_of(generation: u32) -> Option<Zeroizing<[u8; 32]>> {
    (generation <= 2).then(|| Zeroizing::new([generation as u8; 32]))
}

#[test]
fn a_group_message_opens_for_members_with_its_sender_verified() {
    let alice = Identity::from_ed25519_seed(&[0xa1; 32]);
    let data = message::seal(&alice, &group(), 2, &[2; 32], &text("hi all"), &[7; 24]).unwrap();
    assert_eq!(data.len(), message::MESSAGE_OVERHEAD + 160);
    assert_eq!(message::generation_of(&data), Some(2));
    let opened = message::open(&group(), key_of, &data).unwrap();
    assert_eq!(opened.sender, alice.account_id());
    assert_eq!(opened.generation, 2);
    assert_eq!(opened.content, text("hi all"));
}

#[test]
fn a_group_message_is_refused_when_altered_misaddressed_forged_or_of_an_unknown_generation() {
    let alice = Identity::from_ed25519_seed(&[0xa1; 32]);
    let data = message::seal(&alice, &group(), 2, &[2; 32], &text("hi"), &[7; 24]).unwrap();
    for i in (5..data.len()).step_by(23) {
        let mut bad = data.clone();
        bad[i] ^= 1;
        assert_eq!(
            message::open(&group(), key_of, &bad),
            Err(GroupMessageError::Decrypt),
            "byte {i}"
        );
    }
    let other = GroupId::from_ed25519([0x55; 32]);
    assert_eq!(message::open(&other, key_of, &data), Err(GroupMessageError::Decrypt));
    let later = message::seal(&alice, &group(), 3, &[3; 32], &text("hi"), &[7; 24]).unwrap();
    assert_eq!(
        message::open(&group(), key_of, &later),
        Err(GroupMessageError::UnknownGeneration(3)),
        "a removed member holds no key of a later generation"
    );
    // A member who holds the key re-encrypts Alice's signature over other
    // content: the signature does not cover it.
    let mallory = Identity::from_ed25519_seed(&[0x66; 32]);
    let forged = message::seal(&mallory, &group(), 2, &[2; 32], &text("hi"), &[7; 24]).unwrap();
    let mut plain = sodium::xchacha_decrypt(&[2; 32], &[7; 24], &forged[29..], &keys::ad(&group(), 2)).unwrap();
    plain[..32].copy_from_slice(alice.ed25519_pk());
    let mut swapped = data[..29].to_vec();
    swapped.extend_from_slice(&sodium::xchacha_encrypt(
        &[2; 32],
        &[7; 24],
        &plain,
        &keys::ad(&group(), 2),
    ));
    assert_eq!(
        message::open(&group(), key_of, &swapped),
        Err(GroupMessageError::BadSignature)
    );
    assert_eq!(
        message::open(&group(), key_of, &data[..40]),
        Err(GroupMessageError::Malformed)
    );
    let long = "x".repeat(MAX_CONTENT_LEN);
    assert!(matches!(
        message::seal(&alice, &group(), 2, &[2; 32], &text(&long), &[7; 24]),
        Err(GroupMessageError::TooLarge(_))
    ));
}

mod credentials {
    use super::super::credential::*;
    use super::*;

    const T: u64 = 1_700_000_000_000;

    fn sub_key(member: &Identity) -> [u8; 32] {
        let seed = member_seed(&[0x91; 32], &member.account_id());
        *Identity::from_ed25519_seed(&seed).ed25519_pk()
    }

    #[test]
    fn a_credential_verifies_for_its_group_and_names_no_account() {
        let alice = Identity::from_ed25519_seed(&[0xa1; 32]);
        let sub = sub_key(&alice);
        let bytes = Credential::issue(&group_key(), &sub, Rights::MEMBER, T);
        assert_eq!(bytes.len(), CREDENTIAL_LEN);
        let c = Credential::verify(&bytes, &group()).unwrap();
        assert_eq!((c.member_pk, c.rights, c.issued_ms), (sub, Rights::MEMBER, T));
        assert!(c.rights.contains(Rights::WRITE) && c.rights.contains(Rights::READ));
        let text = hex::encode(&bytes);
        for needle in [hex::encode(alice.x25519_pk()), hex::encode(alice.ed25519_pk())] {
            assert!(
                !text.contains(&needle),
                "the credential holds no key of the member's account"
            );
        }
        let read_only = Credential::issue(&group_key(), &sub, Rights::READ, T);
        assert!(
            !Credential::verify(&read_only, &group())
                .unwrap()
                .rights
                .contains(Rights::WRITE)
        );
    }

    #[test]
    fn sub_keys_are_the_same_for_every_admin_and_differ_per_member_and_group() {
        let alice = Identity::from_ed25519_seed(&[0xa1; 32]).account_id();
        let bob = Identity::from_ed25519_seed(&[0xb1; 32]).account_id();
        assert_eq!(*member_seed(&[1; 32], &alice), *member_seed(&[1; 32], &alice));
        assert_ne!(*member_seed(&[1; 32], &alice), *member_seed(&[1; 32], &bob));
        assert_ne!(*member_seed(&[1; 32], &alice), *member_seed(&[2; 32], &alice));
    }

    #[test]
    fn a_credential_is_refused_for_another_group_forged_altered_or_malformed() {
        let sub = [0x33; 32];
        let bytes = Credential::issue(&group_key(), &sub, Rights::MEMBER, T);
        let other = GroupId::from_ed25519(*Identity::from_ed25519_seed(&[0x92; 32]).ed25519_pk());
        assert_eq!(Credential::verify(&bytes, &other), Err(CredentialError::WrongGroup));
        let forger = Identity::from_ed25519_seed(&[0x93; 32]);
        let mut forged = Credential::issue(&forger, &sub, Rights::MEMBER, T);
        forged[1..34].copy_from_slice(&group().to_bytes());
        assert_eq!(
            Credential::verify(&forged, &group()),
            Err(CredentialError::BadSignature)
        );
        for i in [34, 65, 66, 70, 75, CREDENTIAL_LEN - 1] {
            let mut bad = bytes.clone();
            bad[i] ^= 1;
            assert!(Credential::verify(&bad, &group()).is_err(), "byte {i}");
        }
        assert_eq!(
            Credential::verify(&bytes[1..], &group()),
            Err(CredentialError::Length(138))
        );
        // Signed by the group key, from the documented layout, with a
        // rights bit this code does not know.
        let mut unknown = bytes[..CREDENTIAL_LEN - 64].to_vec();
        unknown[66] = 0x08;
        let sig = group_key().sign(&[CREDENTIAL_LABEL, &unknown].concat());
        unknown.extend_from_slice(&sig);
        assert_eq!(
            Credential::verify(&unknown, &group()),
            Err(CredentialError::Rights(0x08))
        );
        let revocation = Revocation::issue(&group_key(), &sub, T);
        assert_eq!(revocation.len(), REVOCATION_LEN);
        assert_eq!(
            Revocation::verify(&revocation, &group()),
            Ok(Revocation {
                member_pk: sub,
                revoked_ms: T
            })
        );
        assert!(
            Credential::verify(&revocation, &group()).is_err(),
            "a revocation is no credential"
        );
        let mut as_revocation = bytes.clone();
        as_revocation[0] = REVOCATION_FORMAT;
        assert!(Revocation::verify(&as_revocation, &group()).is_err());
    }
}

/// A key message larger than any admin writes, or with its entries out of
/// order, is refused even when the group key signed it.
#[test]
fn an_oversized_or_unsorted_key_message_is_refused_though_signed() {
    let sign = |n: usize, sorted: bool| {
        let mut out = vec![0x01];
        out.extend_from_slice(&group().to_bytes());
        out.extend_from_slice(&1u32.to_be_bytes());
        out.extend_from_slice(&[9; 32]);
        out.extend_from_slice(&(n as u16).to_be_bytes());
        for i in 0..n {
            let b = if sorted { i } else { n - i };
            let mut e = [0u8; ENTRY_LEN];
            e[..2].copy_from_slice(&(b as u16).to_be_bytes());
            out.extend_from_slice(&e);
        }
        let sig = group_key().sign(&[super::keys::KEYS_LABEL, &out].concat());
        out.extend_from_slice(&sig);
        out
    };
    assert!(
        GroupKeys::decode(&sign(75, true), &group()).is_ok(),
        "the layout is right"
    );
    assert_eq!(
        GroupKeys::decode(&sign(MAX_MEMBERS + ENTRY_BLOCK, true), &group()),
        Err(GroupKeysError::Malformed)
    );
    assert_eq!(
        GroupKeys::decode(&sign(75, false), &group()),
        Err(GroupKeysError::Malformed)
    );
}
