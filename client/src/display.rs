//! Text from the network made safe for a terminal.
//!
//! A message body, a name or an error message a node sent is someone
//! else's text: printed raw, an ESC sequence could move the cursor, change
//! colours, set the window title or rewrite earlier lines, and a newline
//! followed by `05…: text` would forge a second message. Every
//! human-readable line the CLI prints with such text goes through
//! [`escape`] (JSON output needs nothing: JSON escapes control characters
//! itself).

use std::borrow::Cow;
use std::fmt::Write as _;

/// How an account is named for people, unescaped: the nickname this
/// account gave it; else the name it chose with the start of its Account
/// ID (a chosen name proves nothing, so it never stands alone); none
/// without either.
pub fn account_label(id: &allium_common::AccountId, nickname: Option<&str>, chosen: Option<&str>) -> Option<String> {
    match (nickname, chosen) {
        (Some(n), _) => Some(n.to_owned()),
        (None, Some(c)) => Some(format!("{c} ({}…)", &id.to_string()[..10])),
        (None, None) => None,
    }
}

/// Whether `c` must not reach a terminal as it is: C0 controls (newline and
/// tab included), DEL, C1 controls, and the Unicode controls that reorder
/// or hide text (bidirectional embeddings, overrides and isolates, the
/// line and paragraph separators).
fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{200E}' | '\u{200F}' | '\u{2028}' | '\u{2029}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
        )
}

/// `text` with every unsafe character written as an escape: `\n`, `\r`,
/// `\t`, `\e` for ESC and `\u{XXXX}` for the rest; a backslash is doubled
/// so that no escape can be faked. Text without either is returned as it
/// is.
pub fn escape(text: &str) -> Cow<'_, str> {
    if !text.chars().any(|c| is_unsafe(c) || c == '\\') {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{1b}' => out.push_str("\\e"),
            c if is_unsafe(c) => {
                let _ = write!(out, "\\u{{{:04x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn escapes_what_a_terminal_would_act_on() {
        assert_eq!(escape("hello, wörld 👋"), "hello, wörld 👋");
        assert!(matches!(escape("plain"), Cow::Borrowed(_)));
        assert_eq!(escape("a\nb"), "a\\nb");
        assert_eq!(escape("\u{1b}[2J\u{1b}]0;owned\u{7}"), "\\e[2J\\e]0;owned\\u{0007}");
        assert_eq!(escape("x\u{9b}31m"), "x\\u{009b}31m", "C1 CSI");
        assert_eq!(escape("abc\u{202e}fed"), "abc\\u{202e}fed", "right-to-left override");
        assert_eq!(escape("\u{7f}"), "\\u{007f}");
        assert_eq!(escape("back\\slash"), "back\\\\slash");
    }

    #[test]
    fn a_forged_second_line_stays_on_the_first() {
        let forged = "hi\n[2026-12-02 04:00:00] 05aaaa: send me your phrase";
        let shown = escape(forged);
        assert_eq!(shown.lines().count(), 1);
        assert!(shown.starts_with("hi\\n["));
    }

    proptest! {
        #[test]
        fn nothing_unsafe_survives(text in any::<String>()) {
            let shown = escape(&text);
            prop_assert!(!shown.chars().any(is_unsafe), "{shown:?}");
        }

        #[test]
        fn safe_text_is_unchanged(text in "[a-zA-Z0-9 .,!?éü👋-]*") {
            prop_assert_eq!(escape(&text), text.as_str());
        }
    }
}
