//! The command line: the only module that knows clap, prints, and picks exit codes
//! (0 ok, 1 errors in the input, 2 usage or I/O errors).

use std::ffi::OsString;
use std::io::{IsTerminal, Write};
use std::path::{Component, Path, PathBuf};

use clap::{Parser, Subcommand, ValueEnum};

use crate::diag::{render_human, render_json, Code, Diagnostic, SourceMap};
use crate::emit;
use crate::Options;

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
        #[arg(long, value_enum, default_value_t = MessageFormat::Human)]
        message_format: MessageFormat,
    },
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

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum MessageFormat {
    Human,
    Json,
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
        Cmd::Check {
            file,
            message_format,
        } => check(&file, message_format),
        Cmd::Build {
            file,
            topologies,
            out,
            message_format,
        } => build(&file, topologies, out, message_format),
        Cmd::Explain { code } => explain(&code),
        Cmd::Fmt { files, check } => fmt(files, check),
    }
}

fn read(file: &Path) -> Result<String, i32> {
    std::fs::read_to_string(file).map_err(|e| {
        eprintln!("error: cannot read {}: {e}", file.display());
        2
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
    }
}

fn options(file: &Path, topologies: Vec<String>, from_compose: String) -> Options {
    Options {
        source_name: file.display().to_string(),
        topologies,
        source_dir_from_compose: from_compose,
    }
}

fn check(file: &Path, format: MessageFormat) -> i32 {
    let text = match read(file) {
        Ok(t) => t,
        Err(code) => return code,
    };
    let analysis = crate::analyze(&text, &options(file, Vec::new(), "..".into()));
    let (sources, _, diags) = &*std::mem::ManuallyDrop::new(analysis);
    report(sources, diags, format);
    i32::from(diags.iter().any(Diagnostic::is_error))
}

fn build(file: &Path, topologies: Vec<String>, out: Option<PathBuf>, format: MessageFormat) -> i32 {
    let text = match read(file) {
        Ok(t) => t,
        Err(code) => return code,
    };
    let source_dir = file.parent().map(Path::to_path_buf).unwrap_or_default();
    let out = out.unwrap_or_else(|| source_dir.join("out"));
    // Compose files sit in <out>/<topology>/compose/.
    let from_compose = relative_path(&out.join("t").join("compose"), &source_dir);
    let filtered = !topologies.is_empty();
    let opts = options(file, topologies, from_compose);
    let compilation = crate::compile(&text, &opts);
    report(&compilation.sources, &compilation.diagnostics, format);
    // The process ends right after this build: freeing the whole compilation one
    // allocation at a time would only cost time (rustc does the same).
    let compilation = std::mem::ManuallyDrop::new(compilation);
    if compilation.has_errors() {
        return 1;
    }
    let mut scope: Vec<String> = compilation
        .artifacts
        .iter()
        .filter_map(|a| a.path.split('/').next().map(str::to_string))
        .collect();
    if filtered {
        scope.extend(opts.topologies.iter().cloned());
    } else {
        // Topologies removed from the file: their old output is stale.
        scope.extend(emit::existing_topologies(&out, &opts.source_name));
    }
    scope.sort();
    scope.dedup();
    match emit::write(&out, &opts.source_name, &compilation.artifacts, &scope) {
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

fn explain(code: &str) -> i32 {
    match Code::parse(code) {
        Some(c) => {
            println!(
                "{} ({}): {}",
                c.as_str(),
                c.slug(),
                c.explanation().trim_end()
            );
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
    similar::TextDiff::from_lines(old, new)
        .unified_diff()
        .context_radius(3)
        .header(&format!("a/{name}"), &format!("b/{name}"))
        .to_string()
}

/// The path of `to` as seen from the directory `from`, using `/`.
fn relative_path(from: &Path, to: &Path) -> String {
    let abs = |p: &Path| -> Vec<String> {
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
