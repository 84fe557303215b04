//! Positions: LSP lines and characters (UTF-16 code units unless the client
//! chose UTF-8) to byte offsets and back, through the file's line index (a
//! binary search, then the one line: an outline of thousands of symbols
//! costs no scan of the file each).

use lsp_types::{Position, Range};

use crate::diag::SourceFile;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Utf8,
    Utf16,
}

/// The byte offset of a position; past the end of a line is its end, before
/// its `\r\n` or `\n` (LSP's rule).
pub fn offset(file: &SourceFile, pos: Position, enc: Encoding) -> usize {
    let text = &*file.text;
    let Some(line_start) = file.line_start(pos.line as usize) else {
        return text.len();
    };
    let line_end = match file.line_start(pos.line as usize + 1) {
        Some(next) if text[..next].ends_with("\r\n") => next - 2,
        Some(next) => next - 1,
        None => text.len(),
    };
    let line = &text[line_start..line_end];
    // A position inside a character (a byte or a UTF-16 unit of it) is that
    // character's start.
    let mut units = 0u32;
    for (i, c) in line.char_indices() {
        units += match enc {
            Encoding::Utf8 => c.len_utf8() as u32,
            Encoding::Utf16 => c.len_utf16() as u32,
        };
        if units > pos.character {
            return line_start + i;
        }
    }
    line_end
}

/// The position of a byte offset.
pub fn position(file: &SourceFile, offset: usize, enc: Encoding) -> Position {
    let text = &*file.text;
    let offset = offset.min(text.len());
    let (line, line_start) = file.line_of(offset);
    let line = line as u32;
    let character = match enc {
        Encoding::Utf8 => (offset - line_start) as u32,
        Encoding::Utf16 => text[line_start..offset].encode_utf16().count() as u32,
    };
    Position { line, character }
}

pub fn range(file: &SourceFile, start: usize, end: usize, enc: Encoding) -> Range {
    Range {
        start: position(file, start, enc),
        end: position(file, end, enc),
    }
}
