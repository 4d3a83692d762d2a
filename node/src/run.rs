//! Starting and stopping a node: keys, storage, listener, background tasks,
//! and a graceful shutdown on SIGINT/SIGTERM that answers in-flight
//! requests, releases long-polls and closes the database cleanly.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use allium_common::seeds::{self, Seed};
use allium_common::tls::{self, LinkCert};
use serde_json::json;
use tokio::net::TcpListener;

use crate::config::NodeConfig;
use crate::directory::Directory;
use crate::error::{Error, Result};
use crate::peer::{LinkSettings, Links};
use crate::replication::{self, Replicator};
use crate::seed::voting::Voting;
use crate::seed::{self, Registry};
use crate::state::SeedRole;
use crate::state::{Node, now_ms};
use crate::storage::{HandleConfig, StorageHandle, StorageLimits};
use crate::{anti_entropy, keys, listener, membership, server};

/// File in the data dir with the node's public facts, written once the
/// listener is bound (tools and the devnet read it to find the node).
pub const NODE_INFO_FILE: &str = "node.json";
/// Expired messages deleted per sweep step.
const SWEEP_LIMIT: usize = 10_000;

/// Runs a node until SIGINT or SIGTERM.
pub async fn run(config: NodeConfig) -> Result<()> {
    let listener = TcpListener::bind(config.listen).await.map_err(|source| Error::Bind {
        addr: config.listen.to_string(),
        source,
    })?;
    let local = listener.local_addr().map_err(|source| Error::Bind {
        addr: config.listen.to_string(),
        source,
    })?;
    serve(config, listener, local, shutdown_signal()).await
}

/// Runs a node on an already bound listener until `shutdown` completes.
pub async fn serve(
    mut config: NodeConfig,
    listener: TcpListener,
    local: SocketAddr,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<()> {
    // With port 0 the advertised address is only known now.
    if config.public_address.is_none() {
        config.public_address = Some(local.to_string());
    }
    let (identity, created) = keys::load_or_create(&config.data_dir)?;
    let seeds = load_seeds(config.seed_file.as_deref())?;
    let limits = StorageLimits {
        max_mailbox_bytes: config.limits.max_mailbox_bytes,
        max_mailbox_messages: config.limits.max_mailbox_messages,
        max_total_bytes: config.limits.max_total_bytes,
        max_files_bytes: config.limits.max_files_bytes,
        max_file_bytes: config.limits.max_file_bytes,
    };
    let storage = StorageHandle::open(config.data_dir.join("messages.db"), limits, HandleConfig::default())?;
    write_node_info(&config, &identity, created)?;
    // Peers close a keep-alive connection idle for the header timeout, so
    // ours let theirs go a little before that; and enough of them stay open
    // per peer that a busy relay link does not open (and leave in
    // TIME_WAIT) a connection per request — half of what a peer lets one
    // node's address hold.
    let idle = Duration::from_millis(config.limits.header_timeout_ms.saturating_sub(2000).max(1000));
    let settings = LinkSettings {
        connect_timeout: Duration::from_secs(3),
        max_idle_per_peer: config.limits.max_connections_per_node_ip / 2,
        idle_timeout: idle,
        local_address: config.outbound_address(),
    };
    // A seed whose identity key stays offline signs (and shows TLS peers)
    // its node key under the identity's certificate.
    let seed_cert = if config.seed {
        keys::load_seed_cert(&config.data_dir, identity.ed25519_pk(), now_ms())?
    } else {
        None
    };
    let link_cert = LinkCert::with_seed_key(&identity, seed_cert.as_ref()).map_err(|e| Error::config(e.to_string()))?;
    let (links, tls) = if config.plaintext_links {
        tracing::warn!("plaintext_links is set: links are NOT encrypted (debugging only)");
        (Links::plaintext(settings).map_err(Error::config)?, None)
    } else {
        let tls = tls::server_config(&link_cert).map_err(|e| Error::config(e.to_string()))?;
        (Links::tls(settings, link_cert), Some(Arc::new(tls)))
    };
    let seed = if config.seed {
        Some(SeedRole {
            registry: Registry::open(&config.data_dir, &config.seed_mode)?,
            voting: Voting::open(
                &config.data_dir,
                seed_cert.as_ref().map_or(*identity.ed25519_pk(), |c| c.identity.0),
                seed_cert.clone(),
                seeds.clone(),
                &config.seed_mode,
            )?,
        })
    } else {
        None
    };
    // A seed trusts the seeds it votes with (itself alone without a seed
    // file); a node, those of its seed file.
    let trusted: Vec<[u8; 32]> = match &seed {
        Some(role) => role.voting.keys().to_vec(),
        None => seeds.iter().map(|s| s.ed25519).collect(),
    };
    let directory = Directory::new(
        *identity.ed25519_pk(),
        trusted,
        Duration::from_millis(config.timing.handover_grace_ms),
    );
    let (replicator, queue) = Replicator::new();
    tracing::info!(
        ed25519 = %hex::encode(identity.ed25519_pk()),
        address = %config.advertised_address(),
        seed = config.seed,
        new_key = created,
        "node starting"
    );
    let node = Arc::new(Node::new(identity, config, storage, directory, links, replicator, seed));

    let mut tasks = tokio::task::JoinSet::new();
    tasks.spawn(replication::run_queue(Arc::clone(&node), queue));
    tasks.spawn(sweep_expired(Arc::clone(&node)));
    tasks.spawn(anti_entropy::run(Arc::clone(&node)));
    tasks.spawn(wake_long_polls(Arc::clone(&node)));
    if node.config.seed {
        tasks.spawn(seed::run_prober(Arc::clone(&node)));
        tasks.spawn(seed::voting::run(Arc::clone(&node)));
    } else {
        tasks.spawn(membership::run(Arc::clone(&node), seeds));
    }

    let waiters = Arc::clone(&node.waiters);
    let app = server::router(Arc::clone(&node));
    let shutdown = async move {
        shutdown.await;
        tracing::info!("shutting down: finishing in-flight requests");
        // Long-polls answer now (with what they have) instead of holding
        // the shutdown for up to 25 s.
        waiters.notify_all();
    };
    let peers = Arc::clone(&node);
    let result = listener::serve(
        listener,
        tls,
        app,
        Arc::clone(&node.connections),
        move |ip| peers.is_node_ip(ip),
        shutdown,
    )
    .await;
    tasks.abort_all();
    node.storage.close().await?;
    tracing::info!("stopped");
    result.map_err(|source| Error::Bind {
        addr: local.to_string(),
        source,
    })
}

fn load_seeds(path: Option<&Path>) -> Result<Vec<Seed>> {
    let Some(path) = path else {
        return Ok(Vec::new());
    };
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    seeds::parse(&text).map_err(|source| Error::SeedFile {
        path: path.to_path_buf(),
        source,
    })
}

fn write_node_info(config: &NodeConfig, identity: &allium_common::Identity, _created: bool) -> Result<()> {
    let info = json!({
        "ed25519": hex::encode(identity.ed25519_pk()),
        "x25519": hex::encode(identity.x25519_pk()),
        "address": config.advertised_address(),
        "seed": config.seed,
        "pid": std::process::id(),
    });
    let path = config.data_dir.join(NODE_INFO_FILE);
    let tmp = config.data_dir.join(format!("{NODE_INFO_FILE}.tmp"));
    std::fs::write(&tmp, info.to_string()).map_err(|e| Error::io(&tmp, e))?;
    std::fs::rename(&tmp, &path).map_err(|e| Error::io(&path, e))
}

async fn sweep_expired(node: Arc<Node>) {
    let every = Duration::from_millis(node.config.timing.expiry_sweep_ms.max(100));
    loop {
        tokio::time::sleep(every).await;
        match node.storage.sweep_expired(now_ms(), SWEEP_LIMIT).await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(deleted = n, "swept expired messages"),
            Err(e) => tracing::warn!(error = %e, "expiry sweep failed"),
        }
    }
}

/// Turns the store's "new message in mailbox" events into long-poll
/// wake-ups, for client stores and replication alike.
async fn wake_long_polls(node: Arc<Node>) {
    let mut events = node.storage.subscribe();
    loop {
        match events.recv().await {
            Ok(mailbox) => node.waiters.notify(&mailbox.account, mailbox.namespace),
            // Missed events: wake everyone; each re-reads its mailbox.
            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => node.waiters.notify_all(),
            Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
        }
    }
}

/// Completes on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
