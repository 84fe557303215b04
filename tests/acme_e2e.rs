//! Certificates end to end, on loopback, with Pebble (Debian's ACME test
//! server) as the certificate authority: the generated nginx starts with no
//! certificate (on the stand-in its ACME task makes), the generated ACME
//! script obtains one from Pebble with certbot's webroot challenge (served by
//! that nginx), the nginx reloads itself, and a TLS request to it verifies
//! against Pebble's root. Renewing again changes nothing.
//!
//! The generated files run as they are, but for their paths: the certificate,
//! webroot and certbot directories are the test's own, nginx reads its config
//! from the test's directory (a `nginx` on PATH adds `-c`), and the upstream is
//! the backend's loopback address instead of its compose name.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::{require, wait_for};

/// A started program in a process group of its own, and everything it
/// started (nginx's workers, the reload loop): the group is stopped and
/// killed when dropped, even when an assertion fails.
struct Group(std::process::Child);

impl Drop for Group {
    fn drop(&mut self) {
        let group = format!("-{}", self.0.id());
        for signal in ["-TERM", "-KILL"] {
            let _ = Command::new("kill").args([signal, "--", &group]).status();
            std::thread::sleep(Duration::from_millis(200));
        }
        let _ = self.0.wait();
    }
}

const DOMAIN: &str = "app.acme.test";
const HTTP: u16 = 28280;
const HTTPS: u16 = 28643;
const BACKEND: u16 = 28291;
const ACME: u16 = 28400;
const ACME_ROOTS: u16 = 28401;
const DNS: u16 = 28453;

fn stack(kind: &str, on_host: bool) -> String {
    let on_host = if on_host { "\n    on_host = true" } else { "" };
    format!(
        r#"stack shop

service app {{
  image = "app:1"
  port http = {BACKEND}
  public_url = "https://{DOMAIN}:{HTTPS}"
  route "/"
  health {{ http = "/health" }}
}}

topology e2e {{
  acme {{
    directory = "https://127.0.0.1:{ACME}/dir"
    email = "ops@acme.test"
  }}
  host main {{
    address = "127.0.0.1"
    run = [app]
  }}
  proxy edge: {kind} {{
    host = main
    http = {HTTP}
    https = {HTTPS}{on_host}
  }}
}}
"#
    )
}

fn sh(script: &Path, args: &[&str], env: &[(&str, String)]) -> std::process::Output {
    let mut c = Command::new("sh");
    c.arg(script).args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    c.output()
        .unwrap_or_else(|e| panic!("sh {}: {e}", script.display()))
}

fn spawn(c: &mut Command) -> Group {
    use std::os::unix::process::CommandExt;
    Group(
        c.stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("{c:?}: {e}")),
    )
}

fn listening(port: u16) -> bool {
    std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
}

/// `GET /` over TLS to the proxy, verified against `ca`: the body, or why not.
fn https_get(ca: &Path) -> Result<String, String> {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "5", "--cacert"])
        .arg(ca)
        .arg("--resolve")
        .arg(format!("{DOMAIN}:{HTTPS}:127.0.0.1"))
        .arg(format!("https://{DOMAIN}:{HTTPS}/"))
        .output()
        .unwrap_or_else(|e| panic!("curl: {e}"));
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

fn issuer(cert: &Path) -> String {
    let out = Command::new("openssl")
        .args(["x509", "-noout", "-issuer", "-in"])
        .arg(cert)
        .output()
        .unwrap_or_else(|e| panic!("openssl: {e}"));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn nginx_starts_without_a_certificate_and_serves_the_one_pebble_issues() {
    exercise("nginx", false);
}

#[test]
fn haproxy_starts_without_a_certificate_and_serves_the_one_pebble_issues() {
    exercise("haproxy", false);
}

/// A proxy `on_host`: the host's nginx (or HAProxy) runs the generated
/// config, the stand-in and the client are the script the generated systemd
/// units run, and the script reloads the proxy through `systemctl reload`
/// (here a stand-in for systemd that does what Debian's units' `ExecReload`
/// does).
#[test]
fn nginx_on_its_host_serves_the_certificate_pebble_issues() {
    exercise("nginx", true);
}

#[test]
fn haproxy_on_its_host_serves_the_certificate_pebble_issues() {
    exercise("haproxy", true);
}

/// Both tests use the same loopback ports: one at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn exercise(kind: &str, on_host: bool) {
    let _one_at_a_time = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    for program in [
        kind,
        "pebble",
        "pebble-challtestsrv",
        "certbot",
        "openssl",
        "curl",
    ] {
        if !require(program) {
            return;
        }
    }
    let c = stackc::compile(
        stack(kind, on_host),
        &crate::support::options(Path::new("acme.stack")),
    );
    assert!(!c.has_errors(), "{:?}", c.diagnostics);
    let file = |path: &str| crate::support::artifact(&c, path);

    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let dir = tmp.path();
    // nginx's workers (nobody) read the webroot and the certificates.
    for sub in ["certs", "webroot", "letsencrypt", "bin"] {
        std::fs::create_dir_all(dir.join(sub)).unwrap_or_else(|e| panic!("{e}"));
    }
    Command::new("chmod")
        .args(["-R", "755"])
        .arg(dir)
        .status()
        .ok();
    let at = |sub: &str| dir.join(sub).display().to_string();
    let adapt = |text: String| {
        text.replace("/etc/stackc/certs", &at("certs"))
            .replace("/var/www/certbot", &at("webroot"))
            .replace("/etc/letsencrypt", &at("letsencrypt"))
    };
    let write = |name: &str, text: &str| {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap_or_else(|e| panic!("{e}"));
        p
    };
    let backend = (format!("app:{BACKEND}"), format!("127.0.0.1:{BACKEND}"));
    let acme = write("acme.sh", &adapt(file("e2e/acme/edge.sh")));
    let (start, path) = if kind == "nginx" {
        let conf = adapt(file("e2e/nginx/edge.conf"))
            .replace(&backend.0, &backend.1)
            .replace(
                "worker_processes auto;",
                &format!("worker_processes 1;\npid {};", at("nginx.pid")),
            );
        assert!(conf.contains(&backend.1), "{conf}");
        let conf_path = write("edge.conf", &conf);
        let start = if on_host {
            // systemd runs the host's nginx.
            write("start.sh", "exec nginx -g 'daemon off;'\n")
        } else {
            write("start.sh", &adapt(file("e2e/nginx/edge-start.sh")))
        };
        // nginx reads its config from the test's directory.
        let shim = write(
            "bin/nginx",
            &format!(
                "#!/bin/sh\nexec /usr/sbin/nginx -c {} \"$@\"\n",
                conf_path.display()
            ),
        );
        Command::new("chmod").arg("755").arg(&shim).status().ok();
        let path = format!(
            "{}:{}",
            at("bin"),
            std::env::var("PATH").unwrap_or_default()
        );
        (start, path)
    } else {
        // The challenge reaches the client at loopback, not by its compose
        // name (on a host, the generated config says so itself).
        let mut cfg = adapt(file("e2e/haproxy/edge.cfg")).replace(&backend.0, &backend.1);
        if !on_host {
            cfg = cfg.replace("edge-acme:8402", "127.0.0.1:8402");
        }
        assert!(
            cfg.contains(&backend.1) && cfg.contains("server acme 127.0.0.1:8402"),
            "{cfg}"
        );
        let cfg_path = write("edge.cfg", &cfg);
        let start = if on_host {
            // systemd runs the host's HAProxy, as Debian's unit does.
            format!(
                "exec haproxy -W -db -f {} -p {}\n",
                cfg_path.display(),
                at("haproxy.pid")
            )
        } else {
            adapt(file("e2e/haproxy/edge-start.sh")).replace(
                "/usr/local/etc/haproxy/haproxy.cfg",
                &cfg_path.display().to_string(),
            )
        };
        (
            write("start.sh", &start),
            std::env::var("PATH").unwrap_or_default(),
        )
    };
    // On a host: `systemctl reload` as Debian's units reload, recorded.
    let path = if on_host {
        assert!(!c
            .artifacts
            .iter()
            .any(|a| a.path.ends_with("edge-start.sh")));
        for unit in [
            "shop-edge-certs.service",
            "shop-edge-acme.service",
            "shop-edge-acme.timer",
        ] {
            assert!(
                c.artifacts
                    .iter()
                    .any(|a| a.path == format!("e2e/systemd/main/{unit}")),
                "{unit}"
            );
        }
        let reloads = at("reloads");
        let systemctl = write(
            "bin/systemctl",
            &format!(
                "#!/bin/sh\n[ \"$1\" = reload ] || exit 1\necho \"$2\" >> {reloads}\ncase \"$2\" in\n  nginx) exec nginx -s reload ;;\n  haproxy) exec kill -USR2 \"$(cat {})\" ;;\nesac\nexit 1\n",
                at("haproxy.pid")
            ),
        );
        Command::new("chmod")
            .arg("755")
            .arg(&systemctl)
            .status()
            .ok();
        format!("{}:{path}", at("bin"))
    } else {
        path
    };
    let acme = if on_host {
        // The host's HAProxy config is the test's.
        let text = std::fs::read_to_string(&acme).unwrap_or_default().replace(
            "/etc/haproxy/haproxy.cfg",
            &dir.join("edge.cfg").display().to_string(),
        );
        write("acme.sh", &text)
    } else {
        acme
    };

    // The stand-in: the proxy can start before any certificate exists.
    let out = sh(&acme, &["stand-in"], &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let fullchain = dir.join(format!("certs/{DOMAIN}/fullchain.pem"));
    assert!(dir.join(format!("certs/{DOMAIN}/combined.pem")).exists());
    assert!(
        issuer(&fullchain).contains(DOMAIN),
        "a self-signed stand-in"
    );

    let _backend = spawn(Command::new("python3").args([
        "-c",
        "import http.server as h\nclass H(h.BaseHTTPRequestHandler):\n def do_GET(s):\n  s.send_response(200); s.send_header('Content-Length','3'); s.end_headers(); s.wfile.write(b'app')\nh.HTTPServer(('127.0.0.1', int(__import__('sys').argv[1])), H).serve_forever()",
        &BACKEND.to_string(),
    ]));
    let _proxy = spawn(Command::new("sh").arg(&start).env("PATH", &path));
    wait_for(
        "the proxy on its https port",
        Duration::from_secs(10),
        || listening(HTTPS),
    );

    // Pebble: its API over TLS with a certificate of the test's, names
    // resolved by its challenge server's DNS to 127.0.0.1, validation at the
    // proxy's http port.
    let tls_key = dir.join("pebble.key");
    let tls_cert = dir.join("pebble.crt");
    let made = Command::new("openssl")
        .args([
            "req", "-x509", "-nodes", "-newkey", "rsa:2048", "-days", "2",
        ])
        .args([
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
        ])
        .arg("-keyout")
        .arg(&tls_key)
        .arg("-out")
        .arg(&tls_cert)
        .output()
        .unwrap_or_else(|e| panic!("openssl: {e}"));
    assert!(made.status.success());
    let config = write(
        "pebble.json",
        &serde_json::json!({"pebble": {
            "listenAddress": format!("127.0.0.1:{ACME}"),
            "managementListenAddress": format!("127.0.0.1:{ACME_ROOTS}"),
            "certificate": tls_cert, "privateKey": tls_key,
            "httpPort": HTTP, "tlsPort": 28544,
            "ocspResponderURL": "", "externalAccountBindingRequired": false,
        }})
        .to_string(),
    );
    let _dns = spawn(Command::new("pebble-challtestsrv").args([
        "-defaultIPv4",
        "127.0.0.1",
        "-defaultIPv6",
        "",
        "-dns01",
        &format!("127.0.0.1:{DNS}"),
        "-http01",
        "",
        "-https01",
        "",
        "-tlsalpn01",
        "",
        "-management",
        "127.0.0.1:28455",
    ]));
    let _pebble = spawn(
        Command::new("pebble")
            .arg("-config")
            .arg(&config)
            .args(["-dnsserver", &format!("127.0.0.1:{DNS}")])
            .env("PEBBLE_VA_NOSLEEP", "1")
            .env("PEBBLE_WFE_NONCEREJECT", "0"),
    );
    wait_for("Pebble", Duration::from_secs(10), || listening(ACME));
    let root = dir.join("pebble-root.pem");
    wait_for("Pebble's root", Duration::from_secs(10), || {
        Command::new("curl")
            .args(["-sSf", "--cacert"])
            .arg(&tls_cert)
            .arg(format!("https://127.0.0.1:{ACME_ROOTS}/roots/0"))
            .arg("-o")
            .arg(&root)
            .status()
            .is_ok_and(|s| s.success())
    });
    // On the stand-in, a client that trusts Pebble refuses the proxy.
    assert!(https_get(&root).is_err(), "the stand-in is not trusted");

    let ca_bundle = [
        ("REQUESTS_CA_BUNDLE", tls_cert.display().to_string()),
        ("PATH", path.clone()),
    ];
    let out = sh(&acme, &["obtain"], &ca_bundle);
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        issuer(&fullchain).contains("Pebble"),
        "{}",
        issuer(&fullchain)
    );
    // The proxy reloads itself within its 10-second check; on a host,
    // `obtain` has reloaded it.
    let mut last = String::new();
    wait_for(
        "the proxy serves Pebble's certificate",
        Duration::from_secs(30),
        || match https_get(&root) {
            Ok(body) => body == "app",
            Err(e) => {
                last = e;
                false
            }
        },
    );
    // Again: nothing is due, nothing changes.
    let before = std::fs::read(&fullchain).unwrap_or_default();
    let out = sh(&acme, &["obtain"], &ca_bundle);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::read(&fullchain).unwrap_or_default(),
        before,
        "{last}"
    );
    if on_host {
        // One reload: for the new certificate, none for the run that changed
        // nothing.
        let reloads = std::fs::read_to_string(dir.join("reloads")).unwrap_or_default();
        assert_eq!(reloads.lines().collect::<Vec<_>>(), [kind], "{reloads}");
    }
}
