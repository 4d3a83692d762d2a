//! Drawing: a pure function of the [`Model`] into a ratatui frame. Only
//! the rows in view are copied, so a frame costs the same with ten
//! messages or ten thousand.

use ratatui::Frame;
use ratatui::layout::{Alignment, Margin, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph};

use super::command::HELP;
use super::model::{Conn, ConvKey, Model};
use super::theme::theme;
use super::wrap::{str_width, truncate};
use crate::display::escape;

/// Terminals narrower than this show the open conversation alone.
pub const NARROW: u16 = 60;

/// Where each part of the screen goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Panes {
    /// The conversation list (none on a narrow terminal).
    pub list: Option<Rect>,
    /// The open conversation, with its border.
    pub conversation: Rect,
    /// The notice row.
    pub notice: Rect,
    /// The input, with its border.
    pub input: Rect,
    /// The status line.
    pub status: Rect,
}

/// Splits `area` for an input of `input_rows` rows.
pub fn panes(area: Rect, input_rows: usize) -> Panes {
    let input_h = u16::try_from(input_rows).unwrap_or(5) + 2;
    let status = Rect::new(area.x, area.bottom().saturating_sub(1), area.width, 1.min(area.height));
    let input_y = status.y.saturating_sub(input_h).max(area.y);
    let input = Rect::new(area.x, input_y, area.width, status.y - input_y);
    let notice_y = input.y.saturating_sub(1).max(area.y);
    let notice = Rect::new(area.x, notice_y, area.width, input.y - notice_y);
    let main = Rect::new(area.x, area.y, area.width, notice.y - area.y);
    if area.width < NARROW {
        return Panes {
            list: None,
            conversation: main,
            notice,
            input,
            status,
        };
    }
    let list_w = (area.width / 4).clamp(20, 30);
    Panes {
        list: Some(Rect::new(main.x, main.y, list_w, main.height)),
        conversation: Rect::new(main.x + list_w, main.y, main.width - list_w, main.height),
        notice,
        input,
        status,
    }
}

/// The inside of a bordered rectangle.
pub fn inner(r: Rect) -> Rect {
    r.inner(Margin::new(1, 1))
}

/// Draws the whole screen.
pub fn draw(frame: &mut Frame<'_>, model: &Model) {
    let area = frame.area();
    let panes = panes(area, model.input_rows());
    if let Some(list) = panes.list {
        draw_list(frame, model, list);
    }
    draw_conversation(frame, model, panes.conversation, panes.list.is_none());
    draw_notice(frame, model, panes.notice);
    draw_input(frame, model, panes.input);
    draw_status(frame, model, panes.status);
    if model.help {
        draw_help(frame, model, area);
    }
}

/// A conversation's name as the list and the title show it.
fn label(model: &Model, key: &ConvKey) -> String {
    let name = model
        .conversations
        .iter()
        .find(|c| c.key == *key)
        .map_or_else(|| short(key), |c| escape(&c.name).into_owned());
    match key {
        ConvKey::Group(_) => format!("#{name}"),
        ConvKey::Peer(_) => name,
    }
}

fn short(key: &ConvKey) -> String {
    let id = match key {
        ConvKey::Peer(a) => a.to_string(),
        ConvKey::Group(g) => g.to_string(),
    };
    format!("{}…", &id[..10])
}

fn draw_list(frame: &mut Frame<'_>, model: &Model, area: Rect) {
    let t = theme(model.color);
    let width = usize::from(inner(area).width);
    let open = model.open.as_ref().map(|o| &o.key);
    let mut lines = Vec::new();
    // The open conversation's first row, to keep it in view.
    let mut at = 0;
    let row = |c: &super::model::Summary| {
        let unread = model.unread(&c.key);
        let count = if unread > 0 {
            format!(" ({unread})")
        } else {
            String::new()
        };
        let name = truncate(&label(model, &c.key), width.saturating_sub(str_width(&count) + 1));
        let pad = width.saturating_sub(str_width(&name) + str_width(&count));
        let style = if open == Some(&c.key) {
            t.selected
        } else {
            Default::default()
        };
        let last = c
            .last
            .as_ref()
            .map_or_else(String::new, |(_, text)| escape(text).into_owned());
        [
            Line::from(vec![
                Span::styled(format!("{name}{}", " ".repeat(pad)), style),
                Span::styled(count, t.strong),
            ]),
            Line::styled(format!(" {}", truncate(&last, width.saturating_sub(1))), t.dim),
        ]
    };
    let requests = model.conversations.iter().filter(|c| c.request).count();
    let mut headed = false;
    let (contacts, strangers) = (
        model.conversations.iter().filter(|c| !c.request),
        model.conversations.iter().filter(|c| c.request),
    );
    for c in contacts.chain(strangers) {
        if c.request && !headed {
            headed = true;
            let head = format!("─ requests ({requests}) ");
            let fill = "─".repeat(width.saturating_sub(str_width(&head)));
            lines.push(Line::styled(format!("{head}{fill}"), t.dim));
        }
        if open == Some(&c.key) {
            at = lines.len();
        }
        lines.extend(row(c));
    }
    let height = usize::from(inner(area).height);
    let skip = (at + 2).saturating_sub(height);
    let block = Block::default().borders(Borders::ALL).title(" Conversations ");
    frame.render_widget(
        Paragraph::new(lines.split_off(skip.min(lines.len()))).block(block),
        area,
    );
}

fn draw_conversation(frame: &mut Frame<'_>, model: &Model, area: Rect, narrow: bool) {
    let t = theme(model.color);
    let mut block = Block::default().borders(Borders::ALL);
    let Some(open) = &model.open else {
        let text = "No conversation yet: /add NAME ID to start one, ? for keys.";
        frame.render_widget(Paragraph::new(text).block(block), area);
        return;
    };
    let summary = model.conversations.iter().find(|c| c.key == open.key);
    let mut title = format!(" {} ", label(model, &open.key));
    if summary.is_some_and(|s| s.request) {
        title.push_str("(request: /accept or /decline) ");
    }
    if narrow {
        let others: usize = model
            .conversations
            .iter()
            .filter(|c| c.key != open.key)
            .map(|c| model.unread(&c.key))
            .sum();
        if others > 0 {
            title.push_str(&format!("+{others} unread, Tab ⇥ "));
        }
    }
    block = block.title(Line::styled(title, t.strong));
    if let Some(rule) = summary.and_then(|s| s.disappearing)
        && !narrow
    {
        let text = format!(" disappears {} ", crate::cli::conversation::describe(Some(rule)));
        block = block.title(Line::styled(text, t.dim).alignment(Alignment::Right));
    }
    let body = inner(area);
    let height = usize::from(body.height);
    let view = open.rendered.visible(height, open.scroll);
    if open.scroll > 0 {
        let text = format!(" ↓ {} more rows (PgDn) ", open.scroll);
        block = block.title_bottom(Line::styled(text, t.waiting).alignment(Alignment::Right));
    }
    let selected = open.selected.map(|i| open.rendered.rows_of(i));
    // The newest message sits at the bottom, as in every chat.
    let mut lines: Vec<Line<'_>> = vec![Line::default(); height.saturating_sub(view.len())];
    for (row, line) in view.clone().zip(open.rendered.lines(view)) {
        if selected.as_ref().is_some_and(|r| r.contains(&row)) {
            lines.push(line.clone().patch_style(t.selected));
        } else {
            lines.push(line.clone());
        }
    }
    frame.render_widget(Paragraph::new(lines).block(block), area);
}

fn draw_notice(frame: &mut Frame<'_>, model: &Model, area: Rect) {
    let t = theme(model.color);
    if let Some(n) = &model.notice {
        let text = truncate(&escape(&n.text), usize::from(area.width));
        frame.render_widget(
            Paragraph::new(Line::styled(text, if n.error { t.bad } else { t.dim })),
            area,
        );
    }
}

fn draw_input(frame: &mut Frame<'_>, model: &Model, area: Rect) {
    let t = theme(model.color);
    let body = inner(area);
    let (rows, (row, col)) = model.input.rows(usize::from(body.width));
    let height = usize::from(body.height);
    let skip = (row + 1).saturating_sub(height);
    let title = match &model.open {
        _ if model.input().starts_with('/') && !model.input().starts_with("//") => " command ".to_owned(),
        Some(open) if area.width < NARROW => format!(" to {} ", label(model, &open.key)),
        Some(open) => format!(" to {} (Enter sends, Alt-Enter new line) ", label(model, &open.key)),
        None => " ".to_owned(),
    };
    let lines: Vec<Line<'_>> = rows.into_iter().skip(skip).map(Line::from).collect();
    let block = Block::default().borders(Borders::ALL).title(Line::styled(title, t.dim));
    frame.render_widget(Paragraph::new(lines).block(block), area);
    if !model.help && body.width > 0 && body.height > 0 {
        let x = body.x + u16::try_from(col).unwrap_or(0).min(body.width - 1);
        let y = body.y + u16::try_from(row - skip).unwrap_or(0).min(body.height - 1);
        frame.set_cursor_position((x, y));
    }
}

/// `n` minutes or hours, for ages.
fn age(ms: u64) -> String {
    match ms / 60_000 {
        0 => "<1 min".to_owned(),
        m @ 1..120 => format!("{m} min"),
        m => format!("{} h", m / 60),
    }
}

fn draw_status(frame: &mut Frame<'_>, model: &Model, area: Rect) {
    let t = theme(model.color);
    let s = &model.status;
    let (conn, style) = match &s.conn {
        Conn::Starting => ("connecting".to_owned(), t.waiting),
        Conn::Online => ("online".to_owned(), t.good),
        Conn::Offline(why) => (format!("offline ({})", escape(why)), t.bad),
    };
    let list = s.node_list_ms.map_or_else(
        || "no node list".to_owned(),
        |at| format!("node list {} old", age(model.now_ms.saturating_sub(at))),
    );
    let rest = format!(
        " · Tor {} · {list} · guards {}/{} · outbox {} · ? keys",
        if s.tor.is_empty() { "off" } else { s.tor },
        s.guards.0,
        s.guards.1,
        s.outbox
    );
    let width = usize::from(area.width);
    let conn = truncate(&conn, width);
    let rest = truncate(&rest, width.saturating_sub(str_width(&conn)));
    frame.render_widget(
        Paragraph::new(Line::from(vec![Span::styled(conn, style), Span::styled(rest, t.dim)])),
        area,
    );
}

/// The keys, then the commands.
const KEYS: &[(&str, &str)] = &[
    ("Enter", "send"),
    ("Alt-Enter, Ctrl-J", "new line"),
    ("Tab, Shift-Tab", "next, previous conversation (also Ctrl-N, Ctrl-P)"),
    ("PgUp, PgDn", "scroll back, forward"),
    ("Alt-↑, Alt-↓", "select an older, newer message"),
    ("↑, ↓", "recall what you sent (empty input)"),
    ("Ctrl-F", "find (/find TEXT)"),
    ("Esc", "clear the selection and the notice"),
    ("//text", "send text starting with /"),
    ("Ctrl-C, Ctrl-D", "quit"),
];

fn draw_help(frame: &mut Frame<'_>, model: &Model, area: Rect) {
    let t = theme(model.color);
    let box_area = area.inner(Margin::new(area.width / 10, area.height / 10));
    let width = usize::from(inner(box_area).width);
    let mut lines = Vec::new();
    for (keys, what) in KEYS.iter().chain(HELP) {
        let key_w = 20.min(width / 2);
        let keys = truncate(keys, key_w);
        let pad = " ".repeat(key_w.saturating_sub(str_width(&keys)) + 1);
        lines.push(Line::from(vec![
            Span::styled(format!("{keys}{pad}"), t.strong),
            Span::raw(truncate(what, width.saturating_sub(key_w + 1))),
        ]));
    }
    lines.push(Line::styled("Times are UTC. Any key closes this.", t.dim));
    frame.render_widget(Clear, box_area);
    let block = Block::default().borders(Borders::ALL).title(" Keys and commands ");
    frame.render_widget(Paragraph::new(lines).block(block), box_area);
}

#[cfg(test)]
#[path = "view_tests.rs"]
mod tests;
