//! `stackc why`: the source lines a generated line (or a program's message about
//! one) comes from.

use super::*;

/// The origins of a line of a generated file: the analysis of its source (for
/// rendering spans) and the origins. `Err` is an exit code and a message.
fn trace(
    file: &Path,
    line: usize,
) -> Result<(Analysis, Vec<crate::why::Origin>, String), (i32, String)> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| (2, format!("cannot read {}: {e}", file.display())))?;
    let lines = text.lines().count();
    if line == 0 || line > lines {
        return Err((
            2,
            format!(
                "{} has no line {line}: its lines are 1 to {lines}",
                file.display()
            ),
        ));
    }
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
        let Some(span) = o.span else {
            println!("  (default) {}", o.what);
            continue;
        };
        let src = analyzed.sources.get(span.file);
        let (l, c) = analyzed.sources.line_col(span.file, span.start);
        let shown = src.text.lines().nth(l - 1).unwrap_or_default().trim();
        println!("  {}:{l}:{c}: {}", src.name, o.what);
        println!("      {shown}");
    }
}

pub(super) fn why(location: &str) -> i32 {
    if location == "-" {
        // A program's messages about generated files, on the source lines.
        let mut found = false;
        for message in std::io::stdin().lines().map_while(Result::ok) {
            for (file, line) in locations(&message) {
                if let Ok((analyzed, origins, _)) = trace(&file, line) {
                    // The first origin that is a line of the source.
                    let Some((first, span)) = origins.iter().find_map(|o| Some((o, o.span?)))
                    else {
                        continue;
                    };
                    let src = analyzed.sources.get(span.file);
                    let (l, c) = analyzed.sources.line_col(span.file, span.start);
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
