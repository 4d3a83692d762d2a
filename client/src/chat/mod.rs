//! `allium chat`: the full-screen messenger (`docs/chat.md`).
//!
//! - [`model`]: the screen's state, changed only by events, with no I/O;
//!   [`view`] draws it (a pure function), laid out by [`lines`] and
//!   [`wrap`]; [`input`] is the line being typed; [`command`] reads slash
//!   commands.
//! - The network tasks (long-poll receive, groups, sends, commands) run
//!   in their own sessions and report as events; the loop here applies
//!   events, carries out the model's actions and draws, only when
//!   something happened (and once a second for the clock).

pub mod command;
pub mod data;
pub mod input;
pub mod lines;
pub mod model;
mod net;
mod terminal;
pub mod theme;
pub mod view;
pub mod wrap;

use std::io::IsTerminal as _;
use std::time::Duration;

use ratatui::crossterm::event::{self as term, KeyEventKind};
use tokio::sync::mpsc;

use self::model::{Action, Event, Model, Notice, Outcome};
use self::net::SendJob;
use crate::error::{Error, Result};
use crate::home::Home;
use crate::messenger::Messenger;

/// How `allium chat` was started.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Which connections go through Tor: off, seeds, seeds and guards.
    pub tor: &'static str,
    /// Draw in colour (not when `NO_COLOR` is set).
    pub color: bool,
}

/// Whether colours may be used: `NO_COLOR` unset or empty
/// (<https://no-color.org>).
pub fn color_allowed() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// The screen's side of the loop: the model, the home it reads, and where
/// jobs go.
struct Ui {
    model: Model,
    home: Home,
    sends: mpsc::Sender<SendJob>,
    commands: mpsc::Sender<command::Command>,
}

impl Ui {
    /// Applies `event` and carries out what the model asks, until nothing
    /// is left.
    fn handle(&mut self, event: Event) {
        let mut queue = std::collections::VecDeque::from([event]);
        while let Some(event) = queue.pop_front() {
            // Something changed in the home: the list first, then the event
            // (which may reload the open conversation).
            if matches!(event, Event::Arrived(_)) {
                let list = match data::conversations(&self.home) {
                    Ok(list) => Event::List(list),
                    Err(e) => Event::Notice(Notice::error(e.to_string())),
                };
                let actions = self.model.apply(list);
                self.act(actions, &mut queue);
            }
            let actions = self.model.apply(event);
            self.act(actions, &mut queue);
        }
    }

    fn act(&mut self, actions: Vec<Action>, queue: &mut std::collections::VecDeque<Event>) {
        for action in actions {
            let tail = matches!(action, Action::LoadTail(_));
            match action {
                Action::Load(key) | Action::LoadTail(key) => {
                    let limit = if tail { model::TAIL } else { data::MAX_LOADED };
                    queue.push_back(match data::messages(&self.home, &key, limit) {
                        Ok(messages) if tail => Event::LoadedTail(key, messages),
                        Ok(messages) => Event::Loaded(key, messages),
                        Err(e) => Event::Notice(Notice::error(e.to_string())),
                    });
                }
                Action::Send { local, to, text } => {
                    panic_hook_for_tests(&text);
                    if self.sends.try_send(SendJob { local, to, text }).is_err() {
                        let why = "too many messages wait to be sent".to_owned();
                        queue.push_back(Event::Sent(local, Outcome::Failed(why)));
                    }
                }
                Action::Run(cmd) => {
                    if self.commands.try_send(cmd).is_err() {
                        queue.push_back(Event::Notice(Notice::error("too many commands wait: try again")));
                    }
                }
                Action::Quit => {}
            }
        }
    }
}

/// **Test hook**: `ALLIUM_TEST_PANIC_ON=TEXT` makes sending exactly TEXT
/// panic, so a test can see the terminal given back after a panic. Unset,
/// it costs one environment lookup per message typed.
fn panic_hook_for_tests(text: &str) {
    if std::env::var("ALLIUM_TEST_PANIC_ON").is_ok_and(|t| t == text) {
        panic!("ALLIUM_TEST_PANIC_ON: a panic asked for by a test");
    }
}

/// Reads the terminal's events on a thread of their own (crossterm's read
/// blocks) and hands them to the loop.
fn read_terminal(events: mpsc::Sender<Event>) {
    std::thread::spawn(move || {
        loop {
            let event = match term::read() {
                Ok(term::Event::Key(k)) if k.kind != KeyEventKind::Release => Event::Key(k),
                Ok(term::Event::Paste(text)) => Event::Paste(text),
                Ok(term::Event::Resize(w, h)) => Event::Resize(w, h),
                Ok(_) => continue,
                // The terminal went away.
                Err(_) => Event::Quit,
            };
            let quit = event == Event::Quit;
            if events.blocking_send(event).is_err() || quit {
                return;
            }
        }
    });
}

/// SIGTERM, SIGHUP and SIGINT quit cleanly (the terminal is given back).
fn on_signals(events: mpsc::Sender<Event>) -> Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let io = |e: std::io::Error| Error::Usage(format!("cannot watch for signals: {e}"));
    let mut term = signal(SignalKind::terminate()).map_err(io)?;
    let mut hup = signal(SignalKind::hangup()).map_err(io)?;
    let mut int = signal(SignalKind::interrupt()).map_err(io)?;
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = hup.recv() => {}
            _ = int.recv() => {}
        }
        let _ = events.send(Event::Quit).await;
    });
    Ok(())
}

/// Runs the chat screen until the user quits. `main` long-polls the
/// inbox; `siblings` (sessions over the same home) poll the groups, send
/// and run commands; `home` is read for what the screen shows.
pub async fn run(main: Messenger, siblings: [Messenger; 3], home: Home, options: Options) -> Result<i32> {
    if !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal() {
        return Err(Error::Usage(
            "allium chat needs a terminal (for scripts: send, inbox, watch --json)".into(),
        ));
    }
    let terminal_error = |e: std::io::Error| Error::Usage(format!("cannot use the terminal: {e}"));
    let (events_tx, mut events) = mpsc::channel(net::QUEUE);
    on_signals(events_tx.clone())?;
    let mut screen = terminal::Screen::enter().map_err(terminal_error)?;
    read_terminal(events_tx.clone());
    let (sends, commands) = net::start(main, siblings, events_tx, options.tor);
    let size = screen.terminal.size().map_err(terminal_error)?;
    let mut ui = Ui {
        model: Model::new((size.width, size.height), options.color, crate::now_ms()),
        home,
        sends,
        commands,
    };
    ui.handle(Event::Arrived(Vec::new()));
    let mut clock = tokio::time::interval(Duration::from_secs(1));
    clock.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        screen.draw(&ui.model).map_err(terminal_error)?;
        let event = tokio::select! {
            event = events.recv() => event.unwrap_or(Event::Quit),
            _ = clock.tick() => Event::Tick(crate::now_ms()),
        };
        ui.handle(event);
        // Whatever else is queued is applied before the next frame.
        while let Ok(event) = events.try_recv() {
            ui.handle(event);
        }
        if ui.model.quitting() {
            break;
        }
    }
    // A message typed just before quitting is not in the outbox until it
    // is sealed: let the sends finish, for a while.
    let deadline = tokio::time::Instant::now() + QUIT_GRACE;
    while ui.model.in_flight() > 0 {
        let text = format!(
            "sending {} message(s) before quitting (Ctrl-C again: quit now)…",
            ui.model.in_flight()
        );
        ui.model.apply(Event::Notice(Notice::info(text)));
        screen.draw(&ui.model).map_err(terminal_error)?;
        let event = tokio::select! {
            event = events.recv() => event.unwrap_or(Event::Quit),
            () = tokio::time::sleep_until(deadline) => break,
        };
        match event {
            Event::Quit => break,
            Event::Key(k)
                if k.code == term::KeyCode::Char('c') && k.modifiers.contains(term::KeyModifiers::CONTROL) =>
            {
                break;
            }
            Event::Key(_) => {}
            event => ui.handle(event),
        }
    }
    let unsent = ui.model.in_flight();
    drop(screen);
    if unsent > 0 {
        eprintln!("allium: quit before {unsent} message(s) reached the outbox: they were not sent");
        return Ok(crate::cli::EXIT_NOTHING);
    }
    Ok(crate::cli::EXIT_OK)
}

/// How long quitting waits for sends in flight.
const QUIT_GRACE: Duration = Duration::from_secs(15);
