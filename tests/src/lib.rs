//! `TestNet`: a seed and N service nodes as real processes on 127.0.0.1 in
//! a temporary directory, plus `allium` CLI clients with their own homes.
//! Dropping it stops every process and deletes everything.
//!
//! The binaries are the workspace's own (`target/<profile>/allium-node` and
//! `allium`), found next to the running test; `cargo test --workspace`
//! builds them.
#![allow(clippy::missing_panics_doc)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use allium_node::devnet::{LocalNet, SeedKeys};
use anyhow::{Context as _, bail};
use serde_json::Value;
use tempfile::TempDir;

pub mod attacks;
pub mod bench_chat;
pub mod bench_files;
pub mod fake;
pub mod hostile;
pub mod pty;
pub mod tor;

/// How long a network may take to form.
pub const FORM_TIMEOUT: Duration = Duration::from_secs(60);

/// The directory holding the workspace binaries (`target/<profile>`).
pub fn bin_dir() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    // target/<profile>/deps/<test> or target/<profile>/<bin>
    let mut dir = exe.parent().context("test binary has no directory")?.to_path_buf();
    if dir.ends_with("deps") {
        dir.pop();
    }
    for name in ["allium-node", "allium"] {
        if !dir.join(name).exists() {
            bail!(
                "{} not found next to the tests: run `cargo build --workspace` first",
                dir.join(name).display()
            );
        }
    }
    Ok(dir)
}

/// A running local network with clients.
#[derive(Debug)]
pub struct TestNet {
    /// The node processes.
    pub net: LocalNet,
    bins: PathBuf,
    dir: TempDir,
}

impl TestNet {
    /// Starts a seed and `n` nodes and waits until they form a network.
    pub async fn start(n: usize) -> anyhow::Result<Self> {
        Self::start_with(n, "").await
    }

    /// [`TestNet::start`] with `extra_config` (TOML) laid over every
    /// node's config, e.g. another listen address.
    pub async fn start_with(n: usize, extra_config: &str) -> anyhow::Result<Self> {
        Self::start_with_seeds(1, n, extra_config).await
    }

    /// [`TestNet::start_with`] with `seeds` seeds that vote together.
    pub async fn start_with_seeds(seeds: usize, n: usize, extra_config: &str) -> anyhow::Result<Self> {
        Self::launch(seeds, n, extra_config, false).await
    }

    /// [`TestNet::start_with_seeds`], the seeds signing with keys that
    /// offline identity keys certify (see
    /// [`allium_node::devnet::SeedKeys::Offline`]).
    pub async fn start_with_offline_seed_keys(seeds: usize, n: usize) -> anyhow::Result<Self> {
        Self::launch(seeds, n, "", true).await
    }

    async fn launch(seeds: usize, n: usize, extra_config: &str, offline_seed_keys: bool) -> anyhow::Result<Self> {
        let bins = bin_dir()?;
        let dir = tempfile::tempdir()?;
        let (exe, net_dir) = (bins.join("allium-node"), dir.path().join("net"));
        let keys = if offline_seed_keys {
            SeedKeys::Offline
        } else {
            SeedKeys::Online
        };
        let net = LocalNet::start_with_seed_keys(&exe, &net_dir, seeds, n, extra_config, FORM_TIMEOUT, keys).await?;
        net.wait_until_formed(FORM_TIMEOUT).await?;
        Ok(Self { net, bins, dir })
    }

    /// A client with its own home directory (created on `init`/`restore`).
    pub fn client(&self, name: &str) -> Client {
        Client {
            bin: self.bins.join("allium"),
            home: self.dir.path().join("homes").join(name),
            seeds: self.net.seed_file.clone(),
            local_address: None,
        }
    }

    /// A file path inside the test directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Index in `net.nodes` of the node at `address`.
    pub fn index_of(&self, address: &str) -> Option<usize> {
        self.net.nodes.iter().position(|n| n.address == address)
    }

    /// The service nodes whose access log (the network must be started
    /// with `access_log = true`) shows a connection from `ip`: who has seen
    /// the client bound to that address.
    pub fn nodes_that_saw(&self, ip: &str) -> std::collections::BTreeSet<String> {
        let prefix = format!("{ip}:");
        self.net
            .nodes
            .iter()
            .filter(|node| {
                tor::access_log(&node.dir.join("node.log"))
                    .iter()
                    .any(|a| a.peer.starts_with(&prefix))
            })
            .map(|node| node.address.clone())
            .collect()
    }

    /// A counter from a node's `/metrics`.
    pub async fn metric(&self, address: &str, name: &str) -> Option<u64> {
        metric(address, name).await
    }
}

/// A counter or gauge (without labels) from the `/metrics` of the node at
/// `address`.
pub async fn metric(address: &str, name: &str) -> Option<u64> {
    let http = allium_node::peer::links::unpinned_client(Default::default(), None);
    metric_over(&http, "https", address, name).await
}

/// [`metric`] through `http`, with `scheme` (`http` for nodes with
/// `plaintext_links`).
pub async fn metric_over(http: &reqwest::Client, scheme: &str, address: &str, name: &str) -> Option<u64> {
    let text = http
        .get(format!("{scheme}://{address}/metrics"))
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

/// One `allium` user.
#[derive(Debug, Clone)]
pub struct Client {
    bin: PathBuf,
    /// Its home directory.
    pub home: PathBuf,
    /// The seed file it trusts.
    pub seeds: PathBuf,
    /// Loopback address its connections come from (e.g. 127.0.0.2).
    pub local_address: Option<String>,
}

impl Client {
    /// A `Command` for `allium` with this client's home and seeds.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.bin);
        cmd.arg("--home")
            .arg(&self.home)
            .arg("--seeds")
            .arg(&self.seeds)
            .args(args);
        cmd.env_remove("ALLIUM_HOME").env_remove("ALLIUM_SEEDS");
        if let Some(a) = &self.local_address {
            cmd.env("ALLIUM_LOCAL_ADDRESS", a);
        }
        cmd.stdin(Stdio::null());
        cmd
    }

    /// `allium chat` on a pseudo-terminal of `cols` x `rows`, with this
    /// client's home and seeds; its log goes to HOME/../NAME-chat.log.
    pub fn chat(&self, cols: u16, rows: u16) -> anyhow::Result<pty::Pty> {
        self.chat_with(cols, rows, &[])
    }

    /// [`Client::chat`] with these environment variables set as well.
    pub fn chat_with(&self, cols: u16, rows: u16, env: &[(&str, &str)]) -> anyhow::Result<pty::Pty> {
        let home = self.home.to_string_lossy().into_owned();
        let seeds = self.seeds.to_string_lossy().into_owned();
        let mut cmd = pty::command(&self.bin, &["--home", &home, "--seeds", &seeds, "chat"]);
        cmd.env_remove("ALLIUM_HOME");
        cmd.env_remove("ALLIUM_SEEDS");
        cmd.env_remove("NO_COLOR");
        cmd.env("ALLIUM_LOG", "info");
        cmd.env("ALLIUM_LOG_FILE", self.home.with_extension("chat.log"));
        if let Some(a) = &self.local_address {
            cmd.env("ALLIUM_LOCAL_ADDRESS", a);
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        pty::spawn(cmd, cols, rows)
    }

    /// Runs `allium ARGS` and returns its output.
    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run allium: {e}"))
    }

    /// Runs `allium ARGS` with `input` on standard input.
    pub fn run_with_input(&self, args: &[&str], input: &str) -> Output {
        use std::io::Write as _;
        let mut child = self
            .command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run allium: {e}"));
        if let Some(mut stdin) = child.stdin.take() {
            let _ = stdin.write_all(input.as_bytes());
        }
        child
            .wait_with_output()
            .unwrap_or_else(|e| panic!("allium failed: {e}"))
    }

    /// `allium --json init`: (Account ID, phrase).
    pub fn init(&self) -> (String, String) {
        let out = self.run(&["--json", "init"]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "init failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        (
            v["account_id"].as_str().unwrap_or_default().to_owned(),
            v["mnemonic"].as_str().unwrap_or_default().to_owned(),
        )
    }

    /// Restores this home from `phrase` and has `approver` (a device of
    /// the account) link it: the link request, the approval, and this
    /// device's pass that takes the shared keys. Returns the JSON of that
    /// pass (`allium devices`).
    ///
    /// # Panics
    /// If any step fails.
    pub fn restore_and_link(&self, phrase: &str, approver: &Client) -> Value {
        let out = self.run_with_input(&["--json", "restore"], phrase);
        assert!(
            matches!(out.status.code(), Some(0 | 1)),
            "restore failed: {}",
            stderr(&out)
        );
        let asked = ok_lines(&self.run(&["--json", "devices", "link", "--wait", "0"]));
        let id = asked[0]["device"].as_str().unwrap_or_default().to_owned();
        ok_lines(&approver.run(&["--json", "devices", "approve", &id]));
        let linked = ok_lines(&self.run(&["--json", "devices"])).remove(0);
        assert_eq!(linked["linked"], true, "{linked}");
        linked
    }

    /// JSON Lines of a successful command's output.
    pub fn json_lines(out: &Output) -> Vec<Value> {
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }
}

/// JSON Lines of a command that must have succeeded (exit status 0).
///
/// # Panics
/// If it did not, with its standard error.
pub fn ok_lines(out: &Output) -> Vec<Value> {
    assert_eq!(out.status.code(), Some(0), "command failed: {}", stderr(out));
    Client::json_lines(out)
}

/// The `body` of every line that has one.
pub fn bodies(lines: &[Value]) -> Vec<String> {
    lines
        .iter()
        .filter_map(|l| l["body"].as_str().map(str::to_owned))
        .collect()
}

/// Text of a command's standard error (for assertion messages).
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Whether `path` exists (helper for readable assertions).
pub fn exists(path: &Path) -> bool {
    path.exists()
}
