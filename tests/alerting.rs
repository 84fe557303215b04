//! Where the alerts go, as a real Alertmanager routes them: the generated
//! `alertmanager.yml` (checked by `amtool check-config`) and `start.sh`, run
//! in a mount namespace of its own (its credentials land in a private
//! `/tmp`, as in the container's). Alerts posted to its API, as Prometheus
//! posts them, reach the receivers of their severity, and only those: a
//! webhook for the critical ones, Slack (its URL a secret, read from the
//! file the script writes from the environment) and a webhook for all.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::support::{options, require, wait_for, write_artifacts};

/// The requests a receiver got: (path, body).
type Received = Arc<Mutex<Vec<(String, String)>>>;

/// An HTTP server on loopback that answers 200 and keeps what it got.
fn receiver() -> (u16, Received) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
    let port = listener.local_addr().map(|a| a.port()).unwrap_or_default();
    let got: Received = Arc::default();
    let keep = Arc::clone(&got);
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(&stream);
            let mut line = String::new();
            let _ = reader.read_line(&mut line);
            let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
            let mut length = 0;
            loop {
                let mut header = String::new();
                if reader.read_line(&mut header).unwrap_or(0) == 0 || header.trim().is_empty() {
                    break;
                }
                if let Some((k, v)) = header.split_once(':') {
                    if k.eq_ignore_ascii_case("content-length") {
                        length = v.trim().parse().unwrap_or(0);
                    }
                }
            }
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            keep.lock()
                .unwrap_or_else(|e| e.into_inner())
                .push((path, String::from_utf8_lossy(&body).into_owned()));
            let _ = (&stream).write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
        }
    });
    (port, got)
}

fn stack(port: u16) -> String {
    format!(
        r##"stack watch

secret slack_webhook

service api {{
  image = "api:1"
  port http = 8000
  metrics = http
}}

service monitoring: prometheus {{}}
service alerts: alertmanager {{}}

topology prod {{
  host one {{
    address = "10.80.0.1"
    run = [api, monitoring, alerts]
  }}
  receiver pager {{
    webhook = "http://127.0.0.1:{port}/critical"
    severity = critical
  }}
  receiver team {{
    slack = secret.slack_webhook
    channel = "#ops"
    severity = [critical, warning]
  }}
  receiver audit {{
    webhook = "http://127.0.0.1:{port}/all"
  }}
}}
"##
    )
}

/// A free port on loopback, for Alertmanager to listen on.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("{e}"))
}

struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs the generated start script in a mount namespace with a private
/// `/tmp`, the container's binary and paths swapped for this machine's. The
/// test's directory, which may be under `/tmp`, is seen at `/mnt` there.
fn start(dir: &Path, listen: &str, slack_url: &str) -> Running {
    let script = std::fs::read_to_string(dir.join("alertmanager/start.sh"))
        .unwrap_or_else(|e| panic!("{e}"));
    let exec = "exec /bin/alertmanager --config.file=/etc/alertmanager/alertmanager.yml --storage.path=/alertmanager --cluster.listen-address= \"$@\"";
    assert!(script.contains(exec), "{script}");
    let here = script.replace(
        exec,
        "exec prometheus-alertmanager --config.file=/mnt/alertmanager/alertmanager.yml --storage.path=/mnt/data --cluster.listen-address= \"$@\"",
    );
    std::fs::write(dir.join("start-here.sh"), here).unwrap_or_else(|e| panic!("{e}"));
    let log = std::fs::File::create(dir.join("alertmanager.log")).unwrap_or_else(|e| panic!("{e}"));
    let child = Command::new("unshare")
        .args(["-m", "sh", "-c"])
        .arg("mount --bind \"$0\" /mnt && mount -t tmpfs tmpfs /tmp && exec sh /mnt/start-here.sh \"$@\"")
        .arg(dir)
        .arg(format!("--web.listen-address={listen}"))
        .env("SLACK_WEBHOOK", slack_url)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("unshare: {e}"));
    Running(child)
}

/// Posts alerts to Alertmanager's API, as Prometheus does.
fn post_alerts(listen: &str, alerts: &str) -> bool {
    Command::new("curl")
        .args(["-sf", "-H", "Content-Type: application/json", "--data"])
        .arg(alerts)
        .arg(format!("http://{listen}/api/v2/alerts"))
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
fn alerts_reach_the_receivers_of_their_severity() {
    if ![
        "amtool",
        "prometheus-alertmanager",
        "unshare",
        "mount",
        "curl",
    ]
    .iter()
    .all(|p| require(p))
    {
        return;
    }
    let (port, got) = receiver();
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let compilation = stackc::compile(stack(port), &options(&tmp.path().join("watch.stack")));
    assert!(!compilation.has_errors(), "{:?}", compilation.diagnostics);
    write_artifacts(&compilation, &tmp.path().join("out"));
    let dir = tmp.path().join("out/prod");
    let config = dir.join("alertmanager/alertmanager.yml");
    let check = Command::new("amtool")
        .arg("check-config")
        .arg(&config)
        .output()
        .unwrap_or_else(|e| panic!("amtool: {e}"));
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stdout)
    );
    let slack_url = format!("http://127.0.0.1:{port}/slack/T0/B0/secret-part");
    for f in compilation.artifacts.iter() {
        assert!(!f.contents.contains("secret-part"), "{}", f.path);
    }

    let listen = format!("127.0.0.1:{}", free_port());
    let _alertmanager = start(&dir, &listen, &slack_url);
    let alerts = r#"[
      {"labels": {"alertname": "PatroniPostgresDown", "severity": "critical", "scope": "watch-db"}},
      {"labels": {"alertname": "PatroniLeaderChanged", "severity": "warning", "scope": "watch-db"}}
    ]"#;
    wait_for("Alertmanager takes alerts", Duration::from_secs(20), || {
        post_alerts(&listen, alerts)
    });
    let names = |path: &str| -> Vec<&'static str> {
        let got = got.lock().unwrap_or_else(|e| e.into_inner());
        ["PatroniPostgresDown", "PatroniLeaderChanged"]
            .into_iter()
            .filter(|a| {
                got.iter()
                    .any(|(p, body)| p.starts_with(path) && body.contains(a))
            })
            .collect()
    };
    // Each group is sent after the route's group_wait (30 s).
    let both = ["PatroniPostgresDown", "PatroniLeaderChanged"];
    wait_for(
        "Slack and the audit webhook get both",
        Duration::from_secs(60),
        || names("/slack/T0/B0/secret-part") == both && names("/all") == both,
    );
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        names("/critical"),
        ["PatroniPostgresDown"],
        "the critical one only"
    );
    let got = got.lock().unwrap_or_else(|e| e.into_inner());
    let slack = got.iter().find(|(p, _)| p.starts_with("/slack"));
    assert!(
        slack.is_some_and(|(_, body)| body.contains("\"channel\":\"#ops\"")),
        "{slack:?}"
    );
}
