//! The `allium` command line.

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};

use allium_common::mnemonic::{self, PhraseKind};
use allium_common::seeds::{self, Seed};
use allium_common::{AccountId, sodium};
use clap::{Parser, Subcommand};
use serde_json::json;
use zeroize::Zeroizing;

mod account;
pub(crate) mod conversation;
mod devices;
mod files;
pub(crate) mod groups;

pub use account::{ContactsCommand, RequestsCommand};
pub use devices::DevicesCommand;
pub use groups::GroupCommand;

use crate::book::Book;
use crate::config::{self, ClientConfig, Route};
use crate::display::escape;
use crate::error::{Error, Result};
use crate::files::FileNote;
use crate::home::{Direction, Home, IdentitySource, ReceiptLevel};
use crate::incoming::InboxPage;
use crate::messenger::{Delivery, Messenger, WATCH_WAIT_MS};
use crate::transport::{TorOptions, Transport};

/// The seed file shipped with the program.
const DEFAULT_SEEDS: &str = include_str!("../../../seed-nodes.toml");

/// Exit status: success.
pub const EXIT_OK: i32 = 0;
/// Exit status: nothing found, or a message not delivered yet.
pub const EXIT_NOTHING: i32 = 1;
/// Exit status: usage or any other error, including a message the swarm
/// refused for good.
pub const EXIT_ERROR: i32 = 2;

/// Allium: an onion-routed, end-to-end encrypted messenger with no phone
/// number and no e-mail.
#[derive(Debug, Parser)]
#[command(
    name = "allium",
    version,
    about,
    after_help = "Exit status: 0 ok; 1 nothing found or message not delivered yet (it stays in the outbox); 2 usage or other error, or a message the network refused for good (it left the outbox)."
)]
pub struct Cli {
    /// Directory holding the identity and its database.
    #[arg(long, global = true, env = "ALLIUM_HOME")]
    pub home: Option<PathBuf>,
    /// Seed file (default: the seed-nodes.toml shipped with allium).
    #[arg(long, global = true, env = "ALLIUM_SEEDS")]
    pub seeds: Option<PathBuf>,
    /// Print data as JSON Lines.
    #[arg(long, global = true)]
    pub json: bool,
    /// Fetch the node list from the seeds through Tor, so no seed sees this
    /// machine's address (guards still do; see --tor-all).
    #[arg(long, global = true)]
    pub tor: bool,
    /// Reach seeds and guards through Tor: no Allium node sees this
    /// machine's address.
    #[arg(long, global = true)]
    pub tor_all: bool,
    /// Do not use the network: edits (contacts, profile) are kept here and
    /// synced by a later command.
    #[arg(long, global = true)]
    pub offline: bool,
    /// Config file (default: HOME/config.toml if it exists).
    #[arg(long, global = true, env = "ALLIUM_CONFIG")]
    pub config: Option<PathBuf>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a new identity and print its 24-word recovery phrase once.
    Init {
        /// File holding an optional BIP39 passphrase.
        #[arg(long)]
        passphrase_file: Option<PathBuf>,
    },
    /// Restore an identity from its recovery phrase (standard input, or --phrase-file).
    Restore {
        /// File holding the phrase (12-24 BIP39 words, or 13 legacy Session words).
        #[arg(long)]
        phrase_file: Option<PathBuf>,
        /// File holding the BIP39 passphrase, if one was used.
        #[arg(long)]
        passphrase_file: Option<PathBuf>,
    },
    /// Print this identity's Account ID.
    Id {
        /// Also publish (rotating if due) and show this account's key
        /// bundle for envelope v2: its keys, their windows and its age.
        #[arg(long)]
        keys: bool,
        /// With --keys: make a new key now, even if none is due (shared
        /// with the account's other devices before it is published).
        #[arg(long, requires = "keys")]
        rotate: bool,
    },
    /// Send a text message, and files with `--file` (up to 1 GiB each,
    /// stored encrypted on the swarms; run again to resume an interrupted
    /// upload).
    Send {
        /// An Account ID (66 hex characters starting 05), a contact name, or
        /// a group.
        to: String,
        /// The text (may be left out when sending files).
        #[arg(required_unless_present = "file")]
        text: Option<String>,
        /// A file to send (repeat for several).
        #[arg(long, value_name = "PATH")]
        file: Vec<PathBuf>,
        /// The name the recipient sees for the file (default: its own
        /// name here), so a local file name need not travel.
        #[arg(long, requires = "file")]
        name: Option<String>,
    },
    /// Fetch the files a message carried, check them and write them into
    /// DIR (default: the current directory) under safe names; run again to
    /// resume an interrupted download.
    Save {
        /// The message's hash (from `inbox`, `history`).
        hash: String,
        /// Where to write the files.
        dir: Option<PathBuf>,
        /// Only this file of the message (0 is the first).
        #[arg(long)]
        index: Option<u32>,
    },
    /// Open the full-screen messenger: conversations, messages as they
    /// arrive, sending, files and commands (`?` shows the keys).
    Chat,
    /// Fetch new messages once.
    Inbox,
    /// Print messages as they arrive (long-polling).
    Watch {
        /// Stop after this many messages.
        #[arg(long)]
        count: Option<usize>,
        /// Stop after this many seconds.
        #[arg(long)]
        timeout_secs: Option<u64>,
    },
    /// Show the message history, with one contact or with everyone.
    History {
        /// Contact name or Account ID.
        with: Option<String>,
        /// Most messages to show.
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Manage contacts (shared by all devices of the account).
    #[command(subcommand)]
    Contacts(ContactsCommand),
    /// List this account's devices and link requests, or link a new
    /// device: `link` on the new one, `approve ID` on one already linked.
    Devices {
        /// What to do (nothing: list them).
        #[command(subcommand)]
        action: Option<DevicesCommand>,
    },
    /// Private groups: create them, add, remove or promote members,
    /// leave, list (`docs/groups.md`). A group is also a recipient of
    /// `send` and `history`.
    Group {
        /// What to do.
        #[command(subcommand)]
        action: GroupCommand,
    },
    /// Show message requests (messages from accounts that are not
    /// contacts), or accept or decline one.
    Requests {
        /// What to do (nothing: list them).
        #[command(subcommand)]
        action: Option<RequestsCommand>,
    },
    /// Show what this client knows of the network.
    Nodes,
    /// Show or set this account's profile, shared by all its devices
    /// (synced with the account's swarm first).
    Profile {
        /// Set the display name.
        #[arg(long)]
        name: Option<String>,
        /// Send read receipts (on) or only delivery receipts (off).
        #[arg(long, value_parser = ["on", "off"])]
        read_receipts: Option<String>,
        /// Set the avatar: an image of at most 5 MB, stored encrypted on
        /// the swarms (`none` removes it). Contacts fetch it.
        #[arg(long, value_name = "PATH")]
        avatar: Option<PathBuf>,
    },
    /// Make messages in a conversation disappear: `off`, `after-send
    /// DURATION` or `after-read DURATION` (30s, 10m, 12h, 1d, 2w; at most
    /// 2w). Both sides and all their devices follow the setting.
    Disappear {
        /// Contact name or Account ID.
        with: String,
        /// off, after-send or after-read.
        mode: String,
        /// How long (with after-send or after-read).
        duration: Option<String>,
    },
    /// Mute a conversation: its messages go to the history without being
    /// shown by inbox and watch (on every device of the account).
    Mute {
        /// Contact name or Account ID.
        with: String,
        /// Unmute instead.
        #[arg(long)]
        off: bool,
    },
    /// Take back a sent message: the recipient's devices delete it, and so
    /// do this account's.
    Unsend {
        /// The message's hash (`allium history --json`).
        hash: String,
    },
    /// Delete everything this account has on the network (asks first).
    Wipe {
        /// Do not ask.
        #[arg(long)]
        yes: bool,
    },
}

/// Where homes live by default: `$XDG_DATA_HOME/allium` or
/// `~/.local/share/allium`.
fn default_home() -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os("XDG_DATA_HOME") {
        return Ok(PathBuf::from(dir).join("allium"));
    }
    std::env::var_os("HOME")
        .map(|h| PathBuf::from(h).join(".local/share/allium"))
        .ok_or_else(|| Error::Usage("no home directory: pass --home DIR".into()))
}

fn load_seeds(path: Option<&Path>) -> Result<Vec<Seed>> {
    let (text, name) = match path {
        Some(p) => (
            std::fs::read_to_string(p).map_err(|e| Error::Seeds {
                path: p.display().to_string(),
                reason: e.to_string(),
            })?,
            p.display().to_string(),
        ),
        None => (DEFAULT_SEEDS.to_owned(), "built-in seed-nodes.toml".to_owned()),
    };
    seeds::parse(&text).map_err(|e| Error::Seeds {
        path: name,
        reason: format!("{e} (a local network from `allium-node devnet` writes one: pass it with --seeds)"),
    })
}

fn read_secret_file(path: &Path) -> Result<Zeroizing<String>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::Usage(format!("{}: {e}", path.display())))?;
    Ok(Zeroizing::new(text.trim_end_matches(['\n', '\r']).to_owned()))
}

/// What a command that talks to the network needs besides its home.
#[derive(Debug)]
struct NetOptions {
    seeds: Option<PathBuf>,
    /// The config file with the flags applied (read once per command).
    config: ClientConfig,
    home_dir: PathBuf,
    json: bool,
    offline: bool,
}

impl NetOptions {
    /// Reads the config file (`--config`, else `HOME/config.toml` if it
    /// exists) and applies the flags.
    fn new(cli: &Cli, home_dir: &Path) -> Result<Self> {
        let config = match &cli.config {
            Some(path) => ClientConfig::load(path, true)?,
            None => ClientConfig::load(&home_dir.join(config::CONFIG_FILE), false)?,
        };
        Ok(Self {
            seeds: cli.seeds.clone(),
            config: config.with_flags(cli.tor, cli.tor_all),
            home_dir: home_dir.to_path_buf(),
            json: cli.json,
            offline: cli.offline,
        })
    }

    /// A messenger over `home`, with the transport the config asks for.
    fn messenger(&self, home: Home) -> Result<Messenger> {
        self.messenger_with(home, load_seeds(self.seeds.as_deref())?)
    }

    fn messenger_with(&self, home: Home, seeds: Vec<Seed>) -> Result<Messenger> {
        let options = TorOptions {
            dir: self.home_dir.join("tor"),
            progress: !self.json,
        };
        let transport = Transport::new(&self.config, &options)?;
        let mut m = Messenger::new(home, seeds, transport);
        m.set_offline(self.offline);
        m.set_forward_secrecy(self.config.forward_secrecy);
        let downloads = self
            .config
            .download_dir
            .clone()
            .unwrap_or_else(|| self.home_dir.join("downloads"));
        m.set_auto_download(self.config.auto_download_bytes, downloads);
        Ok(m)
    }
}

/// Resolves a contact name or an Account ID.
pub(crate) fn recipient(book: &Book, to: &str) -> Result<AccountId> {
    if let Some(id) = book.by_name(to) {
        return Ok(id);
    }
    if to.len() == allium_common::identity::ACCOUNT_ID_LEN || to.starts_with("05") {
        return to
            .parse::<AccountId>()
            .map_err(|e| Error::Usage(format!("{to:?} is not a valid Account ID: {e}")));
    }
    Err(Error::Usage(format!(
        "no contact named {to:?} (and it is not an Account ID); see `allium contacts list`"
    )))
}

/// The group `to` names, if it names one rather than a contact: a Group
/// ID, or the name of a group that is not also a contact's name.
fn group_recipient(home: &Home, to: &str) -> Result<Option<crate::home::GroupRecord>> {
    let groups = home.groups()?;
    if to.starts_with("03") && to.len() == allium_common::identity::ACCOUNT_ID_LEN {
        return crate::groups::find_group(&groups, to).map(Some);
    }
    if Book::of(home)?.by_name(to).is_some() || !groups.iter().any(|g| g.name == to) {
        return Ok(None);
    }
    crate::groups::find_group(&groups, to).map(Some)
}

/// Prints one output record, as JSON or as text.
fn emit(json: bool, value: serde_json::Value, text: impl FnOnce() -> String) {
    let mut out = std::io::stdout().lock();
    let line = if json { value.to_string() } else { text() };
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// `YYYY-MM-DD HH:MM:SS` (UTC) of a Unix-ms timestamp, for people.
pub(crate) fn fmt_time(ms: u64) -> String {
    let secs = ms / 1000;
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    // Howard Hinnant's days-to-civil algorithm (public domain).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// How an account is named on a terminal: the nickname this account gave
/// it; else the display name it chose, with the start of its Account ID
/// (a chosen name proves nothing, so it never stands alone); else the
/// Account ID.
fn fmt_from(from: &AccountId, nickname: Option<&str>, display_name: Option<&str>) -> String {
    crate::display::account_label(from, nickname, display_name)
        .map_or_else(|| from.to_string(), |label| escape(&label).into_owned())
}

/// Which connections go through Tor: seed fetches, or seeds and guards.
fn tor_label(route: Route) -> &'static str {
    match route {
        Route::Direct => "off",
        Route::TorSeeds => "seeds",
        Route::TorAll => "seeds and guards",
    }
}

/// Runs a parsed command; returns the exit status.
pub async fn run(cli: Cli) -> Result<i32> {
    let home_dir = match &cli.home {
        Some(h) => h.clone(),
        None => default_home()?,
    };
    let json = cli.json;
    let net = NetOptions::new(&cli, &home_dir)?;
    if net.config.route != Route::Direct && !cfg!(feature = "tor") {
        return Err(Error::TorUnavailable);
    }
    match cli.command {
        Command::Init { passphrase_file } => {
            let passphrase = passphrase_file
                .as_deref()
                .map(read_secret_file)
                .transpose()?
                .unwrap_or_default();
            let phrase = mnemonic::new_phrase(&sodium::random_array());
            let seed = mnemonic::seed_from_phrase(&phrase, &passphrase).map_err(allium_common::Error::from)?;
            let home = Home::create(&home_dir, &seed, IdentitySource::Bip39)?;
            let id = home.account_id().to_string();
            emit(json, json!({"account_id": id, "mnemonic": phrase.as_str()}), || {
                format!(
                    "Account ID: {id}\n\nRecovery phrase (write it down; it is shown only now and is the only way to restore this identity):\n{}",
                    phrase.as_str()
                )
            });
            Ok(EXIT_OK)
        }
        Command::Restore {
            phrase_file,
            passphrase_file,
        } => {
            let phrase = match phrase_file {
                Some(f) => read_secret_file(&f)?,
                None => {
                    let mut s = Zeroizing::new(String::new());
                    std::io::stdin()
                        .read_to_string(&mut s)
                        .map_err(|e| Error::Usage(format!("cannot read the phrase from standard input: {e}")))?;
                    s
                }
            };
            let passphrase = passphrase_file
                .as_deref()
                .map(read_secret_file)
                .transpose()?
                .unwrap_or_default();
            let kind = mnemonic::kind_of(&phrase).map_err(allium_common::Error::from)?;
            let seed = mnemonic::seed_from_phrase(&phrase, &passphrase).map_err(allium_common::Error::from)?;
            let source = if kind == PhraseKind::LegacySession {
                IdentitySource::Legacy
            } else {
                IdentitySource::Bip39
            };
            let home = Home::create(&home_dir, &seed, source)?;
            let id = home.account_id().to_string();
            emit(json, json!({"account_id": id, "restored": true}), || {
                format!("Restored {id}")
            });
            // Fetch what the swarm still holds; the identity is restored
            // even if the network cannot be reached now.
            match load_seeds(cli.seeds.as_deref()) {
                Ok(seeds) => {
                    let mut m = net.messenger_with(home, seeds)?;
                    account::sync_quietly(&mut m).await;
                    match m.inbox(None).await {
                        Ok(page) => print_received(json, &page),
                        Err(e) => eprintln!(
                            "allium: restored, but could not fetch messages yet: {}",
                            escape(&e.to_string())
                        ),
                    }
                    // The groups come back from the synced state, their
                    // keys from the key messages sealed to this account.
                    match m.group_round(None).await {
                        Ok(groups) => groups::print_group_page(json, &m.book()?, &groups),
                        Err(e) => eprintln!(
                            "allium: restored, but could not read the groups yet: {}",
                            escape(&e.to_string())
                        ),
                    }
                    flush_outbox(&mut m, json).await;
                    let name = m.account_state(crate::sync::PROFILE)?;
                    let name = name.get(crate::sync::PROFILE_NAME).and_then(|v| v.as_str());
                    let history = m.home.history(None, usize::MAX)?.len();
                    account::restored_summary(&m.book()?, name, history, json);
                }
                Err(e) => eprintln!("allium: restored, but could not fetch messages: {e}"),
            }
            Ok(EXIT_OK)
        }
        Command::Id { keys: false, .. } => {
            let home = Home::open(&home_dir)?;
            let id = home.account_id().to_string();
            emit(json, json!({"account_id": id}), || id.clone());
            Ok(EXIT_OK)
        }
        Command::Id { keys: true, rotate } => {
            let mut m = net.messenger(Home::open(&home_dir)?)?;
            let id = m.home.account_id().to_string();
            let published = m.publish_keys(rotate).await?;
            let age_secs = m.network_now().saturating_sub(published.published_ms) / 1000;
            let keys: Vec<serde_json::Value> = published
                .bundle
                .keys()
                .iter()
                .map(|k| json!({"key_id": hex::encode(k.key_id()), "valid_from_ms": k.valid_from_ms, "valid_until_ms": k.valid_until_ms}))
                .collect();
            emit(
                json,
                json!({"account_id": id, "bundle_published_ms": published.published_ms, "bundle_age_secs": age_secs,
                       "keys": keys, "rotated": published.rotated, "stored": published.stored, "deleted": published.deleted,
                       "shared": published.shared}),
                || {
                    let mut text = format!("{id}\nkey bundle (envelope v2), published {age_secs} s ago:");
                    for k in published.bundle.keys() {
                        text.push_str(&format!(
                            "\n  X-Wing key {} for {} to {}",
                            hex::encode(k.key_id()),
                            fmt_time(k.valid_from_ms),
                            fmt_time(k.valid_until_ms)
                        ));
                    }
                    text
                },
            );
            Ok(EXIT_OK)
        }
        Command::Send { to, text, file, name } => {
            let text = text.unwrap_or_default();
            let home = Home::open(&home_dir)?;
            if let Some(group) = group_recipient(&home, &to)? {
                let mut m = net.messenger(home)?;
                m.nodes().await?;
                flush_outbox(&mut m, json).await;
                // Keys and list first: a rekey since the last round must
                // not leave this message under a replaced key.
                let page = m.refresh_group(&group.id).await?;
                if !page.removed.is_empty() {
                    return Err(Error::Usage(format!(
                        "this account was removed from {}",
                        escape(&group.name)
                    )));
                }
                let uploads =
                    files::upload_all(&mut m, &file, name.as_deref(), crate::messenger::MESSAGE_TTL_MS, json).await?;
                let hash = m.send_to_group_with_files(&group.id, &text, &uploads).await?;
                emit(
                    json,
                    json!({"group": group.id.to_string(), "hash": hash, "status": "stored", "files": uploads.len()}),
                    || format!("sent {hash} to {}", escape(&group.name)),
                );
                return Ok(EXIT_OK);
            }
            let to = recipient(&Book::of(&home)?, &to)?;
            crate::messenger::check_text_len(&text)?;
            let mut m = net.messenger(home)?;
            // Without a trusted node list nothing can be sent: say so (exit
            // 2) rather than queueing a message that cannot go anywhere.
            m.nodes().await?;
            flush_outbox(&mut m, json).await;
            let ttl = m.file_ttl_for(&to)?;
            let uploads = files::upload_all(&mut m, &file, name.as_deref(), ttl, json).await?;
            match m.send_with_files(to, &text, &uploads).await? {
                Delivery::Stored(hash) => {
                    emit(
                        json,
                        json!({"to": to.to_string(), "hash": hash, "status": "stored"}),
                        || format!("sent {hash}"),
                    );
                    Ok(EXIT_OK)
                }
                Delivery::Pending(error) => {
                    emit(
                        json,
                        json!({"to": to.to_string(), "status": "pending", "error": error}),
                        || {
                            format!(
                                "not delivered yet (kept in the outbox, retried by later commands): {}",
                                escape(&error)
                            )
                        },
                    );
                    Ok(EXIT_NOTHING)
                }
                Delivery::Failed(error) => {
                    report_failed(json, &to, &error, false);
                    Ok(EXIT_ERROR)
                }
            }
        }
        Command::Save { hash, dir, index } => {
            let home = Home::open(&home_dir)?;
            let mut m = net.messenger(home)?;
            let dir = dir.unwrap_or_else(|| PathBuf::from("."));
            files::save(&mut m, &hash, &dir, index, json).await
        }
        Command::Inbox => {
            let home = Home::open(&home_dir)?;
            let mut m = net.messenger(home)?;
            flush_outbox(&mut m, json).await;
            account::sync_quietly(&mut m).await;
            let page = m.inbox(None).await?;
            print_received(json, &page);
            let groups = m.group_round(None).await?;
            groups::print_group_page(json, &m.book()?, &groups);
            files::auto_save(&mut m, &page, Some(&groups), json).await;
            // Receipts the round queued.
            flush_outbox(&mut m, json).await;
            account::after_round(&mut m).await;
            Ok(if page.shows_nothing() && groups.shows_nothing() {
                EXIT_NOTHING
            } else {
                EXIT_OK
            })
        }
        Command::Chat => {
            let m = net.messenger(Home::open(&home_dir)?)?;
            let siblings = [
                m.sibling(Home::open(&home_dir)?),
                m.sibling(Home::open(&home_dir)?),
                m.sibling(Home::open(&home_dir)?),
            ];
            let options = crate::chat::Options {
                tor: tor_label(net.config.route),
                color: crate::chat::color_allowed(),
            };
            crate::chat::run(m, siblings, Home::open(&home_dir)?, options).await
        }
        Command::Watch { count, timeout_secs } => {
            let home = Home::open(&home_dir)?;
            let mut m = net.messenger(home)?;
            let deadline = timeout_secs.map(|s| std::time::Instant::now() + std::time::Duration::from_secs(s));
            let seen = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
            let done = std::sync::Arc::new(tokio::sync::Notify::new());
            // The groups live on other swarms: a second session long-polls
            // them beside the inbox, so neither waits for the other.
            tokio::spawn(groups::watch(
                m.sibling(Home::open(&home_dir)?),
                groups::Watching {
                    json,
                    deadline,
                    count,
                    seen: std::sync::Arc::clone(&seen),
                    done: std::sync::Arc::clone(&done),
                },
            ));
            let total = |seen: &std::sync::atomic::AtomicUsize| seen.load(std::sync::atomic::Ordering::SeqCst);
            loop {
                flush_outbox(&mut m, json).await;
                let remaining_ms = deadline.map(|d| d.saturating_duration_since(std::time::Instant::now()).as_millis());
                if remaining_ms == Some(0) {
                    return Ok(if total(&seen) > 0 { EXIT_OK } else { EXIT_NOTHING });
                }
                let wait = remaining_ms.map_or(WATCH_WAIT_MS, |r| {
                    u64::try_from(r).unwrap_or(WATCH_WAIT_MS).min(WATCH_WAIT_MS)
                });
                account::sync_quietly(&mut m).await;
                let round = tokio::select! {
                    round = m.inbox(Some(wait.max(1))) => round,
                    // The group session saw enough: stop (an inbox read cut
                    // short is read again next time; nothing is lost).
                    () = done.notified() => return Ok(EXIT_OK),
                };
                match round {
                    Ok(page) => {
                        print_received(json, &page);
                        files::auto_save(&mut m, &page, None, json).await;
                        account::after_round(&mut m).await;
                        let now = seen.fetch_add(
                            page.messages.len() + page.requests.len(),
                            std::sync::atomic::Ordering::SeqCst,
                        ) + page.messages.len()
                            + page.requests.len();
                        if count.is_some_and(|c| now >= c) {
                            return Ok(EXIT_OK);
                        }
                    }
                    // Survive node and path failures: the messenger already
                    // switched; wait a moment and go on.
                    Err(e) => {
                        eprintln!("allium: {}; retrying", escape(&e.to_string()));
                        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                    }
                }
            }
        }
        Command::History { with, limit } => {
            let mut home = Home::open(&home_dir)?;
            home.purge_expired(crate::clock::Clock::saved(&home).network_ms(crate::now_ms()))?;
            let book = Book::of(&home)?;
            if let Some(group) = with
                .as_deref()
                .map(|w| group_recipient(&home, w))
                .transpose()?
                .flatten()
            {
                let entries = home.group_history(Some(&group.id), limit)?;
                for e in &entries {
                    let files = FileNote::of(&home.files_of(&e.hash)?);
                    groups::print_entry(json, &book, e, &group.name, None, &files);
                }
                return Ok(if entries.is_empty() { EXIT_NOTHING } else { EXIT_OK });
            }
            let me = home.account_id();
            // Once this account publishes v2 keys, a message without
            // forward secrecy is worth pointing out.
            let marks_v1 = !home.account_keys()?.is_empty();
            let peer = with.as_deref().map(|w| recipient(&book, w)).transpose()?;
            // Waiting requests are in `allium requests`, blocked accounts
            // nowhere, unless asked for by name.
            let entries = home.history_where(peer.as_ref(), limit, |e| {
                peer.is_some()
                    || e.direction == Direction::Outgoing
                    || e.peer == me
                    || (book.is_approved(&e.peer) && !book.is_blocked(&e.peer))
            })?;
            if peer.is_none() {
                // The groups' messages, then the conversations'.
                for g in home.groups()? {
                    for e in home.group_history(Some(&g.id), limit)? {
                        let files = FileNote::of(&home.files_of(&e.hash)?);
                        groups::print_entry(json, &book, &e, &g.name, None, &files);
                    }
                }
            }
            for e in &entries {
                let files = files::notes(&home, &e.hash)?;
                let contact = book.get(&e.peer).cloned().unwrap_or_default();
                let name = contact.shown_name().map(str::to_owned);
                let direction = if e.direction == Direction::Incoming {
                    "from"
                } else {
                    "to"
                };
                let receipt = (e.direction == Direction::Outgoing).then_some(e.receipt);
                emit(
                    json,
                    json!({"direction": direction, "peer": e.peer.to_string(), "name": name, "timestamp": e.sent_ts,
                           "body": e.body, "hash": e.hash, "receipt": receipt, "expires_ms": e.expires_ms,
                           "envelope": e.envelope, "files": files}),
                    || {
                        let mut notes = String::new();
                        match receipt {
                            Some(ReceiptLevel::Read) => notes.push_str(" [read]"),
                            Some(ReceiptLevel::Delivered) => notes.push_str(" [delivered]"),
                            _ => {}
                        }
                        if let Some(at) = e.expires_ms {
                            notes.push_str(&format!(" [disappears {}]", fmt_time(at)));
                        }
                        if marks_v1 && e.envelope == 1 && e.peer != me {
                            notes.push_str(" [no forward secrecy]");
                        }
                        format!(
                            "[{}] {direction} {}: {}{}{notes}",
                            fmt_time(e.sent_ts),
                            fmt_from(&e.peer, contact.nickname.as_deref(), contact.display_name.as_deref()),
                            escape(&e.body),
                            FileNote::describe(&files)
                        )
                    },
                );
            }
            Ok(if entries.is_empty() { EXIT_NOTHING } else { EXIT_OK })
        }
        Command::Contacts(sub) => {
            let mut m = net.messenger(Home::open(&home_dir)?)?;
            account::contacts(&mut m, sub, json).await
        }
        Command::Devices { action } => {
            let mut m = net.messenger(Home::open(&home_dir)?)?;
            devices::devices(&mut m, action, json).await
        }
        Command::Group { action } => {
            let mut m = net.messenger(Home::open(&home_dir)?)?;
            account::sync_quietly(&mut m).await;
            let code = groups::group(&mut m, action, json).await?;
            // A group made, joined or left is in the synced state: the
            // account's other devices learn it from the swarm.
            account::sync_quietly(&mut m).await;
            Ok(code)
        }
        Command::Requests { action } => {
            let mut m = net.messenger(Home::open(&home_dir)?)?;
            account::requests(&mut m, action, json).await
        }
        Command::Profile {
            name,
            read_receipts,
            avatar,
        } => {
            let mut m = net.messenger(Home::open(&home_dir)?)?;
            let edit = account::ProfileEdit {
                name,
                read_receipts: read_receipts.map(|r| r == "on"),
                avatar,
            };
            account::profile(&mut m, edit, json).await
        }
        Command::Disappear { with, mode, duration } => {
            let mut m = net.messenger(Home::open(&home_dir)?)?;
            conversation::disappear(&mut m, &with, &mode, duration.as_deref(), json).await
        }
        Command::Mute { with, off } => {
            let mut m = net.messenger(Home::open(&home_dir)?)?;
            conversation::mute(&mut m, &with, !off, json).await
        }
        Command::Unsend { hash } => {
            let mut m = net.messenger(Home::open(&home_dir)?)?;
            conversation::unsend(&mut m, &hash, json).await
        }
        Command::Wipe { yes } => {
            let mut m = net.messenger(Home::open(&home_dir)?)?;
            conversation::wipe(&mut m, yes, json).await
        }
        Command::Nodes => {
            let home = Home::open(&home_dir)?;
            let seeds = load_seeds(cli.seeds.as_deref())?;
            let seed_addresses: Vec<String> = seeds.iter().map(|s| s.address.clone()).collect();
            let seed_keys: Vec<[u8; 32]> = seeds.iter().map(|s| s.ed25519).collect();
            let mut m = net.messenger_with(home, seeds.clone())?;
            let tor = tor_label(net.config.route);
            let sourced = m.nodes().await?.clone();
            let swarms = sourced.list.swarm_ring().ids().len();
            let age_s = crate::now_ms().saturating_sub(sourced.fetched_ms) / 1000;
            // Which seeds signed it, by address.
            let signed_by: Vec<String> = sourced
                .list
                .valid_signers(&seed_keys)
                .iter()
                .filter_map(|k| seeds.iter().find(|s| s.ed25519 == *k).map(|s| s.address.clone()))
                .collect();
            let paths: Vec<Vec<String>> = m
                .paths()
                .map(|p| {
                    p.paths()
                        .iter()
                        .map(|path| path.relays.iter().map(|r| r.address.clone()).collect())
                        .collect()
                })
                .unwrap_or_default();
            // Whether the consensus flags each path's guard as a guard (a
            // guard chosen earlier may have lost the flag since).
            let guards_flagged: Vec<bool> = m
                .paths()
                .map(|p| {
                    p.paths()
                        .iter()
                        .map(|path| {
                            path.relays
                                .first()
                                .and_then(|g| sourced.list.find(&g.ed25519.0))
                                .is_some_and(|n| n.guard)
                        })
                        .collect()
                })
                .unwrap_or_default();
            let waiting = m.paths().map_or(0, crate::paths::Paths::waiting);
            let replaced = m.guard_replacements()?;
            let replaced_json: Vec<serde_json::Value> = replaced
                .iter()
                .map(|(path, at)| json!({"path": path, "at_ms": at}))
                .collect();
            emit(
                json,
                json!({"nodes": sourced.list.nodes.len(), "swarms": swarms, "period": sourced.list.period,
                       "valid_after_ms": sourced.list.valid_after, "signed_by": signed_by,
                       "age_secs": age_s, "source": sourced.source, "seeds": seed_addresses, "paths": paths,
                       "guards_flagged": guards_flagged, "paths_waiting_for_a_guard": waiting, "guard_replacements": replaced_json,
                       "clock_offset_ms": m.clock_offset_ms(), "tor": tor}),
                || {
                    format!(
                        "{} nodes in {swarms} swarms, consensus period {} (signed by {} of {} seeds: {}), fetched {age_s}s ago from {}\nseeds: {}\npaths: {}{}\nguards flagged by the consensus: {}\n\
                         new guards in the last 24 h: {}\nclock offset: {} ms\ntor: {tor}",
                        sourced.list.nodes.len(),
                        sourced.list.period,
                        signed_by.len(),
                        seed_addresses.len(),
                        signed_by.join(", "),
                        sourced.source,
                        seed_addresses.join(", "),
                        paths.iter().map(|p| p.join(" -> ")).collect::<Vec<_>>().join(" | "),
                        if waiting > 0 {
                            format!(" ({waiting} waiting for a new guard)")
                        } else {
                            String::new()
                        },
                        guards_flagged
                            .iter()
                            .map(|f| if *f { "yes" } else { "no" })
                            .collect::<Vec<_>>()
                            .join(", "),
                        if replaced.is_empty() {
                            "none".to_owned()
                        } else {
                            replaced
                                .iter()
                                .map(|(path, at)| format!("path {path} at {}", fmt_time(*at)))
                                .collect::<Vec<_>>()
                                .join(", ")
                        },
                        m.clock_offset_ms()
                    )
                },
            );
            Ok(EXIT_OK)
        }
    }
}

pub(crate) async fn flush_outbox(m: &mut Messenger, json: bool) {
    match m.flush_outbox().await {
        Ok((results, expired)) => {
            for (item, delivery) in results {
                if item.control {
                    // Not a message the user wrote: a failure is noted, no more.
                    if let Delivery::Failed(error) = delivery {
                        eprintln!(
                            "allium: a control message (copy for other devices, acceptance or receipt) to {} was refused: {}",
                            item.to,
                            escape(&error)
                        );
                    }
                    continue;
                }
                match delivery {
                    Delivery::Stored(hash) => emit(
                        json,
                        json!({"to": item.to.to_string(), "hash": hash, "status": "stored", "from_outbox": true}),
                        || format!("delivered from the outbox: {hash}"),
                    ),
                    Delivery::Failed(error) => report_failed(json, &item.to, &error, true),
                    Delivery::Pending(_) => {}
                }
            }
            for item in expired.iter().filter(|i| !i.control) {
                eprintln!(
                    "allium: a message to {} could not be delivered before it expired and was dropped",
                    item.to
                );
            }
        }
        Err(e) => eprintln!("allium: could not retry the outbox: {}", escape(&e.to_string())),
    }
}

/// Reports a message the swarm refused for good: on stderr always, and as
/// a `{"status": "failed"}` line on stdout with `--json`.
fn report_failed(json: bool, to: &AccountId, error: &str, from_outbox: bool) {
    eprintln!(
        "allium: the network refused the message to {to} ({}); no retry can change that, so it was removed \
         from the outbox and not sent",
        escape(error)
    );
    if json {
        emit(
            true,
            json!({"to": to.to_string(), "status": "failed", "error": error, "from_outbox": from_outbox}),
            String::new,
        );
    }
}

fn print_received(json: bool, page: &InboxPage) {
    for r in &page.messages {
        emit(
            json,
            json!({"from": r.from.to_string(), "name": r.from_name, "display_name": r.display_name,
                   "timestamp": r.timestamp, "body": r.body, "hash": r.hash, "expires_ms": r.expires_ms,
                   "read_elsewhere": r.read_elsewhere, "files": r.files}),
            || {
                format!(
                    "[{}] {}: {}{}{}",
                    fmt_time(r.timestamp),
                    fmt_from(&r.from, r.from_name.as_deref(), r.display_name.as_deref()),
                    escape(&r.body),
                    FileNote::describe(&r.files),
                    if r.read_elsewhere {
                        " [read on another device]"
                    } else {
                        ""
                    }
                )
            },
        );
    }
    for r in &page.requests {
        emit(
            json,
            json!({"from": r.from.to_string(), "request": true, "display_name": r.display_name,
                   "timestamp": r.timestamp, "body": r.body, "hash": r.hash, "files": r.files}),
            || {
                let calls = r
                    .display_name
                    .as_deref()
                    .map(|n| format!(" (calls themselves {})", escape(n)))
                    .unwrap_or_default();
                format!(
                    "[{}] request from {}{calls}: {}{}",
                    fmt_time(r.timestamp),
                    r.from,
                    escape(&r.body),
                    FileNote::describe(&r.files)
                )
            },
        );
    }
    for (with, rule) in &page.disappearing {
        emit(
            json,
            json!({"disappearing_set_by": with.to_string(), "disappearing": rule}),
            || format!("{with} set messages to disappear: {}", conversation::describe(*rule)),
        );
    }
    if page.muted > 0 {
        eprintln!(
            "allium: {} message(s) in muted conversations added to the history",
            page.muted
        );
    }
    if page.unsent > 0 {
        eprintln!(
            "allium: {} message(s) taken back by their senders were deleted",
            page.unsent
        );
    }
    for from in &page.accepted {
        emit(json, json!({"accepted_by": from.to_string()}), || {
            format!("{from} accepted your message request")
        });
    }
    if !page.requests.is_empty() && !json {
        eprintln!("allium: message requests wait in `allium requests` until accepted");
    }
    if page.synced > 0 {
        eprintln!(
            "allium: {} message(s) sent from another device added to the history",
            page.synced
        );
    }
    if page.dropped > 0 {
        eprintln!("allium: dropped {} message(s) from blocked accounts", page.dropped);
    }
    if page.unreadable > 0 {
        eprintln!(
            "allium: skipped {} item(s) in the inbox that are not messages this account can read",
            page.unreadable
        );
    }
    if page.key_gone > 0 {
        eprintln!(
            "allium: {} of them look like messages sealed with forward secrecy (envelope v2) to keys this device \
             does not hold: deleted after their retention, or made before this device was linked or restored; \
             they cannot be read here",
            page.key_gone
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chosen_name_never_stands_alone_but_a_nickname_does() {
        let id = AccountId::from_x25519([0xab; 32]);
        assert_eq!(fmt_from(&id, Some("bob"), Some("Robert")), "bob");
        assert_eq!(fmt_from(&id, None, Some("Robert")), "Robert (05abababab…)");
        assert_eq!(fmt_from(&id, None, Some("x\u{1b}[2J")), "x\\e[2J (05abababab…)");
        assert_eq!(fmt_from(&id, None, None), id.to_string());
    }

    #[test]
    fn times_are_utc_calendar_dates() {
        assert_eq!(fmt_time(0), "1970-01-01 00:00:00");
        assert_eq!(fmt_time(1_700_000_000_000), "2023-11-14 22:13:20");
        assert_eq!(fmt_time(951_782_400_000), "2000-02-29 00:00:00");
    }
}
