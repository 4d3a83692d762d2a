//! Self-tests of the pseudo-terminal harness (`allium_tests::pty`), with
//! `/bin/sh` as the child: no Allium network needed.

use std::path::Path;
use std::time::Duration;

use allium_tests::pty::{self, Pty};

/// Upper bound for each wait; the tests normally take milliseconds.
const T: Duration = Duration::from_secs(5);

fn sh(script: &str, cols: u16, rows: u16) -> anyhow::Result<Pty> {
    pty::spawn(pty::command(Path::new("/bin/sh"), &["-c", script]), cols, rows)
}

#[test]
fn types_into_the_child_and_reads_its_screen() -> anyhow::Result<()> {
    let mut p = sh(r#"printf "hello\033[31m red\033[0m\n"; read x; echo "got:$x""#, 80, 24)?;
    p.wait_for_text("hello red", T)?;
    // The colour codes reach the raw log but not the text.
    let raw = p.raw();
    assert!(raw.windows(5).any(|w| w == b"\x1b[31m"), "{raw:?}");
    assert!(!p.screen_text().contains('\x1b'));
    assert_eq!(
        p.with_screen(|s| s.cell(0, 6).map(|c| c.fgcolor())),
        Some(vt100::Color::Idx(1))
    );
    p.type_text("abc")?;
    p.enter()?;
    p.wait_for_text("got:abc", T)?;
    let status = p.wait_exit(T)?;
    assert!(status.success(), "{status}");
    assert_eq!(p.rows()[0], "hello red");
    Ok(())
}

#[test]
fn resize_reaches_the_child_and_the_screen() -> anyhow::Result<()> {
    let mut p = sh("stty size; read x; stty size; read y", 80, 24)?;
    p.wait_for_text("24 80", T)?;
    assert_eq!(p.size(), (80, 24));
    p.resize(40, 10)?;
    assert_eq!((p.size(), p.rows().len()), ((40, 10), 10));
    p.enter()?;
    p.wait_for_text("10 40", T)?;
    Ok(())
}

#[test]
fn tracks_alternate_screen_and_cursor() -> anyhow::Result<()> {
    let script =
        r#"echo main; read x; printf '\033[?1049h\033[?25lALT'; read y; printf '\033[?1049l\033[?25h'; read z"#;
    let mut p = sh(script, 80, 24)?;
    p.wait_for_text("main", T)?;
    assert!(!p.alternate_screen() && !p.cursor_hidden());
    p.enter()?;
    p.wait_for("alternate screen", T, |s| {
        s.alternate_screen() && s.contents().contains("ALT")
    })?;
    assert!(p.cursor_hidden());
    assert!(!p.screen_text().contains("main"));
    p.enter()?;
    p.wait_for("main screen", T, |s| !s.alternate_screen())?;
    assert!(!p.cursor_hidden());
    assert!(p.screen_text().contains("main") && !p.screen_text().contains("ALT"));
    Ok(())
}

#[test]
fn wait_for_timeout_shows_the_screen() -> anyhow::Result<()> {
    let p = sh("echo visible-marker; read x", 80, 24)?;
    p.wait_for_text("visible-marker", T)?;
    let started = std::time::Instant::now();
    let Err(e) = p.wait_for_text("never-printed", Duration::from_millis(200)) else {
        anyhow::bail!("wait_for_text found text that was never printed");
    };
    assert!(started.elapsed() >= Duration::from_millis(200));
    let msg = format!("{e:#}");
    assert!(msg.contains("never-printed") && msg.contains("visible-marker"), "{msg}");
    Ok(())
}

#[test]
fn keys_send_xterm_bytes() -> anyhow::Result<()> {
    // Raw mode, so the terminal passes every byte through unchanged.
    let mut p = sh(
        "stty raw -echo; echo ready; head -c 17 | od -An -tx1; echo done",
        80,
        24,
    )?;
    p.wait_for_text("ready", T)?;
    p.up()?;
    p.down()?;
    p.page_up()?;
    p.ctrl('a')?;
    p.tab()?;
    p.esc()?;
    p.page_down()?;
    p.wait_for_text("done", T)?;
    let text = p.screen_text().split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        text.contains("1b 5b 41 1b 5b 42 1b 5b 35 7e 01 09 1b 1b 5b 36 7e done"),
        "{text}"
    );
    assert!(p.ctrl('1').is_err());
    Ok(())
}

#[test]
fn drop_kills_the_child() -> anyhow::Result<()> {
    let p = sh("echo up; sleep 30", 80, 24)?;
    p.wait_for_text("up", T)?;
    let pid = p.pid().ok_or_else(|| anyhow::anyhow!("no pid"))?;
    drop(p);
    assert!(!Path::new(&format!("/proc/{pid}")).exists(), "process {pid} survived");
    Ok(())
}
