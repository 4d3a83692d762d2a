//! What the two sides of a conversation do to it besides writing:
//! disappearing settings, receipts, taking a message back, and wiping
//! everything this account has on the network (`docs/account-sync.md`).

use allium_common::AccountId;
use allium_common::content::{Content, Disappear, Kind, Receipt};
use allium_common::encoding::{Hex32, Sig64};
use allium_common::node_list::NodeEntry;
use allium_common::rpc::{self, Call, DeleteAllParams, ExpireParams, Namespace};
use serde_json::Value;

use crate::book::{self, field};
use crate::error::{Error, Result};
use crate::home::{Direction, Home, ReceiptLevel};
use crate::messenger::{Delivery, Messenger, swarm_refused};
use crate::sync::STATE_NAMESPACES;

/// Most message hashes one receipt names (and one received receipt is
/// read for).
pub const MAX_RECEIPT_HASHES: usize = 500;

/// What `allium unsend` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsent {
    /// The recipient.
    pub to: AccountId,
    /// What became of the request to the recipient's devices.
    pub delivery: Delivery,
    /// File chunks of the message deleted from the swarms.
    pub chunks_deleted: usize,
}

impl Messenger {
    /// Sets the conversation with `with` to disappear by `rule` (`None`:
    /// off), on this account's devices (synced) and on the other side
    /// (told with a control message). Returns what became of telling it.
    pub async fn set_disappearing(&mut self, with: AccountId, rule: Option<Disappear>) -> Result<Delivery> {
        let value = rule.map(|r| serde_json::to_value(r).unwrap_or(Value::Null));
        self.edit_account_state(book::CONTACTS, |state, stamp| {
            book::write(state, &with, field::DISAPPEARING, value, stamp);
        })?;
        let mut content = Content::control(Kind::Disappear, self.network_now());
        content.disappear = rule;
        self.send_control(with, &content).await
    }

    /// Queues a receipt telling `to` that its messages `hashes` reached
    /// this account (and, at [`ReceiptLevel::Read`], were read); it leaves
    /// with the next [`Messenger::flush_outbox`], so showing the messages
    /// does not wait for it.
    pub(crate) async fn queue_receipt(&mut self, to: AccountId, hashes: &[String], level: ReceiptLevel) -> Result<()> {
        for chunk in hashes.chunks(MAX_RECEIPT_HASHES) {
            let mut content = Content::control(Kind::Receipt, self.network_now());
            content.receipt = Some(Receipt {
                status: if level == ReceiptLevel::Read {
                    "read"
                } else {
                    "delivered"
                }
                .to_owned(),
                timestamps: Vec::new(),
                hashes: chunk.to_vec(),
            });
            // Only a cached bundle: a receipt is not worth a request.
            self.queue_control(to, &content, false).await?;
        }
        Ok(())
    }

    /// Takes back sent message `hash`: the recipient's devices are asked
    /// to delete it (here and from their swarm), this account's other
    /// devices too, and it is deleted here along with its copy in this
    /// account's swarm.
    pub async fn unsend(&mut self, hash: &str) -> Result<Unsent> {
        let Some(to) = self.home.sent_to(hash)? else {
            return Err(Error::Usage(format!(
                "no sent message with hash {:?} in the history (see `allium history --json`)",
                crate::display::escape(hash)
            )));
        };
        let mut content = Content::control(Kind::Unsend, self.network_now());
        content.unsend = Some(hash.to_owned());
        let delivery = self.send_control(to, &content).await?;
        let me = self.home.account_id();
        if let Delivery::Pending(why) | Delivery::Failed(why) = self.send_control(me, &content).await? {
            tracing::debug!(%why, "this account's other devices are not told yet");
        }
        let (_, copy) = self.home.forget_message(Direction::Outgoing, hash, &to)?;
        if let Some(copy) = copy
            && let Err(e) = self.delete_own(&[copy]).await
        {
            tracing::debug!(error = %e, "the sent message's copy stays until it expires");
        }
        // Its files: the chunks this device stored go from the swarms.
        let mut chunks_deleted = 0;
        for upload in self.home.forget_files(hash)? {
            match self.delete_upload(&upload).await {
                Ok(n) => chunks_deleted += n,
                Err(e) => tracing::debug!(error = %e, "a file's chunks stay until they expire"),
            }
        }
        Ok(Unsent {
            to,
            delivery,
            chunks_deleted,
        })
    }

    /// Sets the expiry of this account's messages `hashes` to `expiry_ms`
    /// (network time); a time already past deletes them instead.
    pub(crate) async fn expire_own(&mut self, hashes: &[String], expiry_ms: u64) -> Result<()> {
        let me = self.home.account_id();
        // A node refuses an expiry that is not after the request's time:
        // one due within a second is a deletion.
        if expiry_ms <= self.network_now().saturating_add(1_000) {
            return self.delete_own(hashes).await.map(|_| ());
        }
        for chunk in hashes.chunks(rpc::MAX_HASHES) {
            let messages = chunk.to_vec();
            let make = move |home: &Home, _: &NodeEntry, ts: u64| -> Result<Value> {
                let identity = home.identity();
                Ok(Call::Expire(ExpireParams {
                    pubkey: me.into(),
                    pubkey_ed25519: Hex32(*identity.ed25519_pk()),
                    signature: Sig64(identity.sign(&rpc::expire_signed_bytes(ts, expiry_ms, &messages))),
                    messages: messages.clone(),
                    expiry: expiry_ms,
                    timestamp: ts,
                })
                .to_json())
            };
            let (status, body, _) = self.call_swarm(&me, &make, None).await?;
            if status != 200 {
                return Err(swarm_refused("to shorten messages' lives", status, &body));
            }
        }
        Ok(())
    }

    /// Deletes everything this account has in its swarm: its mailbox and
    /// every namespace of the shared state. Returns how many messages the
    /// swarm deleted. This device keeps its history and its state, and
    /// counts the state as stored (so it is not put back at once); used
    /// again for a week, it stores the state again.
    pub async fn wipe(&mut self) -> Result<usize> {
        let me = self.home.account_id();
        let mut deleted = 0;
        for namespace in std::iter::once(Namespace::DEFAULT).chain(STATE_NAMESPACES) {
            let make = move |home: &Home, _: &NodeEntry, ts: u64| -> Result<Value> {
                let identity = home.identity();
                Ok(Call::DeleteAll(DeleteAllParams {
                    chunk: None,
                    pubkey: me.into(),
                    pubkey_ed25519: Hex32(*identity.ed25519_pk()),
                    namespace,
                    timestamp: ts,
                    signature: Sig64(identity.sign(&rpc::delete_all_signed_bytes(namespace, ts))),
                })
                .to_json())
            };
            let (status, body, _) = self.call_swarm(&me, &make, None).await?;
            if status != 200 {
                return Err(swarm_refused("to delete everything", status, &body));
            }
            deleted += body["deleted"].as_array().map_or(0, Vec::len);
        }
        let now = self.network_now();
        for namespace in STATE_NAMESPACES {
            let (state, _) = self.home.account_state(namespace)?;
            self.home.save_account_state(namespace, &state, Some(now))?;
        }
        Ok(deleted)
    }
}
