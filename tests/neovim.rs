//! The language server driven by a real editor's LSP client: Neovim, headless,
//! starts `stackc lsp`, opens a file with a mistake, and reports the
//! diagnostics it received and the hover it got, as JSON.

use std::process::Command;

use serde_json::Value;

use crate::support::require;

const SCRIPT: &str = r#"
local file = os.getenv("STACK_FILE")
vim.cmd("edit " .. file)
local buf = vim.api.nvim_get_current_buf()
local client = vim.lsp.start_client({
  name = "stackc",
  cmd = { os.getenv("STACKC"), "lsp" },
  root_dir = vim.fn.fnamemodify(file, ":h"),
})
vim.lsp.buf_attach_client(buf, client)
vim.wait(15000, function() return #vim.diagnostic.get(buf) > 0 end, 50)
local out = { diagnostics = {} }
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
local f = io.open(os.getenv("OUT"), "w")
f:write(vim.fn.json_encode(out))
f:close()
vim.cmd("qa!")
"#;

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
    let script = tmp.path().join("client.lua");
    let out = tmp.path().join("out.json");
    std::fs::write(&file, FILE).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(&script, SCRIPT).unwrap_or_else(|e| panic!("{e}"));
    // Hover on `db` of `db.url` (line 5, zero-based).
    let status = Command::new("nvim")
        .args(["--headless", "--clean", "-n", "-c"])
        .arg(format!("luafile {}", script.display()))
        .env("STACK_FILE", &file)
        .env("STACKC", env!("CARGO_BIN_EXE_stackc"))
        .env("HOVER_LINE", "5")
        .env("HOVER_COL", "20")
        .env("OUT", &out)
        .env("HOME", tmp.path())
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
}
