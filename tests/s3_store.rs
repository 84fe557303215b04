//! An S3-compatible store on loopback, for the backups to a bucket: moto's
//! server (PyPI) answers the S3 API, behind the real nginx for TLS (pgBackRest
//! speaks TLS only, and checks the certificate's DNS name, here `localhost`),
//! with a certificate of the test's own.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::support::{require, wait_for};

/// The store's loopback ports, one pair per test that runs a store (tests
/// run at once).
#[derive(Clone, Copy)]
pub struct Ports {
    /// Where the store answers with TLS: `https://localhost:PORT`.
    pub endpoint: u16,
    /// moto's own port, plain HTTP.
    pub moto: u16,
}

/// The store, stopped when dropped.
pub struct S3Store {
    moto: Child,
    nginx: Child,
    /// The certificate the store presents, which a client trusts.
    pub ca: PathBuf,
    ports: Ports,
}

impl Drop for S3Store {
    fn drop(&mut self) {
        for child in [&mut self.moto, &mut self.nginx] {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl S3Store {
    /// Starts the store with its files in `dir` and makes `bucket`; `None`
    /// when a program is missing (a failure under `CI=true`).
    pub fn start(dir: &Path, bucket: &str, ports: Ports) -> Option<S3Store> {
        let Ports {
            endpoint: endpoint_port,
            moto: moto_port,
        } = ports;
        if !require("moto_server") || !require("nginx") || !require("curl") {
            return None;
        }
        let (ca, key) = (dir.join("s3.crt"), dir.join("s3.key"));
        let mut openssl = Command::new("openssl");
        openssl
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            ])
            .args(["-subj", "/CN=localhost", "-addext"])
            .arg("subjectAltName=DNS:localhost")
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&ca)
            .stderr(Stdio::null());
        crate::postgres_streaming::ok(openssl);
        let moto = Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &moto_port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("moto_server: {e}"));
        let conf = dir.join("s3-nginx.conf");
        let d = dir.display();
        std::fs::write(
            &conf,
            format!(
                "daemon off;\nmaster_process off;\npid {d}/s3-nginx.pid;\nerror_log {d}/s3-nginx.log;\nevents {{}}\n\
                 http {{\n  access_log off;\n  client_body_temp_path {d};\n  proxy_temp_path {d};\n  \
                 server {{\n    listen 127.0.0.1:{endpoint_port} ssl;\n    \
                 ssl_certificate {};\n    ssl_certificate_key {};\n    client_max_body_size 0;\n    \
                 location / {{\n      proxy_pass http://127.0.0.1:{moto_port};\n      \
                 proxy_set_header Host $http_host;\n      proxy_http_version 1.1;\n      \
                 proxy_request_buffering off;\n    }}\n  }}\n}}\n",
                ca.display(),
                key.display()
            ),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let nginx = Command::new("nginx")
            .arg("-c")
            .arg(&conf)
            .arg("-p")
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("nginx: {e}"));
        let store = S3Store {
            moto,
            nginx,
            ca,
            ports,
        };
        wait_for("the S3 store answers", Duration::from_secs(30), || {
            store.curl(&["-X", "PUT", &format!("/{bucket}")]).is_some()
        });
        Some(store)
    }

    /// The keys under `prefix` in `bucket`, as the store lists them.
    pub fn keys(&self, bucket: &str, prefix: &str) -> String {
        self.curl(&[&format!("/{bucket}?list-type=2&prefix={prefix}")])
            .unwrap_or_else(|| panic!("the store lists {bucket}"))
    }

    /// A request's body when it succeeds; `args` end with the path.
    fn curl(&self, args: &[&str]) -> Option<String> {
        let (path, rest) = args.split_last()?;
        let out = Command::new("curl")
            .args(["-sf", "--cacert"])
            .arg(&self.ca)
            .args(rest)
            .arg(format!("https://localhost:{}{path}", self.ports.endpoint))
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }
}
