//! `stackc check`, `build`, `build --check`, `diff` and `graph`: a compilation and
//! what each command does with it.

use super::*;

/// A build in memory: the compilation, the output directory, the options and
/// the topologies whose output it owns. `Err` is the exit code.
struct Built {
    compilation: std::mem::ManuallyDrop<Compilation>,
    out: PathBuf,
    opts: Options,
    scope: Vec<String>,
}

pub(super) fn check(
    file: &Path,
    format: MessageFormat,
    deny: &Deny,
    quiet: bool,
    values: Option<&Path>,
) -> i32 {
    let text = match read(file) {
        Ok(t) => t,
        Err(code) => return code,
    };
    let options = options(file, Vec::new(), "..".into());
    let a = &mut *leave_to_exit(analyze(text, &options, Disposal::LeaveToExit));
    if let (Some(values), Some(plan)) = (values, &a.plan) {
        match std::fs::read_to_string(values) {
            Ok(text) => a.diagnostics.extend(not_set(plan, &text, values)),
            Err(e) => {
                eprintln!("error: cannot read {}: {e}", values.display());
                return 2;
            }
        }
    }
    deny.apply(&mut a.diagnostics);
    report(&a.sources, &a.diagnostics, format);
    let failed = a.diagnostics.iter().any(Diagnostic::is_error);
    if !failed && !quiet && format == MessageFormat::Human {
        if let Some(plan) = &a.plan {
            println!("{}", checked_line(file, plan, &a.diagnostics));
        }
    }
    i32::from(failed)
}

/// W0421 for each required secret the values file does not set.
fn not_set(plan: &crate::plan::Plan, text: &str, values: &Path) -> Vec<Diagnostic> {
    let present = crate::secrets::names_in(text);
    let file = values.display();
    crate::secrets::unset(plan, &present)
        .into_iter()
        .map(|s| {
            let how = if s.generate {
                format!(
                    "run `stackc secrets init`, or set `{}=...` there",
                    s.env_name
                )
            } else {
                format!(
                    "set `{}=...` there: stackc does not make it (`generate = false`)",
                    s.env_name
                )
            };
            Diagnostic::error(
                crate::diag::Code::SecretNotSet,
                s.name.span,
                format!("secret `{}` is not set in {file}", s.name.name),
            )
            .label(format!("no `{}=` line there", s.env_name))
            .help(how)
        })
        .collect()
}

/// What `check` checked, in one line: `checked app.stack: 2 topologies
/// (single, cluster), 5 services; 1 warning`.
fn checked_line(file: &Path, plan: &crate::plan::Plan, diags: &[Diagnostic]) -> String {
    let plural = |n: usize, one: &str| {
        if n == 1 {
            format!("1 {one}")
        } else {
            format!("{n} {one}s")
        }
    };
    let names: Vec<&str> = plan.topologies.iter().map(|t| t.name.as_str()).collect();
    let topologies = match names.len() {
        0 => "no topology".to_string(),
        1 => format!("1 topology ({})", names[0]),
        n => format!("{n} topologies ({})", names.join(", ")),
    };
    // No error here: every diagnostic left is a warning.
    let outcome = match diags.len() {
        0 => "no problem".to_string(),
        n => plural(n, "warning"),
    };
    format!(
        "checked {}: {topologies}, {}; {outcome}",
        file.display(),
        plural(plan.services, "service")
    )
}

/// Where a build writes and how it compiles: the output directory, the options,
/// and whether the command line chose topologies.
fn build_options(
    file: &Path,
    topologies: Vec<String>,
    out: Option<PathBuf>,
) -> (PathBuf, Options, bool) {
    // `app.stack` has the parent `""`, which no path function takes for the
    // current directory: spell it `.` so that every spelling of one file gives
    // the same paths.
    let source_dir = match file.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let out = out.unwrap_or_else(|| source_dir.join("out"));
    // Compose files sit in <out>/<topology>/compose/.
    let from_compose = relative_path(&out.join("t").join("compose"), &source_dir);
    let filtered = !topologies.is_empty();
    let opts = Options {
        source_from_out: relative_path(&out, file),
        ..options(file, topologies, from_compose)
    };
    (out, opts, filtered)
}

/// The topologies whose output a build owns: the ones it generates, and the
/// chosen ones (`--topology`) or, without a choice, those removed from the file
/// (their old output is stale).
fn build_scope(generated: Vec<String>, out: &Path, opts: &Options, filtered: bool) -> Vec<String> {
    let mut scope = generated;
    if filtered {
        scope.extend(opts.topologies.iter().cloned());
    } else {
        scope.extend(emit::existing_topologies(out, &emit::Owner::of(opts)));
    }
    scope.sort();
    scope.dedup();
    scope
}

fn build_in_memory(
    file: &Path,
    topologies: Vec<String>,
    out: Option<PathBuf>,
    format: MessageFormat,
    deny: &Deny,
) -> Result<Built, i32> {
    let text = read(file)?;
    let (out, opts, filtered) = build_options(file, topologies, out);
    let mut compilation = compile(text, &opts);
    deny.apply(&mut compilation.diagnostics);
    report(&compilation.sources, &compilation.diagnostics, format);
    let compilation = leave_to_exit(compilation);
    if compilation.has_errors() {
        return Err(1);
    }
    let mut generated: Vec<String> = compilation
        .artifacts
        .iter()
        .filter_map(|a| a.path.split('/').next().map(str::to_string))
        .collect();
    generated.dedup();
    let scope = build_scope(generated, &out, &opts, filtered);
    Ok(Built {
        compilation,
        out,
        opts,
        scope,
    })
}

/// The output directory as a build of `b` would leave it, compared with what
/// is there: the changes, and the files a build would refuse to overwrite.
fn against_output(b: &Built) -> (Vec<crate::review::FileChange>, Vec<PathBuf>) {
    let (on_disk, blocked) = emit::read_output(
        &b.out,
        &emit::Owner::of(&b.opts),
        &b.scope,
        &b.compilation.artifacts,
    );
    (
        crate::review::compare(&on_disk, &b.compilation.artifacts),
        blocked,
    )
}

pub(super) fn build_check(
    file: &Path,
    topologies: Vec<String>,
    out: Option<PathBuf>,
    format: MessageFormat,
    deny: &Deny,
) -> i32 {
    let b = match build_in_memory(file, topologies, out, format, deny) {
        Ok(b) => b,
        Err(code) => return code,
    };
    let others = emit::held_by_others(&b.out, &emit::Owner::of(&b.opts), &b.scope);
    if !others.is_empty() {
        for (dir, source) in &others {
            eprintln!(
                "error: {} holds the output of {source}, not of this file: a build would refuse it (see `--force`)",
                dir.display()
            );
        }
        return 2;
    }
    let (changes, blocked) = against_output(&b);
    print!("{}", crate::review::unified(&changes));
    for p in &blocked {
        eprintln!(
            "error: {} is in the way: stackc did not generate it from this source file",
            p.display()
        );
    }
    if changes.is_empty() && blocked.is_empty() {
        if format == MessageFormat::Human {
            eprintln!("{} is up to date", b.out.display());
        }
        return 0;
    }
    let count = |c: crate::review::Change| changes.iter().filter(|x| x.change == c).count();
    eprintln!(
        "{} is out of date: {} stale, {} missing, {} extra file(s); run `stackc build`",
        b.out.display(),
        count(crate::review::Change::Changed),
        count(crate::review::Change::Added),
        count(crate::review::Change::Removed),
    );
    1
}

pub(super) fn diff(
    files: &[PathBuf],
    topologies: Vec<String>,
    out: Option<PathBuf>,
    patch: bool,
) -> i32 {
    let changes = match files {
        [file] => {
            let b = match build_in_memory(
                file,
                topologies,
                out,
                MessageFormat::Human,
                &Deny::default(),
            ) {
                Ok(b) => b,
                Err(_) => return DIFF_TROUBLE,
            };
            against_output(&b).0
        }
        [old, new] => {
            // Both compiled as the new file, so that headers and paths agree.
            let (old_text, new_text) = match (read(old), read(new)) {
                (Ok(a), Ok(b)) => (a, b),
                _ => return DIFF_TROUBLE,
            };
            let opts = options(new, topologies, "..".into());
            let before = compile(old_text, &opts);
            let after = compile(new_text, &opts);
            report(&before.sources, &before.diagnostics, MessageFormat::Human);
            report(&after.sources, &after.diagnostics, MessageFormat::Human);
            if before.has_errors() || after.has_errors() {
                return DIFF_TROUBLE;
            }
            crate::review::compare(&before.artifacts, &after.artifacts)
        }
        _ => return DIFF_TROUBLE,
    };
    print!("{}", crate::review::summary(&changes));
    if patch && !changes.is_empty() {
        println!();
        print!("{}", crate::review::unified(&changes));
    }
    i32::from(!changes.is_empty())
}

/// `diff`'s exit code when it cannot compare (a file unread, an input with
/// errors): as `git diff --exit-code`, 1 means that something changes.
const DIFF_TROUBLE: i32 = 2;

/// `stackc build`: each topology's files staged on disk as the targets make
/// them (never the whole output in memory), then put in place together, or
/// nothing changed when anything fails.
pub(super) fn build(
    file: &Path,
    topologies: Vec<String>,
    out: Option<PathBuf>,
    format: MessageFormat,
    deny: &Deny,
    force: bool,
) -> i32 {
    let text = match read(file) {
        Ok(t) => t,
        Err(code) => return code,
    };
    let (out, opts, filtered) = build_options(file, topologies, out);
    no_huge_pages();
    // The trees and the model are freed: generation reuses their pages, which
    // keeps the build's peak down. What is left is held to the end.
    let Analysis {
        sources,
        plan,
        diagnostics,
        ..
    } = &mut *leave_to_exit(analyze(text, &opts, Disposal::Free));
    deny.apply(diagnostics);
    let failed = |diagnostics: &[Diagnostic]| diagnostics.iter().any(Diagnostic::is_error);
    let plan = match plan.as_ref() {
        Some(plan) if !failed(diagnostics) => plan,
        _ => {
            report(sources, diagnostics, format);
            return 1;
        }
    };
    let owner = emit::Owner::of(&opts);
    if let Err(why) = usable_out(&out) {
        eprintln!("error: the output directory {}: {why}", out.display());
        return 2;
    }
    // Held until the process ends: another build into `out` waits here.
    let _lock = match emit::OutputLock::take(&out, || {
        eprintln!(
            "waiting for another stackc build writing to {}",
            out.display()
        )
    }) {
        Ok(lock) => lock,
        Err(e) => {
            eprintln!("error: cannot lock {}: {e}", out.display());
            return 2;
        }
    };
    // What a stopped build left is recovered first; the staging directory
    // goes when this function returns, however it returns.
    let staging = match emit::Staging::prepare(&out) {
        Ok(staging) => staging,
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    let mut target_diags = crate::diag::Diagnostics::default();
    let stagers = crate::targets::generate_into(plan, &opts, &mut target_diags, |topo| {
        emit::Stager::new(&staging, &topo.name, &owner, force)
    });
    let mut from_targets = target_diags.finish();
    deny.apply(&mut from_targets);
    diagnostics.extend(from_targets);
    report(sources, diagnostics, format);
    if failed(diagnostics) || stagers.len() != plan.topologies.len() {
        return 1;
    }
    let generated = plan.topologies.iter().map(|t| t.name.to_string()).collect();
    let scope = build_scope(generated, &out, &opts, filtered);
    match emit::commit(&staging, &owner, stagers, &scope) {
        Ok(r) => {
            if format == MessageFormat::Human {
                eprintln!(
                    "wrote {} file{} to {} ({} unchanged, {} removed)",
                    r.written.len(),
                    if r.written.len() == 1 { "" } else { "s" },
                    out.display(),
                    r.unchanged.len(),
                    r.removed.len()
                );
            }
            0
        }
        Err(e) => {
            eprintln!("error: {e}");
            2
        }
    }
}

/// Turns transparent huge pages off for this process (Linux). mimalloc asks
/// for 2 MiB pages for its arenas, and a page that is touched at all is
/// resident whole: with a build's many threads and short-lived buffers, that
/// was a large part of its peak memory for little of its time
/// (docs/performance.md). `check` keeps them: it holds less and is the one
/// measured in milliseconds. Best effort: a kernel without the
/// setting leaves the pages as they were.
fn no_huge_pages() {
    #[cfg(target_os = "linux")]
    let _ = rustix::thread::disable_transparent_huge_pages(true);
}

pub(super) fn graph(file: &Path, topologies: Vec<String>, format: GraphFormatArg) -> i32 {
    let text = match read(file) {
        Ok(t) => t,
        Err(code) => return code,
    };
    let plan = match plan_of(text, &options(file, topologies.clone(), "..".into())) {
        Ok(plan) => plan,
        Err(code) => return code,
    };
    let format = match format {
        GraphFormatArg::Dot => crate::graph::GraphFormat::Dot,
        GraphFormatArg::Mermaid => crate::graph::GraphFormat::Mermaid,
    };
    print!("{}", crate::graph::render(&plan, &topologies, format));
    0
}
