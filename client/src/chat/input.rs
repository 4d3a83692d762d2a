//! The input line: what the user is typing, with a cursor, line breaks and
//! a history of what was sent.

use std::collections::VecDeque;

use super::wrap::char_width;

/// Most bytes the input holds (a message is far smaller; a paste beyond
/// this is cut).
pub const MAX_INPUT_BYTES: usize = 64 * 1024;

/// How many sent inputs ↑ can recall.
const HISTORY: usize = 100;

/// The text being typed.
#[derive(Debug, Default, Clone)]
pub struct Input {
    text: String,
    /// Byte offset, always on a character boundary.
    cursor: usize,
    history: VecDeque<String>,
    /// Which history entry is shown (0 is the newest), while recalling.
    recall: Option<usize>,
}

impl Input {
    /// What is typed.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Whether nothing is typed.
    pub fn is_empty(&self) -> bool {
        self.text.is_empty()
    }

    /// Replaces the text, cursor at its end.
    pub fn set(&mut self, text: &str) {
        self.text.clear();
        self.cursor = 0;
        self.recall = None;
        self.insert_str(text);
    }

    /// Inserts `c` at the cursor. Control characters other than a line
    /// break are dropped (a tab becomes a space): they would act on the
    /// terminal when drawn.
    pub fn insert(&mut self, c: char) {
        let c = if c == '\t' { ' ' } else { c };
        if (c.is_control() && c != '\n') || self.text.len() + c.len_utf8() > MAX_INPUT_BYTES {
            return;
        }
        self.text.insert(self.cursor, c);
        self.cursor += c.len_utf8();
    }

    /// Inserts pasted text (`\r\n` and `\r` are line breaks).
    pub fn insert_str(&mut self, s: &str) {
        for c in s.replace("\r\n", "\n").replace('\r', "\n").chars() {
            self.insert(c);
        }
    }

    /// Deletes the character before the cursor.
    pub fn backspace(&mut self) {
        if let Some(c) = self.text[..self.cursor].chars().next_back() {
            self.cursor -= c.len_utf8();
            self.text.remove(self.cursor);
        }
    }

    /// Deletes the character at the cursor.
    pub fn delete(&mut self) {
        if self.cursor < self.text.len() {
            self.text.remove(self.cursor);
        }
    }

    /// Deletes the word before the cursor (and the spaces after it).
    pub fn delete_word(&mut self) {
        let before = &self.text[..self.cursor];
        let trimmed = before.trim_end_matches(' ');
        let start = trimmed.rfind([' ', '\n']).map_or(0, |i| i + 1);
        self.text.replace_range(start..self.cursor, "");
        self.cursor = start;
    }

    /// Moves the cursor one character left.
    pub fn left(&mut self) {
        if let Some(c) = self.text[..self.cursor].chars().next_back() {
            self.cursor -= c.len_utf8();
        }
    }

    /// Moves the cursor one character right.
    pub fn right(&mut self) {
        if let Some(c) = self.text[self.cursor..].chars().next() {
            self.cursor += c.len_utf8();
        }
    }

    /// Moves the cursor to the start of its line.
    pub fn home(&mut self) {
        self.cursor = self.text[..self.cursor].rfind('\n').map_or(0, |i| i + 1);
    }

    /// Moves the cursor to the end of its line.
    pub fn end(&mut self) {
        self.cursor += self.text[self.cursor..]
            .find('\n')
            .unwrap_or(self.text.len() - self.cursor);
    }

    /// Clears the input.
    pub fn clear(&mut self) {
        self.set("");
    }

    /// Takes what is typed (it goes into the history) and clears the input.
    pub fn take(&mut self) -> String {
        let text = std::mem::take(&mut self.text);
        self.cursor = 0;
        self.recall = None;
        if !text.trim().is_empty() && self.history.front() != Some(&text) {
            self.history.push_front(text.clone());
            self.history.truncate(HISTORY);
        }
        text
    }

    /// Whether ↑/↓ recall the history now: the input is empty or shows a
    /// recalled entry, and has no line breaks to move between.
    pub fn recalling(&self) -> bool {
        (self.text.is_empty() || self.recall.is_some()) && !self.text.contains('\n')
    }

    /// Shows the next older sent input.
    pub fn older(&mut self) {
        let next = self.recall.map_or(0, |i| i + 1);
        if let Some(entry) = self.history.get(next).cloned() {
            self.set(&entry);
            self.recall = Some(next);
        }
    }

    /// Shows the next newer sent input (past the newest: empty).
    pub fn newer(&mut self) {
        match self.recall {
            Some(0) | None => self.clear(),
            Some(i) => {
                if let Some(entry) = self.history.get(i - 1).cloned() {
                    self.set(&entry);
                    self.recall = Some(i - 1);
                }
            }
        }
    }

    /// The text cut into rows of `width` cells (at line breaks and
    /// wherever a row is full), and the cursor's row and column.
    pub fn rows(&self, width: usize) -> (Vec<String>, (usize, usize)) {
        let width = width.max(1);
        let mut rows = vec![String::new()];
        let (mut col, mut cursor) = (0, (0, 0));
        for (i, c) in self.text.char_indices() {
            let w = char_width(c);
            if c != '\n' && col + w > width {
                rows.push(String::new());
                col = 0;
            }
            if i == self.cursor {
                cursor = (rows.len() - 1, col);
            }
            if c == '\n' {
                rows.push(String::new());
                col = 0;
                continue;
            }
            if let Some(row) = rows.last_mut() {
                row.push(c);
            }
            col += w;
        }
        if self.cursor == self.text.len() {
            if col >= width {
                rows.push(String::new());
                col = 0;
            }
            cursor = (rows.len() - 1, col);
        }
        (rows, cursor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn typed(s: &str) -> Input {
        let mut i = Input::default();
        i.insert_str(s);
        i
    }

    #[test]
    fn editing_moves_by_characters_not_bytes() {
        let mut i = typed("héllo");
        i.left();
        i.left();
        i.left();
        i.left();
        i.backspace();
        assert_eq!(i.text(), "éllo");
        i.delete();
        assert_eq!(i.text(), "llo");
        i.end();
        i.insert('!');
        assert_eq!(i.text(), "llo!");
    }

    #[test]
    fn controls_are_dropped_and_pasted_line_breaks_kept() {
        let i = typed("a\u{1b}[2Jb\r\nc\td");
        assert_eq!(i.text(), "a[2Jb\nc d");
    }

    #[test]
    fn history_recalls_sent_inputs_newest_first() {
        let mut i = Input::default();
        for s in ["one", "two", "two", "three"] {
            i.insert_str(s);
            i.take();
        }
        assert!(i.recalling());
        i.older();
        assert_eq!(i.text(), "three");
        i.older();
        assert_eq!(i.text(), "two");
        i.older();
        assert_eq!(i.text(), "one");
        i.older();
        assert_eq!(i.text(), "one", "no older entry: stays");
        i.newer();
        assert_eq!(i.text(), "two");
        i.newer();
        i.newer();
        assert_eq!(i.text(), "");
    }

    #[test]
    fn delete_word_takes_the_last_word() {
        let mut i = typed("hello big world  ");
        i.delete_word();
        assert_eq!(i.text(), "hello big ");
        i.home();
        i.delete_word();
        assert_eq!(i.text(), "hello big ");
    }

    #[test]
    fn rows_wrap_and_place_the_cursor() {
        let i = typed("abcdef\ngh");
        let (rows, cursor) = i.rows(4);
        assert_eq!(rows, ["abcd", "ef", "gh"]);
        assert_eq!(cursor, (2, 2));
        let i = typed("abcd");
        assert_eq!(i.rows(4), (vec!["abcd".to_owned(), String::new()], (1, 0)));
        let mut i = typed("漢字漢");
        i.left();
        assert_eq!(i.rows(5), (vec!["漢字".to_owned(), "漢".to_owned()], (1, 0)));
    }

    #[test]
    fn the_input_is_bounded() {
        let mut i = Input::default();
        i.insert_str(&"x".repeat(MAX_INPUT_BYTES + 10));
        assert_eq!(i.text().len(), MAX_INPUT_BYTES);
    }
}
