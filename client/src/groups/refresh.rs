//! Keeping a group alive on its swarm. Nodes keep nothing longer than 14
//! days, and a group's key messages, info, member list and revocations must
//! outlive that: a member restored from its phrase needs the key message
//! sealed to it, and a removed member's credential must stay revoked. So an
//! admin's client, once a week, stores the current key message, list and
//! info again and extends every revocation with `expire` (signed by the
//! group key). A group whose admins all stay offline for 14 days loses
//! them; what that means is in `docs/groups.md`.

use allium_common::encoding::{Hex32, Sig64};
use allium_common::group::state::Info;
use allium_common::node_list::NodeEntry;
use allium_common::rpc::{self, Call, ExpireParams, Namespace};
use serde_json::Value;

use super::{GROUP_TTL_MS, Signer};
use crate::error::Result;
use crate::home::{GroupRecord, Home};
use crate::messenger::{Messenger, swarm_refused};

/// How often an admin stores the group's state again: half the time a
/// node keeps it, so one run a week keeps it alive.
pub const REFRESH_AFTER_MS: u64 = GROUP_TTL_MS / 2;

/// Whether a group last refreshed at `last_ms` is due at `now_ms`.
pub fn must_refresh(last_ms: Option<u64>, now_ms: u64) -> bool {
    last_ms.is_none_or(|last| now_ms.saturating_sub(last) > REFRESH_AFTER_MS)
}

/// The setting that holds when this device last refreshed `g`.
fn meta_key(g: &GroupRecord) -> String {
    format!("group_refreshed:{}", &g.id.to_string()[..34])
}

impl Messenger {
    /// Notes that `g`'s state was just stored in full (made or rekeyed).
    pub(super) fn mark_refreshed(&mut self, g: &GroupRecord) -> Result<()> {
        let now = self.network_now();
        Ok(self.home.set_meta(&meta_key(g), &now.to_string())?)
    }

    /// As an admin, stores `g`'s key message, list and info again and
    /// extends its revocations, if a week has passed since it last did.
    /// Returns whether it did.
    pub(super) async fn refresh_if_due(&mut self, g: &GroupRecord) -> Result<bool> {
        if g.seed.is_none() {
            return Ok(false);
        }
        let last = self.home.meta(&meta_key(g))?.and_then(|v| v.parse().ok());
        if !must_refresh(last, self.network_now()) {
            return Ok(false);
        }
        let (generation, key) = self.current_key(g)?;
        let list = self.home.group_members(&g.id)?;
        if list.is_empty() {
            return Ok(false);
        }
        let info = Info {
            name: g.name.clone(),
            description: g.description.clone(),
            disappear: None,
        };
        self.publish(g, generation, &key, &list, Some(&info)).await?;
        self.extend_revocations(g).await?;
        self.mark_refreshed(g)?;
        Ok(true)
    }

    /// Extends every revocation of `g` to the longest a node keeps it.
    async fn extend_revocations(&mut self, g: &GroupRecord) -> Result<()> {
        let signer = Signer::admin(g)?;
        let read = |_: &Home, _: &NodeEntry, ts: u64| -> Result<Value> {
            Ok(signer.retrieve(&g.id, Namespace::GROUP_REVOKED, ts, None, None))
        };
        let (status, body, node) = self.call_swarm(&g.id, &read, None).await?;
        if status != 200 {
            return Err(swarm_refused("to list the group's revocations", status, &body));
        }
        let hashes: Vec<String> = body["messages"]
            .as_array()
            .map(|m| m.iter().filter_map(|m| m["hash"].as_str().map(str::to_owned)).collect())
            .unwrap_or_default();
        for chunk in hashes.chunks(rpc::MAX_HASHES) {
            let group_key = signer.identity();
            let expire = |_: &Home, _: &NodeEntry, ts: u64| -> Result<Value> {
                let expiry = ts.saturating_add(GROUP_TTL_MS);
                Ok(Call::Expire(ExpireParams {
                    pubkey: g.id.into(),
                    pubkey_ed25519: Hex32(*group_key.ed25519_pk()),
                    signature: Sig64(group_key.sign(&rpc::expire_signed_bytes(ts, expiry, chunk))),
                    messages: chunk.to_vec(),
                    expiry,
                    timestamp: ts,
                })
                .to_json())
            };
            let (status, body, _) = self.call_swarm(&g.id, &expire, Some(node.ed25519.0)).await?;
            if status != 200 {
                return Err(swarm_refused("to extend the group's revocations", status, &body));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_admin_refreshes_a_group_once_a_week() {
        let day = 86_400_000;
        let now = 100 * day;
        assert!(must_refresh(None, now), "never refreshed on this device");
        assert!(!must_refresh(Some(now - day), now));
        assert!(!must_refresh(Some(now - 7 * day), now), "seven days: not yet");
        assert!(must_refresh(Some(now - 7 * day - 1), now));
        assert!(
            !must_refresh(Some(now + day), now),
            "a clock set back does not refresh in a loop"
        );
    }
}
