//! The certificates of a compose topology's proxy, watched as generated: the
//! real Blackbox exporter on `blackbox/blackbox.yml` and the real Prometheus
//! on `prometheus/prometheus.yml` and its `alerts.yml`, in a network
//! namespace whose `/etc/hosts` gives the stack's domains and the
//! exporter's compose name to a TLS server and the exporter there. The
//! server answers each domain with a certificate of its own:
//!
//! - `app.example.com` (from Let's Encrypt in the stack): issued by an
//!   authority the exporter trusts, expiring in 5 days → `CertificateExpiresSoon`;
//! - `api.example.com` (the operator's files): self-signed, 60 days → probed
//!   without verification, no alert;
//! - `old.example.com` (from Let's Encrypt): self-signed → the verified
//!   handshake fails, `CertificateProbeFailed`.
//!
//! The imported dashboard's panels are asked of the same Prometheus.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::netns::Lab;
use crate::prometheus_server::Prometheus;
use crate::support::{self, require};

const DOMAINS: [&str; 3] = ["app.example.com", "api.example.com", "old.example.com"];

/// A certificate for `domain`: signed by the test's authority in `dir` for
/// `days`, or self-signed.
fn certificate(dir: &Path, domain: &str, days: u32, signed: bool) {
    let (key, cert) = (format!("{domain}.key"), format!("{domain}.pem"));
    let san = format!("subjectAltName=DNS:{domain}");
    let subject = format!("/CN={domain}");
    let days = days.to_string();
    if signed {
        let csr = format!("{domain}.csr");
        let ext = dir.join(format!("{domain}.ext"));
        std::fs::write(&ext, &san).unwrap_or_else(|e| panic!("{e}"));
        openssl(
            dir,
            &[
                "req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", &key, "-out", &csr,
                "-subj", &subject,
            ],
        );
        let ext = ext.display().to_string();
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                &cert,
                "-days",
                &days,
                "-extfile",
                &ext,
            ],
        );
    } else {
        openssl(
            dir,
            &[
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", &key, "-out", &cert,
                "-days", &days, "-subj", &subject, "-addext", &san,
            ],
        );
    }
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("openssl: {e}"));
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A TLS server on 127.0.0.1:443 that answers each domain (by SNI) with its
/// certificate in `dir`.
const TLS_SERVER: &str = r#"
import socket, ssl, sys
d = sys.argv[1]
contexts = {}
for name in sys.argv[2:]:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(f"{d}/{name}.pem", f"{d}/{name}.key")
    contexts[name] = ctx
first = contexts[sys.argv[2]]
def pick(sock, name, ctx):
    if name in contexts:
        sock.context = contexts[name]
first.sni_callback = pick
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 443))
s.listen()
while True:
    c, _ = s.accept()
    c.settimeout(5)
    try:
        first.wrap_socket(c, server_side=True).close()
    except Exception:
        c.close()
"#;

/// A program in the namespace, killed when dropped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(mut command: Command) -> Running {
    Running(
        command
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{e}")),
    )
}

/// The `/etc/hosts` of the namespace, which `ip netns exec` mounts from
/// `/etc/netns/NS/`; removed with the test.
struct Hosts(std::path::PathBuf);

impl Drop for Hosts {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn the_alerts_name_the_certificates_a_browser_would_refuse_or_soon() {
    let tools = [
        "prometheus",
        "prometheus-blackbox-exporter",
        "openssl",
        "ip",
        "curl",
    ];
    if !tools.iter().all(|t| require(t)) {
        return;
    }
    let path = support::root().join("tests/cases/certificates.stack");
    let compilation = stackc::compile(support::read(&path), &support::options(&path));
    assert!(!compilation.has_errors(), "{:?}", compilation.diagnostics);
    let out = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    for file in [
        "prometheus/prometheus.yml",
        "prometheus/alerts.yml",
        "blackbox/blackbox.yml",
    ] {
        let name = file.rsplit('/').next().unwrap_or(file);
        let text = support::artifact(&compilation, &format!("single/{file}"));
        std::fs::write(out.path().join(name), text).unwrap_or_else(|e| panic!("{e}"));
    }
    let dir = out.path();
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "30",
            "-subj",
            "/CN=stackc test authority",
        ],
    );
    certificate(dir, "app.example.com", 5, true);
    certificate(dir, "api.example.com", 60, false);
    certificate(dir, "old.example.com", 60, false);

    let mut lab = Lab::new("certs");
    lab.add("mon");
    let ns = lab.ns("mon");
    let etc = Path::new("/etc/netns").join(&ns);
    std::fs::create_dir_all(&etc).unwrap_or_else(|e| panic!("{e}"));
    let _hosts = Hosts(etc.clone());
    let mut hosts = String::from("127.0.0.1 localhost prometheus-blackbox\n");
    for d in DOMAINS {
        hosts.push_str(&format!("127.0.0.1 {d}\n"));
    }
    std::fs::write(etc.join("hosts"), hosts).unwrap_or_else(|e| panic!("{e}"));

    let mut server = lab.python("mon", TLS_SERVER);
    server.arg(dir).args(DOMAINS);
    let _server = spawn(server);
    // The exporter trusts the test's authority alone (Go reads
    // SSL_CERT_FILE as the system's roots).
    let mut exporter = Command::new("ip");
    exporter
        .args(["netns", "exec", &ns, "env"])
        .arg(format!("SSL_CERT_FILE={}", dir.join("ca.pem").display()))
        .arg("prometheus-blackbox-exporter")
        .arg(format!(
            "--config.file={}",
            dir.join("blackbox.yml").display()
        ))
        .arg("--web.listen-address=127.0.0.1:9115");
    let _exporter = spawn(exporter);
    let prometheus = Prometheus::start_in(Some(&ns), &dir.join("prometheus.yml"), "127.0.0.1:9090")
        .unwrap_or_else(|| panic!("prometheus"));

    let alerting =
        |name: &str| prometheus.labels(&format!(r#"ALERTS{{alertname="{name}"}}"#), "instance");
    let deadline = Instant::now() + Duration::from_secs(90);
    let (mut soon, mut failed) = (Vec::new(), Vec::new());
    while Instant::now() < deadline {
        soon = alerting("CertificateExpiresSoon");
        failed = alerting("CertificateProbeFailed");
        if !soon.is_empty() && !failed.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_secs(2));
    }
    let probes = prometheus.query("probe_success");
    assert_eq!(soon, ["app.example.com:443"], "{probes:?}");
    assert_eq!(failed, ["old.example.com:443"], "{probes:?}");
    // The operator's certificate, not verified, answered; and the exporter
    // reported each certificate's expiry it could read.
    let ok = prometheus.labels("probe_success == 1", "instance");
    assert_eq!(
        ok,
        ["api.example.com:443", "app.example.com:443"],
        "{probes:?}"
    );
    let expiring = prometheus.labels(
        "probe_ssl_earliest_cert_expiry - time() < 6 * 86400",
        "instance",
    );
    assert_eq!(expiring, ["app.example.com:443"]);
    assert!(
        prometheus.labels("up == 0", "job").is_empty(),
        "{:?}",
        prometheus.query("up")
    );
    // The dashboard's panels, as the real Prometheus answers them: the days
    // each certificate it could read has left, and which handshakes succeed.
    let board: serde_json::Value = serde_json::from_str(&support::artifact(
        &compilation,
        "single/grafana/import/certificates.json",
    ))
    .unwrap_or_else(|e| panic!("{e}"));
    let panel = |title: &str| -> Vec<(String, f64)> {
        let panels = board["panels"].as_array().cloned().unwrap_or_default();
        let expr = panels
            .iter()
            .find(|p| p["title"] == title)
            .and_then(|p| p["targets"][0]["expr"].as_str())
            .unwrap_or_else(|| panic!("no panel `{title}`: {board}"))
            .to_string();
        let mut values: Vec<(String, f64)> = prometheus
            .query(&expr)
            .iter()
            .map(|s| {
                let instance = s["metric"]["instance"].as_str().unwrap_or_default();
                let value = s["value"][1].as_str().and_then(|v| v.parse().ok());
                (instance.to_string(), value.unwrap_or(f64::NAN))
            })
            .collect();
        values.sort_by(|a, b| a.0.cmp(&b.0));
        values
    };
    let days = panel("certificates: days left");
    let names: Vec<&str> = days.iter().map(|(i, _)| i.as_str()).collect();
    assert_eq!(
        names,
        ["api.example.com:443", "app.example.com:443"],
        "{days:?}"
    );
    assert!((59.0..=60.0).contains(&days[0].1), "{days:?}");
    assert!((4.0..=5.0).contains(&days[1].1), "{days:?}");
    let handshakes = panel("certificates: TLS handshake succeeds");
    let expected = [
        ("api.example.com:443".to_string(), 1.0),
        ("app.example.com:443".to_string(), 1.0),
        ("old.example.com:443".to_string(), 0.0),
    ];
    assert_eq!(handshakes, expected);
}

/// A Prometheus on a managed host is its platform's: no exporter beside it,
/// and no job that would scrape one.
#[test]
fn a_prometheus_on_a_managed_host_gets_no_probe() {
    let path = support::root().join("tests/cases/certificates.stack");
    let text = support::read(&path).replace(
        "host mon {\n    address = \"10.0.0.2\"",
        "host mon {\n    managed = true",
    );
    assert!(text.contains("managed = true"));
    let compilation = stackc::compile(text, &support::options(&path));
    assert!(!compilation.has_errors(), "{:?}", compilation.diagnostics);
    let paths: Vec<&str> = compilation
        .artifacts
        .iter()
        .map(|a| a.path.as_str())
        .collect();
    assert!(!paths.iter().any(|p| p.contains("blackbox")), "{paths:?}");
    let prometheus = compilation
        .artifacts
        .iter()
        .find(|a| a.path == "single/prometheus/prometheus.yml")
        .map(|a| a.contents.as_str())
        .unwrap_or_default();
    assert!(!prometheus.contains("blackbox"), "{prometheus}");
}
