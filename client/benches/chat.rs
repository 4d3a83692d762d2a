//! `allium chat` in process, with 10,000 messages in the open
//! conversation (`docs/chat.md`: a keypress on screen within 16 ms):
//!
//! - `chat/key_and_frame`: one letter applied to the [`Model`] and a full
//!   frame drawn by [`view::draw`] into a 120x40 `TestBackend` (the diff
//!   included; the bytes to a real terminal are not);
//! - `chat/page_and_frame`: the same for PgUp/PgDn (a whole new pane);
//! - `chat/tick_frame`: the clock's event and its frame, what the idle
//!   screen does once a second;
//! - `chat/enter_and_frame`: Enter on a typed line (the message shown at
//!   once as sending: the conversation laid out again) and its frame;
//! - `chat/render_10k`: [`lines::render`] of all 10,000 messages at the
//!   pane's width, the relayout on a new message or a resize;
//! - `chat/load_10k`: [`data::messages`] reading them from a home, and
//!   `chat/history_10k`: the history query alone ([`Home::history`]).
//!
//! The messages are alternately received and sent, 20 to 200 characters
//! of words (the longer ones wrap), one a minute. Run:
//! `cargo bench -p allium-client --bench chat`.
#![allow(clippy::unwrap_used, missing_docs)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use allium_client::chat::model::{ConvKey, Event, Message, Model, Summary};
use allium_client::chat::{data, lines, view};
use allium_client::home::{Home, IdentitySource};
use allium_common::AccountId;
use criterion::{Criterion, criterion_group, criterion_main};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

const MESSAGES: usize = 10_000;
const SIZE: (u16, u16) = (120, 40);
/// The conversation pane's inside at 120 columns (the list takes 30,
/// the borders 2).
const PANE_WIDTH: usize = 88;
const NOW_MS: u64 = 1_700_000_000_000;
/// Keys typed before the input is cleared, so it stays one row.
const KEYS_PER_LINE: u64 = 50;

const WORDS: &[&str] = &[
    "the", "draft", "is", "in", "shared", "folder", "tomorrow", "morning", "works", "for", "me", "can", "you", "send",
    "photo", "again", "meeting", "moved", "to", "three", "o'clock", "thanks", "reading", "it", "now", "sounds", "good",
    "train", "late", "by", "twenty", "minutes", "coffee", "after", "lunch", "keys", "are", "on", "table", "did", "see",
    "new", "version", "already", "network", "was", "slow", "today", "but", "message", "arrived",
];

/// Message `i`'s body: 20 to 200 characters of words (as `allium-bench
/// chat` writes them).
fn body(i: usize) -> String {
    let mut x = (i as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let target = 20 + (next() % 181) as usize;
    let mut out = String::with_capacity(target + 12);
    while out.len() < target {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(WORDS[(next() % WORDS.len() as u64) as usize]);
    }
    out.truncate(target);
    out.truncate(out.trim_end().len());
    out
}

fn bob() -> AccountId {
    AccountId::from_x25519([2; 32])
}

/// A home with `MESSAGES` messages with bob, alternately received and sent.
fn home() -> (tempfile::TempDir, Home) {
    allium_common::sodium::init();
    let dir = tempfile::tempdir().unwrap();
    let mut home = Home::create(&dir.path().join("home"), &[7; 32], IdentitySource::Bip39).unwrap();
    for i in 0..MESSAGES {
        let sent = NOW_MS - 60_000 * (MESSAGES - i) as u64;
        let hash = format!("bench-chat-{i:06}");
        if i % 2 == 0 {
            home.record_incoming(&hash, bob(), sent, sent + 800, &body(i)).unwrap();
        } else {
            home.record_outgoing(&hash, bob(), sent, &body(i)).unwrap();
        }
    }
    (dir, home)
}

/// The screen with bob's conversation open, as the loop builds it.
fn model(messages: Vec<Message>) -> Model {
    let mut m = Model::new(SIZE, true, NOW_MS);
    let summary = |key, name: &str| Summary {
        key,
        name: name.into(),
        request: false,
        last: Some((NOW_MS - 60_000, "last".into())),
        disappearing: None,
    };
    m.apply(Event::List(vec![
        summary(ConvKey::Peer(bob()), "bob"),
        summary(ConvKey::Peer(AccountId::from_x25519([3; 32])), "carol"),
    ]));
    m.apply(Event::Loaded(ConvKey::Peer(bob()), messages));
    assert_eq!(m.open().unwrap().messages.len(), MESSAGES);
    m
}

fn key(code: KeyCode) -> Event {
    Event::Key(KeyEvent::new(code, KeyModifiers::NONE))
}

fn terminal(m: &Model) -> Terminal<TestBackend> {
    let mut t = Terminal::new(TestBackend::new(SIZE.0, SIZE.1)).unwrap();
    t.draw(|f| view::draw(f, m)).unwrap();
    t
}

fn chat(c: &mut Criterion) {
    let (_dir, home) = home();
    let peer = ConvKey::Peer(bob());
    let messages = data::messages(&home, &peer, data::MAX_LOADED).unwrap();
    let rows = lines::render(&messages, PANE_WIDTH, true, NOW_MS).rows();
    println!("{MESSAGES} messages: {rows} rows at {PANE_WIDTH} columns");
    let mut g = c.benchmark_group("chat");

    let mut m = model(messages.clone());
    let mut t = terminal(&m);
    g.bench_function("key_and_frame", |b| {
        b.iter_custom(|iters| {
            let mut spent = Duration::ZERO;
            for i in 0..iters {
                if i % KEYS_PER_LINE == 0 {
                    m.apply(Event::Key(KeyEvent::new(KeyCode::Char('u'), KeyModifiers::CONTROL)));
                }
                let letter = char::from(b'a' + (i % 26) as u8);
                let start = Instant::now();
                black_box(m.apply(key(KeyCode::Char(letter))));
                t.draw(|f| view::draw(f, &m)).unwrap();
                spent += start.elapsed();
            }
            spent
        })
    });
    // PgUp 100 pages back, then PgDn 100 pages forward: every press moves.
    m.apply(Event::Key(KeyEvent::new(KeyCode::Char('u'), KeyModifiers::CONTROL)));
    g.bench_function("page_and_frame", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for i in 0..iters {
                let code = if i % 200 < 100 {
                    KeyCode::PageUp
                } else {
                    KeyCode::PageDown
                };
                black_box(m.apply(key(code)));
                t.draw(|f| view::draw(f, &m)).unwrap();
            }
            start.elapsed()
        })
    });
    m.apply(key(KeyCode::Esc));
    g.bench_function("tick_frame", |b| {
        let mut now = NOW_MS;
        b.iter(|| {
            now += 1_000;
            black_box(m.apply(Event::Tick(now)));
            t.draw(|f| view::draw(f, &m)).unwrap();
        })
    });

    g.sample_size(20);
    g.bench_function("enter_and_frame", |b| {
        b.iter_custom(|iters| {
            let mut spent = Duration::ZERO;
            for _ in 0..iters {
                m.apply(key(KeyCode::Char('o')));
                m.apply(key(KeyCode::Char('k')));
                let start = Instant::now();
                black_box(m.apply(key(KeyCode::Enter)));
                t.draw(|f| view::draw(f, &m)).unwrap();
                spent += start.elapsed();
            }
            spent
        })
    });
    g.bench_function("render_10k", |b| {
        b.iter(|| lines::render(black_box(&messages), PANE_WIDTH, true, NOW_MS))
    });
    g.bench_function("load_10k", |b| {
        b.iter(|| data::messages(&home, black_box(&peer), data::MAX_LOADED).unwrap())
    });
    g.bench_function("history_10k", |b| {
        b.iter(|| home.history(Some(black_box(&bob())), data::MAX_LOADED).unwrap())
    });
    g.finish();
}

criterion_group!(benches, chat);
criterion_main!(benches);
