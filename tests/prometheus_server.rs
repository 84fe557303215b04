//! A real Prometheus started on a generated `prometheus.yml` (and the rules
//! beside it), for the tests that ask it what it scraped and which alerts fire.

use std::path::Path;
use std::process::{Child, Command, Stdio};

use crate::support::require;

pub struct Prometheus {
    child: Child,
    listen: String,
    /// The network namespace it runs in, if not the test's.
    netns: Option<String>,
    _data: tempfile::TempDir,
}

/// `program`, in network namespace `netns` if there is one.
fn command(netns: Option<&str>, program: &str) -> Command {
    match netns {
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns, program]);
            c
        }
        None => Command::new(program),
    }
}

impl Prometheus {
    /// Starts `prometheus` on `config`, listening on `listen` (`ip:port`);
    /// `None` where it is not installed (outside CI).
    pub fn start(config: &Path, listen: &str) -> Option<Prometheus> {
        Prometheus::start_in(None, config, listen)
    }

    /// As `start`, in network namespace `netns` (where it is queried too).
    pub fn start_in(netns: Option<&str>, config: &Path, listen: &str) -> Option<Prometheus> {
        if !require("prometheus") || !require("curl") {
            return None;
        }
        let data = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let log = std::fs::File::create(data.path().join("prometheus.log"))
            .unwrap_or_else(|e| panic!("{e}"));
        let child = command(netns, "prometheus")
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
            netns: netns.map(str::to_string),
            _data: data,
        })
    }

    /// The result of an instant query (`data.result`), empty while
    /// Prometheus does not answer.
    pub fn query(&self, promql: &str) -> Vec<serde_json::Value> {
        let out = command(self.netns.as_deref(), "curl")
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
