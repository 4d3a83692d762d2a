//! The model driven by events alone: no terminal, no network.

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::*;

pub(in crate::chat) fn bob() -> AccountId {
    AccountId::from_x25519([2; 32])
}

pub(in crate::chat) fn carol() -> AccountId {
    AccountId::from_x25519([3; 32])
}

pub(in crate::chat) fn summary(key: ConvKey, name: &str, request: bool) -> Summary {
    Summary {
        key,
        name: name.into(),
        request,
        last: None,
        disappearing: None,
    }
}

pub(in crate::chat) fn said(sender: &str, body: &str, sent_ms: u64) -> Message {
    Message {
        hash: Some(format!("h-{sender}-{sent_ms}")),
        mine: sender == "you",
        sender: sender.into(),
        sent_ms,
        body: body.into(),
        files: Vec::new(),
        mark: if sender == "you" { Mark::Stored } else { Mark::Incoming },
        expires_ms: None,
        notice: false,
    }
}

fn key(code: KeyCode) -> Event {
    Event::Key(KeyEvent::new(code, KeyModifiers::NONE))
}

fn with(code: KeyCode, m: KeyModifiers) -> Event {
    Event::Key(KeyEvent::new(code, m))
}

fn typed(model: &mut Model, text: &str) -> Vec<Action> {
    let mut actions = Vec::new();
    for c in text.chars() {
        actions.extend(model.apply(key(KeyCode::Char(c))));
    }
    actions
}

/// A model with bob, carol and a request from a stranger, bob open with
/// `n` messages.
pub(in crate::chat) fn chatting(n: usize) -> Model {
    let mut m = Model::new((80, 24), false, 1_700_000_000_000);
    let stranger = AccountId::from_x25519([9; 32]);
    let actions = m.apply(Event::List(vec![
        summary(ConvKey::Peer(bob()), "bob", false),
        summary(ConvKey::Peer(carol()), "carol", false),
        summary(ConvKey::Peer(stranger), "Mallory (05090909…)", true),
    ]));
    assert_eq!(
        actions,
        [Action::Load(ConvKey::Peer(bob()))],
        "the first conversation opens"
    );
    let messages = (0..n)
        .map(|i| {
            said(
                if i % 2 == 0 { "bob" } else { "you" },
                &format!("message {i}"),
                1_700_000_000_000 + i as u64,
            )
        })
        .collect();
    m.apply(Event::Loaded(ConvKey::Peer(bob()), messages));
    m
}

#[test]
fn enter_sends_to_the_open_conversation_and_shows_it_at_once() {
    let mut m = chatting(2);
    assert!(typed(&mut m, "hello bob").is_empty());
    let actions = m.apply(key(KeyCode::Enter));
    let [Action::Send { local, to, text }] = actions.as_slice() else {
        panic!("{actions:?}")
    };
    assert_eq!((to, text.as_str()), (&ConvKey::Peer(bob()), "hello bob"));
    assert_eq!(m.input(), "");
    let open = m.open().expect("open");
    let last = open.messages.last().expect("shown");
    assert_eq!((last.body.as_str(), &last.mark), ("hello bob", &Mark::Sending));
    // Stored: the home has it now, so the conversation's tail is read again.
    let reload = m.apply(Event::Sent(*local, Outcome::Stored("h".into())));
    assert_eq!(reload, [Action::LoadTail(ConvKey::Peer(bob()))]);
}

#[test]
fn a_refused_send_stays_on_screen_marked_failed() {
    let mut m = chatting(0);
    typed(&mut m, "too much");
    let actions = m.apply(key(KeyCode::Enter));
    let [Action::Send { local, .. }] = actions.as_slice() else {
        panic!()
    };
    m.apply(Event::Sent(*local, Outcome::Failed("message too large".into())));
    // The reload does not lose it: it is not in the home.
    m.apply(Event::Loaded(ConvKey::Peer(bob()), Vec::new()));
    let open = m.open().expect("open");
    assert_eq!(open.messages.len(), 1);
    assert_eq!(open.messages[0].mark, Mark::Failed("message too large".into()));
    assert!(m.notice().is_some_and(|n| n.error));
}

#[test]
fn tab_moves_between_conversations_and_clears_their_unread_count() {
    let mut m = chatting(1);
    m.apply(Event::Arrived(vec![
        (ConvKey::Peer(carol()), 2),
        (ConvKey::Peer(bob()), 1),
    ]));
    assert_eq!(m.unread(&ConvKey::Peer(carol())), 2);
    assert_eq!(
        m.unread(&ConvKey::Peer(bob())),
        0,
        "the open conversation has nothing unread"
    );
    let actions = m.apply(key(KeyCode::Tab));
    assert_eq!(actions, [Action::Load(ConvKey::Peer(carol()))]);
    assert_eq!(m.unread(&ConvKey::Peer(carol())), 0);
    m.apply(Event::Loaded(ConvKey::Peer(carol()), Vec::new()));
    assert_eq!(
        m.apply(with(KeyCode::BackTab, KeyModifiers::SHIFT)),
        [Action::Load(ConvKey::Peer(bob()))]
    );
}

#[test]
fn news_for_the_open_conversation_reloads_it() {
    let mut m = chatting(1);
    assert_eq!(
        m.apply(Event::Arrived(vec![(ConvKey::Peer(bob()), 1)])),
        [Action::LoadTail(ConvKey::Peer(bob()))],
        "new messages: the newest are read again"
    );
    // Receipts and the like name no conversation: all of the open one is read again.
    assert_eq!(
        m.apply(Event::Arrived(Vec::new())),
        [Action::Load(ConvKey::Peer(bob()))]
    );
}

#[test]
fn a_request_cannot_be_answered_by_typing() {
    let mut m = chatting(0);
    m.apply(with(KeyCode::BackTab, KeyModifiers::SHIFT));
    let stranger = AccountId::from_x25519([9; 32]);
    m.apply(Event::Loaded(ConvKey::Peer(stranger), vec![said("Mallory", "hi", 1)]));
    typed(&mut m, "who are you");
    assert!(m.apply(key(KeyCode::Enter)).is_empty());
    assert!(m.notice().is_some_and(|n| n.text.contains("/accept")));
    typed(&mut m, "/accept mallory");
    let actions = m.apply(key(KeyCode::Enter));
    assert_eq!(
        actions,
        [Action::Run(Command::Accept {
            account: stranger,
            name: Some("mallory".into())
        })]
    );
}

#[test]
fn page_up_scrolls_back_and_new_messages_do_not_move_the_view() {
    let mut m = chatting(100);
    let page = usize::from(m.message_area().height) - 1;
    m.apply(key(KeyCode::PageUp));
    assert_eq!(m.open().map(|o| o.scroll), Some(page));
    let mut more = m.open().map(|o| o.messages.clone()).unwrap_or_default();
    more.push(said("bob", "new", 1_700_000_001_000));
    m.apply(Event::Loaded(ConvKey::Peer(bob()), more));
    assert_eq!(m.open().map(|o| o.scroll), Some(page + 1), "one row more below");
    for _ in 0..100 {
        m.apply(key(KeyCode::PageUp));
    }
    let open = m.open().expect("open");
    assert_eq!(
        open.rendered
            .visible(usize::from(m.message_area().height), open.scroll)
            .start,
        0
    );
    m.apply(key(KeyCode::Esc));
    assert_eq!(m.open().map(|o| o.scroll), Some(0), "Esc goes back to the newest");
}

#[test]
fn find_selects_older_matches_one_by_one() {
    let mut m = chatting(50);
    typed(&mut m, "/find MESSAGE 1");
    m.apply(key(KeyCode::Enter));
    assert_eq!(
        m.open().and_then(|o| o.selected),
        Some(19),
        "message 19 is the newest holding it"
    );
    typed(&mut m, "/find");
    m.apply(key(KeyCode::Enter));
    assert_eq!(m.open().and_then(|o| o.selected), Some(18));
    typed(&mut m, "/find nowhere");
    m.apply(key(KeyCode::Enter));
    assert!(m.notice().is_some_and(|n| n.error));
}

#[test]
fn the_selected_message_is_what_unsend_and_reply_act_on() {
    let mut m = chatting(4);
    let alt = KeyModifiers::ALT;
    m.apply(with(KeyCode::Up, alt));
    m.apply(with(KeyCode::Up, alt));
    assert_eq!(m.open().and_then(|o| o.selected), Some(2));
    typed(&mut m, "/unsend");
    m.apply(key(KeyCode::Enter));
    assert!(m.notice().is_some_and(|n| n.text.contains("own")), "message 2 is bob's");
    typed(&mut m, "/reply yes");
    let actions = m.apply(key(KeyCode::Enter));
    let [Action::Send { text, .. }] = actions.as_slice() else {
        panic!("{actions:?}")
    };
    assert_eq!(text, "> bob: message 2\nyes");
    // Sending cleared the selection; the reply is message 4.
    m.apply(with(KeyCode::Up, alt));
    m.apply(with(KeyCode::Down, alt));
    assert_eq!(m.open().and_then(|o| o.selected), None, "past the newest: no selection");
    m.apply(with(KeyCode::Up, alt));
    m.apply(with(KeyCode::Up, alt));
    assert_eq!(m.open().and_then(|o| o.selected), Some(3));
    typed(&mut m, "/unsend");
    assert_eq!(
        m.apply(key(KeyCode::Enter)),
        [Action::Run(Command::Unsend {
            hash: "h-you-1700000000003".into()
        })]
    );
}

#[test]
fn editing_keys_and_the_history() {
    let mut m = chatting(0);
    typed(&mut m, "first");
    m.apply(key(KeyCode::Enter));
    typed(&mut m, "two");
    m.apply(with(KeyCode::Enter, KeyModifiers::ALT));
    typed(&mut m, "lines");
    assert_eq!(m.input(), "two\nlines");
    m.apply(with(KeyCode::Char('w'), KeyModifiers::CONTROL));
    assert_eq!(m.input(), "two\n");
    m.apply(with(KeyCode::Char('u'), KeyModifiers::CONTROL));
    m.apply(key(KeyCode::Up));
    assert_eq!(m.input(), "first");
    // `//` sends a text starting with a slash.
    m.apply(with(KeyCode::Char('u'), KeyModifiers::CONTROL));
    typed(&mut m, "//shrug");
    let actions = m.apply(key(KeyCode::Enter));
    assert!(
        matches!(actions.as_slice(), [Action::Send { text, .. }] if text == "/shrug"),
        "{actions:?}"
    );
}

#[test]
fn help_quit_and_bad_commands() {
    let mut m = chatting(0);
    m.apply(key(KeyCode::Char('?')));
    assert!(m.help_shown());
    m.apply(key(KeyCode::Char('x')));
    assert!(!m.help_shown());
    assert_eq!(m.input(), "", "the key that closed the help is not typed");
    typed(&mut m, "/frobnicate");
    assert!(m.apply(key(KeyCode::Enter)).is_empty());
    assert!(
        m.notice()
            .is_some_and(|n| n.error && n.text.contains("no such command"))
    );
    m.apply(key(KeyCode::F(1)));
    assert!(m.help_shown());
    assert_eq!(
        m.apply(with(KeyCode::Char('c'), KeyModifiers::CONTROL)),
        [Action::Quit],
        "Ctrl-C quits even with the help shown"
    );
    assert!(m.quitting());
}

#[test]
fn a_resize_lays_the_conversation_out_again() {
    let mut m = chatting(3);
    let before = m.open().map(|o| o.rendered.width());
    m.apply(Event::Resize(40, 12));
    let after = m.open().map(|o| o.rendered.width());
    assert_ne!(before, after);
    assert_eq!(after, Some(usize::from(m.message_area().width)));
}

#[test]
fn open_finds_a_conversation_by_name() {
    let mut m = chatting(0);
    typed(&mut m, "/open CAR");
    assert_eq!(m.apply(key(KeyCode::Enter)), [Action::Load(ConvKey::Peer(carol()))]);
    m.apply(Event::Loaded(ConvKey::Peer(carol()), Vec::new()));
    typed(&mut m, "/open bob");
    assert_eq!(m.apply(key(KeyCode::Enter)), [Action::Load(ConvKey::Peer(bob()))]);
    m.apply(Event::Loaded(ConvKey::Peer(bob()), Vec::new()));
    typed(&mut m, "/open nobody");
    assert!(m.apply(key(KeyCode::Enter)).is_empty());
    assert!(m.notice().is_some_and(|n| n.error));
}

/// The rows as text.
fn rows(r: &lines::Rendered) -> Vec<String> {
    r.lines(0..r.rows())
        .iter()
        .map(|l| l.spans.iter().map(|s| s.content.as_ref()).collect())
        .collect()
}

#[test]
fn a_reloaded_tail_is_merged_and_laid_out_as_a_full_layout_would_be() {
    let mut m = chatting(300);
    let all: Vec<Message> = m.open().map(|o| o.messages.clone()).unwrap_or_default();
    // The tail again, its newest message now read, and one new message.
    let mut tail = all[300 - TAIL..].to_vec();
    if let Some(last) = tail.last_mut() {
        last.mark = Mark::Read;
    }
    tail.push(said(
        "bob",
        "a new one that is long enough to wrap over two rows of the conversation",
        1_700_000_999_000,
    ));
    assert!(
        m.apply(Event::LoadedTail(ConvKey::Peer(bob()), tail.clone()))
            .is_empty()
    );
    let open = m.open().expect("open");
    assert_eq!(open.messages.len(), 301);
    assert_eq!(open.messages[299].mark, Mark::Read);
    let mut expected = all[..300 - TAIL].to_vec();
    expected.extend(tail);
    assert_eq!(open.messages, expected);
    let fresh = lines::render(&expected, open.rendered.width(), false, 1_700_000_000_000);
    assert_eq!(
        rows(&open.rendered),
        rows(&fresh),
        "incremental layout differs from a full one"
    );
    // A tail that does not meet what is loaded: everything again.
    let strangers: Vec<Message> = (0..TAIL)
        .map(|i| said("bob", "x", 1_800_000_000_000 + i as u64))
        .collect();
    assert_eq!(
        m.apply(Event::LoadedTail(ConvKey::Peer(bob()), strangers)),
        [Action::Load(ConvKey::Peer(bob()))]
    );
}

#[test]
fn a_send_lays_out_only_itself() {
    let mut m = chatting(50);
    typed(&mut m, "one more");
    let actions = m.apply(key(KeyCode::Enter));
    let [Action::Send { local, .. }] = actions.as_slice() else {
        panic!("{actions:?}")
    };
    let open = m.open().expect("open");
    let fresh = lines::render(&open.messages, open.rendered.width(), false, 1_700_000_000_000);
    assert_eq!(rows(&open.rendered), rows(&fresh));
    // Stored: the tail is read again; the message now comes from the home.
    assert_eq!(
        m.apply(Event::Sent(*local, Outcome::Stored("h".into()))),
        [Action::LoadTail(ConvKey::Peer(bob()))]
    );
    let mut tail: Vec<Message> = m.open().map(|o| o.messages[..50].to_vec()).unwrap_or_default();
    tail.push(said("you", "one more", 1_700_000_500_000));
    m.apply(Event::LoadedTail(ConvKey::Peer(bob()), tail.clone()));
    let open = m.open().expect("open");
    assert_eq!(open.messages, tail, "the sending copy is gone, the stored one shown");
    let fresh = lines::render(&tail, open.rendered.width(), false, 1_700_000_000_000);
    assert_eq!(rows(&open.rendered), rows(&fresh));
}
