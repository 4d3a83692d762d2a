//! Text laid out in terminal cells.
//!
//! Widths come from `unicode-width`, so a wide character takes two cells
//! and a combining one none, as the terminal draws them. Text reaching
//! here has been escaped ([`crate::display::escape`]): no control
//! character is left to move the cursor.

use unicode_width::UnicodeWidthChar as _;

/// The cells `c` takes.
pub fn char_width(c: char) -> usize {
    c.width().unwrap_or(0)
}

/// The cells `s` takes.
pub fn str_width(s: &str) -> usize {
    s.chars().map(char_width).sum()
}

/// `text` split into rows: the first at most `first` cells wide, the rest
/// at most `rest`. Rows break at spaces; a word longer than a row is cut
/// between characters (never inside a wide one). Always at least one row.
pub fn wrap(text: &str, first: usize, rest: usize) -> Vec<String> {
    let mut rows = Vec::new();
    let mut row = String::new();
    let mut used = 0;
    let avail = |rows: &Vec<String>| if rows.is_empty() { first.max(1) } else { rest.max(1) };
    for (i, word) in text.split(' ').enumerate() {
        let w = str_width(word);
        let gap = usize::from(i > 0);
        if used + gap + w <= avail(&rows) {
            if i > 0 {
                row.push(' ');
            }
            row.push_str(word);
            used += gap + w;
            continue;
        }
        // The word does not fit after what the row holds.
        if !row.is_empty() {
            rows.push(std::mem::take(&mut row));
            used = 0;
        }
        if w <= avail(&rows) {
            row.push_str(word);
            used = w;
            continue;
        }
        for c in word.chars() {
            let cw = char_width(c);
            if used + cw > avail(&rows) && used > 0 {
                rows.push(std::mem::take(&mut row));
                used = 0;
            }
            row.push(c);
            used += cw;
        }
    }
    rows.push(row);
    rows
}

/// The longest start of `s` that fits in `width` cells, with `…` when cut.
pub fn truncate(s: &str, width: usize) -> String {
    if str_width(s) <= width {
        return s.to_owned();
    }
    let mut out = String::new();
    let mut used = 0;
    for c in s.chars() {
        let cw = char_width(c);
        if used + cw + 1 > width {
            break;
        }
        out.push(c);
        used += cw;
    }
    if width > 0 {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn breaks_at_spaces_and_cuts_only_long_words() {
        assert_eq!(wrap("the quick brown fox", 10, 10), ["the quick", "brown fox"]);
        assert_eq!(wrap("abcdefghijkl", 5, 5), ["abcde", "fghij", "kl"]);
        assert_eq!(wrap("ab cdefghijkl", 5, 8), ["ab", "cdefghij", "kl"]);
        assert_eq!(wrap("", 5, 5), [""]);
    }

    #[test]
    fn wide_and_combining_characters_take_their_cells() {
        // Each CJK character takes 2 cells: 3 fit in 7.
        assert_eq!(wrap("漢字漢字漢字", 7, 7), ["漢字漢", "字漢字"]);
        // e + combining acute is one cell.
        assert_eq!(str_width("e\u{301}"), 1);
        assert_eq!(wrap("e\u{301}e\u{301}e\u{301}", 2, 2), ["e\u{301}e\u{301}", "e\u{301}"]);
    }

    #[test]
    fn truncation_marks_the_cut() {
        assert_eq!(truncate("garden party", 8), "garden …");
        assert_eq!(truncate("short", 8), "short");
        assert_eq!(truncate("漢字漢字", 5), "漢字…");
    }

    proptest! {
        #[test]
        fn no_row_is_wider_than_asked_unless_one_character_is(text in "[a-z 漢\u{301}]{0,80}", first in 1usize..20, rest in 1usize..20) {
            let rows = wrap(&text, first, rest);
            for (i, row) in rows.iter().enumerate() {
                let limit = if i == 0 { first } else { rest };
                prop_assert!(str_width(row) <= limit.max(2), "{row:?} wider than {limit}");
            }
            // Nothing is lost but the spaces where rows break.
            let kept: String = rows.concat().chars().filter(|c| *c != ' ').collect();
            let given: String = text.chars().filter(|c| *c != ' ').collect();
            prop_assert_eq!(kept, given);
        }
    }
}
