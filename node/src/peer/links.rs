//! The connections this node opens: TLS 1.3 pinned to the key of the peer
//! it means to reach (see [`allium_common::tls`]), presenting its own
//! certificate so the peer knows which node calls.
//!
//! Each pinned key gets its own HTTP client, so its kept connections are
//! never handed to a request meant for another key at the same address. At
//! most [`MAX_CLIENTS`] are kept (about 11 KB each, measured, before any
//! connection); past that the half used longest ago is dropped (their idle
//! connections close; calls in flight finish), so the peers a node talks
//! to all the time keep their connections.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use allium_common::tls::{self, LinkCert};

use super::CallError;

/// Most per-key clients kept.
pub const MAX_CLIENTS: usize = 2048;

/// How connections are opened and kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkSettings {
    /// Deadline for the TCP connection.
    pub connect_timeout: Duration,
    /// Idle connections kept per peer.
    pub max_idle_per_peer: usize,
    /// How long an idle connection is kept.
    pub idle_timeout: Duration,
    /// The address connections are made from.
    pub local_address: Option<IpAddr>,
}

impl Default for LinkSettings {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(3),
            max_idle_per_peer: 8,
            idle_timeout: Duration::from_secs(60),
            local_address: None,
        }
    }
}

/// Whether links are encrypted.
#[derive(Debug)]
enum Mode {
    /// TLS as `own` (`None`: a tool with no identity, which may call
    /// unpinned).
    Tls { own: Option<LinkCert> },
    /// Plain HTTP (the debugging option `plaintext_links`).
    Plain(reqwest::Client),
}

/// This node's outbound links.
#[derive(Debug)]
pub struct Links {
    settings: LinkSettings,
    mode: Mode,
    clients: Mutex<Clients>,
}

/// The per-key clients, each with the tick of its last use.
#[derive(Debug, Default)]
struct Clients {
    by_pin: HashMap<Option<[u8; 32]>, (reqwest::Client, u64)>,
    tick: u64,
}

impl Links {
    /// TLS links of a node holding `own`: every call is pinned.
    pub fn tls(settings: LinkSettings, own: LinkCert) -> Self {
        Self::with_mode(settings, Mode::Tls { own: Some(own) })
    }

    /// TLS links of a tool with no identity of its own (tests, benchmarks,
    /// the devnet launcher): calls may be unpinned.
    pub fn anonymous() -> Self {
        Self::with_mode(LinkSettings::default(), Mode::Tls { own: None })
    }

    /// Plain HTTP, for debugging only.
    pub fn plaintext(settings: LinkSettings) -> Result<Self, String> {
        let client = builder(&settings).build().map_err(|e| format!("HTTP client: {e}"))?;
        Ok(Self::with_mode(settings, Mode::Plain(client)))
    }

    fn with_mode(settings: LinkSettings, mode: Mode) -> Self {
        Self {
            settings,
            mode,
            clients: Mutex::new(Clients::default()),
        }
    }

    /// Whether links are plain HTTP.
    pub fn is_plaintext(&self) -> bool {
        matches!(self.mode, Mode::Plain(_))
    }

    /// A POST to `path` at `address`, which must answer with the key `pin`
    /// (`None`: any key, allowed only to tools).
    pub fn post(
        &self,
        pin: Option<&[u8; 32]>,
        address: &str,
        path: &str,
    ) -> Result<reqwest::RequestBuilder, CallError> {
        let client = match &self.mode {
            Mode::Plain(client) => return Ok(client.post(format!("http://{address}{path}"))),
            Mode::Tls { own } => {
                if pin.is_none() && own.is_some() {
                    // A node's calls are always pinned; an unpinned one is a bug.
                    return Err(CallError::Unpinned);
                }
                self.client(pin.copied(), own.as_ref())?
            }
        };
        Ok(client.post(format!("https://{address}{path}")))
    }

    fn client(&self, pin: Option<[u8; 32]>, own: Option<&LinkCert>) -> Result<reqwest::Client, CallError> {
        let mut clients = self.clients.lock().unwrap_or_else(PoisonError::into_inner);
        clients.tick += 1;
        let tick = clients.tick;
        if let Some((client, used)) = clients.by_pin.get_mut(&pin) {
            *used = tick;
            return Ok(client.clone());
        }
        let config = tls::client_config(pin, own).map_err(|e| {
            tracing::error!(error = %e, "cannot configure TLS");
            CallError::Unreachable
        })?;
        let client = builder(&self.settings)
            .tls_backend_preconfigured(config)
            .build()
            .map_err(|e| {
                tracing::error!(error = %e, "cannot build an HTTP client");
                CallError::Unreachable
            })?;
        if clients.by_pin.len() >= MAX_CLIENTS {
            keep_newest_half(&mut clients.by_pin);
        }
        clients.by_pin.insert(pin, (client.clone(), tick));
        Ok(client)
    }
}

/// Drops the half of `map` whose last use (the tick beside each value) is
/// oldest.
fn keep_newest_half<K: std::hash::Hash + Eq, V>(map: &mut HashMap<K, (V, u64)>) {
    let mut ticks: Vec<u64> = map.values().map(|(_, tick)| *tick).collect();
    ticks.sort_unstable();
    let cut = ticks.get(ticks.len() / 2).copied().unwrap_or(0);
    map.retain(|_, (_, tick)| *tick >= cut);
}

fn builder(settings: &LinkSettings) -> reqwest::ClientBuilder {
    tls::install_default_provider();
    reqwest::Client::builder()
        .connect_timeout(settings.connect_timeout)
        .pool_max_idle_per_host(settings.max_idle_per_peer)
        .pool_idle_timeout(settings.idle_timeout)
        .local_address(settings.local_address)
}

/// An HTTP client that speaks TLS to any Allium node without pinning its
/// key, presenting `own` if given: for tests, benchmarks and monitoring
/// tools that look at a node from outside (URLs `https://…`).
pub fn unpinned_client(settings: LinkSettings, own: Option<&LinkCert>) -> reqwest::Client {
    let built = match tls::client_config(None, own) {
        Ok(tls) => builder(&settings).tls_backend_preconfigured(tls).build(),
        Err(e) => {
            tracing::error!(error = %e, "cannot configure TLS");
            builder(&settings).build()
        }
    };
    built.unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_table_keeps_the_peers_used_last() {
        let mut map: HashMap<u32, ((), u64)> = (0..10u32).map(|k| (k, ((), u64::from(k) * 10))).collect();
        // Peer 0 was used last of all.
        map.insert(0, ((), 1000));
        keep_newest_half(&mut map);
        let mut kept: Vec<u32> = map.keys().copied().collect();
        kept.sort_unstable();
        assert_eq!(kept, vec![0, 6, 7, 8, 9]);
    }
}
