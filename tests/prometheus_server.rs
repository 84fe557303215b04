//! A real Prometheus started on a generated `prometheus.yml` (and the rules
//! beside it), for the tests that ask it what it scraped and which alerts fire.

use std::path::Path;
use std::process::{Child, Command, Stdio};

use crate::support::require;

pub struct Prometheus {
    child: Child,
    listen: String,
    _data: tempfile::TempDir,
}

impl Prometheus {
    /// Starts `prometheus` on `config`, listening on `listen` (`ip:port`);
    /// `None` where it is not installed (outside CI).
    pub fn start(config: &Path, listen: &str) -> Option<Prometheus> {
        if !require("prometheus") || !require("curl") {
            return None;
        }
        let data = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let log = std::fs::File::create(data.path().join("prometheus.log"))
            .unwrap_or_else(|e| panic!("{e}"));
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", data.path().display()))
            .arg(format!("--web.listen-address={listen}"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("prometheus: {e}"));
        Some(Prometheus {
            child,
            listen: listen.to_string(),
            _data: data,
        })
    }

    /// The result of an instant query (`data.result`), empty while
    /// Prometheus does not answer.
    pub fn query(&self, promql: &str) -> Vec<serde_json::Value> {
        let out = Command::new("curl")
            .args(["-sf", "-G"])
            .arg(format!("http://{}/api/v1/query", self.listen))
            .arg("--data-urlencode")
            .arg(format!("query={promql}"))
            .output()
            .unwrap_or_else(|e| panic!("curl: {e}"));
        let body: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        body["data"]["result"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// The values of `label` of the series `promql` gives.
    pub fn labels(&self, promql: &str, label: &str) -> Vec<String> {
        let mut values: Vec<String> = self
            .query(promql)
            .iter()
            .filter_map(|s| s["metric"][label].as_str().map(str::to_string))
            .collect();
        values.sort();
        values
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
