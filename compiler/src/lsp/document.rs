//! An open document: its text as the client's changes leave it, and its
//! analyses.
//!
//! The text is a rope (ropey): the server offers incremental
//! synchronisation, so a keystroke sends the range it changed, not the whole
//! file, and a replace-all sends thousands of changes in one notification;
//! each is applied in logarithmic time, and the text is made a string once,
//! for the analysis of the notification's last version.

use std::sync::Arc;

use lsp_types::{Position, TextDocumentContentChangeEvent};
use ropey::Rope;

use super::{Analysis, Encoding};

pub(super) struct Document {
    text: Rope,
    /// This version's analysis, once computed.
    pub analysis: Option<Arc<Analysis>>,
    /// The last analysis of a version that parsed: while the text being typed
    /// does not parse, completion and navigation use its names.
    pub last_parsed: Option<Arc<Analysis>>,
    /// The last analysis of a version without errors: while the text has
    /// some, hover shows its values, marked as that version's.
    pub last_planned: Option<Arc<Analysis>>,
}

impl Document {
    pub fn open(text: &str) -> Document {
        Document {
            text: Rope::from_str(text),
            analysis: None,
            last_parsed: None,
            last_planned: None,
        }
    }

    /// The text, as one string.
    pub fn text(&self) -> String {
        self.text.to_string()
    }

    /// Applies one change of a `didChange` notification, in its order: a
    /// range replaced (positions in the negotiated encoding), or without a
    /// range the whole text. The analysis of the old text is returned, to
    /// be freed off the server's thread.
    pub fn change(
        &mut self,
        change: TextDocumentContentChangeEvent,
        enc: Encoding,
    ) -> Option<Arc<Analysis>> {
        match change.range {
            None => self.text = Rope::from_str(&change.text),
            Some(range) => {
                let a = char_index(&self.text, range.start, enc);
                let b = char_index(&self.text, range.end, enc);
                // A range given end first is taken as the text between.
                let (start, end) = (a.min(b), a.max(b));
                self.text.remove(start..end);
                self.text.insert(start, &change.text);
            }
        }
        self.analysis.take()
    }
}

/// The index of the character at an LSP position, as `text::offset` reads a
/// position: a line past the last is the end of the text, a character past
/// the end of its line is the line's end (before its `\r\n` or `\n`), and a
/// position inside a character (a UTF-8 byte or a UTF-16 unit of it) is that
/// character's start.
fn char_index(rope: &Rope, pos: Position, enc: Encoding) -> usize {
    let line = pos.line as usize;
    if line >= rope.len_lines() {
        return rope.len_chars();
    }
    let start = rope.line_to_char(line);
    let end = if line + 1 < rope.len_lines() {
        let newline = rope.line_to_char(line + 1) - 1;
        match newline.checked_sub(1) {
            Some(cr) if cr >= start && rope.char(cr) == '\r' => cr,
            _ => newline,
        }
    } else {
        rope.len_chars()
    };
    let column = pos.character as usize;
    match enc {
        Encoding::Utf8 => {
            let byte = rope.char_to_byte(start) + column;
            rope.byte_to_char(byte.min(rope.char_to_byte(end)))
        }
        Encoding::Utf16 => {
            let unit = rope.char_to_utf16_cu(start) + column;
            rope.utf16_cu_to_char(unit.min(rope.char_to_utf16_cu(end)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lsp_types::Range;

    fn edit(
        line: u32,
        character: u32,
        to: (u32, u32),
        text: &str,
    ) -> TextDocumentContentChangeEvent {
        TextDocumentContentChangeEvent {
            range: Some(Range {
                start: Position { line, character },
                end: Position {
                    line: to.0,
                    character: to.1,
                },
            }),
            range_length: None,
            text: text.into(),
        }
    }

    /// What `text::offset` reads at each position of `text`, and the
    /// change's position: the two must agree, or an edit lands beside the
    /// place its diagnostics were reported at.
    #[test]
    fn positions_are_read_as_the_diagnostics_report_them() {
        let text = "a€𝄞b\r\nsecond\n\nlast";
        let mut sources = crate::diag::SourceMap::default();
        let id = sources.add("t", text);
        let file = sources.get(id);
        let rope = Rope::from_str(text);
        for enc in [Encoding::Utf8, Encoding::Utf16] {
            for line in 0..6 {
                for character in 0..14 {
                    let pos = Position { line, character };
                    let offset = super::super::text::offset(file, pos, enc);
                    let from_rope = rope.char_to_byte(char_index(&rope, pos, enc));
                    assert_eq!(from_rope, offset, "{enc:?} {line}:{character}");
                }
            }
        }
    }

    #[test]
    fn changes_apply_in_order_in_either_encoding() {
        // "€" is 3 bytes and 1 UTF-16 unit, "𝄞" 4 bytes and 2 units.
        let mut doc = Document::open("x€𝄞 = 1\nsecond\n");
        doc.change(edit(0, 4, (0, 5), "y"), Encoding::Utf16);
        assert_eq!(doc.text(), "x€𝄞y= 1\nsecond\n");
        // Inside a character: its start.
        doc.change(edit(0, 3, (0, 3), "_"), Encoding::Utf16);
        assert_eq!(doc.text(), "x€_𝄞y= 1\nsecond\n");
        doc.change(edit(0, 2, (0, 3), ""), Encoding::Utf16);
        assert_eq!(doc.text(), "x€𝄞y= 1\nsecond\n");
        doc.change(edit(0, 9, (0, 10), "z"), Encoding::Utf8);
        assert_eq!(doc.text(), "x€𝄞yz 1\nsecond\n");
        // Across lines, then an insertion at the end, then the whole text.
        doc.change(edit(0, 12, (1, 3), "\n"), Encoding::Utf8);
        assert_eq!(doc.text(), "x€𝄞yz 1\nond\n");
        doc.change(edit(2, 0, (2, 0), "end"), Encoding::Utf16);
        assert_eq!(doc.text(), "x€𝄞yz 1\nond\nend");
        let whole = TextDocumentContentChangeEvent {
            range: None,
            range_length: None,
            text: "new".into(),
        };
        doc.change(whole, Encoding::Utf16);
        assert_eq!(doc.text(), "new");
        // Past the end of a line and of the text: their ends.
        doc.change(edit(0, 40, (9, 9), "!"), Encoding::Utf16);
        assert_eq!(doc.text(), "new!");
    }
}
