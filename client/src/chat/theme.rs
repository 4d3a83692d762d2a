//! Styles: colours, or with `NO_COLOR` bold, dim and reverse only.

use ratatui::style::{Color, Modifier, Style};

/// The styles the screen is drawn with.
#[derive(Debug, Clone, Copy)]
pub struct Theme {
    /// Times, borders' quiet parts, notes.
    pub dim: Style,
    /// This account's name on its messages.
    pub me: Style,
    /// Other senders' names.
    pub them: Style,
    /// Quoted lines (`> …`).
    pub quote: Style,
    /// Stored, delivered, read.
    pub good: Style,
    /// Sending, pending.
    pub waiting: Style,
    /// Failed, errors.
    pub bad: Style,
    /// Files.
    pub file: Style,
    /// The selected conversation or message.
    pub selected: Style,
    /// Unread counts, titles.
    pub strong: Style,
}

/// The theme for a terminal with colours (`color`) or without.
pub fn theme(color: bool) -> Theme {
    let plain = Style::default();
    let bold = plain.add_modifier(Modifier::BOLD);
    let dim = plain.add_modifier(Modifier::DIM);
    if !color {
        return Theme {
            dim,
            me: bold,
            them: bold,
            quote: dim,
            good: plain,
            waiting: dim,
            bad: bold,
            file: plain.add_modifier(Modifier::UNDERLINED),
            selected: plain.add_modifier(Modifier::REVERSED),
            strong: bold,
        };
    }
    Theme {
        dim: plain.fg(Color::DarkGray),
        me: bold.fg(Color::Cyan),
        them: bold.fg(Color::Green),
        quote: plain.fg(Color::DarkGray).add_modifier(Modifier::ITALIC),
        good: plain.fg(Color::Green),
        waiting: plain.fg(Color::Yellow),
        bad: bold.fg(Color::Red),
        file: plain.fg(Color::Magenta),
        selected: plain.add_modifier(Modifier::REVERSED),
        strong: bold.fg(Color::Yellow),
    }
}
