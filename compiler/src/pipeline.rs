//! The pipeline: text to plan (`analyze`), and plan to artifacts (`compile`).
//! Pure: no IO. Every command and the language server go through `analyze`.

use std::sync::Arc;

use crate::base::Name;
use crate::diag::{self, Diagnostic, Diagnostics, FileId, SourceMap};
use crate::options::Options;
use crate::{check, lower, model, plan, stdlib, syntax, targets};

/// What an analysis does with its syntax trees and its model once it no
/// longer needs them: the caller's one choice about memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposal {
    /// The trees are kept and returned (the language server, `stackc why`,
    /// which read them after); the model is freed.
    KeepTrees,
    /// Both are freed as soon as they are used: each service's subtree as
    /// soon as it is lowered, so that the tree of a large file never exists
    /// whole, and the rest on a thread of its own when the stack is large.
    Free,
    /// As `Free`, but what is left is not freed: the process ends once it has
    /// reported (`stackc check`), and freeing millions of allocations one at a
    /// time would only cost time (docs/performance.md says how much).
    LeaveToExit,
}

impl Disposal {
    /// Gives up `value` as this disposal says; `large`: worth a thread.
    fn dispose<T: Send + 'static>(self, value: T, large: bool) {
        match self {
            Disposal::LeaveToExit => {
                let _never_freed = leave_to_exit(value);
            }
            Disposal::KeepTrees | Disposal::Free => free(value, large),
        }
    }
}

/// `value`, never freed: for what a command holds until the process ends
/// (rustc does the same with its own). The one place memory is left to the
/// exit.
pub fn leave_to_exit<T>(value: T) -> std::mem::ManuallyDrop<T> {
    std::mem::ManuallyDrop::new(value)
}

/// An analysis: the sources (to render diagnostics), the diagnostics, the plan
/// when there are no errors, and the syntax trees with [`Disposal::KeepTrees`].
pub struct Analysis {
    pub sources: SourceMap,
    /// The user's file (the others are the stdlib's).
    pub user: FileId,
    /// The stdlib's trees then the user's; empty unless kept.
    pub trees: Vec<(FileId, syntax::File)>,
    pub plan: Option<plan::Plan>,
    pub diagnostics: Vec<Diagnostic>,
}

/// Parses, lowers, checks and plans the user's file with the stdlib.
pub fn analyze(text: impl SourceText, options: &Options, disposal: Disposal) -> Analysis {
    let text = text.into_text();
    let mut sources = SourceMap::default();
    let mut diags = Diagnostics::default();
    let mut files = Vec::new();
    for (name, std_text) in stdlib::FILES {
        let id = sources.add(format!("<stdlib>/{name}"), *std_text);
        files.push(parse(id, std_text, true, disposal, &mut diags));
    }
    let user = sources.add(options.source_name.clone(), text.clone());
    files.push(parse(user, &text, false, disposal, &mut diags));
    if diags.has_syntax_errors() {
        // The entries around a syntax error are parsed (`syntax::recover`), for
        // the editor's outline and navigation, but not checked: the names of
        // the entry that does not parse would all be missing, a cascade.
        let trees = match disposal {
            Disposal::KeepTrees => files.into_iter().map(|u| (u.id, u.file)).collect(),
            Disposal::Free | Disposal::LeaveToExit => Vec::new(),
        };
        return Analysis {
            sources,
            user,
            trees,
            plan: None,
            diagnostics: diags.finish(),
        };
    }
    let mut stack = lower::lower(&mut files, &stack_name(options), &mut diags);
    // Only a large stack is worth a thread to free it.
    let large = stack.services.len() >= 256;
    let trees: Vec<(FileId, syntax::File)> = files.into_iter().map(|u| (u.id, u.file)).collect();
    let trees = match disposal {
        Disposal::KeepTrees => trees,
        Disposal::Free | Disposal::LeaveToExit => {
            disposal.dispose(trees, large);
            Vec::new()
        }
    };
    check::no_topology(&stack, user, &mut diags);
    select_topologies(&mut stack, &options.topologies, user, &mut diags);
    let plan = check_and_plan(&stack, large, &mut diags);
    disposal.dispose(stack, large);
    let has_errors = diags.has_errors();
    diags.user_first(user);
    Analysis {
        sources,
        user,
        trees,
        plan: (!has_errors).then_some(plan),
        diagnostics: diags.finish(),
    }
}

/// One file parsed, each service's body lowered as soon as it is parsed (on
/// the thread that parsed it, while it is in cache), its subtree then freed
/// unless the trees are kept.
pub fn parse(
    id: FileId,
    text: &str,
    stdlib: bool,
    disposal: Disposal,
    diags: &mut Diagnostics,
) -> lower::Unit {
    let keep = disposal == Disposal::KeepTrees;
    let (file, services) = syntax::parse_visiting(id, text, diags, &|e| lower::service(e, keep));
    lower::Unit {
        id,
        file,
        stdlib,
        services,
    }
}

/// The stack's name when the file declares none: the file's stem.
fn stack_name(options: &Options) -> String {
    std::path::Path::new(&options.source_name)
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("stack")
        .to_string()
}

/// The checks of the lowered stack and its plan. The definitions' own checks
/// only report: a large stack has them checked beside planning, on a core
/// that one topology's plan leaves free while another's takes longer.
fn check_and_plan(stack: &model::Stack, large: bool, diags: &mut Diagnostics) -> plan::Plan {
    let checked = check::bases(stack, diags);
    let plan = if large {
        let (plan, d) = rayon::join(
            || plan::plan(stack, &checked, diags),
            || {
                let mut d = Diagnostics::default();
                check::definitions(stack, &checked, &mut d);
                d
            },
        );
        diags.extend(d);
        plan
    } else {
        check::definitions(stack, &checked, diags);
        plan::plan(stack, &checked, diags)
    };
    // What the targets cannot write is an error of the input: found here, so
    // that `check` and the editor report everything `build` would. After
    // another error the values may be half made: no cascade from them.
    if !diags.has_errors() {
        targets::check(&plan, diags);
    }
    plan
}

/// The result of a compilation: the sources (for rendering diagnostics), the
/// diagnostics, and the artifacts when there are no errors.
#[derive(Debug)]
pub struct Compilation {
    pub sources: SourceMap,
    pub diagnostics: Vec<Diagnostic>,
    pub artifacts: Vec<targets::Artifact>,
}

impl Compilation {
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }
}

/// The whole pipeline: the analysis, then every target of its plan.
pub fn compile(text: impl SourceText, options: &Options) -> Compilation {
    let analysis = analyze(text, options, Disposal::Free);
    let mut diagnostics = analysis.diagnostics;
    let mut artifacts = Vec::new();
    if let Some(plan) = analysis.plan {
        let mut diags = Diagnostics::default();
        artifacts = targets::generate(&plan, options, &mut diags);
        diagnostics.extend(diags.finish());
        if diagnostics.iter().any(Diagnostic::is_error) {
            artifacts.clear();
        }
    }
    Compilation {
        sources: analysis.sources,
        diagnostics,
        artifacts,
    }
}

/// A compilation's source text, copied once into the source map. Given owned,
/// it is freed as soon as it is copied, before parsing: a large file is not
/// held twice through the compilation.
pub trait SourceText {
    fn into_text(self) -> Arc<str>;
}

impl SourceText for &str {
    fn into_text(self) -> Arc<str> {
        self.into()
    }
}

impl SourceText for &String {
    fn into_text(self) -> Arc<str> {
        self.as_str().into()
    }
}

impl SourceText for String {
    fn into_text(self) -> Arc<str> {
        self.into()
    }
}

/// Frees `value` on a thread of its own. A syntax tree or a model of thousands
/// of services is millions of allocations: freed on the caller's thread they
/// hold it up while a core is idle. Not on the pool: a pool thread busy
/// freeing would hold back the planning queued behind it. A small value is
/// freed here: a thread costs more than it would save (and the fuzzer and the
/// language server analyse small files many times).
fn free<T: Send + 'static>(value: T, in_background: bool) {
    if !in_background {
        drop(value);
        return;
    }
    // If no thread can be made, the value is freed here.
    let _ = std::thread::Builder::new()
        .name("stackc-free".into())
        .spawn(move || drop(value));
}

/// Keeps the topologies asked for with `--topology` (all when none is named), and
/// reports a name that matches none, at the closest topology of the file.
fn select_topologies(
    stack: &mut model::Stack,
    wanted: &[String],
    user: FileId,
    diags: &mut Diagnostics,
) {
    if wanted.is_empty() {
        return;
    }
    for name in wanted {
        if stack.topologies.contains_key(name.as_str()) {
            continue;
        }
        let names = stack.topologies.keys().map(Name::as_str);
        let (span, label) = match diag::suggest(name, names) {
            Some(close) => (
                stack.topologies[close].name.span,
                format!("did you mean `{close}`?"),
            ),
            None => match stack.topologies.values().next() {
                Some(first) => (
                    first.name.span,
                    "the first topology of the file".to_string(),
                ),
                None => (diag::Span::new(user, 0, 0), "no topology here".to_string()),
            },
        };
        let known: Vec<&str> = stack.topologies.keys().map(Name::as_str).collect();
        diags.push(
            Diagnostic::error(
                diag::Code::UnknownName,
                span,
                format!("no topology named `{name}` (asked for with --topology)"),
            )
            .label(label)
            .help(format!("the topologies are: {}", known.join(", "))),
        );
    }
    stack
        .topologies
        .retain(|name, _| wanted.iter().any(|w| w == name));
}

#[cfg(test)]
mod tests {
    use super::Disposal;

    /// A stack of one topology whose host runs `n` services, each referring
    /// to the one before; with `errors`, every tenth waits for that one to be
    /// healthy though it has no health check.
    fn one_large_host(n: usize, errors: bool) -> String {
        let mut text = String::from("stack big\n");
        let mut run = Vec::new();
        for i in 0..n {
            text.push_str(&format!(
                "service s{i} {{\n  image = \"s{i}:1\"\n  port http = {}\n",
                8000 + i
            ));
            if i > 0 {
                text.push_str(&format!("  env {{\n    PREV_URL = s{}.url\n  }}\n", i - 1));
                if errors && i % 10 == 0 {
                    text.push_str(&format!("  depends_on = [s{}.healthy]\n", i - 1));
                }
            }
            text.push_str("}\n");
            run.push(format!("s{i}"));
        }
        text.push_str(&format!(
            "topology single {{\n  host main {{\n    address = \"10.0.0.1\"\n    run = [{}]\n  }}\n}}\n",
            run.join(", ")
        ));
        text
    }

    fn analyze_on(threads: usize, text: &str) -> (Option<crate::plan::Plan>, Vec<String>) {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .expect("a pool");
        let options = crate::options::Options {
            source_name: "big.stack".into(),
            topologies: Vec::new(),
            source_dir_from_compose: "..".into(),
            source_from_out: "../big.stack".into(),
        };
        let a = pool.install(|| super::analyze(text.to_string(), &options, Disposal::Free));
        let (plan, diags) = (a.plan, a.diagnostics);
        let diags = diags
            .iter()
            .map(|d| format!("{:?} {:?} {}", d.code, d.primary.span, d.message))
            .collect();
        (plan, diags)
    }

    #[test]
    fn a_large_host_plans_the_same_on_one_core_and_on_several() {
        // One topology on one thread and on two (its checks and its
        // planning side by side): the same plan and diagnostics.
        let text = one_large_host(300, false);
        let (one, one_diags) = analyze_on(1, &text);
        let (two, two_diags) = analyze_on(2, &text);
        assert_eq!(one_diags, two_diags);
        let one = one.expect("a plan on one thread");
        let services = &one.topologies[0].hosts[0].services;
        assert_eq!(services.len(), 300);
        assert_eq!(services[299].name, "s299");
        assert_eq!(two, Some(one));

        let text = one_large_host(300, true);
        let (plan, one_diags) = analyze_on(1, &text);
        assert!(plan.is_none());
        assert_eq!(one_diags.len(), 29, "{one_diags:#?}");
        assert_eq!(analyze_on(2, &text).1, one_diags);
    }
}
