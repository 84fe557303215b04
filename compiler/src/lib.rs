//! stackc: compiles a `.stack` file into the infrastructure files of each of its
//! topologies. See `docs/ARCHITECTURE.md` for the stages.
//!
//! ```text
//! text ──parse──▶ syntax::File ──lower──▶ model::Stack ──check──▶ Checked
//!      ──plan──▶ plan::Plan ──targets──▶ Vec<Artifact>   (pure: no IO)
//! emit: Vec<Artifact> ──▶ files on disk (atomic, never clobbers)
//! ```

pub mod check;
pub mod cli;
pub mod diag;
pub mod emit;
pub mod format;
pub mod grammar;
pub mod graph;
pub mod lower;
pub mod lsp;
pub mod model;
pub mod plan;
pub mod report;
pub mod review;
pub mod secrets;
pub mod stdlib;
pub mod syntax;
pub mod targets;
pub mod why;

use std::sync::Arc;

use diag::{Diagnostic, Diagnostics, SourceMap};

/// The maps and sets of the model, the check and the plan: in insertion order
/// (source order is output order), hashed with FxHash, rustc's hasher. Their keys
/// are short names from the user's own file, looked up many times per service:
/// SipHash's protection against flooding buys nothing here, and cost a tenth of
/// a check.
pub type IndexMap<K, V> = indexmap::IndexMap<K, V, rustc_hash::FxBuildHasher>;
/// See [`IndexMap`].
pub type IndexSet<T> = indexmap::IndexSet<T, rustc_hash::FxBuildHasher>;

/// A name from the user's file (a service, a port, an environment variable):
/// short, copied from the syntax tree into the model and from the model into
/// each topology's plan. A `SmolStr` (rust-analyzer's) keeps up to 23 bytes
/// inline and shares longer ones: a copy is never an allocation. A file of
/// 10,000 services has some 270,000 of them (docs/performance.md).
pub type Name = smol_str::SmolStr;

/// Parts of a large structure that few of its values have (a service's
/// volumes, autoscaler, HA...), behind one box made only when one of them is
/// set: a file of thousands of services holds thousands of definitions and
/// instances, and these parts, inline, were most of their size. Reading an
/// unset part reads the empty one; writing one makes the box.
#[derive(Debug, Clone, Default)]
pub struct Rare<T>(Option<Box<T>>);

/// What [`Rare`] holds: parts that are all empty by default.
pub trait Parts: Default + PartialEq + 'static {
    /// The parts, all empty (what an unset box reads as).
    fn empty() -> &'static Self;
}

/// Implements [`Parts`] for a type whose `Default` is its empty parts: one
/// static of them, made at the first read of an unset box.
macro_rules! rare_parts {
    ($parts:ty) => {
        impl $crate::Parts for $parts {
            fn empty() -> &'static $parts {
                static EMPTY: std::sync::LazyLock<$parts> =
                    std::sync::LazyLock::new(<$parts>::default);
                &EMPTY
            }
        }
    };
}
pub(crate) use rare_parts;

impl<T: Parts> Rare<T> {
    /// The parts, when any was set.
    pub fn get(&self) -> Option<&T> {
        self.0.as_deref()
    }
}

impl<T: Parts> From<T> for Rare<T> {
    /// No box when every part is empty.
    fn from(parts: T) -> Rare<T> {
        if parts == *T::empty() {
            Rare(None)
        } else {
            Rare(Some(Box::new(parts)))
        }
    }
}

impl<T: Parts> std::ops::Deref for Rare<T> {
    type Target = T;

    fn deref(&self) -> &T {
        match &self.0 {
            Some(parts) => parts,
            None => T::empty(),
        }
    }
}

impl<T: Parts> std::ops::DerefMut for Rare<T> {
    fn deref_mut(&mut self) -> &mut T {
        self.0.get_or_insert_with(Box::default)
    }
}

impl<T: Parts> PartialEq for Rare<T> {
    /// An unset box and a box of empty parts are the same parts.
    fn eq(&self, other: &Rare<T>) -> bool {
        **self == **other
    }
}

/// `a` followed by `b`: one text made of two (a string's pieces, a value's
/// text around a reference), built inline when it is short.
pub(crate) fn concat(a: &str, b: &str) -> Name {
    let mut s = smol_str::SmolStrBuilder::new();
    s.push_str(a);
    s.push_str(b);
    s.finish()
}

/// `f` of every item, on rayon's pool when there are several items and more
/// than one core, in the items' order either way. Topologies are independent:
/// planning them and generating their files use the free cores. An item whose
/// `f` panics gives its panic back in its place.
pub(crate) fn parallel_map<T: Sync, R: Send>(
    items: &[T],
    f: impl Fn(&T) -> R + Sync,
) -> Vec<std::thread::Result<R>> {
    use rayon::prelude::*;
    let caught = |item: &T| std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(item)));
    if items.len() < 2 || rayon::current_num_threads() < 2 {
        return items.iter().map(caught).collect();
    }
    items.par_iter().with_max_len(1).map(caught).collect()
}

/// `parallel_map` where a panic in any item goes on in the caller.
pub(crate) fn parallel_map_or_unwind<T: Sync, R: Send>(
    items: &[T],
    f: impl Fn(&T) -> R + Sync,
) -> Vec<R> {
    parallel_map(items, f)
        .into_iter()
        .map(|result| result.unwrap_or_else(|panic| std::panic::resume_unwind(panic)))
        .collect()
}

/// `f` of consecutive chunks of `items`, results in the items' order: one chunk
/// per core when there are many items (256 or more), else one. For work done on
/// each service on its own (lowering the definitions): a file of thousands of
/// services uses the free cores.
pub(crate) fn in_chunks<T: Sync, R: Send>(items: &[T], f: impl Fn(&[T]) -> R + Sync) -> Vec<R> {
    let chunks: Vec<&[T]> = items.chunks(chunk_size(items.len())).collect();
    parallel_map_or_unwind(&chunks, |chunk| f(chunk))
}

/// One chunk per core for many items (256 or more), else one chunk.
fn chunk_size(len: usize) -> usize {
    if len < 256 {
        len.max(1)
    } else {
        len.div_ceil(rayon::current_num_threads())
    }
}

/// What a compilation needs besides the source text.
#[derive(Debug, Clone)]
pub struct Options {
    /// The name of the source file as written in headers and diagnostics.
    pub source_name: String,
    /// Only these topologies (all when empty).
    pub topologies: Vec<String>,
    /// The stack's directory as seen from a generated compose file's directory, for
    /// relative build contexts and mounts (`../../..` for the default `out/`).
    pub source_dir_from_compose: String,
    /// The source file's path from the output directory (`../app.stack` for
    /// the default `out/`): how a topology's manifest says whose it is.
    pub source_from_out: String,
}

impl Options {
    /// The source as generated files name it: its file name only, so that the
    /// same input gives the same bytes on every machine and in every directory.
    pub fn output_name(&self) -> &str {
        std::path::Path::new(&self.source_name)
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or(&self.source_name)
    }
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

/// Parses, checks and plans; returns the plan when there are no errors.
pub fn analyze(
    text: impl SourceText,
    options: &Options,
) -> (SourceMap, Option<plan::Plan>, Vec<Diagnostic>) {
    without_trees(text, options, Model::Free)
}

/// `analyze` for a process that ends once it has reported (`stackc check`):
/// the syntax trees and the model are left for the exit to release with the
/// rest of the memory. Freeing them one allocation at a time, on a thread of
/// their own while the cores plan, cost a large check about 10 ms of processor
/// time and 5 ms of its wall time (docs/performance.md, finding 40).
pub fn analyze_before_exit(
    text: impl SourceText,
    options: &Options,
) -> (SourceMap, Option<plan::Plan>, Vec<Diagnostic>) {
    without_trees(text, options, Model::LeftToExit)
}

fn without_trees(
    text: impl SourceText,
    options: &Options,
    model: Model,
) -> (SourceMap, Option<plan::Plan>, Vec<Diagnostic>) {
    let a = analyze_keeping(text.into_text(), options, false, model);
    (a.sources, a.plan, a.diagnostics)
}

/// What becomes of the syntax trees and the model once an analysis no longer
/// needs them.
#[derive(Clone, Copy)]
enum Model {
    /// Freed (on a thread of their own for a large stack).
    Free,
    /// Left for the process exit to release (`analyze_before_exit`).
    LeftToExit,
}

impl Model {
    /// Gives `value` up as this analysis asks; `large`: worth a thread to free.
    fn release<T: Send + 'static>(self, value: T, large: bool) {
        match self {
            Model::Free => free(value, large),
            Model::LeftToExit => std::mem::forget(value),
        }
    }
}

/// An analysis with the syntax trees it was made from (the stdlib's, then the
/// user's), for the language server.
pub struct Analyzed {
    pub sources: SourceMap,
    pub trees: Vec<(diag::FileId, syntax::File)>,
    pub user: diag::FileId,
    pub plan: Option<plan::Plan>,
    pub diagnostics: Vec<Diagnostic>,
}

/// `analyze`, keeping the syntax trees.
pub fn analyze_with_trees(text: impl SourceText, options: &Options) -> Analyzed {
    analyze_keeping(text.into_text(), options, true, Model::Free)
}

/// The analysis; the syntax trees are dropped after lowering unless kept (they
/// are the largest structure at that point, and the model holds what they say).
/// The source map and the parser share `text`.
fn analyze_keeping(text: Arc<str>, options: &Options, keep_trees: bool, model: Model) -> Analyzed {
    let mut sources = SourceMap::default();
    let mut diags = Diagnostics::default();
    let mut files = Vec::new();
    for (name, std_text) in stdlib::FILES {
        let id = sources.add(format!("<stdlib>/{name}"), *std_text);
        files.push((id, syntax::parse(id, std_text, &mut diags), true, None));
    }
    let user = sources.add(options.source_name.clone(), text.clone());
    // Unless the trees are kept, the user's services are lowered as they are
    // parsed, and their bodies' subtrees freed.
    let (tree, early) = if keep_trees {
        (syntax::parse(user, &text, &mut diags), None)
    } else {
        let (tree, early) = syntax::parse_visiting(user, &text, &mut diags, &lower::early_service);
        (tree, Some(early))
    };
    files.push((user, tree, false, early));
    let mut units: Vec<lower::Unit<'_>> = files
        .iter_mut()
        .map(|(_, file, stdlib, early)| lower::Unit {
            file,
            stdlib: *stdlib,
            early: early.take(),
        })
        .collect();
    let default_name = std::path::Path::new(&options.source_name)
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("stack")
        .to_string();
    let mut stack = lower::lower(&mut units, &default_name, &mut diags);
    drop(units);
    // Only a large file is worth a thread to free it.
    let large = stack.services.len() >= 256;
    if !keep_trees {
        model.release(std::mem::take(&mut files), large);
    }
    check::no_topology(&stack, user, &mut diags);
    select_topologies(&mut stack, &options.topologies, user, &mut diags);
    let checked = check::bases(&stack, &mut diags);
    // The definitions' own checks only report: a large stack has them checked
    // beside planning, on a core that one topology's plan leaves free while the
    // other's takes longer.
    let plan = if large {
        let (plan, d) = rayon::join(
            || plan::plan(&stack, &checked, &mut diags),
            || {
                let mut d = Diagnostics::default();
                check::definitions(&stack, &checked, &mut d);
                d
            },
        );
        diags.extend(d);
        plan
    } else {
        check::definitions(&stack, &checked, &mut diags);
        plan::plan(&stack, &checked, &mut diags)
    };
    // What the targets cannot write is an error of the input: found here, so
    // that `check` and the editor report everything `build` would. After
    // another error the values may be half made: no cascade from them.
    if !diags.has_errors() {
        targets::check(&plan, &mut diags);
    }
    let has_errors = diags.has_errors();
    let diagnostics = diags.finish();
    drop(checked);
    model.release(stack, large);
    Analyzed {
        sources,
        trees: files.into_iter().map(|(id, f, _, _)| (id, f)).collect(),
        user,
        plan: (!has_errors).then_some(plan),
        diagnostics,
    }
}

/// Frees `value` on a thread of its own. A syntax tree or a model of thousands of
/// services is millions of allocations: freed on the caller's thread they cost a
/// tenth of a large check, while a core is idle (the bases are checked on one
/// thread) or the process is about to end. Not on the pool: a pool thread
/// busy freeing would hold back the planning queued behind it. A small value
/// is freed here: a thread costs
/// more than it would save (and the fuzzer and the language server analyse
/// small files many times).
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
    user: diag::FileId,
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

/// The whole pipeline, without IO.
pub fn compile(text: impl SourceText, options: &Options) -> Compilation {
    let (sources, plan, mut diagnostics) = analyze(text, options);
    let mut artifacts = Vec::new();
    if let Some(plan) = plan {
        let mut diags = Diagnostics::default();
        artifacts = targets::generate(&plan, options, &mut diags);
        diagnostics.extend(diags.finish());
        if diagnostics.iter().any(Diagnostic::is_error) {
            artifacts.clear();
        }
    }
    Compilation {
        sources,
        diagnostics,
        artifacts,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn parallel_map_keeps_order_and_gives_each_panic_back_in_its_place() {
        let items: Vec<usize> = (0..64).collect();
        let results = crate::parallel_map(&items, |&i| {
            assert!(i != 7, "item seven");
            i * 2
        });
        assert_eq!(results.len(), 64);
        for (i, result) in results.into_iter().enumerate() {
            match result {
                Ok(v) => assert_eq!(v, i * 2),
                Err(panic) => {
                    assert_eq!(i, 7);
                    let message = panic
                        .downcast_ref::<&str>()
                        .map(|s| s.to_string())
                        .or_else(|| panic.downcast_ref::<String>().cloned())
                        .unwrap_or_default();
                    assert!(message.contains("item seven"), "{message}");
                }
            }
        }
    }

    #[test]
    fn in_chunks_gives_one_chunk_per_thread_of_the_pool_in_order() {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .expect("a pool of two threads");
        let items: Vec<usize> = (0..1000).collect();
        let chunks = pool.install(|| crate::in_chunks(&items, <[usize]>::to_vec));
        // 256 items or more: one chunk per thread of the pool.
        assert_eq!(chunks.len(), 2);
        assert_eq!(chunks.concat(), items);
        // A few items: one chunk.
        let few = pool.install(|| crate::in_chunks(&items[..10], <[usize]>::len));
        assert_eq!(few, vec![10]);
    }

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
        let options = crate::Options {
            source_name: "big.stack".into(),
            topologies: Vec::new(),
            source_dir_from_compose: "..".into(),
            source_from_out: "../big.stack".into(),
        };
        let (_, plan, diags) = pool.install(|| crate::analyze(text.to_string(), &options));
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
