//! `allium-screen`: runs a full-screen program (`allium chat`) on a
//! pseudo-terminal, plays keys to it and prints its screen as text: the
//! demo's and the README's screen captures.
//!
//! ```text
//! allium-screen --cols 100 --rows 24 \
//!     --step wait='to bob' --step type='hello' --step key=enter \
//!     --step wait='✓' --step show --step type=/quit --step key=enter \
//!     -- allium --home /tmp/alice chat
//! ```

use std::path::PathBuf;
use std::time::Duration;

use allium_tests::pty;
use anyhow::{Context as _, bail};
use clap::Parser;

#[derive(Debug, Parser)]
#[command(
    name = "allium-screen",
    about = "Plays keys to a full-screen program and prints its screen"
)]
struct Args {
    /// Terminal columns.
    #[arg(long, default_value_t = 100)]
    cols: u16,
    /// Terminal rows.
    #[arg(long, default_value_t = 24)]
    rows: u16,
    /// How long a `wait` may take.
    #[arg(long, default_value_t = 60)]
    timeout_secs: u64,
    /// What to do, in order: wait=TEXT (until the screen shows it),
    /// type=TEXT, key=enter|tab|esc|pgup|pgdn|alt-up|alt-down, sleep=MS,
    /// show (print the screen).
    #[arg(long = "step")]
    steps: Vec<String>,
    /// The program and its arguments.
    #[arg(last = true, required = true)]
    command: Vec<String>,
}

/// The screen in a frame, trailing blanks cut.
fn framed(rows: &[String], cols: u16) -> String {
    let bar = "─".repeat(usize::from(cols));
    let mut out = format!("┌{bar}┐\n");
    for row in rows {
        let pad = usize::from(cols).saturating_sub(allium_client::chat::wrap::str_width(row));
        out.push_str(&format!("│{row}{}│\n", " ".repeat(pad)));
    }
    out.push_str(&format!("└{bar}┘"));
    out
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let (program, rest) = args.command.split_first().context("no program given")?;
    let rest: Vec<&str> = rest.iter().map(String::as_str).collect();
    let mut term = pty::spawn(pty::command(&PathBuf::from(program), &rest), args.cols, args.rows)?;
    let timeout = Duration::from_secs(args.timeout_secs);
    for step in &args.steps {
        let (what, arg) = step.split_once('=').unwrap_or((step.as_str(), ""));
        match what {
            "wait" => term.wait_for_text(arg, timeout)?,
            "type" => term.type_text(arg)?,
            "sleep" => std::thread::sleep(Duration::from_millis(arg.parse().context("sleep=MS")?)),
            "show" => println!("{}", framed(&term.rows(), args.cols)),
            "key" => match arg {
                "enter" => term.enter()?,
                "tab" => term.tab()?,
                "esc" => term.esc()?,
                "pgup" => term.page_up()?,
                "pgdn" => term.page_down()?,
                "alt-up" => term.send(b"\x1b[1;3A")?,
                "alt-down" => term.send(b"\x1b[1;3B")?,
                other => bail!("unknown key {other:?}"),
            },
            other => bail!("unknown step {other:?}"),
        }
    }
    let status = term.wait_exit(timeout)?;
    if !status.success() {
        bail!("{program} exited with {status}");
    }
    Ok(())
}
