//! `allium chat` end to end: two full-screen clients on pseudo-terminals
//! on a local network, their screens read through a terminal emulator.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use allium_tests::{TestNet, ok_lines as ok};

/// How long a message may take to cross the network under a loaded test
/// machine (the long poll wakes at once on a new message).
const ARRIVE: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_people_chat_on_full_screen_clients() {
    let net = TestNet::start(12).await.unwrap();
    let alice = net.client("alice");
    let bob = net.client("bob");
    let mallory = net.client("mallory");
    let (a_id, _) = alice.init();
    let (b_id, _) = bob.init();
    mallory.init();
    ok(&alice.run(&["contacts", "add", "bob", &b_id]));
    ok(&bob.run(&["contacts", "add", "alice", &a_id]));
    // A stranger's message full of terminal escapes waits as a request.
    let hostile = "\u{1b}]0;owned\u{7}\u{1b}[2J\u{1b}[31mred\u{202e}gnp.exe";
    ok(&mallory.run(&["send", &b_id, hostile]));

    let mut a = alice.chat(100, 30).unwrap();
    let mut b = bob.chat(100, 30).unwrap();
    a.wait_for_text("to bob", ARRIVE).unwrap();
    b.wait_for_text("to alice", ARRIVE).unwrap();
    assert!(a.alternate_screen(), "the chat takes the alternate screen");

    a.type_text("hello from a terminal").unwrap();
    a.enter().unwrap();
    a.wait_for("the message stored", ARRIVE, |s| {
        s.contents().lines().any(|l| l.contains("you: hello from a terminal ✓"))
    })
    .unwrap();
    b.wait_for_text("alice: hello from a terminal", ARRIVE).unwrap();

    // A resize during the conversation: the narrow layout, the text still there.
    b.resize(46, 16).unwrap();
    b.wait_for("the narrow layout", ARRIVE, |s| {
        !s.contents().contains("Conversations") && s.contents().contains("hello from a terminal")
    })
    .unwrap();
    b.type_text("hi alice, this line is long enough to wrap on a narrow screen")
        .unwrap();
    b.enter().unwrap();
    a.wait_for_text("bob: hi alice, this line is long enough", ARRIVE)
        .unwrap();
    b.resize(100, 30).unwrap();
    b.wait_for_text("Conversations", ARRIVE).unwrap();

    // The stranger's request: shown escaped, nothing reached the terminal raw.
    b.wait_for_text("requests (1)", ARRIVE).unwrap();
    b.tab().unwrap();
    b.wait_for_text("(request: /accept or /decline)", ARRIVE).unwrap();
    b.wait_for_text(r"\e]0;owned\u{0007}\e[2J\e[31mred\u{202e}gnp.exe", ARRIVE)
        .unwrap();
    let raw = b.raw();
    // (ESC[2J alone proves nothing: the screen clears itself on a resize.)
    for needle in [&b"\x1b]0;owned"[..], b"\x1b[31mred", b"\xe2\x80\xae"] {
        assert!(
            !raw.windows(needle.len()).any(|w| w == needle),
            "{needle:?} reached bob's terminal"
        );
    }
    b.type_text("can you hear me").unwrap();
    b.enter().unwrap();
    b.wait_for_text("this is a message request", ARRIVE).unwrap();

    // What the chat sent is the account's history, as the CLI sees it.
    let history = ok(&alice.run(&["--json", "history", "bob"]));
    let bodies: Vec<&str> = history.iter().filter_map(|l| l["body"].as_str()).collect();
    assert!(bodies.contains(&"hello from a terminal"), "{bodies:?}");

    // /quit and SIGTERM both give the terminal back. A message typed just
    // before /quit is sent first, not lost.
    b.send(b"\x1b[Z").unwrap(); // Shift-Tab: back to alice
    b.wait_for_text("to alice", ARRIVE).unwrap();
    b.type_text("last words before quitting").unwrap();
    b.enter().unwrap();
    b.type_text("/quit").unwrap();
    b.enter().unwrap();
    assert!(b.wait_exit(ARRIVE).unwrap().success());
    assert!(
        !b.alternate_screen() && !b.cursor_hidden(),
        "bob's terminal is restored"
    );
    let history = ok(&bob.run(&["--json", "history", "alice"]));
    assert!(
        history.iter().any(|l| l["body"] == "last words before quitting"),
        "{history:?}"
    );
    let pid = a.pid().unwrap();
    std::process::Command::new("kill")
        .arg(pid.to_string())
        .status()
        .unwrap();
    assert!(a.wait_exit(ARRIVE).unwrap().success());
    assert!(
        !a.alternate_screen() && !a.cursor_hidden(),
        "alice's terminal is restored"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_gives_the_terminal_back_and_says_why() {
    let net = TestNet::start(5).await.unwrap();
    let alice = net.client("alice");
    let bob = net.client("bob");
    alice.init();
    let (b_id, _) = bob.init();
    ok(&alice.run(&["contacts", "add", "bob", &b_id]));
    let env = [("ALLIUM_TEST_PANIC_ON", "boom"), ("RUST_BACKTRACE", "0")];
    let mut a = alice.chat_with(80, 24, &env).unwrap();
    a.wait_for_text("to bob", ARRIVE).unwrap();
    assert!(a.alternate_screen());
    a.type_text("boom").unwrap();
    a.enter().unwrap();
    let status = a.wait_exit(ARRIVE).unwrap();
    assert!(!status.success(), "a panic is a failure: {status}");
    assert!(!a.alternate_screen() && !a.cursor_hidden(), "the terminal is restored");
    // The panic message is printed after the restore, so it is readable.
    let raw = a.raw();
    let find = |needle: &[u8]| raw.windows(needle.len()).position(|w| w == needle);
    let left = find(b"\x1b[?1049l").expect("the alternate screen was left");
    let said = find(b"a panic asked for by a test").expect("the panic message was printed");
    assert!(left < said, "the message came before the restore");
    assert!(
        a.screen_text().contains("a panic asked for by a test"),
        "{}",
        a.screen_text()
    );
}
