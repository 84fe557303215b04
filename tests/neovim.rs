//! The language server driven by a real editor's LSP client: Neovim, headless,
//! set up as editors/README.md says for its version, opens a file with a
//! mistake (the setup starts `stackc lsp`), and reports the diagnostics it
//! received and the hover it got, then those after edits it sends as ranges,
//! as JSON.

use std::process::Command;

use serde_json::Value;

use crate::support::require;

/// What the test does once Neovim has read the documented `init.lua`: open
/// the file (the setup's FileType handler starts the client), wait for the
/// diagnostics, ask for a hover, check that the other version's setup loads,
/// and write what it saw as JSON.
const PROBE: &str = r#"
local file = os.getenv("STACK_FILE")
vim.cmd("edit " .. file)
local buf = vim.api.nvim_get_current_buf()
vim.wait(15000, function() return #vim.diagnostic.get(buf) > 0 end, 50)
local out = { diagnostics = {}, filetype = vim.bo[buf].filetype }
for _, d in ipairs(vim.diagnostic.get(buf)) do
  local code = d.code
  if code == nil and d.user_data and d.user_data.lsp then code = d.user_data.lsp.code end
  table.insert(out.diagnostics, { code = code, lnum = d.lnum, col = d.col, message = d.message })
end
local params = {
  textDocument = { uri = vim.uri_from_bufnr(buf) },
  position = { line = tonumber(os.getenv("HOVER_LINE")), character = tonumber(os.getenv("HOVER_COL")) },
}
local results = vim.lsp.buf_request_sync(buf, "textDocument/hover", params, 15000) or {}
for _, r in pairs(results) do
  if r.result and r.result.contents then out.hover = r.result.contents.value end
end
-- Edits as a user makes them, which Neovim sends as the ranges they change
-- (the server offers incremental synchronisation): a line with characters of
-- two and four UTF-8 bytes inserted, the mistake below it fixed, then one
-- made after those characters on their line.
vim.api.nvim_buf_set_text(buf, 6, 4, 6, 4, { 'NOTE = "naïve 𝄞"', "    " })
vim.api.nvim_buf_set_text(buf, 7, 16, 7, 20, { "cache" })
vim.wait(15000, function() return #vim.diagnostic.get(buf) == 0 end, 20)
out.after_fix = #vim.diagnostic.get(buf)
local line = vim.api.nvim_buf_get_lines(buf, 6, 7, false)[1]
vim.api.nvim_buf_set_text(buf, 6, #line, 6, #line, { " cach.url" })
vim.wait(15000, function() return #vim.diagnostic.get(buf) > 0 end, 20)
out.after_edit = {}
for _, d in ipairs(vim.diagnostic.get(buf)) do
  table.insert(out.after_edit, { lnum = d.lnum, col = d.col, message = d.message })
end
out.text = table.concat(vim.api.nvim_buf_get_lines(buf, 0, -1, false), "\n")
local other = io.open(os.getenv("OTHER_SETUP")):read("*a")
local chunk, err = loadstring(other)
out.other_loads = chunk ~= nil
out.other_error = err
local f = io.open(os.getenv("OUT"), "w")
f:write(vim.fn.json_encode(out))
f:close()
vim.cmd("qa!")
"#;

/// The Lua block after `<!-- neovim VERSION -->` in editors/README.md, as a
/// user copies it (the list item's indent removed).
fn documented_setup(version: &str) -> String {
    let readme = crate::support::read(&crate::support::root().join("editors/README.md"));
    let marker = format!("<!-- neovim {version} -->");
    let after = &readme[readme
        .find(&marker)
        .unwrap_or_else(|| panic!("editors/README.md has no `{marker}`"))..];
    let start = after
        .find("```lua\n")
        .unwrap_or_else(|| panic!("no lua block after {marker}"))
        + 7;
    let end = after[start..]
        .find("```")
        .unwrap_or_else(|| panic!("unclosed block"))
        + start;
    after[start..end]
        .lines()
        .map(|l| l.strip_prefix("  ").unwrap_or(l))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The documented setup that this Neovim runs: "0.7" or "0.8" (and later).
fn setup_version() -> &'static str {
    let out = Command::new("nvim")
        .arg("--version")
        .output()
        .unwrap_or_else(|e| panic!("nvim: {e}"));
    let first = String::from_utf8_lossy(&out.stdout);
    let minor: u32 = first
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.trim_start_matches('v').split('.').nth(1)?.parse().ok())
        .unwrap_or_else(|| panic!("nvim --version: {first}"));
    if minor <= 7 {
        "0.7"
    } else {
        "0.8"
    }
}

const FILE: &str = r#"secret db_password

service api {
  image = "api:1"
  env {
    DATABASE_URL = db.url
    CACHE_URL = cach.url
  }
}

service db: postgres {
  password = secret.db_password
}

service cache: redis {}

topology single {
  host main { run = [api, db, cache] }
}
"#;

#[test]
fn neovim_receives_diagnostics_and_hover() {
    if !require("nvim") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let file = tmp.path().join("app.stack");
    let init = tmp.path().join("init.lua");
    let other = tmp.path().join("other.lua");
    let probe = tmp.path().join("probe.lua");
    let out = tmp.path().join("out.json");
    let version = setup_version();
    let other_version = if version == "0.7" { "0.8" } else { "0.7" };
    std::fs::write(&file, FILE).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(&init, documented_setup(version)).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(&other, documented_setup(other_version)).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(&probe, PROBE).unwrap_or_else(|e| panic!("{e}"));
    // `stackc` on PATH, as the setup names it.
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_stackc"));
    let path = format!(
        "{}:{}",
        bin.parent()
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
        std::env::var("PATH").unwrap_or_default()
    );
    // Hover on `db` of `db.url` (line 5, zero-based).
    let status = Command::new("nvim")
        .args(["--headless", "-n", "-i", "NONE", "-u"])
        .arg(&init)
        .arg("-c")
        .arg(format!("luafile {}", probe.display()))
        .env("STACK_FILE", &file)
        .env("PATH", path)
        .env("HOVER_LINE", "5")
        .env("HOVER_COL", "20")
        .env("OTHER_SETUP", &other)
        .env("OUT", &out)
        .env("HOME", tmp.path())
        .env("XDG_CONFIG_HOME", tmp.path())
        .env("XDG_DATA_HOME", tmp.path())
        .env("XDG_STATE_HOME", tmp.path())
        .env("XDG_CACHE_HOME", tmp.path())
        .output()
        .unwrap_or_else(|e| panic!("nvim: {e}"));
    let text = std::fs::read_to_string(&out).unwrap_or_else(|e| {
        panic!(
            "nvim wrote no result ({e}): {}{}",
            String::from_utf8_lossy(&status.stdout),
            String::from_utf8_lossy(&status.stderr)
        )
    });
    let result: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    assert_eq!(result["filetype"], "stack", "{result}");
    assert_eq!(
        result["other_loads"], true,
        "the {other_version} setup: {result}"
    );
    let diags = result["diagnostics"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(diags.len(), 1, "{result}");
    assert_eq!(diags[0]["code"], "E0101", "{result}");
    assert_eq!(
        (diags[0]["lnum"].as_u64(), diags[0]["col"].as_u64()),
        (Some(6), Some(16)),
        "{result}"
    );
    assert!(
        diags[0]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("did you mean `cache`?"),
        "{result}"
    );
    // The file has an error, so values are not resolved; the hover says what
    // `db` is.
    let hover = result["hover"].as_str().unwrap_or_default();
    assert!(hover.contains("**service** `db`: `postgres`"), "{result}");
    // The edits, as the server applied them: no error once the mistake is
    // fixed, then the one after the two- and four-byte characters, at the
    // column Neovim counts in bytes from the server's UTF-16 position.
    assert!(
        result["text"]
            .as_str()
            .unwrap_or_default()
            .contains("    NOTE = \"naïve 𝄞\" cach.url\n    CACHE_URL = cache.url\n"),
        "{result}"
    );
    assert_eq!(result["after_fix"], 0, "{result}");
    let edited = result["after_edit"].as_array().cloned().unwrap_or_default();
    assert_eq!(edited.len(), 1, "{result}");
    let column = "    NOTE = \"naïve 𝄞\" cach".len() as u64;
    assert_eq!(
        (edited[0]["lnum"].as_u64(), edited[0]["col"].as_u64()),
        (Some(6), Some(column)),
        "{result}"
    );
}
