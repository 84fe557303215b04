//! The editor files under `editors/`: the VS Code manifest names files that
//! exist and the grammar it declares; every pattern of the TextMate grammar
//! compiles (with Python's `re`, whose syntax covers what the grammar uses), and
//! the grammar marks the declarations, comments and references of the examples.

use std::process::Command;

use serde_json::Value;

use crate::support::{read, root};

fn json(path: &str) -> Value {
    serde_json::from_str(&read(&root().join(path))).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn vscode_manifest_names_its_files() {
    let manifest = json("editors/vscode/package.json");
    let dir = root().join("editors/vscode");
    assert_eq!(manifest["activationEvents"][0], "onLanguage:stack");
    let main = manifest["main"].as_str().unwrap_or_default();
    assert!(dir.join(main).is_file(), "{main}");
    assert!(read(&dir.join(main)).contains("args: [\"lsp\"]"));
    let language = &manifest["contributes"]["languages"][0];
    assert_eq!(language["extensions"][0], ".stack");
    let config = language["configuration"].as_str().unwrap_or_default();
    assert!(dir.join(config).is_file(), "{config}");
    let grammar = &manifest["contributes"]["grammars"][0];
    let path = grammar["path"].as_str().unwrap_or_default();
    let tm = json(&format!("editors/vscode/{}", path.trim_start_matches("./")));
    assert_eq!(grammar["scopeName"], tm["scopeName"]);
}

#[test]
fn grammar_patterns_compile_and_mark_the_examples() {
    let tm = json("editors/vscode/syntaxes/stack.tmLanguage.json");
    let mut patterns = Vec::new();
    fn collect(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                for (k, v) in m {
                    if matches!(k.as_str(), "match" | "begin" | "end") {
                        out.extend(v.as_str().map(str::to_string));
                    } else {
                        collect(v, out);
                    }
                }
            }
            Value::Array(a) => a.iter().for_each(|v| collect(v, out)),
            _ => {}
        }
    }
    collect(&tm, &mut patterns);
    assert!(patterns.len() >= 10, "{patterns:?}");
    let repo = &tm["repository"];
    let examples: Vec<String> = crate::support::stack_files("examples")
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    // Every pattern compiles; the declaration, comment and reference patterns
    // find what the examples hold.
    let script = r#"
import json, re, sys
patterns = json.loads(sys.argv[1])
for p in patterns:
    re.compile(p)
decl, comment, ref = (re.compile(p, re.M) for p in json.loads(sys.argv[2]))
text = "".join(open(f).read() for f in sys.argv[3:])
services = {m.group(2) for m in decl.finditer(text) if m.group(1) == "service"}
print(json.dumps({
    "services": len(services),
    "comments": len(comment.findall(text)),
    "references": len(ref.findall(text)),
    "api": "api" in services,
}))
"#;
    let marks = serde_json::json!([
        repo["declaration"]["match"],
        repo["comment"]["match"],
        repo["reference"]["match"]
    ]);
    let out = Command::new("python3")
        .args(["-c", script])
        .arg(serde_json::to_string(&patterns).unwrap_or_default())
        .arg(marks.to_string())
        .args(&examples)
        .output()
        .unwrap_or_else(|e| panic!("python3: {e}"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let found: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(found["api"], true, "{found}");
    assert!(found["services"].as_u64() >= Some(15), "{found}");
    assert!(found["comments"].as_u64() >= Some(20), "{found}");
    assert!(found["references"].as_u64() >= Some(20), "{found}");
}
