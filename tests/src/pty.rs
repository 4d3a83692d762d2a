//! `Pty`: runs a program on a pseudo-terminal and keeps a `vt100` model of
//! its screen, so end-to-end tests can drive the full-screen `allium chat`
//! client with keys and assert on what it shows.
//!
//! A background thread feeds every byte the child writes into the parser,
//! so the screen is always current; tests poll it with [`Pty::wait_for`].
//! Timing needs no polling: [`Pty::raw_len`] before a key, then
//! [`Pty::wait_raw_after`] wakes as soon as the bytes the key caused arrive.
//! Dropping a `Pty` kills the child, so a failed test leaves nothing behind.

use std::io::{Read, Write};
use std::num::NonZeroU16;
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use portable_pty::{Child, CommandBuilder, ExitStatus, MasterPty, PtySize};

/// How much of the child's raw output [`Pty::raw`] keeps (the newest bytes).
pub const RAW_CAP: usize = 4 << 20;

/// How often the `wait_*` methods look again.
const POLL: Duration = Duration::from_millis(25);

/// What the reader thread shares with the test.
struct Shared {
    parser: vt100::Parser,
    /// The newest output, between `RAW_CAP` and `2 * RAW_CAP` bytes once
    /// full: trimming only at twice the cap keeps the trimming amortised.
    raw: Vec<u8>,
    /// Bytes trimmed off the front of `raw` so far: `raw[0]` is byte
    /// `dropped` of the child's output.
    dropped: usize,
    /// When the newest bytes were read.
    arrived: Option<Instant>,
    /// The pty reported end of output: the child and everything that held
    /// the terminal have gone, so the screen is final.
    eof: bool,
}

/// A child process on a pseudo-terminal, with its screen.
pub struct Pty {
    child: Box<dyn Child + Send + Sync>,
    master: Box<dyn MasterPty + Send>,
    writer: Box<dyn Write + Send>,
    shared: Arc<Mutex<Shared>>,
    /// Notified (with `shared`) whenever output arrives or ends.
    news: Arc<Condvar>,
}

impl std::fmt::Debug for Pty {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pty")
            .field("pid", &self.pid())
            .field("size", &self.size())
            .finish_non_exhaustive()
    }
}

/// A command for `program` with `args`, `TERM=xterm-256color`, and the test's
/// working directory (portable-pty would otherwise start it in `$HOME`).
/// The caller may add `env`, `env_remove` and `cwd` before [`spawn`].
pub fn command(program: &Path, args: &[&str]) -> CommandBuilder {
    let mut cmd = CommandBuilder::new(program);
    cmd.args(args);
    cmd.env("TERM", "xterm-256color");
    if let Ok(dir) = std::env::current_dir() {
        cmd.cwd(dir);
    }
    cmd
}

/// Starts `cmd` on a new `cols` x `rows` pseudo-terminal (its stdin, stdout
/// and stderr).
pub fn spawn(cmd: CommandBuilder, cols: u16, rows: u16) -> anyhow::Result<Pty> {
    let (nz_rows, nz_cols) = nonzero(cols, rows)?;
    let pair = portable_pty::native_pty_system()
        .openpty(pty_size(cols, rows))
        .context("cannot open a pty")?;
    let child = pair.slave.spawn_command(cmd).context("cannot spawn on the pty")?;
    // Our copy of the slave would keep the terminal open after the child
    // exits, and the reader would never see the end of its output.
    drop(pair.slave);
    let reader = pair.master.try_clone_reader()?;
    let writer = pair.master.take_writer()?;
    let shared = Arc::new(Mutex::new(Shared {
        parser: vt100::Parser::new(nz_rows, nz_cols, 0),
        raw: Vec::new(),
        dropped: 0,
        arrived: None,
        eof: false,
    }));
    let news = Arc::new(Condvar::new());
    let (feed, tell) = (Arc::clone(&shared), Arc::clone(&news));
    std::thread::Builder::new()
        .name("pty-reader".into())
        .spawn(move || read_loop(reader, &feed, &tell))?;
    Ok(Pty {
        child,
        master: pair.master,
        writer,
        shared,
        news,
    })
}

fn read_loop(mut reader: Box<dyn Read + Send>, shared: &Mutex<Shared>, news: &Condvar) {
    let mut buf = [0u8; 8192];
    loop {
        match reader.read(&mut buf) {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            // Linux reports EIO, not 0, once the last slave fd closes.
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let at = Instant::now();
                let mut s = lock(shared);
                s.parser.process(&buf[..n]);
                s.raw.extend_from_slice(&buf[..n]);
                s.arrived = Some(at);
                if s.raw.len() > 2 * RAW_CAP {
                    let excess = s.raw.len() - RAW_CAP;
                    s.raw.drain(..excess);
                    s.dropped += excess;
                }
                news.notify_all();
            }
        }
    }
    lock(shared).eof = true;
    news.notify_all();
}

/// Whether `needle` occurs in `hay` (an empty needle always does).
pub fn contains(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle)
}

fn lock(shared: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    // A panicking test thread must not hide the screen from the others.
    shared.lock().unwrap_or_else(|e| e.into_inner())
}

fn nonzero(cols: u16, rows: u16) -> anyhow::Result<(NonZeroU16, NonZeroU16)> {
    match (NonZeroU16::new(rows), NonZeroU16::new(cols)) {
        (Some(r), Some(c)) => Ok((r, c)),
        _ => bail!("terminal size {cols}x{rows} has a zero side"),
    }
}

fn pty_size(cols: u16, rows: u16) -> PtySize {
    PtySize {
        rows,
        cols,
        pixel_width: 0,
        pixel_height: 0,
    }
}

impl Pty {
    /// Writes `bytes` to the child's terminal input.
    pub fn send(&mut self, bytes: &[u8]) -> anyhow::Result<()> {
        self.writer.write_all(bytes)?;
        self.writer.flush()?;
        Ok(())
    }

    /// Types `s` as if on the keyboard.
    pub fn type_text(&mut self, s: &str) -> anyhow::Result<()> {
        self.send(s.as_bytes())
    }

    /// Enter (CR, as a real terminal sends it).
    pub fn enter(&mut self) -> anyhow::Result<()> {
        self.send(b"\r")
    }

    /// Tab.
    pub fn tab(&mut self) -> anyhow::Result<()> {
        self.send(b"\t")
    }

    /// Escape.
    pub fn esc(&mut self) -> anyhow::Result<()> {
        self.send(b"\x1b")
    }

    /// Arrow up.
    pub fn up(&mut self) -> anyhow::Result<()> {
        self.send(b"\x1b[A")
    }

    /// Arrow down.
    pub fn down(&mut self) -> anyhow::Result<()> {
        self.send(b"\x1b[B")
    }

    /// Page Up.
    pub fn page_up(&mut self) -> anyhow::Result<()> {
        self.send(b"\x1b[5~")
    }

    /// Page Down.
    pub fn page_down(&mut self) -> anyhow::Result<()> {
        self.send(b"\x1b[6~")
    }

    /// Ctrl+`c` for a letter (or one of `@[\]^_`).
    pub fn ctrl(&mut self, c: char) -> anyhow::Result<()> {
        let byte = u8::try_from(c.to_ascii_uppercase())
            .ok()
            .filter(|b| (b'@'..=b'_').contains(b));
        let byte = byte.with_context(|| format!("no control code for {c:?}"))?;
        self.send(&[byte & 0x1f])
    }

    /// Runs `f` on the current screen (cells, colours, cursor...).
    pub fn with_screen<R>(&self, f: impl FnOnce(&vt100::Screen) -> R) -> R {
        f(lock(&self.shared).parser.screen())
    }

    /// The screen's text, rows joined by newlines (trailing blanks trimmed).
    pub fn screen_text(&self) -> String {
        self.with_screen(vt100::Screen::contents)
    }

    /// Each visible row's text.
    pub fn rows(&self) -> Vec<String> {
        self.with_screen(|s| s.rows(0, s.size().1.get()).collect())
    }

    /// The terminal size as `(cols, rows)`, the order `spawn` takes.
    pub fn size(&self) -> (u16, u16) {
        self.with_screen(|s| (s.size().1.get(), s.size().0.get()))
    }

    /// Whether the child switched to the alternate screen.
    pub fn alternate_screen(&self) -> bool {
        self.with_screen(vt100::Screen::alternate_screen)
    }

    /// Whether the child hid the cursor.
    pub fn cursor_hidden(&self) -> bool {
        self.with_screen(vt100::Screen::hide_cursor)
    }

    /// The newest raw bytes the child wrote (up to [`RAW_CAP`]).
    pub fn raw(&self) -> Vec<u8> {
        let s = lock(&self.shared);
        s.raw[s.raw.len().saturating_sub(RAW_CAP)..].to_vec()
    }

    /// How many bytes the child has written so far (an offset for
    /// [`Pty::wait_raw_after`]).
    pub fn raw_len(&self) -> usize {
        let s = lock(&self.shared);
        s.dropped + s.raw.len()
    }

    /// Waits, without polling, until `done` holds for the child's output
    /// from byte `offset` on (see [`Pty::raw_len`]; bytes already trimmed
    /// from the log are skipped). Returns when the bytes that made it hold
    /// were read, so a caller that noted the time before writing a key has
    /// the key's latency.
    pub fn wait_raw(&self, offset: usize, timeout: Duration, done: impl Fn(&[u8]) -> bool) -> anyhow::Result<Instant> {
        let deadline = Instant::now() + timeout;
        let mut s = lock(&self.shared);
        loop {
            let start = offset.saturating_sub(s.dropped).min(s.raw.len());
            if done(&s.raw[start..]) {
                return Ok(s.arrived.unwrap_or_else(Instant::now));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if s.eof || left.is_zero() {
                let why = if s.eof { "the child's output ended" } else { "timed out" };
                drop(s);
                bail!("{why} waiting for output after byte {offset}\n{}", self.dump());
            }
            s = match self.news.wait_timeout(s, left) {
                Ok((s, _)) => s,
                Err(e) => e.into_inner().0,
            };
        }
    }

    /// [`Pty::wait_raw`] until `needle` appears in the output after `offset`.
    pub fn wait_raw_after(&self, offset: usize, needle: &[u8], timeout: Duration) -> anyhow::Result<Instant> {
        self.wait_raw(offset, timeout, |out| contains(out, needle))
    }

    /// Waits until `pred` holds for the screen; on timeout the error names
    /// `what` and shows the screen, so a failing test says what it saw.
    pub fn wait_for(&self, what: &str, timeout: Duration, pred: impl Fn(&vt100::Screen) -> bool) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        while !self.with_screen(&pred) {
            if Instant::now() >= deadline {
                bail!("timed out after {timeout:?} waiting for {what}\n{}", self.dump());
            }
            std::thread::sleep(POLL);
        }
        Ok(())
    }

    /// Waits until `needle` appears on the screen.
    pub fn wait_for_text(&self, needle: &str, timeout: Duration) -> anyhow::Result<()> {
        self.wait_for(&format!("{needle:?} on screen"), timeout, |s| {
            s.contents().contains(needle)
        })
    }

    /// Resizes the terminal (the child gets SIGWINCH) and the screen model.
    pub fn resize(&mut self, cols: u16, rows: u16) -> anyhow::Result<()> {
        let (nz_rows, nz_cols) = nonzero(cols, rows)?;
        // The model first, so output drawn for the new size lands on it.
        lock(&self.shared).parser.screen_mut().set_size(nz_rows, nz_cols);
        self.master.resize(pty_size(cols, rows))?;
        Ok(())
    }

    /// Waits for the child to exit and for the last of its output to reach
    /// the screen (so "terminal restored" checks see the final state).
    pub fn wait_exit(&mut self, timeout: Duration) -> anyhow::Result<ExitStatus> {
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Some(status) = self.child.try_wait()? {
                break status;
            }
            if Instant::now() >= deadline {
                bail!("child still running after {timeout:?}\n{}", self.dump());
            }
            std::thread::sleep(POLL);
        };
        while !lock(&self.shared).eof {
            if Instant::now() >= deadline {
                bail!(
                    "child exited ({status}) but something still holds its terminal open\n{}",
                    self.dump()
                );
            }
            std::thread::sleep(POLL);
        }
        Ok(status)
    }

    /// Kills the child (SIGHUP, then SIGKILL after a short grace) and reaps it.
    pub fn kill(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    /// The child's process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.process_id()
    }

    /// The screen framed for an error message.
    fn dump(&self) -> String {
        let (cols, rows) = self.size();
        let body: Vec<String> = self.rows().iter().map(|r| r.trim_end().to_owned()).collect();
        format!(
            "--- screen {cols}x{rows} ---\n{}\n--- end of screen ---",
            body.join("\n")
        )
    }
}

impl Drop for Pty {
    fn drop(&mut self) {
        self.kill();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_raw_after_wakes_on_bytes_after_the_offset() -> anyhow::Result<()> {
        let t = Duration::from_secs(5);
        let script = r#"printf ready; read x; printf "got:%s" "$x"; read y"#;
        let mut p = spawn(command(Path::new("/bin/sh"), &["-c", script]), 80, 24)?;
        p.wait_raw_after(0, b"ready", t)?;
        let offset = p.raw_len();
        let early = p.wait_raw_after(offset, b"ready", Duration::from_millis(50));
        assert!(early.is_err(), "bytes before the offset do not count");
        let sent = Instant::now();
        p.type_text("abc\r")?;
        let seen = p.wait_raw_after(offset, b"got:abc", t)?;
        assert!(seen >= sent && seen.elapsed() < t);
        assert!(p.raw_len() >= offset + "got:abc".len());
        Ok(())
    }
}
