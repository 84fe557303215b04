//! End to end: the generated nginx config, run by the real nginx on loopback in
//! front of small HTTP backends that this test starts. Requests reach the right
//! service by path, spread over the replicas, keep succeeding when a backend is
//! killed, and get the rate-limit status past the burst. Every process is started
//! and stopped by this test, by PID; every wait is bounded.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{options, read, require, root};

/// A child process killed (and reaped) when dropped.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.0.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

const BACKEND: &str = r#"
import http.server, sys
name, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        body = name.encode()
        self.send_response(200)
        self.send_header("X-Path", self.path)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer((host, port), H).serve_forever()
"#;

fn backend(name: &str, addr: &str) -> Proc {
    let (host, port) = addr.split_once(':').unwrap_or((addr, "0"));
    let child = Command::new("python3")
        .args(["-c", BACKEND, name, host, port])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("python3: {e}"));
    wait_for(addr);
    Proc(child)
}

fn wait_for(addr: &str) {
    let addr: SocketAddr = addr.parse().unwrap_or_else(|e| panic!("{addr}: {e}"));
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("nothing listens on {addr} after 10 s");
}

/// `GET path` through the proxy: (status, body).
fn get(proxy: &str, path: &str) -> (u16, String) {
    let r = request(proxy, "e2e.test", path);
    (r.status, r.body)
}

/// A response: its status, its headers (names lowercased) and its body.
struct Response {
    status: u16,
    headers: std::collections::BTreeMap<String, String>,
    body: String,
}

impl Response {
    fn parse(response: &str) -> Response {
        let (head, body) = response.split_once("\r\n\r\n").unwrap_or((response, ""));
        let mut lines = head.lines();
        let status = lines
            .next()
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        Response {
            status,
            headers,
            body: body.to_string(),
        }
    }
}

/// `GET path` with a Host header, over plain HTTP.
fn request(proxy: &str, host: &str, path: &str) -> Response {
    let addr: SocketAddr = proxy.parse().unwrap_or_else(|e| panic!("{e}"));
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))
        .unwrap_or_else(|e| panic!("connect {proxy}: {e}"));
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap_or_default();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let mut response = String::new();
    let _ = s.read_to_string(&mut response);
    Response::parse(&response)
}

/// `GET path` over TLS to `addr`, with SNI and Host `host`, verifying the
/// proxy's certificate against `ca` (Python's ssl module: a real TLS client).
fn tls_request(addr: &str, host: &str, path: &str, ca: &Path) -> Response {
    let (ip, port) = addr.split_once(':').unwrap_or((addr, "443"));
    let script = r"
import socket, ssl, sys
ip, port, host, path, ca = sys.argv[1:6]
ctx = ssl.create_default_context(cafile=ca)
s = ctx.wrap_socket(socket.create_connection((ip, int(port)), 5), server_hostname=host)
s.sendall(f'GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n'.encode())
data = b''
while True:
    chunk = s.recv(65536)
    if not chunk:
        break
    data += chunk
sys.stdout.buffer.write(data)
";
    let out = Command::new("python3")
        .args(["-c", script, ip, port, host, path])
        .arg(ca)
        .output()
        .unwrap_or_else(|e| panic!("python3: {e}"));
    assert!(
        out.status.success(),
        "TLS request to {addr}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Response::parse(&String::from_utf8_lossy(&out.stdout))
}

/// A self-signed certificate for `domain`, its key in the same PEM (HAProxy's
/// form; nginx reads both from it too), at `pem`.
fn self_signed(domain: &str, pem: &Path) {
    let dir = pem.parent().unwrap_or(Path::new("."));
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let out = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        ])
        .args(["-subj", &format!("/CN={domain}")])
        .args(["-addext", &format!("subjectAltName=DNS:{domain}")])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap_or_else(|e| panic!("openssl: {e}"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let both = format!("{}{}", read(&cert), read(&key));
    std::fs::write(pem, both).unwrap_or_else(|e| panic!("{e}"));
}

/// How to run a proxy's generated config in the foreground.
enum Program {
    Nginx,
    Haproxy,
}

fn start_proxy(program: &Program, conf: &Path, dir: &Path) -> Proc {
    let mut cmd = match program {
        Program::Nginx => {
            let mut c = Command::new("nginx");
            c.args(["-e", "stderr", "-p"])
                .arg(format!("{}/", dir.display()))
                .arg("-g")
                .arg(format!(
                    "pid {}; daemon off;",
                    dir.join("nginx.pid").display()
                ))
                .arg("-c")
                .arg(conf);
            c
        }
        Program::Haproxy => {
            let mut c = Command::new("haproxy");
            c.args(["-db", "-f"]).arg(conf);
            c
        }
    };
    Proc(
        cmd.stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("proxy: {e}")),
    )
}

/// Routing, spreading, surviving a killed server, and the rate limit, through
/// the proxy of `topology`, whose hosts lb, b1, b2 are `base`.20/.21/.22-like
/// loopback addresses.
fn exercise(program: Program, topology: &str, lb: &str, b1: &str, b2: &str) {
    let path = root().join("tests/cases/proxy-e2e.stack");
    let compilation = stackc::compile(read(&path), &options(&path));
    assert!(!compilation.has_errors(), "{:?}", compilation.diagnostics);
    let file = match program {
        Program::Nginx => format!("{topology}/nginx/edge.conf"),
        Program::Haproxy => format!("{topology}/haproxy/edge.cfg"),
    };
    let conf = compilation
        .artifacts
        .iter()
        .find(|a| a.path == file)
        .unwrap_or_else(|| panic!("{file} is generated"));
    // The upstreams are the placements, by address and the port published on
    // each host (b2 publishes the API on 28083).
    assert!(
        conf.contents.contains(&format!("{b1}:28081")),
        "{}",
        conf.contents
    );
    assert!(
        conf.contents.contains(&format!("{b2}:28083")),
        "{}",
        conf.contents
    );

    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let conf_path = tmp.path().join("proxy.conf");
    // The certificate at a path of the test's instead of the one its ACME
    // client installs (/etc/stackc/certs/<domain>/).
    let pem = tmp.path().join("secure.pem");
    self_signed("secure.e2e.test", &pem);
    let pem_path = pem.display().to_string();
    let mut contents = conf.contents.clone();
    for file in ["fullchain.pem", "privkey.pem", "combined.pem"] {
        contents = contents.replace(
            &format!("/etc/stackc/certs/secure.e2e.test/{file}"),
            &pem_path,
        );
    }
    assert!(
        contents.contains(&pem_path),
        "the proxy serves TLS:\n{contents}"
    );
    // HAProxy's exporter on a port of the test's: every HAProxy binds 8405
    // with SO_REUSEPORT, so another test's could answer there.
    if matches!(program, Program::Haproxy) {
        assert!(contents.contains(":8405\n"), "{contents}");
        contents = contents.replace(":8405\n", ":28405\n");
    }
    std::fs::write(&conf_path, &contents).unwrap_or_else(|e| panic!("{e}"));

    let api1 = backend("api-1", &format!("{b1}:28081"));
    let api2 = backend("api-2", &format!("{b2}:28083"));
    let _web = backend("web", &format!("{b1}:28091"));
    let _secure = backend("secure", &format!("{b1}:28095"));
    let proxy_process = start_proxy(&program, &conf_path, tmp.path());
    let proxy = format!("{lb}:28080");
    wait_for(&proxy);
    let proxy = proxy.as_str();

    // The proxy's own health.
    assert_eq!(get(proxy, "/health").0, 200);
    // By path: /api/ to the API, everything else to the default route (web).
    let (status, body) = get(proxy, "/some/page");
    assert_eq!((status, body.as_str()), (200, "web"));
    // Round robin over both API hosts.
    let mut seen = std::collections::BTreeMap::new();
    for _ in 0..10 {
        let (status, body) = get(proxy, "/api/items");
        assert_eq!(status, 200, "{body}");
        *seen.entry(body).or_insert(0) += 1;
    }
    assert_eq!(
        seen.len(),
        2,
        "requests spread over both API servers: {seen:?}"
    );
    assert!(seen.values().all(|n| *n >= 3), "{seen:?}");

    // A stripped prefix: the route is chosen by the path as requested, and the
    // server sees the rest of it.
    let r = request(proxy, "e2e.test", "/strip/items?q=1");
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.starts_with("api-"), "{}", r.body);
    assert_eq!(
        r.headers.get("x-path").map(String::as_str),
        Some("/items?q=1")
    );

    // Plain HTTP to a TLS domain is redirected to the proxy's https port.
    let r = request(proxy, "secure.e2e.test:28080", "/page?x=1");
    assert_eq!(r.status, 301, "{}", r.body);
    assert_eq!(
        r.headers.get("location").map(String::as_str),
        Some("https://secure.e2e.test:28443/page?x=1")
    );
    // Over TLS, verified against the certificate: the service, with HSTS.
    let r = tls_request(&format!("{lb}:28443"), "secure.e2e.test", "/page", &pem);
    assert_eq!((r.status, r.body.as_str()), (200, "secure"));
    assert_eq!(
        r.headers
            .get("strict-transport-security")
            .map(String::as_str),
        Some("max-age=31536000; includeSubDomains")
    );

    // Kill one API server: every request still succeeds, on the other one.
    drop(api2);
    for _ in 0..10 {
        assert_eq!(get(proxy, "/api/items"), (200, "api-1".to_string()));
    }

    // Past the burst, the limited route answers 429.
    let statuses: Vec<u16> = (0..6).map(|_| get(proxy, "/limited/x").0).collect();
    assert!(statuses.contains(&200), "{statuses:?}");
    assert!(
        statuses.contains(&429),
        "the rate limit answers 429 past the burst: {statuses:?}"
    );

    // The series the `ProxyBackendWithoutServer` alert reads (alerts.yml),
    // from HAProxy's own exporter: the API backend's active servers, down to
    // none once the last one is gone.
    if matches!(program, Program::Haproxy) {
        let metrics = format!("{lb}:28405");
        let active = |metrics: &str| -> Option<String> {
            let (_, body) = get(metrics, "/metrics");
            body.lines()
                .find(|l| l.starts_with("haproxy_backend_active_servers{proxy=\"api_http\"}"))
                .map(str::to_string)
        };
        let before = active(&metrics);
        assert!(
            before.as_deref().is_some_and(|l| !l.ends_with(" 0")),
            "the API backend has servers up: {before:?}"
        );
        drop(api1);
        // A server that is up is checked every 30 s (`inter`), then three
        // times 500 ms apart (`fastinter`, `fall 3`) before it counts as down.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(40);
        while active(&metrics).as_deref()
            != Some("haproxy_backend_active_servers{proxy=\"api_http\"} 0")
        {
            assert!(
                std::time::Instant::now() < deadline,
                "{:?}",
                active(&metrics)
            );
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
        drop(proxy_process);
        return;
    }
    drop(proxy_process);
    drop(api1);
}

#[test]
fn nginx_routes_balances_survives_and_limits() {
    if !require("nginx") || !require("python3") {
        return;
    }
    exercise(
        Program::Nginx,
        "e2e",
        "127.0.0.20",
        "127.0.0.21",
        "127.0.0.22",
    );
}

#[test]
fn haproxy_routes_balances_survives_and_limits() {
    if !require("haproxy") || !require("python3") {
        return;
    }
    exercise(
        Program::Haproxy,
        "e2e-haproxy",
        "127.0.0.30",
        "127.0.0.31",
        "127.0.0.32",
    );
}

/// Route paths drawn from a hostile alphabet (`$ ; { } # ' " \ % ? @ : = ~`,
/// spaces, newlines, non-ASCII, dot segments, double slashes): each is either
/// rejected by `check`, or the real nginx and HAProxy, started on the file,
/// route a request under it to its service, with the path as sent.
#[test]
fn hostile_route_paths_are_rejected_or_routed_exactly() {
    if !require("nginx") || !require("haproxy") || !require("python3") {
        return;
    }
    let alphabet = [
        "$",
        "$$",
        "$(",
        "${",
        "#",
        "'",
        "\"",
        "\\",
        "=",
        ":",
        ";",
        "{",
        "}",
        "@",
        "?",
        "%",
        "%20",
        " ",
        "\n",
        "\t",
        "~",
        "`",
        "!",
        "*",
        "+",
        ",",
        "é",
        "日本",
        ".",
        "..",
        "/",
        "-",
        "_",
        "{ return 200; } location /x/",
        "\nhttp-request deny",
    ];
    let stack = |paths: &[String], lb: &str, b: &str| {
        let routes: String = paths
            .iter()
            .map(|p| {
                let escaped = p
                    .replace('\\', "\\\\")
                    .replace('"', "\\\"")
                    .replace('\n', "\\n")
                    .replace('\t', "\\t")
                    .replace('$', "\\$");
                format!("  route \"{escaped}\"\n")
            })
            .collect();
        format!(
            "service api {{\n  image = \"api:1\"\n  port http = 28181\n  health {{\n    http = \"/health\"\n    interval = 1s\n  }}\n{routes}}}\n\
             topology nginx {{\n  host lb {{ address = \"{lb}\" }}\n  host b {{ address = \"{b}\"  run = [api] }}\n  proxy edge: nginx {{\n    host = lb\n    on_host = true\n    bind = \"{lb}\"\n    http = 28180\n  }}\n}}\n\
             topology haproxy {{\n  host lb {{ address = \"{lb}\" }}\n  host b {{ address = \"{b}\"  run = [api] }}\n  proxy edge: haproxy {{\n    host = lb\n    on_host = true\n    bind = \"{lb}\"\n    http = 28180\n  }}\n}}\n"
        )
    };
    let opts = stackc::Options {
        source_name: "routes.stack".into(),
        topologies: Vec::new(),
        source_dir_from_compose: "../../..".into(),
        source_from_out: "../routes.stack".into(),
    };
    let (lb, b) = ("127.0.0.40", "127.0.0.41");
    let mut accepted: Vec<String> = Vec::new();
    let mut rejected = 0;
    for v in alphabet {
        for path in [format!("/{v}/"), format!("/a{v}b/"), format!("/p/{v}")] {
            let c = stackc::compile(stack(std::slice::from_ref(&path), lb, b).as_str(), &opts);
            if c.has_errors() {
                rejected += 1;
            } else {
                accepted.push(path);
            }
        }
    }
    accepted.sort();
    accepted.dedup();
    assert!(
        rejected > 20 && accepted.len() > 20,
        "rejected {rejected}, accepted {accepted:?}"
    );
    // Two routes of one service that overlap are fine; distinct paths only.
    let compilation = stackc::compile(stack(&accepted, lb, b).as_str(), &opts);
    assert!(!compilation.has_errors(), "{:?}", compilation.diagnostics);
    let _api = backend("api", &format!("{b}:28181"));
    for (program, file) in [
        (Program::Nginx, "nginx/nginx/edge.conf"),
        (Program::Haproxy, "haproxy/haproxy/edge.cfg"),
    ] {
        let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let conf = tmp.path().join("proxy.conf");
        std::fs::write(&conf, crate::support::artifact(&compilation, file))
            .unwrap_or_else(|e| panic!("{e}"));
        let proxy = start_proxy(&program, &conf, tmp.path());
        let addr = format!("{lb}:28180");
        wait_for(&addr);
        for path in &accepted {
            let sent = format!("{path}x");
            let r = request(&addr, "e2e.test", &sent);
            assert_eq!(
                (r.status, r.body.as_str()),
                (200, "api"),
                "{file}: GET {sent}"
            );
            assert_eq!(
                r.headers.get("x-path"),
                Some(&sent),
                "{file}: the path as sent"
            );
        }
        // Nothing else is routed: no route answers for a path outside them.
        assert_eq!(
            request(&addr, "e2e.test", "/none/of/them").status,
            404,
            "{file}"
        );
        drop(proxy);
    }
}
