//! Syntax: the pest grammar (`stack.pest`) and the untyped, spanned tree it produces.
//!
//! Parsing is a pure function of the text. The tree is generic (every entry is
//! `key [label] [: kind] [= value | { entries }]`); `lower` gives it meaning.

mod parse;
mod tree;

pub use parse::parse;
pub use tree::*;
