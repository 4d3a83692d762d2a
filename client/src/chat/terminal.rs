//! The terminal, taken and always given back: raw mode and the alternate
//! screen are left on return, on a panic (restored before the panic
//! message prints, so it is readable) and on SIGTERM, SIGHUP and SIGINT
//! (turned into a quit event by the loop).

use std::io::{BufWriter, Stdout, Write as _};

use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;
use ratatui::crossterm::event::{DisableBracketedPaste, EnableBracketedPaste};
use ratatui::crossterm::terminal::{EnterAlternateScreen, LeaveAlternateScreen, disable_raw_mode, enable_raw_mode};
use ratatui::crossterm::{cursor, execute};

/// The terminal while `allium chat` has it.
#[derive(Debug)]
pub struct Screen {
    /// What is drawn on.
    pub terminal: Terminal<CrosstermBackend<BufWriter<Stdout>>>,
}

/// Gives the terminal back: best effort, as it runs on the way out.
pub fn restore() {
    let _ = disable_raw_mode();
    let mut out = std::io::stdout();
    let _ = execute!(out, DisableBracketedPaste, LeaveAlternateScreen, cursor::Show);
    let _ = out.flush();
}

impl Screen {
    /// Takes the terminal: raw mode, alternate screen, bracketed paste,
    /// and a panic hook that gives it back first.
    pub fn enter() -> std::io::Result<Self> {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore();
            previous(info);
        }));
        enable_raw_mode()?;
        let mut out = std::io::stdout();
        if let Err(e) = execute!(out, EnterAlternateScreen, EnableBracketedPaste) {
            restore();
            return Err(e);
        }
        // A frame leaves in one write (ratatui flushes after each), not in
        // the 1 KiB pieces of stdout's line buffer: no half-drawn frames.
        let out = BufWriter::with_capacity(256 * 1024, out);
        let terminal = Terminal::new(CrosstermBackend::new(out)).inspect_err(|_| restore())?;
        Ok(Self { terminal })
    }
}

impl Screen {
    /// Draws `model` (ratatui writes only the cells that changed).
    pub fn draw(&mut self, model: &super::model::Model) -> std::io::Result<()> {
        self.terminal.draw(|frame| super::view::draw(frame, model)).map(|_| ())
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        restore();
    }
}
