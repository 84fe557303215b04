//! Syntax: the grammar (`stack.pest`), a hand-written parser for it (`fast`) with
//! pest as the reference and the reporter of syntax errors, and the untyped,
//! spanned tree they produce.
//!
//! Parsing is a pure function of the text. The tree is generic (every entry is
//! `key [label] [: kind] [= value | { entries }]`); `lower` gives it meaning.

mod fast;
mod parse;
mod recover;
mod rules;
mod tree;

pub use fast::{parse as parse_fast, parse_at as parse_fast_at};
pub use parse::{parse, parse_visiting, parse_with_pest, SPLIT_AT};
pub use tree::*;
