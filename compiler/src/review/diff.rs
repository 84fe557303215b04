//! Line diffs, as `diff -u` prints them: imara-diff's Histogram algorithm,
//! whose heuristics (git's and GNU diff's) keep it near linear however many
//! lines change. (A plain Myers diff of a file whose every line changed is
//! quadratic: `fmt --check` of a 40,000-line list took 35 s.)

use std::fmt::{self, Write};

use imara_diff::{
    Algorithm, Diff, InternedInput, Interner, Token, UnifiedDiffConfig, UnifiedDiffPrinter,
};

fn diff_of<'a>(old: &'a str, new: &'a str) -> (InternedInput<&'a str>, Diff) {
    let input = InternedInput::new(old, new);
    let mut diff = Diff::compute(Algorithm::Histogram, &input);
    diff.postprocess_lines(&input);
    (input, diff)
}

/// The unified diff of two texts (`from` and `to` name them in its header),
/// with three lines of context; empty when they are equal.
pub fn unified_diff(old: &str, new: &str, from: &str, to: &str) -> String {
    let (input, diff) = diff_of(old, new);
    if diff.count_additions() == 0 && diff.count_removals() == 0 {
        return String::new();
    }
    let printer = Printer(&input.interner);
    let hunks = diff.unified_diff(&printer, UnifiedDiffConfig::default(), &input);
    format!("--- {from}\n+++ {to}\n{hunks}")
}

/// How many lines `new` adds to `old`, and how many it removes.
pub fn line_counts(old: &str, new: &str) -> (u32, u32) {
    let (_, diff) = diff_of(old, new);
    (diff.count_additions(), diff.count_removals())
}

/// Prints hunks as GNU diff does: a range of one line without its length,
/// and a last line without a line break marked `\ No newline at end of file`.
struct Printer<'a>(&'a Interner<&'a str>);

impl Printer<'_> {
    fn line(&self, f: &mut impl Write, sign: char, token: Token) -> fmt::Result {
        let line = self.0[token];
        write!(f, "{sign}{line}")?;
        if !line.ends_with('\n') {
            f.write_str("\n\\ No newline at end of file\n")?;
        }
        Ok(())
    }
}

/// `start,len` of a hunk's side (GNU's form: one line is `start`, none is the
/// line before).
fn range(start: u32, len: u32) -> String {
    match len {
        0 => format!("{start},0"),
        1 => format!("{}", start + 1),
        _ => format!("{},{len}", start + 1),
    }
}

impl UnifiedDiffPrinter for Printer<'_> {
    fn display_header(
        &self,
        mut f: impl Write,
        start_before: u32,
        start_after: u32,
        len_before: u32,
        len_after: u32,
    ) -> fmt::Result {
        writeln!(
            f,
            "@@ -{} +{} @@",
            range(start_before, len_before),
            range(start_after, len_after)
        )
    }

    fn display_context_token(&self, mut f: impl Write, token: Token) -> fmt::Result {
        self.line(&mut f, ' ', token)
    }

    fn display_hunk(&self, mut f: impl Write, before: &[Token], after: &[Token]) -> fmt::Result {
        for &t in before {
            self.line(&mut f, '-', t)?;
        }
        for &t in after {
            self.line(&mut f, '+', t)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What GNU diff prints for the same texts (`diff -u`), hunk by hunk.
    #[test]
    fn hunks_are_printed_as_gnu_diff_prints_them() {
        let old = "a\nb\nc\nd\ne\nf\ng\nh\ni\nj\nk\n";
        let new = "a\nB\nc\nd\ne\nf\ng\nh\ni\nj\nk\nl";
        assert_eq!(
            unified_diff(old, new, "a/x", "b/x"),
            "--- a/x\n+++ b/x\n@@ -1,5 +1,5 @@\n a\n-b\n+B\n c\n d\n e\n@@ -9,3 +9,4 @@\n i\n j\n k\n+l\n\\ No newline at end of file\n"
        );
        assert_eq!(unified_diff("same\n", "same\n", "a", "b"), "");
        assert_eq!(
            unified_diff("", "x\n", "a", "b"),
            "--- a\n+++ b\n@@ -0,0 +1 @@\n+x\n"
        );
        assert_eq!(line_counts(old, new), (2, 1));
    }
}
