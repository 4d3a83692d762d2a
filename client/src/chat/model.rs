//! The chat screen's state. It does no I/O: it changes only by
//! [`Model::apply`], which takes an [`Event`] (a key, a loaded page, a
//! send's outcome, a tick carrying the time) and returns the [`Action`]s
//! the event loop must carry out. Tests drive it with events and read its
//! state; the renderer ([`super::view`]) draws it.

use std::collections::HashMap;

use allium_common::AccountId;
use allium_common::content::Disappear;
use allium_common::group::GroupId;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::layout::Rect;

use super::command::{self, Command, Context};
use super::input::Input;
use super::lines::{self, Rendered};
use super::view;
use crate::files::FileNote;

/// A conversation: with one account, or a group.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ConvKey {
    /// With a contact, or a stranger's request.
    Peer(AccountId),
    /// A group.
    Group(GroupId),
}

/// One line of the conversation list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// Which conversation.
    pub key: ConvKey,
    /// Its name as sent or chosen (escaped when drawn).
    pub name: String,
    /// A message request: a stranger's, not answered yet.
    pub request: bool,
    /// The last message: when (Unix ms) and its first line.
    pub last: Option<(u64, String)>,
    /// The disappearing-messages setting.
    pub disappearing: Option<Disappear>,
}

/// What became of a message, as its line shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mark {
    /// Someone else's message.
    Incoming,
    /// Handed to the sender task, no answer yet.
    Sending,
    /// In the outbox, retried later; why the last attempt failed.
    Pending(String),
    /// Stored on the recipient's swarm.
    Stored,
    /// The recipient's device fetched it.
    Delivered,
    /// The recipient read it.
    Read,
    /// Refused for good (why); not sent.
    Failed(String),
}

/// One message of the open conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Its hash once stored.
    pub hash: Option<String>,
    /// Sent by this account.
    pub mine: bool,
    /// The sender's name (escaped when drawn).
    pub sender: String,
    /// When it was sent, Unix ms.
    pub sent_ms: u64,
    /// The text as sent (escaped when drawn).
    pub body: String,
    /// The files it carries.
    pub files: Vec<FileNote>,
    /// Its delivery state.
    pub mark: Mark,
    /// When it disappears, Unix ms.
    pub expires_ms: Option<u64>,
    /// A note from the group (someone left), not a message.
    pub notice: bool,
}

/// Whether the network answers.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Conn {
    /// Nothing asked yet.
    #[default]
    Starting,
    /// The last request was answered.
    Online,
    /// The last request failed (why).
    Offline(String),
}

/// The status line's facts.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Status {
    /// Whether the network answers.
    pub conn: Conn,
    /// Which connections go through Tor: off, seeds, seeds and guards.
    pub tor: &'static str,
    /// When the node list in use was fetched, Unix ms.
    pub node_list_ms: Option<u64>,
    /// Paths with a usable guard, of all paths.
    pub guards: (usize, usize),
    /// Messages waiting in the outbox.
    pub outbox: usize,
}

/// A line for the user below the conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// The text (escaped when drawn).
    pub text: String,
    /// Whether it reports a failure.
    pub error: bool,
}

impl Notice {
    /// News.
    pub fn info(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            error: false,
        }
    }

    /// A failure.
    pub fn error(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            error: true,
        }
    }
}

/// What a send came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Stored (the hash).
    Stored(String),
    /// Kept in the outbox to retry (why it did not finish).
    Pending(String),
    /// Not sent (why).
    Failed(String),
}

/// Something that happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A key was pressed.
    Key(KeyEvent),
    /// Text was pasted.
    Paste(String),
    /// The terminal has this many columns and rows now.
    Resize(u16, u16),
    /// The clock: Unix ms.
    Tick(u64),
    /// The conversation list, loaded.
    List(Vec<Summary>),
    /// A conversation's messages, loaded (oldest first).
    Loaded(ConvKey, Vec<Message>),
    /// The newest messages of the open conversation, loaded again (oldest
    /// first; at most [`TAIL`] from the history, then the outbox's).
    LoadedTail(ConvKey, Vec<Message>),
    /// New messages arrived, this many per conversation.
    Arrived(Vec<(ConvKey, usize)>),
    /// A send finished.
    Sent(u64, Outcome),
    /// Something to tell the user.
    Notice(Notice),
    /// The network's state.
    Status(Status),
    /// Quit (a signal, or the terminal went away).
    Quit,
}

/// What the event loop must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Load this conversation (answer with [`Event::Loaded`]).
    Load(ConvKey),
    /// Load its newest [`TAIL`] messages again (answer with
    /// [`Event::LoadedTail`]): what arrives or is sent changes only those.
    LoadTail(ConvKey),
    /// Send a text (answer with [`Event::Sent`] under the same number).
    Send {
        /// The number the outcome comes back under.
        local: u64,
        /// Where.
        to: ConvKey,
        /// What.
        text: String,
    },
    /// Carry out a command.
    Run(Command),
    /// Leave.
    Quit,
}

/// What changed in the open conversation's messages.
#[derive(Debug)]
enum Reload {
    /// Only this session's sends.
    Sends,
    /// The loaded messages from this index on are these.
    From(usize, Vec<Message>),
}

/// How many of the newest messages [`Action::LoadTail`] reads again.
pub const TAIL: usize = 200;

/// The open conversation.
#[derive(Debug, Clone)]
pub struct Open {
    /// Which.
    pub key: ConvKey,
    /// Its messages as loaded, oldest first, then this session's sends
    /// not yet among them.
    pub messages: Vec<Message>,
    /// How many of `messages` were loaded.
    pub loaded: usize,
    /// `messages` laid out for the current width.
    pub rendered: Rendered,
    /// Rows scrolled up from the newest.
    pub scroll: usize,
    /// The selected message (for /unsend, /save, /reply), by index.
    pub selected: Option<usize>,
}

/// The chat screen.
#[derive(Debug)]
pub struct Model {
    pub(super) size: (u16, u16),
    pub(super) color: bool,
    pub(super) conversations: Vec<Summary>,
    pub(super) unread: HashMap<ConvKey, usize>,
    pub(super) open: Option<Open>,
    pub(super) input: Input,
    pub(super) help: bool,
    pub(super) notice: Option<Notice>,
    pub(super) status: Status,
    pub(super) now_ms: u64,
    /// This session's sends: number, conversation, message.
    sending: Vec<(u64, ConvKey, Message)>,
    next_local: u64,
    /// The last `/find` text.
    find: Option<String>,
    pub(super) quit: bool,
}

impl Model {
    /// A model for a terminal of `size` (columns, rows), at `now_ms`;
    /// `color` false draws with bold and reverse only (`NO_COLOR`).
    pub fn new(size: (u16, u16), color: bool, now_ms: u64) -> Self {
        Self {
            size,
            color,
            conversations: Vec::new(),
            unread: HashMap::new(),
            open: None,
            input: Input::default(),
            help: false,
            notice: None,
            status: Status::default(),
            now_ms,
            sending: Vec::new(),
            next_local: 1,
            find: None,
            quit: false,
        }
    }

    /// Whether the user asked to leave.
    pub fn quitting(&self) -> bool {
        self.quit
    }

    /// Sends handed to the sender task that have not come back.
    pub fn in_flight(&self) -> usize {
        self.sending.iter().filter(|(_, _, m)| m.mark == Mark::Sending).count()
    }

    /// The open conversation.
    pub fn open(&self) -> Option<&Open> {
        self.open.as_ref()
    }

    /// The conversation list.
    pub fn conversations(&self) -> &[Summary] {
        &self.conversations
    }

    /// Unread messages in `key` this session.
    pub fn unread(&self, key: &ConvKey) -> usize {
        self.unread.get(key).copied().unwrap_or(0)
    }

    /// What is typed.
    pub fn input(&self) -> &str {
        self.input.text()
    }

    /// The notice shown.
    pub fn notice(&self) -> Option<&Notice> {
        self.notice.as_ref()
    }

    /// Whether the key help is shown.
    pub fn help_shown(&self) -> bool {
        self.help
    }

    /// Applies `event`; returns what must be done.
    pub fn apply(&mut self, event: Event) -> Vec<Action> {
        match event {
            Event::Key(key) => self.key(key),
            Event::Paste(text) => {
                self.input.insert_str(&text);
                Vec::new()
            }
            Event::Resize(w, h) => {
                self.size = (w, h);
                self.relayout();
                Vec::new()
            }
            Event::Tick(now) => {
                self.now_ms = now;
                Vec::new()
            }
            Event::List(list) => self.list(list),
            Event::Loaded(key, messages) => {
                match &self.open {
                    Some(open) if open.key == key => {}
                    // The user moved on while it loaded.
                    Some(_) => return Vec::new(),
                    None => {
                        self.open = Some(Open {
                            key,
                            messages: Vec::new(),
                            loaded: 0,
                            rendered: Rendered::default(),
                            scroll: 0,
                            selected: None,
                        });
                    }
                }
                self.rebuild(Reload::From(0, messages));
                Vec::new()
            }
            Event::LoadedTail(key, tail) => self.merge_tail(key, tail),
            Event::Arrived(counts) => {
                let open = self.open.as_ref().map(|o| o.key.clone());
                // No counts: something else changed (receipts, an unsend,
                // a command), maybe in the open conversation.
                let no_counts = counts.is_empty();
                let reload = no_counts || counts.iter().any(|(k, _)| Some(k) == open.as_ref());
                for (key, n) in counts {
                    if Some(&key) != open.as_ref() {
                        *self.unread.entry(key).or_default() += n;
                    }
                }
                match open {
                    // News without counts may be anywhere (an unsend of an
                    // old message): all of it; messages arrived: the tail.
                    Some(key) if reload && no_counts => vec![Action::Load(key)],
                    Some(key) if reload => vec![Action::LoadTail(key)],
                    _ => Vec::new(),
                }
            }
            Event::Sent(local, outcome) => self.sent(local, outcome),
            Event::Notice(n) => {
                self.notice = Some(n);
                Vec::new()
            }
            Event::Status(s) => {
                self.status = s;
                Vec::new()
            }
            Event::Quit => {
                self.quit = true;
                vec![Action::Quit]
            }
        }
    }

    fn list(&mut self, list: Vec<Summary>) -> Vec<Action> {
        self.conversations = list;
        // The open conversation stays open even if it left the list (a
        // contact removed): the user sees it until moving on.
        if self.open.is_none()
            && let Some(first) = self.conversations.first()
        {
            return vec![Action::Load(first.key.clone())];
        }
        Vec::new()
    }

    fn sent(&mut self, local: u64, outcome: Outcome) -> Vec<Action> {
        let Some(pos) = self.sending.iter().position(|(l, _, _)| *l == local) else {
            return Vec::new();
        };
        let key = self.sending[pos].1.clone();
        match outcome {
            // The home has it now (history or outbox): the reload shows it.
            Outcome::Stored(_) => {
                self.sending.remove(pos);
            }
            Outcome::Pending(why) => {
                self.sending.remove(pos);
                self.notice = Some(Notice::info(format!(
                    "not delivered yet ({why}); it stays in the outbox and is retried"
                )));
            }
            Outcome::Failed(why) => {
                self.sending[pos].2.mark = Mark::Failed(why.clone());
                self.notice = Some(Notice::error(format!("the message was not sent: {why}")));
                self.rebuild(Reload::Sends);
            }
        }
        if self.open.as_ref().is_some_and(|o| o.key == key) {
            vec![Action::LoadTail(key)]
        } else {
            Vec::new()
        }
    }

    /// The rectangle the open conversation's messages are drawn in.
    pub(super) fn message_area(&self) -> Rect {
        let panes = view::panes(Rect::new(0, 0, self.size.0, self.size.1), self.input_rows());
        view::inner(panes.conversation)
    }

    /// Rows the input takes (without its border).
    pub(super) fn input_rows(&self) -> usize {
        let width = usize::from(self.size.0.saturating_sub(4));
        self.input.rows(width).0.len().clamp(1, 5)
    }

    /// The newest messages loaded again: they replace the loaded ones from
    /// the first of them on. If that one is no longer among the loaded
    /// (more arrived than the tail holds, or it was deleted), everything is
    /// loaded again.
    fn merge_tail(&mut self, key: ConvKey, tail: Vec<Message>) -> Vec<Action> {
        let Some(open) = &self.open else { return Vec::new() };
        if open.key != key {
            return Vec::new();
        }
        let stored = tail.iter().filter(|m| m.hash.is_some()).count();
        let start = match tail.iter().find_map(|m| m.hash.as_ref()) {
            // The tail holds the whole conversation.
            _ if stored < TAIL => 0,
            Some(first) => match open.messages[..open.loaded]
                .iter()
                .rposition(|m| m.hash.as_ref() == Some(first))
            {
                Some(i) => i,
                None => return vec![Action::Load(key)],
            },
            None => 0,
        };
        self.rebuild(Reload::From(start, tail));
        Vec::new()
    }

    /// The messages shown: the loaded ones (replaced from a point on, or
    /// kept), then this session's sends not yet among them. Only the rows
    /// of messages that changed are laid out again, and the messages kept
    /// before the replaced part are not copied.
    fn rebuild(&mut self, reload: Reload) {
        let width = usize::from(self.message_area().width);
        let Some(open) = &mut self.open else { return };
        let old_rows = open.rendered.rows();
        let sends = self
            .sending
            .iter()
            .filter(|(_, k, _)| *k == open.key)
            .map(|(_, _, m)| m.clone());
        let (start, mut fresh) = match reload {
            Reload::Sends => (open.loaded, Vec::new()),
            Reload::From(start, tail) => (start.min(open.loaded), tail),
        };
        let loaded = start + fresh.len();
        fresh.extend(sends);
        let same = start
            + open.messages[start.min(open.messages.len())..]
                .iter()
                .zip(&fresh)
                .take_while(|(a, b)| a == b)
                .count();
        open.messages.truncate(start);
        open.messages.extend(fresh);
        open.loaded = loaded;
        if open.selected.is_some_and(|s| s >= open.messages.len()) {
            open.selected = None;
        }
        if open.rendered.width() == width {
            open.rendered.truncate(same);
        } else {
            open.rendered = Rendered::new(width);
        }
        let from = open.rendered.messages();
        open.rendered.append(&open.messages[from..], self.color, self.now_ms);
        // Scrolled back: new rows below must not move what is in view.
        if open.scroll > 0 {
            open.scroll += open.rendered.rows().saturating_sub(old_rows);
        }
    }

    fn relayout(&mut self) {
        let width = usize::from(self.message_area().width);
        if let Some(open) = &mut self.open
            && open.rendered.width() != width
        {
            open.rendered = lines::render(&open.messages, width, self.color, self.now_ms);
            open.scroll = open.scroll.min(open.rendered.rows());
        }
    }

    fn key(&mut self, key: KeyEvent) -> Vec<Action> {
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        let alt = key.modifiers.contains(KeyModifiers::ALT);
        if key.code == KeyCode::Char('c') && ctrl {
            return self.quit();
        }
        if self.help {
            self.help = false;
            return Vec::new();
        }
        match key.code {
            KeyCode::Char('d') if ctrl && self.input.is_empty() => return self.quit(),
            KeyCode::Char('n') if ctrl => return self.step(1),
            KeyCode::Char('p') if ctrl => return self.step(-1),
            KeyCode::Tab => return self.step(1),
            KeyCode::BackTab => return self.step(-1),
            KeyCode::Char('a') if ctrl => self.input.home(),
            KeyCode::Char('e') if ctrl => self.input.end(),
            KeyCode::Char('u') if ctrl => self.input.clear(),
            KeyCode::Char('w') if ctrl => self.input.delete_word(),
            KeyCode::Char('f') if ctrl => self.input.set("/find "),
            KeyCode::Char('j') if ctrl => self.input.insert('\n'),
            KeyCode::Char('?') if self.input.is_empty() => self.help = true,
            KeyCode::F(1) => self.help = true,
            KeyCode::Char(c) if !ctrl => self.input.insert(c),
            KeyCode::Enter if alt || key.modifiers.contains(KeyModifiers::SHIFT) => self.input.insert('\n'),
            KeyCode::Enter => return self.submit(),
            KeyCode::Backspace => self.input.backspace(),
            KeyCode::Delete => self.input.delete(),
            KeyCode::Left => self.input.left(),
            KeyCode::Right => self.input.right(),
            KeyCode::Home => self.input.home(),
            KeyCode::End => self.input.end(),
            KeyCode::Up if alt => self.select(-1),
            KeyCode::Down if alt => self.select(1),
            KeyCode::Up if self.input.recalling() => self.input.older(),
            KeyCode::Down if self.input.recalling() => self.input.newer(),
            KeyCode::PageUp => self.scroll_by(self.page() as isize),
            KeyCode::PageDown => self.scroll_by(-(self.page() as isize)),
            KeyCode::Esc => {
                self.notice = None;
                if let Some(open) = &mut self.open {
                    open.selected = None;
                    open.scroll = 0;
                }
            }
            _ => {}
        }
        Vec::new()
    }

    fn quit(&mut self) -> Vec<Action> {
        self.quit = true;
        vec![Action::Quit]
    }

    fn page(&self) -> usize {
        usize::from(self.message_area().height.saturating_sub(1)).max(1)
    }

    fn scroll_by(&mut self, rows: isize) {
        let height = usize::from(self.message_area().height);
        if let Some(open) = &mut self.open {
            let max = open.rendered.rows().saturating_sub(height);
            open.scroll = open.scroll.saturating_add_signed(rows).min(max);
        }
    }

    /// Opens the conversation `by` places down the list (up if negative).
    fn step(&mut self, by: isize) -> Vec<Action> {
        let n = self.conversations.len();
        if n == 0 {
            return Vec::new();
        }
        let here = self
            .open
            .as_ref()
            .and_then(|o| self.conversations.iter().position(|c| c.key == o.key));
        let next = match here {
            Some(i) => (i as isize + by).rem_euclid(n as isize) as usize,
            None => 0,
        };
        self.switch(next)
    }

    /// Opens conversation `i` of the list.
    fn switch(&mut self, i: usize) -> Vec<Action> {
        let key = self.conversations[i].key.clone();
        self.unread.remove(&key);
        self.open = None;
        self.notice = None;
        vec![Action::Load(key)]
    }

    /// Opens the conversation named `name`: the exact name (any case),
    /// else the only one starting with it.
    fn open_named(&mut self, name: &str) -> Vec<Action> {
        let name = name.trim_start_matches('#').to_lowercase();
        let names: Vec<String> = self.conversations.iter().map(|c| c.name.to_lowercase()).collect();
        let exact = names.iter().position(|n| *n == name);
        let starting: Vec<usize> = (0..names.len()).filter(|&i| names[i].starts_with(&name)).collect();
        let found = match (exact, starting.as_slice()) {
            _ if name.is_empty() => None,
            (Some(i), _) => Some(i),
            (None, [i]) => Some(*i),
            _ => None,
        };
        let Some(i) = found else {
            self.notice = Some(Notice::error(format!(
                "/open NAME: no one conversation is called {name:?}"
            )));
            return Vec::new();
        };
        self.switch(i)
    }

    /// Moves the message selection (older is -1); scrolls it into view.
    fn select(&mut self, by: isize) {
        let height = usize::from(self.message_area().height);
        let Some(open) = &mut self.open else { return };
        let n = open.messages.len();
        if n == 0 {
            return;
        }
        let next = match open.selected {
            // Start from the newest message in view (scrolled back or not).
            None if by < 0 => {
                let view = open.rendered.visible(height, open.scroll);
                open.rendered.message_at(view.end.saturating_sub(1)).unwrap_or(n - 1)
            }
            None => return,
            Some(i) => {
                let j = i as isize + by;
                if j >= n as isize {
                    open.selected = None;
                    open.scroll = 0;
                    return;
                }
                j.max(0) as usize
            }
        };
        open.selected = Some(next);
        open.scroll = open.rendered.scroll_to_show(next, open.scroll, height);
    }

    fn submit(&mut self) -> Vec<Action> {
        let text = self.input.take();
        if text.trim().is_empty() {
            return Vec::new();
        }
        if let Some(rest) = text.strip_prefix('/')
            && !rest.starts_with('/')
        {
            return self.command(rest);
        }
        // `//text` sends `/text`.
        let text = if text.starts_with("//") {
            text[1..].to_owned()
        } else {
            text
        };
        self.send(text)
    }

    fn send(&mut self, text: String) -> Vec<Action> {
        let Some(open) = &self.open else {
            self.notice = Some(Notice::error("no conversation is open: /add NAME ID to start one"));
            return Vec::new();
        };
        if self.conversations.iter().any(|c| c.key == open.key && c.request) {
            self.notice = Some(Notice::error(
                "this is a message request: /accept to answer it, /decline to refuse it",
            ));
            return Vec::new();
        }
        let local = self.next_local;
        self.next_local += 1;
        let message = Message {
            hash: None,
            mine: true,
            sender: "you".to_owned(),
            sent_ms: self.now_ms,
            body: text.clone(),
            files: Vec::new(),
            mark: Mark::Sending,
            expires_ms: None,
            notice: false,
        };
        let to = open.key.clone();
        self.sending.push((local, to.clone(), message));
        if let Some(open) = &mut self.open {
            open.scroll = 0;
            open.selected = None;
        }
        self.rebuild(Reload::Sends);
        vec![Action::Send { local, to, text }]
    }

    fn command(&mut self, line: &str) -> Vec<Action> {
        let (name, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        let rest = rest.trim();
        match name {
            "quit" | "q" | "exit" => return self.quit(),
            "help" => {
                self.help = true;
                return Vec::new();
            }
            "find" => {
                self.find_older(rest);
                return Vec::new();
            }
            "reply" => return self.reply(rest),
            "open" | "o" => return self.open_named(rest),
            _ => {}
        }
        match command::parse(name, rest, &self.context()) {
            Ok(cmd) => {
                self.notice = Some(Notice::info(format!("/{name}: working…")));
                vec![Action::Run(cmd)]
            }
            Err(why) => {
                self.notice = Some(Notice::error(why));
                Vec::new()
            }
        }
    }

    /// What a command may refer to without naming it.
    fn context(&self) -> Context {
        let open = self.open.as_ref();
        let selected = open.and_then(|o| o.selected.and_then(|i| o.messages.get(i)));
        Context {
            open: open.map(|o| o.key.clone()),
            request: open.is_some_and(|o| self.conversations.iter().any(|c| c.key == o.key && c.request)),
            selected: selected.cloned(),
            last_mine: open.and_then(|o| o.messages.iter().rev().find(|m| m.mine && m.hash.is_some()).cloned()),
            last_with_files: open.and_then(|o| o.messages.iter().rev().find(|m| !m.files.is_empty()).cloned()),
        }
    }

    /// Selects the newest message older than the selection that holds
    /// `text` (any case); `/find` alone repeats the last search.
    fn find_older(&mut self, text: &str) {
        let text = if text.is_empty() {
            self.find.clone().unwrap_or_default()
        } else {
            text.to_lowercase()
        };
        if text.is_empty() {
            self.notice = Some(Notice::error("/find TEXT: what to look for"));
            return;
        }
        self.find = Some(text.clone());
        let height = usize::from(self.message_area().height);
        let Some(open) = &mut self.open else { return };
        let before = open.selected.unwrap_or(open.messages.len());
        match open.messages[..before]
            .iter()
            .rposition(|m| m.body.to_lowercase().contains(&text))
        {
            Some(i) => {
                open.selected = Some(i);
                open.scroll = open.rendered.scroll_to_show(i, open.scroll, height);
                self.notice = Some(Notice::info(format!(
                    "found {text:?}: /find again for older, Esc to leave"
                )));
            }
            None => self.notice = Some(Notice::error(format!("{text:?} is not in older messages"))),
        }
    }

    /// Sends `text` quoting the selected message's first line.
    fn reply(&mut self, text: &str) -> Vec<Action> {
        let Some(quoted) = self.context().selected else {
            self.notice = Some(Notice::error("select a message first (Alt-↑), then /reply TEXT"));
            return Vec::new();
        };
        if text.is_empty() {
            self.notice = Some(Notice::error("/reply TEXT: what to answer"));
            return Vec::new();
        }
        let first = quoted.body.lines().next().unwrap_or_default();
        let first: String = first.chars().take(80).collect();
        self.send(format!("> {}: {first}\n{text}", quoted.sender))
    }
}

#[cfg(test)]
#[path = "model_tests.rs"]
pub(super) mod tests;
