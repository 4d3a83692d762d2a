//! A private Tor network for tests ([`PrivateTor`], started and stopped by
//! `scripts/tor-private-net.sh`), and the socket bookkeeping that proves a
//! connection came from a Tor exit ([`socket_owner`], [`access_log`]).

use std::net::SocketAddrV4;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, bail};

/// The repository's `scripts/tor-private-net.sh`.
fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/tor-private-net.sh")
}

/// A running private Tor network: one authority, two exits, one C-tor
/// client. Dropping it stops every `tor` process it started, also when a
/// test fails (the stop runs during unwinding).
#[derive(Debug)]
pub struct PrivateTor {
    dir: PathBuf,
    /// `TOR_AUTH_V3IDENT`.
    pub v3ident: String,
    /// `TOR_AUTH_FINGERPRINT`.
    pub fingerprint: String,
    /// `TOR_AUTH_ED25519`.
    pub ed25519: String,
    /// `TOR_AUTH_ORPORT`.
    pub orport: String,
    /// The exit relays' process ids.
    pub exit_pids: Vec<u32>,
}

impl PrivateTor {
    /// Starts the network in `dir` (about 9 s); needs the `tor` package.
    pub fn start(dir: &Path) -> anyhow::Result<Self> {
        if Command::new("tor").arg("--version").output().is_err() {
            bail!("the `tor` program is missing: install it (Debian: apt-get install tor); .ci/run does");
        }
        let out = Command::new("bash")
            .arg(script())
            .arg("start")
            .arg(dir)
            .output()
            .context("cannot run tor-private-net.sh")?;
        // From here on the processes may exist: hand them to a value whose
        // drop stops them, whatever happens next.
        let mut net = Self {
            dir: dir.to_path_buf(),
            v3ident: String::new(),
            fingerprint: String::new(),
            ed25519: String::new(),
            orport: String::new(),
            exit_pids: Vec::new(),
        };
        if !out.status.success() {
            bail!(
                "the private Tor network did not start: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let env = std::fs::read_to_string(dir.join("tor-net.env")).context("tor-net.env")?;
        for line in env.lines() {
            let Some((key, value)) = line.split_once('=') else {
                continue;
            };
            let value = value.trim_matches('"').to_owned();
            match key {
                "TOR_AUTH_V3IDENT" => net.v3ident = value,
                "TOR_AUTH_FINGERPRINT" => net.fingerprint = value,
                "TOR_AUTH_ED25519" => net.ed25519 = value,
                "TOR_AUTH_ORPORT" => net.orport = value,
                "TOR_EXIT_PIDS" => net.exit_pids = value.split_whitespace().filter_map(|p| p.parse().ok()).collect(),
                _ => {}
            }
        }
        if net.v3ident.is_empty() || net.ed25519.is_empty() || net.exit_pids.len() != 2 {
            bail!("tor-net.env is incomplete:\n{env}");
        }
        Ok(net)
    }

    /// The `allium` config file for this network (`extra` goes on top,
    /// e.g. `tor = true`).
    pub fn client_config(&self, extra: &str) -> String {
        format!(
            "{extra}\ntor_bootstrap_timeout_secs = 60\n[tor_network]\nlocal = true\n\
             authorities = [{{ v3ident = \"{}\" }}]\n\
             fallbacks = [{{ rsa_identity = \"{}\", ed_identity = \"{}\", orports = [\"{}\"] }}]\n",
            self.v3ident, self.fingerprint, self.ed25519, self.orport
        )
    }
}

impl Drop for PrivateTor {
    fn drop(&mut self) {
        let _ = Command::new("bash").arg(script()).arg("stop").arg(&self.dir).output();
    }
}

/// One line of a node's access log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Access {
    /// The peer's address and port.
    pub peer: String,
    /// The request path.
    pub path: String,
    /// The answer's status.
    pub status: u16,
}

/// The access-log lines (`access_log = true`) of a node's log file.
pub fn access_log(log: &Path) -> Vec<Access> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    text.lines()
        .filter(|l| l.contains("allium_node::access"))
        .filter_map(|l| {
            let field = |name: &str| {
                let start = l.find(&format!(" {name}="))? + name.len() + 2;
                let rest = &l[start..];
                Some(rest.split(' ').next()?.trim_matches('"').to_owned())
            };
            Some(Access {
                peer: field("peer")?,
                path: field("path")?,
                status: field("status")?.parse().ok()?,
            })
        })
        .collect()
}

/// Which of `pids` owns the TCP socket `local` → `remote` (IPv4, read from
/// `/proc/net/tcp` and `/proc/PID/fd`), if any.
pub fn socket_owner(local: SocketAddrV4, remote: SocketAddrV4, pids: &[u32]) -> Option<u32> {
    let inode = socket_inode(local, remote)?;
    let wanted = format!("socket:[{inode}]");
    pids.iter().copied().find(|pid| {
        std::fs::read_dir(format!("/proc/{pid}/fd")).is_ok_and(|fds| {
            fds.flatten()
                .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|target| target.as_os_str() == wanted.as_str()))
        })
    })
}

/// The inode of the open socket `local` → `remote`.
fn socket_inode(local: SocketAddrV4, remote: SocketAddrV4) -> Option<u64> {
    let table = std::fs::read_to_string("/proc/net/tcp").ok()?;
    let (l, r) = (proc_address(local), proc_address(remote));
    table.lines().skip(1).find_map(|line| {
        let cols: Vec<&str> = line.split_whitespace().collect();
        // sl local rem st tx:rx tr:when retrnsmt uid timeout inode
        (cols.get(1) == Some(&l.as_str()) && cols.get(2) == Some(&r.as_str()))
            .then(|| cols.get(9)?.parse().ok())
            .flatten()
            .filter(|inode| *inode != 0)
    })
}

/// `/proc/net/tcp`'s spelling of an address: the IPv4 address as a
/// little-endian hex word, then the port in hex.
fn proc_address(a: SocketAddrV4) -> String {
    format!("{:08X}:{:04X}", u32::from_le_bytes(a.ip().octets()), a.port())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_addresses_are_little_endian_hex() {
        assert_eq!(proc_address("127.0.0.1:22021".parse().unwrap()), "0100007F:5605");
        assert_eq!(proc_address("127.0.0.3:80".parse().unwrap()), "0300007F:0050");
    }

    #[test]
    fn a_listening_socket_is_found_in_this_process() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let server = match listener.local_addr().unwrap() {
            std::net::SocketAddr::V4(a) => a,
            std::net::SocketAddr::V6(_) => unreachable!(),
        };
        let client = std::net::TcpStream::connect(server).unwrap();
        let local = match client.local_addr().unwrap() {
            std::net::SocketAddr::V4(a) => a,
            std::net::SocketAddr::V6(_) => unreachable!(),
        };
        let me = std::process::id();
        assert_eq!(socket_owner(local, server, &[1, me]), Some(me));
        assert_eq!(socket_owner(local, server, &[1]), None);
        drop(client);
    }

    #[test]
    fn access_lines_are_parsed() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("node.log");
        std::fs::write(
            &log,
            "2026-11-23T04:00:00Z  INFO allium_node::access: request peer=127.0.0.1:5555 method=POST path=\"/storage_rpc/v1\" status=200\n\
             2026-11-23T04:00:00Z  INFO allium_node::run: listening\n",
        )
        .unwrap();
        assert_eq!(
            access_log(&log),
            vec![Access {
                peer: "127.0.0.1:5555".into(),
                path: "/storage_rpc/v1".into(),
                status: 200
            }]
        );
    }
}
