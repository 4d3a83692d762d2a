//! Snapshots: the screen drawn into ratatui's test backend, compared as
//! text row by row.

use ratatui::Terminal;
use ratatui::backend::TestBackend;

use super::super::model::tests::{bob, carol, chatting, said, summary};
use super::super::model::{Conn, ConvKey, Event, Mark, Model, Status};
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::*;

/// The screen as cells.
fn buffer(model: &Model) -> ratatui::buffer::Buffer {
    let (w, h) = model.size;
    let mut terminal = Terminal::new(TestBackend::new(w, h)).expect("test backend");
    terminal.draw(|f| draw(f, model)).expect("draw");
    terminal.backend().buffer().clone()
}

/// The screen as rows of text.
fn screen(model: &Model) -> Vec<String> {
    let (w, h) = model.size;
    let buffer = buffer(model);
    (0..h)
        .map(|y| {
            let mut row = String::new();
            let mut skip = 0;
            for x in 0..w {
                if skip > 0 {
                    skip -= 1;
                    continue;
                }
                let symbol = buffer[(x, y)].symbol();
                skip = super::super::wrap::str_width(symbol).saturating_sub(1);
                row.push_str(symbol);
            }
            row.trim_end().to_owned()
        })
        .collect()
}

fn print(rows: &[String]) -> String {
    rows.iter().map(|r| format!("{r:?},\n")).collect()
}

fn small() -> Model {
    let mut m = chatting(0);
    m.apply(Event::Resize(72, 18));
    let mut list = vec![
        summary(ConvKey::Peer(bob()), "bob", false),
        summary(
            ConvKey::Group(allium_common::group::GroupId::from_ed25519([5; 32])),
            "garden",
            false,
        ),
        summary(ConvKey::Peer(carol()), "carol", false),
        summary(
            ConvKey::Peer(allium_common::AccountId::from_x25519([9; 32])),
            "Mallory (05090909…)",
            true,
        ),
    ];
    list[1].last = Some((1_700_000_000_000, "who brings the \u{1b}[5mseeds?".into()));
    list[0].disappearing = Some(allium_common::content::Disappear {
        after: allium_common::content::DisappearAfter::Read,
        ms: 3_600_000,
    });
    m.apply(Event::List(list));
    m.apply(Event::Arrived(vec![(ConvKey::Peer(carol()), 2)]));
    let mut read = said("you", "thanks, reading it", 1_700_000_060_000);
    read.mark = Mark::Read;
    let mut pending = said("you", "and the photo", 1_700_000_120_000);
    pending.mark = Mark::Pending("no swarm member answered".into());
    pending.hash = None;
    let mut photo = said("bob", "here", 1_700_000_180_000);
    photo.files = vec![crate::files::FileNote {
        index: 0,
        name: "photo.jpg".into(),
        size: 3_100_000,
        content_type: "image/jpeg".into(),
        saved: None,
    }];
    m.apply(Event::Loaded(
        ConvKey::Peer(bob()),
        vec![said("bob", "the draft is in", 1_700_000_000_000), read, pending, photo],
    ));
    m.apply(Event::Status(Status {
        conn: Conn::Online,
        tor: "seeds",
        node_list_ms: Some(1_700_000_000_000 - 180_000),
        guards: (2, 2),
        outbox: 1,
    }));
    m
}

#[test]
fn the_list_and_a_conversation() {
    let rows = screen(&small());
    let expected = [
        "┌ Conversations ───┐┌ bob ─────────────────── disappears 1h after read ┐",
        "│bob               ││                                                  │",
        "│                  ││                                                  │",
        "│#garden           ││                                                  │",
        "│ who brings the \\…││                                                  │",
        "│carol          (2)││                                                  │",
        "│                  ││22:13 bob: the draft is in                        │",
        "│─ requests (1) ───││22:14 you: thanks, reading it ✓✓ read             │",
        "│Mallory (0509090… ││22:15 you: and the photo                          │",
        "│                  ││           … pending: no swarm member answered    │",
        "│                  ││22:16 bob: here                                   │",
        "│                  ││           [file 0: photo.jpg, 3.1 MB]            │",
        "└──────────────────┘└──────────────────────────────────────────────────┘",
        "",
        "┌ to bob (Enter sends, Alt-Enter new line) ────────────────────────────┐",
        "│                                                                      │",
        "└──────────────────────────────────────────────────────────────────────┘",
        "online · Tor seeds · node list 3 min old · guards 2/2 · outbox 1 · ? ke…",
    ];
    assert_eq!(rows, expected, "\n{}", print(&rows));
}

#[test]
fn a_narrow_terminal_shows_the_conversation_alone() {
    let mut m = small();
    m.apply(Event::Resize(40, 12));
    for c in "a long line that wraps in the input box of a narrow terminal".chars() {
        m.apply(Event::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE)));
    }
    let rows = screen(&m);
    let expected = [
        "┌ bob +2 unread, Tab ⇥ ────────────────┐",
        "│           … pending: no swarm member │",
        "│           answered                   │",
        "│22:16 bob: here                       │",
        "│           [file 0: photo.jpg, 3.1 MB]│",
        "└──────────────────────────────────────┘",
        "",
        "┌ to bob ──────────────────────────────┐",
        "│a long line that wraps in the input bo│",
        "│x of a narrow terminal                │",
        "└──────────────────────────────────────┘",
        "online · Tor seeds · node list 3 min ol…",
    ];
    assert_eq!(rows, expected, "\n{}", print(&rows));
}

#[test]
fn a_hostile_message_is_shown_escaped() {
    let mut m = small();
    let mut evil = said(
        "bob",
        "\u{1b}[2J\u{1b}]0;owned\u{7}\u{202e}gnp.exe\nline two\r05ab: forged",
        1_700_000_200_000,
    );
    evil.files = vec![crate::files::FileNote {
        index: 0,
        name: "\u{1b}[31mred.txt".into(),
        size: 10,
        content_type: "text/plain".into(),
        saved: None,
    }];
    m.apply(Event::Loaded(ConvKey::Peer(bob()), vec![evil]));
    let rows = screen(&m);
    let expected = [
        "┌ Conversations ───┐┌ bob ─────────────────── disappears 1h after read ┐",
        "│bob               ││                                                  │",
        "│                  ││                                                  │",
        "│#garden           ││                                                  │",
        "│ who brings the \\…││                                                  │",
        "│carol          (2)││                                                  │",
        "│                  ││                                                  │",
        "│─ requests (1) ───││                                                  │",
        "│Mallory (0509090… ││                                                  │",
        "│                  ││22:16 bob: \\e[2J\\e]0;owned\\u{0007}\\u{202e}gnp.exe │",
        "│                  ││           line two\\r05ab: forged                 │",
        "│                  ││           [file 0: \\e[31mred.txt, 10 B]          │",
        "└──────────────────┘└──────────────────────────────────────────────────┘",
        "",
        "┌ to bob (Enter sends, Alt-Enter new line) ────────────────────────────┐",
        "│                                                                      │",
        "└──────────────────────────────────────────────────────────────────────┘",
        "online · Tor seeds · node list 3 min old · guards 2/2 · outbox 1 · ? ke…",
    ];
    assert_eq!(rows, expected, "\n{}", print(&rows));
    assert!(!rows.concat().chars().any(char::is_control));
}

#[test]
fn scrolled_back_with_a_selection_and_the_help() {
    let mut m = chatting(40);
    m.apply(Event::Resize(64, 12));
    m.apply(Event::Key(KeyEvent::new(KeyCode::PageUp, KeyModifiers::NONE)));
    m.apply(Event::Key(KeyEvent::new(KeyCode::Up, KeyModifiers::ALT)));
    let rows = screen(&m);
    let expected = [
        "┌ Conversations ───┐┌ bob ─────────────────────────────────────┐",
        "│bob               ││22:13 you: message 31 ✓                   │",
        "│                  ││22:13 bob: message 32                     │",
        "│carol             ││22:13 you: message 33 ✓                   │",
        "│                  ││22:13 bob: message 34                     │",
        "│─ requests (1) ───││22:13 you: message 35 ✓                   │",
        "└──────────────────┘└──────────────────── ↓ 4 more rows (PgDn) ┘",
        "",
        "┌ to bob (Enter sends, Alt-Enter new line) ────────────────────┐",
        "│                                                              │",
        "└──────────────────────────────────────────────────────────────┘",
        "connecting · Tor off · no node list · guards 0/0 · outbox 0 · ?…",
    ];
    assert_eq!(rows, expected, "\n{}", print(&rows));
    // The selection (the newest message in view) is drawn reversed.
    let cells = buffer(&m);
    let reversed = |y: u16| cells[(25, y)].modifier.contains(ratatui::style::Modifier::REVERSED);
    assert!(reversed(5) && !reversed(4), "message 35 only");
    m.apply(Event::Key(KeyEvent::new(KeyCode::Char('?'), KeyModifiers::NONE)));
    let rows = screen(&m);
    let expected = [
        "┌ Conversations ───┐┌ bob ─────────────────────────────────────┐",
        "│bob  ┌ Keys and commands ───────────────────────────────┐     │",
        "│     │Enter                send                         │     │",
        "│carol│Alt-Enter, Ctrl-J    new line                     │     │",
        "│     │Tab, Shift-Tab       next, previous conversation …│     │",
        "│─ req│PgUp, PgDn           scroll back, forward         │     │",
        "└─────│Alt-↑, Alt-↓         select an older, newer messa…│gDn) ┘",
        "      │↑, ↓                 recall what you sent (empty …│",
        "┌ to b│Ctrl-F               find (/find TEXT)            │─────┐",
        "│     │Esc                  clear the selection and the …│     │",
        "└─────└──────────────────────────────────────────────────┘─────┘",
        "connecting · Tor off · no node list · guards 0/0 · outbox 0 · ?…",
    ];
    assert_eq!(rows, expected, "\n{}", print(&rows));
}

#[test]
fn no_color_means_no_colour() {
    let draw_styles = |color: bool| {
        let mut m = small();
        m.color = color;
        buffer(&m)
            .content()
            .iter()
            .filter(|c| c.fg != ratatui::style::Color::Reset)
            .count()
    };
    assert!(draw_styles(true) > 0, "colours are used");
    assert_eq!(draw_styles(false), 0, "NO_COLOR: none");
}

#[test]
fn right_to_left_and_wide_text_keep_the_columns() {
    let mut m = small();
    let messages = vec![
        said(
            "bob",
            "مرحبا، هل وصلت البذور؟ (did the seeds arrive?) שלום עולם",
            1_700_000_000_000,
        ),
        said(
            "bob",
            "漢字と絵文字 🌱🌱🌱 and e\u{301}e\u{301} combining, long enough to wrap",
            1_700_000_060_000,
        ),
    ];
    m.apply(Event::Loaded(ConvKey::Peer(bob()), messages));
    let w = m.size.0;
    let buffer = buffer(&m);
    // Every row of the panes still ends in its border at the last column,
    // and the list's border stays put: nothing pushed a column.
    for y in 0..12 {
        assert_eq!(
            buffer[(w - 1, y)].symbol(),
            if y == 0 { "┐" } else { "│" },
            "row {y}:\n{}",
            print(&screen(&m))
        );
        assert_eq!(buffer[(19, y)].symbol(), if y == 0 { "┐" } else { "│" }, "row {y}");
    }
    let rows = screen(&m);
    assert!(rows.iter().any(|r| r.contains("مرحبا")), "{}", print(&rows));
    assert!(rows.iter().any(|r| r.contains("漢字と絵文字")), "{}", print(&rows));
    // Wrapped by width, not clipped: the ends of both messages are shown.
    let all = rows.concat();
    for end in ["שלום עולם", "to wrap"] {
        assert!(all.contains(end), "{end:?} was cut:\n{}", print(&rows));
    }
}
