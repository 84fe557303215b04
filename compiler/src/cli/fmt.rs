//! `stackc fmt`: the formatter over files, directories and standard input.

use super::*;

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

pub(super) fn fmt(args: Vec<PathBuf>, check: bool) -> i32 {
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
