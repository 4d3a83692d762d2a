//! Group mailboxes on a real local network (seed + 6 node processes): who
//! may read and write a group's namespaces, and revocation enforced by every
//! member of the group's swarm (`docs/groups.md`, `docs/protocol.md` §5.6).
#![allow(clippy::unwrap_used)]

mod support;

use std::time::{Duration, Instant};

use allium_common::Identity;
use allium_common::MailboxId;
use allium_common::encoding::{Base64Bytes, Hex32, Sig64};
use allium_common::group::GroupId;
use allium_common::group::credential::{Credential, Revocation, Rights};
use allium_common::rpc::{self, Call, DeleteParams, Namespace, RetrieveParams, StoreParams};
use serde_json::Value;
use support::*;

const DAY: u64 = 24 * 3600 * 1000;

struct Group {
    key: Identity,
}

impl Group {
    fn id(&self) -> MailboxId {
        GroupId::from_ed25519(*self.key.ed25519_pk()).into()
    }

    fn credential(&self, member: &Identity) -> Vec<u8> {
        Credential::issue(&self.key, member.ed25519_pk(), Rights::MEMBER, now_ms())
    }

    /// A store signed by `signer`, with `credential` if a member signs.
    fn store(&self, ns: Namespace, data: &[u8], signer: &Identity, credential: Option<Vec<u8>>) -> Value {
        let ts = now_ms();
        let hash = rpc::message_hash(&self.id(), ns, data);
        Call::Store(StoreParams {
            chunk: None,
            pubkey: self.id(),
            namespace: ns,
            timestamp: ts,
            ttl: DAY,
            data: Base64Bytes(data.to_vec()),
            pubkey_ed25519: Some(Hex32(*signer.ed25519_pk())),
            signature: Some(Sig64(signer.sign(&rpc::store_signed_bytes(ns, ts, &hash)))),
            credential: credential.map(Base64Bytes),
        })
        .to_json()
    }

    fn retrieve(&self, ns: Namespace, signer: &Identity, credential: Option<Vec<u8>>) -> Value {
        let ts = now_ms();
        Call::Retrieve(RetrieveParams {
            pubkey: self.id(),
            pubkey_ed25519: Hex32(*signer.ed25519_pk()),
            namespace: ns,
            timestamp: ts,
            signature: Sig64(signer.sign(&rpc::retrieve_signed_bytes(ns, ts))),
            last_hash: None,
            max_count: None,
            max_size: None,
            wait_ms: None,
            credential: credential.map(Base64Bytes),
        })
        .to_json()
    }

    fn delete(&self, hashes: &[String], signer: &Identity, credential: Option<Vec<u8>>) -> Value {
        let ts = now_ms();
        Call::Delete(DeleteParams {
            pubkey: self.id(),
            pubkey_ed25519: Hex32(*signer.ed25519_pk()),
            messages: hashes.to_vec(),
            timestamp: ts,
            signature: Sig64(signer.sign(&rpc::delete_signed_bytes(ts, hashes))),
            credential: credential.map(Base64Bytes),
        })
        .to_json()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_swarms_admit_members_by_credential_and_refuse_the_revoked() {
    let net = Net::start(6).await;
    let group = Group { key: identity(0x61) };
    let member = identity(0x62);
    let stranger = identity(0x63);
    let cred = Some(group.credential(&member));
    let members = net.swarm_of(&group.id()).await;
    assert!(members.len() >= 2, "the test needs two swarm members");
    let (a, b) = (members[0].address.clone(), members[1].address.clone());

    // A member writes into namespace 11 at one node; another node of the
    // swarm has it: the credential travelled with the copy.
    let (status, body) = net
        .rpc(
            &a,
            &group.store(Namespace::GROUP_MESSAGES, b"hello group", &member, cred.clone()),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let said = body["hash"].as_str().unwrap().to_owned();
    let (status, body) = net
        .rpc(&b, &group.retrieve(Namespace::GROUP_MESSAGES, &member, cred.clone()))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(hashes(&body), std::slice::from_ref(&said));

    // A stranger neither reads nor writes; a member does not write keys.
    let (status, _) = net
        .rpc(&a, &group.retrieve(Namespace::GROUP_MESSAGES, &stranger, None))
        .await;
    assert_eq!(status, 401);
    let (status, _) = net
        .rpc(&a, &group.store(Namespace::GROUP_MESSAGES, b"spam", &stranger, None))
        .await;
    assert_eq!(status, 401);
    let (status, body) = net
        .rpc(
            &a,
            &group.store(Namespace::GROUP_KEYS, b"my key", &member, cred.clone()),
        )
        .await;
    assert_eq!(status, 403, "{body}");

    // The group key writes a key message; the member's delete does not
    // reach it, though it deletes in namespace 11.
    let (status, body) = net
        .rpc(&a, &group.store(Namespace::GROUP_KEYS, b"keys", &group.key, None))
        .await;
    assert_eq!(status, 200, "{body}");
    let keys = body["hash"].as_str().unwrap().to_owned();
    let (status, body) = net
        .rpc(&a, &group.delete(&[keys.clone(), said.clone()], &member, cred.clone()))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["deleted"], serde_json::json!([said]));
    let (_, body) = net
        .rpc(&a, &group.retrieve(Namespace::GROUP_KEYS, &group.key, None))
        .await;
    assert_eq!(hashes(&body), [keys]);

    // Revoked: every node of the swarm refuses the member, reading and
    // writing, and a revocation from another group is refused.
    let revocation = Revocation::issue(&group.key, member.ed25519_pk(), now_ms());
    let (status, body) = net
        .rpc(
            &a,
            &group.store(Namespace::GROUP_REVOKED, &revocation, &group.key, None),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    for node in [&a, &b] {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let (status, body) = net
                .rpc(node, &group.retrieve(Namespace::GROUP_MESSAGES, &member, cred.clone()))
                .await;
            if status == 403 {
                assert!(body["message"].as_str().unwrap().contains("revoked"), "{body}");
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{node} still serves a revoked member: {status} {body}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let (status, _) = net
            .rpc(
                node,
                &group.store(Namespace::GROUP_MESSAGES, b"still here?", &member, cred.clone()),
            )
            .await;
        assert_eq!(status, 403);
    }
    assert!(net.metric(&a, "allium_revoked_refused_total").await >= 1);
    let other = Group { key: identity(0x64) };
    let foreign = Revocation::issue(&other.key, member.ed25519_pk(), now_ms());
    let (status, _) = net
        .rpc(&a, &group.store(Namespace::GROUP_REVOKED, &foreign, &group.key, None))
        .await;
    assert_eq!(status, 400);

    // The group key itself is never revoked.
    let (status, _) = net
        .rpc(&b, &group.retrieve(Namespace::GROUP_MESSAGES, &group.key, None))
        .await;
    assert_eq!(status, 200);
}
