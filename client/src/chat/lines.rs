//! Messages laid out as terminal rows for one width, kept until the
//! messages or the width change, so a frame copies only the rows in view
//! whatever the history's length.

use std::ops::Range;

use ratatui::text::{Line, Span};

use super::model::{Mark, Message};
use super::theme::{Theme, theme};
use super::wrap::{str_width, wrap};
use crate::display::escape;

/// The open conversation's rows for one width.
#[derive(Debug, Clone, Default)]
pub struct Rendered {
    width: usize,
    lines: Vec<Line<'static>>,
    /// The first row of each message.
    starts: Vec<usize>,
}

impl Rendered {
    /// All rows.
    pub fn rows(&self) -> usize {
        self.lines.len()
    }

    /// The width they were laid out for.
    pub fn width(&self) -> usize {
        self.width
    }

    /// The rows `range` covers.
    pub fn lines(&self, range: Range<usize>) -> &[Line<'static>] {
        &self.lines[range]
    }

    /// The rows of message `i`.
    pub fn rows_of(&self, i: usize) -> Range<usize> {
        let start = self.starts.get(i).copied().unwrap_or(self.lines.len());
        let end = self.starts.get(i + 1).copied().unwrap_or(self.lines.len());
        start..end
    }

    /// Which message row `row` belongs to.
    pub fn message_at(&self, row: usize) -> Option<usize> {
        match self.starts.binary_search(&row) {
            Ok(i) => Some(i),
            Err(0) => None,
            Err(i) => Some(i - 1),
        }
    }

    /// The rows in view `height` rows high, `scroll` rows up from the end.
    pub fn visible(&self, height: usize, scroll: usize) -> Range<usize> {
        let end = self.lines.len().saturating_sub(scroll);
        end.saturating_sub(height)..end
    }

    /// The scroll that shows message `i` (as little change from `scroll`
    /// as will do).
    pub fn scroll_to_show(&self, i: usize, scroll: usize, height: usize) -> usize {
        let rows = self.rows_of(i);
        let view = self.visible(height, scroll);
        let total = self.lines.len();
        if rows.start < view.start {
            total.saturating_sub((rows.start + height).min(total))
        } else if rows.end > view.end {
            total - rows.end
        } else {
            scroll
        }
    }
}

/// `HH:MM` for today (UTC), `MM-DD HH:MM` for another day.
fn when(ms: u64, now_ms: u64) -> String {
    let at = crate::cli::fmt_time(ms);
    if ms / 86_400_000 == now_ms / 86_400_000 {
        at[11..16].to_owned()
    } else {
        at[5..16].to_owned()
    }
}

/// The mark after a message: its delivery and when it disappears.
fn marks(m: &Message, now_ms: u64, t: &Theme) -> Vec<Span<'static>> {
    let mut out = Vec::new();
    let (text, style) = match &m.mark {
        Mark::Incoming => (String::new(), t.dim),
        Mark::Sending => (" … sending".to_owned(), t.waiting),
        Mark::Pending(why) => (format!(" … pending: {}", escape(why)), t.waiting),
        Mark::Stored => (" ✓".to_owned(), t.good),
        Mark::Delivered => (" ✓✓".to_owned(), t.good),
        Mark::Read => (" ✓✓ read".to_owned(), t.good),
        Mark::Failed(why) => (format!(" ✗ not sent: {}", escape(why)), t.bad),
    };
    if !text.is_empty() {
        out.push(Span::styled(text, style));
    }
    if let Some(at) = m.expires_ms {
        out.push(Span::styled(format!(" ⌛{}", when(at, now_ms)), t.dim));
    }
    out
}

/// Lays `messages` out `width` cells wide.
pub fn render(messages: &[Message], width: usize, color: bool, now_ms: u64) -> Rendered {
    let mut out = Rendered::new(width);
    out.append(messages, color, now_ms);
    out
}

impl Rendered {
    /// No rows yet, for `width` cells.
    pub fn new(width: usize) -> Self {
        Self {
            width,
            ..Self::default()
        }
    }

    /// How many messages are laid out.
    pub fn messages(&self) -> usize {
        self.starts.len()
    }

    /// Keeps the rows of the first `messages` messages only.
    pub fn truncate(&mut self, messages: usize) {
        if let Some(&row) = self.starts.get(messages) {
            self.lines.truncate(row);
            self.starts.truncate(messages);
        }
    }

    /// Lays `messages` out after those already laid out.
    pub fn append(&mut self, messages: &[Message], color: bool, now_ms: u64) {
        let t = theme(color);
        self.starts.reserve(messages.len());
        for m in messages {
            self.starts.push(self.lines.len());
            message(&mut self.lines, m, self.width.max(1), now_ms, &t);
        }
    }
}

fn message(out: &mut Vec<Line<'static>>, m: &Message, width: usize, now_ms: u64, t: &Theme) {
    let time = when(m.sent_ms, now_ms);
    let sender = escape(&m.sender).into_owned();
    if m.notice {
        for row in wrap(&format!("{time} · {} {}", sender, escape(&m.body)), width, width) {
            out.push(Line::styled(row, t.dim));
        }
        return;
    }
    let prefix = str_width(&time) + 1 + str_width(&sender) + 2;
    // A long name takes its own row; the text goes under it.
    let (first, indent) = if prefix * 2 > width {
        (0, 2)
    } else {
        (width - prefix, prefix)
    };
    let rest = width.saturating_sub(indent).max(1);
    let mut header = vec![
        Span::styled(time, t.dim),
        Span::raw(" "),
        Span::styled(sender, if m.mine { t.me } else { t.them }),
        Span::raw(": "),
    ];
    let mut rows: Vec<(String, bool)> = Vec::new();
    for line in m.body.split('\n') {
        let quoted = line.starts_with("> ");
        let avail = if rows.is_empty() && first > 0 { first } else { rest };
        for row in wrap(&escape(line), avail, rest) {
            rows.push((row, quoted));
        }
    }
    if first == 0 {
        out.push(Line::from(std::mem::take(&mut header)));
    }
    let pad = " ".repeat(indent);
    let body_style = |quoted: bool| {
        if quoted {
            t.quote
        } else {
            ratatui::style::Style::default()
        }
    };
    let mut body_lines: Vec<Line<'static>> = Vec::new();
    for (i, (row, quoted)) in rows.into_iter().enumerate() {
        let mut spans = if i == 0 && first > 0 {
            std::mem::take(&mut header)
        } else {
            vec![Span::raw(pad.clone())]
        };
        spans.push(Span::styled(row, body_style(quoted)));
        body_lines.push(Line::from(spans));
    }
    for f in &m.files {
        for row in wrap(&f.label(false), rest, rest) {
            body_lines.push(Line::from(vec![Span::raw(pad.clone()), Span::styled(row, t.file)]));
        }
    }
    let marks = marks(m, now_ms, t);
    let marks_width: usize = marks.iter().map(|s| str_width(&s.content)).sum();
    match body_lines.last_mut() {
        _ if marks.is_empty() => {}
        Some(last) if last.width() + marks_width <= width => last.spans.extend(marks),
        // Rows of their own, wrapped like the text.
        _ => {
            let style = marks[0].style;
            let text: String = marks.iter().map(|s| s.content.as_ref()).collect();
            for row in wrap(text.trim_start(), rest, rest) {
                body_lines.push(Line::from(vec![Span::raw(pad.clone()), Span::styled(row, style)]));
            }
        }
    }
    out.extend(body_lines);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(r: &Rendered) -> Vec<String> {
        r.lines(0..r.rows())
            .iter()
            .map(|l| l.spans.iter().map(|s| s.content.as_ref()).collect())
            .collect()
    }

    fn msg(sender: &str, body: &str, mark: Mark) -> Message {
        Message {
            hash: Some("h".into()),
            mine: sender == "you",
            sender: sender.into(),
            sent_ms: 1_700_000_000_000,
            body: body.into(),
            files: Vec::new(),
            mark,
            expires_ms: None,
            notice: false,
        }
    }

    #[test]
    fn a_message_wraps_under_its_text_with_its_mark_last() {
        let r = render(
            &[
                msg("bob", "the draft is in the usual place", Mark::Incoming),
                msg("you", "thanks", Mark::Read),
            ],
            24,
            false,
            1_700_000_000_000,
        );
        assert_eq!(
            text(&r),
            [
                "22:13 bob: the draft is",
                "           in the usual",
                "           place",
                "22:13 you: thanks",
                "           ✓✓ read"
            ],
            "the mark takes a row of its own when it does not fit"
        );
        let wide = render(&[msg("you", "thanks", Mark::Read)], 26, false, 1_700_000_000_000);
        assert_eq!(text(&wide), ["22:13 you: thanks ✓✓ read"]);
        assert_eq!(r.rows_of(0), 0..3);
        assert_eq!(r.rows_of(1), 3..5);
        assert_eq!(r.message_at(2), Some(0));
        assert_eq!(r.message_at(4), Some(1));
    }

    #[test]
    fn senders_text_cannot_reach_the_terminal_raw() {
        let evil = msg("x\u{1b}]0;pwned\u{7}", "a\u{1b}[2Jb\r\n05ab: forged", Mark::Incoming);
        let r = render(&[evil], 60, false, 0);
        let all = text(&r).concat();
        assert!(!all.chars().any(char::is_control), "{all:?}");
        assert!(all.contains("a\\e[2Jb\\r"), "{all:?}");
        // The second line is indented under the text: no row starts like a header.
        assert!(text(&r)[1].starts_with("  "), "{:?}", text(&r));
    }

    #[test]
    fn scrolling_to_a_message_moves_as_little_as_it_can() {
        let many: Vec<Message> = (0..20).map(|i| msg("bob", &format!("m{i}"), Mark::Incoming)).collect();
        let r = render(&many, 40, false, 0);
        assert_eq!(r.visible(5, 0), 15..20);
        assert_eq!(r.scroll_to_show(2, 0, 5), 13, "message 2 becomes the top row");
        assert_eq!(r.visible(5, 13), 2..7);
        assert_eq!(r.scroll_to_show(17, 0, 5), 0, "already in view");
        assert_eq!(r.scroll_to_show(19, 16, 5), 0);
    }
}
