//! Positions: LSP lines and characters (UTF-16 code units unless the client
//! chose UTF-8) to byte offsets and back.

use lsp_types::{Position, Range};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Utf8,
    Utf16,
}

/// The byte offset of a position; past the end of a line is its end.
pub fn offset(text: &str, pos: Position, enc: Encoding) -> usize {
    let mut line_start = 0;
    for _ in 0..pos.line {
        match text[line_start..].find('\n') {
            Some(i) => line_start += i + 1,
            None => return text.len(),
        }
    }
    let line_end = text[line_start..]
        .find('\n')
        .map_or(text.len(), |i| line_start + i);
    let line = &text[line_start..line_end];
    let mut units = 0u32;
    for (i, c) in line.char_indices() {
        if units >= pos.character {
            return line_start + i;
        }
        units += match enc {
            Encoding::Utf8 => c.len_utf8() as u32,
            Encoding::Utf16 => c.len_utf16() as u32,
        };
    }
    line_end
}

/// The position of a byte offset.
pub fn position(text: &str, offset: usize, enc: Encoding) -> Position {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line = before.matches('\n').count() as u32;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let character = match enc {
        Encoding::Utf8 => (offset - line_start) as u32,
        Encoding::Utf16 => text[line_start..offset].encode_utf16().count() as u32,
    };
    Position { line, character }
}

pub fn range(text: &str, start: usize, end: usize, enc: Encoding) -> Range {
    Range {
        start: position(text, start, enc),
        end: position(text, end, enc),
    }
}
