//! `stackc secrets`: the secrets a stack needs, and `secrets init`, which writes
//! random values for the missing ones into a file of the owner's alone.

use super::*;

pub(super) fn secrets(args: SecretsArgs) -> i32 {
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
    let plan = match plan_of(text, &options(&file, topologies, "..".into())) {
        Ok(plan) => plan,
        Err(code) => return code,
    };
    if !init {
        print!("{}", crate::secrets::report(&plan));
        return 0;
    }
    let into = match secrets_file(&file, into) {
        Ok(into) => into,
        Err(code) => return code,
    };
    let existing = match std::fs::read_to_string(&into) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => {
            eprintln!("error: cannot read {}: {e}", into.display());
            return 2;
        }
    };
    let present = crate::secrets::names_in(&existing);
    let (text, added) = match with_missing(&plan, existing, &present, &file, &into) {
        Ok(filled) => filled,
        Err(code) => return code,
    };
    // A third party's credential is the user's to bring: named, not made.
    let bring: Vec<String> = crate::secrets::unset(&plan, &present)
        .into_iter()
        .filter(|s| !s.generate)
        .map(|s| format!("{} ({})", s.name.name, s.env_name))
        .collect();
    let bring_line = || {
        if !bring.is_empty() {
            eprintln!(
                "{}: set these yourself (`generate = false`): {}",
                into.display(),
                bring.join(", ")
            );
        }
    };
    if added.is_empty() && into.exists() {
        if bring.is_empty() {
            eprintln!(
                "{}: every required secret is set; nothing changed",
                into.display()
            );
        } else {
            bring_line();
        }
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
    bring_line();
    0
}

/// The file `secrets init` writes (`into`, else `<stem>.secrets.env` beside
/// the source; a link's target), refused when it is a .stack file or inside
/// a stackc output directory. `Err` is the exit code.
fn secrets_file(file: &Path, into: Option<PathBuf>) -> Result<PathBuf, i32> {
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
    if same_file(&into, file) || into.extension().is_some_and(|e| e == "stack") {
        eprintln!(
            "error: {} is a .stack file; secret values go in a file of their own",
            into.display()
        );
        return Err(2);
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
        return Err(2);
    }
    Ok(into)
}

/// `existing` with a random value for each required secret it does not set
/// (a header first when it is empty), and the names added. `Err` is the exit
/// code.
fn with_missing(
    plan: &crate::plan::Plan,
    existing: String,
    present: &[String],
    file: &Path,
    into: &Path,
) -> Result<(String, Vec<crate::base::Name>), i32> {
    let mut added = Vec::new();
    let mut text = existing;
    if text.is_empty() {
        text.push_str(&format!(
            "# Secret values for {}: generated by `stackc secrets init`, never by a build.\n# Keep this file out of version control. Load it with: set -a; . ./{}; set +a\n",
            file.display(),
            into.file_name().and_then(|n| n.to_str()).unwrap_or_default()
        ));
    }
    for s in crate::secrets::unset(plan, present)
        .into_iter()
        .filter(|s| s.generate)
    {
        let value = match crate::secrets::random_value() {
            Ok(v) => v,
            Err(e) => {
                eprintln!("error: cannot read random bytes: {e}");
                return Err(2);
            }
        };
        if !text.ends_with('\n') {
            text.push('\n');
        }
        text.push_str(&format!("{}={value}\n", s.env_name));
        added.push(s.env_name.clone());
    }
    Ok((text, added))
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
