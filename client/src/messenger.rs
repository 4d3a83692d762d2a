//! Sending and receiving: the operations behind `allium send`, `inbox` and
//! `watch`.
//!
//! Every request goes through a 3-relay onion path to a member of the
//! account's swarm (computed from the signed node list). A request that
//! fails is retried on another member and another path; a 421 refreshes the
//! node list from the seeds first. An outgoing message is written to the
//! outbox before it is sent and leaves it only when a swarm node confirmed
//! the store, so nothing is lost if the network or the process fails.

use std::time::Duration;

use allium_common::content::{Content, Kind};
use allium_common::encoding::{Base64Bytes, Hex32, Sig64, from_base64};
use allium_common::node_list::NodeEntry;
use allium_common::rpc::{self, Call, Namespace, RetrieveParams, StoreParams};
use allium_common::seeds::Seed;
use allium_common::{AccountId, envelope, sodium};
use serde_json::Value;

use crate::directory::{self, Sourced};
use crate::error::{Error, Result};
use crate::home::{Home, OutboxItem};
use crate::now_ms;
use crate::paths::{self, Paths};
use crate::transport::Transport;

/// Time to live of a sent message: the longest a node keeps one.
pub const MESSAGE_TTL_MS: u64 = rpc::MAX_TTL_MS;
/// How long `watch` asks a node to hold each retrieve.
pub const WATCH_WAIT_MS: u64 = 20_000;
/// Where the paths are saved in the home's settings.
const PATHS_META: &str = "onion_paths";
/// Attempts (member × path) per request before giving up.
const ATTEMPTS: usize = 8;
/// Timeout of a request that does not long-poll.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);

/// The retrieve cursor of one node: each node orders messages by its own
/// arrival order, so a hash is only a position on the node that returned it.
fn cursor_key(node: &NodeEntry) -> String {
    format!("inbox:{}", hex::encode(node.ed25519.0))
}

/// A message read from the inbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// The sender.
    pub from: AccountId,
    /// The sender's contact name, if known.
    pub from_name: Option<String>,
    /// The sender's timestamp, Unix ms.
    pub timestamp: u64,
    /// The text.
    pub body: String,
    /// The message hash.
    pub hash: String,
}

/// What one pass over the inbox found.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct InboxPage {
    /// New messages, oldest first.
    pub messages: Vec<Received>,
    /// Items the swarm held that are not readable messages for this
    /// account (garbage, forgeries, messages sealed to someone else):
    /// skipped, and the cursor moved past them.
    pub unreadable: usize,
}

/// What a retrieved item turned out to be.
enum Item {
    /// A new text message.
    New(Received),
    /// Already seen, or a kind this client does not show.
    Nothing,
    /// Not a message this account can read.
    Unreadable,
}

/// What became of a message handed to the network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// A swarm node confirmed it (the hash).
    Stored(String),
    /// Still in the outbox; the error of the last attempt.
    Pending(String),
}

/// A client session: home, trusted seeds, network state.
#[derive(Debug)]
pub struct Messenger {
    /// The home directory.
    pub home: Home,
    seeds: Vec<Seed>,
    transport: Transport,
    nodes: Option<Sourced>,
    paths: Option<Paths>,
    /// Nodes that failed this session: not chosen as destinations, and
    /// paths through them are rebuilt.
    suspects: std::collections::HashSet<[u8; 32]>,
}

impl Messenger {
    /// A session over `home` trusting `seeds`, reaching the network
    /// through `transport`.
    pub fn new(home: Home, seeds: Vec<Seed>, transport: Transport) -> Self {
        Self {
            home,
            seeds,
            transport,
            nodes: None,
            paths: None,
            suspects: Default::default(),
        }
    }

    /// The node list in use: the cache if fresh; else a refresh from a
    /// random known node through an onion path; else the seeds.
    pub async fn nodes(&mut self) -> Result<&Sourced> {
        if self.nodes.is_none() {
            let sourced = match directory::cached(&self.home, &self.seeds)? {
                Some(c) if now_ms().saturating_sub(c.fetched_ms) < directory::FRESH_FOR_MS => c,
                Some(stale) => match self.refresh_through_onion(&stale).await {
                    Some(fresh) => fresh,
                    None => directory::refresh(&self.transport, &mut self.home, &self.seeds).await?,
                },
                None => directory::refresh(&self.transport, &mut self.home, &self.seeds).await?,
            };
            let paths = self.saved_paths(&sourced.list)?;
            self.nodes = Some(sourced);
            self.set_paths(paths)?;
        }
        self.nodes
            .as_ref()
            .ok_or_else(|| Error::NoNodeList("not loaded".into()))
    }

    /// The saved paths over `list` (see [`Paths::follow`]), or new ones if
    /// none are saved.
    fn saved_paths(&self, list: &allium_common::node_list::NodeList) -> Result<Paths> {
        let saved: Option<Vec<Vec<String>>> = self
            .home
            .meta(PATHS_META)?
            .and_then(|text| serde_json::from_str(&text).ok());
        match saved {
            Some(keys) => Paths::follow(list, &keys),
            None => Paths::build(list),
        }
    }

    /// Installs and saves the paths.
    fn set_paths(&mut self, paths: Paths) -> Result<()> {
        self.home
            .set_meta(PATHS_META, &serde_json::to_string(&paths.to_keys()).unwrap_or_default())?;
        self.paths = Some(paths);
        Ok(())
    }

    /// Asks a random node of a stale list for the current one, through one
    /// of the saved paths (so through the client's own guards: a refresh
    /// shows its address to no new node); saves it if a trusted seed
    /// signed it.
    async fn refresh_through_onion(&mut self, stale: &Sourced) -> Option<Sourced> {
        let trusted: Vec<[u8; 32]> = self.seeds.iter().map(|s| s.ed25519).collect();
        let paths = self.saved_paths(&stale.list).ok()?;
        let destination = directory::pick(&stale.list.nodes)?.clone();
        let (_, path) = paths.for_destination(&stale.list, &destination).ok()?;
        let request = serde_json::json!({"method": "node_list"});
        let (status, body) = paths::request(&self.transport, &path, &destination, &request, REQUEST_TIMEOUT)
            .await
            .ok()?;
        let list = allium_common::node_list::NodeList::from_value(body)
            .ok()
            .filter(|_| status == 200)?;
        if list.verify(&trusted).is_err() || list.epoch < stale.list.epoch {
            return None;
        }
        let sourced = Sourced {
            list,
            fetched_ms: now_ms(),
            source: format!("node {}", destination.address),
        };
        self.home
            .save_node_list(&sourced.list, sourced.fetched_ms, &sourced.source)
            .ok()?;
        Some(sourced)
    }

    /// The current paths (for `allium nodes`).
    pub fn paths(&self) -> Option<&Paths> {
        self.paths.as_ref()
    }

    /// Refreshes the node list from the seeds, keeping the paths (and so
    /// the guards) that the new list still allows.
    async fn refresh_nodes(&mut self) -> Result<()> {
        let sourced = directory::refresh(&self.transport, &mut self.home, &self.seeds).await?;
        let paths = match &self.paths {
            Some(current) => Paths::follow(&sourced.list, &current.to_keys())?,
            None => Paths::build(&sourced.list)?,
        };
        self.nodes = Some(sourced);
        self.set_paths(paths)
    }

    /// Sends `request` to a member of `account`'s swarm through an onion
    /// path, retrying on other members and paths. Returns the status, body
    /// and the member that answered.
    async fn call(
        &mut self,
        account: &AccountId,
        request: &(dyn Fn(&Home, &NodeEntry) -> Result<Value> + Sync),
        timeout: Duration,
        prefer: Option<[u8; 32]>,
    ) -> Result<(u16, Value, NodeEntry)> {
        let mut last_error = String::from("no attempt made");
        let mut refreshed = false;
        for attempt in 0..ATTEMPTS {
            let sourced = self.nodes().await?.clone();
            let swarm = sourced
                .list
                .swarm_ring()
                .swarm_of(account)
                .ok_or_else(|| Error::NoNodeList("the node list has no swarms".into()))?;
            let all: Vec<NodeEntry> = sourced.list.swarm_members(swarm).cloned().collect();
            let healthy: Vec<NodeEntry> = all
                .iter()
                .filter(|m| !self.suspects.contains(&m.ed25519.0))
                .cloned()
                .collect();
            let members = if healthy.is_empty() { all } else { healthy };
            // The first attempt goes to the preferred member if it is one
            // (paging stays on the node whose cursor it follows).
            let preferred = prefer
                .filter(|_| attempt == 0)
                .and_then(|key| members.iter().find(|m| m.ed25519.0 == key));
            let destination = preferred
                .or_else(|| directory::pick(&members))
                .cloned()
                .ok_or_else(|| Error::NoPath("empty swarm".into()))?;
            let paths = self.paths.as_mut().ok_or_else(|| Error::NoPath("no paths".into()))?;
            let (index, path) = paths.for_destination(&sourced.list, &destination)?;
            let body = request(&self.home, &destination)?;
            match paths::request(&self.transport, &path, &destination, &body, timeout).await {
                Ok((421, _)) if !refreshed => {
                    refreshed = true;
                    last_error = "the node list was out of date".into();
                    self.refresh_nodes().await?;
                }
                Ok((status, body)) => {
                    if let Some(i) = index {
                        paths.succeeded(i);
                    }
                    return Ok((status, body, destination));
                }
                Err(failure) if failure.fatal => return Err(Error::Tor(failure.reason)),
                Err(failure) => {
                    tracing::debug!(error = %failure.reason, "onion request failed; retrying");
                    last_error = failure.reason;
                    let mut changed = index.is_some_and(|i| paths.failed(i, &sourced.list));
                    if let Some(dead) = failure.dead {
                        self.suspects.insert(dead);
                        changed |= paths.replace_containing(&dead, &sourced.list, &self.suspects);
                    }
                    if changed {
                        let keys = serde_json::to_string(&paths.to_keys()).unwrap_or_default();
                        self.home.set_meta(PATHS_META, &keys)?;
                    }
                }
            }
        }
        Err(Error::Network(format!(
            "no swarm node answered after {ATTEMPTS} attempts ({last_error})"
        )))
    }

    /// Seals `text` to `to`, keeps it in the outbox, and tries to store it.
    pub async fn send(&mut self, to: AccountId, text: &str) -> Result<Delivery> {
        let now = now_ms();
        let content = Content::text(text, now);
        let data = envelope::seal(self.home.identity(), &to, &content, &sodium::random_array())
            .map_err(allium_common::Error::from)?;
        let id = self.home.outbox_add(to, data, text, MESSAGE_TTL_MS, now)?;
        let item = self
            .home
            .outbox_pending()?
            .into_iter()
            .find(|i| i.id == id)
            .ok_or_else(|| Error::Usage("the message vanished from the outbox".into()))?;
        self.deliver(item).await
    }

    async fn deliver(&mut self, item: OutboxItem) -> Result<Delivery> {
        let now = now_ms();
        // The node checks the timestamp against its clock, so a retried
        // message is stored with the time of this attempt and what is left
        // of its life.
        let remaining = item
            .expires_ms()
            .saturating_sub(now)
            .clamp(rpc::MIN_TTL_MS, rpc::MAX_TTL_MS);
        let store = Call::Store(StoreParams {
            pubkey: item.to,
            namespace: Namespace::DEFAULT,
            timestamp: now,
            ttl: remaining,
            data: Base64Bytes(item.data.clone()),
            pubkey_ed25519: None,
            signature: None,
        });
        let store = store.to_json();
        let outcome = self
            .call(&item.to, &|_, _| Ok(store.clone()), REQUEST_TIMEOUT, None)
            .await;
        let error = match outcome {
            Ok((200, body, _)) => match body["hash"].as_str() {
                Some(hash) => {
                    self.home.outbox_confirm(item.id, hash)?;
                    return Ok(Delivery::Stored(hash.to_owned()));
                }
                None => "the node's answer had no hash".to_owned(),
            },
            Ok((status, body, _)) => format!("refused with {status}: {}", body["message"].as_str().unwrap_or("")),
            Err(e) => e.to_string(),
        };
        self.home.outbox_mark_attempt(item.id, &error, now_ms())?;
        Ok(Delivery::Pending(error))
    }

    /// Retries every message in the outbox whose next attempt is due;
    /// reports those whose time to live ran out (removed, never silently).
    pub async fn flush_outbox(&mut self) -> Result<(Vec<(OutboxItem, Delivery)>, Vec<OutboxItem>)> {
        let expired = self.home.outbox_expired(now_ms())?;
        let mut results = Vec::new();
        for item in self.home.outbox_due(now_ms())? {
            let delivery = self.deliver(item.clone()).await?;
            results.push((item, delivery));
        }
        Ok((results, expired))
    }

    /// Fetches new messages once (or, with `wait_ms`, waits for one),
    /// page by page until the node has no more. The cursor is saved after
    /// every page, so a failure later loses no progress; items that are not
    /// readable messages are skipped and counted.
    pub async fn inbox(&mut self, wait_ms: Option<u64>) -> Result<InboxPage> {
        let me = self.home.account_id();
        let mut found = InboxPage::default();
        // Page through what the node holds; the cursor is per node because
        // each node numbers its messages in its own order.
        let mut wait = wait_ms;
        let mut paging_on = None;
        loop {
            let timeout = REQUEST_TIMEOUT + Duration::from_millis(wait.unwrap_or(0));
            // The request names the cursor of whichever member it goes to.
            let make = |home: &Home, node: &NodeEntry| -> Result<Value> {
                let ts = now_ms();
                let identity = home.identity();
                Ok(Call::Retrieve(RetrieveParams {
                    pubkey: me,
                    pubkey_ed25519: Hex32(*identity.ed25519_pk()),
                    namespace: Namespace::DEFAULT,
                    timestamp: ts,
                    signature: Sig64(identity.sign(&rpc::retrieve_signed_bytes(Namespace::DEFAULT, ts))),
                    last_hash: home.cursor(&cursor_key(node))?,
                    max_count: None,
                    max_size: None,
                    wait_ms: wait,
                })
                .to_json())
            };
            let (status, body, node) = self.call(&me, &make, timeout, paging_on).await?;
            if status != 200 {
                return Err(Error::Network(format!(
                    "the swarm refused to list the inbox ({status}: {})",
                    body["message"].as_str().unwrap_or("")
                )));
            }
            let messages = body["messages"].as_array().cloned().unwrap_or_default();
            for m in &messages {
                match self.open_message(m)? {
                    Item::New(r) => found.messages.push(r),
                    Item::Nothing => {}
                    Item::Unreadable => found.unreadable += 1,
                }
            }
            if let Some(last) = messages.last().and_then(|m| m["hash"].as_str()) {
                self.home.set_cursor(&cursor_key(&node), last)?;
            }
            // A page that moved the cursor nowhere ends the pass even if the
            // node says more: it cannot be read past.
            if body["more"] != Value::Bool(true) || messages.is_empty() {
                return Ok(found);
            }
            wait = None;
            paging_on = Some(node.ed25519.0);
        }
    }

    /// Opens one retrieved item. A forged, garbled or foreign item is
    /// skipped, never fatal.
    fn open_message(&mut self, m: &Value) -> Result<Item> {
        let (Some(hash), Some(data)) = (m["hash"].as_str(), m["data"].as_str()) else {
            return Ok(Item::Unreadable);
        };
        let Ok(bytes) = from_base64(data) else {
            return Ok(Item::Unreadable);
        };
        let opened = match envelope::open(self.home.identity(), &bytes) {
            Ok(o) => o,
            Err(e) => {
                tracing::debug!(%hash, error = %e, "skipped a message that does not open");
                return Ok(Item::Unreadable);
            }
        };
        if opened.content.kind != Kind::Text {
            return Ok(Item::Nothing);
        }
        let body = opened.content.body.unwrap_or_default();
        if !self
            .home
            .record_incoming(hash, opened.sender, opened.content.ts, now_ms(), &body)?
        {
            return Ok(Item::Nothing);
        }
        Ok(Item::New(Received {
            from: opened.sender,
            from_name: self.home.name_of(&opened.sender)?,
            timestamp: opened.content.ts,
            body,
            hash: hash.to_owned(),
        }))
    }
}
