//! The `files` scenario of `allium-bench` (issue 14, `docs/files.md`):
//! file throughput through onion paths on a local network, and where its
//! time and CPU go.
//!
//! Two accounts in this process (the sender and a receiver that takes it
//! as a contact). For each chunk parallelism (`set_file_parallelism`), and
//! each round, a fresh random file is written, uploaded
//! ([`Messenger::upload_file`]), sent ([`Messenger::send_with_files`]),
//! received (`inbox`) and downloaded ([`Messenger::download_file`]); then
//! its chunks are deleted, so every setting starts from the same network.
//! Each transfer is timed (whole call, first chunk, the chunks' steady
//! rate) and charged the CPU the nodes and this process spent on it
//! (`/proc/PID/stat`), beside the machine's busy and iowait share and the
//! bytes the nodes wrote. Before that, one chunk at a time is stored and
//! fetched through an onion path and straight to the node, with an onion
//! `info` beside it, to split a chunk's round trip into onion and
//! store/replication.
//!
//! Figures: MB = 10^6 bytes; CPU in CPU-seconds (one core busy for one
//! second); "per MB" divides by the file's MB.

use std::collections::{BTreeMap, HashSet};
use std::io::Write as _;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use allium_client::files::Progress;
use allium_client::messenger::{Delivery, Messenger};
use allium_common::consensus::Consensus;
use allium_common::encoding::{Base64Bytes, Hex32, Sig64};
use allium_common::files::{CHUNK_LEN, ChunkId, RECORD_LEN};
use allium_common::node_list::NodeEntry;
use allium_common::rpc::{self, Call, Namespace, RetrievePublicParams, StoreParams};
use allium_common::{Identity, MailboxId, sodium};
use allium_node::devnet::LocalNet;
use anyhow::{Context as _, anyhow, bail};
use serde_json::{Value, json};

/// What the scenario runs.
#[derive(Debug, Clone)]
pub struct FilesBench {
    /// The file's size in bytes.
    pub size: u64,
    /// Chunks in flight, one transfer each (per round).
    pub parallelism: Vec<usize>,
    /// Times each setting is run (in alternating order); the tables show
    /// medians.
    pub rounds: usize,
    /// Single-chunk requests timed of each kind (0: none).
    pub samples: usize,
    /// Plain HTTP links (`--plaintext`).
    pub plaintext: bool,
}

/// How long the chunks live: long enough that a failed upload resumes
/// (the client resumes only uploads that outlive the message by an hour).
const FILE_TTL_MS: u64 = 24 * 3_600_000;
/// Tries of one transfer (each resumes the one before).
const TRANSFER_TRIES: usize = 5;
/// Longest wait for the nodes' replication queues to empty.
const QUIET_TIMEOUT: Duration = Duration::from_secs(60);
/// Deadline of one single-chunk request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Node counters summed over the nodes before and after each transfer.
const COUNTERS: [&str; 9] = [
    "allium_rate_limited_total",
    "allium_replication_sync_timeouts_total",
    "allium_replication_not_waited_total",
    "allium_relay_failures_total",
    "allium_replicated_out_total",
    "allium_onion_final_total",
    "allium_onion_relayed_hops_total",
    "allium_peer_budget_refused_total",
    "allium_push_refused_total",
];

/// User + system CPU seconds of a process (`/proc/PID/stat`, 100 ticks a
/// second).
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

/// Bytes a process caused to be written to storage (`/proc/PID/io`).
fn write_bytes(pid: u32) -> Option<u64> {
    let io = std::fs::read_to_string(format!("/proc/{pid}/io")).ok()?;
    io.lines()
        .find_map(|l| l.strip_prefix("write_bytes:"))
        .and_then(|v| v.trim().parse().ok())
}

/// The machine's CPU ticks: (busy, iowait, all), from `/proc/stat`.
fn machine_ticks() -> Option<(u64, u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    // user nice system idle iowait irq softirq steal (guest is in user).
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .take(8)
        .filter_map(|x| x.parse().ok())
        .collect();
    if v.len() < 8 {
        return None;
    }
    let all: u64 = v.iter().sum();
    let (idle, iowait) = (v[3], v[4]);
    Some((all - idle - iowait, iowait, all))
}

/// The pids of the network's processes (seeds and nodes), from the info
/// file each writes.
fn node_pids(net: &LocalNet) -> Vec<u32> {
    net.seeds
        .iter()
        .chain(&net.nodes)
        .filter_map(|node| {
            let info: Value = serde_json::from_str(&std::fs::read_to_string(node.dir.join("node.json")).ok()?).ok()?;
            u32::try_from(info["pid"].as_u64()?).ok()
        })
        .collect()
}

/// What the processes had spent at one moment.
#[derive(Debug, Clone)]
struct Snapshot {
    at: Instant,
    nodes: Vec<f64>,
    own: f64,
    machine: (u64, u64, u64),
    writes: u64,
}

/// What they spent between two snapshots.
#[derive(Debug, Clone, Copy, Default)]
struct Usage {
    wall: f64,
    nodes_cpu: f64,
    /// The busiest node's CPU.
    max_node_cpu: f64,
    own_cpu: f64,
    /// Share of all cores busy, and waiting for I/O, %.
    busy_pct: f64,
    iowait_pct: f64,
    /// Bytes the nodes wrote to storage.
    writes: u64,
}

/// Reads a node's `/metrics`: every counter this scenario watches, and
/// the stores and public reads it answered with another status than 200.
async fn node_counters(http: &reqwest::Client, scheme: &str, address: &str, into: &mut BTreeMap<String, u64>) {
    let Ok(response) = http
        .get(format!("{scheme}://{address}/metrics"))
        .timeout(Duration::from_secs(10))
        .send()
        .await
    else {
        return;
    };
    let Ok(text) = response.text().await else {
        return;
    };
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some((key, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let Ok(value) = value.trim().parse::<u64>() else {
            continue;
        };
        let name = if COUNTERS.contains(&key)
            || key == "allium_replication_queue"
            || key == "allium_replication_backing_off"
        {
            key.to_owned()
        } else if let Some(rest) = key.strip_prefix("allium_rpc_requests_total{method=\"")
            && let Some((method, status)) = rest.split_once("\",status=\"")
            && matches!(method, "store" | "retrieve_public")
            && status != "200\"}"
        {
            format!("{method}_not_200")
        } else {
            continue;
        };
        *into.entry(name).or_default() += value;
    }
}

/// The scenario's view of the network.
struct Net<'a> {
    net: &'a LocalNet,
    pids: Vec<u32>,
    http: reqwest::Client,
    scheme: &'static str,
    cores: f64,
}

impl Net<'_> {
    async fn counters(&self) -> BTreeMap<String, u64> {
        let mut sum = BTreeMap::new();
        for node in &self.net.nodes {
            node_counters(&self.http, self.scheme, &node.address, &mut sum).await;
        }
        sum
    }

    /// What the processes spent so far (read at once, before or after
    /// the counters, so the window holds no `/metrics` requests).
    fn cpu(&self) -> Snapshot {
        Snapshot {
            at: Instant::now(),
            nodes: self.pids.iter().map(|p| cpu_seconds(*p).unwrap_or(0.0)).collect(),
            own: cpu_seconds(std::process::id()).unwrap_or(0.0),
            machine: machine_ticks().unwrap_or((0, 0, 1)),
            writes: self.pids.iter().filter_map(|p| write_bytes(*p)).sum(),
        }
    }

    /// Waits until no node has replications queued or backing off (or
    /// [`QUIET_TIMEOUT`]); returns how long that took.
    async fn quiet(&self) -> f64 {
        let t = Instant::now();
        while t.elapsed() < QUIET_TIMEOUT {
            let c = self.counters().await;
            let queued = c.get("allium_replication_queue").copied().unwrap_or(0)
                + c.get("allium_replication_backing_off").copied().unwrap_or(0);
            if queued == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        t.elapsed().as_secs_f64()
    }
}

impl Usage {
    /// The share of all cores that neither the nodes nor this process
    /// used (another program on the machine), %.
    fn other_pct(&self, cores: f64) -> f64 {
        let ours = 100.0 * (self.nodes_cpu + self.own_cpu) / (self.wall.max(1e-9) * cores);
        (self.busy_pct - ours).max(0.0)
    }
}

fn usage(a: &Snapshot, b: &Snapshot) -> Usage {
    let deltas: Vec<f64> = a.nodes.iter().zip(&b.nodes).map(|(x, y)| y - x).collect();
    let all = b.machine.2.saturating_sub(a.machine.2).max(1) as f64;
    Usage {
        wall: b.at.duration_since(a.at).as_secs_f64(),
        nodes_cpu: deltas.iter().sum(),
        max_node_cpu: deltas.iter().copied().fold(0.0, f64::max),
        own_cpu: b.own - a.own,
        busy_pct: 100.0 * b.machine.0.saturating_sub(a.machine.0) as f64 / all,
        iowait_pct: 100.0 * b.machine.1.saturating_sub(a.machine.1) as f64 / all,
        writes: b.writes.saturating_sub(a.writes),
    }
}

fn counter_deltas(a: &BTreeMap<String, u64>, b: &BTreeMap<String, u64>) -> BTreeMap<String, u64> {
    b.iter()
        .filter(|(k, _)| {
            !matches!(
                k.as_str(),
                "allium_replication_queue" | "allium_replication_backing_off"
            )
        })
        .map(|(k, v)| {
            let short = k.trim_start_matches("allium_").trim_end_matches("_total").to_owned();
            (short, v.saturating_sub(a.get(k).copied().unwrap_or(0)))
        })
        .collect()
}

/// The progress a transfer reported, timed from its start.
#[derive(Debug)]
struct Timeline {
    start: Instant,
    points: Mutex<Vec<(u32, f64)>>,
}

impl Timeline {
    fn new() -> Self {
        Self {
            start: Instant::now(),
            points: Mutex::new(Vec::with_capacity(20_000)),
        }
    }

    fn record(&self, p: Progress) {
        let at = self.start.elapsed().as_secs_f64();
        if let Ok(mut points) = self.points.lock() {
            points.push((p.done, at));
        }
    }

    fn points(&self) -> Vec<(u32, f64)> {
        self.points.lock().map(|p| p.clone()).unwrap_or_default()
    }
}

/// What a timeline says of one transfer of `chunks` chunks.
#[derive(Debug, Clone, Copy, Default)]
struct Shape {
    /// The first report (before any chunk: the upload's hashing pass).
    first_report: f64,
    /// The first chunk done (time to first byte).
    first_chunk: f64,
    /// The last chunk done.
    last_chunk: f64,
    /// MB/s of the chunks between 10% and 90% done.
    steady_mbps: f64,
}

fn shape(points: &[(u32, f64)], chunks: u32) -> Shape {
    let at = |n: u32| points.iter().find(|(d, _)| *d >= n).map(|(_, t)| *t);
    let (t10, t90) = (chunks / 10, chunks * 9 / 10);
    let steady = match (at(t10.max(1)), at(t90)) {
        (Some(a), Some(b)) if b > a && t90 > t10.max(1) => {
            f64::from(t90 - t10.max(1)) * RECORD_LEN as f64 / 1e6 / (b - a)
        }
        _ => 0.0,
    };
    Shape {
        first_report: points.first().map_or(0.0, |p| p.1),
        first_chunk: at(1).unwrap_or(0.0),
        last_chunk: at(chunks).unwrap_or(0.0),
        steady_mbps: steady,
    }
}

/// One transfer's figures.
#[derive(Debug, Clone, Default)]
struct Transfer {
    seconds: f64,
    shape: Shape,
    usage: Usage,
    /// Until the nodes' replication queues emptied after it, and the node
    /// CPU spent in that time.
    tail_s: f64,
    tail_nodes_cpu: f64,
    retries: usize,
    counters: BTreeMap<String, u64>,
}

impl Transfer {
    fn mbps(&self, mb: f64) -> f64 {
        mb / self.seconds.max(1e-9)
    }

    /// The MB/s the machine's cores would carry if this transfer's CPU
    /// (nodes and this process) per MB were all that ran.
    fn cpu_ceiling(&self, mb: f64, cores: f64) -> f64 {
        cores * mb / (self.usage.nodes_cpu + self.usage.own_cpu).max(1e-9)
    }

    fn rate_limited(&self) -> f64 {
        self.counters.get("rate_limited").copied().unwrap_or(0) as f64
    }

    fn to_json(&self, mb: f64, cores: f64, parallelism: usize, chunks: u32) -> Value {
        let u = &self.usage;
        let moving = (self.shape.last_chunk - self.shape.first_report).max(1e-9);
        json!({
            "seconds": self.seconds, "mb_per_s": self.mbps(mb), "steady_mb_per_s": self.shape.steady_mbps,
            "first_report_s": self.shape.first_report, "first_chunk_ms": self.shape.first_chunk * 1000.0,
            "last_chunk_s": self.shape.last_chunk,
            "chunk_latency_ms": parallelism as f64 * moving / f64::from(chunks.max(1)) * 1000.0,
            "nodes_cpu_s": u.nodes_cpu, "nodes_cpu_s_per_mb": u.nodes_cpu / mb,
            "max_node_cpu_s": u.max_node_cpu, "client_cpu_s": u.own_cpu, "client_cpu_s_per_mb": u.own_cpu / mb,
            "machine_busy_pct": u.busy_pct, "iowait_pct": u.iowait_pct,
            "node_writes_mb": u.writes as f64 / 1e6,
            "tail_s": self.tail_s, "tail_nodes_cpu_s": self.tail_nodes_cpu,
            "cpu_ceiling_mb_per_s": self.cpu_ceiling(mb, cores),
            "retries": self.retries, "node_counters": self.counters,
        })
    }
}

/// Writes `size` random bytes to `path`, 1 MiB at a time.
fn random_file(path: &Path, size: u64) -> anyhow::Result<()> {
    let mut file = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut block = vec![0u8; 1 << 20];
    let mut left = size;
    while left > 0 {
        let n = usize::try_from(left.min(block.len() as u64))?;
        sodium::random_bytes(&mut block[..n]);
        file.write_all(&block[..n])?;
        left -= n as u64;
    }
    file.flush()?;
    file.into_inner().map_err(|e| anyhow!("{e}"))?.sync_all()?;
    Ok(())
}

fn new_messenger(dir: &Path, name: &str, net: &LocalNet, plaintext: bool) -> anyhow::Result<Messenger> {
    let seeds = allium_common::seeds::parse(&std::fs::read_to_string(&net.seed_file)?)?;
    let home = allium_client::home::Home::create(
        &dir.join(name),
        &sodium::random_array(),
        allium_client::home::IdentitySource::Bip39,
    )?;
    Ok(Messenger::new(
        home,
        seeds,
        allium_client::transport::Transport::direct_with(plaintext)?,
    ))
}

/// One round of one setting: upload, send, receive, download, delete.
async fn one_setting(
    env: &Net<'_>,
    dir: &Path,
    alice: &mut Messenger,
    bob: &mut Messenger,
    size: u64,
    parallelism: usize,
) -> anyhow::Result<(Transfer, Transfer)> {
    let chunks = u32::try_from(size.div_ceil(RECORD_LEN as u64))?;
    let source = dir.join(format!("upload-{parallelism}.bin"));
    random_file(&source, size)?;
    alice.set_file_parallelism(parallelism);
    bob.set_file_parallelism(parallelism);
    env.quiet().await;

    // Upload.
    let mut up = Transfer::default();
    let counted = env.counters().await;
    let before = env.cpu();
    let timeline = Timeline::new();
    let report = |p: Progress| timeline.record(p);
    let upload = loop {
        match alice.upload_file(&source, FILE_TTL_MS, &report).await {
            Ok(upload) => break upload,
            Err(e) if up.retries + 1 < TRANSFER_TRIES => {
                up.retries += 1;
                eprintln!("upload (parallelism {parallelism}) failed, resuming: {e}");
            }
            Err(e) => return Err(e).context("upload failed"),
        }
    };
    up.seconds = timeline.start.elapsed().as_secs_f64();
    let after = env.cpu();
    up.counters = counter_deltas(&counted, &env.counters().await);
    up.shape = shape(&timeline.points(), chunks);
    up.usage = usage(&before, &after);
    up.tail_s = env.quiet().await;
    up.tail_nodes_cpu = usage(&after, &env.cpu()).nodes_cpu;
    std::fs::remove_file(&source)?;

    // The message, and the receiver's inbox.
    let hash = match alice
        .send_with_files(bob.home.account_id(), "a file", std::slice::from_ref(&upload))
        .await?
    {
        Delivery::Stored(hash) => hash,
        other => bail!("the message with the file was not stored: {other:?}"),
    };
    for _ in 0..10 {
        bob.inbox(None).await?;
        if !bob.home.files_of(&hash)?.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    if bob.home.files_of(&hash)?.is_empty() {
        bail!("the receiver's inbox did not record the file of message {hash}");
    }

    // Download.
    let out = dir.join(format!("download-{parallelism}"));
    std::fs::create_dir_all(&out)?;
    let mut down = Transfer::default();
    let counted = env.counters().await;
    let before = env.cpu();
    let timeline = Timeline::new();
    let report = |p: Progress| timeline.record(p);
    let saved = loop {
        match bob.download_file(&hash, 0, &out, &report).await {
            Ok(saved) => break saved,
            Err(e) if down.retries + 1 < TRANSFER_TRIES => {
                down.retries += 1;
                eprintln!("download (parallelism {parallelism}) failed, resuming: {e}");
            }
            Err(e) => return Err(e).context("download failed"),
        }
    };
    down.seconds = timeline.start.elapsed().as_secs_f64();
    let after = env.cpu();
    down.counters = counter_deltas(&counted, &env.counters().await);
    down.shape = shape(&timeline.points(), chunks);
    down.usage = usage(&before, &after);
    down.tail_s = env.quiet().await;
    down.tail_nodes_cpu = usage(&after, &env.cpu()).nodes_cpu;
    let got = std::fs::metadata(&saved.path)?.len();
    if got != size {
        bail!("the downloaded file has {got} bytes, not {size}");
    }
    std::fs::remove_dir_all(&out)?;

    // The chunks go, so the next setting finds the nodes as this one did.
    let deleted = alice.delete_upload(&upload).await?;
    if deleted < chunks as usize {
        eprintln!("only {deleted} of {chunks} chunks were deleted after parallelism {parallelism}");
    }
    Ok((up, down))
}

/// Percentiles (ms) of microsecond samples.
fn p50_p99(mut v: Vec<u64>) -> (f64, f64) {
    v.sort_unstable();
    let at = |p: f64| {
        if v.is_empty() {
            return 0.0;
        }
        let i = ((v.len() - 1) as f64 * p).round() as usize;
        v[i.min(v.len() - 1)] as f64 / 1000.0
    };
    (at(0.5), at(0.99))
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// A signed `store` of chunk `index` of `upload`'s file.
fn chunk_store(upload: &Identity, index: u32, data: &[u8]) -> (MailboxId, Value) {
    let mailbox: MailboxId = ChunkId::of(upload.ed25519_pk(), index).into();
    let hash = rpc::message_hash(&mailbox, Namespace::FILES, data);
    let now = now_ms();
    let call = Call::Store(StoreParams {
        pubkey: mailbox,
        namespace: Namespace::FILES,
        timestamp: now,
        ttl: 3_600_000,
        data: Base64Bytes(data.to_vec()),
        pubkey_ed25519: Some(Hex32(*upload.ed25519_pk())),
        signature: Some(Sig64(upload.sign(&rpc::store_signed_bytes(
            Namespace::FILES,
            now,
            &hash,
        )))),
        credential: None,
        chunk: Some(index),
    });
    (mailbox, call.to_json())
}

fn chunk_retrieve(mailbox: MailboxId) -> Value {
    Call::RetrievePublic(RetrievePublicParams {
        pubkey: mailbox,
        namespace: Namespace::FILES,
        last_hash: None,
        max_count: Some(1),
        max_size: None,
    })
    .to_json()
}

/// Whether an answer to a `retrieve_public` holds a whole chunk.
fn holds_chunk(body: &Value) -> bool {
    body["messages"][0]["data"]
        .as_str()
        .and_then(|d| allium_common::encoding::from_base64(d).ok())
        .is_some_and(|c| c.len() == CHUNK_LEN)
}

/// Single-chunk round trips, one request at a time, each kind in turn:
/// through an onion path (store, `retrieve_public`, and `info` for the
/// onion alone) and straight to the node (store, `retrieve_public`).
async fn single_chunks(env: &Net<'_>, list: &Consensus, samples: usize, plaintext: bool) -> anyhow::Result<Value> {
    let transport = allium_client::transport::Transport::direct_with(plaintext)?;
    let paths = allium_client::paths::Paths::build(list)?;
    let upload = Identity::from_ed25519_seed(&sodium::random_array());
    let ring = list.swarm_ring();
    let kinds = [
        "onion_store",
        "onion_retrieve",
        "onion_info",
        "direct_store",
        "direct_retrieve",
    ];
    let mut times: Vec<Vec<u64>> = vec![Vec::with_capacity(samples); kinds.len()];
    let mut failed = vec![0usize; kinds.len()];
    let micros = |t: Instant| u64::try_from(t.elapsed().as_micros()).unwrap_or(u64::MAX);
    let mut chunk = vec![0u8; CHUNK_LEN];
    for i in 0..u32::try_from(samples)? {
        sodium::random_bytes(&mut chunk);
        let members = |mailbox: &MailboxId| -> anyhow::Result<Vec<NodeEntry>> {
            let swarm = ring.swarm_of(mailbox).context("the node list has no swarms")?;
            Ok(list.swarm_members(swarm).cloned().collect())
        };
        // Through an onion path.
        let (mailbox, store) = chunk_store(&upload, 2 * i, &chunk);
        let all = members(&mailbox)?;
        let dest = all.get(i as usize % all.len().max(1)).context("empty swarm")?;
        let (_, path) = paths.for_destination(list, dest, None, &HashSet::new())?;
        let onion = |request: Value| {
            let (transport, path) = (&transport, &path);
            async move {
                let t = Instant::now();
                let answer = allium_client::paths::request(transport, path, dest, &request, REQUEST_TIMEOUT).await;
                (micros(t), answer)
            }
        };
        let (us, answer) = onion(store).await;
        match answer {
            Ok((200, _)) => times[0].push(us),
            _ => failed[0] += 1,
        }
        let (us, answer) = onion(chunk_retrieve(mailbox)).await;
        match answer {
            Ok((200, body)) if holds_chunk(&body) => times[1].push(us),
            _ => failed[1] += 1,
        }
        let (us, answer) = onion(Call::Info.to_json()).await;
        match answer {
            Ok((200, _)) => times[2].push(us),
            _ => failed[2] += 1,
        }
        // Straight to the node (a chunk of another swarm, so no node
        // holds both).
        let (mailbox, store) = chunk_store(&upload, 2 * i + 1, &chunk);
        let all = members(&mailbox)?;
        let dest = all.get(i as usize % all.len().max(1)).context("empty swarm")?;
        let url = format!("{}://{}/storage_rpc/v1", env.scheme, dest.address);
        for (k, body) in [(3, store), (4, chunk_retrieve(mailbox))] {
            let t = Instant::now();
            let answer = env.http.post(&url).json(&body).timeout(REQUEST_TIMEOUT).send().await;
            let ok = match answer {
                Ok(r) if r.status().as_u16() == 200 => {
                    let value: Value = r.json().await.unwrap_or_default();
                    k == 3 || holds_chunk(&value)
                }
                _ => false,
            };
            if ok {
                times[k].push(micros(t));
            } else {
                failed[k] += 1;
            }
        }
    }
    let mut out = serde_json::Map::new();
    println!("single chunk round trips, one at a time ({samples} of each):");
    for ((kind, v), failed) in kinds.iter().zip(times).zip(failed) {
        let (p50, p99) = p50_p99(v);
        println!("  {kind:<16} p50 {p50:>7.2} ms  p99 {p99:>7.2} ms  failed {failed}");
        out.insert(
            (*kind).to_owned(),
            json!({"p50_ms": p50, "p99_ms": p99, "failed": failed}),
        );
    }
    Ok(Value::Object(out))
}

/// Prints `rows` under `headers`, each column as wide as its widest cell.
fn table(headers: &[&str], rows: &[Vec<String>]) {
    let widths: Vec<usize> = headers
        .iter()
        .enumerate()
        .map(|(i, h)| {
            rows.iter()
                .filter_map(|r| r.get(i))
                .map(String::len)
                .max()
                .unwrap_or(0)
                .max(h.len())
        })
        .collect();
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells.iter().zip(&widths).map(|(c, w)| format!("{c:>w$}")).collect();
        println!("  {}", padded.join(" | "));
    };
    line(headers.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

/// Runs the scenario on `net` and prints its tables and a JSON line.
pub async fn run(net: &LocalNet, bench: &FilesBench) -> anyhow::Result<()> {
    if bench.size == 0 || bench.parallelism.is_empty() {
        bail!("nothing to transfer: give a size above 0 and at least one parallelism");
    }
    let chunks = u32::try_from(bench.size.div_ceil(RECORD_LEN as u64))?;
    let mb = bench.size as f64 / 1e6;
    let dir = tempfile::tempdir()?;
    let scheme = if bench.plaintext { "http" } else { "https" };
    let http = if bench.plaintext {
        allium_common::tls::install_default_provider();
        reqwest::Client::builder().build()?
    } else {
        allium_node::peer::links::unpinned_client(Default::default(), None)
    };
    let env = Net {
        net,
        pids: node_pids(net),
        http,
        scheme,
        cores: std::thread::available_parallelism().map_or(1.0, |n| n.get() as f64),
    };

    let mut alice = new_messenger(dir.path(), "alice", net, bench.plaintext)?;
    let mut bob = new_messenger(dir.path(), "bob", net, bench.plaintext)?;
    bob.approve(&alice.home.account_id())?;
    let list = alice.nodes().await?.list.clone();
    bob.nodes().await?;
    let mut swarms: BTreeMap<u64, usize> = BTreeMap::new();
    for node in &list.nodes {
        *swarms.entry(node.swarm_id).or_default() += 1;
    }
    println!(
        "files: {} nodes in {} swarms (sizes {:?}), {} process pids watched, {} cores; file {} bytes = {chunks} chunks \
         of {CHUNK_LEN} bytes; parallelism {:?}, {} round(s)",
        list.nodes.len(),
        swarms.len(),
        swarms.values().collect::<Vec<_>>(),
        env.pids.len(),
        env.cores,
        bench.size,
        bench.parallelism,
        bench.rounds
    );
    // Warm-up: paths, kept connections, the receiver's contact.
    if !matches!(alice.send(bob.home.account_id(), "warm-up").await?, Delivery::Stored(_)) {
        bail!("the warm-up message was not stored");
    }
    bob.inbox(None).await?;

    let single = if bench.samples > 0 {
        single_chunks(&env, &list, bench.samples.min(8_000), bench.plaintext).await?
    } else {
        Value::Null
    };

    // The settings, each round in alternating order.
    let mut runs: BTreeMap<usize, Vec<(Transfer, Transfer)>> = BTreeMap::new();
    for round in 0..bench.rounds.max(1) {
        let mut order = bench.parallelism.clone();
        if round % 2 == 1 {
            order.reverse();
        }
        for &p in &order {
            let (up, down) = one_setting(&env, dir.path(), &mut alice, &mut bob, bench.size, p).await?;
            println!(
                "round {} parallelism {p:>2}: upload {:.1} s ({:.2} MB/s), download {:.1} s ({:.2} MB/s, first chunk \
                 {:.0} ms)",
                round + 1,
                up.seconds,
                up.mbps(mb),
                down.seconds,
                down.mbps(mb),
                down.shape.first_chunk * 1000.0
            );
            runs.entry(p).or_default().push((up, down));
        }
    }

    // Tables: medians over rounds.
    let med = |v: &[(Transfer, Transfer)], f: &dyn Fn(&(Transfer, Transfer)) -> f64| {
        median(&v.iter().map(f).collect::<Vec<_>>())
    };
    let cores = env.cores;
    let latency = |p: usize, t: &Transfer| {
        p as f64 * (t.shape.last_chunk - t.shape.first_report).max(0.0) / f64::from(chunks) * 1000.0
    };
    let rows: Vec<Vec<String>> = runs
        .iter()
        .map(|(p, v)| {
            vec![
                p.to_string(),
                format!("{:.2}", med(v, &|(u, _)| u.mbps(mb))),
                format!("{:.2}", med(v, &|(u, _)| u.shape.steady_mbps)),
                format!("{:.0}", med(v, &|(u, _)| u.shape.first_report * 1000.0)),
                format!(
                    "{:.0}",
                    med(v, &|(u, _)| (u.shape.first_chunk - u.shape.first_report) * 1000.0)
                ),
                format!("{:.1}", med(v, &|(u, _)| latency(*p, u))),
                format!("{:.3}", med(v, &|(u, _)| u.usage.nodes_cpu / mb)),
                format!(
                    "{:.0}",
                    med(v, &|(u, _)| 100.0 * u.usage.max_node_cpu / u.usage.wall.max(1e-9))
                ),
                format!("{:.3}", med(v, &|(u, _)| u.usage.own_cpu / mb)),
                format!("{:.0}", med(v, &|(u, _)| u.usage.busy_pct)),
                format!("{:.0}", med(v, &|(u, _)| u.usage.other_pct(cores))),
                format!("{:.1}", med(v, &|(u, _)| u.usage.iowait_pct)),
                format!("{:.1}", med(v, &|(u, _)| u.usage.writes as f64 / 1e6 / mb)),
                format!("{:.2}", med(v, &|(u, _)| u.cpu_ceiling(mb, cores))),
                format!("{:.1}", med(v, &|(u, _)| u.tail_s)),
                format!("{:.0}", med(v, &|(u, _)| u.rate_limited())),
                format!("{:.0}", med(v, &|(u, _)| u.retries as f64)),
            ]
        })
        .collect();
    println!();
    println!(
        "upload ({mb:.0} MB, {chunks} chunks; medians over {} round(s)):",
        bench.rounds.max(1)
    );
    table(
        &[
            "P",
            "MB/s",
            "steady MB/s",
            "hash ms",
            "1st chunk ms",
            "chunk ms",
            "nodes CPU-s/MB",
            "max node %",
            "client CPU-s/MB",
            "busy %",
            "other %",
            "iowait %",
            "node writes MB/MB",
            "CPU ceiling MB/s",
            "tail s",
            "429s",
            "retries",
        ],
        &rows,
    );
    println!(
        "  MB/s: the whole upload_file call (hashing the file first included); steady: chunks 10%..90%; hash: until \
         the first progress report; 1st chunk: from there to the first chunk stored; chunk ms: P x time storing / \
         chunks, a chunk's round trip under load; CPU-s per MB of file; max node: the busiest node's CPU share of \
         one core; busy/other/iowait: share of all cores (other: neither the nodes nor this process); node writes: \
         bytes the nodes wrote to storage per byte of file; CPU ceiling: cores / (nodes + client CPU-s per MB), \
         the rate if nothing else ran; tail: until the replication queues emptied after; 429s: requests the nodes \
         refused for the per-address rate limit; retries: resumed transfers"
    );
    let rows: Vec<Vec<String>> = runs
        .iter()
        .map(|(p, v)| {
            vec![
                p.to_string(),
                format!("{:.2}", med(v, &|(_, d)| d.mbps(mb))),
                format!("{:.2}", med(v, &|(_, d)| mb / d.shape.last_chunk.max(1e-9))),
                format!("{:.2}", med(v, &|(_, d)| d.shape.steady_mbps)),
                format!("{:.0}", med(v, &|(_, d)| d.shape.first_chunk * 1000.0)),
                format!("{:.1}", med(v, &|(_, d)| latency(*p, d))),
                format!("{:.2}", med(v, &|(_, d)| d.seconds - d.shape.last_chunk)),
                format!("{:.3}", med(v, &|(_, d)| d.usage.nodes_cpu / mb)),
                format!(
                    "{:.0}",
                    med(v, &|(_, d)| 100.0 * d.usage.max_node_cpu / d.usage.wall.max(1e-9))
                ),
                format!("{:.3}", med(v, &|(_, d)| d.usage.own_cpu / mb)),
                format!("{:.0}", med(v, &|(_, d)| d.usage.busy_pct)),
                format!("{:.0}", med(v, &|(_, d)| d.usage.other_pct(cores))),
                format!("{:.1}", med(v, &|(_, d)| d.usage.iowait_pct)),
                format!("{:.2}", med(v, &|(_, d)| d.cpu_ceiling(mb, cores))),
                format!("{:.0}", med(v, &|(_, d)| d.rate_limited())),
                format!("{:.0}", med(v, &|(_, d)| d.retries as f64)),
            ]
        })
        .collect();
    println!();
    println!("download ({mb:.0} MB; medians over {} round(s)):", bench.rounds.max(1));
    table(
        &[
            "P",
            "MB/s",
            "fetch MB/s",
            "steady MB/s",
            "TTFB ms",
            "chunk ms",
            "decrypt+save s",
            "nodes CPU-s/MB",
            "max node %",
            "client CPU-s/MB",
            "busy %",
            "other %",
            "iowait %",
            "CPU ceiling MB/s",
            "429s",
            "retries",
        ],
        &rows,
    );
    println!(
        "  MB/s: the whole download_file call (decrypting, checking and writing the file included); fetch: until the \
         last chunk was fetched; TTFB: from the call to the first chunk fetched; decrypt+save: after the last chunk; the other columns as above"
    );
    println!();

    let settings: Vec<Value> = runs
        .iter()
        .map(|(p, v)| {
            json!({
                "parallelism": p,
                "upload": v.iter().map(|(u, _)| u.to_json(mb, env.cores, *p, chunks)).collect::<Vec<_>>(),
                "download": v.iter().map(|(_, d)| d.to_json(mb, env.cores, *p, chunks)).collect::<Vec<_>>(),
            })
        })
        .collect();
    println!(
        "{}",
        json!({"scenario": "files", "nodes": list.nodes.len(), "swarms": swarms.len(), "bytes": bench.size,
               "chunks": chunks, "rounds": bench.rounds.max(1), "cores": env.cores,
               "single_chunk": single, "settings": settings})
    );
    Ok(())
}
