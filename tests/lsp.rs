//! The language server over JSON-RPC: `stackc lsp` started as an editor starts
//! it, messages framed with Content-Length on its standard input and output.
//! Diagnostics for unsaved text (and their quick fixes), hover, definition,
//! references, rename, completion, symbols and formatting; hover texts and
//! completions are snapshotted with the document they were asked on.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use serde_json::{json, Value};

/// A minimal LSP client.
pub struct Client {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    next: i64,
    /// Notifications received while waiting for a response.
    pending: VecDeque<Value>,
}

impl Client {
    pub fn start() -> Client {
        let mut child = Command::new(env!("CARGO_BIN_EXE_stackc"))
            .arg("lsp")
            .env("XDG_CACHE_HOME", cache_dir())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("stackc lsp: {e}"));
        let stdin = child.stdin.take().unwrap_or_else(|| panic!("stdin"));
        let stdout = BufReader::new(child.stdout.take().unwrap_or_else(|| panic!("stdout")));
        let mut c = Client {
            child,
            stdin,
            stdout,
            next: 1,
            pending: VecDeque::new(),
        };
        let init = c.request(
            "initialize",
            json!({ "processId": null, "rootUri": null, "capabilities": {} }),
        );
        assert_eq!(init["serverInfo"]["name"], "stackc", "{init}");
        c.notify("initialized", json!({}));
        c
    }

    fn send(&mut self, msg: &Value) {
        let body = msg.to_string();
        write!(self.stdin, "Content-Length: {}\r\n\r\n{body}", body.len())
            .unwrap_or_else(|e| panic!("{e}"));
        self.stdin.flush().unwrap_or_else(|e| panic!("{e}"));
    }

    /// Bytes as they are, framing and all.
    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.stdin
            .write_all(bytes)
            .unwrap_or_else(|e| panic!("{e}"));
        self.stdin.flush().unwrap_or_else(|e| panic!("{e}"));
    }

    /// The next message that is not a notification: an answer.
    pub fn answer(&mut self) -> Value {
        loop {
            let msg = self.receive();
            if msg.get("method").is_none() {
                return msg;
            }
            self.pending.push_back(msg);
        }
    }

    fn receive(&mut self) -> Value {
        let mut length = 0;
        loop {
            let mut line = String::new();
            self.stdout
                .read_line(&mut line)
                .unwrap_or_else(|e| panic!("{e}"));
            assert!(!line.is_empty(), "the server closed its output");
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some(n) = line.strip_prefix("Content-Length: ") {
                length = n.parse().unwrap_or(0);
            }
        }
        let mut body = vec![0; length];
        self.stdout
            .read_exact(&mut body)
            .unwrap_or_else(|e| panic!("{e}"));
        serde_json::from_slice(&body).unwrap_or_else(|e| panic!("{e}"))
    }

    pub fn request(&mut self, method: &str, params: Value) -> Value {
        let id = self.next;
        self.next += 1;
        self.send(&json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params }));
        loop {
            let msg = self.receive();
            if msg.get("id") == Some(&json!(id)) {
                if let Some(error) = msg.get("error") {
                    return json!({ "error": error });
                }
                return msg["result"].clone();
            }
            self.pending.push_back(msg);
        }
    }

    pub fn notify(&mut self, method: &str, params: Value) {
        self.send(&json!({ "jsonrpc": "2.0", "method": method, "params": params }));
    }

    /// The next notification of a method.
    pub fn notification(&mut self, method: &str) -> Value {
        if let Some(i) = self.pending.iter().position(|m| m["method"] == method) {
            return self.pending.remove(i).unwrap_or_default()["params"].clone();
        }
        loop {
            let msg = self.receive();
            if msg["method"] == method {
                return msg["params"].clone();
            }
            self.pending.push_back(msg);
        }
    }

    pub fn stop(mut self) {
        let r = self.request("shutdown", Value::Null);
        assert_eq!(r, Value::Null);
        self.notify("exit", Value::Null);
        let status = self.child.wait().unwrap_or_else(|e| panic!("{e}"));
        assert!(status.success());
    }
}

/// The servers' cache directory, where they copy the stdlib for the editor:
/// one for the test run.
fn cache_dir() -> std::path::PathBuf {
    std::env::temp_dir().join(format!("stackc-lsp-tests-{}", std::process::id()))
}

const URI: &str = "file:///work/app.stack";

/// The document: two services, a secret, a topology.
const DOC: &str = r#"secret db_password

# The API, in front of the database.
service api {
  image = "api:1"
  port http = 8000
  env {
    DATABASE_URL = db.url
  }
}

service db: postgres {
  password = secret.db_password
}

topology single {
  host main {
    address = "10.0.0.1"
    run = [api, db]
  }
}
"#;

/// The LSP position of the `n`th occurrence of `needle` (plus `delta` characters).
fn at(text: &str, needle: &str, n: usize, delta: u32) -> Value {
    let offset = text
        .match_indices(needle)
        .nth(n)
        .unwrap_or_else(|| panic!("{needle}"))
        .0;
    let line = text[..offset].matches('\n').count();
    let column = offset - text[..offset].rfind('\n').map_or(0, |i| i + 1);
    json!({ "line": line, "character": column as u32 + delta })
}

fn doc_position(text: &str, needle: &str, n: usize, delta: u32) -> Value {
    json!({ "textDocument": { "uri": URI }, "position": at(text, needle, n, delta) })
}

/// The document's symbols, and the names of the top-level ones.
fn outline(c: &mut Client) -> (Value, Vec<String>) {
    let symbols = c.request(
        "textDocument/documentSymbol",
        json!({ "textDocument": { "uri": URI } }),
    );
    let names = symbols
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| Some(s["name"].as_str()?.to_string()))
        .collect();
    (symbols, names)
}

fn open(c: &mut Client, text: &str) -> Value {
    c.notify(
        "textDocument/didOpen",
        json!({ "textDocument": { "uri": URI, "languageId": "stack", "version": 1, "text": text } }),
    );
    c.notification("textDocument/publishDiagnostics")
}

#[test]
fn diagnostics_follow_the_unsaved_text_and_offer_the_fix() {
    let mut c = Client::start();
    let broken = DOC.replace("db.url", "dbb.url");
    let published = open(&mut c, &broken);
    assert_eq!(published["uri"], URI);
    let diags = published["diagnostics"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(diags.len(), 1, "{published}");
    let d = &diags[0];
    assert_eq!(d["code"], "E0101");
    assert_eq!(d["source"], "stackc");
    assert_eq!(d["range"]["start"], at(&broken, "dbb", 0, 0));
    assert_eq!(d["range"]["end"], at(&broken, "dbb", 0, 3));
    assert!(
        d["message"]
            .as_str()
            .unwrap_or_default()
            .contains("did you mean `db`?"),
        "{d}"
    );
    // The quick fix replaces the name.
    let actions = c.request(
        "textDocument/codeAction",
        json!({ "textDocument": { "uri": URI }, "range": d["range"], "context": { "diagnostics": [d] } }),
    );
    let edit = &actions[0]["edit"]["changes"][URI][0];
    assert_eq!(actions[0]["kind"], "quickfix");
    assert_eq!(edit["newText"], "db");
    assert_eq!(edit["range"], d["range"]);
    // Fixed in the editor: the diagnostics are cleared.
    c.notify(
        "textDocument/didChange",
        json!({ "textDocument": { "uri": URI, "version": 2 }, "contentChanges": [{ "text": DOC }] }),
    );
    let published = c.notification("textDocument/publishDiagnostics");
    assert_eq!(published["diagnostics"], json!([]), "{published}");
    c.stop();
}

#[test]
fn related_locations_point_at_the_other_end() {
    let mut c = Client::start();
    let text = "service api { image = \"a:1\" }\nservice api { image = \"b:1\" }\n\ntopology t {\n  host h { run = [api] }\n}\n";
    let published = open(&mut c, text);
    let d = &published["diagnostics"][0];
    assert_eq!(d["code"], "E0102", "{published}");
    let related = &d["relatedInformation"][0]["location"];
    assert_eq!(related["uri"], URI);
    assert_eq!(related["range"]["start"], at(text, "api", 0, 0));
    c.stop();
}

#[test]
fn navigation_rename_symbols_and_formatting() {
    let mut c = Client::start();
    open(&mut c, DOC);
    // Definition of the `db` in `db.url`: the service's name.
    let def = c.request("textDocument/definition", doc_position(DOC, "db.url", 0, 1));
    assert_eq!(def["uri"], URI);
    assert_eq!(def["range"]["start"], at(DOC, "db:", 0, 0));
    // The kind `postgres` is in the stdlib: a file the editor can open.
    let def = c.request(
        "textDocument/definition",
        doc_position(DOC, "postgres", 0, 2),
    );
    let uri = def["uri"].as_str().unwrap_or_default();
    assert!(uri.ends_with("/postgres.stack"), "{def}");
    let path = uri.trim_start_matches("file://");
    assert!(path.starts_with(&*cache_dir().to_string_lossy()), "{uri}");
    let stdlib = std::fs::read_to_string(path).unwrap_or_default();
    assert!(stdlib.contains("kind postgres"), "{uri}");
    let meta = std::fs::metadata(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    assert!(meta.permissions().readonly(), "{path} is writable");
    // Opened in the editor, it gets no diagnostics (its kinds are not defined
    // twice) and stays as it is.
    c.notify(
        "textDocument/didOpen",
        json!({ "textDocument": { "uri": uri, "languageId": "stack", "version": 1, "text": stdlib } }),
    );
    let published = c.notification("textDocument/publishDiagnostics");
    assert_eq!(published["uri"], uri);
    assert_eq!(published["diagnostics"], json!([]), "{published}");
    // An attribute: `url` in `db.url` goes to the kind's `url` template.
    let def = c.request("textDocument/definition", doc_position(DOC, "db.url", 0, 4));
    assert_eq!(def["uri"], uri, "{def}");
    assert_eq!(
        def["range"]["start"],
        at(&stdlib, "  url = ", 0, 2),
        "{def}"
    );
    // References of `db`, with its declaration: `db.url`, `run = [api, db]`.
    let mut params = doc_position(DOC, "db:", 0, 0);
    params["context"] = json!({ "includeDeclaration": true });
    let refs = c.request("textDocument/references", params);
    assert_eq!(refs.as_array().map(Vec::len), Some(3), "{refs}");
    // Rename the secret: its declaration and its use.
    let mut params = doc_position(DOC, "db_password", 1, 0);
    params["newName"] = json!("database_password");
    let edit = c.request("textDocument/rename", params);
    let edits = edit["changes"][URI].as_array().cloned().unwrap_or_default();
    assert_eq!(edits.len(), 2, "{edit}");
    assert!(edits.iter().all(|e| e["newText"] == "database_password"));
    // A name that is not one is refused.
    let mut params = doc_position(DOC, "api", 0, 0);
    params["newName"] = json!("9 lives");
    assert!(c
        .request("textDocument/rename", params)
        .get("error")
        .is_some());
    // prepareRename: the name under the cursor and its range, or why not.
    let prepared = c.request("textDocument/prepareRename", doc_position(DOC, "api", 0, 1));
    assert_eq!(prepared["placeholder"], "api", "{prepared}");
    assert_eq!(
        prepared["range"]["start"],
        at(DOC, "api", 0, 0),
        "{prepared}"
    );
    let nothing = c.request(
        "textDocument/prepareRename",
        doc_position(DOC, "image", 0, 1),
    );
    assert!(nothing.get("error").is_some(), "{nothing}");
    // Names the kind of name does not allow, and names already taken.
    for (needle, n, new_name, why) in [
        ("api", 0, "My_API", "not a service name"),
        ("api", 0, "db", "already a service"),
        ("db_password", 1, "db-password", "not a secret name"),
        ("main", 0, "Main", "not a host name"),
    ] {
        let mut params = doc_position(DOC, needle, n, 0);
        params["newName"] = json!(new_name);
        let refused = c.request("textDocument/rename", params);
        let message = refused["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(why), "{new_name}: {refused}");
    }
    // The outline.
    let (symbols, names) = outline(&mut c);
    assert_eq!(names, ["db_password", "api", "db", "single"]);
    assert_eq!(symbols[3]["children"][0]["name"], "main");
    // Formatting: one edit with the formatted text.
    c.notify(
        "textDocument/didChange",
        json!({ "textDocument": { "uri": URI, "version": 2 }, "contentChanges": [{ "text": DOC.replace("image = \"api:1\"", "image=\"api:1\"") }] }),
    );
    let edits = c.request(
        "textDocument/formatting",
        json!({ "textDocument": { "uri": URI }, "options": { "tabSize": 2, "insertSpaces": true } }),
    );
    assert_eq!(edits[0]["newText"], DOC, "{edits}");
    c.stop();
}

/// Hover texts and completions, with the document.
#[test]
fn hover_and_completion_snapshots() {
    let mut c = Client::start();
    open(&mut c, DOC);
    let mut out = format!("----- DOCUMENT\n{DOC}");
    let hovers = [
        ("db.url", 0, 3, "a reference in env: its value"),
        ("db:", 0, 0, "a service's name: its placements"),
        (
            "password =",
            0,
            2,
            "a kind's parameter: its documentation and default",
        ),
        ("api {", 0, 1, "a service with a comment above it"),
        ("db_password", 1, 3, "a secret"),
        ("main", 0, 1, "a host"),
        (
            "image =",
            0,
            1,
            "a field of a service: the schema's documentation",
        ),
        ("address =", 0, 1, "a field of a host"),
        ("secret db_password", 0, 1, "a top-level key"),
    ];
    for (needle, n, delta, what) in hovers {
        let h = c.request("textDocument/hover", doc_position(DOC, needle, n, delta));
        let text = h["contents"]["value"].as_str().unwrap_or("(none)");
        out.push_str(&format!("----- HOVER `{needle}` ({what})\n{text}\n"));
    }
    // Completion: after `db.`, at a field of a service, at the top level.
    let typing = DOC.replace("DATABASE_URL = db.url", "DATABASE_URL = db.");
    c.notify(
        "textDocument/didChange",
        json!({ "textDocument": { "uri": URI, "version": 3 }, "contentChanges": [{ "text": typing }] }),
    );
    let completions = [
        ("db.", 0, 3, "attributes and parameters of `db`"),
        (
            "password =",
            0,
            0,
            "the fields of a service of kind postgres",
        ),
    ];
    for (needle, n, delta, what) in completions {
        let list = c.request(
            "textDocument/completion",
            doc_position(&typing, needle, n, delta),
        );
        let labels: Vec<&str> = list
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|i| i["label"].as_str())
            .collect();
        out.push_str(&format!(
            "----- COMPLETION at `{needle}` ({what})\n{}\n",
            labels.join(" ")
        ));
    }
    insta::assert_snapshot!("lsp@hover-and-completion", out);
    c.stop();
}

/// A body framed with its true length.
fn framed(body: &[u8]) -> Vec<u8> {
    let mut frame = format!("Content-Length: {}\r\n\r\n", body.len()).into_bytes();
    frame.extend_from_slice(body);
    frame
}

/// Anything a client or a broken pipe sends is answered with JSON-RPC's
/// error, and the server goes on serving: a hover after each is answered.
#[test]
fn the_server_survives_anything_a_client_sends() {
    let mut c = Client::start();
    open(&mut c, DOC);
    let cases: Vec<(&str, Vec<u8>, i64)> = vec![
        ("not JSON", framed(b"{this is not json"), -32700),
        (
            "invalid UTF-8",
            framed(b"{\"jsonrpc\": \"2.0\", \"method\": \"\xff\xfe\"}"),
            -32700,
        ),
        ("a JSON array", framed(b"[1, 2, 3]"), -32600),
        ("null", framed(b"null"), -32600),
        (
            "neither id nor method",
            framed(b"{\"jsonrpc\": \"2.0\", \"params\": {}}"),
            -32600,
        ),
        (
            "an id of another type",
            framed(b"{\"jsonrpc\": \"2.0\", \"id\": [1], \"method\": \"x\"}"),
            -32600,
        ),
        (
            "no Content-Length",
            b"Content-Type: application/json\r\n\r\n{}".to_vec(),
            -32700,
        ),
        (
            "a Content-Length that is no number",
            b"Content-Length: twelve\r\n\r\n{}".to_vec(),
            -32700,
        ),
        (
            "a header that is no header",
            b"Hello there\r\n\r\n".to_vec(),
            -32700,
        ),
        (
            "a length over the limit",
            b"Content-Length: 99999999999999\r\n\r\n{\"jsonrpc\": \"2.0\"}".to_vec(),
            -32600,
        ),
    ];
    for (what, bytes, code) in cases {
        c.send_raw(&bytes);
        let answer = c.answer();
        assert_eq!(answer["error"]["code"], json!(code), "{what}: {answer}");
        assert_eq!(answer["jsonrpc"], "2.0", "{what}: {answer}");
        let hover = c.request("textDocument/hover", doc_position(DOC, "db.url", 0, 0));
        assert!(
            hover["contents"].is_object(),
            "{what}: the server still answers: {hover}"
        );
    }
    // An unknown method is answered too (and the id echoed).
    let unknown = c.request("stackc/unknown", json!({}));
    assert_eq!(unknown["error"]["code"], json!(-32601), "{unknown}");
    c.stop();
}

/// After `shutdown`, a request is refused with an error (not an exit), and
/// `exit` ends the server with 0; `exit` without `shutdown` ends it with 1.
#[test]
fn requests_after_shutdown_are_refused_and_exit_codes_follow_the_protocol() {
    let mut c = Client::start();
    assert_eq!(c.request("shutdown", Value::Null), Value::Null);
    let after = c.request("textDocument/hover", doc_position(DOC, "db.url", 0, 0));
    assert_eq!(after["error"]["code"], json!(-32600), "{after}");
    c.notify("exit", Value::Null);
    let status = c.child.wait().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(status.code(), Some(0));

    let mut c = Client::start();
    c.notify("exit", Value::Null);
    let status = c.child.wait().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(status.code(), Some(1), "exit without shutdown");
}

/// The LSP position of a byte offset, in UTF-16 units (the encoding a client
/// that offers no other gets).
fn utf16_at(text: &str, offset: usize) -> Value {
    let line_start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    let line = text[..offset].matches('\n').count();
    let character = text[line_start..offset].encode_utf16().count();
    json!({ "line": line, "character": character })
}

/// Incremental synchronisation: a notification of several range changes (on
/// a line with characters of two and four UTF-8 bytes, one and two UTF-16
/// units; across lines; at the end) leaves the server with the text a full
/// synchronisation of the same edits gives: the same diagnostics, at the
/// same ranges, and the same formatted text.
#[test]
fn range_changes_leave_the_text_the_whole_text_would() {
    let base = format!("# naïve café: €𝄞 ünïcode\n{DOC}");
    // Each edit as (the text it replaces, which occurrence, the new text),
    // found in the text the edits before it left.
    let edits = [
        ("ünïcode", 0, "ω 𝄞 done"),
        ("db.url", 0, "dbb.url"),
        ("\n\n# The API, in front of the database.", 0, "\n"),
        ("\n}\n", 2, "\n}\n# €nd\nservice extra { image = 1 }\n"),
        ("image = \"api:1\"", 0, "image=\"api:1\""),
    ];
    let mut c = Client::start();
    open(&mut c, &base);
    let mut text = base.clone();
    let mut changes = Vec::new();
    for (old, n, new) in edits {
        let (start, _) = text
            .match_indices(old)
            .nth(n)
            .unwrap_or_else(|| panic!("{old} in {text}"));
        let end = start + old.len();
        changes.push(json!({
            "range": { "start": utf16_at(&text, start), "end": utf16_at(&text, end) },
            "text": new,
        }));
        text.replace_range(start..end, new);
    }
    c.notify(
        "textDocument/didChange",
        json!({ "textDocument": { "uri": URI, "version": 2 }, "contentChanges": changes }),
    );
    let incremental = c.notification("textDocument/publishDiagnostics");
    let mut whole = Client::start();
    let full = open(&mut whole, &text);
    assert_eq!(incremental["diagnostics"], full["diagnostics"]);
    // The unknown `dbb`, reported where the edited text has it.
    let dbb = text.find("dbb.url").unwrap_or_else(|| panic!("{text}"));
    let reported = incremental["diagnostics"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|d| d["range"]["start"] == utf16_at(&text, dbb));
    assert!(reported, "{incremental}");
    let format = json!({ "textDocument": { "uri": URI }, "options": { "tabSize": 2, "insertSpaces": true } });
    let formatted = c.request("textDocument/formatting", format.clone());
    assert!(formatted[0]["newText"].is_string(), "{formatted}");
    assert_eq!(formatted, whole.request("textDocument/formatting", format));
    c.stop();
    whole.stop();
}

/// Edits that arrive while one is analysed are analysed once, at their latest
/// text: 300 quick edits of a large file give a few publications, the last
/// for the last text, and a hover sent after them is answered on it.
#[test]
fn queued_edits_are_analysed_once_at_the_latest_text() {
    let names: Vec<String> = (0..3000).map(|i| format!("s{i}")).collect();
    let mut big = DOC.replace(
        "run = [api, db]",
        &format!("run = [api, db, {}]", names.join(", ")),
    );
    for name in &names {
        big.push_str(&format!("\nservice {name} {{\n  image = \"s:1\"\n}}\n"));
    }
    let mut c = Client::start();
    open(&mut c, &big);
    let edits = 300;
    for v in 0..edits {
        // Every edit but the last has an error of its own line.
        let text = if v + 1 == edits {
            big.clone()
        } else {
            format!("{big}\nservice broken{v} {{ image = 1 }}\n")
        };
        c.notify(
            "textDocument/didChange",
            json!({ "textDocument": { "uri": URI, "version": v + 2 }, "contentChanges": [{ "text": text }] }),
        );
    }
    let hover = c.request("textDocument/hover", doc_position(DOC, "db.url", 0, 0));
    assert!(hover["contents"].is_object(), "{hover}");
    // The publications in order, up to the one of the last text (the only
    // one without an error since the document was opened).
    let mut published = 0;
    loop {
        let p = c.notification("textDocument/publishDiagnostics");
        published += 1;
        if p["diagnostics"] == json!([]) {
            break;
        }
        assert!(published <= edits, "more publications than edits");
    }
    assert!(
        published < edits / 4,
        "{published} publications for {edits} queued edits"
    );
    c.stop();
}

/// Completion by what is expected there: a choice field's values after
/// `FIELD =`, the kinds after `service NAME:`, and the fields of a block
/// written on one line.
#[test]
fn completion_offers_what_the_schema_expects_there() {
    let mut c = Client::start();
    let doc = "service db: postgres {\n  restart = \n}\n\nservice api: \n\nservice web {\n  image = \"web:1\"\n  health { http = \"/\"  ti }\n}\n\ntopology single {\n  host main { run = [db, web] }\n}\n";
    open(&mut c, doc);
    let labels = |c: &mut Client, needle: &str, delta: u32| -> Vec<String> {
        let list = c.request(
            "textDocument/completion",
            doc_position(doc, needle, 0, delta),
        );
        list.as_array()
            .into_iter()
            .flatten()
            .filter_map(|i| i["label"].as_str().map(str::to_string))
            .collect()
    };
    let restart = labels(&mut c, "restart = ", 10);
    assert_eq!(
        restart,
        ["no", "always", "on-failure", "unless-stopped"],
        "{restart:?}"
    );
    let kinds = labels(&mut c, "service api: ", 13);
    assert!(kinds.iter().any(|k| k == "postgres"), "{kinds:?}");
    assert!(
        !kinds.iter().any(|k| k == "db" || k == "api"),
        "services are no kinds: {kinds:?}"
    );
    let health = labels(&mut c, "  ti }", 4);
    assert!(health.iter().any(|f| f == "timeout"), "{health:?}");
    assert!(
        !health.iter().any(|f| f == "db"),
        "a key, not a value: {health:?}"
    );
    c.stop();
}

/// One unclosed `{` costs only its own entry: the others stay in the outline
/// and navigation, and hover keeps the values of the last version without
/// errors, marked as such. The one diagnostic is the syntax error.
#[test]
fn a_half_typed_block_keeps_the_rest_of_the_file() {
    let mut c = Client::start();
    let published = open(&mut c, DOC);
    assert_eq!(published["diagnostics"], json!([]), "{published}");
    let broken = DOC.replace(
        "    DATABASE_URL = db.url\n  }\n}",
        "    DATABASE_URL = db.url\n  }\n",
    );
    assert_ne!(broken, DOC);
    c.notify(
        "textDocument/didChange",
        json!({ "textDocument": { "uri": URI, "version": 2 }, "contentChanges": [{ "text": broken }] }),
    );
    let published = c.notification("textDocument/publishDiagnostics");
    let diags = published["diagnostics"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(diags.len(), 1, "{published}");
    assert_eq!(diags[0]["code"], "E0001");
    assert_eq!(
        diags[0]["range"]["start"],
        at(&broken, "service api {", 0, 12),
        "{published}"
    );
    let (symbols, names) = outline(&mut c);
    assert_eq!(names, ["db_password", "db", "single"], "{symbols}");
    let def = c.request(
        "textDocument/definition",
        doc_position(&broken, "db]", 0, 0),
    );
    assert_eq!(def["range"]["start"], at(&broken, "db:", 0, 0), "{def}");
    let hover = c.request("textDocument/hover", doc_position(&broken, "db]", 0, 0));
    let text = hover["contents"]["value"].as_str().unwrap_or_default();
    assert!(text.contains("topology `single`: `main`"), "{text}");
    assert!(
        text.contains("as of the last version without errors"),
        "{text}"
    );
    c.stop();
}

/// Applies a code action's edits (one document, ranges on distinct lines or
/// ordered) to `text`.
fn apply(text: &str, action: &Value) -> String {
    let mut edits = action["edit"]["changes"][URI]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let offset = |p: &Value| {
        let line = p["line"].as_u64().unwrap_or_default() as usize;
        let start: usize = text.split_inclusive('\n').take(line).map(str::len).sum();
        start + p["character"].as_u64().unwrap_or_default() as usize
    };
    edits.sort_by_key(|e| std::cmp::Reverse(offset(&e["range"]["start"])));
    let mut out = text.to_string();
    for e in edits {
        let (s, t) = (offset(&e["range"]["start"]), offset(&e["range"]["end"]));
        out.replace_range(s..t, e["newText"].as_str().unwrap_or_default());
    }
    out
}

/// The code actions for the document's first diagnostic, after `text` was
/// published.
fn fixes_for(c: &mut Client, text: &str, version: i64) -> (Value, Vec<Value>) {
    c.notify(
        "textDocument/didChange",
        json!({ "textDocument": { "uri": URI, "version": version }, "contentChanges": [{ "text": text }] }),
    );
    let published = c.notification("textDocument/publishDiagnostics");
    let d = published["diagnostics"][0].clone();
    let actions = c.request(
        "textDocument/codeAction",
        json!({ "textDocument": { "uri": URI }, "range": d["range"], "context": { "diagnostics": [d] } }),
    );
    (published, actions.as_array().cloned().unwrap_or_default())
}

/// The preferred quick fix of an undeclared secret declares it (a similar
/// name is offered second); a field written twice is removed, line and all;
/// a unit is added. Each applied leaves the document without diagnostics.
#[test]
fn quick_fixes_declare_remove_and_complete() {
    let mut c = Client::start();
    open(&mut c, DOC);
    let cases = [
        (
            DOC.replace("secret.db_password", "secret.db_passwrd"),
            "Declare `secret db_passwrd`",
        ),
        (
            DOC.replace(
                "  image = \"api:1\"\n",
                "  image = \"api:1\"\n  image = \"api:2\"\n",
            ),
            "Remove this `image`",
        ),
        (
            DOC.replace(
                "  port http = 8000\n",
                "  port http = 8000\n  stop_grace_period = 5\n",
            ),
            "Write `5s`",
        ),
    ];
    for (v, (text, title)) in cases.iter().enumerate() {
        let (published, actions) = fixes_for(&mut c, text, v as i64 + 2);
        let preferred: Vec<&Value> = actions
            .iter()
            .filter(|a| a["isPreferred"] == true)
            .collect();
        assert_eq!(preferred.len(), 1, "{published}\n{actions:?}");
        assert_eq!(preferred[0]["title"], *title, "{actions:?}");
        let fixed = apply(text, preferred[0]);
        let (after, _) = fixes_for(&mut c, &fixed, v as i64 + 100);
        assert_eq!(after["diagnostics"], json!([]), "{fixed}");
        if title.starts_with("Remove") {
            assert_eq!(fixed, DOC);
        }
    }
    // The similar name is the other fix of the secret.
    let (_, actions) = fixes_for(&mut c, &cases[0].0, 200);
    assert_eq!(actions.len(), 2, "{actions:?}");
    assert_eq!(actions[1]["title"], "Replace with `db_password`");
    c.stop();
}

/// In an `ha` block, the options of the modes the service may run in: its
/// kind's `ha_modes`, or the `mode` written; never another database's.
#[test]
fn ha_options_follow_the_kind_and_the_mode() {
    let mut c = Client::start();
    let doc = "service db: postgres {\n  ha {  }\n}\n\nservice cache: redis {\n  ha {  }\n}\n\nservice pg2: postgres {\n  ha { mode = patroni  }\n}\n";
    open(&mut c, doc);
    let labels = |c: &mut Client, n: usize, needle: &str, delta: u32| -> Vec<String> {
        let list = c.request(
            "textDocument/completion",
            doc_position(doc, needle, n, delta),
        );
        list.as_array()
            .into_iter()
            .flatten()
            .filter_map(|i| i["label"].as_str().map(str::to_string))
            .collect()
    };
    let has = |labels: &[String], f: &str| labels.iter().any(|l| l == f);
    let postgres = labels(&mut c, 0, "ha {  }", 5);
    assert!(
        has(&postgres, "replication_user") && has(&postgres, "superuser_password"),
        "{postgres:?}"
    );
    assert!(has(&postgres, "mode"), "{postgres:?}");
    assert!(
        !has(&postgres, "sentinels") && !has(&postgres, "quorum"),
        "{postgres:?}"
    );
    let redis = labels(&mut c, 1, "ha {  }", 5);
    assert!(
        has(&redis, "sentinels") && has(&redis, "quorum"),
        "{redis:?}"
    );
    assert!(
        !has(&redis, "superuser_password") && !has(&redis, "ttl"),
        "{redis:?}"
    );
    let patroni = labels(&mut c, 0, "patroni  }", 8);
    assert!(has(&patroni, "ttl") && has(&patroni, "etcd"), "{patroni:?}");
    assert!(!has(&patroni, "sentinels"), "{patroni:?}");
    c.stop();
}

/// Go to definition on an attribute: a parameter goes to the kind's `param`,
/// `ports.NAME` to the `port NAME`, a service's own `url` to its own entry
/// (before its kind's), in a reference and in a string's `${...}`.
#[test]
fn definition_of_an_attribute_is_where_it_is_decided() {
    let mut c = Client::start();
    let doc = "kind api_base {\n  param level = \"info\"\n  port http = 8000\n  url = \"http://${self.address}/v1\"\n}\n\nservice api: api_base {\n  image = \"a:1\"\n  url = \"http://${self.address}/v2\"\n}\n\nservice web {\n  image = \"w:1\"\n  env {\n    A = api.level\n    B = \"${api.ports.http}\"\n    C = api.url\n  }\n}\n\ntopology t {\n  host h { run = [api, web] }\n}\n";
    let published = open(&mut c, doc);
    assert_eq!(published["diagnostics"], json!([]), "{published}");
    let cases = [
        (("api.level", 5), ("param level", 6)),
        (("api.ports.http", 11), ("port http", 5)),
        (("api.url", 5), ("url = \"http://${self.address}/v2", 0)),
    ];
    for ((needle, delta), (target, target_delta)) in cases {
        let def = c.request(
            "textDocument/definition",
            doc_position(doc, needle, 0, delta),
        );
        assert_eq!(def["uri"], URI, "{needle}: {def}");
        assert_eq!(
            def["range"]["start"],
            at(doc, target, 0, target_delta),
            "{needle}: {def}"
        );
    }
    c.stop();
}

/// Hover on a choice names the field's documentation and the other choices.
#[test]
fn hover_on_a_choice_lists_the_others() {
    let mut c = Client::start();
    let doc = "service api {\n  image = \"a:1\"\n  restart = always\n}\n\ntopology t {\n  host h { run = [api] }\n}\n";
    open(&mut c, doc);
    let hover = c.request("textDocument/hover", doc_position(doc, "always", 0, 2));
    let text = hover["contents"]["value"].as_str().unwrap_or_default();
    assert!(
        text.starts_with("**choice** of `restart`: `no`, `always`"),
        "{text}"
    );
    assert!(text.contains("**field** `restart` of a service"), "{text}");
    c.stop();
}
