//! The network side of `allium chat`: one task long-polls the inbox, one
//! the groups, one sends texts and one carries out commands, each in its
//! own session over the same home, so a slow store never blocks typing or
//! receiving. They talk to the screen only by [`Event`]s; nothing here
//! prints (the terminal is the screen's).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::sync::mpsc;

use super::command::Command;
use super::data;
use super::model::{Conn, ConvKey, Event, Notice, Outcome, Status};
use crate::book;
use crate::error::{Error, Result};
use crate::files::human_size;
use crate::messenger::{Delivery, MESSAGE_TTL_MS, Messenger, WATCH_WAIT_MS};

/// How long a failed round waits before the next (the messenger already
/// switched path or node).
const RETRY: Duration = Duration::from_secs(2);

/// Jobs waiting for the sender or the commander (typing faster than the
/// network is fine; thousands queued are not).
pub const QUEUE: usize = 256;

/// A text to send.
#[derive(Debug)]
pub struct SendJob {
    /// The number its outcome comes back under.
    pub local: u64,
    /// Where.
    pub to: ConvKey,
    /// What.
    pub text: String,
}

/// Starts the tasks; returns where to hand texts and commands.
pub fn start(
    main: Messenger,
    siblings: [Messenger; 3],
    events: mpsc::Sender<Event>,
    tor: &'static str,
) -> (mpsc::Sender<SendJob>, mpsc::Sender<Command>) {
    let [groups, sender, commander] = siblings;
    let (send_tx, send_rx) = mpsc::channel(QUEUE);
    let (cmd_tx, cmd_rx) = mpsc::channel(QUEUE);
    tokio::spawn(receive(main, events.clone(), tor));
    tokio::spawn(group_rounds(groups, events.clone()));
    tokio::spawn(send_texts(sender, send_rx, events.clone()));
    tokio::spawn(run_commands(commander, cmd_rx, events));
    (send_tx, cmd_tx)
}

/// The status line's facts from `m`.
fn status(m: &Messenger, conn: Conn, tor: &'static str) -> Status {
    let (ready, all) = m
        .paths()
        .map_or((0, 0), |p| (p.paths().len(), p.paths().len() + p.waiting()));
    Status {
        conn,
        tor,
        node_list_ms: m.node_list_fetched_ms(),
        guards: (ready, all),
        outbox: data::outbox_count(&m.home).unwrap_or(0),
    }
}

/// Long-polls the inbox, retries the outbox and keeps the account state
/// and keys, like `allium watch`.
async fn receive(mut m: Messenger, events: mpsc::Sender<Event>, tor: &'static str) {
    loop {
        match m.flush_outbox().await {
            Ok((results, expired)) => {
                for (item, delivery) in results.iter().filter(|(i, _)| !i.control) {
                    if let Delivery::Failed(why) = delivery {
                        let text = format!(
                            "a message to {} was refused for good: {why}",
                            &item.to.to_string()[..10]
                        );
                        let _ = events.send(Event::Notice(Notice::error(text))).await;
                    }
                }
                let lost = expired.iter().filter(|i| !i.control).count();
                if lost > 0 {
                    let text = format!("{lost} message(s) could not be delivered before they expired");
                    let _ = events.send(Event::Notice(Notice::error(text))).await;
                }
                if !results.is_empty() || lost > 0 {
                    let _ = events.send(Event::Arrived(Vec::new())).await;
                }
            }
            Err(e) => tracing::debug!(error = %e, "outbox not retried"),
        }
        // The first answer says the network is there, 20 s before the
        // long poll's would.
        let conn = match m.sync_account().await {
            Ok(_) => Conn::Online,
            Err(e) => Conn::Offline(e.to_string()),
        };
        let _ = events.send(Event::Status(status(&m, conn, tor))).await;
        match m.inbox(Some(WATCH_WAIT_MS)).await {
            Ok(page) => {
                let _ = events.send(Event::Status(status(&m, Conn::Online, tor))).await;
                let mut counts: BTreeMap<String, (ConvKey, usize)> = BTreeMap::new();
                for r in page.messages.iter().chain(&page.requests) {
                    counts.entry(r.from.to_string()).or_insert((ConvKey::Peer(r.from), 0)).1 += 1;
                }
                let changed = !page.shows_nothing() || page.receipts > 0 || page.synced > 0 || page.unsent > 0;
                if changed {
                    let _ = events.send(Event::Arrived(counts.into_values().collect())).await;
                }
                let files: Vec<_> = page
                    .messages
                    .iter()
                    .map(|r| (r.hash.clone(), r.files.clone()))
                    .collect();
                if !m.auto_save(&files).await.is_empty() {
                    let _ = events.send(Event::Arrived(Vec::new())).await;
                }
                after_round(&mut m).await;
            }
            Err(e) => {
                let _ = events
                    .send(Event::Status(status(&m, Conn::Offline(e.to_string()), tor)))
                    .await;
                tokio::time::sleep(RETRY).await;
            }
        }
    }
}

/// What a round leaves to do (as `allium watch`): the avatar stored again
/// in time, edits stored, envelope v2 keys rotated. Failures wait for the
/// next round.
async fn after_round(m: &mut Messenger) {
    if let Err(e) = m.refresh_avatar().await {
        tracing::debug!(error = %e, "avatar not stored again yet");
    }
    if let Err(e) = m.sync_edited().await {
        tracing::debug!(error = %e, "account state edits not stored yet");
    }
    if let Err(e) = m.keep_keys().await {
        tracing::debug!(error = %e, "envelope v2 keys not kept yet");
    }
}

/// Long-polls the groups' swarms, paced as `allium watch` does: with no
/// group there is nothing to wait on, so it sleeps; with several, a round
/// polls each without waiting.
async fn group_rounds(mut m: Messenger, events: mpsc::Sender<Event>) {
    use crate::cli::groups::GROUP_POLL;
    loop {
        let joined = m.joined_groups();
        if joined == 0 {
            tokio::time::sleep(GROUP_POLL).await;
            continue;
        }
        match m.group_round(Some(WATCH_WAIT_MS)).await {
            Ok(page) => {
                let files: Vec<_> = page
                    .messages
                    .iter()
                    .map(|r| (r.entry.hash.clone(), r.files.clone()))
                    .collect();
                let saved = !m.auto_save(&files).await.is_empty();
                let mut counts: BTreeMap<String, (ConvKey, usize)> = BTreeMap::new();
                for r in &page.messages {
                    let key = ConvKey::Group(r.entry.group);
                    counts.entry(r.entry.group.to_string()).or_insert((key, 0)).1 += 1;
                }
                for name in &page.joined {
                    let text = format!("joined the group {name}");
                    let _ = events.send(Event::Notice(Notice::info(text))).await;
                }
                for name in &page.removed {
                    let text = format!("you were removed from the group {name}");
                    let _ = events.send(Event::Notice(Notice::error(text))).await;
                }
                if saved
                    || !counts.is_empty()
                    || !page.joined.is_empty()
                    || !page.removed.is_empty()
                    || !page.left.is_empty()
                {
                    let _ = events.send(Event::Arrived(counts.into_values().collect())).await;
                }
                if joined > 1 {
                    tokio::time::sleep(GROUP_POLL).await;
                }
            }
            Err(e) => {
                tracing::debug!(error = %e, "group round failed");
                tokio::time::sleep(RETRY).await;
            }
        }
    }
}

/// Sends texts one after another, each answered with [`Event::Sent`].
async fn send_texts(mut m: Messenger, mut jobs: mpsc::Receiver<SendJob>, events: mpsc::Sender<Event>) {
    while let Some(job) = jobs.recv().await {
        let outcome = match send_text(&mut m, &job).await {
            Ok(o) => o,
            Err(e) => Outcome::Failed(e.to_string()),
        };
        let _ = events.send(Event::Sent(job.local, outcome)).await;
    }
}

async fn send_text(m: &mut Messenger, job: &SendJob) -> Result<Outcome> {
    if let Err(e) = crate::messenger::check_text_len(&job.text) {
        return Ok(Outcome::Failed(e.to_string()));
    }
    match &job.to {
        ConvKey::Peer(to) => Ok(match m.send(*to, &job.text).await? {
            Delivery::Stored(hash) => Outcome::Stored(hash),
            Delivery::Pending(why) => Outcome::Pending(why),
            Delivery::Failed(why) => Outcome::Failed(why),
        }),
        ConvKey::Group(group) => {
            refresh(m, group).await?;
            Ok(Outcome::Stored(m.send_to_group(group, &job.text).await?))
        }
    }
}

/// A group's keys and members read again before writing to it: a rekey
/// since the last round must not leave the message under a replaced key.
async fn refresh(m: &mut Messenger, group: &allium_common::group::GroupId) -> Result<()> {
    let page = m.refresh_group(group).await?;
    if !page.removed.is_empty() {
        return Err(Error::Usage("this account was removed from the group".into()));
    }
    Ok(())
}

/// Carries out commands one after another; each ends with a notice.
async fn run_commands(mut m: Messenger, mut jobs: mpsc::Receiver<Command>, events: mpsc::Sender<Event>) {
    while let Some(cmd) = jobs.recv().await {
        let notice = match run(&mut m, cmd, &events).await {
            Ok(text) => Notice::info(text),
            Err(e) => Notice::error(e.to_string()),
        };
        let _ = events.send(Event::Notice(notice)).await;
        let _ = events.send(Event::Arrived(Vec::new())).await;
    }
}

/// `~/x` is `$HOME/x`, as a shell would have it.
fn expand(path: &Path) -> PathBuf {
    match (path.strip_prefix("~"), std::env::var_os("HOME")) {
        (Ok(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => path.to_path_buf(),
    }
}

/// Resolves contact names and Account IDs.
fn accounts(m: &Messenger, names: &[String]) -> Result<Vec<allium_common::AccountId>> {
    let book = m.book()?;
    names.iter().map(|n| crate::cli::recipient(&book, n)).collect()
}

async fn run(m: &mut Messenger, cmd: Command, events: &mpsc::Sender<Event>) -> Result<String> {
    let text = match cmd {
        Command::Add { name, account } => {
            m.edit_account_state(book::CONTACTS, |state, stamp| book::add(state, &name, &account, stamp))??;
            format!("added {name}")
        }
        Command::Block { account, on } => {
            m.set_blocked(&account, on)?;
            if on { "blocked" } else { "unblocked" }.to_owned()
        }
        Command::Accept { account, name } => match m.accept(account, name.as_deref()).await? {
            Delivery::Stored(_) => "accepted; they were told".to_owned(),
            _ => "accepted; telling them waits in the outbox".to_owned(),
        },
        Command::Decline { account } => {
            let n = m.decline(account, false).await?;
            format!("declined: {n} message(s) deleted")
        }
        Command::GroupCreate { name, members } => {
            let members = accounts(m, &members)?;
            m.nodes().await?;
            m.create_group(&name, &members).await?;
            format!("created the group {name}")
        }
        Command::GroupAdd { group, members } => {
            let members = accounts(m, &members)?;
            refresh(m, &group).await?;
            m.add_to_group(&group, &members, false).await?;
            format!("invited {} member(s)", members.len())
        }
        Command::GroupRemove { group, members } => {
            let members = accounts(m, &members)?;
            refresh(m, &group).await?;
            m.remove_from_group(&group, &members).await?;
            format!("removed {} member(s); the group key was replaced", members.len())
        }
        Command::GroupLeave { group } => {
            m.leave_group(&group).await?;
            "left the group".to_owned()
        }
        Command::File { to, path, text } => return send_file(m, &to, &expand(&path), &text, events).await,
        Command::Save { hash, index, dir } => {
            let dir = match dir {
                Some(d) => expand(&d),
                None => m
                    .auto_download
                    .as_ref()
                    .map(|(_, d)| d.clone())
                    .unwrap_or_else(|| m.home.dir().join("downloads")),
            };
            std::fs::create_dir_all(&dir).map_err(|e| Error::Usage(format!("{}: {e}", dir.display())))?;
            let mut saved = Vec::new();
            for file in m
                .home
                .files_of(&hash)?
                .into_iter()
                .filter(|f| index.is_none_or(|i| f.index == i))
            {
                let progress = progress(events, "fetching", &file.manifest.name);
                let done = m.download_file(&hash, file.index, &dir, &progress).await?;
                saved.push(done.path.display().to_string());
            }
            if saved.is_empty() {
                return Err(Error::Usage("that message has no such file".into()));
            }
            format!("saved {}", saved.join(", "))
        }
        Command::Disappear { account, rule } => {
            m.set_disappearing(account, rule).await?;
            format!("messages disappear: {}", crate::cli::conversation::describe(rule))
        }
        Command::Unsend { hash } => {
            if m.home.group_message(&hash)?.is_some() {
                m.unsend_group_message(&hash).await?;
            } else {
                m.unsend(&hash).await?;
            }
            "taken back".to_owned()
        }
        Command::Name(name) => {
            let value = serde_json::Value::String(name.clone());
            m.edit_account_state(crate::sync::PROFILE, |state, stamp| {
                state.set(crate::sync::PROFILE_NAME, value, stamp);
            })?;
            format!("your display name is {name}")
        }
    };
    // What changed is in the account state: other devices learn it now.
    if let Err(e) = m.sync_account().await {
        tracing::debug!(error = %e, "account state not synced after a command");
    }
    Ok(text)
}

/// A progress callback that shows `verb name: n %` as a notice.
fn progress<'a>(
    events: &'a mpsc::Sender<Event>,
    verb: &'a str,
    name: &'a str,
) -> impl Fn(crate::files::Progress) + Send + Sync + 'a {
    move |p: crate::files::Progress| {
        let percent = u64::from(p.done) * 100 / u64::from(p.total.max(1));
        let text = format!("{verb} {name}: {percent} % of {}", human_size(p.size));
        // A full queue drops a progress note, never a message.
        let _ = events.try_send(Event::Notice(Notice::info(text)));
    }
}

async fn send_file(
    m: &mut Messenger,
    to: &ConvKey,
    path: &Path,
    text: &str,
    events: &mpsc::Sender<Event>,
) -> Result<String> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let ttl = match to {
        ConvKey::Peer(id) => m.file_ttl_for(id)?,
        ConvKey::Group(_) => MESSAGE_TTL_MS,
    };
    let upload = {
        let progress = progress(events, "sending", &name);
        m.upload_file(path, ttl, &progress).await?
    };
    let uploads = [upload];
    match to {
        ConvKey::Peer(id) => match m.send_with_files(*id, text, &uploads).await? {
            Delivery::Stored(_) => Ok(format!("sent {name}")),
            Delivery::Pending(why) => Ok(format!("{name} is stored; the message waits in the outbox ({why})")),
            Delivery::Failed(why) => Err(Error::Usage(format!("{name} was not sent: {why}"))),
        },
        ConvKey::Group(group) => {
            refresh(m, group).await?;
            m.send_to_group_with_files(group, text, &uploads).await?;
            Ok(format!("sent {name} to the group"))
        }
    }
}
