//! The hand-written parser against the pest grammar it implements: on every
//! .stack file of the repository and on thousands of mutations of them, it
//! accepts exactly what pest accepts, builds the same tree (same spans), and
//! reports the same escape errors; what it rejects, pest rejects too (and
//! reports), or it nests deeper than `parse` allows (and `parse` reports that).

use stackc::diag::{Code, Diagnostics, FileId};
use stackc::syntax::{parse, parse_fast, parse_fast_at, parse_with_pest, SPLIT_AT};

use crate::generate::Rng;
use crate::support::{read, rel, stack_files};

/// Compares both parsers on one text; `Err` describes a disagreement.
fn agree(text: &str) -> Result<bool, String> {
    let file = FileId(0);
    let mut fast_diags = Diagnostics::default();
    let fast = parse_fast(file, text, &mut fast_diags);
    let mut pest_diags = Diagnostics::default();
    let pest = parse_with_pest(file, text, &mut pest_diags);
    let pest_diags = pest_diags.finish();
    let pest_rejects = pest_diags.iter().any(|d| d.code == Code::Syntax);
    match fast {
        Some(tree) => {
            if pest_rejects {
                return Err(format!(
                    "fast accepts what pest rejects: {:?}",
                    pest_diags[0].message
                ));
            }
            if tree != pest {
                return Err("the trees differ".into());
            }
            let fast_diags = fast_diags.finish();
            if fast_diags != pest_diags {
                return Err(format!(
                    "the diagnostics differ: {fast_diags:?} / {pest_diags:?}"
                ));
            }
            Ok(true)
        }
        None if pest_rejects => Ok(false),
        // Past `MAX_NESTING` levels the fast parser gives up and `parse`
        // reports the depth (pest has no limit).
        None if too_deep(text) => Ok(false),
        None => Err("fast rejects what pest accepts".into()),
    }
}

/// Whether `parse` rejects the text for nesting too deep.
fn too_deep(text: &str) -> bool {
    let mut diags = Diagnostics::default();
    parse(FileId(0), text, &mut diags);
    diags
        .finish()
        .iter()
        .any(|d| d.code == Code::Syntax && d.message.contains("nest deeper than"))
}

/// The repository's .stack files, and the fuzzers' regression cases.
fn corpus() -> Vec<(String, String)> {
    ["examples", "stdlib", "tests", "fuzz/regressions"]
        .iter()
        .flat_map(|d| stack_files(d))
        .map(|p| (rel(&p), read(&p)))
        .collect()
}

/// Each service is lowered as soon as it is parsed (`lower::service`); `check`
/// and `build` then free its subtree, the language server keeps it. Both must
/// give the same diagnostics and the same plan.
fn lowered_alike(text: &str) -> Result<(), String> {
    let options = crate::support::options(std::path::Path::new("lowered.stack"));
    let freed = stackc::analyze(text, &options, stackc::Disposal::Free);
    let (plan, diagnostics) = (freed.plan, freed.diagnostics);
    let with_trees = stackc::analyze(text, &options, stackc::Disposal::KeepTrees);
    if with_trees.trees.is_empty() || !freed.trees.is_empty() {
        return Err("the trees are kept only when asked".into());
    }
    if diagnostics != with_trees.diagnostics {
        return Err(format!(
            "the diagnostics differ: {diagnostics:?} / {:?}",
            with_trees.diagnostics
        ));
    }
    if plan != with_trees.plan {
        return Err("the plans differ".into());
    }
    Ok(())
}

#[test]
fn freeing_each_services_subtree_changes_no_diagnostic_and_no_plan() {
    for (name, text) in corpus() {
        if let Err(e) = lowered_alike(&text) {
            panic!("{name}: {e}");
        }
    }
}

#[test]
fn both_parsers_agree_on_every_file() {
    let mut accepted = 0;
    for (name, text) in corpus() {
        match agree(&text) {
            Ok(true) => accepted += 1,
            Ok(false) => {}
            Err(e) => panic!("{name}: {e}"),
        }
    }
    assert!(accepted > 50, "{accepted}");
}

#[test]
fn both_parsers_agree_on_mutations() {
    const TOKENS: &[&str] = &[
        "{",
        "}",
        "[",
        "]",
        "\"",
        "=",
        ":",
        "#",
        "\n",
        ",",
        ".",
        "${",
        "}",
        "\\",
        "\\q",
        "1",
        "1.5",
        "2Gi",
        "5e3",
        "a",
        "-",
        "_",
        " ",
        "true",
        "false_x",
        "db.url",
        "${db.url}",
        "$",
        "\t",
        "é",
        "10s",
        "[]",
        "{}",
    ];
    let corpus = corpus();
    let mut rng = Rng(0x5EED_CAFE_F00D_1234);
    let (mut accepted, mut rejected) = (0, 0);
    for round in 0..2500 {
        let (name, base) = &corpus[rng.below(corpus.len())];
        let mut text = base.clone();
        for _ in 0..=rng.below(3) {
            let mut at = rng.below(text.len() + 1);
            while !text.is_char_boundary(at) {
                at -= 1;
            }
            match rng.below(3) {
                0 => text.insert_str(at, TOKENS[rng.below(TOKENS.len())]),
                1 => {
                    let mut end = (at + 1 + rng.below(8)).min(text.len());
                    while !text.is_char_boundary(end) {
                        end += 1;
                    }
                    text.replace_range(at..end, "");
                }
                _ => {
                    let mut end = (at + rng.below(20)).min(text.len());
                    while !text.is_char_boundary(end) {
                        end += 1;
                    }
                    let piece = text[at..end].to_string();
                    text.insert_str(at, &piece);
                }
            }
        }
        match agree(&text) {
            Ok(true) => accepted += 1,
            Ok(false) => rejected += 1,
            Err(e) => panic!("mutation {round} of {name}: {e}\n----- TEXT\n{text}"),
        }
    }
    // Both sides are exercised.
    assert!(
        accepted > 200 && rejected > 200,
        "{accepted} accepted, {rejected} rejected"
    );
}

/// Parsing in two halves gives the tree and the diagnostics of one parse,
/// wherever the split is: between top-level entries (the halves are joined),
/// and anywhere else (inside a block, a string or a comment: the file is
/// parsed again whole).
#[test]
fn a_file_parsed_in_halves_is_parsed_as_whole_wherever_it_is_split() {
    let file = FileId(0);
    // Files that parse, one after the other, with an escape error (reported
    // without failing the parse) near each end and a comment and a string that
    // hold braces.
    let mut text = String::from("a = \"\\q\"\n# } { a comment with braces\n");
    for (_, t) in corpus()
        .iter()
        .filter(|(_, t)| agree(t) == Ok(true))
        .take(12)
    {
        text.push_str(t);
        text.push('\n');
    }
    text.push_str("b = \"} \\w {\"\n");
    let mut whole_diags = Diagnostics::default();
    let whole = parse_fast(file, &text, &mut whole_diags).expect("the corpus parses");
    let whole_diags = whole_diags.finish();
    assert_eq!(whole_diags.len(), 2, "{whole_diags:?}");
    // Every top-level entry's end, and offsets all through the text.
    let mut middles: Vec<usize> = whole.entries.iter().map(|e| e.end as usize).collect();
    middles.extend((1..text.len()).step_by(text.len() / 400 + 1));
    let mut joined = 0;
    for m in middles.into_iter().filter(|&m| text.is_char_boundary(m)) {
        let mut diags = Diagnostics::default();
        let tree = parse_fast_at(file, &text, Some(m), &mut diags);
        assert!(
            tree.as_ref() == Some(&whole),
            "split at {m}: the trees differ"
        );
        assert_eq!(diags.finish(), whole_diags, "split at {m}");
        joined += usize::from(whole.entries.iter().any(|e| e.end as usize == m));
    }
    assert!(joined > 20, "{joined}");
}

/// A file large enough to be parsed in two halves: the trees agree, and with a
/// syntax error in the second half pest reports it, as for any file, and the
/// entries around it are kept.
#[test]
fn a_large_file_is_parsed_as_pest_parses_it() {
    let file = FileId(0);
    let unit: String = corpus()
        .into_iter()
        .filter(|(_, t)| agree(t) == Ok(true))
        .map(|(_, t)| t + "\n")
        .take(20)
        .collect();
    let mut text = String::new();
    while text.len() < SPLIT_AT + SPLIT_AT / 2 {
        text.push_str(&unit);
    }
    text.push_str("c = \"\\q\"\n");
    assert_eq!(agree(&text), Ok(true));
    let mut diags = Diagnostics::default();
    let mut pest_diags = Diagnostics::default();
    assert_eq!(
        parse(file, &text, &mut diags),
        parse_with_pest(file, &text, &mut pest_diags)
    );
    assert_eq!(diags.finish(), pest_diags.finish());
    // Lowered in halves as it is parsed, with errors in services of both.
    let mut with_errors = format!("service first-bad {{\n  replicas = \"two\"\n}}\n{text}");
    with_errors.push_str("service last_bad {\n  port http = 99999\n  colour = 3\n}\n");
    assert_eq!(lowered_alike(&with_errors), Ok(()));
    let options = crate::support::options(std::path::Path::new("lowered.stack"));
    let diagnostics = stackc::analyze(&with_errors, &options, stackc::Disposal::Free).diagnostics;
    let at = |what: &str| {
        diagnostics
            .iter()
            .find(|d| d.message.contains(what))
            .map(|d| d.primary.span.start as usize)
    };
    let middle = with_errors.len() / 2;
    assert!(at("expected a replica count").is_some_and(|s| s < middle));
    assert!(at("unknown field `colour`").is_some_and(|s| s > middle));

    // A syntax error in the second half: the entries around it are kept
    // (`syntax::recover`), the one that does not parse is reported.
    let whole = parse(file, &text, &mut Diagnostics::default()).entries;
    text.push_str("service broken {\n  image = \n}\nservice after {}\n");
    let mut diags = Diagnostics::default();
    let tree = parse(file, &text, &mut diags);
    let diags = diags.finish();
    assert_eq!(tree.entries.len(), whole.len() + 1);
    assert_eq!(tree.entries[..whole.len()], whole[..]);
    assert_eq!(tree.entries[whole.len()].key.name.as_str(), "service");
    let syntax: Vec<_> = diags.iter().filter(|d| d.code == Code::Syntax).collect();
    assert_eq!(syntax.len(), 1, "{diags:?}");
    assert!(syntax[0].primary.span.start as usize > text.len() / 2);
}

/// No input makes the whole pipeline panic: thousands of mutations of the
/// repository's files (including ones that parse and then fail checks in odd
/// ways) go through `compile`, which must return diagnostics, never unwind.
#[test]
fn no_mutation_makes_the_pipeline_panic() {
    const TOKENS: &[&str] = &[
        "{",
        "}",
        "[",
        "]",
        "=",
        "\n",
        ",",
        "db",
        "api",
        "self",
        "secret",
        "x.url",
        "0",
        "65536",
        "99999999999999999999",
        "-1s",
        "1Gi",
        "true",
        "run",
        "host",
        "ha",
        "mode",
        "replicas = 0",
        "port",
        "route \"/\"",
        "topology t { host h { run = [api] } }",
        "${self.url}",
        "\"\"",
        "platform = kubernetes",
        "mode = patroni",
        "mode = sentinel",
    ];
    let corpus = corpus();
    let mut rng = Rng(0xFACE_B00C_0DDB_A115);
    for round in 0..1500 {
        let (name, base) = &corpus[rng.below(corpus.len())];
        let mut text = base.clone();
        for _ in 0..=rng.below(4) {
            let mut at = rng.below(text.len() + 1);
            while !text.is_char_boundary(at) {
                at -= 1;
            }
            if rng.below(2) == 0 {
                text.insert_str(at, TOKENS[rng.below(TOKENS.len())]);
            } else {
                let mut end = (at + 1 + rng.below(12)).min(text.len());
                while !text.is_char_boundary(end) {
                    end += 1;
                }
                text.replace_range(at..end, "");
            }
        }
        let options = crate::support::options(std::path::Path::new("mutant.stack"));
        let result = std::panic::catch_unwind(|| stackc::compile(&text, &options));
        assert!(
            result.is_ok(),
            "mutation {round} of {name} panics:\n----- TEXT\n{text}"
        );
        if let Err(e) = lowered_alike(&text) {
            panic!("mutation {round} of {name}: {e}\n----- TEXT\n{text}");
        }
    }
}

/// The names of a tree's top-level entries, in order: `service api`, ...
fn entry_names(entries: &[stackc::syntax::Entry]) -> Vec<String> {
    entries
        .iter()
        .map(|e| format!("{} {}", e.key.name, e.label_name().unwrap_or("")))
        .collect()
}

/// A syntax error in one top-level entry of a formatted file leaves every other
/// entry parsed (for the editor's outline and navigation) and gives one error,
/// in the broken entry or where the next one starts: for every block entry of
/// every formatted file of the repository, with its closing `}` dropped, and
/// with the value of its first field dropped (where the rest does not then
/// read as a value).
#[test]
fn a_broken_entry_leaves_the_others_parsed() {
    let file = FileId(0);
    let mut broken_count = 0;
    for (name, text) in corpus() {
        if agree(&text) != Ok(true)
            || stackc::format::format(&name, &text).ok() != Some(text.clone())
        {
            continue;
        }
        let tree = parse(file, &text, &mut Diagnostics::default());
        for (i, e) in tree.entries.iter().enumerate() {
            let stackc::syntax::EntryValue::Block(fields) = &e.value else {
                continue;
            };
            let (start, end) = (e.key.span.start as usize, e.end as usize);
            // Each cut is the span of bytes dropped: the `}`, a value.
            let mut cuts: Vec<std::ops::Range<usize>> = Vec::new();
            cuts.push(end - 1..end);
            if let Some(stackc::syntax::EntryValue::Assign(v)) = fields.first().map(|f| &f.value) {
                cuts.push(v.span.start as usize..v.span.end as usize);
            }
            for cut in cuts {
                let broken = format!("{}{}", &text[..cut.start], &text[cut.end..]);
                // `port =` then `host main {` reads as `port = host` and an
                // entry `main`: a file that parses, with another meaning.
                if agree(&broken) == Ok(true) {
                    continue;
                }
                let mut diags = Diagnostics::default();
                let recovered = parse(file, &broken, &mut diags);
                let errors: Vec<_> = diags
                    .finish()
                    .into_iter()
                    .filter(|d| d.code == Code::Syntax)
                    .collect();
                let mut expected = entry_names(&tree.entries);
                expected.remove(i);
                assert_eq!(entry_names(&recovered.entries), expected, "{name}: {cut:?}");
                assert_eq!(errors.len(), 1, "{name}: {cut:?}: {errors:?}");
                let next = tree
                    .entries
                    .get(i + 1)
                    .map_or(broken.len(), |n| n.key.span.start as usize - cut.len());
                let at = errors[0].primary.span.start as usize;
                assert!((start..=next).contains(&at), "{name}: {cut:?}: at {at}");
                broken_count += 1;
            }
        }
    }
    assert!(broken_count > 100, "{broken_count}");
}
