//! `allium-bench`: load generator for a local Allium network.
//!
//! Starts its own network of real node processes on 127.0.0.1 (the
//! `allium-node` binary next to this one), drives one scenario for a fixed
//! time with a fixed number of concurrent clients, and prints figures.
//! Every request loop is bounded in time and count and only targets the
//! network it started.
//!
//! ```text
//! allium-bench store  --nodes 1 --seconds 10 --concurrency 64
//! allium-bench relay  --nodes 2 --seconds 10 --concurrency 64
//! allium-bench rss    --nodes 1
//! allium-bench hostile --nodes 12 --seconds 300 --concurrency 6
//! allium-bench restore --nodes 5
//! allium-bench sync-copy --nodes 5 --messages 200
//! allium-bench envelope --nodes 20 --messages 200
//! allium-bench groups --nodes 20 --messages 50
//! allium-bench files --nodes 20 --file-mb 100 --parallelism 4,8,16,32
//! allium-bench chat --nodes 5 --seconds 60 --messages 10000 --keys 200
//! ```

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use allium_common::encoding::Base64Bytes;
use allium_common::node_list::NodeEntry;
use allium_common::onion::{self, Hop, LayerSecrets};
use allium_common::rpc::{Call, Namespace, StoreParams};
use allium_common::{AccountId, sodium};
use allium_node::devnet::LocalNet;
use anyhow::{Context as _, bail};
use clap::{Parser, ValueEnum};
use serde_json::json;

#[derive(Debug, Parser)]
#[command(name = "allium-bench", about = "Load generator for a local Allium network")]
struct Args {
    /// What to measure.
    scenario: Scenario,
    /// Service nodes in the network (default: 5, one swarm, for `restore`,
    /// `sync-copy` and `chat`; 20 for `envelope`, `groups` and `files`; 1
    /// for the others).
    #[arg(long)]
    nodes: Option<usize>,
    /// How long to drive load; for `chat`, the idle window (default: 60
    /// for `chat`, 10 for the others).
    #[arg(long)]
    seconds: Option<u64>,
    /// Concurrent clients.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Hard cap on requests sent.
    #[arg(long, default_value_t = 5_000_000)]
    max_requests: u64,
    /// Stores per HTTP request (`store`): 1 sends plain `store` calls,
    /// more sends `batch` requests of that many stores.
    #[arg(long, default_value_t = 1)]
    batch: u64,
    /// Messages for the latency part of `e2e`, of each kind in
    /// `sync-copy` and `envelope`, of each phase of `groups`, and single
    /// chunks of each kind in `files`, in the open conversation in `chat`
    /// (default: 200 for `envelope`, 50 for `groups`, 300 for `files`,
    /// 10,000 for `chat`, 1000 for the others).
    #[arg(long)]
    messages: Option<usize>,
    /// `chat`: letters typed, and PgUp/PgDn pressed, each timed to the
    /// screen.
    #[arg(long, default_value_t = 200)]
    keys: usize,
    /// The allium-node binary (default: next to this one).
    #[arg(long)]
    node_bin: Option<PathBuf>,
    /// Node configuration laid over the local network's (TOML). The
    /// default lifts the per-address limits for the one-client `store` and
    /// `relay` scenarios, so they measure the node, not its rate limits;
    /// `hostile` runs with the nodes' defaults whatever this says, and
    /// `converge`, `restore`, `sync-copy`, `envelope` and `groups` with
    /// their own.
    #[arg(
        long,
        default_value = "[limits]\nmax_connections = 4096\nmax_connections_per_ip = 4096\nrequests_per_second_per_ip = 1000000\nburst_per_ip = 1000000\nrelays_per_second_per_peer = 1000000\n"
    )]
    extra_config: String,
    /// Plain HTTP on every link (the nodes' and clients' debugging option
    /// `plaintext_links`), to compare with TLS.
    #[arg(long)]
    plaintext: bool,
    /// `files`: the file's size, MB (10^6 bytes).
    #[arg(long, default_value_t = 100)]
    file_mb: u64,
    /// `files`: chunks in flight (`set_file_parallelism`), one upload and
    /// download of a fresh file for each.
    #[arg(long, value_delimiter = ',', default_values_t = [4, 8, 16, 32])]
    parallelism: Vec<usize>,
    /// `files`: times every parallelism is run (alternating the order);
    /// the tables show medians.
    #[arg(long, default_value_t = 1)]
    rounds: usize,
    /// `files`: run the nodes with the per-address and per-peer limits
    /// lifted (as `envelope` does), to measure the nodes rather than
    /// their rate limits. Without it the nodes keep their defaults.
    #[arg(long)]
    lift_limits: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Scenario {
    /// `store` RPCs straight to one node (distinct mailboxes, 100-byte data).
    Store,
    /// Onion requests guard → destination (`info`): two peels per request.
    Relay,
    /// Resident memory of a node, idle and after 10 s of stores.
    Rss,
    /// Two `allium` clients (in-process) through 3-relay onion paths:
    /// send→watch latency and onion round trip over `--messages`, then
    /// the message rate `--concurrency` senders sustain for `--seconds`.
    E2e,
    /// Direct versus Tor on one network (a private Tor network on loopback
    /// is started; needs the `tor` program and `--features tor`): node-list
    /// fetch from the seed and message round trip, `--messages` each.
    Tor,
    /// `--concurrency` sender/receiver pairs exchange a message a second
    /// for `--seconds` on a quiet network, then for `--seconds` more while
    /// hostile clients attack it (slowloris, relay loops, big pages, an
    /// inbox flood, junk announces, a rogue node): delivery rate and
    /// latency in both phases, and what the attacks got back.
    Hostile,
    /// Anti-entropy at scale: a swarm of two, `--messages` messages written
    /// into both nodes' stores except every 1000th on the second; how long
    /// until the second holds them all, and how many copies the repair
    /// moved.
    Converge,
    /// Restoring an account from its phrase: an account with 1,000
    /// contacts (its synced state, in pages) and 10,000 messages in its
    /// mailbox (half received from contacts, half copies of sent ones) is
    /// restored 3 times into fresh homes; each restore is timed (node
    /// list, account-state sync, inbox pass) and checked (1,000 contacts,
    /// 10,000 history entries), then the parts of an inbox pass are timed
    /// apart (retrieves without onion, envelope opening, a contact-book
    /// read, history inserts). The per-mailbox store limits are lifted to
    /// fill the mailbox.
    Restore,
    /// The cost of the copy of a sent message for the sender's other
    /// devices: `--messages` texts sent with `send` (message, then its copy
    /// into the sender's own swarm) against as many of the same size sent
    /// with `send_control` (the message alone), interleaved; round-trip
    /// percentiles, and the bytes stored per message either way (read back
    /// from the swarms).
    SyncCopy,
    /// Envelope v2 against v1 on one network (issue 12): `--messages`
    /// texts from one sender to each of two receivers that approved it,
    /// one without published keys (v1) and one with (`publish_keys`, so
    /// v2), alternated one at a time; send→watch latency and `send` round
    /// trip for each, and every message's envelope version checked in both
    /// histories (the run fails if the v2 receiver got a v1 message). Then
    /// `seal_for` as `send` calls it, the delivery alone of texts sealed
    /// beforehand (v1 against v2: only the bytes differ), and first
    /// contact: `fetch_bundle` of the v2 receiver from fresh senders
    /// (new homes: their first request, then again), and the first `send`
    /// to fresh accounts with keys (bundle fetched) against the second
    /// (bundle cached), beside the same for fresh accounts without keys.
    /// Then the bytes: the envelopes stored in both mailboxes, read back,
    /// and the bundle.
    Envelope,
    /// Private groups (issue 13): for 10 and 100 members (an admin and
    /// member clients, in process; every member joins through its inbox),
    /// every member watches the group (long-polled `group_round`) while the
    /// admin sends `--messages` messages paced (each once every member saw
    /// the one before, then 50 ms) and `--messages` more 5 ms apart:
    /// send→watch latency per (message, member), and `send_to_group` round
    /// trip. Then rekeys (`remove_from_group` of one member, 3 times) of
    /// the 100-member group and of a 1,000-member one (998 accounts with no
    /// client): time, key message size, a remaining member's read after
    /// it; and the key message's sealing and opening in process.
    Groups,
    /// Files (issue 14): a `--file-mb` random file uploaded through onion
    /// paths by one account and downloaded by another (after its inbox
    /// recorded the message), once per `--parallelism` (chunks in flight)
    /// and `--rounds`: throughput, the steady rate, time to first byte of
    /// the download, node and client CPU per MB, the machine's busy and
    /// iowait share, the bytes the nodes wrote; before that, `--messages`
    /// single chunks stored and fetched one at a time through an onion
    /// path and straight to the node (p50/p99). The nodes keep their
    /// default limits unless `--lift-limits`.
    Files,
    /// The full-screen client (issue 15): `allium chat` on a 120x40
    /// pseudo-terminal with `--messages` messages in the open
    /// conversation (written into its home beforehand): time to open it,
    /// its CPU (share of a core), wakeups and RSS over `--seconds` idle
    /// (nothing typed or received; it long-polls), then `--keys` letters
    /// and as many PgUp/PgDn, each timed from the key written to the pty
    /// until the frame showing it is written (median, p90, p99, max).
    Chat,
}

impl Args {
    /// `--messages`, or the scenario's default.
    fn messages(&self) -> usize {
        self.messages.unwrap_or(match self.scenario {
            Scenario::Envelope => 200,
            Scenario::Groups => 50,
            Scenario::Files => 300,
            Scenario::Chat => 10_000,
            _ => 1000,
        })
    }

    /// `--seconds`, or the scenario's default.
    fn seconds(&self) -> u64 {
        self.seconds.unwrap_or(match self.scenario {
            Scenario::Chat => 60,
            _ => 10,
        })
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    PLAINTEXT.store(args.plaintext, Ordering::Relaxed);
    let exe = match &args.node_bin {
        Some(p) => p.clone(),
        None => std::env::current_exe()?.with_file_name("allium-node"),
    };
    if !exe.exists() {
        bail!(
            "{} not found: build it with `cargo build --release -p allium-node`",
            exe.display()
        );
    }
    let dir = tempfile::tempdir()?;
    // Every node has its own loopback address, none of them 127.0.0.1,
    // where Tor relays live (see docs/tor.md).
    let extra = match args.scenario {
        Scenario::Hostile => "",
        Scenario::Converge => CONVERGE_CONFIG,
        Scenario::Restore | Scenario::SyncCopy | Scenario::Envelope | Scenario::Groups => ACCOUNT_SYNC_CONFIG,
        Scenario::Files if args.lift_limits => ACCOUNT_SYNC_CONFIG,
        Scenario::Files | Scenario::Chat => "",
        _ => args.extra_config.as_str(),
    };
    let nodes = args.nodes.unwrap_or(match args.scenario {
        Scenario::Restore | Scenario::SyncCopy | Scenario::Chat => 5,
        Scenario::Envelope | Scenario::Groups | Scenario::Files => 20,
        _ => 1,
    });
    // A top-level key goes before the tables.
    let extra = if args.plaintext {
        format!("plaintext_links = true\n{extra}")
    } else {
        extra.to_owned()
    };
    let mut net = LocalNet::start(&exe, dir.path(), nodes.max(1), &extra, Duration::from_secs(60)).await?;
    net.wait_until_formed(Duration::from_secs(60)).await?;
    let list = allium_node::membership::fetch_node_list(net.links(), &net.seed().address)
        .await
        .context("no node list")?;
    let pids: Vec<(String, u32)> = list
        .nodes
        .iter()
        .filter_map(|n| pid_of(&net, &n.ed25519.0).map(|p| (n.address.clone(), p)))
        .collect();
    let before: Vec<f64> = pids.iter().map(|(_, p)| cpu_seconds(*p).unwrap_or(0.0)).collect();
    let result = match args.scenario {
        Scenario::Store => store(&args, &list.nodes[0]).await.map(drop),
        Scenario::Relay => relay(&args, &list.nodes).await,
        Scenario::Rss => rss(&args, &net, &list.nodes[0]).await,
        Scenario::E2e => e2e(&args, &net).await,
        Scenario::Tor => tor(&args, &net).await,
        Scenario::Hostile => hostile(&args, &net, &list).await,
        Scenario::Converge => converge(&args, &net).await,
        Scenario::Restore => restore(&args, &net, &list).await,
        Scenario::SyncCopy => sync_copy(&args, &net, &list).await,
        Scenario::Envelope => envelope_versions(&args, &net, &list).await,
        Scenario::Groups => groups(&args, &net).await,
        Scenario::Files => {
            let bench = allium_tests::bench_files::FilesBench {
                size: args.file_mb.saturating_mul(1_000_000),
                parallelism: args.parallelism.clone(),
                rounds: args.rounds,
                samples: args.messages(),
                plaintext: args.plaintext,
            };
            allium_tests::bench_files::run(&net, &bench).await
        }
        Scenario::Chat => {
            let bench = allium_tests::bench_chat::ChatBench {
                messages: args.messages(),
                idle: Duration::from_secs(args.seconds()),
                keys: args.keys,
                ..Default::default()
            };
            allium_tests::bench_chat::run(&net, &bench).await
        }
    };
    for ((address, pid), start) in pids.iter().zip(before) {
        let used = cpu_seconds(*pid).unwrap_or(0.0) - start;
        if used > 0.05 {
            println!("node {address}: {used:.2} CPU-seconds during the run");
        }
    }
    net.stop().await;
    result
}

fn store_body(i: u64) -> serde_json::Value {
    let mut key = [0u8; 32];
    key[..8].copy_from_slice(&i.to_le_bytes());
    let now = u64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis(),
    )
    .unwrap_or(0);
    let mut data = vec![0u8; 100];
    data[..8].copy_from_slice(&i.to_le_bytes());
    Call::Store(StoreParams {
        chunk: None,
        pubkey: AccountId::from_x25519(key).into(),
        namespace: Namespace::DEFAULT,
        timestamp: now,
        ttl: 3_600_000,
        data: Base64Bytes(data),
        pubkey_ed25519: None,
        signature: None,
        credential: None,
    })
    .to_json()
}

/// Runs `make(i)` requests from `concurrency` clients for `seconds`;
/// returns (ok, failed, elapsed, latencies in µs).
async fn drive<F, Fut>(args: &Args, make: F) -> (u64, u64, Duration, Vec<u64>)
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let make = Arc::new(make);
    let next = Arc::new(AtomicU64::new(0));
    let ok = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(args.seconds());
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..args.concurrency {
        let (make, next, ok, failed) = (
            Arc::clone(&make),
            Arc::clone(&next),
            Arc::clone(&ok),
            Arc::clone(&failed),
        );
        let max = args.max_requests;
        tasks.spawn(async move {
            let mut latencies = Vec::new();
            while Instant::now() < deadline {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= max {
                    break;
                }
                let t = Instant::now();
                if make(i).await {
                    ok.fetch_add(1, Ordering::Relaxed);
                    latencies.push(u64::try_from(t.elapsed().as_micros()).unwrap_or(u64::MAX));
                } else {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
            }
            latencies
        });
    }
    let mut all = Vec::new();
    while let Some(Ok(l)) = tasks.join_next().await {
        all.extend(l);
    }
    all.sort_unstable();
    (
        ok.load(Ordering::Relaxed),
        failed.load(Ordering::Relaxed),
        started.elapsed(),
        all,
    )
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)] as f64 / 1000.0
}

fn report(name: &str, ok: u64, failed: u64, elapsed: Duration, latencies: &[u64]) {
    let rate = ok as f64 / elapsed.as_secs_f64();
    println!(
        "{name}: {ok} ok, {failed} failed in {:.1}s = {rate:.0}/s; latency p50 {:.2} ms, p99 {:.2} ms",
        elapsed.as_secs_f64(),
        percentile(latencies, 0.5),
        percentile(latencies, 0.99)
    );
    println!(
        "{}",
        json!({"scenario": name, "ok": ok, "failed": failed, "seconds": elapsed.as_secs_f64(), "per_second": rate,
        "p50_ms": percentile(latencies, 0.5), "p99_ms": percentile(latencies, 0.99)})
    );
}

async fn store(args: &Args, node: &NodeEntry) -> anyhow::Result<f64> {
    let (http, scheme) = tool_http(args);
    let url = format!("{scheme}://{}/storage_rpc/v1", node.address);
    let batch = args.batch.clamp(1, 20);
    let (ok, failed, elapsed, lat) = drive(args, move |i| {
        let (http, url) = (http.clone(), url.clone());
        async move {
            let body = if batch == 1 {
                store_body(i)
            } else {
                let requests: Vec<_> = (0..batch).map(|k| store_body(i * batch + k)).collect();
                json!({"method": "batch", "params": {"requests": requests}})
            };
            let Ok(r) = http.post(&url).json(&body).send().await else {
                return false;
            };
            if !r.status().is_success() {
                return false;
            }
            // A batch answers 200 overall; every sub-result must be 200 too.
            batch == 1
                || r.json::<serde_json::Value>().await.is_ok_and(|v| {
                    v["results"]
                        .as_array()
                        .is_some_and(|a| a.len() as u64 == batch && a.iter().all(|x| x["code"] == 200))
                })
        }
    })
    .await;
    report(
        &format!("store (batch of {batch}; rate counts requests)"),
        ok,
        failed,
        elapsed,
        &lat,
    );
    let per_second = (ok * batch) as f64 / elapsed.as_secs_f64();
    println!("stores per second: {per_second:.0}");
    Ok(per_second)
}

async fn relay(args: &Args, nodes: &[NodeEntry]) -> anyhow::Result<()> {
    if nodes.len() < 2 {
        bail!("relay needs --nodes 2 or more");
    }
    let (guard, dest) = (nodes[0].clone(), nodes[1].clone());
    let path = Arc::new(vec![
        Hop {
            ed25519: guard.ed25519.0,
            x25519: guard.x25519.0,
        },
        Hop {
            ed25519: dest.ed25519.0,
            x25519: dest.x25519.0,
        },
    ]);
    let (http, scheme) = tool_http(args);
    let url = format!("{scheme}://{}/onion_req/v2", guard.address);
    let (ok, failed, elapsed, lat) = drive(args, move |_| {
        let (http, url, path) = (http.clone(), url.clone(), Arc::clone(&path));
        async move {
            let secrets: Vec<LayerSecrets> = (0..2)
                .map(|_| LayerSecrets {
                    ephemeral_sk: sodium::random_array(),
                    nonce: sodium::random_array(),
                })
                .collect();
            let Ok(request) = onion::build_request(&path, &json!({"method": "info"}), &secrets) else {
                return false;
            };
            let Ok(r) = http.post(&url).body(request.body).send().await else {
                return false;
            };
            let Ok(bytes) = r.bytes().await else {
                return false;
            };
            onion::decrypt_response(&request.response_key, &bytes).is_ok_and(|(s, _)| s == 200)
        }
    })
    .await;
    report("relay (2 peels per request)", ok, failed, elapsed, &lat);
    println!(
        "peeled layers per second (guard + destination): {:.0}",
        2.0 * ok as f64 / elapsed.as_secs_f64()
    );
    Ok(())
}

/// An HTTP client for driving load straight at nodes (a stranger's:
/// unpinned TLS, or plain HTTP with `--plaintext`), and the URL scheme.
fn tool_http(args: &Args) -> (reqwest::Client, &'static str) {
    let settings = allium_node::peer::LinkSettings {
        max_idle_per_peer: args.concurrency,
        ..Default::default()
    };
    if args.plaintext {
        allium_common::tls::install_default_provider();
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(args.concurrency)
            .build()
            .unwrap_or_default();
        (http, "http")
    } else {
        (allium_node::peer::links::unpinned_client(settings, None), "https")
    }
}

/// The pid a node wrote into its info file.
fn pid_of(net: &LocalNet, ed25519: &[u8; 32]) -> Option<u32> {
    let node = net.nodes.iter().find(|n| &n.ed25519 == ed25519)?;
    let info: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(node.dir.join("node.json")).ok()?).ok()?;
    u32::try_from(info["pid"].as_u64()?).ok()
}

use allium_tests::bench_files::cpu_seconds;

use allium_tests::bench_chat::rss_kib;

async fn rss(args: &Args, net: &LocalNet, node: &NodeEntry) -> anyhow::Result<()> {
    let info: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(net.nodes[0].dir.join("node.json"))?)?;
    let pid = u32::try_from(info["pid"].as_u64().context("no pid")?)?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let idle = rss_kib(pid).context("cannot read RSS")?;
    println!("idle RSS: {:.1} MiB", idle as f64 / 1024.0);
    store(args, node).await?;
    let loaded = rss_kib(pid).context("cannot read RSS")?;
    println!("RSS after load: {:.1} MiB", loaded as f64 / 1024.0);
    println!(
        "{}",
        json!({"scenario": "rss", "idle_mib": idle as f64 / 1024.0, "loaded_mib": loaded as f64 / 1024.0})
    );
    Ok(())
}

fn micros_now() -> u64 {
    u64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_micros(),
    )
    .unwrap_or(0)
}

fn messenger(
    dir: &std::path::Path,
    name: &str,
    seeds: &[allium_common::seeds::Seed],
) -> anyhow::Result<allium_client::messenger::Messenger> {
    let plaintext = PLAINTEXT.load(Ordering::Relaxed);
    messenger_over(
        dir,
        name,
        seeds,
        allium_client::transport::Transport::direct_with(plaintext)?,
    )
}

/// `--plaintext`, for the clients the scenarios make.
static PLAINTEXT: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

fn messenger_over(
    dir: &std::path::Path,
    name: &str,
    seeds: &[allium_common::seeds::Seed],
    transport: allium_client::transport::Transport,
) -> anyhow::Result<allium_client::messenger::Messenger> {
    let home = allium_client::home::Home::create(
        &dir.join(name),
        &sodium::random_array(),
        allium_client::home::IdentitySource::Bip39,
    )?;
    Ok(allium_client::messenger::Messenger::new(
        home,
        seeds.to_vec(),
        transport,
    ))
}

fn ms_percentiles(mut v: Vec<u64>) -> (f64, f64) {
    v.sort_unstable();
    (percentile(&v, 0.5), percentile(&v, 0.99))
}

async fn e2e(args: &Args, net: &LocalNet) -> anyhow::Result<()> {
    use allium_client::messenger::Delivery;
    let seeds = allium_common::seeds::parse(&std::fs::read_to_string(&net.seed_file)?)?;
    let dir = tempfile::tempdir()?;
    let mut alice = messenger(dir.path(), "alice", &seeds)?;
    let mut bob = messenger(dir.path(), "bob", &seeds)?;
    let bob_id = bob.home.account_id();
    // A stranger's messages wait in `requests`, not the inbox: Bob takes
    // Alice as a contact first. So each of Bob's inbox rounds also sends
    // Alice a receipt, and `inbox` returns only once it is stored: the
    // latency below includes that store. Every `send` also stores a copy
    // in Alice's own swarm after the message (the round trip below).
    bob.approve(&alice.home.account_id())?;
    alice.nodes().await?;
    bob.nodes().await?;
    let n = args.messages();

    // Bob watches: long-polls through his paths and timestamps arrivals.
    let receiver = tokio::spawn(async move {
        let mut latencies = Vec::with_capacity(n);
        let deadline = Instant::now() + Duration::from_secs(600);
        while latencies.len() < n && Instant::now() < deadline {
            if let Ok(got) = bob.inbox(Some(20_000)).await {
                let now = micros_now();
                for r in got.messages {
                    if let Some(sent) = r.body.split(':').nth(1).and_then(|t| t.parse::<u64>().ok()) {
                        latencies.push(now.saturating_sub(sent));
                    }
                }
            }
        }
        latencies
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut round_trips = Vec::with_capacity(n);
    let mut failed = 0;
    for i in 0..n {
        let t = Instant::now();
        match alice.send(bob_id, &format!("{i}:{}", micros_now())).await {
            Ok(Delivery::Stored(_)) => round_trips.push(u64::try_from(t.elapsed().as_micros()).unwrap_or(u64::MAX)),
            _ => failed += 1,
        }
        // One message in flight at a time, so each latency is one message's.
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let latencies = receiver.await?;
    let (lat50, lat99) = ms_percentiles(latencies.clone());
    let (rtt50, rtt99) = ms_percentiles(round_trips.clone());
    println!(
        "send→watch latency over {} messages: p50 {lat50:.2} ms, p99 {lat99:.2} ms",
        latencies.len()
    );
    println!(
        "send (onion store round trip, 4 hops + replication): p50 {rtt50:.2} ms, p99 {rtt99:.2} ms; {failed} not stored"
    );

    // Sustained rate: independent senders to one recipient for --seconds.
    // Nobody reads Bob's inbox here, so the senders need no approval;
    // each `send` is two stores (the message, then the sender's copy).
    let mut senders = Vec::new();
    for c in 0..args.concurrency {
        let mut m = messenger(dir.path(), &format!("sender-{c}"), &seeds)?;
        m.nodes().await?;
        senders.push(m);
    }
    let deadline = Instant::now() + Duration::from_secs(args.seconds());
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for mut m in senders {
        tasks.spawn(async move {
            let mut ok = 0u64;
            while Instant::now() < deadline {
                if matches!(m.send(bob_id, "load").await, Ok(Delivery::Stored(_))) {
                    ok += 1;
                }
            }
            ok
        });
    }
    let mut total = 0;
    while let Some(Ok(ok)) = tasks.join_next().await {
        total += ok;
    }
    let rate = total as f64 / started.elapsed().as_secs_f64();
    println!(
        "sustained: {total} messages stored by {} senders in {:.1}s = {rate:.0} messages/s",
        args.concurrency,
        started.elapsed().as_secs_f64()
    );
    println!(
        "{}",
        json!({"scenario": "e2e", "nodes": net.nodes.len(), "messages": latencies.len(), "latency_p50_ms": lat50, "latency_p99_ms": lat99,
        "onion_store_p50_ms": rtt50, "onion_store_p99_ms": rtt99, "sustained_per_second": rate, "senders": args.concurrency})
    );
    Ok(())
}

/// Direct versus Tor, measured on one network in one run.
#[cfg(feature = "tor")]
async fn tor(args: &Args, net: &LocalNet) -> anyhow::Result<()> {
    use allium_client::config::ClientConfig;
    use allium_client::directory;
    use allium_client::messenger::Delivery;
    use allium_client::transport::{TorOptions, Transport};

    let tor_dir = tempfile::tempdir()?;
    let started = Instant::now();
    let tor_net = allium_tests::tor::PrivateTor::start(tor_dir.path())?;
    println!("private Tor network ready in {:.1}s", started.elapsed().as_secs_f64());
    let seeds = allium_common::seeds::parse(&std::fs::read_to_string(&net.seed_file)?)?;
    let seed = seeds[0].clone();
    let dir = tempfile::tempdir()?;
    let config = |extra: &str| ClientConfig::parse(&tor_net.client_config(extra)).map_err(anyhow::Error::msg);
    let options = |name: &str| TorOptions {
        dir: dir.path().join(name).join("tor"),
        progress: false,
    };
    let n = args.messages();
    let micros = |t: Instant| u64::try_from(t.elapsed().as_micros()).unwrap_or(u64::MAX);

    // Node-list fetches. "first": a new transport, as a new `allium`
    // process has (arti state already cached on disk after the first).
    let mut results = serde_json::Map::new();
    for (label, extra) in [("direct", ""), ("tor", "tor = true")] {
        let mut firsts = Vec::new();
        for _ in 0..5 {
            let transport = Transport::new(&config(extra)?, &options("fetch"))?;
            let t = Instant::now();
            directory::fetch(&transport, &seed).await?;
            firsts.push(micros(t));
        }
        let transport = Transport::new(&config(extra)?, &options("fetch"))?;
        directory::fetch(&transport, &seed).await?;
        let mut again = Vec::with_capacity(n);
        for _ in 0..n {
            let t = Instant::now();
            directory::fetch(&transport, &seed).await?;
            again.push(micros(t));
        }
        let (first50, _) = ms_percentiles(firsts);
        let (p50, p99) = ms_percentiles(again);
        println!(
            "node-list fetch {label}: new process (median of 5) {first50:.1} ms; then {n} on the kept connection p50 {p50:.2} ms, p99 {p99:.2} ms"
        );
        results.insert(
            format!("node_list_{label}"),
            json!({"first_median_ms": first50, "p50_ms": p50, "p99_ms": p99}),
        );
    }

    // Message round trips: send until the swarm's confirmation is back.
    for (label, extra) in [("direct", ""), ("tor_all", "tor_all = true")] {
        let transport = Transport::new(&config(extra)?, &options(label))?;
        let mut alice = messenger_over(dir.path(), &format!("alice-{label}"), &seeds, transport)?;
        let bob = messenger(dir.path(), &format!("bob-{label}"), &seeds)?;
        let bob_id = bob.home.account_id();
        alice.nodes().await?;
        alice.send(bob_id, "warm-up").await?;
        let mut round_trips = Vec::with_capacity(n);
        let mut failed = 0;
        for i in 0..n {
            let t = Instant::now();
            match alice.send(bob_id, &format!("{i}")).await {
                Ok(Delivery::Stored(_)) => round_trips.push(micros(t)),
                _ => failed += 1,
            }
        }
        let (p50, p99) = ms_percentiles(round_trips);
        println!("message round trip {label}: p50 {p50:.2} ms, p99 {p99:.2} ms over {n}; {failed} not stored");
        results.insert(
            format!("round_trip_{label}"),
            json!({"p50_ms": p50, "p99_ms": p99, "failed": failed}),
        );
    }
    results.insert("scenario".into(), json!("tor"));
    results.insert("nodes".into(), json!(net.nodes.len()));
    results.insert("messages".into(), json!(n));
    println!("{}", serde_json::Value::Object(results));
    drop(tor_net);
    Ok(())
}

#[cfg(not(feature = "tor"))]
async fn tor(_args: &Args, _net: &LocalNet) -> anyhow::Result<()> {
    bail!(
        "the tor scenario needs a Tor build: cargo run --release -p allium-tests --features tor --bin allium-bench -- tor"
    )
}

/// One phase of the hostile scenario: what the pairs sent and got.
#[derive(Debug, Default)]
struct Phase {
    sent: u64,
    stored: u64,
    delivered: u64,
    latencies_us: Vec<u64>,
}

/// `pairs` sender/receiver pairs, one message a second per pair for
/// `seconds`, then up to 30 s more for the last messages to arrive.
type Pair = (allium_client::messenger::Messenger, allium_client::messenger::Messenger);

async fn exchange(pairs: Vec<Pair>, seconds: u64) -> (Vec<Pair>, Phase) {
    use allium_client::messenger::Delivery;
    let until = Instant::now() + Duration::from_secs(seconds);
    let grace = until + Duration::from_secs(30);
    let mut tasks = tokio::task::JoinSet::new();
    for (pair, (mut sender, mut receiver)) in pairs.into_iter().enumerate() {
        let to = receiver.home.account_id();
        let expected = Arc::new(AtomicU64::new(0));
        let expect = Arc::clone(&expected);
        let receive = tokio::spawn(async move {
            let mut got = Vec::new();
            while Instant::now() < grace
                && (Instant::now() < until || (got.len() as u64) < expect.load(Ordering::Relaxed))
            {
                if let Ok(page) = receiver.inbox(Some(5_000)).await {
                    let now = micros_now();
                    for m in page.messages {
                        let mut parts = m.body.split(':');
                        if parts.next() == Some("bench")
                            && parts.next() == Some(&pair.to_string())
                            && let Some(sent) = parts.nth(1).and_then(|t| t.parse::<u64>().ok())
                        {
                            got.push(now.saturating_sub(sent));
                        }
                    }
                }
            }
            (receiver, got)
        });
        tasks.spawn(async move {
            let (mut sent, mut stored) = (0u64, 0u64);
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            while Instant::now() < until {
                tick.tick().await;
                sent += 1;
                let body = format!("bench:{pair}:{sent}:{}", micros_now());
                if matches!(sender.send(to, &body).await, Ok(Delivery::Stored(_))) {
                    stored += 1;
                    expected.fetch_add(1, Ordering::Relaxed);
                }
            }
            let received = receive.await.ok();
            (sender, received, sent, stored)
        });
    }
    let mut phase = Phase::default();
    let mut back = Vec::new();
    while let Some(Ok((sender, received, sent, stored))) = tasks.join_next().await {
        phase.sent += sent;
        phase.stored += stored;
        if let Some((receiver, got)) = received {
            phase.delivered += got.len() as u64;
            phase.latencies_us.extend(got);
            back.push((sender, receiver));
        }
    }
    phase.latencies_us.sort_unstable();
    (back, phase)
}

fn phase_json(name: &str, p: &Phase) -> serde_json::Value {
    let success = if p.sent == 0 {
        0.0
    } else {
        100.0 * p.delivered as f64 / p.sent as f64
    };
    println!(
        "{name}: {} sent, {} stored, {} delivered ({success:.2} %); delivery latency p50 {:.1} ms, p99 {:.1} ms",
        p.sent,
        p.stored,
        p.delivered,
        percentile(&p.latencies_us, 0.5),
        percentile(&p.latencies_us, 0.99)
    );
    json!({"sent": p.sent, "stored": p.stored, "delivered": p.delivered, "success_percent": success,
           "p50_ms": percentile(&p.latencies_us, 0.5), "p99_ms": percentile(&p.latencies_us, 0.99)})
}

async fn hostile(args: &Args, net: &LocalNet, list: &allium_common::consensus::Consensus) -> anyhow::Result<()> {
    use allium_tests::attacks;
    let seeds = allium_common::seeds::parse(&std::fs::read_to_string(&net.seed_file)?)?;
    let dir = tempfile::tempdir()?;
    let mut pairs = Vec::new();
    for i in 0..args.concurrency.max(1) {
        let mut sender = messenger(dir.path(), &format!("sender-{i}"), &seeds)?;
        let mut receiver = messenger(dir.path(), &format!("receiver-{i}"), &seeds)?;
        // The receiver reads `messages`: its sender must be a contact, or
        // its texts would wait in `requests`.
        receiver.approve(&sender.home.account_id())?;
        sender.nodes().await?;
        receiver.nodes().await?;
        pairs.push((sender, receiver));
    }
    let (pairs, quiet) = exchange(pairs, args.seconds()).await;
    let quiet_json = phase_json("quiet", &quiet);

    let until = Instant::now() + Duration::from_secs(args.seconds());
    let tallies = attacks::Tallies::default();
    let victim = pairs.first().map(|p| p.1.home.account_id()).context("no pairs")?;
    let rogue = allium_node::keys::load_or_create(&net.nodes[0].dir)?.0;
    let mut attackers = tokio::task::JoinSet::new();
    attackers.spawn(attacks::slowloris(list.clone(), 40, until, tallies.clone()));
    attackers.spawn(attacks::relay_loops(list.clone(), 20, until, tallies.clone()));
    attackers.spawn(attacks::big_pages(list.clone(), 5, until, tallies.clone()));
    attackers.spawn(attacks::inbox_flood(list.clone(), victim, 10, until, tallies.clone()));
    attackers.spawn(attacks::junk_announces(
        net.seed().address.clone(),
        20,
        until,
        tallies.clone(),
    ));
    attackers.spawn(attacks::rogue_node(list.clone(), rogue, 10, until, tallies.clone()));
    let (pairs, attacked) = exchange(pairs, args.seconds()).await;
    while attackers.join_next().await.is_some() {}
    let attacked_json = phase_json("under attack", &attacked);
    let mut got = serde_json::Map::new();
    for (name, tally) in tallies.snapshot() {
        println!("attack {name}: {} requests, answers {:?}", tally.sent, tally.statuses);
        got.insert(name.to_owned(), json!({"sent": tally.sent, "statuses": tally.statuses}));
    }
    println!(
        "{}",
        json!({"scenario": "hostile", "nodes": net.nodes.len(), "pairs": pairs.len(), "seconds": args.seconds(),
               "quiet": quiet_json, "under_attack": attacked_json, "attacks": got})
    );
    Ok(())
}

/// One swarm of two nodes that compare digests every 2 s.
const CONVERGE_CONFIG: &str = "[seed_mode]\nmin_swarm_size = 2\ntarget_swarm_size = 2\nmax_swarm_size = 2\n\
drop_after_failures = 100000\n[timing]\nanti_entropy_interval_ms = 2000\n[limits]\nmax_mailbox_messages = 1000000\n";

async fn converge(args: &Args, net: &LocalNet) -> anyhow::Result<()> {
    use allium_node::storage::{NewMessage, StorageLimits, Store};
    let total = args.messages().max(1000);
    let now = u64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_millis(),
    )?;
    let limits = StorageLimits {
        max_mailbox_bytes: u64::MAX,
        max_mailbox_messages: u64::MAX,
        max_total_bytes: u64::MAX,
        ..StorageLimits::default()
    };
    // Written beside the nodes, which are stopped (SIGSTOP) meanwhile: so
    // neither restarts and asks for a full sync, and no anti-entropy round
    // sees the stores half written. The seed keeps them listed
    // (`drop_after_failures`).
    let signal = |sig: &str| {
        for node in net.nodes.iter().take(2) {
            if let Some(pid) = node.pid() {
                let _ = std::process::Command::new("kill")
                    .args([sig, &pid.to_string()])
                    .status();
            }
        }
    };
    signal("-STOP");
    let started = Instant::now();
    let mut stores = net
        .nodes
        .iter()
        .take(2)
        .map(|node| Store::open(node.dir.join("messages.db"), limits))
        .collect::<Result<Vec<_>, _>>()?;
    for chunk in (0..total as u64).collect::<Vec<_>>().chunks(2_000) {
        for (i, store) in stores.iter_mut().enumerate() {
            let batch: Vec<NewMessage> = chunk
                .iter()
                .filter(|n| i == 0 || *n % 1000 != 999)
                .map(|n| {
                    let mut key = [0u8; 32];
                    key[..2].copy_from_slice(&((n % 1000) as u16).to_le_bytes());
                    let mut data = vec![0u8; 100];
                    data[..8].copy_from_slice(&n.to_le_bytes());
                    NewMessage::new(
                        AccountId::from_x25519(key).into(),
                        Namespace::DEFAULT,
                        now,
                        now + 3_600_000,
                        data,
                    )
                })
                .collect();
            store.insert_batch(&batch, now)?;
        }
    }
    drop(stores);
    signal("-CONT");
    println!(
        "wrote {total} messages (and {} on the second node) in {:.1}s",
        total - total / 1000,
        started.elapsed().as_secs_f64()
    );
    let gauge = |address: String, name: &'static str| async move { allium_tests::metric(&address, name).await };
    let (a, b) = (net.nodes[0].address.clone(), net.nodes[1].address.clone());
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.seconds().max(60));
    loop {
        let held = gauge(b.clone(), "allium_messages").await.unwrap_or(0);
        if held >= total as u64 || Instant::now() > deadline {
            println!(
                "second node holds {held} of {total} after {:.1}s",
                started.elapsed().as_secs_f64()
            );
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let converged = started.elapsed().as_secs_f64();
    let pushed_to_b = gauge(b.clone(), "allium_replicated_in_total").await.unwrap_or(0);
    let buckets = gauge(a.clone(), "allium_anti_entropy_buckets_differing_total")
        .await
        .unwrap_or(0)
        + gauge(b.clone(), "allium_anti_entropy_buckets_differing_total")
            .await
            .unwrap_or(0);
    let copies = gauge(a.clone(), "allium_replicated_out_total").await.unwrap_or(0)
        + gauge(b.clone(), "allium_replicated_out_total").await.unwrap_or(0);
    let moved = gauge(a, "allium_anti_entropy_messages_pushed_total").await.unwrap_or(0)
        + gauge(b, "allium_anti_entropy_messages_pushed_total").await.unwrap_or(0);
    println!(
        "repair: {buckets} buckets compared different, {moved} messages pushed in {copies} pushes, \
         {pushed_to_b} new messages stored on the second"
    );
    println!(
        "{}",
        json!({"scenario": "converge", "messages": total, "missing": total / 1000, "seconds_to_converge": converged,
               "differing_buckets": buckets, "messages_pushed": moved, "pushes_confirmed": copies,
               "new_on_second": pushed_to_b})
    );
    Ok(())
}

/// Node limits for `restore`, `sync-copy`, `envelope` and `groups`: the
/// per-address limits lifted as by default, and the per-mailbox store
/// rates and replication pushes too, so that the bench can fill one mailbox
/// with 10,000 messages in seconds (and a long `sync-copy` or `envelope`,
/// whose sender's mailbox takes a copy of every message, or the group
/// mailbox and the 999 invitations of `groups`, are not refused).
const ACCOUNT_SYNC_CONFIG: &str = "[limits]\nmax_connections = 4096\nmax_connections_per_ip = 4096\n\
requests_per_second_per_ip = 1000000\nburst_per_ip = 1000000\nrelays_per_second_per_peer = 1000000\n\
stores_per_minute_per_mailbox = 100000000\nstore_bytes_per_minute_per_mailbox = 4000000000\n\
pushes_per_second_per_peer = 1000000\n";

/// Contacts of the account `restore` restores.
const RESTORE_CONTACTS: usize = 1_000;
/// Messages in its mailbox: every other one received, the rest copies of
/// sent ones.
const RESTORE_MESSAGES: usize = 10_000;
/// Contacts among them who wrote the received half.
const RESTORE_SENDERS: usize = 10;
/// Restores timed, each into a fresh home.
const RESTORES: usize = 3;
/// Concurrent batch requests filling the mailbox.
const FILL_CONCURRENCY: usize = 8;

/// The members of `account`'s swarm.
fn swarm_of(list: &allium_common::consensus::Consensus, account: &AccountId) -> anyhow::Result<Vec<NodeEntry>> {
    let swarm = list
        .swarm_ring()
        .swarm_of(account)
        .context("the node list has no swarms")?;
    Ok(list.swarm_members(swarm).cloned().collect())
}

/// POSTs `body` to a node's RPC endpoint `url`; its JSON answer, if 2xx.
async fn rpc_direct(http: &reqwest::Client, url: &str, body: &serde_json::Value) -> anyhow::Result<serde_json::Value> {
    let response = http.post(url).json(body).send().await?;
    let status = response.status();
    let value: serde_json::Value = response.json().await.unwrap_or_default();
    if !status.is_success() {
        bail!("{url} answered {status}: {value}");
    }
    Ok(value)
}

/// A namespace-0 store of `data` into `to`'s mailbox (unsigned, as anyone
/// may make), for an hour.
fn store_json(to: &AccountId, data: &[u8]) -> serde_json::Value {
    Call::Store(StoreParams {
        chunk: None,
        pubkey: (*to).into(),
        namespace: Namespace::DEFAULT,
        timestamp: micros_now() / 1000,
        ttl: 3_600_000,
        data: Base64Bytes(data.to_vec()),
        pubkey_ed25519: None,
        signature: None,
        credential: None,
    })
    .to_json()
}

/// Every message of `owner`'s `namespace` that the node at `url` holds,
/// read with owner-signed retrieves straight to it (no onion), page by
/// page: (hash, data).
async fn retrieve_all(
    http: &reqwest::Client,
    url: &str,
    owner: &allium_common::Identity,
    namespace: Namespace,
) -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    use allium_common::encoding::{Hex32, Sig64, from_base64};
    use allium_common::rpc::{RetrieveParams, retrieve_signed_bytes};
    let mut out = Vec::new();
    let mut last: Option<String> = None;
    loop {
        let ts = micros_now() / 1000;
        let request = Call::Retrieve(RetrieveParams {
            pubkey: owner.account_id().into(),
            pubkey_ed25519: Hex32(*owner.ed25519_pk()),
            namespace,
            timestamp: ts,
            signature: Sig64(owner.sign(&retrieve_signed_bytes(namespace, ts))),
            last_hash: last.clone(),
            max_count: None,
            max_size: None,
            wait_ms: None,
            credential: None,
        })
        .to_json();
        let page = rpc_direct(http, url, &request).await?;
        let messages = page["messages"].as_array().cloned().unwrap_or_default();
        for m in &messages {
            let hash = m["hash"].as_str().context("a message without hash")?.to_owned();
            let data = from_base64(m["data"].as_str().context("a message without data")?)?;
            out.push((hash, data));
        }
        if page["more"] != serde_json::Value::Bool(true) || messages.is_empty() {
            return Ok(out);
        }
        last = out.last().map(|(h, _)| h.clone());
    }
}

fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

/// One timed restore.
#[derive(Debug, Clone, Copy)]
struct RestoreRun {
    nodes_s: f64,
    sync_s: f64,
    inbox_s: f64,
    total_s: f64,
}

async fn restore(args: &Args, net: &LocalNet, list: &allium_common::consensus::Consensus) -> anyhow::Result<()> {
    use allium_client::book;
    use allium_client::home::{Home, IdentitySource};
    use allium_client::messenger::Messenger;
    use allium_common::content::{Content, SentCopy};
    use allium_common::rpc::{MAX_SUBREQUESTS, message_hash};
    use allium_common::{Identity, envelope};

    let seeds = allium_common::seeds::parse(&std::fs::read_to_string(&net.seed_file)?)?;
    let dir = tempfile::tempdir()?;
    let transport = || allium_client::transport::Transport::direct_with(args.plaintext);
    let seed: [u8; 32] = sodium::random_array();
    let me = Identity::from_ed25519_seed(&seed);
    let my_id = me.account_id();
    let mut account = Messenger::new(
        Home::create(&dir.path().join("account"), &seed, IdentitySource::Bip39)?,
        seeds.clone(),
        transport()?,
    );
    account.nodes().await?;

    // The contacts: the first RESTORE_SENDERS write to the account.
    let senders: Vec<Identity> = (0..RESTORE_SENDERS)
        .map(|_| Identity::from_ed25519_seed(&sodium::random_array()))
        .collect();
    let contacts: Vec<AccountId> = (0..RESTORE_CONTACTS)
        .map(|i| {
            senders
                .get(i)
                .map_or_else(|| AccountId::from_x25519(sodium::random_array()), Identity::account_id)
        })
        .collect();
    let t = Instant::now();
    account.edit_account_state(book::CONTACTS, |state, stamp| {
        contacts
            .iter()
            .enumerate()
            .try_for_each(|(i, id)| book::add(state, &format!("c{i}"), id, stamp))
    })??;
    let added_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let synced = account.sync_account().await?;
    let first_sync_s = t.elapsed().as_secs_f64();
    let pages: usize = synced.iter().map(|s| s.stored).sum();
    let state_bytes = account.account_state(book::CONTACTS)?.encode()?.len();
    println!(
        "{RESTORE_CONTACTS} contacts added in {added_s:.2}s; the first sync stored their state \
         ({state_bytes} bytes encoded) as {pages} page(s) in {first_sync_s:.2}s ({synced:?})"
    );

    // The mailbox: every other message from a contact, the rest copies of
    // messages the account sent (sealed by itself to itself).
    let t = Instant::now();
    let now = account.network_now();
    let mut envelopes = Vec::with_capacity(RESTORE_MESSAGES);
    for i in 0..RESTORE_MESSAGES {
        let ts = now.saturating_sub((RESTORE_MESSAGES - i) as u64 * 10);
        let mut content = Content::text(
            format!("restore bench message {i:05}: the quick brown fox jumps over the lazy dog"),
            ts,
        );
        let sealed = if i % 2 == 0 {
            envelope::seal(
                &senders[(i / 2) % RESTORE_SENDERS],
                &my_id,
                &content,
                &sodium::random_array(),
            )
        } else {
            let to = contacts[(i / 2) % RESTORE_CONTACTS];
            content.sent = Some(SentCopy {
                to: to.to_string(),
                hash: message_hash(&to.into(), Namespace::DEFAULT, format!("bench {i}").as_bytes()),
            });
            envelope::seal(&me, &my_id, &content, &sodium::random_array())
        };
        envelopes.push(sealed?);
    }
    let envelope_bytes: usize = envelopes.iter().map(Vec::len).sum();
    println!(
        "sealed {RESTORE_MESSAGES} envelopes ({:.0} bytes each on average) in {:.2}s",
        envelope_bytes as f64 / RESTORE_MESSAGES as f64,
        t.elapsed().as_secs_f64()
    );

    // Stored straight into one member of the account's swarm, in batches;
    // it replicates each to the others before it answers.
    let members = swarm_of(list, &my_id)?;
    let (http, scheme) = tool_http(args);
    let url = format!("{scheme}://{}/storage_rpc/v1", members[0].address);
    let mut held_before = Vec::new();
    for m in &members {
        held_before.push(
            allium_tests::metric_over(&http, scheme, &m.address, "allium_messages")
                .await
                .unwrap_or(0),
        );
    }
    let t = Instant::now();
    let envelopes = Arc::new(envelopes);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut fillers = tokio::task::JoinSet::new();
    for _ in 0..FILL_CONCURRENCY {
        let (http, url, envelopes, next) = (http.clone(), url.clone(), Arc::clone(&envelopes), Arc::clone(&next));
        fillers.spawn(async move {
            let mut fewest_confirmations = usize::MAX;
            loop {
                let start = next.fetch_add(1, Ordering::Relaxed) * MAX_SUBREQUESTS;
                let Some(chunk) = envelopes.get(start..(start + MAX_SUBREQUESTS).min(envelopes.len())) else {
                    break;
                };
                if chunk.is_empty() {
                    break;
                }
                let requests: Vec<_> = chunk.iter().map(|d| store_json(&my_id, d)).collect();
                let answer = rpc_direct(
                    &http,
                    &url,
                    &json!({"method": "batch", "params": {"requests": requests}}),
                )
                .await?;
                let results = answer["results"].as_array().context("a batch without results")?;
                if results.len() != chunk.len() {
                    bail!("a batch of {} stores got {} results", chunk.len(), results.len());
                }
                for r in results {
                    if r["code"] != 200 {
                        bail!("a store was refused: {r}");
                    }
                    let confirmed = r["body"]["swarm"].as_object().map_or(0, serde_json::Map::len);
                    fewest_confirmations = fewest_confirmations.min(confirmed);
                }
            }
            Ok(fewest_confirmations)
        });
    }
    let mut fewest = usize::MAX;
    while let Some(joined) = fillers.join_next().await {
        fewest = fewest.min(joined??);
    }
    let fill_s = t.elapsed().as_secs_f64();
    println!(
        "stored {RESTORE_MESSAGES} messages into one member of the account's swarm of {} in {fill_s:.1}s \
         ({:.0}/s, batches of {MAX_SUBREQUESTS}); every store confirmed by at least {fewest} member(s)",
        members.len(),
        RESTORE_MESSAGES as f64 / fill_s
    );
    // Replication settled: every member holds them.
    let deadline = Instant::now() + Duration::from_secs(120);
    for (m, before) in members.iter().zip(&held_before) {
        loop {
            let held = allium_tests::metric_over(&http, scheme, &m.address, "allium_messages")
                .await
                .unwrap_or(0);
            if held >= before + RESTORE_MESSAGES as u64 {
                break;
            }
            if Instant::now() > deadline {
                bail!(
                    "{} holds {held} messages, expected {}",
                    m.address,
                    before + RESTORE_MESSAGES as u64
                );
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
    println!("every member holds them after {:.1}s", t.elapsed().as_secs_f64());

    // The restores: a fresh home from the same seed each time.
    let mut runs = Vec::new();
    let mut restored = None;
    for r in 0..RESTORES {
        let home = Home::create(&dir.path().join(format!("restore-{r}")), &seed, IdentitySource::Bip39)?;
        let mut m = Messenger::new(home, seeds.clone(), transport()?);
        let started = Instant::now();
        m.nodes().await?;
        let nodes_s = started.elapsed().as_secs_f64();
        let t = Instant::now();
        let synced = m.sync_account().await?;
        let sync_s = t.elapsed().as_secs_f64();
        // Inbox passes until the history holds every message (one should
        // do; the count between passes is not timed).
        let (mut requests, mut inbox_s) = (0, 0.0);
        let mut passes = Vec::new();
        let mut entries = Vec::new();
        while passes.len() < 5 {
            let pass = Instant::now();
            let page = m.inbox(None).await?;
            let pass_s = pass.elapsed().as_secs_f64();
            inbox_s += pass_s;
            requests += page.requests.len();
            passes.push(format!(
                "{pass_s:.2}s: {} shown, {} requests, {} sent copies, {} unreadable",
                page.messages.len(),
                page.requests.len(),
                page.synced,
                page.unreadable
            ));
            entries = m.home.history(None, usize::MAX)?;
            if entries.len() >= RESTORE_MESSAGES {
                break;
            }
        }
        let total_s = nodes_s + sync_s + inbox_s;
        let book = m.book()?;
        let known = book.iter().count();
        let listed = book.iter().filter(|(_, c)| c.is_listed()).count();
        let history = entries.len();
        let received = entries
            .iter()
            .filter(|e| e.direction == allium_client::home::Direction::Incoming)
            .count();
        let copies_read: usize = synced.iter().map(|s| s.copies).sum();
        println!(
            "restore {}: {total_s:.2}s = node list {:.3}s + account sync {sync_s:.3}s ({copies_read} state copies read) \
             + inbox {inbox_s:.2}s ({} pass(es): {}); book {known} accounts ({listed} listed), history {history} \
             entries ({received} received)",
            r + 1,
            nodes_s,
            passes.len(),
            passes.join("; ")
        );
        if known != RESTORE_CONTACTS || listed != RESTORE_CONTACTS || history != RESTORE_MESSAGES || requests != 0 {
            bail!(
                "restore {} is incomplete: {known} accounts in the book ({listed} listed; expected {RESTORE_CONTACTS}), \
                 {history} history entries (expected {RESTORE_MESSAGES}), {requests} as requests (expected 0)",
                r + 1
            );
        }
        runs.push(RestoreRun {
            nodes_s,
            sync_s,
            inbox_s,
            total_s,
        });
        restored = Some(m);
    }
    let restored = restored.context("no restore ran")?;
    let column = |f: fn(&RestoreRun) -> f64| runs.iter().map(f).collect::<Vec<f64>>();
    let (totals, syncs, inboxes, lists) = (
        column(|r| r.total_s),
        column(|r| r.sync_s),
        column(|r| r.inbox_s),
        column(|r| r.nodes_s),
    );
    println!(
        "restore, median of {RESTORES}: total {:.2}s (runs {totals:.2?}), account sync {:.3}s ({syncs:.3?}), \
         inbox {:.2}s ({inboxes:.2?}), node list {:.3}s",
        median(&totals),
        median(&syncs),
        median(&inboxes),
        median(&lists)
    );

    // The parts of an inbox pass, timed apart.
    let t = Instant::now();
    let all = retrieve_all(&http, &url, &me, Namespace::DEFAULT).await?;
    let retrieve_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let mut opened = 0;
    for (_, data) in &all {
        if envelope::open(&me, data).is_ok() {
            opened += 1;
        }
    }
    let open_s = t.elapsed().as_secs_f64();
    const BOOK_READS: u32 = 50;
    let t = Instant::now();
    for _ in 0..BOOK_READS {
        std::hint::black_box(restored.book()?);
    }
    let book_ms = t.elapsed().as_secs_f64() * 1000.0 / f64::from(BOOK_READS);
    let mut scratch = Home::create(
        &dir.path().join("scratch"),
        &sodium::random_array(),
        IdentitySource::Bip39,
    )?;
    let t = Instant::now();
    for i in 0..RESTORE_MESSAGES {
        let hash = message_hash(&my_id.into(), Namespace::DEFAULT, &i.to_le_bytes());
        scratch.record_incoming(
            &hash,
            contacts[i % RESTORE_SENDERS],
            micros_now() / 1000,
            micros_now() / 1000,
            "restore bench message",
        )?;
    }
    let insert_s = t.elapsed().as_secs_f64();
    println!(
        "parts: {} messages retrieved straight from one node (no onion, {} pages) in {retrieve_s:.2}s; \
         {opened} envelopes opened in {open_s:.2}s; one contact-book read (`Messenger::book`, {RESTORE_CONTACTS} \
         contacts) {book_ms:.2} ms; {RESTORE_MESSAGES} history inserts one by one {insert_s:.2}s",
        all.len(),
        all.len().div_ceil(allium_common::rpc::MAX_RETRIEVE_COUNT)
    );
    println!(
        "{}",
        json!({"scenario": "restore", "nodes": net.nodes.len(), "swarm": members.len(), "contacts": RESTORE_CONTACTS,
               "messages": RESTORE_MESSAGES, "state_bytes": state_bytes, "state_pages": pages,
               "envelope_bytes_mean": envelope_bytes as f64 / RESTORE_MESSAGES as f64,
               "total_s": totals, "sync_s": syncs, "inbox_s": inboxes, "node_list_s": lists,
               "median_total_s": median(&totals), "median_sync_s": median(&syncs), "median_inbox_s": median(&inboxes),
               "parts": {"retrieve_direct_s": retrieve_s, "open_s": open_s, "book_read_ms": book_ms,
                         "history_inserts_s": insert_s}})
    );
    Ok(())
}

async fn sync_copy(args: &Args, net: &LocalNet, list: &allium_common::consensus::Consensus) -> anyhow::Result<()> {
    use allium_client::messenger::Delivery;
    use allium_common::content::Content;
    use allium_common::envelope;

    let seeds = allium_common::seeds::parse(&std::fs::read_to_string(&net.seed_file)?)?;
    let dir = tempfile::tempdir()?;
    let mut alice = messenger(dir.path(), "alice", &seeds)?;
    let bob = messenger(dir.path(), "bob", &seeds)?;
    let (alice_id, bob_id) = (alice.home.account_id(), bob.home.account_id());
    alice.nodes().await?;
    // Warm-up: paths, kept connections, Bob made a contact.
    alice.send(bob_id, "warm-up").await?;
    alice
        .send_control(bob_id, &Content::text("warm-up", alice.network_now()))
        .await?;
    let n = args.messages().max(1);
    let micros = |t: Instant| u64::try_from(t.elapsed().as_micros()).unwrap_or(u64::MAX);
    let (mut with_copy, mut without) = (Vec::with_capacity(n), Vec::with_capacity(n));
    let (mut copy_failed, mut plain_failed) = (0, 0);
    let started = Instant::now();
    for i in 0..n {
        // Same length either way; the order alternates.
        let text = format!("{i:06}:{}", "x".repeat(64));
        for copy in [i % 2 == 0, i % 2 == 1] {
            let t = Instant::now();
            let delivery = if copy {
                alice.send(bob_id, &format!("send:{text}")).await?
            } else {
                let content = Content::text(format!("ctrl:{text}"), alice.network_now());
                alice.send_control(bob_id, &content).await?
            };
            let us = micros(t);
            match (copy, delivery) {
                (true, Delivery::Stored(_)) => with_copy.push(us),
                (true, _) => copy_failed += 1,
                (false, Delivery::Stored(_)) => without.push(us),
                (false, _) => plain_failed += 1,
            }
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let (copy50, copy99) = ms_percentiles(with_copy.clone());
    let (plain50, plain99) = ms_percentiles(without.clone());
    let mean = |v: &[u64]| v.iter().sum::<u64>() as f64 / v.len().max(1) as f64 / 1000.0;
    println!(
        "send (message + copy): p50 {copy50:.2} ms, p99 {copy99:.2} ms, mean {:.2} ms over {}; {copy_failed} not stored",
        mean(&with_copy),
        with_copy.len()
    );
    println!(
        "send_control (message alone): p50 {plain50:.2} ms, p99 {plain99:.2} ms, mean {:.2} ms over {}; {plain_failed} not stored",
        mean(&without),
        without.len()
    );
    println!(
        "ratio send / send_control: p50 ×{:.2}, p99 ×{:.2}; extra per message p50 {:.2} ms ({elapsed:.1}s in all)",
        copy50 / plain50.max(f64::EPSILON),
        copy99 / plain99.max(f64::EPSILON),
        copy50 - plain50
    );

    // What the swarms hold: Bob's mailbox (both kinds of message) and
    // Alice's (the copies), read back and opened.
    let (http, scheme) = tool_http(args);
    let member = |id: &AccountId| -> anyhow::Result<String> {
        let m = swarm_of(list, id)?;
        Ok(format!(
            "{scheme}://{}/storage_rpc/v1",
            m.first().context("an empty swarm")?.address
        ))
    };
    let (mut sent, mut control, mut copies) = (Vec::new(), Vec::new(), Vec::new());
    for (_, data) in retrieve_all(&http, &member(&bob_id)?, bob.home.identity(), Namespace::DEFAULT).await? {
        if let Ok(o) = envelope::open(bob.home.identity(), &data) {
            match o.content.body.as_deref() {
                Some(b) if b.starts_with("send:") => sent.push(data.len()),
                Some(b) if b.starts_with("ctrl:") => control.push(data.len()),
                _ => {}
            }
        }
    }
    for (_, data) in retrieve_all(&http, &member(&alice_id)?, alice.home.identity(), Namespace::DEFAULT).await? {
        if let Ok(o) = envelope::open(alice.home.identity(), &data)
            && o.content.sent.is_some()
            && o.content.body.as_deref().is_some_and(|b| b.starts_with("send:"))
        {
            copies.push(data.len());
        }
    }
    let avg = |v: &[usize]| v.iter().sum::<usize>() as f64 / v.len().max(1) as f64;
    let (sent_b, copy_b, control_b) = (avg(&sent), avg(&copies), avg(&control));
    println!(
        "stored: {} messages by send ({sent_b:.0} bytes each) and {} copies in the sender's swarm ({copy_b:.0} bytes each): \
         {:.0} bytes per message; {} by send_control ({control_b:.0} bytes each)",
        sent.len(),
        copies.len(),
        sent_b + copy_b,
        control.len()
    );
    println!(
        "{}",
        json!({"scenario": "sync-copy", "nodes": net.nodes.len(), "messages": n,
               "same_swarm": swarm_of(list, &alice_id)?.first().map(|m| m.ed25519.0) == swarm_of(list, &bob_id)?.first().map(|m| m.ed25519.0),
               "send": {"p50_ms": copy50, "p99_ms": copy99, "mean_ms": mean(&with_copy), "failed": copy_failed,
                        "message_bytes": sent_b, "copy_bytes": copy_b, "stored": sent.len(), "copies": copies.len()},
               "send_control": {"p50_ms": plain50, "p99_ms": plain99, "mean_ms": mean(&without), "failed": plain_failed,
                                "message_bytes": control_b, "stored": control.len()},
               "ratio_p50": copy50 / plain50.max(f64::EPSILON), "ratio_p99": copy99 / plain99.max(f64::EPSILON)})
    );
    Ok(())
}

/// Fresh accounts (and fresh senders) for each first-contact part of
/// `envelope`.
const FIRST_CONTACTS: usize = 20;
/// Rounds of the `seal_for` timing of `envelope`.
const SEAL_FOR_ROUNDS: usize = 50;

/// A receiver of `envelope` watching its inbox (long polls through its own
/// paths) until it has `expected` (at most `n`) messages whose body starts
/// with `tag`; returns it and each message's send→watch latency in µs.
fn watch_tagged(
    mut m: allium_client::messenger::Messenger,
    tag: &'static str,
    n: usize,
    expected: Arc<std::sync::atomic::AtomicUsize>,
) -> tokio::task::JoinHandle<(allium_client::messenger::Messenger, Vec<u64>)> {
    tokio::spawn(async move {
        let mut latencies = Vec::with_capacity(n);
        let deadline = Instant::now() + Duration::from_secs(300);
        while latencies.len() < expected.load(Ordering::Relaxed).min(n) && Instant::now() < deadline {
            if let Ok(got) = m.inbox(Some(20_000)).await {
                let now = micros_now();
                for r in got.messages {
                    let mut parts = r.body.split(':');
                    if parts.next() == Some(tag)
                        && let Some(sent) = parts.nth(1).and_then(|t| t.parse::<u64>().ok())
                    {
                        latencies.push(now.saturating_sub(sent));
                    }
                }
            }
        }
        (m, latencies)
    })
}

/// How many of the history entries of `m` with `peer`, going `direction`
/// with a body starting with `tag`, travelled in envelope v1 and v2.
fn envelope_counts(
    m: &allium_client::messenger::Messenger,
    peer: &AccountId,
    direction: allium_client::home::Direction,
    tag: &str,
) -> anyhow::Result<(usize, usize)> {
    let entries = m.home.history(Some(peer), usize::MAX)?;
    let tagged = entries
        .iter()
        .filter(|e| e.direction == direction && e.body.starts_with(tag));
    let (mut v1, mut v2) = (0, 0);
    for e in tagged {
        match e.envelope {
            2 => v2 += 1,
            _ => v1 += 1,
        }
    }
    Ok((v1, v2))
}

/// The envelope version of an outgoing history entry of `m` to `peer` with
/// this exact body (0 if there is none).
fn sent_envelope(m: &allium_client::messenger::Messenger, peer: &AccountId, body: &str) -> anyhow::Result<u8> {
    Ok(m.home
        .history(Some(peer), usize::MAX)?
        .iter()
        .rfind(|e| e.direction == allium_client::home::Direction::Outgoing && e.body == body)
        .map_or(0, |e| e.envelope))
}

async fn envelope_versions(
    args: &Args,
    net: &LocalNet,
    list: &allium_common::consensus::Consensus,
) -> anyhow::Result<()> {
    use allium_client::home::Direction;
    use allium_client::messenger::Delivery;
    use std::sync::atomic::AtomicUsize;

    let seeds = allium_common::seeds::parse(&std::fs::read_to_string(&net.seed_file)?)?;
    let dir = tempfile::tempdir()?;
    let micros = |t: Instant| u64::try_from(t.elapsed().as_micros()).unwrap_or(u64::MAX);
    let mut alice = messenger(dir.path(), "alice", &seeds)?;
    let mut plain = messenger(dir.path(), "plain", &seeds)?;
    let mut keyed = messenger(dir.path(), "keyed", &seeds)?;
    let (alice_id, plain_id, keyed_id) = (
        alice.home.account_id(),
        plain.home.account_id(),
        keyed.home.account_id(),
    );
    // Both receivers read `messages`: Alice is their contact (so each of
    // their inbox rounds also queues her a receipt, as in `e2e`).
    plain.approve(&alice_id)?;
    keyed.approve(&alice_id)?;
    alice.nodes().await?;
    plain.nodes().await?;
    keyed.nodes().await?;
    let published = keyed.publish_keys(false).await?;
    if !published.stored || published.bundle.keys().is_empty() {
        bail!("the v2 receiver's keys were not published: {published:?}");
    }
    let bundle_bytes = published.bundle.encode().len();
    println!(
        "the v2 receiver published a bundle of {} key(s), {bundle_bytes} bytes",
        published.bundle.keys().len()
    );

    // Warm-up: paths and kept connections; Alice's first send to `keyed`
    // fetches its bundle (timed below with fresh accounts).
    for to in [plain_id, keyed_id] {
        if !matches!(alice.send(to, "warm-up").await?, Delivery::Stored(_)) {
            bail!("a warm-up message was not stored");
        }
    }
    if sent_envelope(&alice, &keyed_id, "warm-up")? != 2 {
        bail!("the warm-up message to the receiver with keys did not go in envelope v2");
    }

    // Send→watch, v1 and v2 alternated one message at a time.
    let n = args.messages().max(1);
    let expected_v1 = Arc::new(AtomicUsize::new(n));
    let expected_v2 = Arc::new(AtomicUsize::new(n));
    let watch_v1 = watch_tagged(plain, "v1", n, Arc::clone(&expected_v1));
    let watch_v2 = watch_tagged(keyed, "v2", n, Arc::clone(&expected_v2));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (mut rtt_v1, mut rtt_v2) = (Vec::with_capacity(n), Vec::with_capacity(n));
    let (mut failed_v1, mut failed_v2) = (0, 0);
    let started = Instant::now();
    for i in 0..n {
        for v2 in [i % 2 == 1, i % 2 == 0] {
            let (to, tag) = if v2 { (keyed_id, "v2") } else { (plain_id, "v1") };
            let t = Instant::now();
            let delivery = alice.send(to, &format!("{tag}:{i}:{}", micros_now())).await;
            let us = micros(t);
            match (v2, delivery) {
                (false, Ok(Delivery::Stored(_))) => rtt_v1.push(us),
                (true, Ok(Delivery::Stored(_))) => rtt_v2.push(us),
                (false, _) => failed_v1 += 1,
                (true, _) => failed_v2 += 1,
            }
            // One message in flight at a time, so each latency is one message's.
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    let sending_s = started.elapsed().as_secs_f64();
    expected_v1.store(rtt_v1.len(), Ordering::Relaxed);
    expected_v2.store(rtt_v2.len(), Ordering::Relaxed);
    let (plain, lat_v1) = watch_v1.await?;
    let (keyed, lat_v2) = watch_v2.await?;
    let (l1_50, l1_99) = ms_percentiles(lat_v1.clone());
    let (l2_50, l2_99) = ms_percentiles(lat_v2.clone());
    let (r1_50, r1_99) = ms_percentiles(rtt_v1.clone());
    let (r2_50, r2_99) = ms_percentiles(rtt_v2.clone());
    let ratio = |a: f64, b: f64| a / b.max(f64::EPSILON);
    println!(
        "send→watch latency, v1: p50 {l1_50:.2} ms, p99 {l1_99:.2} ms over {}; v2: p50 {l2_50:.2} ms, p99 {l2_99:.2} ms \
         over {}; v2/v1 p50 ×{:.2}, p99 ×{:.2}",
        lat_v1.len(),
        lat_v2.len(),
        ratio(l2_50, l1_50),
        ratio(l2_99, l1_99)
    );
    println!(
        "send round trip (message + copy), v1: p50 {r1_50:.2} ms, p99 {r1_99:.2} ms, {failed_v1} not stored; \
         v2: p50 {r2_50:.2} ms, p99 {r2_99:.2} ms, {failed_v2} not stored; v2/v1 p50 ×{:.2}, p99 ×{:.2} \
         ({sending_s:.1}s of sending)",
        ratio(r2_50, r1_50),
        ratio(r2_99, r1_99)
    );

    // Which envelope each message travelled in, as both ends recorded it.
    let sent_v1 = envelope_counts(&alice, &plain_id, Direction::Outgoing, "v1:")?;
    let sent_v2 = envelope_counts(&alice, &keyed_id, Direction::Outgoing, "v2:")?;
    let got_v1 = envelope_counts(&plain, &alice_id, Direction::Incoming, "v1:")?;
    let got_v2 = envelope_counts(&keyed, &alice_id, Direction::Incoming, "v2:")?;
    println!(
        "envelopes (v1, v2) in the histories: sent to the receiver without keys {sent_v1:?}, received by it {got_v1:?}; \
         sent to the receiver with keys {sent_v2:?}, received by it {got_v2:?}"
    );
    if sent_v2.0 != 0 || got_v2.0 != 0 || got_v2.1 != lat_v2.len() || sent_v2.1 != rtt_v2.len() {
        bail!(
            "envelope v2 was not used for every message to the receiver with keys: sent (v1, v2) {sent_v2:?}, \
             received {got_v2:?}, {} stored, {} watched",
            rtt_v2.len(),
            lat_v2.len()
        );
    }
    if sent_v1.1 != 0 || got_v1.1 != 0 || got_v1.0 != lat_v1.len() {
        bail!(
            "a message to the receiver without keys did not go in envelope v1: sent {sent_v1:?}, received {got_v1:?}"
        );
    }

    // Where a send's envelope comes from: `seal_for` as `send` calls it
    // (to the account without keys: a bundle fetch that finds none, then
    // v1; to the one with keys: the cached bundle, verified, then v2), and
    // v1 without the fetch; interleaved, nothing stored.
    let (mut choose_v1, mut choose_v2, mut seal_only_v1) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..SEAL_FOR_ROUNDS {
        let content = allium_common::content::Content::text(format!("vx:{i}:{}", micros_now()), alice.network_now());
        let t = Instant::now();
        let (_, version) = alice.seal_for(&plain_id, &content, true).await?;
        choose_v1.push(micros(t));
        if version != 1 {
            bail!("seal_for sealed v{version} to the account without keys");
        }
        let t = Instant::now();
        let (_, version) = alice.seal_for(&keyed_id, &content, true).await?;
        choose_v2.push(micros(t));
        if version != 2 {
            bail!("seal_for sealed v{version} to the account with keys");
        }
        let t = Instant::now();
        alice.seal_for(&plain_id, &content, false).await?;
        seal_only_v1.push(micros(t));
    }
    let (choose_v1_50, _) = ms_percentiles(choose_v1);
    let (choose_v2_50, _) = ms_percentiles(choose_v2);
    let (seal_only_v1_50, _) = ms_percentiles(seal_only_v1);
    println!(
        "seal_for as send calls it, median of {SEAL_FOR_ROUNDS}: to the account without keys (fetch finds no bundle, \
         v1) {choose_v1_50:.3} ms; to the account with keys (cached bundle, v2) {choose_v2_50:.3} ms; v1 without the \
         fetch {seal_only_v1_50:.3} ms"
    );

    // The bytes: both mailboxes read back straight from a swarm member,
    // every envelope sorted by its version byte.
    let (http, scheme) = tool_http(args);
    let member = |id: &AccountId| -> anyhow::Result<String> {
        let m = swarm_of(list, id)?;
        Ok(format!(
            "{scheme}://{}/storage_rpc/v1",
            m.first().context("an empty swarm")?.address
        ))
    };
    let mut stored: [Vec<u64>; 2] = [Vec::new(), Vec::new()];
    for r in [&plain, &keyed] {
        let id = r.home.account_id();
        for (_, data) in retrieve_all(&http, &member(&id)?, r.home.identity(), Namespace::DEFAULT).await? {
            match data.first() {
                Some(1) => stored[0].push(data.len() as u64),
                Some(2) => stored[1].push(data.len() as u64),
                _ => {}
            }
        }
    }
    let range = |v: &[u64]| {
        (
            v.iter().copied().min().unwrap_or(0),
            v.iter().copied().max().unwrap_or(0),
        )
    };
    let (v1_bytes, v2_bytes) = (range(&stored[0]), range(&stored[1]));
    println!(
        "stored: {} v1 envelopes of {}–{} bytes, {} v2 envelopes of {}–{} bytes (one-line texts); the bundle \
         {bundle_bytes} bytes",
        stored[0].len(),
        v1_bytes.0,
        v1_bytes.1,
        stored[1].len(),
        v2_bytes.0,
        v2_bytes.1
    );

    // The network's share: the same delivery as `send`'s (the message,
    // then the copy; `flush_outbox`) of envelopes sealed beforehand, v1 to
    // the account without keys and v2 to the one with, alternated; so no
    // bundle lookup and no sealing is timed, only the bytes' way.
    let (mut deliver_v1, mut deliver_v2) = (Vec::with_capacity(n), Vec::with_capacity(n));
    let mut others = 0;
    for i in 0..n {
        for v2 in [i % 2 == 1, i % 2 == 0] {
            let (to, tag) = if v2 { (keyed_id, "d2") } else { (plain_id, "d1") };
            let body = format!("{tag}:{i}:{}", micros_now());
            let content = allium_common::content::Content::text(body.as_str(), alice.network_now());
            let (data, version) = alice.seal_for(&to, &content, false).await?;
            if version != if v2 { 2 } else { 1 } {
                bail!("a pre-sealed {tag} message went in envelope v{version}");
            }
            let id = alice.home.outbox_add(
                to,
                data,
                &body,
                allium_client::messenger::MESSAGE_TTL_MS,
                micros_now() / 1000,
            )?;
            alice.home.outbox_set_envelope(id, version)?;
            let t = Instant::now();
            let (results, _) = alice.flush_outbox().await?;
            let us = micros(t);
            // Anything else due (a copy left over from an earlier round)
            // went in the same flush: counted.
            others += results.len().saturating_sub(1);
            if !results
                .iter()
                .any(|(item, d)| item.id == id && matches!(d, Delivery::Stored(_)))
            {
                bail!("a pre-sealed message was not stored: {results:?}");
            }
            if v2 { deliver_v2.push(us) } else { deliver_v1.push(us) }
        }
    }
    let (d1_50, d1_99) = ms_percentiles(deliver_v1);
    let (d2_50, d2_99) = ms_percentiles(deliver_v2);
    println!(
        "delivery of a sealed one-line message (message + copy, no lookup, no sealing), v1: p50 {d1_50:.2} ms, p99 \
         {d1_99:.2} ms; v2: p50 {d2_50:.2} ms, p99 {d2_99:.2} ms; v2/v1 p50 ×{:.2}, p99 \
         ×{:.2}; {others} other outbox items in those flushes",
        ratio(d2_50, d1_50),
        ratio(d2_99, d1_99)
    );

    // First contact, (1): `fetch_bundle` of the receiver with keys from
    // fresh senders (a new home each: node list fetched and paths made
    // before, untimed; the fetch is the session's first request), then
    // again from each (kept connection), and of the receiver without keys
    // (an empty answer).
    let (mut cold, mut warm, mut empty) = (Vec::new(), Vec::new(), Vec::new());
    for k in 0..FIRST_CONTACTS {
        let mut sender = messenger(dir.path(), &format!("fresh-sender-{k}"), &seeds)?;
        sender.nodes().await?;
        let t = Instant::now();
        let fetched = sender.fetch_bundle(&keyed_id).await?;
        cold.push(micros(t));
        if fetched.is_none_or(|b| b.encode().len() != bundle_bytes) {
            bail!("a fresh sender did not fetch the published bundle");
        }
        for keys in [k % 2 == 0, k % 2 == 1] {
            let t = Instant::now();
            let fetched = sender.fetch_bundle(if keys { &keyed_id } else { &plain_id }).await?;
            let us = micros(t);
            match (keys, fetched) {
                (true, Some(_)) => warm.push(us),
                (false, None) => empty.push(us),
                (true, None) => bail!("a second fetch found no bundle"),
                (false, Some(_)) => bail!("the receiver without keys has a bundle"),
            }
        }
    }
    let (cold50, cold99) = ms_percentiles(cold.clone());
    let (warm50, warm99) = ms_percentiles(warm.clone());
    let (empty50, empty99) = ms_percentiles(empty.clone());
    println!(
        "fetch_bundle from {FIRST_CONTACTS} fresh senders: first request of the session p50 {cold50:.2} ms (p99 \
         {cold99:.2}); again p50 {warm50:.2} ms (p99 {warm99:.2}); of the account without keys (empty answer) p50 \
         {empty50:.2} ms (p99 {empty99:.2})"
    );

    // First contact, (2): Alice (warm) sends twice to each of fresh accounts
    // with keys (the first send fetches the bundle, the second finds it
    // cached) and without (no bundle to cache), alternating which kind goes
    // first.
    let mut fresh_keyed = Vec::new();
    let mut fresh_plain = Vec::new();
    for k in 0..FIRST_CONTACTS {
        let mut r = messenger(dir.path(), &format!("fresh-keyed-{k}"), &seeds)?;
        r.nodes().await?;
        r.publish_keys(false).await?;
        fresh_keyed.push(r.home.account_id());
        fresh_plain.push(
            messenger(dir.path(), &format!("fresh-plain-{k}"), &seeds)?
                .home
                .account_id(),
        );
    }
    let (mut first_keyed, mut second_keyed, mut first_plain, mut second_plain) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for k in 0..FIRST_CONTACTS {
        for keys in [k % 2 == 0, k % 2 == 1] {
            let to = if keys { fresh_keyed[k] } else { fresh_plain[k] };
            for (turn, body) in ["first", "second"].into_iter().enumerate() {
                let cached_before = alice.home.cached_bundle(&to)?.is_some();
                let t = Instant::now();
                let delivery = alice.send(to, body).await?;
                let us = micros(t);
                if !matches!(delivery, Delivery::Stored(_)) {
                    bail!("a {body} send to a fresh account was not stored: {delivery:?}");
                }
                let version = sent_envelope(&alice, &to, body)?;
                // A fresh account with keys: its bundle is cached after the first.
                if version != if keys { 2 } else { 1 } || (keys && cached_before != (turn == 1)) {
                    bail!(
                        "the {body} send to a fresh account {} keys went in envelope v{version} (bundle cached \
                         before: {cached_before})",
                        if keys { "with" } else { "without" }
                    );
                }
                match (keys, turn) {
                    (true, 0) => first_keyed.push(us),
                    (true, _) => second_keyed.push(us),
                    (false, 0) => first_plain.push(us),
                    (false, _) => second_plain.push(us),
                }
            }
        }
    }
    let (fk50, fk99) = ms_percentiles(first_keyed.clone());
    let (sk50, sk99) = ms_percentiles(second_keyed.clone());
    let (fp50, fp99) = ms_percentiles(first_plain.clone());
    let (sp50, sp99) = ms_percentiles(second_plain.clone());
    println!(
        "send to {FIRST_CONTACTS} fresh accounts with keys (v2): first p50 {fk50:.2} ms (p99 {fk99:.2}), second \
         (bundle cached) p50 {sk50:.2} ms (p99 {sk99:.2}), first/second ×{:.2}",
        ratio(fk50, sk50)
    );
    println!(
        "send to {FIRST_CONTACTS} fresh accounts without keys (v1): first p50 {fp50:.2} ms (p99 {fp99:.2}), second \
         p50 {sp50:.2} ms (p99 {sp99:.2}), first/second ×{:.2}",
        ratio(fp50, sp50)
    );
    println!(
        "{}",
        json!({"scenario": "envelope", "nodes": net.nodes.len(), "messages": n,
               "latency": {"v1": {"p50_ms": l1_50, "p99_ms": l1_99, "count": lat_v1.len()},
                           "v2": {"p50_ms": l2_50, "p99_ms": l2_99, "count": lat_v2.len()},
                           "ratio_p50": ratio(l2_50, l1_50), "ratio_p99": ratio(l2_99, l1_99)},
               "send": {"v1": {"p50_ms": r1_50, "p99_ms": r1_99, "failed": failed_v1},
                        "v2": {"p50_ms": r2_50, "p99_ms": r2_99, "failed": failed_v2},
                        "ratio_p50": ratio(r2_50, r1_50), "ratio_p99": ratio(r2_99, r1_99)},
               "delivery": {"v1": {"p50_ms": d1_50, "p99_ms": d1_99}, "v2": {"p50_ms": d2_50, "p99_ms": d2_99},
                            "ratio_p50": ratio(d2_50, d1_50), "ratio_p99": ratio(d2_99, d1_99)},
               "seal_for": {"rounds": SEAL_FOR_ROUNDS, "no_keys_with_fetch_p50_ms": choose_v1_50,
                            "keys_cached_p50_ms": choose_v2_50, "v1_without_fetch_p50_ms": seal_only_v1_50},
               "histories": {"sent_v1": sent_v1, "received_v1": got_v1, "sent_v2": sent_v2, "received_v2": got_v2},
               "bytes": {"v1": v1_bytes, "v2": v2_bytes, "v1_count": stored[0].len(), "v2_count": stored[1].len(),
                         "bundle": bundle_bytes, "bundle_keys": published.bundle.keys().len()},
               "fetch_bundle": {"senders": FIRST_CONTACTS, "first_p50_ms": cold50, "first_p99_ms": cold99,
                                "again_p50_ms": warm50, "again_p99_ms": warm99,
                                "empty_p50_ms": empty50, "empty_p99_ms": empty99},
               "first_contact": {"accounts": FIRST_CONTACTS,
                                 "keys_first_p50_ms": fk50, "keys_second_p50_ms": sk50,
                                 "keys_first_p99_ms": fk99, "keys_second_p99_ms": sk99,
                                 "no_keys_first_p50_ms": fp50, "no_keys_second_p50_ms": sp50,
                                 "no_keys_first_p99_ms": fp99, "no_keys_second_p99_ms": sp99}})
    );
    Ok(())
}

/// Group sizes (the admin included) whose members watch in `groups`.
const GROUP_SIZES: [usize; 2] = [10, 100];
/// Members of the group `groups` rekeys with no clients behind them (the
/// admin and one reading member are clients).
const LARGE_GROUP: usize = 1_000;
/// Rekeys timed per group size, and in-process seals and opens.
const REKEYS: usize = 3;
/// Idle rounds (nothing new) timed per group size.
const IDLE_ROUNDS: usize = 10;
/// `send_to_group` calls timed per group size once nobody watches.
const QUIET_SENDS: usize = 20;
/// After a paced message reached every member: the pause before the next,
/// so that every watcher's next long-poll is armed.
const REARM_MS: u64 = 50;
/// Longest wait for a paced message to reach every member.
const PACE_LIMIT: Duration = Duration::from_secs(10);
/// How long a member may take to join (inbox rounds, then a group round).
const JOIN_LIMIT: Duration = Duration::from_secs(180);
/// How long the watchers go on after the last message was stored.
const WATCH_GRACE: Duration = Duration::from_secs(60);

/// What a watching member of `groups` returns: itself, (message, send→watch
/// latency in µs) for each message it saw, and its rounds.
type GroupWatch = (allium_client::messenger::Messenger, Vec<(usize, u64)>, WatchRounds);

/// The rounds of a watching member of `groups`.
#[derive(Debug, Default, Clone, Copy)]
struct WatchRounds {
    /// Rounds that answered.
    done: u64,
    /// Of those, rounds that brought no new message (a long-poll that ran
    /// out, or a swarm member whose cursor was behind answering at once
    /// with messages already seen).
    empty: u64,
    /// Rounds that failed.
    failed: u64,
}

/// A member of `groups` watching its one group (rounds long-polled on the
/// group's swarm) until it saw `expected` of the messages `0..total` or
/// `stop_at` (µs since the epoch) passed; counts each message it sees in
/// `arrived`.
fn watch_group(
    mut m: allium_client::messenger::Messenger,
    total: usize,
    expected: Arc<std::sync::atomic::AtomicUsize>,
    stop_at: Arc<AtomicU64>,
    arrived: Arc<Vec<std::sync::atomic::AtomicUsize>>,
) -> tokio::task::JoinHandle<GroupWatch> {
    tokio::spawn(async move {
        let mut got = Vec::with_capacity(total);
        let mut seen = vec![false; total];
        let mut rounds = WatchRounds::default();
        loop {
            let now = micros_now();
            let stop = stop_at.load(Ordering::Relaxed);
            if got.len() >= expected.load(Ordering::Relaxed) || now >= stop {
                break;
            }
            let wait = ((stop - now) / 1000).clamp(1, allium_client::messenger::WATCH_WAIT_MS);
            match m.group_round(Some(wait)).await {
                Ok(page) => {
                    let now = micros_now();
                    rounds.done += 1;
                    let before = got.len();
                    for r in page.messages {
                        let mut parts = r.entry.body.split(':');
                        if let (Some(Ok(i)), Some(Ok(sent))) = (
                            parts.next().map(str::parse::<usize>),
                            parts.next().map(str::parse::<u64>),
                        ) && i < total
                            && !seen[i]
                        {
                            seen[i] = true;
                            arrived[i].fetch_add(1, Ordering::Relaxed);
                            got.push((i, now.saturating_sub(sent)));
                        }
                    }
                    if got.len() == before {
                        rounds.empty += 1;
                    }
                }
                Err(_) => {
                    rounds.failed += 1;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
        (m, got, rounds)
    })
}

/// One group of `groups` after its watch: the admin, the Group ID and the
/// members that came back from watching.
struct WatchedGroup {
    admin: allium_client::messenger::Messenger,
    group: allium_common::group::GroupId,
    members: Vec<allium_client::messenger::Messenger>,
}

/// Percentiles of one phase of a group watch: every (message, member)
/// latency, and per message the first and the last member's.
fn watch_phase(name: &str, size: usize, per_message: &[Vec<u64>], stored: usize, members: usize) -> serde_json::Value {
    let all: Vec<u64> = per_message.iter().flatten().copied().collect();
    let firsts: Vec<u64> = per_message.iter().filter_map(|v| v.iter().min().copied()).collect();
    let lasts: Vec<u64> = per_message.iter().filter_map(|v| v.iter().max().copied()).collect();
    let (p50, p99) = ms_percentiles(all.clone());
    let (first50, first99) = ms_percentiles(firsts);
    let (last50, last99) = ms_percentiles(lasts);
    println!(
        "{size} members, {name}: send→watch p50 {p50:.2} ms, p99 {p99:.2} ms over {} of {} (message, member); per \
         message, first member p50 {first50:.2} ms (p99 {first99:.2}), last member p50 {last50:.2} ms (p99 \
         {last99:.2})",
        all.len(),
        stored * members
    );
    json!({"p50_ms": p50, "p99_ms": p99, "count": all.len(), "expected": stored * members,
           "first_member_p50_ms": first50, "first_member_p99_ms": first99,
           "last_member_p50_ms": last50, "last_member_p99_ms": last99})
}

/// A group of `size` (an admin and `size - 1` member clients, in process):
/// made, joined, idle rounds timed, then watched by every member while the
/// admin sends `n` messages paced (each once every member saw the one
/// before, then [`REARM_MS`]) and `n` 5 ms apart.
async fn group_watch(
    dir: &std::path::Path,
    seeds: &[allium_common::seeds::Seed],
    node_pids: &[u32],
    size: usize,
    n: usize,
) -> anyhow::Result<(WatchedGroup, serde_json::Value)> {
    use std::sync::atomic::AtomicUsize;
    let micros = |t: Instant| u64::try_from(t.elapsed().as_micros()).unwrap_or(u64::MAX);
    let started = Instant::now();
    let mut admin = messenger(dir, &format!("g{size}-admin"), seeds)?;
    let admin_id = admin.home.account_id();
    admin.nodes().await?;
    let mut members = Vec::with_capacity(size - 1);
    for k in 1..size {
        let mut m = messenger(dir, &format!("g{size}-member-{k}"), seeds)?;
        // The invitation is joined at once from a contact.
        m.approve(&admin_id)?;
        m.nodes().await?;
        members.push(m);
    }
    let clients_s = started.elapsed().as_secs_f64();
    let ids: Vec<AccountId> = members.iter().map(|m| m.home.account_id()).collect();
    let t = Instant::now();
    let created = admin.create_group(&format!("bench-{size}"), &ids).await?;
    let create_ms = micros(t) as f64 / 1000.0;
    let group: allium_common::group::GroupId = created.id.parse()?;
    if created.members != size || created.invited != size - 1 {
        bail!("the {size}-member group was made with {created:?}");
    }

    // Every member joins at once: its inbox (the invitation), then a group
    // round (the key message, info and list).
    let t = Instant::now();
    let mut joins = tokio::task::JoinSet::new();
    for (k, mut m) in members.into_iter().enumerate() {
        joins.spawn(async move {
            let result = tokio::time::timeout(JOIN_LIMIT, async {
                for _ in 0..3 {
                    m.inbox(None).await?;
                    if m.home.group(&group)?.is_some_and(|g| g.joined) {
                        break;
                    }
                }
                m.group_round(None).await?;
                anyhow::Ok(m.home.group_current_key(&group)?.map(|(g, _)| g))
            })
            .await;
            (k, m, result)
        });
    }
    let mut joined = Vec::with_capacity(size - 1);
    while let Some(done) = joins.join_next().await {
        let (k, m, result) = done?;
        match result {
            Ok(Ok(Some(1))) => joined.push((k, m)),
            other => bail!("member {k} of the {size}-member group did not join: {other:?}"),
        }
    }
    joined.sort_by_key(|(k, _)| *k);
    let mut members: Vec<_> = joined.into_iter().map(|(_, m)| m).collect();
    let join_s = t.elapsed().as_secs_f64();

    // A round that finds nothing new, one client alone.
    let mut idle = Vec::with_capacity(IDLE_ROUNDS);
    for _ in 0..IDLE_ROUNDS {
        let t = Instant::now();
        let page = members[0].group_round(None).await?;
        idle.push(micros(t));
        if !page.messages.is_empty() {
            bail!("an idle round found messages");
        }
    }
    let (idle50, idle99) = ms_percentiles(idle);
    println!(
        "{size} members: {clients_s:.1}s to make the clients, create_group {create_ms:.0} ms ({} invitations, key \
         message {} bytes), every member joined in {join_s:.1}s; a round that finds nothing p50 {idle50:.2} ms (p99 \
         {idle99:.2})",
        created.invited, created.key_message_bytes
    );

    // The watch.
    let count = members.len();
    let total = 2 * n;
    let expected = Arc::new(AtomicUsize::new(total));
    let stop_at = Arc::new(AtomicU64::new(micros_now() + 900_000_000));
    let arrived: Arc<Vec<AtomicUsize>> = Arc::new((0..total).map(|_| AtomicUsize::new(0)).collect());
    let watchers: Vec<_> = members
        .drain(..)
        .map(|m| {
            watch_group(
                m,
                total,
                Arc::clone(&expected),
                Arc::clone(&stop_at),
                Arc::clone(&arrived),
            )
        })
        .collect();
    // Every long-poll armed before the first message.
    tokio::time::sleep(Duration::from_secs(2)).await;
    // CPU time from the first message until the watchers stop: the clients
    // (this process) and the nodes.
    let cpu_nodes = |pids: &[u32]| pids.iter().map(|p| cpu_seconds(*p).unwrap_or(0.0)).sum::<f64>();
    let (clients_cpu, nodes_cpu) = (cpu_seconds(std::process::id()).unwrap_or(0.0), cpu_nodes(node_pids));
    let (mut rtt_paced, mut rtt_streamed) = (Vec::with_capacity(n), Vec::with_capacity(n));
    let mut stored = vec![false; total];
    let (mut failed, mut incomplete) = (0, 0);
    let sending = Instant::now();
    for i in 0..total {
        let paced = i < n;
        let t = Instant::now();
        let sent = admin.send_to_group(&group, &format!("{i}:{}", micros_now())).await;
        let us = micros(t);
        match &sent {
            Ok(_) if paced => rtt_paced.push(us),
            Ok(_) => rtt_streamed.push(us),
            Err(e) => {
                failed += 1;
                eprintln!("message {i} to the {size}-member group not stored: {e}");
            }
        }
        stored[i] = sent.is_ok();
        if paced && sent.is_ok() {
            let until = Instant::now() + PACE_LIMIT;
            while arrived[i].load(Ordering::Relaxed) < count && Instant::now() < until {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            if arrived[i].load(Ordering::Relaxed) < count {
                incomplete += 1;
            }
            tokio::time::sleep(Duration::from_millis(REARM_MS)).await;
        } else {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    let sending_s = sending.elapsed().as_secs_f64();
    expected.store(total - failed, Ordering::Relaxed);
    let grace = u64::try_from(WATCH_GRACE.as_micros()).unwrap_or(u64::MAX);
    stop_at.store(micros_now() + grace, Ordering::Relaxed);
    // A watcher leaves at most a long-poll and a request timeout after that.
    let give_up = tokio::time::Instant::now() + WATCH_GRACE + Duration::from_secs(60);
    let mut per_message: Vec<Vec<u64>> = vec![Vec::new(); total];
    let (mut rounds, mut empty, mut errors, mut lost) = (Vec::with_capacity(count), 0, 0, 0);
    for w in watchers {
        match tokio::time::timeout_at(give_up, w).await {
            Ok(Ok((m, got, r))) => {
                for (i, us) in got {
                    per_message[i].push(us);
                }
                rounds.push(r.done);
                empty += r.empty;
                errors += r.failed;
                members.push(m);
            }
            _ => lost += 1,
        }
    }
    let watch_s = sending.elapsed().as_secs_f64();
    let clients_cpu = cpu_seconds(std::process::id()).unwrap_or(0.0) - clients_cpu;
    let nodes_cpu = cpu_nodes(node_pids) - nodes_cpu;
    // The same store with nobody watching.
    let mut quiet = Vec::with_capacity(QUIET_SENDS);
    for k in 0..QUIET_SENDS {
        let t = Instant::now();
        admin.send_to_group(&group, &format!("quiet {k}")).await?;
        quiet.push(micros(t));
    }
    let (q50, q99) = ms_percentiles(quiet);
    let sent_paced = stored[..n].iter().filter(|s| **s).count();
    let sent_streamed = stored[n..].iter().filter(|s| **s).count();
    let paced = watch_phase("paced", size, &per_message[..n], sent_paced, count);
    let streamed = watch_phase("5 ms apart", size, &per_message[n..], sent_streamed, count);
    let (rp50, rp99) = ms_percentiles(rtt_paced);
    let (rs50, rs99) = ms_percentiles(rtt_streamed);
    rounds.sort_unstable();
    let rounds_median = rounds.get(rounds.len() / 2).copied().unwrap_or(0);
    let all_rounds: u64 = rounds.iter().sum();
    println!(
        "{size} members: send_to_group round trip paced p50 {rp50:.2} ms (p99 {rp99:.2}), 5 ms apart p50 {rs50:.2} ms \
         (p99 {rs99:.2}); {failed} not stored; {incomplete} paced messages not at every member within {}s; \
         {sending_s:.1}s of sending; rounds per member median {rounds_median} (max {}) for {total} messages, \
         {empty} of all {all_rounds} rounds brought nothing new, {errors} failed rounds, {lost} watchers did not \
         stop; CPU over the {watch_s:.1}s from the first message to the watchers' end: clients {clients_cpu:.1}s, \
         nodes {nodes_cpu:.1}s; send_to_group with nobody watching p50 {q50:.2} ms (p99 {q99:.2}) over \
         {QUIET_SENDS}",
        PACE_LIMIT.as_secs(),
        rounds.last().copied().unwrap_or(0)
    );
    let summary = json!({"members": size, "clients_s": clients_s, "create_ms": create_ms, "join_s": join_s,
        "key_message_bytes": created.key_message_bytes, "idle_round_p50_ms": idle50, "idle_round_p99_ms": idle99,
        "paced": paced, "streamed": streamed,
        "send": {"paced_p50_ms": rp50, "paced_p99_ms": rp99, "streamed_p50_ms": rs50, "streamed_p99_ms": rs99,
                 "failed": failed, "unwatched_p50_ms": q50, "unwatched_p99_ms": q99},
        "paced_incomplete": incomplete, "sending_s": sending_s, "rounds_median": rounds_median,
        "rounds": all_rounds, "empty_rounds": empty, "failed_rounds": errors, "lost_watchers": lost,
        "watch_s": watch_s, "clients_cpu_s": clients_cpu, "nodes_cpu_s": nodes_cpu});
    Ok((WatchedGroup { admin, group, members }, summary))
}

/// Removes `victim` from the group (one rekey, timed, after an untimed
/// `refresh_group` of the admin); then `reader`, a
/// member that stays, reads the keys, info and list (timed) and must hold
/// the new generation. Returns (remove µs, what it did, reader µs).
async fn timed_rekey(
    admin: &mut allium_client::messenger::Messenger,
    group: &allium_common::group::GroupId,
    victim: AccountId,
    reader: &mut allium_client::messenger::Messenger,
) -> anyhow::Result<(u64, allium_client::groups::Created, u64)> {
    // As `allium group remove` does, untimed: the admin reads the group's
    // keys, info and list first. Needed: `create_group` keeps no member
    // list on the admin's device (it is written before the group's row
    // exists), and `remove_from_group` rekeys to the list held.
    admin.refresh_group(group).await?;
    let t = Instant::now();
    let created = admin.remove_from_group(group, &[victim]).await?;
    let removal = u64::try_from(t.elapsed().as_micros()).unwrap_or(u64::MAX);
    let t = Instant::now();
    let page = reader.refresh_group(group).await?;
    let read = u64::try_from(t.elapsed().as_micros()).unwrap_or(u64::MAX);
    let held = reader.home.group_current_key(group)?.map(|(g, _)| g);
    if held != Some(created.generation) || !page.removed.is_empty() {
        bail!(
            "after the rekey to generation {}, a remaining member holds {held:?} (removed: {:?})",
            created.generation,
            page.removed
        );
    }
    Ok((removal, created, read))
}

/// The medians (ms) of rekeys: removals, key message sizes (bytes, the
/// largest), and the remaining member's reads.
fn rekey_summary(size: usize, runs: &[(u64, allium_client::groups::Created, u64)]) -> serde_json::Value {
    let removals: Vec<f64> = runs.iter().map(|(us, _, _)| *us as f64 / 1000.0).collect();
    let reads: Vec<f64> = runs.iter().map(|(_, _, us)| *us as f64 / 1000.0).collect();
    let bytes: Vec<usize> = runs.iter().map(|(_, c, _)| c.key_message_bytes).collect();
    let members: Vec<usize> = runs.iter().map(|(_, c, _)| c.members).collect();
    println!(
        "rekey of the {size}-member group (remove_from_group of one member) × {}: median {:.1} ms (runs {:?} ms); key \
         message {:?} bytes; members after {:?}; a remaining member's refresh_group after it median {:.1} ms (runs {:?} \
         ms)",
        runs.len(),
        median(&removals),
        removals.iter().map(|v| (v * 10.0).round() / 10.0).collect::<Vec<_>>(),
        bytes,
        members,
        median(&reads),
        reads.iter().map(|v| (v * 10.0).round() / 10.0).collect::<Vec<_>>()
    );
    json!({"members": size, "runs": runs.len(), "remove_median_ms": median(&removals), "remove_ms": removals,
           "key_message_bytes": bytes, "members_after": members,
           "member_refresh_median_ms": median(&reads), "member_refresh_ms": reads})
}

async fn groups(args: &Args, net: &LocalNet) -> anyhow::Result<()> {
    use allium_common::Identity;
    use allium_common::group::keys::GroupKeys;
    let seeds = allium_common::seeds::parse(&std::fs::read_to_string(&net.seed_file)?)?;
    let dir = tempfile::tempdir()?;
    let n = args.messages().max(1);
    let node_pids: Vec<u32> = net
        .nodes
        .iter()
        .filter_map(|node| {
            let info: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(node.dir.join("node.json")).ok()?).ok()?;
            u32::try_from(info["pid"].as_u64()?).ok()
        })
        .collect();
    let mut watches = serde_json::Map::new();
    let mut hundred = None;
    for size in GROUP_SIZES {
        let (watched, summary) = group_watch(dir.path(), &seeds, &node_pids, size, n).await?;
        watches.insert(size.to_string(), summary);
        hundred = Some(watched);
    }

    // Rekeys of the 100-member group: the first members are removed one
    // by one, the last reads after each, and each removed member must find
    // itself removed at its next read.
    let mut rekeys = serde_json::Map::new();
    let WatchedGroup {
        mut admin,
        group,
        mut members,
    } = hundred.context("no group watched")?;
    if members.len() < REKEYS + 1 {
        bail!("only {} members came back from watching", members.len());
    }
    let mut reader = members.pop().context("no member")?;
    let size = GROUP_SIZES[GROUP_SIZES.len() - 1];
    let (mut runs, mut noticed) = (Vec::with_capacity(REKEYS), 0);
    for victim in members.iter_mut().take(REKEYS) {
        runs.push(timed_rekey(&mut admin, &group, victim.home.account_id(), &mut reader).await?);
        if victim.refresh_group(&group).await.is_ok_and(|p| !p.removed.is_empty()) {
            noticed += 1;
        }
    }
    println!("removed members that found themselves removed at their next read: {noticed} of {REKEYS}");
    let mut summary = rekey_summary(size, &runs);
    summary["removed_noticed"] = json!(noticed);
    rekeys.insert(size.to_string(), summary);

    // 1,000 members: the admin, one member client that reads, and accounts
    // with no client (their invitations wait in their mailboxes).
    let mut admin = messenger(dir.path(), "g1000-admin", &seeds)?;
    let admin_id = admin.home.account_id();
    admin.nodes().await?;
    let mut reader = messenger(dir.path(), "g1000-reader", &seeds)?;
    reader.approve(&admin_id)?;
    reader.nodes().await?;
    let mut accounts: Vec<AccountId> = (0..LARGE_GROUP - 2)
        .map(|_| Identity::from_ed25519_seed(&sodium::random_array()).account_id())
        .collect();
    accounts.push(reader.home.account_id());
    let t = Instant::now();
    let created = admin.create_group("bench-1000", &accounts).await?;
    let create_s = t.elapsed().as_secs_f64();
    let group: allium_common::group::GroupId = created.id.parse()?;
    if created.members != LARGE_GROUP || created.invited != LARGE_GROUP - 1 {
        bail!("the {LARGE_GROUP}-member group was made with {created:?}");
    }
    println!(
        "{LARGE_GROUP} members: create_group {create_s:.1}s ({} invitations, key message {} bytes)",
        created.invited, created.key_message_bytes
    );
    for _ in 0..3 {
        reader.inbox(None).await?;
        if reader.home.group(&group)?.is_some_and(|g| g.joined) {
            break;
        }
    }
    let t = Instant::now();
    reader.group_round(None).await?;
    let first_round_ms = t.elapsed().as_secs_f64() * 1000.0;
    if reader.home.group_current_key(&group)?.map(|(g, _)| g) != Some(1) {
        bail!("the reading member did not join the {LARGE_GROUP}-member group");
    }
    let mut runs = Vec::with_capacity(REKEYS);
    for victim in accounts.iter().take(REKEYS) {
        runs.push(timed_rekey(&mut admin, &group, *victim, &mut reader).await?);
    }
    let mut summary = rekey_summary(LARGE_GROUP, &runs);
    summary["create_s"] = json!(create_s);
    summary["invited"] = json!(created.invited);
    summary["member_first_round_ms"] = json!(first_round_ms);
    rekeys.insert(LARGE_GROUP.to_string(), summary);
    println!("{LARGE_GROUP} members: the reading member's first group round {first_round_ms:.1} ms");

    // The key message's cryptography alone, in process: sealing to 1,000
    // members, and a member's decode and trial decryption.
    let group_key = Identity::from_ed25519_seed(&sodium::random_array());
    let members: Vec<Identity> = (0..LARGE_GROUP)
        .map(|_| Identity::from_ed25519_seed(&sodium::random_array()))
        .collect();
    let keys: Vec<[u8; 32]> = members.iter().map(|m| *m.x25519_pk()).collect();
    let id = allium_common::group::GroupId::from_ed25519(*group_key.ed25519_pk());
    let (mut seals, mut opens) = (Vec::with_capacity(REKEYS), Vec::with_capacity(REKEYS));
    let mut bytes = 0;
    for r in 0..REKEYS {
        let t = Instant::now();
        let sealed = GroupKeys::seal(
            &group_key,
            u32::try_from(r + 1)?,
            &sodium::random_array(),
            &keys,
            &sodium::random_array(),
            &sodium::random_array(),
        )?;
        seals.push(t.elapsed().as_secs_f64() * 1000.0);
        bytes = sealed.len();
        let member = &members[r * 7 % LARGE_GROUP];
        let t = Instant::now();
        GroupKeys::decode(&sealed, &id)?.open(member.x25519_sk(), member.x25519_pk())?;
        opens.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    println!(
        "in process, {LARGE_GROUP} members: GroupKeys::seal median {:.2} ms, decode + open by one member median {:.2} \
         ms ({bytes} bytes)",
        median(&seals),
        median(&opens)
    );
    println!(
        "{}",
        json!({"scenario": "groups", "nodes": net.nodes.len(), "messages": n, "rearm_ms": REARM_MS,
               "watch": watches, "rekey": rekeys,
               "in_process": {"members": LARGE_GROUP, "seal_median_ms": median(&seals),
                              "open_median_ms": median(&opens), "bytes": bytes}})
    );
    Ok(())
}
