//! The `chat` scenario of `allium-bench` (issue 15, `docs/chat.md`): what
//! a real `allium chat` costs while it waits, and how fast a key reaches
//! the screen with a long conversation open.
//!
//! One account (`allium init` and `allium contacts add` through the CLI)
//! gets `--messages` messages with a contact, alternately received and
//! sent, written straight into its home ([`Home::record_incoming`],
//! [`Home::record_outgoing`]; bodies of 20 to 200 characters, the longer
//! ones wrapping). Then `allium chat` runs on a pseudo-terminal, connected
//! to the local network:
//!
//! - **open time**: from spawning the process until the newest message's
//!   bytes reach the terminal (loading the conversation from SQLite,
//!   laying it out, the first frame), and until its first output at all
//!   (the alternate screen, before the home is read);
//! - **idle**: once the status line says `online`, user + system CPU of the
//!   process (`/proc/PID/stat`) over `--seconds` in which nothing is typed
//!   and nothing arrives (the receive loop still long-polls), as a share of
//!   one core; its context switches (every thread's, a count of wakeups)
//!   and the bytes and frames it wrote meanwhile; its RSS after;
//! - **typing**: `--keys` letters typed one at a time, each timed from the
//!   write to the pty until that letter is in the bytes the process writes
//!   after it (the frame carrying it was written), the input cleared every
//!   [`KEYS_PER_LINE`] keys so it stays one row;
//! - **scrolling**: as many PgUp then PgDn presses, each timed to the first
//!   byte written after it and to the end of its frame (the cursor shown
//!   again, after at least a page's worth of bytes);
//! - **sending**: [`ChatBench::sends`] short lines sent with Enter (to the
//!   contact, through the network), each timed from the Enter to the end
//!   of the frame showing it as sending (the conversation is laid out
//!   again with it), the next one only once the store is shown.
//!
//! Latencies in ms: median, p90, p99 and max. Goals: idle below 1 % of a
//! core, a key on screen within 16 ms.

use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use allium_client::home::Home;
use allium_common::AccountId;
use allium_node::devnet::LocalNet;
use anyhow::{Context as _, bail};
use serde_json::{Value, json};

use crate::bench_files::cpu_seconds;
use crate::pty::{Pty, contains};
use crate::{Client, bin_dir};

/// What the scenario runs.
#[derive(Debug, Clone)]
pub struct ChatBench {
    /// Messages in the open conversation.
    pub messages: usize,
    /// The idle window.
    pub idle: Duration,
    /// Keys typed, and scroll keys pressed.
    pub keys: usize,
    /// Lines sent with Enter, each timed to the screen.
    pub sends: usize,
    /// The terminal's columns and rows.
    pub size: (u16, u16),
}

impl Default for ChatBench {
    fn default() -> Self {
        Self {
            messages: 10_000,
            idle: Duration::from_secs(60),
            keys: 200,
            sends: 20,
            size: (120, 40),
        }
    }
}

/// The newest message's body carries this (no spaces: the first frame
/// writes it in one run of bytes).
const NEWEST: &str = "zz-newest-zz";
/// Letters typed, in turn: none of them occurs in the escape sequences a
/// frame carries (`h`, `l`, `m` end cursor and colour sequences), so the
/// letter in the output is the letter drawn.
const LETTERS: &[u8] = b"abcdefgijknoptvwxyz";
/// Keys typed before the input is cleared (Ctrl-U), so it stays one row.
pub const KEYS_PER_LINE: usize = 50;
/// Pause after each measured key: a fast typist's pace.
const KEY_GAP: Duration = Duration::from_millis(50);
/// Longest wait for one key's frame.
const KEY_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the client may take to say `online`.
const ONLINE_TIMEOUT: Duration = Duration::from_secs(120);
/// Quiet after `online`, before the idle window.
const SETTLE: Duration = Duration::from_secs(3);
/// A frame ends by showing the cursor again (then moving it).
const SHOW_CURSOR: &[u8] = b"\x1b[?25h";
/// A scroll frame redraws the conversation pane: far more bytes than the
/// clock's frame (the cursor alone, or a few status cells).
const SCROLL_FRAME_BYTES: usize = 256;

/// Words the bodies are made of.
const WORDS: &[&str] = &[
    "the", "draft", "is", "in", "shared", "folder", "tomorrow", "morning", "works", "for", "me", "can", "you", "send",
    "photo", "again", "meeting", "moved", "to", "three", "o'clock", "thanks", "reading", "it", "now", "sounds", "good",
    "train", "late", "by", "twenty", "minutes", "coffee", "after", "lunch", "keys", "are", "on", "table", "did", "see",
    "new", "version", "already", "network", "was", "slow", "today", "but", "message", "arrived",
];

/// The body of message `i`: 20 to 200 characters of words (a fixed
/// pseudo-random sequence), the newest one marked with [`NEWEST`].
pub fn body(i: usize, newest: bool) -> String {
    if newest {
        return format!("the newest message, {NEWEST}");
    }
    let mut x = (i as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let target = 20 + usize::try_from(next() % 181).unwrap_or(0);
    let mut out = String::with_capacity(target + 12);
    while out.len() < target {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(WORDS[usize::try_from(next() % WORDS.len() as u64).unwrap_or(0)]);
    }
    out.truncate(target);
    out.truncate(out.trim_end().len());
    out
}

/// Writes `n` messages with `peer` into `home`, one a minute up to a
/// minute ago: even ones received, odd ones sent.
pub fn fill(home: &mut Home, peer: AccountId, n: usize, now_ms: u64) -> anyhow::Result<()> {
    for i in 0..n {
        let sent = now_ms - 60_000 * (n - i) as u64;
        let text = body(i, i + 1 == n);
        let hash = format!("bench-chat-{i:06}");
        if i % 2 == 0 {
            home.record_incoming(&hash, peer, sent, sent + 800, &text)?;
        } else {
            home.record_outgoing(&hash, peer, sent, &text)?;
        }
    }
    Ok(())
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Runs `allium ARGS`; its JSON lines, or why it failed.
fn cli(client: &Client, args: &[&str]) -> anyhow::Result<Vec<Value>> {
    let out: Output = client.command(args).output().context("cannot run allium")?;
    if out.status.code() != Some(0) {
        bail!("allium {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(Client::json_lines(&out))
}

/// Resident memory of a process, KiB.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Context switches (voluntary, involuntary) of every live thread of a
/// process: how often it was woken and how often preempted.
fn context_switches(pid: u32) -> (u64, u64) {
    let mut total = (0, 0);
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return total;
    };
    for task in tasks.flatten() {
        let Ok(status) = std::fs::read_to_string(task.path().join("status")) else {
            continue;
        };
        for line in status.lines() {
            let value = |l: &str| l.trim().parse::<u64>().unwrap_or(0);
            if let Some(v) = line.strip_prefix("voluntary_ctxt_switches:") {
                total.0 += value(v);
            } else if let Some(v) = line.strip_prefix("nonvoluntary_ctxt_switches:") {
                total.1 += value(v);
            }
        }
    }
    total
}

/// Threads of a process.
fn threads(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task")).map_or(0, Iterator::count)
}

/// Latencies in ms, sorted, and their summary.
#[derive(Debug, Clone, Default)]
pub struct Latencies(Vec<f64>, usize);

impl Latencies {
    /// One sample, and the bytes its frame wrote.
    fn push(&mut self, d: Duration, bytes: usize) {
        self.0.push(d.as_secs_f64() * 1000.0);
        self.1 += bytes;
    }

    /// Mean bytes written per sample.
    fn mean_bytes(&self) -> usize {
        self.1 / self.0.len().max(1)
    }

    /// The `p` quantile (nearest rank), ms.
    pub fn quantile(&self, p: f64) -> f64 {
        let mut v = self.0.clone();
        v.sort_by(f64::total_cmp);
        if v.is_empty() {
            return f64::NAN;
        }
        let rank = (p * v.len() as f64).ceil() as usize;
        v[rank.clamp(1, v.len()) - 1]
    }

    fn line(&self) -> String {
        format!(
            "median {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms ({} samples{})",
            self.quantile(0.5),
            self.quantile(0.9),
            self.quantile(0.99),
            self.quantile(1.0),
            self.0.len(),
            match self.mean_bytes() {
                0 => String::new(),
                n => format!(", frames of {n} bytes on average"),
            }
        )
    }

    fn json(&self) -> Value {
        json!({
            "samples": self.0.len(),
            "median_ms": self.quantile(0.5),
            "p90_ms": self.quantile(0.9),
            "p99_ms": self.quantile(0.99),
            "max_ms": self.quantile(1.0),
            "mean_bytes": self.mean_bytes(),
        })
    }
}

/// Runs the scenario on `net`.
pub async fn run(net: &LocalNet, bench: &ChatBench) -> anyhow::Result<()> {
    let seeds = net.seed_file.clone();
    let bench = bench.clone();
    tokio::task::spawn_blocking(move || measure(&seeds, &bench)).await?
}

fn measure(seeds: &Path, bench: &ChatBench) -> anyhow::Result<()> {
    let (dir, bin) = (tempfile::tempdir()?, bin_dir()?.join("allium"));
    let client = |name: &str| Client {
        bin: bin.clone(),
        home: dir.path().join(name),
        seeds: seeds.to_path_buf(),
        local_address: None,
    };
    let (alice, bob) = (client("alice"), client("bob"));
    cli(&alice, &["--json", "init"])?;
    let bob_id = cli(&bob, &["--json", "init"])?
        .first()
        .and_then(|v| v["account_id"].as_str().map(str::to_owned))
        .context("bob has no Account ID")?;
    cli(&alice, &["contacts", "add", "bob", &bob_id])?;
    let filled = Instant::now();
    {
        let mut home = Home::open(&alice.home)?;
        fill(&mut home, bob_id.parse()?, bench.messages, now_ms())?;
    }
    let fill_s = filled.elapsed().as_secs_f64();
    println!("{} messages written into the home in {fill_s:.2} s", bench.messages);

    let (cols, rows) = bench.size;
    let spawned = Instant::now();
    let mut pty = alice.chat(cols, rows)?;
    let pid = pty.pid().context("no pid")?;
    let first_output = pty
        .wait_raw(0, Duration::from_secs(60), |b| !b.is_empty())?
        .saturating_duration_since(spawned);
    let shown = pty
        .wait_raw_after(0, NEWEST.as_bytes(), Duration::from_secs(60))?
        .saturating_duration_since(spawned);
    println!(
        "open ({cols}x{rows}, {} messages): first output {:.1} ms, newest message on screen {:.1} ms after spawning",
        bench.messages,
        first_output.as_secs_f64() * 1000.0,
        shown.as_secs_f64() * 1000.0
    );
    let rss_open = rss_kib(pid).unwrap_or(0);

    // Idle: online, then nothing typed and nothing arriving.
    pty.wait_for("the status line saying online", ONLINE_TIMEOUT, |s| {
        s.contents().contains("online")
    })?;
    let online_s = spawned.elapsed().as_secs_f64();
    std::thread::sleep(SETTLE);
    let (cpu0, ctx0, out0) = (cpu_seconds(pid), context_switches(pid), pty.raw_len());
    let started = Instant::now();
    std::thread::sleep(bench.idle);
    let (cpu1, ctx1, out1) = (cpu_seconds(pid), context_switches(pid), pty.raw_len());
    let wall = started.elapsed().as_secs_f64();
    let (cpu0, cpu1) = cpu0.zip(cpu1).context("cannot read /proc/PID/stat")?;
    let cpu = cpu1 - cpu0;
    let share = 100.0 * cpu / wall;
    let rss_idle = rss_kib(pid).unwrap_or(0);
    let idle_out = out1 - out0;
    let raw = pty.raw();
    let frames = raw.get(raw.len().saturating_sub(idle_out)..).map_or(0, |tail| {
        tail.windows(SHOW_CURSOR.len()).filter(|w| *w == SHOW_CURSOR).count()
    });
    let (woken, preempted) = (ctx1.0.saturating_sub(ctx0.0), ctx1.1.saturating_sub(ctx0.1));
    println!(
        "idle {wall:.1} s (online after {online_s:.1} s): {cpu:.2} CPU-s = {share:.3} % of a core; \
         {:.1} wakeups/s ({woken} voluntary, {preempted} involuntary context switches over {} threads); \
         {frames} frames, {idle_out} bytes written; RSS {:.1} MiB (after opening {:.1} MiB)",
        woken as f64 / wall,
        threads(pid),
        rss_idle as f64 / 1024.0,
        rss_open as f64 / 1024.0
    );

    let typing = type_keys(&mut pty, bench.keys)?;
    println!("typing, key to its letter on the terminal: {}", typing.line());
    let (scroll_first, scroll_frame, unchanged) = scroll(&mut pty, bench.keys)?;
    println!("PgUp/PgDn, key to first output: {}", scroll_first.line());
    println!("PgUp/PgDn, key to end of frame: {}", scroll_frame.line());
    if unchanged > 0 {
        println!("{unchanged} scroll keys drew nothing (the end of the history)");
    }
    let sending = send_lines(&mut pty, bench.sends)?;
    println!("Enter, key to the sent line on the terminal: {}", sending.line());
    let rss_end = rss_kib(pid).unwrap_or(0);
    println!("RSS at the end: {:.1} MiB", rss_end as f64 / 1024.0);

    pty.ctrl('c')?;
    let status = pty.wait_exit(Duration::from_secs(10))?;
    if !status.success() {
        bail!("allium chat exited with {status}");
    }
    println!(
        "{}",
        json!({
            "scenario": "chat",
            "messages": bench.messages,
            "size": [cols, rows],
            "fill_s": fill_s,
            "open_first_output_ms": first_output.as_secs_f64() * 1000.0,
            "open_newest_shown_ms": shown.as_secs_f64() * 1000.0,
            "idle": {
                "seconds": wall,
                "cpu_s": cpu,
                "core_pct": share,
                "voluntary_switches": woken,
                "involuntary_switches": preempted,
                "frames": frames,
                "bytes": idle_out,
            },
            "rss_mib": {
                "opened": rss_open as f64 / 1024.0,
                "idle": rss_idle as f64 / 1024.0,
                "end": rss_end as f64 / 1024.0,
            },
            "typing": typing.json(),
            "scroll_first_output": scroll_first.json(),
            "scroll_frame": scroll_frame.json(),
            "scroll_unchanged": unchanged,
            "enter": sending.json(),
        })
    );
    Ok(())
}

/// Clears the input (Ctrl-U) and lets its frame pass.
fn clear_input(pty: &mut Pty) -> anyhow::Result<()> {
    let offset = pty.raw_len();
    pty.ctrl('u')?;
    // An empty input draws nothing new: no frame to wait for then.
    let _ = pty.wait_raw(offset, Duration::from_millis(500), |b| contains(b, SHOW_CURSOR));
    std::thread::sleep(KEY_GAP);
    Ok(())
}

/// Types `keys` letters; each one's time to the terminal.
fn type_keys(pty: &mut Pty, keys: usize) -> anyhow::Result<Latencies> {
    let mut out = Latencies::default();
    let mut line = String::new();
    clear_input(pty)?;
    for i in 0..keys {
        if i > 0 && i % KEYS_PER_LINE == 0 {
            clear_input(pty)?;
            line.clear();
        }
        let letter = LETTERS[i % LETTERS.len()];
        let offset = pty.raw_len();
        let sent = Instant::now();
        pty.send(&[letter])?;
        let seen = pty.wait_raw_after(offset, &[letter], KEY_TIMEOUT)?;
        std::thread::sleep(KEY_GAP);
        out.push(seen.saturating_duration_since(sent), pty.raw_len() - offset);
        line.push(char::from(letter));
    }
    // The letters were drawn where they belong.
    pty.wait_for("the typed line in the input", KEY_TIMEOUT, |s| {
        s.contents().contains(&line)
    })?;
    clear_input(pty)?;
    Ok(out)
}

/// Whether `out` holds a frame that redrew the conversation pane: at
/// least [`SCROLL_FRAME_BYTES`], ending by showing the cursor.
fn pane_frame(out: &[u8]) -> bool {
    out.len() >= SCROLL_FRAME_BYTES && contains(&out[out.len().saturating_sub(32)..], SHOW_CURSOR)
}

/// Sends `n` short lines with Enter: each one's time from the Enter to
/// the end of the frame that shows it (every row above moves up one).
fn send_lines(pty: &mut Pty, n: usize) -> anyhow::Result<Latencies> {
    let mut out = Latencies::default();
    for i in 0..n {
        let text = format!("sent-{i:03}");
        pty.type_text(&text)?;
        pty.wait_for("the line typed", KEY_TIMEOUT, |s| s.contents().contains(&text))?;
        std::thread::sleep(KEY_GAP);
        let offset = pty.raw_len();
        let sent = Instant::now();
        pty.enter()?;
        let shown = pty.wait_raw(offset, KEY_TIMEOUT, pane_frame)?;
        out.push(shown.saturating_duration_since(sent), pty.raw_len() - offset);
        // Stored (or kept to retry), and the conversation read again.
        let (stored, pending) = (format!("{text} ✓"), format!("{text} … pending"));
        pty.wait_for("the send's outcome", ONLINE_TIMEOUT, |s| {
            let c = s.contents();
            c.contains(&stored) || c.contains(&pending)
        })?;
        std::thread::sleep(Duration::from_millis(200));
    }
    Ok(out)
}

/// Presses PgUp `keys / 2` times, then PgDn as often: each one's time to
/// the first byte after it and to the end of its frame, and how many drew
/// nothing.
fn scroll(pty: &mut Pty, keys: usize) -> anyhow::Result<(Latencies, Latencies, usize)> {
    let (mut first, mut frame, mut unchanged) = (Latencies::default(), Latencies::default(), 0);
    for i in 0..keys {
        let offset = pty.raw_len();
        let sent = Instant::now();
        if i < keys / 2 {
            pty.page_up()?;
        } else {
            pty.page_down()?;
        }
        // Nothing at all within the wait: the view could not move.
        let Ok(output) = pty.wait_raw(offset, Duration::from_millis(1500), |b| !b.is_empty()) else {
            unchanged += 1;
            continue;
        };
        match pty.wait_raw(offset, Duration::from_millis(1500), pane_frame) {
            Ok(done) => {
                let bytes = pty.raw_len() - offset;
                first.push(output.saturating_duration_since(sent), 0);
                frame.push(done.saturating_duration_since(sent), bytes);
            }
            // Only the clock's frame: nothing to scroll to.
            Err(_) => unchanged += 1,
        }
        std::thread::sleep(KEY_GAP);
    }
    Ok((first, frame, unchanged))
}
