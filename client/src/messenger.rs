//! Sending and receiving: the operations behind `allium send`, `inbox` and
//! `watch`.
//!
//! Every request goes through a 3-relay onion path to a member of the
//! account's swarm (computed from the signed node list). A request that
//! fails is retried on another member and another path; a 421 refreshes the
//! node list from the seeds first, and a 406 corrects the client's clock
//! ([`crate::clock`]). An outgoing message is written to the outbox before
//! it is sent and leaves it only when two members of the recipient's swarm
//! confirmed the store with their signatures ([`crate::confirm`]), so
//! nothing is lost if the network, a node or the process fails.

use std::collections::HashSet;
use std::time::Duration;

use allium_common::AccountId;
use allium_common::content::{Content, Disappear, DisappearAfter, Profile, SentCopy};
use allium_common::encoding::{Base64Bytes, Hex32, Sig64};
use allium_common::node_list::NodeEntry;
use allium_common::rpc::{self, Call, Namespace, RetrieveParams, StoreParams};
use allium_common::seeds::Seed;
use allium_common::swarm::SwarmKey;
use serde_json::Value;

use crate::book::{self, Book};
use crate::clock::{self, Clock};
use crate::confirm::{Tally, Verdict};
use crate::directory::{self, Sourced};
use crate::doubts::Doubts;
use crate::error::{Error, Result};
use crate::guards::{self, GuardBudget};
use crate::home::{Home, OutboxItem, UploadRecord};
use crate::now_ms;
use crate::paths::{self, Blame, Paths};
use crate::sync;
use crate::transport::Transport;

/// Time to live of a sent message: the longest a node keeps one.
pub const MESSAGE_TTL_MS: u64 = rpc::MAX_TTL_MS;
/// How long `watch` asks a node to hold each retrieve.
pub const WATCH_WAIT_MS: u64 = 20_000;
/// Where the paths are saved in the home's settings (Ed25519 keys, hex,
/// path by path: [`Paths::to_keys`]).
pub const PATHS_META: &str = "onion_paths";
/// Attempts (member × path) per request before giving up.
const ATTEMPTS: usize = 8;
/// How many times one request waits out a guard's "slow down" (429).
const MAX_SLOWDOWNS: u32 = 12;

/// The pause before trying again after the `n`th "slow down" (from 1):
/// 200 ms doubling to 3.2 s, with up to a quarter more at random so the
/// requests in flight do not come back together.
fn slowdown_pause(n: u32) -> Duration {
    let base = 200u64 << n.saturating_sub(1).min(4);
    let jitter = allium_common::sodium::random_index(usize::try_from(base / 4).unwrap_or(1).max(1)) as u64;
    Duration::from_millis(base + jitter)
}
/// Timeout of a request that does not long-poll.
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);
/// Members asked in turn for one delivery, until enough confirmed.
const STORE_ROUNDS: usize = 3;

/// The error for a swarm member's refusal (`status`, its `body`) of what
/// `doing` names.
pub(crate) fn swarm_refused(doing: &str, status: u16, body: &Value) -> Error {
    Error::Network(format!(
        "the swarm refused {doing} ({status}: {})",
        body["message"].as_str().unwrap_or("")
    ))
}

/// An owner-signed `retrieve` of this account's `namespace` after
/// `last_hash`, held up to `wait_ms` for something new.
pub(crate) fn owner_retrieve(
    home: &Home,
    namespace: Namespace,
    ts: u64,
    last_hash: Option<String>,
    wait_ms: Option<u64>,
) -> Value {
    let identity = home.identity();
    Call::Retrieve(RetrieveParams {
        pubkey: home.account_id().into(),
        pubkey_ed25519: Hex32(*identity.ed25519_pk()),
        namespace,
        timestamp: ts,
        signature: Sig64(identity.sign(&rpc::retrieve_signed_bytes(namespace, ts))),
        last_hash,
        max_count: None,
        max_size: None,
        wait_ms,
        credential: None,
    })
    .to_json()
}

/// Refuses a text too long for one message (its encoded content is
/// measured, as it will travel).
pub fn check_text_len(text: &str) -> Result<()> {
    let size = Content::text(text, 0).to_bytes().len();
    if size > allium_common::envelope::MAX_CONTENT_LEN {
        return Err(Error::Usage(format!(
            "the message is too long: {size} bytes encoded, at most {} fit in one message",
            allium_common::envelope::MAX_CONTENT_LEN
        )));
    }
    Ok(())
}

/// What became of a message handed to the network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// Enough swarm members confirmed it (the hash).
    Stored(String),
    /// Still in the outbox; why the last attempt did not finish.
    Pending(String),
    /// The swarm refused it in a way no retry can mend (why); it was
    /// removed from the outbox.
    Failed(String),
}

/// A client session: home, trusted seeds, network state.
#[derive(Debug)]
pub struct Messenger {
    /// The home directory.
    pub home: Home,
    seeds: Vec<Seed>,
    /// Shared with [`Messenger::sibling`]s (one Tor client per process).
    transport: std::sync::Arc<Transport>,
    nodes: Option<Sourced>,
    paths: Option<Paths>,
    /// Nodes that failed this session, and how surely: chosen last as
    /// destinations, never as middles or exits of rebuilt paths. Never a
    /// reason to change a guard.
    doubts: Doubts,
    /// The offset from the local clock to the network's.
    clock: Clock,
    /// No request leaves ([`Error::Offline`]).
    offline: bool,
    /// What the last account sync saw of the device records that the user
    /// should hear of (link requests, foreign records).
    pub(crate) device_notes: Option<crate::devices::DeviceReport>,
    /// Whether this device publishes envelope v2 keys (the config's
    /// `forward_secrecy`).
    pub(crate) forward_secrecy: bool,
    /// File chunks in flight at once ([`crate::files::IN_FLIGHT`] unless
    /// set).
    pub(crate) file_parallelism: usize,
    /// Files of contacts' messages fetched as they arrive: up to this size,
    /// into this directory (none: never).
    pub(crate) auto_download: Option<(u64, std::path::PathBuf)>,
}

/// The saved guard-replacement budget.
fn load_budget(home: &Home, now_ms: u64) -> Result<GuardBudget> {
    Ok(home
        .meta(guards::META_KEY)?
        .map(|text| GuardBudget::parse(&text, paths::PATHS, now_ms))
        .unwrap_or_default())
}

/// Saves the paths (so later runs keep the same guards).
fn save_paths(home: &mut Home, paths: &Paths) -> Result<()> {
    let keys = serde_json::to_string(&paths.to_keys()).unwrap_or_default();
    Ok(home.set_meta(PATHS_META, &keys)?)
}

impl Messenger {
    /// A session over `home` trusting `seeds`, reaching the network
    /// through `transport`.
    pub fn new(home: Home, seeds: Vec<Seed>, transport: Transport) -> Self {
        let clock = Clock::saved(&home);
        Self {
            home,
            seeds,
            transport: std::sync::Arc::new(transport),
            nodes: None,
            paths: None,
            doubts: Doubts::default(),
            clock,
            offline: false,
            device_notes: None,
            forward_secrecy: true,
            file_parallelism: crate::files::IN_FLIGHT,
            auto_download: None,
        }
    }

    /// A second session over `home` (the same home, opened again) that
    /// shares this one's transport and settings, so two requests can be
    /// in flight at once: `watch` long-polls the inbox and a group's swarm
    /// side by side. Each keeps its own paths state, as two `allium`
    /// processes would.
    pub fn sibling(&self, home: Home) -> Self {
        let clock = Clock::saved(&home);
        Self {
            home,
            seeds: self.seeds.clone(),
            transport: std::sync::Arc::clone(&self.transport),
            nodes: None,
            paths: None,
            doubts: Doubts::default(),
            clock,
            offline: self.offline,
            device_notes: None,
            forward_secrecy: self.forward_secrecy,
            file_parallelism: self.file_parallelism,
            auto_download: self.auto_download.clone(),
        }
    }

    /// Fetch the files of contacts' messages up to `max_bytes` into `dir`
    /// as the messages arrive ([`Messenger::auto_save`]); 0 turns it off.
    pub fn set_auto_download(&mut self, max_bytes: u64, dir: std::path::PathBuf) {
        self.auto_download = (max_bytes > 0).then_some((max_bytes, dir));
    }

    /// How many file chunks are in flight at once (at least 1).
    pub fn set_file_parallelism(&mut self, n: usize) {
        self.file_parallelism = n.clamp(1, 64);
    }

    /// With `offline`, every operation that needs the network fails with
    /// [`Error::Offline`] before anything leaves.
    pub fn set_offline(&mut self, offline: bool) {
        self.offline = offline;
    }

    /// Whether this device publishes envelope v2 keys (on unless the
    /// config says `forward_secrecy = false`).
    pub fn set_forward_secrecy(&mut self, on: bool) {
        self.forward_secrecy = on;
    }

    /// The correction applied to the local clock, ms (for `allium nodes`).
    pub fn clock_offset_ms(&self) -> i64 {
        self.clock.offset_ms()
    }

    /// The network's time as this client believes it, Unix ms: the local
    /// clock corrected by what the nodes said about it.
    pub fn network_now(&self) -> u64 {
        self.clock.network_ms(now_ms())
    }

    /// When the node list this session holds was fetched, Unix ms (none
    /// before the first request).
    pub fn node_list_fetched_ms(&self) -> Option<u64> {
        self.nodes.as_ref().map(|n| n.fetched_ms)
    }

    /// The node list in use: the cache if fresh; else a refresh from a
    /// random known node through an onion path; else the seeds.
    pub async fn nodes(&mut self) -> Result<&Sourced> {
        if self.offline {
            return Err(Error::Offline);
        }
        if self.nodes.is_none() {
            let sourced = match directory::cached(&self.home, &self.seeds)? {
                Some(c) if now_ms().saturating_sub(c.fetched_ms) < directory::FRESH_FOR_MS => c,
                Some(stale) => match self.refresh_through_onion(&stale).await {
                    Some(fresh) => fresh,
                    None => directory::refresh(&self.transport, &mut self.home, &self.seeds).await?,
                },
                None => directory::refresh(&self.transport, &mut self.home, &self.seeds).await?,
            };
            let paths = self.saved_paths(&sourced.list, true)?;
            save_paths(&mut self.home, &paths)?;
            self.nodes = Some(sourced);
            self.paths = Some(paths);
        }
        self.nodes
            .as_ref()
            .ok_or_else(|| Error::NoNodeList("not loaded".into()))
    }

    /// The saved paths over `list` (see [`Paths::follow`]), or new ones if
    /// none are saved. A path whose guard left the list gets a new guard
    /// only if `replace` and the budget allows (the budget is saved).
    fn saved_paths(&mut self, list: &allium_common::consensus::Consensus, replace: bool) -> Result<Paths> {
        let keys: Vec<Vec<String>> = self
            .home
            .meta(PATHS_META)?
            .and_then(|text| serde_json::from_str(&text).ok())
            .unwrap_or_default();
        if !replace {
            return Paths::follow(list, &keys, None);
        }
        let now = now_ms();
        let mut budget = load_budget(&self.home, now)?;
        let paths = Paths::follow(list, &keys, Some((&mut budget, now)))?;
        self.home.set_meta(guards::META_KEY, &budget.to_text())?;
        Ok(paths)
    }

    /// Asks a random node of a stale list for the current one, through one
    /// of the saved paths (so through the client's own guards: a refresh
    /// shows its address to no new node); saves it if a majority of the
    /// trusted seeds signed it and it is not older than the stale one.
    async fn refresh_through_onion(&mut self, stale: &Sourced) -> Option<Sourced> {
        let paths = self.saved_paths(&stale.list, false).ok()?;
        let destination = directory::pick(&stale.list.nodes)?.clone();
        let (_, path) = paths
            .for_destination(&stale.list, &destination, None, &self.doubts.doubted())
            .ok()?;
        let request = serde_json::json!({"method": "node_list"});
        let (status, body) = paths::request(&self.transport, &path, &destination, &request, REQUEST_TIMEOUT)
            .await
            .ok()?;
        let offered = allium_common::consensus::Consensus::from_value(body)
            .ok()
            .filter(|_| status == 200)?;
        let list = directory::accept(offered, &self.seeds, Some(&stale.list), now_ms()).ok()?;
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

    /// The guard replacements of the last day: (path, Unix ms) (for
    /// `allium nodes`).
    pub fn guard_replacements(&self) -> Result<Vec<(usize, u64)>> {
        Ok(load_budget(&self.home, now_ms())?.replacements())
    }

    /// Refreshes the node list from the seeds, keeping the paths (and so
    /// the guards) that the new list still allows.
    async fn refresh_nodes(&mut self) -> Result<()> {
        let sourced = directory::refresh(&self.transport, &mut self.home, &self.seeds).await?;
        let now = now_ms();
        let mut budget = load_budget(&self.home, now)?;
        let paths = match self.paths.take() {
            Some(mut current) => {
                current.refollow(&sourced.list, &mut budget, now)?;
                current
            }
            None => Paths::build(&sourced.list)?,
        };
        self.home.set_meta(guards::META_KEY, &budget.to_text())?;
        save_paths(&mut self.home, &paths)?;
        self.nodes = Some(sourced);
        self.paths = Some(paths);
        Ok(())
    }

    /// The members of `account`'s swarm in the current node list.
    fn swarm_members(&self, account: &impl SwarmKey) -> Result<Vec<NodeEntry>> {
        let sourced = self
            .nodes
            .as_ref()
            .ok_or_else(|| Error::NoNodeList("not loaded".into()))?;
        let swarm = sourced
            .list
            .swarm_ring()
            .swarm_of(account)
            .ok_or_else(|| Error::NoNodeList("the node list has no swarms".into()))?;
        Ok(sourced.list.swarm_members(swarm).cloned().collect())
    }

    /// Why no request can leave: no guard is usable and none may be
    /// replaced yet.
    fn guards_down(&self) -> Error {
        let now = now_ms();
        let next = load_budget(&self.home, now)
            .map(|b| (0..paths::PATHS).map(|i| b.next_allowed(i, now)).min().unwrap_or(now))
            .unwrap_or(now);
        let why = if next > now {
            format!(
                "and no new guard may be chosen for another {} min (at most {} new guards per path in 24 hours, \
                 so that nodes that fail on purpose cannot choose this client's guards)",
                (next - now).div_ceil(60_000),
                guards::MAX_REPLACEMENTS
            )
        } else {
            "and a new guard is chosen only when the network is evidently up (a guard refused the \
             connection, or another guard answered)"
                .to_owned()
        };
        Error::GuardsDown(format!(
            "cannot reach the network: neither of this client's guards can be used (unreachable, or gone \
             from the node list), {why}; check the network connection and try again later"
        ))
    }

    /// Sends a request to a member of `account`'s swarm through an onion
    /// path, retrying on other members and paths. `request` makes the
    /// request for a member at a network time (ms). The first attempt goes
    /// to `prefer` if it is a member; members in `avoid` are not asked (an
    /// error says so when no other is left). Returns the status, body and
    /// the member that answered.
    ///
    /// A `421` refreshes the node list once. A `406 clock_skew` corrects
    /// the clock by the skew the node reported and retries once, on
    /// another member if there is one; the new offset is kept (and saved)
    /// only if that retry is not refused for skew too. Path failures are
    /// handled as [`crate::paths`] describes: only a guard that cannot be
    /// connected to is replaced, within the budget.
    pub(crate) async fn call(
        &mut self,
        account: &(impl SwarmKey + Sync),
        request: &(dyn Fn(&Home, &NodeEntry, u64) -> Result<Value> + Sync),
        timeout: Duration,
        prefer: Option<[u8; 32]>,
        avoid: &HashSet<[u8; 32]>,
    ) -> Result<(u16, Value, NodeEntry)> {
        let mut last_error = String::from("no attempt made");
        let mut refreshed = false;
        // The clock before a tentative correction, while one is tried.
        let mut clock_before: Option<Clock> = None;
        // Members not to ask again in this call.
        let mut skipped: HashSet<[u8; 32]> = HashSet::new();
        let mut failed_slot = None;
        // A guard's "slow down" is waited out, not counted as an attempt
        // (within MAX_SLOWDOWNS): the path is fine, the client is fast.
        let mut slowdowns = 0;
        let mut attempt = 0;
        while attempt < ATTEMPTS {
            let this_attempt = attempt;
            attempt += 1;
            let list = self.nodes().await?.list.clone();
            let all = self.swarm_members(account)?;
            let excluded: HashSet<[u8; 32]> = avoid.union(&skipped).copied().collect();
            // Looking for another member than those in `avoid`: only one
            // that has not failed in this command.
            let members: Vec<NodeEntry> = self
                .doubts
                .candidates(&all, &excluded, !avoid.is_empty())
                .into_iter()
                .cloned()
                .collect();
            if members.is_empty() {
                return Err(Error::Network(format!(
                    "no other member of the swarm left to ask ({last_error})"
                )));
            }
            // The first attempt goes to the preferred member if it is one
            // (paging stays on the node whose cursor it follows).
            let preferred = prefer
                .filter(|_| this_attempt == 0)
                .and_then(|key| members.iter().find(|m| m.ed25519.0 == key));
            let destination = preferred
                .or_else(|| directory::pick(&members))
                .cloned()
                .ok_or_else(|| Error::NoPath("empty swarm".into()))?;
            let paths = self.paths.as_ref().ok_or_else(|| Error::NoPath("no paths".into()))?;
            if !paths.has_live_guard() {
                return Err(self.guards_down());
            }
            let (index, path) = match paths.for_destination(&list, &destination, failed_slot, &self.doubts.doubted()) {
                Ok(found) => found,
                Err(Error::NoPath(reason)) => {
                    // No route to this member (it is the only usable guard):
                    // another member may have one.
                    skipped.insert(destination.ed25519.0);
                    last_error = reason;
                    continue;
                }
                Err(e) => return Err(e),
            };
            let guard = path.relays.first().map(|g| g.ed25519.0).unwrap_or_default();
            let body = request(&self.home, &destination, self.network_now())?;
            let outcome = paths::request(&self.transport, &path, &destination, &body, timeout).await;
            let paths = self.paths.as_mut().ok_or_else(|| Error::NoPath("no paths".into()))?;
            match outcome {
                Ok((421, _)) if !refreshed => {
                    paths.answered(&guard);
                    refreshed = true;
                    last_error = "the node list was out of date".into();
                    self.refresh_nodes().await?;
                }
                Ok((status, body)) => {
                    paths.answered(&guard);
                    if let Some(i) = index {
                        paths.succeeded(i);
                    }
                    let skew = clock::reported_skew(status, &body);
                    match (skew, clock_before) {
                        (Some(skew), None) => {
                            tracing::info!(
                                skew_ms = skew,
                                "a swarm node says this clock is off; correcting it and retrying"
                            );
                            clock_before = Some(self.clock);
                            self.clock = self.clock.corrected(skew)?;
                            skipped.insert(destination.ed25519.0);
                            last_error = "the request's time was refused".into();
                            continue;
                        }
                        // A second member refuses the corrected time too:
                        // keep the saved offset (one of them is wrong).
                        (Some(_), Some(before)) => self.clock = before,
                        (None, Some(_)) => self.home.set_meta(clock::META_KEY, &self.clock.to_text())?,
                        (None, None) => {}
                    }
                    return Ok((status, body, destination));
                }
                Err(failure) => {
                    tracing::debug!(error = %failure.reason, "onion request failed; retrying");
                    last_error = failure.reason.clone();
                    let changed = match failure.blame {
                        Blame::Tor => return Err(Error::Tor(failure.reason)),
                        Blame::SlowDown if slowdowns < MAX_SLOWDOWNS => {
                            paths.answered(&guard);
                            slowdowns += 1;
                            attempt -= 1;
                            tokio::time::sleep(slowdown_pause(slowdowns)).await;
                            false
                        }
                        Blame::SlowDown => {
                            paths.answered(&guard);
                            false
                        }
                        Blame::Guard { certain } => {
                            let now = now_ms();
                            let mut budget = load_budget(&self.home, now)?;
                            let replaced =
                                paths.guard_failed(&guard, certain, &list, &mut budget, now, &self.doubts.doubted());
                            if replaced {
                                self.home.set_meta(guards::META_KEY, &budget.to_text())?;
                            }
                            replaced
                        }
                        Blame::Hop(hop) => {
                            paths.answered(&guard);
                            self.doubts.named(&[hop]);
                            failed_slot = index;
                            index.is_some_and(|i| paths.hop_failed(i, &[hop], &list, &self.doubts.doubted()))
                        }
                        Blame::Beyond(hops) => {
                            // Any of them may hang: each is doubted, and
                            // the path is counted, not rebuilt at once (a
                            // hung destination would otherwise churn
                            // healthy paths onto hung relays).
                            paths.answered(&guard);
                            self.doubts.named(&hops);
                            failed_slot = index;
                            index.is_some_and(|i| paths.hop_failed(i, &[], &list, &self.doubts.doubted()))
                        }
                        Blame::Path { answered } => {
                            if answered {
                                paths.answered(&guard);
                            }
                            // Nothing says where it failed: the destination
                            // is doubted (the swarm has other members), the
                            // path is counted.
                            self.doubts.add(destination.ed25519.0, 1);
                            failed_slot = index;
                            index.is_some_and(|i| paths.hop_failed(i, &[], &list, &self.doubts.doubted()))
                        }
                    };
                    if changed {
                        save_paths(&mut self.home, paths)?;
                    }
                }
            }
        }
        Err(Error::Network(format!(
            "no swarm node answered after {ATTEMPTS} attempts ({last_error})"
        )))
    }

    /// Seals `text` to `to` (with this account's display name; envelope v2
    /// if `to` published keys, else v1: [`Messenger::seal_for`]), keeps it
    /// in the outbox, and tries to store it; once stored, a copy sealed to
    /// this account (v1, so a restore from the phrase reads it) follows for
    /// its other devices. Sending to an account
    /// makes it a contact whose messages reach the inbox.
    ///
    /// In a conversation set to disappear, the message carries the rule;
    /// after send it is stored for just that long, after read for the
    /// usual time (the recipient shortens it once read), and this
    /// account's copies disappear that long after sending either way.
    pub async fn send(&mut self, to: AccountId, text: &str) -> Result<Delivery> {
        self.send_with_files(to, text, &[]).await
    }

    /// [`Messenger::send`] with files this device stored
    /// ([`Messenger::upload_file`]): their manifests travel in the message,
    /// and the history keeps them by its hash (with the uploads, so
    /// `unsend` can delete the chunks).
    pub async fn send_with_files(&mut self, to: AccountId, text: &str, files: &[UploadRecord]) -> Result<Delivery> {
        let now = now_ms();
        let mut content = Content::text(text, self.network_now());
        content.attachments = files.iter().map(|f| f.manifest.to_json()).collect();
        content.profile = self.own_profile()?;
        let rule = self.book()?.get(&to).and_then(|c| c.disappearing);
        content.disappear = rule;
        let (data, version) = self.seal_for(&to, &content, true).await?;
        let hash = rpc::message_hash(&to.into(), Namespace::DEFAULT, &data);
        let id = match rule {
            None => self.home.outbox_add(to, data, text, MESSAGE_TTL_MS, now)?,
            Some(rule) => {
                let ttl = match rule.after {
                    DisappearAfter::Send => rule.ms,
                    DisappearAfter::Read => MESSAGE_TTL_MS,
                };
                self.home.outbox_add_disappearing(to, data, text, ttl, now, rule.ms)?
            }
        };
        self.home.outbox_set_envelope(id, version)?;
        if !files.is_empty() {
            let kept: Vec<_> = files.iter().map(|f| (f.manifest.clone(), Some(f.id))).collect();
            self.home.put_files(&hash, &kept)?;
            for f in files {
                self.home.mark_upload_sent(f.id)?;
            }
        }
        if to != self.home.account_id() {
            self.approve(&to)?;
        }
        self.deliver_queued(id).await
    }

    /// The node a paged read of `what` last went to (saved in the home's
    /// settings): asked first next time, since a node that has this
    /// client's cursor answers only what is new, where another answers
    /// everything it holds.
    pub(crate) fn last_node(&self, what: &str) -> Option<[u8; 32]> {
        self.home
            .meta(&format!("last_node:{what}"))
            .ok()
            .flatten()
            .and_then(|text| hex::decode(text).ok())
            .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
    }

    /// Remembers that a paged read of `what` went to `node`.
    pub(crate) fn remember_node(&mut self, what: &str, node: &NodeEntry) -> Result<()> {
        if self.last_node(what) != Some(node.ed25519.0) {
            self.home
                .set_meta(&format!("last_node:{what}"), &hex::encode(node.ed25519.0))?;
        }
        Ok(())
    }

    /// Delivers outbox item `id` (with its copy, see
    /// [`Messenger::deliver_with_copy`]).
    pub(crate) async fn deliver_queued(&mut self, id: i64) -> Result<Delivery> {
        let item = self
            .home
            .outbox_pending()?
            .into_iter()
            .find(|i| i.id == id)
            .ok_or_else(|| Error::Usage("the message vanished from the outbox".into()))?;
        self.deliver_with_copy(item).await
    }

    /// This account's profile as its messages carry it (the display name).
    pub(crate) fn own_profile(&self) -> Result<Option<Profile>> {
        let profile = self.home.account_state(sync::PROFILE)?.0;
        let name = profile
            .get(sync::PROFILE_NAME)
            .and_then(Value::as_str)
            .map(str::to_owned);
        let avatar = self.own_avatar()?;
        Ok((name.is_some() || avatar.is_some()).then_some(Profile { name, avatar }))
    }

    /// Marks `account` approved (its messages reach the inbox), if it is
    /// not yet.
    pub fn approve(&mut self, account: &AccountId) -> Result<()> {
        let book = self.book()?;
        if book.is_approved(account) {
            return Ok(());
        }
        if book.listed() >= crate::home::MAX_CONTACTS {
            // The synced state has a size limit; its messages stay requests.
            tracing::warn!("the contact list is full; {account} is not made a contact");
            return Ok(());
        }
        self.edit_account_state(book::CONTACTS, |state, stamp| {
            book::write(state, account, book::field::APPROVED, Some(Value::Bool(true)), stamp);
        })
    }

    /// The contact book as this device holds it.
    pub fn book(&self) -> Result<Book> {
        Ok(Book::of(&self.home)?)
    }

    /// Delivers `item`; once a message (not itself a copy) to another
    /// account is stored, queues and delivers its copy for this account's
    /// other devices (left in the outbox if that does not finish now).
    async fn deliver_with_copy(&mut self, item: OutboxItem) -> Result<Delivery> {
        let delivery = self.deliver(item.clone()).await?;
        if let Delivery::Stored(hash) = &delivery
            && !item.control
            && item.to != self.home.account_id()
        {
            let mut copy = Content::text(item.body.as_str(), item.created_ms);
            // The account's other devices get the files too.
            copy.attachments = self.home.files_of(hash)?.iter().map(|f| f.manifest.to_json()).collect();
            copy.sent = Some(SentCopy {
                to: item.to.to_string(),
                hash: hash.clone(),
            });
            // The copies disappear when this device's entry does.
            copy.disappear = item.disappear_ms.map(|ms| Disappear {
                after: DisappearAfter::Send,
                ms,
            });
            let ends = item
                .disappear_ms
                .map_or(item.expires_ms(), |d| item.created_ms.saturating_add(d));
            let me = self.home.account_id();
            let (data, _) = self.seal_for(&me, &copy, false).await?;
            let ttl = ends.saturating_sub(now_ms()).clamp(rpc::MIN_TTL_MS, rpc::MAX_TTL_MS);
            self.home
                .set_copy_hash(hash, &rpc::message_hash(&me.into(), Namespace::DEFAULT, &data))?;
            let id = self.home.outbox_add_control(me, data, ttl, item.created_ms)?;
            if let Some(copy) = self.home.outbox_pending()?.into_iter().find(|i| i.id == id)
                && let Delivery::Pending(why) = self.deliver(copy).await?
            {
                tracing::debug!(%why, "the copy for other devices stays in the outbox");
            }
        }
        Ok(delivery)
    }

    /// Stores an outbox item in its recipient's swarm until enough
    /// distinct members confirmed it ([`Tally`]), asking up to
    /// [`STORE_ROUNDS`] members in turn; confirmations add up across them.
    /// A refusal no retry can mend (400, 401, 413) from as many distinct
    /// members removes the item. Anything else leaves it in the outbox,
    /// due again after the backoff.
    async fn deliver(&mut self, item: OutboxItem) -> Result<Delivery> {
        let to = item.to;
        // The hash every confirmation must sign: computed here, not taken
        // from the node.
        let hash = rpc::message_hash(&to.into(), Namespace::DEFAULT, &item.data);
        // The node checks the timestamp against its clock, so a retried
        // message is stored with the time of this attempt and what is left
        // of its life.
        let remaining = item
            .expires_ms()
            .saturating_sub(now_ms())
            .clamp(rpc::MIN_TTL_MS, rpc::MAX_TTL_MS);
        let data = Base64Bytes(item.data.clone());
        let make = move |_: &Home, _: &NodeEntry, now: u64| -> Result<Value> {
            Ok(Call::Store(StoreParams {
                chunk: None,
                pubkey: to.into(),
                namespace: Namespace::DEFAULT,
                timestamp: now,
                ttl: remaining,
                data: data.clone(),
                pubkey_ed25519: None,
                signature: None,
                credential: None,
            })
            .to_json())
        };
        let mut asked: HashSet<[u8; 32]> = HashSet::new();
        let mut tally = Tally::new(&hash);
        let mut problem = String::from("no attempt made");
        for _ in 0..STORE_ROUNDS {
            let (status, body, node) = match self.call(&to, &make, REQUEST_TIMEOUT, None, &asked).await {
                Ok(answer) => answer,
                Err(e) => {
                    // After an answer, what it lacked says more than why no
                    // other member could be asked.
                    if asked.is_empty() {
                        problem = e.to_string();
                    }
                    break;
                }
            };
            asked.insert(node.ed25519.0);
            let members = self.swarm_members(&to)?;
            match tally.add(&node.ed25519.0, status, &body, &members) {
                Verdict::Stored => {
                    self.home.outbox_confirm(item.id, &hash)?;
                    return Ok(Delivery::Stored(hash));
                }
                Verdict::Refused(why) => {
                    self.home.outbox_fail(item.id, &why)?;
                    return Ok(Delivery::Failed(why));
                }
                Verdict::Open(why) => problem = why,
            }
        }
        self.home.outbox_mark_attempt(item.id, &problem, now_ms())?;
        Ok(Delivery::Pending(problem))
    }

    /// Retries every message in the outbox whose next attempt is due;
    /// reports those whose time to live ran out (removed, never silently).
    pub async fn flush_outbox(&mut self) -> Result<(Vec<(OutboxItem, Delivery)>, Vec<OutboxItem>)> {
        let expired = self.home.outbox_expired(now_ms())?;
        let mut results = Vec::new();
        for item in self.home.outbox_due(now_ms())? {
            let delivery = self.deliver_with_copy(item.clone()).await?;
            results.push((item, delivery));
        }
        Ok((results, expired))
    }
}
