//! Local networks of real node processes: `allium-node devnet`, and the
//! harness the multi-process tests use ([`LocalNet`]).
//!
//! Seeds and N service nodes run from this same binary, each on its own
//! loopback address ([`seed_ip`], [`node_ip`]: every node in its own /16, as
//! on the real internet, so the per-address rules of the seeds, the nodes
//! and the client's paths run here too) with a free port (the node binds
//! port 0 and writes the port it got to `DATA_DIR/node.json`) and its own
//! data directory under `DIR`. `DIR/seed-nodes.toml` names the seeds for
//! clients, nodes and the seeds themselves (which vote together: to learn
//! their ports they start once alone, then again with that file). Nothing listens on 127.0.0.1, which stays free for clients and
//! for a private Tor network (docs/tor.md).

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use allium_common::seeds::{self, Seed};
use anyhow::{Context as _, bail};
use serde_json::Value;
use tokio::process::{Child, Command};

use crate::cli::DevnetArgs;
use crate::membership::fetch_node_list;
use crate::peer::{LinkSettings, Links};
use crate::run::{NODE_INFO_FILE, shutdown_signal};

/// Timers for a local network: fast, so it forms and follows changes in
/// about a second.
pub const LOCAL_CONFIG: &str = "[timing]\nnode_list_refresh_ms = 500\nannounce_interval_ms = 5000\n\
[seed_mode]\nperiod_ms = 1000\nprobation_ms = 0\nguard_after_ms = 0\nprobe_interval_ms = 1000\ndrop_after_failures = 2\nallow_private_addresses = true\n";

/// The loopback address of seed `i` (127.1.0.1, 127.1.0.2, …).
pub fn seed_ip(i: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 1, 0, u8::try_from(1 + i).unwrap_or(u8::MAX)))
}

/// The loopback address of service node `i`: `127.(2 + i mod 250).(i / 250).1`,
/// so the first 250 nodes each have a /16 of their own and every node has a
/// /24 of its own (up to 64,000 nodes).
pub fn node_ip(i: usize) -> IpAddr {
    let high = u8::try_from(2 + i % 250).unwrap_or(u8::MAX);
    let mid = u8::try_from(i / 250).unwrap_or(u8::MAX);
    IpAddr::V4(Ipv4Addr::new(127, high, mid, 1))
}

/// Where a [`LocalNet`]'s seed identities are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeedKeys {
    /// Each seed's node key is its identity (the seed file names it).
    Online,
    /// Each seed's identity key is made in `DIR/offline/`, as an operator
    /// keeps it offline, and certifies the seed's node key for 30 days
    /// (`DATA_DIR/seed_key_cert.json`); the seed file names the
    /// identities, while the seeds' [`NodeProc::ed25519`] stay their
    /// signing keys.
    Offline,
}

/// A node process of a [`LocalNet`].
#[derive(Debug)]
pub struct NodeProc {
    /// `seed` or `node-NN`.
    pub name: String,
    /// Its data directory.
    pub dir: PathBuf,
    /// `host:port`, once known.
    pub address: String,
    /// Its Ed25519 key.
    pub ed25519: [u8; 32],
    child: Option<Child>,
    extra: Vec<String>,
    /// The address it binds (port 0 until it has started once).
    listen: std::net::SocketAddr,
}

/// A running local network.
#[derive(Debug)]
pub struct LocalNet {
    /// Where everything lives.
    pub dir: PathBuf,
    /// The seed file clients should use.
    pub seed_file: PathBuf,
    /// The seeds.
    pub seeds: Vec<NodeProc>,
    /// The service nodes.
    pub nodes: Vec<NodeProc>,
    exe: PathBuf,
    config: PathBuf,
    links: Links,
}

impl LocalNet {
    /// Starts one seed and `n` nodes of binary `exe` under `dir`.
    /// `extra_config` is appended to the nodes' config file (TOML). Does
    /// not wait for the network to form: see [`LocalNet::wait_until_formed`].
    pub async fn start(
        exe: &Path,
        dir: &Path,
        n: usize,
        extra_config: &str,
        timeout: Duration,
    ) -> anyhow::Result<Self> {
        Self::start_with_seeds(exe, dir, 1, n, extra_config, timeout).await
    }

    /// Starts `seeds` seeds and `n` nodes; see [`LocalNet::start`].
    pub async fn start_with_seeds(
        exe: &Path,
        dir: &Path,
        seeds: usize,
        n: usize,
        extra_config: &str,
        timeout: Duration,
    ) -> anyhow::Result<Self> {
        Self::start_with_seed_keys(exe, dir, seeds, n, extra_config, timeout, SeedKeys::Online).await
    }

    /// [`LocalNet::start_with_seeds`], with the seeds' identity keys
    /// online or kept apart (see [`SeedKeys`]).
    #[allow(clippy::too_many_arguments)]
    pub async fn start_with_seed_keys(
        exe: &Path,
        dir: &Path,
        seeds: usize,
        n: usize,
        extra_config: &str,
        timeout: Duration,
        keys: SeedKeys,
    ) -> anyhow::Result<Self> {
        let offline_seed_keys = keys == SeedKeys::Offline;
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let config = dir.join("local-node.toml");
        let merged = merged_config(extra_config)?;
        let plaintext = toml::from_str::<crate::config::NodeConfig>(&merged)
            .context("the node config is invalid")?
            .plaintext_links;
        std::fs::write(&config, merged).with_context(|| format!("cannot write {}", config.display()))?;
        let deadline = Instant::now() + timeout;
        let seed_file = dir.join("seed-nodes.toml");
        let seed_arg = seed_file.to_string_lossy().into_owned();
        let mut seed_procs = Vec::with_capacity(seeds.max(1));
        for i in 0..seeds.max(1) {
            let name = if seeds <= 1 {
                "seed".to_owned()
            } else {
                format!("seed-{i}")
            };
            let mut seed = NodeProc::new(&name, dir.join(&name), seed_ip(i), vec!["--seed".into()]);
            seed.spawn(exe, &config)?;
            seed_procs.push(seed);
        }
        for seed in &mut seed_procs {
            seed.wait_for_info(deadline).await?;
        }
        let mut entries = Vec::with_capacity(seed_procs.len());
        for seed in &seed_procs {
            let ed25519 = if offline_seed_keys {
                certify_offline(&dir.join("offline"), seed)?
            } else {
                seed.ed25519
            };
            entries.push(Seed {
                address: seed.address.clone(),
                ed25519,
            });
        }
        std::fs::write(&seed_file, seeds::render(&entries))
            .with_context(|| format!("cannot write {}", seed_file.display()))?;
        if seed_procs.len() > 1 || offline_seed_keys {
            // Now that every seed's address is known, start them again
            // with the file that makes them vote together.
            for seed in &mut seed_procs {
                seed.terminate().await?;
                // What a seed alone signed is not the network's consensus.
                let _ = std::fs::remove_file(seed.dir.join("consensus.json"));
                seed.extra = vec!["--seed".into(), "--seed-file".into(), seed_arg.clone()];
                seed.spawn(exe, &config)?;
            }
            for seed in &mut seed_procs {
                seed.wait_for_info(deadline).await?;
            }
        }
        let mut nodes = Vec::with_capacity(n);
        for i in 0..n {
            let name = format!("node-{i:02}");
            let mut node = NodeProc::new(
                &name,
                dir.join(&name),
                node_ip(i),
                vec!["--seed-file".into(), seed_arg.clone()],
            );
            node.spawn(exe, &config)?;
            nodes.push(node);
        }
        for node in &mut nodes {
            node.wait_for_info(deadline).await?;
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            seed_file,
            seeds: seed_procs,
            nodes,
            exe: exe.to_path_buf(),
            config,
            links: if plaintext {
                Links::plaintext(LinkSettings::default()).map_err(anyhow::Error::msg)?
            } else {
                Links::anonymous()
            },
        })
    }

    /// Links for looking at the network (unpinned; plain HTTP when the
    /// nodes are set so).
    pub fn links(&self) -> &Links {
        &self.links
    }

    /// The first seed.
    pub fn seed(&self) -> &NodeProc {
        &self.seeds[0]
    }

    /// The address of a running seed.
    fn running_seed(&self) -> Option<&NodeProc> {
        self.seeds.iter().find(|s| s.child.is_some())
    }

    /// Waits until the seeds' consensus lists exactly the running nodes and
    /// every running seed and node follows that network (the same nodes in
    /// the same swarms); returns its period.
    pub async fn wait_until_formed(&self, timeout: Duration) -> anyhow::Result<u64> {
        let deadline = Instant::now() + timeout;
        let http = &self.links;
        let running: Vec<&NodeProc> = self.nodes.iter().filter(|n| n.child.is_some()).collect();
        let seeds: Vec<&NodeProc> = self.seeds.iter().filter(|n| n.child.is_some()).collect();
        loop {
            if let Some(seed) = self.running_seed()
                && let Some(list) = fetch_node_list(http, &seed.address).await
                && list.nodes.len() == running.len()
                && running.iter().all(|n| list.find(&n.ed25519).is_some())
            {
                // The seed just asked is in sync by definition (asking it
                // again would spend a tight per-address budget twice).
                let mut following = 1;
                let others = seeds.iter().filter(|s| s.address != seed.address);
                for proc in running.iter().chain(others) {
                    if fetch_node_list(http, &proc.address)
                        .await
                        .is_some_and(|l| l.same_network(&list))
                    {
                        following += 1;
                    }
                }
                if following == running.len() + seeds.len() {
                    return Ok(list.period);
                }
            }
            if Instant::now() > deadline {
                bail!("timed out waiting for {} nodes to be listed and in sync", running.len());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// SIGKILLs seed `i`.
    pub async fn kill_seed(&mut self, i: usize) {
        if let Some(seed) = self.seeds.get_mut(i)
            && let Some(mut child) = seed.child.take()
        {
            let _ = child.kill().await;
        }
    }

    /// Starts seed `i` again with the same data directory and
    /// `extra_config` laid over the network's config (a seed that differs
    /// from the others: another clock, other probe rules).
    pub async fn restart_seed_with(&mut self, i: usize, extra_config: &str, timeout: Duration) -> anyhow::Result<()> {
        let base = std::fs::read_to_string(&self.config).context("the network's config")?;
        let config = self.dir.join(format!("seed-{i}.toml"));
        std::fs::write(&config, merge_over(&base, extra_config)?)
            .with_context(|| format!("cannot write {}", config.display()))?;
        let seed = self.seeds.get_mut(i).context("no such seed")?;
        if seed.child.is_some() {
            seed.terminate().await?;
        }
        seed.spawn(&self.exe, &config)?;
        seed.wait_for_info(Instant::now() + timeout).await
    }

    /// SIGKILLs node `i` (no clean shutdown: the crash case).
    pub async fn kill(&mut self, i: usize) {
        if let Some(node) = self.nodes.get_mut(i)
            && let Some(mut child) = node.child.take()
        {
            let _ = child.kill().await;
        }
    }

    /// Starts node `i` again with the same data directory.
    pub async fn restart(&mut self, i: usize, timeout: Duration) -> anyhow::Result<()> {
        let node = self.nodes.get_mut(i).context("no such node")?;
        node.spawn(&self.exe, &self.config)?;
        node.wait_for_info(Instant::now() + timeout).await
    }

    /// Starts one more service node on its own address; returns its index.
    pub async fn add_node(&mut self, timeout: Duration) -> anyhow::Result<usize> {
        self.add_node_at(node_ip(self.nodes.len()), timeout).await
    }

    /// Starts one more service node on `ip` (which other nodes may share);
    /// returns its index.
    pub async fn add_node_at(&mut self, ip: IpAddr, timeout: Duration) -> anyhow::Result<usize> {
        let seed_file = self.seed_file.clone();
        self.add_node_with_seeds(ip, &seed_file, timeout).await
    }

    /// Starts one more service node on `ip` that trusts and asks the seeds
    /// of `seed_file` (another view of the seeds than the network's);
    /// returns its index.
    pub async fn add_node_with_seeds(
        &mut self,
        ip: IpAddr,
        seed_file: &Path,
        timeout: Duration,
    ) -> anyhow::Result<usize> {
        let i = self.nodes.len();
        let name = format!("node-{i:02}");
        let seed_arg = seed_file.to_string_lossy().into_owned();
        let mut node = NodeProc::new(&name, self.dir.join(&name), ip, vec!["--seed-file".into(), seed_arg]);
        node.spawn(&self.exe, &self.config)?;
        node.wait_for_info(Instant::now() + timeout).await?;
        self.nodes.push(node);
        Ok(self.nodes.len() - 1)
    }

    /// Stops node `i` with SIGTERM and returns its exit status.
    pub async fn terminate(&mut self, i: usize) -> anyhow::Result<std::process::ExitStatus> {
        self.nodes.get_mut(i).context("no such node")?.terminate().await
    }

    /// SIGTERM to every process, then SIGKILL to any still running after
    /// 10 s.
    pub async fn stop(&mut self) {
        let all = self.seeds.iter_mut().chain(self.nodes.iter_mut());
        let mut children: Vec<Child> = all.filter_map(|n| n.child.take()).collect();
        for child in &children {
            if let Some(pid) = child.id().and_then(|p| i32::try_from(p).ok()) {
                let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGTERM);
            }
        }
        for child in &mut children {
            if tokio::time::timeout(Duration::from_secs(10), child.wait())
                .await
                .is_err()
            {
                let _ = child.kill().await;
            }
        }
    }
}

impl NodeProc {
    fn new(name: &str, dir: PathBuf, ip: IpAddr, extra: Vec<String>) -> Self {
        Self {
            name: name.to_owned(),
            dir,
            address: String::new(),
            ed25519: [0; 32],
            child: None,
            extra,
            listen: std::net::SocketAddr::new(ip, 0),
        }
    }

    /// Stops the process with SIGTERM and returns its exit status.
    pub async fn terminate(&mut self) -> anyhow::Result<std::process::ExitStatus> {
        let mut child = self.child.take().context("not running")?;
        if let Some(pid) = child.id().and_then(|p| i32::try_from(p).ok()) {
            nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGTERM)?;
        }
        Ok(tokio::time::timeout(Duration::from_secs(30), child.wait())
            .await
            .context("did not stop")??)
    }

    /// Whether the process is running (as far as this harness knows).
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Its process id, while running.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(Child::id)
    }

    fn spawn(&mut self, exe: &Path, config: &Path) -> anyhow::Result<()> {
        std::fs::create_dir_all(&self.dir).with_context(|| format!("cannot create {}", self.dir.display()))?;
        // A stale info file from an earlier run must not be taken for this one.
        let _ = std::fs::remove_file(self.dir.join(NODE_INFO_FILE));
        let log_path = self.dir.join("node.log");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .with_context(|| format!("cannot open {}", log_path.display()))?;
        let child = Command::new(exe)
            .arg("run")
            .arg("--config")
            .arg(config)
            .arg("--data-dir")
            .arg(&self.dir)
            .args(&self.extra)
            // A restarted node keeps its address and port, as a real one would.
            .arg("--listen")
            .arg(self.listen.to_string())
            .stdin(std::process::Stdio::null())
            .stdout(log.try_clone().context("log file")?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot start {}", self.name))?;
        self.child = Some(child);
        Ok(())
    }

    async fn wait_for_info(&mut self, deadline: Instant) -> anyhow::Result<()> {
        let path = self.dir.join(NODE_INFO_FILE);
        loop {
            if let Ok(text) = std::fs::read_to_string(&path)
                && let Ok(info) = serde_json::from_str::<Value>(&text)
                && let (Some(address), Some(key)) = (info["address"].as_str(), info["ed25519"].as_str())
            {
                self.ed25519 = allium_common::encoding::hex_array::<32>(key).context("bad key in node info")?;
                self.address = address.to_owned();
                if let Ok(bound) = address.parse() {
                    self.listen = bound;
                }
                return Ok(());
            }
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                bail!(
                    "{} exited with {status} (see {}/node.log)",
                    self.name,
                    self.dir.display()
                );
            }
            if Instant::now() > deadline {
                bail!(
                    "{} did not start in time (see {}/node.log)",
                    self.name,
                    self.dir.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

/// [`LOCAL_CONFIG`] with `extra` laid over it, table by table.
fn merged_config(extra: &str) -> anyhow::Result<String> {
    merge_over(LOCAL_CONFIG, extra)
}

/// Makes an identity key for `seed` in `offline` and certifies the seed's
/// node key with it; returns the identity's public key.
fn certify_offline(offline: &Path, seed: &NodeProc) -> anyhow::Result<[u8; 32]> {
    std::fs::create_dir_all(offline).with_context(|| format!("cannot create {}", offline.display()))?;
    let key_file = offline.join(format!("{}.key", seed.name));
    let identity = crate::keys::create_key_file(&key_file)?;
    let cert = crate::keys::certify(&key_file, seed.ed25519, crate::state::now_ms(), 30)?;
    let path = seed.dir.join(crate::keys::SEED_CERT_FILE);
    std::fs::write(&path, serde_json::to_string_pretty(&cert)?)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(*identity.ed25519_pk())
}

/// The TOML `base` with `extra` laid over it, table by table.
fn merge_over(base: &str, extra: &str) -> anyhow::Result<String> {
    fn merge(base: &mut toml::Table, over: toml::Table) {
        for (key, value) in over {
            match (base.get_mut(&key), value) {
                (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
                (_, value) => {
                    base.insert(key, value);
                }
            }
        }
    }
    let mut base: toml::Table = base.parse().context("base config is not valid TOML")?;
    merge(&mut base, extra.parse().context("extra node config is not valid TOML")?);
    Ok(toml::to_string(&base)?)
}

/// `allium-node devnet`: runs until Ctrl-C or SIGTERM.
pub async fn run(args: DevnetArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let exe = std::env::current_exe().context("cannot find the allium-node binary")?;
    let timeout = Duration::from_secs(args.timeout_secs);
    let keys = if args.online_seed_keys {
        SeedKeys::Online
    } else {
        SeedKeys::Offline
    };
    let mut net = LocalNet::start_with_seed_keys(&exe, &args.dir, args.seeds, args.nodes, "", timeout, keys).await?;
    let formed = net.wait_until_formed(timeout.saturating_sub(started.elapsed())).await;
    match formed {
        Ok(period) => {
            println!(
                "ready: {} seeds, {} nodes, consensus period {period}, in {:.1}s",
                net.seeds.len(),
                args.nodes,
                started.elapsed().as_secs_f64()
            );
            println!("seed file: {}", net.seed_file.display());
            if !args.online_seed_keys {
                println!(
                    "seed identity keys (an operator keeps them offline): {}/offline/",
                    net.dir.display()
                );
            }
            println!("point a client at it: allium --seeds {} ...", net.seed_file.display());
            println!("logs: {}/*/node.log; Ctrl-C stops the network", net.dir.display());
            shutdown_signal().await;
            println!("stopping");
        }
        Err(ref e) => eprintln!("the devnet did not form: {e:#}"),
    }
    net.stop().await;
    formed.map(drop)
}
