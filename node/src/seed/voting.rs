//! The seed's part in the consensus: vote, collect the other seeds' votes,
//! compute, sign, collect their signatures, publish.
//!
//! For each period `p` (see [`Schedule`]):
//!
//! 1. at `vote_at(p)` the seed makes its vote from its registry, with each
//!    node's swarm in the newest consensus it holds, and serves it at
//!    `POST /seed/v1/vote`;
//! 2. until `sign_at(p)` it fetches the votes of the other configured
//!    seeds (a vote that comes later is not counted);
//! 3. at `sign_at(p)` it computes the consensus
//!    ([`allium_common::consensus::compute`]), signs its digest and serves
//!    the document with the signatures it holds at `POST /seed/v1/consensus`;
//! 4. until the next vote it fetches the other seeds' documents and keeps
//!    their signatures over the same digest. Once more than half of the
//!    seeds signed, the document is the seed's current consensus: the one
//!    `node_list` answers, saved to `DATA_DIR/consensus.json`.
//!
//! A seed that computed something else says so in its log with the
//! digests; if the others' document carries a majority it follows that one
//! (a seed that was down, or missed votes, catches up the same way).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use allium_common::consensus::{
    Consensus, ConsensusParams, SUPPORTED_METHODS, Schedule, SeedKey, SigningKeyCert, UnverifiedConsensus, Vote,
    compute_after, random, threshold,
};
use allium_common::node_list::MAX_ENCODED_LEN;
use allium_common::seeds::Seed;
use allium_common::sodium;
use serde::{Deserialize, Serialize};

use crate::config::SeedMode;
use crate::error::{Error, Result};
use crate::peer::outbound::Call;
use crate::state::{Node, now_ms};

/// Deadline of one call to another seed.
const SEED_CALL_TIMEOUT: Duration = Duration::from_secs(5);
/// Most periods of votes and documents kept.
const KEEP_PERIODS: u64 = 4;

/// The body of `POST /seed/v1/vote` and `POST /seed/v1/consensus`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeriodRequest {
    /// The period asked for.
    pub period: u64,
}

#[derive(Debug, Default)]
struct State {
    /// Votes by period, by seed (this seed's own included).
    votes: BTreeMap<u64, BTreeMap<[u8; 32], Vote>>,
    /// This seed's computed documents with the signatures it holds.
    computed: BTreeMap<u64, Consensus>,
    /// The newest consensus a majority signed.
    current: Option<Consensus>,
    /// The random values this seed committed to, by period; each is
    /// revealed in the next period's vote (kept in memory only: after a
    /// restart the seed's first vote reveals nothing).
    reveals: BTreeMap<u64, [u8; 32]>,
}

/// Counters for `/metrics`.
#[derive(Debug, Default)]
pub struct VotingStats {
    /// Votes of other seeds taken.
    pub votes_received: AtomicU64,
    /// Periods this seed could not compute a consensus for.
    pub failed_periods: AtomicU64,
    /// Documents of other seeds that differed from this seed's.
    pub disagreements: AtomicU64,
}

/// The seed's voting state.
#[derive(Debug)]
pub struct Voting {
    me: [u8; 32],
    cert: Option<SigningKeyCert>,
    seeds: Vec<Seed>,
    keys: Vec<[u8; 32]>,
    schedule: Schedule,
    params: ConsensusParams,
    path: PathBuf,
    clock_offset_ms: i64,
    state: Mutex<State>,
    /// Counters.
    pub stats: VotingStats,
}

impl Voting {
    /// The voting state of seed `me` among `seeds` (the seed file; empty:
    /// a network with this seed alone), with the consensus saved in
    /// `data_dir` if it still verifies. `me` is the seed's identity: its
    /// node key, or the identity `cert` names (the node key then signs for
    /// it under that certificate).
    pub fn open(
        data_dir: &Path,
        me: [u8; 32],
        cert: Option<SigningKeyCert>,
        seeds: Vec<Seed>,
        settings: &SeedMode,
    ) -> Result<Self> {
        let seeds = if seeds.is_empty() {
            vec![Seed {
                address: String::new(),
                ed25519: me,
            }]
        } else {
            seeds
        };
        let keys: Vec<[u8; 32]> = seeds.iter().map(|s| s.ed25519).collect();
        if !keys.contains(&me) {
            return Err(Error::config(format!(
                "this seed's key {} is not in the seed file: seeds must list each other",
                hex::encode(me)
            )));
        }
        let path = data_dir.join("consensus.json");
        let current = match std::fs::read(&path) {
            Ok(bytes) => match Consensus::decode(&bytes).and_then(|c| c.verify(&keys, now_ms())) {
                Ok(c) => Some(c),
                Err(e) => {
                    tracing::warn!(error = %e, path = %path.display(), "the saved consensus no longer verifies; waiting for a new one");
                    None
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(Error::io(&path, e)),
        };
        let params = ConsensusParams {
            min_swarm_size: u32::try_from(settings.min_swarm_size).unwrap_or(u32::MAX),
            target_swarm_size: u32::try_from(settings.target_swarm_size).unwrap_or(u32::MAX),
            max_swarm_size: u32::try_from(settings.max_swarm_size).unwrap_or(u32::MAX),
            probation_ms: settings.probation_ms,
            guard_after_ms: settings.guard_after_ms,
        };
        Ok(Self {
            me,
            cert,
            seeds,
            keys,
            schedule: Schedule::new(settings.period_ms),
            params,
            path,
            clock_offset_ms: settings.clock_offset_ms,
            state: Mutex::new(State {
                current,
                ..State::default()
            }),
            stats: VotingStats::default(),
        })
    }

    /// This seed's idea of the time, Unix ms.
    fn now(&self) -> u64 {
        now_ms().saturating_add_signed(self.clock_offset_ms)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The configured seed keys.
    pub fn keys(&self) -> &[[u8; 32]] {
        &self.keys
    }

    /// The newest consensus a majority of the seeds signed.
    pub fn current(&self) -> Option<Consensus> {
        self.lock().current.clone()
    }

    /// This seed's vote for `period`, if it made one.
    pub fn vote(&self, period: u64) -> Option<Vote> {
        self.lock().votes.get(&period)?.get(&self.me).cloned()
    }

    /// This seed's document for `period` with the signatures it holds.
    pub fn computed(&self, period: u64) -> Option<Consensus> {
        self.lock().computed.get(&period).cloned()
    }

    /// What this seed signs with: the node key, under the certificate if
    /// the identity is kept offline.
    fn signer<'a>(&'a self, node: &'a Node) -> SeedKey<'a> {
        SeedKey {
            key: &node.identity,
            cert: self.cert.as_ref(),
        }
    }

    /// Makes and keeps this seed's vote for `period`.
    fn make_vote(&self, node: &Node, period: u64) -> Result<(), String> {
        let Some(registry) = node.registry() else {
            return Err("not a seed".into());
        };
        let entries = registry.vote_entries(self.current().as_ref());
        let reveal = sodium::random_array::<32>();
        let earlier = self.lock().reveals.get(&period.saturating_sub(1)).copied();
        let vote = Vote::sign(
            period,
            self.schedule.period_ms(),
            self.now(),
            SUPPORTED_METHODS.to_vec(),
            self.params,
            entries,
            self.signer(node),
        )
        .map_err(|e| e.to_string())?
        .with_shared_random(random::commit_of(&reveal), earlier, self.signer(node));
        let mut state = self.lock();
        if state.votes.get(&period).is_some_and(|v| v.contains_key(&self.me)) {
            // One vote per period: a second, with another commit, would
            // make the seed's votes for this period count for none.
            return Ok(());
        }
        state.votes.entry(period).or_default().insert(self.me, vote);
        state.reveals.insert(period, reveal);
        let oldest = period.saturating_sub(KEEP_PERIODS);
        state.votes.retain(|p, _| *p > oldest);
        state.computed.retain(|p, _| *p > oldest);
        state.reveals.retain(|p, _| *p > oldest);
        Ok(())
    }

    /// Takes another seed's vote for `period` if it verifies.
    fn take_vote(&self, vote: Vote, period: u64) -> Result<(), String> {
        if vote.period != period {
            return Err(format!("a vote for period {} when {period} was asked", vote.period));
        }
        // Keys the current consensus lists were checked when it was.
        vote.verify_after(&self.keys, self.current().as_ref())
            .map_err(|e| e.to_string())?;
        self.lock().votes.entry(period).or_default().insert(vote.seed.0, vote);
        self.stats.votes_received.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    fn has_vote(&self, period: u64, seed: &[u8; 32]) -> bool {
        self.lock().votes.get(&period).is_some_and(|v| v.contains_key(seed))
    }

    /// Computes and signs the consensus for `period` from the votes held.
    fn compute_and_sign(&self, node: &Node, period: u64) -> Result<(), String> {
        let votes: Vec<Vote> = self
            .lock()
            .votes
            .get(&period)
            .map(|v| v.values().cloned().collect())
            .unwrap_or_default();
        let previous = self.current();
        let mut consensus =
            compute_after(&votes, &self.keys, &self.schedule, period, previous.as_ref()).map_err(|e| e.to_string())?;
        let digest = consensus.digest();
        consensus.add_signature(Consensus::signature_by(self.signer(node), &digest));
        tracing::debug!(
            period,
            votes = votes.len(),
            nodes = consensus.nodes.len(),
            digest = %hex::encode(&digest[..8]),
            "computed and signed the consensus"
        );
        self.lock().computed.insert(period, consensus);
        self.promote(node, period);
        Ok(())
    }

    /// Merges another seed's document for `period`: its signatures over
    /// this seed's digest are kept; a different document is reported, and
    /// followed if a majority signed it.
    fn merge(&self, node: &Node, from: &str, offered: UnverifiedConsensus, period: u64) {
        if offered.period() != period {
            return;
        }
        let theirs = offered.digest();
        let (ours, our_voters) = {
            let state = self.lock();
            let mine = state.computed.get(&period);
            (mine.map(Consensus::digest), mine.map(|c| self.names(&c.voters)))
        };
        let their_voters = self.names(offered.voters());
        if ours == Some(theirs) {
            let doc = offered.into_unchecked();
            let mut state = self.lock();
            if let Some(mine) = state.computed.get_mut(&period) {
                for signature in doc.signatures {
                    if self.keys.contains(&signature.seed.0)
                        && Consensus::signature_verifies(&signature, &theirs, doc.valid_after)
                    {
                        mine.add_signature(signature);
                    }
                }
            }
            drop(state);
            self.promote(node, period);
            return;
        }
        self.stats.disagreements.fetch_add(1, Ordering::Relaxed);
        let majority = offered.verify(&self.keys, self.now()).ok();
        let what = if majority.is_some() {
            "this seed is out of agreement: a majority signed another consensus; following it \
             (different votes: compare who voted; the same votes: check this seed's method and version)"
        } else {
            "another seed computed a different consensus (different votes or method)"
        };
        tracing::warn!(
            period,
            seed = from,
            ours = ?ours.map(|d| hex::encode(&d[..8])),
            theirs = %hex::encode(&theirs[..8]),
            our_votes_from = ?our_voters,
            their_votes_from = ?their_voters,
            "{what}"
        );
        if let Some(majority) = majority {
            self.install(node, majority);
        }
    }

    /// Makes this seed's document for `period` current once a majority
    /// signed it.
    fn promote(&self, node: &Node, period: u64) {
        let Some(doc) = self.lock().computed.get(&period).cloned() else {
            return;
        };
        if doc.has_majority(&self.keys) {
            self.install(node, doc);
        }
    }

    /// Makes `consensus` (majority-signed) current if it is newer, saves
    /// it, and follows it locally.
    fn install(&self, node: &Node, consensus: Consensus) {
        {
            let mut state = self.lock();
            let newer = state.current.as_ref().is_none_or(|c| consensus.period > c.period);
            let more_signed = state
                .current
                .as_ref()
                .is_some_and(|c| c.period == consensus.period && c.signatures.len() < consensus.signatures.len());
            if !newer && !more_signed {
                return;
            }
            state.current = Some(consensus.clone());
        }
        if let Err(e) = save_atomically(&self.path, &consensus.encode()) {
            tracing::error!(error = %e, path = %self.path.display(), "cannot save the consensus");
        }
        if let Err(e) = node.directory.install(consensus.into(), self.now()) {
            tracing::debug!(error = %e, "the seed's directory did not take the consensus");
        }
    }

    /// Seed keys by address (the key in hex if it is not a configured seed).
    fn names(&self, keys: &[allium_common::encoding::Hex32]) -> Vec<String> {
        keys.iter()
            .map(|k| {
                self.seeds
                    .iter()
                    .find(|s| s.ed25519 == k.0)
                    .map_or_else(|| hex::encode(k.0), |s| s.address.clone())
            })
            .collect()
    }

    /// The other seeds.
    fn others(&self) -> impl Iterator<Item = &Seed> {
        self.seeds.iter().filter(move |s| s.ed25519 != self.me)
    }

    fn retry_every(&self) -> Duration {
        Duration::from_millis((self.schedule.period_ms() / 20).clamp(50, 5000))
    }
}

/// Writes `bytes` to `path` atomically and durably.
fn save_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let tmp = path.with_extension("json.tmp");
    let mut file = std::fs::File::create(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// `POST path {"period": p}` to another seed.
async fn ask(node: &Node, seed: &Seed, path: &'static str, period: u64) -> Option<Vec<u8>> {
    let call = Call {
        address: seed.address.clone(),
        pin: Some(seed.ed25519),
        path,
        headers: Vec::new(),
        content_type: "application/json",
        body: serde_json::to_vec(&PeriodRequest { period }).unwrap_or_default(),
        deadline: SEED_CALL_TIMEOUT,
        max_answer: MAX_ENCODED_LEN,
    };
    let answer = node.peers.call(call).await.ok()?;
    answer.is_success().then_some(answer.body)
}

/// Asks `seeds` at once, each `POST path {"period": period}`; the answers
/// that came, or `None` if `until` came first.
async fn ask_all<'a>(
    node: &Node,
    voting: &Voting,
    seeds: Vec<&'a Seed>,
    path: &'static str,
    period: u64,
    until: u64,
) -> Option<Vec<(&'a Seed, Vec<u8>)>> {
    let fetches = seeds
        .into_iter()
        .map(|seed| async move { Some((seed, ask(node, seed, path, period).await?)) });
    let round = tokio::time::timeout(
        Duration::from_millis(until.saturating_sub(voting.now())),
        futures_util::future::join_all(fetches),
    );
    Some(round.await.ok()?.into_iter().flatten().collect())
}

async fn sleep_until(voting: &Voting, at: u64) {
    let now = voting.now();
    if at > now {
        tokio::time::sleep(Duration::from_millis(at - now)).await;
    }
}

/// Runs the seed's voting forever.
pub async fn run(node: Arc<Node>) {
    let Some(voting) = node.voting() else {
        return;
    };
    if let Some(current) = voting.current() {
        voting.install(&node, current);
    }
    let schedule = voting.schedule;
    // The next period whose vote is still ahead.
    let ahead = |now: u64| {
        let period = schedule.next_period(now);
        if now > schedule.vote_at(period) {
            period + 1
        } else {
            period
        }
    };
    let mut period = ahead(voting.now());
    loop {
        sleep_until(voting, schedule.vote_at(period)).await;
        if let Err(e) = voting.make_vote(&node, period) {
            tracing::error!(period, error = %e, "cannot make this seed's vote");
        }
        collect_votes(&node, voting, period).await;
        sleep_until(voting, schedule.sign_at(period)).await;
        if let Err(e) = voting.compute_and_sign(&node, period) {
            voting.stats.failed_periods.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(period, error = %e, "no consensus computed for this period");
        }
        collect_signatures(&node, voting, period, schedule.vote_at(period + 1)).await;
        period += 1;
        // Fallen behind (a stalled process, a clock that jumped): skip to
        // the next period that can still be voted on in time.
        if voting.now() > schedule.sign_at(period) {
            period = ahead(voting.now());
        }
    }
}

/// Fetches the other seeds' votes for `period` until all are in or
/// `sign_at(period)` has come.
async fn collect_votes(node: &Node, voting: &Voting, period: u64) {
    let until = voting.schedule.sign_at(period);
    while voting.now() < until {
        let missing: Vec<&Seed> = voting
            .others()
            .filter(|s| !voting.has_vote(period, &s.ed25519))
            .collect();
        if missing.is_empty() {
            return;
        }
        let Some(answers) = ask_all(node, voting, missing, "/seed/v1/vote", period, until).await else {
            return;
        };
        for (seed, body) in answers {
            let taken = Vote::decode(&body)
                .map_err(|e| e.to_string())
                .and_then(|v| voting.take_vote(v, period));
            if let Err(e) = taken {
                tracing::warn!(seed = %seed.address, period, error = %e, "refused a seed's vote");
            }
        }
        tokio::time::sleep(voting.retry_every()).await;
    }
}

/// Fetches the other seeds' documents for `period` until every seed's
/// signature is in or `until` has come.
async fn collect_signatures(node: &Node, voting: &Voting, period: u64, until: u64) {
    while voting.now() < until {
        let complete = voting
            .computed(period)
            .is_some_and(|c| c.signatures.len() >= voting.keys().len());
        let following = voting
            .current()
            .is_some_and(|c| c.period >= period && c.signatures.len() >= threshold(voting.keys().len()));
        if complete || (following && voting.computed(period).is_none()) {
            return;
        }
        let others = voting.others().collect();
        let Some(answers) = ask_all(node, voting, others, "/seed/v1/consensus", period, until).await else {
            return;
        };
        for (seed, body) in answers {
            match Consensus::decode(&body) {
                Ok(doc) => voting.merge(node, &seed.address, doc, period),
                Err(e) => tracing::warn!(seed = %seed.address, period, error = %e, "refused a seed's consensus"),
            }
        }
        tokio::time::sleep(voting.retry_every()).await;
    }
}
