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

mod build;
mod fmt;
mod secrets;
mod why;

use build::{build, build_check, check, diff, graph};
use fmt::fmt;
use secrets::secrets;
use why::why;

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
        /// Print nothing when the file has no error (not the line that says
        /// what was checked).
        #[arg(long, short = 'q')]
        quiet: bool,
        /// A values file (`NAME=value` lines, as `secrets init` writes): warn
        /// (W0421) of each required secret it does not set.
        #[arg(long, value_name = "FILE")]
        secrets: Option<PathBuf>,
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
    /// by topology, host and target, and each compose service setting by
    /// setting: `diff FILE` against its output directory (what `build` would
    /// change), `diff OLD NEW` between two versions. Exit 0 when nothing
    /// changes, 1 when something does, 2 when an input has errors.
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
/// parallel stage of the command shares (parsing in halves, the definitions'
/// check beside planning, topologies, generating and writing). The same
/// threads from the first stage to the last keep their allocator heaps warm:
/// a thread made for one stage starts from fresh pages, which the kernel must
/// zero (docs/performance.md). Without a pool (the system refuses threads) it
/// runs here.
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
            quiet,
            secrets,
        } => match Deny::parse(&deny) {
            Ok(deny) => check(&file, message_format, &deny, quiet, secrets.as_deref()),
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

/// The plan of a source for a command that reads it (`graph`, `secrets`):
/// its diagnostics are printed, and `Err` is the exit code when it has errors.
fn plan_of(text: String, options: &Options) -> Result<crate::plan::Plan, i32> {
    let Analysis {
        sources,
        plan,
        diagnostics,
        ..
    } = analyze(text, options, Disposal::Free);
    report(&sources, &diagnostics, MessageFormat::Human);
    plan.filter(|_| !diagnostics.iter().any(Diagnostic::is_error))
        .ok_or(1)
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
