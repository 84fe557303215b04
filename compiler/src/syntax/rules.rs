//! The pest parser that `stack.pest` derives: the reference grammar.

use pest::Parser as _;

#[derive(pest_derive::Parser)]
#[grammar = "syntax/stack.pest"]
pub(super) struct StackParser;

/// Why pest rejects `part` as a whole file; `None` when it accepts it.
pub(super) fn pest_error(part: &str) -> Option<pest::error::Error<Rule>> {
    StackParser::parse(Rule::file, part).err()
}
