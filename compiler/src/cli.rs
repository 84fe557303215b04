//! The command line: the only module that knows clap, prints, and picks exit codes
//! (0 ok, 1 errors in the input, 2 usage or I/O errors).

use std::ffi::OsString;
use std::io::{IsTerminal, Write};
use std::path::{Component, Path, PathBuf};

use clap::{Args, Parser, Subcommand, ValueEnum};

// Output that never panics: a closed pipe (`stackc graph FILE | head`) or a
// full disk ends the output quietly instead of aborting with a panic. These
// shadow the standard macros in this module.
macro_rules! print {
    ($($t:tt)*) => {{ let _ = write!(std::io::stdout(), $($t)*); }};
}
macro_rules! println {
    ($($t:tt)*) => {{ let _ = writeln!(std::io::stdout(), $($t)*); }};
}
macro_rules! eprint {
    ($($t:tt)*) => {{ let _ = write!(std::io::stderr(), $($t)*); }};
}
macro_rules! eprintln {
    ($($t:tt)*) => {{ let _ = writeln!(std::io::stderr(), $($t)*); }};
}

use crate::diag::{render_human, render_json, Code, Diagnostic, SourceMap};
use crate::emit;
use crate::options::Options;
use crate::pipeline::{analyze, compile, leave_to_exit, Analysis, Compilation, Disposal};

#[derive(Parser, Debug)]
#[command(
    name = "stackc",
    version,
    about = "Compile .stack files into infrastructure files"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Check a .stack file and report every problem.
    Check {
        file: PathBuf,
        #[arg(long, value_enum, default_value_t = MessageFormat::Human)]
        message_format: MessageFormat,
        /// Turn warnings into errors: `warnings` (all) or a code (`W0602`) or
        /// its name (repeatable).
        #[arg(long, value_name = "warnings|CODE")]
        deny: Vec<String>,
    },
    /// Check a .stack file and write the files of its topologies.
    Build {
        file: PathBuf,
        /// Build only this topology (repeatable).
        #[arg(long = "topology", short = 't')]
        topologies: Vec<String>,
        /// The output directory (default: `out` beside the .stack file).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Turn warnings into errors (nothing is written then): `warnings` or a
        /// code (repeatable).
        #[arg(long, value_name = "warnings|CODE")]
        deny: Vec<String>,
        /// Write nothing: compare a fresh build with the output directory, print
        /// a unified diff of every stale, missing or extra file, and exit 1 if
        /// any differs.
        #[arg(long)]
        check: bool,
        /// Replace the output of another .stack file: a topology directory in
        /// --out whose manifest names another source is refused without it.
        #[arg(long, conflicts_with = "check")]
        force: bool,
        #[arg(long, value_enum, default_value_t = MessageFormat::Human)]
        message_format: MessageFormat,
    },
    /// Summarise what a change to a .stack file changes in the generated files,
    /// by topology, host and target: `diff FILE` against its output directory
    /// (what `build` would change), `diff OLD NEW` between two versions.
    Diff {
        #[arg(num_args = 1..=2, required = true)]
        files: Vec<PathBuf>,
        /// Only this topology (repeatable).
        #[arg(long = "topology", short = 't')]
        topologies: Vec<String>,
        /// The output directory of `diff FILE` (default: `out` beside it).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Also print the unified diff of every changed file.
        #[arg(long)]
        patch: bool,
    },
    /// Draw a file's topologies: hosts as clusters, the containers on them, their
    /// dependencies, HA members joined.
    Graph {
        file: PathBuf,
        /// Only this topology (repeatable).
        #[arg(long = "topology", short = 't')]
        topologies: Vec<String>,
        #[arg(long, value_enum, default_value_t = GraphFormatArg::Dot)]
        format: GraphFormatArg,
    },
    /// Which .stack lines produced a line of generated output: `why
    /// out/single/compose/main.yml:12` (the file's header names its source).
    /// `why -` reads a program's messages (`nginx -t 2>&1 | stackc why -`) and
    /// prints each one that names a generated FILE:LINE on its source line.
    Why {
        /// A generated file and a line: `FILE:LINE`, or `-`.
        location: String,
    },
    /// The secrets each topology needs and where each is used; `secrets init
    /// FILE` writes strong random values for the missing ones.
    Secrets(SecretsArgs),
    /// Run the language server on standard input and output (for editors).
    Lsp,
    /// Explain a diagnostic code (`E0301` or `dependency-cycle`).
    Explain { code: String },
    /// Format .stack files in place: the given files and directories, or every
    /// .stack file below the current directory. `-` formats standard input to
    /// standard output.
    Fmt {
        files: Vec<PathBuf>,
        /// Change nothing: print a diff of what would change, and exit 1 if any
        /// file is not formatted.
        #[arg(long)]
        check: bool,
    },
}

#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
struct SecretsArgs {
    #[command(subcommand)]
    action: Option<SecretsAction>,
    file: Option<PathBuf>,
    /// Only this topology (repeatable).
    #[arg(long = "topology", short = 't')]
    topologies: Vec<String>,
}

#[derive(Subcommand, Debug)]
enum SecretsAction {
    /// Write a random value for every required secret that the values file does
    /// not set yet (`<name>.secrets.env` beside the .stack file, mode 0600). A
    /// value already there is never changed: safe to run twice.
    Init {
        file: PathBuf,
        /// The values file (outside the output directory).
        #[arg(long)]
        into: Option<PathBuf>,
    },
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum GraphFormatArg {
    /// Graphviz
    Dot,
    Mermaid,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum MessageFormat {
    Human,
    Json,
    /// GitHub Actions annotations (workflow commands).
    Github,
    /// A SARIF 2.1.0 log, for code scanning.
    Sarif,
}

/// Runs the command line; returns the exit code.
pub fn run(args: impl IntoIterator<Item = OsString>) -> i32 {
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return code;
        }
    };
    match cli.command {
        // The language server's loop waits on its input: not on the pool.
        Cmd::Lsp => crate::lsp::run_stdio(),
        command => on_pool(move || run_command(command)),
    }
}

/// Runs a command on a thread pool of its own, one thread per core, that every
/// parallel stage of the command shares (parsing in halves, lowering in
/// chunks, topologies, generating and writing). The same threads from the first
/// stage to the last keep their allocator heaps warm: a thread made for one
/// stage starts from fresh pages, which the kernel must zero (docs/performance.md,
/// finding 34). Without a pool (the system refuses threads) it runs here.
fn on_pool(command: impl FnOnce() -> i32 + Send) -> i32 {
    let pool = rayon::ThreadPoolBuilder::new()
        .thread_name(|i| format!("stackc-{i}"))
        .build();
    match pool {
        Ok(pool) => pool.install(command),
        Err(_) => command(),
    }
}

fn run_command(command: Cmd) -> i32 {
    match command {
        Cmd::Check {
            file,
            message_format,
            deny,
        } => match Deny::parse(&deny) {
            Ok(deny) => check(&file, message_format, &deny),
            Err(code) => code,
        },
        Cmd::Build {
            file,
            topologies,
            out,
            check,
            force,
            deny,
            message_format,
        } => match Deny::parse(&deny) {
            Ok(deny) if check => build_check(&file, topologies, out, message_format, &deny),
            Ok(deny) => build(&file, topologies, out, message_format, &deny, force),
            Err(code) => code,
        },
        Cmd::Diff {
            files,
            topologies,
            out,
            patch,
        } => diff(&files, topologies, out, patch),
        Cmd::Explain { code } => explain(&code),
        // `run` starts the language server off the pool; here for completeness.
        Cmd::Lsp => crate::lsp::run_stdio(),
        Cmd::Why { location } => why(&location),
        Cmd::Secrets(args) => secrets(args),
        Cmd::Graph {
            file,
            topologies,
            format,
        } => graph(&file, topologies, format),
        Cmd::Fmt { files, check } => fmt(files, check),
    }
}

fn read(file: &Path) -> Result<String, i32> {
    read_source(file).map_err(|why| {
        eprintln!("error: cannot read {}: {why}", file.display());
        2
    })
}

/// Why `out` cannot be an output directory: it is something else than a
/// directory, or a symbolic link that leads nowhere.
fn usable_out(out: &Path) -> Result<(), String> {
    match std::fs::symlink_metadata(out) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e.to_string()),
        Ok(meta) if meta.file_type().is_symlink() => match std::fs::metadata(out) {
            Ok(target) if target.is_dir() => Ok(()),
            Ok(_) => Err("is a symbolic link to something that is not a directory".into()),
            Err(_) => Err("is a symbolic link to nothing (its target does not exist)".into()),
        },
        Ok(meta) if meta.is_dir() => Ok(()),
        Ok(_) => Err("is a file, not a directory".into()),
    }
}

/// The largest `.stack` file read: far above any real one (a 10,000-service
/// file is a few megabytes), so that `/dev/zero` or a runaway pipe cannot take
/// the machine's memory.
const MAX_SOURCE: u64 = 256 << 20;

/// How long a named pipe may wait for its writer (a process substitution's
/// writer is there at once).
const PIPE_WAIT_MS: i32 = 10_000;

/// The text of a source file: a regular file, or a pipe with a writer
/// (`<(...)`), at most `MAX_SOURCE` bytes of UTF-8 (a leading byte-order mark
/// dropped). Anything else is refused with a reason, never read forever.
fn read_source(file: &Path) -> Result<String, String> {
    use std::io::Read;
    use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
    let meta = std::fs::metadata(file).map_err(|e| e.to_string())?;
    let kind = meta.file_type();
    let f = if kind.is_file() {
        if meta.len() > MAX_SOURCE {
            return Err(format!(
                "it is {} bytes, more than the {MAX_SOURCE} a source may have",
                meta.len()
            ));
        }
        std::fs::File::open(file).map_err(|e| e.to_string())?
    } else if kind.is_fifo() {
        // Opened without waiting for a writer, then given a bounded time to
        // have one.
        let f = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
            .open(file)
            .map_err(|e| e.to_string())?;
        let mut fds = [rustix::event::PollFd::new(&f, rustix::event::PollFlags::IN)];
        let timeout = rustix::event::Timespec {
            tv_sec: i64::from(PIPE_WAIT_MS / 1000),
            tv_nsec: 0,
        };
        let ready = rustix::event::poll(&mut fds, Some(&timeout)).map_err(|e| e.to_string())?;
        if ready == 0 {
            return Err(format!(
                "a named pipe with no writer after {} s",
                PIPE_WAIT_MS / 1000
            ));
        }
        let flags = rustix::fs::fcntl_getfl(&f).map_err(|e| e.to_string())?;
        rustix::fs::fcntl_setfl(&f, flags - rustix::fs::OFlags::NONBLOCK)
            .map_err(|e| e.to_string())?;
        f
    } else if kind.is_dir() {
        return Err("it is a directory".to_string());
    } else {
        return Err("it is not a regular file or a pipe (a device or a socket)".to_string());
    };
    let mut bytes = Vec::new();
    f.take(MAX_SOURCE + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| e.to_string())?;
    if bytes.len() as u64 > MAX_SOURCE {
        return Err(format!(
            "more than the {MAX_SOURCE} bytes a source may have"
        ));
    }
    let bytes = bytes
        .strip_prefix(b"\xEF\xBB\xBF")
        .map(<[u8]>::to_vec)
        .unwrap_or(bytes);
    String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        let line = e.as_bytes()[..at].iter().filter(|&&b| b == b'\n').count() + 1;
        format!("it is not valid UTF-8 from byte {at} (line {line})")
    })
}

fn report(sources: &SourceMap, diags: &[Diagnostic], format: MessageFormat) {
    match format {
        MessageFormat::Human => {
            if !diags.is_empty() {
                let color =
                    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
                eprint!("{}", render_human(sources, diags, color));
            }
        }
        MessageFormat::Json => {
            print!("{}", render_json(sources, diags));
            let _ = std::io::stdout().flush();
        }
        MessageFormat::Github => {
            print!("{}", crate::report::render_github(sources, diags));
            let _ = std::io::stdout().flush();
        }
        MessageFormat::Sarif => {
            print!("{}", crate::report::render_sarif(sources, diags));
            let _ = std::io::stdout().flush();
        }
    }
}

/// The options of a compilation of `file` (its output in the default `out/`;
/// `build_options` knows where it really is).
fn options(file: &Path, topologies: Vec<String>, from_compose: String) -> Options {
    let name = file
        .file_name()
        .unwrap_or(file.as_os_str())
        .to_string_lossy();
    Options {
        source_name: file.display().to_string(),
        topologies,
        source_dir_from_compose: from_compose,
        source_from_out: format!("../{name}"),
    }
}

/// `--deny`: which warnings count as errors.
#[derive(Default)]
struct Deny {
    all: bool,
    codes: Vec<Code>,
}

impl Deny {
    fn parse(args: &[String]) -> Result<Deny, i32> {
        let mut deny = Deny::default();
        for a in args {
            if a == "warnings" {
                deny.all = true;
            } else if let Some(c) = Code::parse(a) {
                deny.codes.push(c);
            } else {
                eprintln!("error: `--deny {a}`: expected `warnings` or a code such as W0602");
                return Err(2);
            }
        }
        Ok(deny)
    }

    /// Makes the denied warnings errors.
    fn apply(&self, diags: &mut [Diagnostic]) {
        for d in diags.iter_mut() {
            if d.severity == crate::diag::Severity::Warning
                && (self.all || self.codes.contains(&d.code))
            {
                d.severity = crate::diag::Severity::Error;
            }
        }
    }
}

fn check(file: &Path, format: MessageFormat, deny: &Deny) -> i32 {
    let text = match read(file) {
        Ok(t) => t,
        Err(code) => return code,
    };
    let options = options(file, Vec::new(), "..".into());
    let a = &mut *leave_to_exit(analyze(text, &options, Disposal::LeaveToExit));
    deny.apply(&mut a.diagnostics);
    report(&a.sources, &a.diagnostics, format);
    i32::from(a.diagnostics.iter().any(Diagnostic::is_error))
}

/// A build in memory: the compilation, the output directory, the options and
/// the topologies whose output it owns. `Err` is the exit code.
struct Built {
    compilation: std::mem::ManuallyDrop<Compilation>,
    out: PathBuf,
    opts: Options,
    scope: Vec<String>,
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

fn build_check(
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

fn diff(files: &[PathBuf], topologies: Vec<String>, out: Option<PathBuf>, patch: bool) -> i32 {
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
                Err(code) => return code,
            };
            against_output(&b).0
        }
        [old, new] => {
            // Both compiled as the new file, so that headers and paths agree.
            let (old_text, new_text) = match (read(old), read(new)) {
                (Ok(a), Ok(b)) => (a, b),
                (Err(code), _) | (_, Err(code)) => return code,
            };
            let opts = options(new, topologies, "..".into());
            let before = compile(old_text, &opts);
            let after = compile(new_text, &opts);
            report(&before.sources, &before.diagnostics, MessageFormat::Human);
            report(&after.sources, &after.diagnostics, MessageFormat::Human);
            if before.has_errors() || after.has_errors() {
                return 1;
            }
            crate::review::compare(&before.artifacts, &after.artifacts)
        }
        _ => return 2,
    };
    print!("{}", crate::review::summary(&changes));
    if patch && !changes.is_empty() {
        println!();
        print!("{}", crate::review::unified(&changes));
    }
    0
}

/// `stackc build`: each topology's files staged on disk as the targets make
/// them (never the whole output in memory), then put in place together, or
/// nothing changed when anything fails.
fn build(
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
/// was a quarter of its peak memory (124 against 98 MiB at N = 10000), for 8 %
/// of its time (docs/performance.md). `check` keeps them: it holds less and
/// is the one measured in milliseconds. Best effort: a kernel without the
/// setting leaves the pages as they were.
fn no_huge_pages() {
    #[cfg(target_os = "linux")]
    let _ = rustix::thread::disable_transparent_huge_pages(true);
}

fn graph(file: &Path, topologies: Vec<String>, format: GraphFormatArg) -> i32 {
    let text = match read(file) {
        Ok(t) => t,
        Err(code) => return code,
    };
    let options = options(file, topologies.clone(), "..".into());
    let Analysis {
        sources,
        plan,
        diagnostics: diags,
        ..
    } = analyze(text, &options, Disposal::Free);
    report(&sources, &diags, MessageFormat::Human);
    let Some(plan) = plan.filter(|_| !diags.iter().any(Diagnostic::is_error)) else {
        return 1;
    };
    let format = match format {
        GraphFormatArg::Dot => crate::graph::GraphFormat::Dot,
        GraphFormatArg::Mermaid => crate::graph::GraphFormat::Mermaid,
    };
    print!("{}", crate::graph::render(&plan, &topologies, format));
    0
}

/// The origins of a line of a generated file: the analysis of its source (for
/// rendering spans) and the origins. `Err` is an exit code and a message.
fn trace(
    file: &Path,
    line: usize,
) -> Result<(Analysis, Vec<crate::why::Origin>, String), (i32, String)> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| (2, format!("cannot read {}: {e}", file.display())))?;
    let (source, topology) = crate::why::header(&text).ok_or_else(|| {
        (
            2,
            format!(
                "{} has no stackc header: stackc did not generate it",
                file.display()
            ),
        )
    })?;
    // The path inside the topology's directory.
    let parts: Vec<String> = file
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    let at = parts.iter().rposition(|p| *p == topology).ok_or_else(|| {
        (
            2,
            format!("{} is not inside a `{topology}` directory", file.display()),
        )
    })?;
    let inner = parts[at + 1..].join("/");
    // The source as the build named it, else beside the output directory.
    let mut source_path = PathBuf::from(&source);
    if !source_path.is_file() {
        let out_dir: PathBuf = parts[..at].iter().collect();
        let beside = out_dir
            .parent()
            .unwrap_or(Path::new("."))
            .join(Path::new(&source).file_name().unwrap_or_default());
        if beside.is_file() {
            source_path = beside;
        }
    }
    let source_text = std::fs::read_to_string(&source_path)
        .map_err(|e| (2, format!("cannot read {}: {e}", source_path.display())))?;
    let analyzed = analyze(
        source_text.as_str(),
        &options(&source_path, Vec::new(), "..".into()),
        Disposal::KeepTrees,
    );
    let origins = crate::why::why(&analyzed, &topology, &inner, &text, line).map_err(|e| (1, e))?;
    let line_text = text
        .lines()
        .nth(line.saturating_sub(1))
        .unwrap_or_default()
        .to_string();
    Ok((analyzed, origins, line_text))
}

/// `FILE:LINE` and `"FILE", line LINE` locations in a program's message.
fn locations(message: &str) -> Vec<(PathBuf, usize)> {
    let mut out = Vec::new();
    let words: Vec<&str> = message
        .split(|c: char| c.is_whitespace() || matches!(c, '[' | ']' | '(' | ')' | '\'' | ','))
        .filter(|w| !w.is_empty())
        .collect();
    for (i, w) in words.iter().enumerate() {
        let w = w.trim_matches('"');
        let found = match w.rsplit_once(':') {
            Some((path, n)) if n.parse::<usize>().is_ok() => Some((path, n.parse().unwrap_or(0))),
            // docker-compose: in "FILE", line N
            _ if words.get(i + 1) == Some(&"line") => words
                .get(i + 2)
                .and_then(|n| n.trim_matches(|c: char| !c.is_ascii_digit()).parse().ok())
                .map(|n| (w, n)),
            _ => None,
        };
        if let Some((path, n)) = found {
            if Path::new(path).is_file()
                && !out.iter().any(|(p, l)| p == Path::new(path) && *l == n)
            {
                out.push((PathBuf::from(path), n));
            }
        }
    }
    out
}

fn print_origins(analyzed: &Analysis, origins: &[crate::why::Origin]) {
    for o in origins {
        let src = analyzed.sources.get(o.span.file);
        let (l, c) = analyzed.sources.line_col(o.span.file, o.span.start);
        let shown = src.text.lines().nth(l - 1).unwrap_or_default().trim();
        println!("  {}:{l}:{c}: {}", src.name, o.what);
        println!("      {shown}");
    }
}

fn why(location: &str) -> i32 {
    if location == "-" {
        // A program's messages about generated files, on the source lines.
        let mut found = false;
        for message in std::io::stdin().lines().map_while(Result::ok) {
            for (file, line) in locations(&message) {
                if let Ok((analyzed, origins, _)) = trace(&file, line) {
                    let Some(first) = origins.first() else {
                        continue;
                    };
                    let src = analyzed.sources.get(first.span.file);
                    let (l, c) = analyzed.sources.line_col(first.span.file, first.span.start);
                    println!("{}:{l}:{c}: {}", src.name, message.trim());
                    println!("  (in {}:{line}, from {})", file.display(), first.what);
                    found = true;
                }
            }
        }
        return i32::from(!found);
    }
    let Some((file, line)) = location
        .rsplit_once(':')
        .and_then(|(f, l)| Some((PathBuf::from(f), l.parse::<usize>().ok()?)))
    else {
        eprintln!("error: expected FILE:LINE, such as out/single/compose/main.yml:12, or `-` for a program's messages");
        return 2;
    };
    match trace(&file, line) {
        Ok((analyzed, origins, line_text)) => {
            println!("{}:{line}: {}", file.display(), line_text.trim());
            print_origins(&analyzed, &origins);
            i32::from(origins.is_empty())
        }
        Err((code, message)) => {
            eprintln!("error: {message}");
            code
        }
    }
}

fn secrets(args: SecretsArgs) -> i32 {
    let (file, init, into) = match (args.action, args.file) {
        (Some(SecretsAction::Init { file, into }), _) => (file, true, into),
        (None, Some(file)) => (file, false, None),
        (None, None) => {
            eprintln!("error: expected a .stack file: `stackc secrets FILE` or `stackc secrets init FILE`");
            return 2;
        }
    };
    let text = match read(&file) {
        Ok(t) => t,
        Err(code) => return code,
    };
    let topologies = if init { Vec::new() } else { args.topologies };
    let options = options(&file, topologies, "..".into());
    let Analysis {
        sources,
        plan,
        diagnostics: diags,
        ..
    } = analyze(text, &options, Disposal::Free);
    report(&sources, &diags, MessageFormat::Human);
    let Some(plan) = plan.filter(|_| !diags.iter().any(Diagnostic::is_error)) else {
        return 1;
    };
    if !init {
        print!("{}", crate::secrets::report(&plan));
        return 0;
    }
    let into = into.unwrap_or_else(|| {
        let stem = file.file_stem().and_then(|s| s.to_str()).unwrap_or("stack");
        file.with_file_name(format!("{stem}.secrets.env"))
    });
    // A symbolic link stays: the values go where it leads.
    let into = match std::fs::canonicalize(&into) {
        Ok(target) if into.is_symlink() => target,
        _ => into,
    };
    let absolute = std::path::absolute(&into).unwrap_or_else(|_| into.clone());
    let same_file = |a: &Path, b: &Path| {
        std::fs::canonicalize(a).is_ok_and(|a| std::fs::canonicalize(b).is_ok_and(|b| a == b))
    };
    if same_file(&into, &file) || into.extension().is_some_and(|e| e == "stack") {
        eprintln!(
            "error: {} is a .stack file; secret values go in a file of their own",
            into.display()
        );
        return 2;
    }
    // An output directory is a topology's (with its manifest) or the root
    // that holds topologies: never inside one, those files are regenerated
    // and shared.
    let holds_topologies = |dir: &Path| {
        std::fs::read_dir(dir).is_ok_and(|entries| {
            entries
                .flatten()
                .any(|e| e.path().join(crate::targets::MANIFEST).is_file())
        })
    };
    if absolute
        .ancestors()
        .skip(1)
        .any(|a| a.join(crate::targets::MANIFEST).is_file() || holds_topologies(a))
    {
        eprintln!(
            "error: {} is inside a stackc output directory; keep secret values out of it",
            into.display()
        );
        return 2;
    }
    let existing = match std::fs::read_to_string(&into) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => {
            eprintln!("error: cannot read {}: {e}", into.display());
            return 2;
        }
    };
    let present = crate::secrets::names_in(&existing);
    let mut added = Vec::new();
    let mut text = existing.clone();
    if text.is_empty() {
        text.push_str(&format!(
            "# Secret values for {}: generated by `stackc secrets init`, never by a build.\n# Keep this file out of version control. Load it with: set -a; . ./{}; set +a\n",
            file.display(),
            into.file_name().and_then(|n| n.to_str()).unwrap_or_default()
        ));
    }
    for s in plan.secrets.values().filter(|s| !s.optional) {
        if present.iter().any(|p| *p == s.env_name) {
            continue;
        }
        let value = match crate::secrets::random_value() {
            Ok(v) => v,
            Err(e) => {
                eprintln!("error: cannot read random bytes: {e}");
                return 2;
            }
        };
        if !text.ends_with('\n') {
            text.push('\n');
        }
        text.push_str(&format!("{}={value}\n", s.env_name));
        added.push(s.env_name.clone());
    }
    if added.is_empty() && into.exists() {
        eprintln!(
            "{}: every required secret is set; nothing changed",
            into.display()
        );
        return 0;
    }
    if let Err(e) = write_private(&into, &text) {
        eprintln!("error: cannot write {}: {e}", into.display());
        return 2;
    }
    eprintln!(
        "{}: added {} ({} already set)",
        into.display(),
        if added.is_empty() {
            "nothing".to_string()
        } else {
            added.join(", ")
        },
        present.len()
    );
    0
}

/// Writes a file readable by its owner only (0600), atomically.
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("secrets");
    let tmp = dir.join(format!(".{name}.stackc-tmp"));
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

fn explain(code: &str) -> i32 {
    match Code::parse(code) {
        Some(c) => {
            println!("{}", c.explanation().trim_end());
            0
        }
        None => {
            eprintln!("error: unknown code `{code}`; codes look like E0301");
            2
        }
    }
}

/// The .stack files to format: the files given, every .stack file below the
/// directories given (or below the current one), skipping hidden directories
/// and `target`. Sorted, so the output is stable.
fn stack_files(args: Vec<PathBuf>) -> Vec<PathBuf> {
    let roots = if args.is_empty() {
        vec![PathBuf::from(".")]
    } else {
        args
    };
    let mut files = Vec::new();
    for root in roots {
        if !root.is_dir() {
            files.push(root);
            continue;
        }
        let walk = walkdir::WalkDir::new(&root)
            .sort_by_file_name()
            .into_iter()
            .filter_entry(|e| {
                let name = e.file_name().to_string_lossy();
                e.depth() == 0 || !(name.starts_with('.') || name == "target")
            });
        for entry in walk.flatten() {
            if entry.file_type().is_file() && entry.path().extension().is_some_and(|x| x == "stack")
            {
                files.push(entry.into_path());
            }
        }
    }
    files
}

fn fmt(args: Vec<PathBuf>, check: bool) -> i32 {
    if args.len() == 1 && args[0] == Path::new("-") {
        let mut text = String::new();
        if let Err(e) = std::io::Read::read_to_string(&mut std::io::stdin(), &mut text) {
            eprintln!("error: cannot read standard input: {e}");
            return 2;
        }
        return match crate::format::format("<stdin>", &text) {
            Ok(out) => {
                print!("{out}");
                i32::from(check && out != text)
            }
            Err((sources, diags)) => {
                report(&sources, &diags, MessageFormat::Human);
                1
            }
        };
    }
    let mut status = 0;
    let mut changed = 0;
    let files = stack_files(args);
    for file in &files {
        let text = match read(file) {
            Ok(t) => t,
            Err(code) => {
                status = status.max(code);
                continue;
            }
        };
        let out = match crate::format::format(&file.display().to_string(), &text) {
            Ok(out) => out,
            Err((sources, diags)) => {
                report(&sources, &diags, MessageFormat::Human);
                status = status.max(1);
                continue;
            }
        };
        if out == text {
            continue;
        }
        changed += 1;
        if check {
            print!("{}", unified_diff(&text, &out, &file.display().to_string()));
            status = status.max(1);
        } else if let Err(e) = emit::replace_file(file, &out) {
            eprintln!("error: cannot write {}: {e}", file.display());
            status = 2;
        }
    }
    if check && changed > 0 {
        eprintln!(
            "{changed} of {} file{} not formatted; run `stackc fmt`",
            files.len(),
            match (files.len(), changed) {
                (1, _) => " is",
                (_, 1) => "s is",
                _ => "s are",
            }
        );
    }
    status
}

/// A unified diff of a file's text, as `diff -u` prints it.
pub(crate) fn unified_diff(old: &str, new: &str, name: &str) -> String {
    crate::review::unified_diff(old, new, &format!("a/{name}"), &format!("b/{name}"))
}

/// The path of `to` as seen from the directory `from`, using `/`.
fn relative_path(from: &Path, to: &Path) -> String {
    let abs = |p: &Path| -> Vec<String> {
        let p = if p.as_os_str().is_empty() {
            Path::new(".")
        } else {
            p
        };
        let p = std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
        let mut parts: Vec<String> = Vec::new();
        for c in p.components() {
            match c {
                Component::ParentDir => {
                    parts.pop();
                }
                Component::Normal(s) => parts.push(s.to_string_lossy().into_owned()),
                _ => {}
            }
        }
        parts
    };
    let (f, t) = (abs(from), abs(to));
    let common = f.iter().zip(&t).take_while(|(a, b)| a == b).count();
    let mut parts: Vec<String> = vec!["..".to_string(); f.len() - common];
    parts.extend(t[common..].iter().cloned());
    if parts.is_empty() {
        ".".to_string()
    } else {
        parts.join("/")
    }
}
