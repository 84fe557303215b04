//! What the programs finally see: every value a `.stack` file can hold either
//! reaches its consumer as exactly that string, on every target, or `check`
//! rejects it with a diagnostic (issue 20: no third outcome).
//!
//! The consumers are the real ones where they run here (`docker-compose config`,
//! `sh` reading an env file) and, for Kubernetes, its documented `$(VAR)`
//! expansion of env values, `command` and `args`, written out below.

use std::collections::BTreeMap;
use std::process::Command;

use serde::Deserialize;

use crate::support::{kubernetes_expand, require, yaml11};

/// Strings a user may put in a value, drawn from a hostile alphabet: each
/// character alone, in pairs, and the shapes that mean something to a reader
/// (`$(VAR)`, `$$`, `${X}`, YAML 1.1 words, quotes, non-ASCII).
fn hostile_values() -> Vec<String> {
    let alphabet = [
        "$", "$$", "$(", "${", "#", "'", "\"", "\\", "=", ":", ";", "{", "}", "@", "/", "?", "%",
        " ", "\n", "\t", "~", "`", "!", "*", "é", "日本",
    ];
    let mut values: Vec<String> = Vec::new();
    for a in alphabet {
        values.push(a.to_string());
        values.push(format!("a{a}b"));
        for b in ["$", "(", "'", "\\", "x"] {
            values.push(format!("{a}{b}"));
        }
    }
    for v in [
        "$(HOME)",
        "$$(HOME)",
        "$(SELF)",
        "a$$b",
        "$$$",
        "${HOME}",
        "$HOME",
        "yes",
        "no",
        "on",
        "off",
        "~",
        "null",
        "0o17",
        "1_000",
        "1e3",
        "0x1F",
        "TILDE='~'",
        "-",
        "- a",
        "[a]",
        "{a: b}",
        "*x",
        "&x",
        "!x",
        "|",
        ">",
        "%x",
        "@x",
        "`x`",
        " lead",
        "trail ",
        "",
    ] {
        values.push(v.to_string());
    }
    values.sort();
    values.dedup();
    values
}

/// A value in `.stack` string syntax.
fn stack_string(value: &str) -> String {
    let mut s = String::from("\"");
    for c in value.chars() {
        match c {
            '"' => s.push_str("\\\""),
            '\\' => s.push_str("\\\\"),
            '\n' => s.push_str("\\n"),
            '\t' => s.push_str("\\t"),
            '\r' => s.push_str("\\r"),
            '$' => s.push_str("\\$"),
            c => s.push(c),
        }
    }
    s.push('"');
    s
}

/// One service whose env holds the values (`V0`, `V1`, ...) and whose command
/// is their list, on one compose host and in a cluster.
fn stack_of(values: &[&str]) -> String {
    let env: String = values
        .iter()
        .enumerate()
        .map(|(i, v)| format!("    V{i} = {}\n", stack_string(v)))
        .collect();
    let words: Vec<String> = values.iter().map(|v| stack_string(v)).collect();
    format!(
        "stack meaning\n\nservice app {{\n  image = \"app:1\"\n  port http = 8000\n  command = [{}]\n  entrypoint = [{}]\n  env {{\n    SELF = \"self\"\n{env}  }}\n}}\n\n\
         topology hosts {{\n  host main {{ address = \"10.0.0.1\"  run = [app] }}\n}}\n\n\
         topology cluster {{\n  platform = kubernetes\n  run = [app]\n}}\n",
        words.join(", "),
        words.join(", "),
    )
}

fn options() -> stackc::Options {
    stackc::Options {
        source_name: "meaning.stack".to_string(),
        topologies: Vec::new(),
        source_dir_from_compose: "../../..".to_string(),
        source_from_out: "../meaning.stack".to_string(),
    }
}

/// The container of `app` in the cluster's manifests.
fn kubernetes_container(compilation: &stackc::Compilation) -> serde_norway::Value {
    for a in &compilation.artifacts {
        if !a.path.starts_with("cluster/k8s/") || !a.path.ends_with(".yaml") {
            continue;
        }
        for doc in serde_norway::Deserializer::from_str(&a.contents) {
            let Ok(doc) = serde_norway::Value::deserialize(doc) else {
                continue;
            };
            let c = &doc["spec"]["template"]["spec"]["containers"][0];
            if c["name"].as_str() == Some("app") {
                return c.clone();
            }
        }
    }
    panic!("no container `app` in the cluster's manifests");
}

fn strings(v: &serde_norway::Value) -> Vec<String> {
    v.as_sequence()
        .into_iter()
        .flatten()
        .map(|s| s.as_str().unwrap_or_default().to_string())
        .collect()
}

/// Every hostile value reaches the container exactly, through compose's
/// interpolation (`docker-compose config`), a shell reading the env file, and
/// Kubernetes' expansion of env values, `command` and `args`; or `check`
/// rejects it, and then `build` does too.
#[test]
fn hostile_values_reach_every_consumer_exactly_or_are_rejected() {
    let values = hostile_values();
    let mut accepted: Vec<&str> = Vec::new();
    for v in &values {
        let text = stack_of(&[v.as_str()]);
        let compiled = stackc::compile(text.as_str(), &options());
        let checked = stackc::analyze(text.as_str(), &options(), stackc::Disposal::Free);
        assert_eq!(
            compiled.has_errors(),
            checked
                .diagnostics
                .iter()
                .any(stackc::diag::Diagnostic::is_error),
            "check and build disagree on {v:?}"
        );
        if !compiled.has_errors() {
            accepted.push(v);
        }
    }
    assert!(
        accepted.len() > values.len() / 2,
        "most values are accepted: {accepted:?}"
    );
    let text = stack_of(&accepted);
    let compilation = stackc::compile(text.as_str(), &options());
    assert!(!compilation.has_errors(), "{:?}", compilation.diagnostics);

    // Kubernetes: env values in order, each expanded against those before it.
    let container = kubernetes_container(&compilation);
    let mut defined: BTreeMap<String, String> = BTreeMap::new();
    for e in container["env"].as_sequence().into_iter().flatten() {
        let name = e["name"].as_str().unwrap_or_default().to_string();
        let value = kubernetes_expand(e["value"].as_str().unwrap_or_default(), &defined);
        defined.insert(name, value);
    }
    let env_of_container = defined.clone();
    for (i, v) in accepted.iter().enumerate() {
        assert_eq!(
            env_of_container.get(&format!("V{i}")).map(String::as_str),
            Some(*v),
            "Kubernetes env V{i}"
        );
    }
    for (field, what) in [("args", "command"), ("command", "entrypoint")] {
        let got: Vec<String> = strings(&container[field])
            .iter()
            .map(|w| kubernetes_expand(w, &env_of_container))
            .collect();
        assert_eq!(got, accepted, "Kubernetes `{field}` (the stack's `{what}`)");
    }

    if !require("docker-compose") {
        return;
    }
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    crate::support::write_artifacts(&compilation, dir.path());
    let compose_dir = dir.path().join("hosts/compose");
    let r = Command::new("docker-compose")
        .args(["-f", "main.yml", "config"])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .current_dir(&compose_dir)
        .output()
        .unwrap_or_else(|e| panic!("docker-compose: {e}"));
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let doc = yaml11(&r.stdout);
    let app = &doc["services"]["app"];
    // `config` prints the interpolated file, with a literal `$` written `$$`.
    let unescape = |s: &str| s.replace("$$", "$");
    for (i, v) in accepted.iter().enumerate() {
        let got = app["environment"][format!("V{i}")].as_str().map(unescape);
        assert_eq!(got.as_deref(), Some(*v), "compose environment V{i}");
    }
    for field in ["command", "entrypoint"] {
        let got: Vec<String> = app[field]
            .as_array()
            .into_iter()
            .flatten()
            .map(|w| unescape(w.as_str().unwrap_or_default()))
            .collect();
        assert_eq!(got, accepted, "compose `{field}`");
    }
    if require("sh") {
        let file = dir.path().join("hosts/env/main/app.env");
        let names: Vec<String> = (0..accepted.len()).map(|i| format!("V{i}")).collect();
        let got = crate::support::sh_env_values(&file, &names);
        for (i, v) in accepted.iter().enumerate() {
            assert_eq!(
                got.get(i).map(String::as_str),
                Some(*v),
                "env file V{i} via sh"
            );
        }
    }
}

/// A service on two hosts, its port overridden on one, read by every kind of
/// reader: another service's env (`url`, `address`), nginx and HAProxy
/// upstreams, Prometheus targets. Hosts on `addresses`.
fn endpoint_stack(addresses: [&str; 3]) -> String {
    let [a, b, c] = addresses;
    // The same topology once per proxy kind, named after it.
    let topologies: String = ["nginx", "haproxy"]
        .iter()
        .map(|kind| {
            format!(
                r#"
topology {kind} {{
  host a {{ address = "{a}"  run = [app] }}
  host b {{
    address = "{b}"
    run app {{ port http {{ container = 8080  host = 9191 }} }}
  }}
  host c {{ address = "{c}"  run = [client, prom] }}
  proxy edge: {kind} {{ host = c }}
}}
"#
            )
        })
        .collect();
    format!(
        r#"
service app {{
  image = "app:1"
  port http = 8080
  public = [http]
  metrics = http
  route "/"
  health {{ http = "/health" }}
}}
service client {{
  image = "c:1"
  env {{
    APP_URL = app.url
    APP_ADDRESS = app.address
  }}
}}
service prom: prometheus {{}}
{topologies}"#
    )
}

/// `host:port` with an IPv6 address bracketed, as a URL writes it.
fn endpoint(address: &str, port: u64) -> String {
    if address.contains(':') {
        format!("[{address}]:{port}")
    } else {
        format!("{address}:{port}")
    }
}

/// Every reader of `app`'s address agrees with what `docker-compose config`
/// resolves as its publication on each host, for IPv4 and IPv6 hosts and a
/// port overridden on one host; and nginx and HAProxy accept the files.
#[test]
fn every_reader_of_an_endpoint_agrees_with_the_compose_publication() {
    if !require("docker-compose") || !require("nginx") || !require("haproxy") {
        return;
    }
    for addresses in [
        ["10.0.50.2", "10.0.50.3", "10.0.50.4"],
        ["fd00:50::2", "fd00:50::3", "fd00:50::4"],
    ] {
        let text = endpoint_stack(addresses);
        let compilation = stackc::compile(text.as_str(), &options());
        assert!(!compilation.has_errors(), "{:?}", compilation.diagnostics);
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        crate::support::write_artifacts(&compilation, dir.path());
        for topology in ["nginx", "haproxy"] {
            let t = dir.path().join(topology);
            // What compose publishes: the host's address and the published port.
            let mut published = Vec::new();
            for (host, address) in ["a", "b"].iter().zip(addresses) {
                let r = Command::new("docker-compose")
                    .args(["-f", &format!("{host}.yml"), "config"])
                    .current_dir(t.join("compose"))
                    .output()
                    .unwrap_or_else(|e| panic!("docker-compose: {e}"));
                assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
                let doc = yaml11(&r.stdout);
                let port = &doc["services"]["app"]["ports"][0];
                assert_eq!(port["target"].as_u64(), Some(8080));
                let host_port = port["published"].as_u64().unwrap_or_default();
                published.push(endpoint(address, host_port));
            }
            assert_eq!(
                published[1],
                endpoint(addresses[1], 9191),
                "the override is published"
            );

            // The consumer reaches the first host that runs `app`.
            // As a shell reads the env file.
            let env = crate::support::sh_env_values(
                &t.join("env/c/client.env"),
                &["APP_URL", "APP_ADDRESS"],
            );
            assert_eq!(env[0], format!("http://{}", published[0]));
            assert_eq!(env[1], published[0]);

            // Prometheus scrapes every placement where it is published.
            let prom = crate::support::read(&t.join("prometheus/prometheus.yml"));
            let doc: serde_norway::Value =
                serde_norway::from_str(&prom).unwrap_or_else(|e| panic!("{e}"));
            let mut targets: Vec<String> = doc["scrape_configs"]
                .as_sequence()
                .into_iter()
                .flatten()
                .filter(|j| j["job_name"].as_str() == Some("app"))
                .flat_map(|j| {
                    j["static_configs"]
                        .as_sequence()
                        .cloned()
                        .unwrap_or_default()
                })
                .flat_map(|s| strings(&s["targets"]))
                .collect();
            targets.sort();
            let mut want = published.clone();
            want.sort();
            assert_eq!(targets, want, "Prometheus targets");

            // The proxy's servers, and the real program accepts the file.
            let (conf, check) = if topology == "nginx" {
                let conf = t.join("nginx/edge.conf");
                let r = Command::new("nginx")
                    .args(["-t", "-p"])
                    .arg(dir.path())
                    .arg("-c")
                    .arg(&conf)
                    .output();
                (conf, r)
            } else {
                let conf = t.join("haproxy/edge.cfg");
                let r = Command::new("haproxy")
                    .args(["-c", "-f"])
                    .arg(&conf)
                    .output();
                (conf, r)
            };
            let check = check.unwrap_or_else(|e| panic!("{topology}: {e}"));
            assert!(
                check.status.success(),
                "{topology} rejects {}:\n{}",
                conf.display(),
                String::from_utf8_lossy(&check.stderr)
            );
            let text = crate::support::read(&conf);
            let mut servers: Vec<String> = text
                .lines()
                .map(str::trim)
                .filter_map(|l| l.strip_prefix("server "))
                .map(|l| {
                    let words: Vec<&str> = l.split_whitespace().collect();
                    // nginx: `server ADDR ...;`, HAProxy: `server NAME ADDR ...`.
                    let at = usize::from(topology == "haproxy");
                    words
                        .get(at)
                        .unwrap_or(&"")
                        .trim_end_matches(';')
                        .to_string()
                })
                .filter(|s| s.contains("9191") || s.contains("8080"))
                .collect();
            servers.sort();
            assert_eq!(servers, want, "{topology} servers");
        }
    }
}

/// A secret inside a URL reaches it unencoded on every target (compose
/// interpolates, Kubernetes expands the raw value), so a value that would
/// change the URL's meaning is refused where values are taken: the cluster's
/// `secrets.sh` stops before `kubectl` runs, naming the secret; a value of URL
/// characters goes on to `kubectl`. `stackc secrets` says which secrets these are.
#[test]
fn a_secret_inside_a_url_must_need_no_encoding() {
    if !require("sh") {
        return;
    }
    let text = r#"
stack urls
secret db_password
secret api_token
service api {
  image = "api:1"
  env {
    DATABASE_URL = db.url
    TOKEN = secret.api_token
  }
}
service db: postgres { password = secret.db_password }
topology cluster {
  platform = kubernetes
  run = [api, db]
}
"#;
    let compilation = stackc::compile(text, &options());
    assert!(!compilation.has_errors(), "{:?}", compilation.diagnostics);
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let script = dir.path().join("secrets.sh");
    std::fs::write(
        &script,
        crate::support::artifact(&compilation, "cluster/k8s/secrets.sh"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let run = |password: &str| {
        Command::new("sh")
            .arg(&script)
            .env_clear()
            // With no cluster, a script past its checks stops at `kubectl`.
            .env("PATH", "/usr/bin:/bin")
            .env("DB_PASSWORD", password)
            .env("API_TOKEN", "t0k:@/n")
            .output()
            .unwrap_or_else(|e| panic!("sh: {e}"))
    };
    for bad in ["p@ss:w/rd?x#y%z", "a b", "x@y"] {
        let r = run(bad);
        let stderr = String::from_utf8_lossy(&r.stderr);
        assert_eq!(r.status.code(), Some(1), "{bad:?}: {stderr}");
        assert!(
            stderr.contains("secret db_password is used inside a URL"),
            "{stderr}"
        );
    }
    // A value of URL characters passes (and the token, not in a URL, may hold any).
    let r = run("0123abcdef-._~");
    let stderr = String::from_utf8_lossy(&r.stderr);
    assert!(!stderr.contains("inside a URL"), "{stderr}");

    let plan = stackc::analyze(text, &options(), stackc::Disposal::Free).plan;
    let report = stackc::secrets::report(&plan.unwrap_or_else(|| panic!("a plan")));
    assert!(
        report.contains("db_password ($DB_PASSWORD, required; inside a URL"),
        "{report}"
    );
    assert!(
        !report.contains("api_token ($API_TOKEN, required; inside"),
        "{report}"
    );
}

/// A Redis password reaches Redis exactly, on its standard input, never on
/// its command line, and one that a config line or a client's URL could not
/// hold stops the container at its start, saying why. The compose command's
/// shell line runs here with the real `redis-server`.
#[test]
fn a_redis_password_reaches_redis_on_its_standard_input_or_is_refused() {
    if !require("redis-server") || !require("redis-cli") {
        return;
    }
    let text = r#"
stack cache
secret cache_password
service cache: redis_auth { password = secret.cache_password }
topology single {
  host main {
    address = "127.0.0.1"
    run = [cache]
  }
}
"#;
    let compilation = stackc::compile(text, &options());
    assert!(!compilation.has_errors(), "{:?}", compilation.diagnostics);
    let compose =
        yaml11(crate::support::artifact(&compilation, "single/compose/main.yml").as_bytes());
    let command = &compose["services"]["cache"]["command"];
    assert_eq!(command[0], "sh", "{command}");
    // Compose turns `$$` into `$`.
    let line = command[2].as_str().unwrap_or_default().replace("$$", "$");
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let port = 16391;
    let start = |password: &str| {
        Command::new("sh")
            .args([
                "-c",
                &format!("{line} --port {port} --bind 127.0.0.1 --save ''"),
            ])
            .current_dir(dir.path())
            .env("REDIS_PASSWORD", password)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("sh: {e}"))
    };
    for bad in [
        "",
        "a\"b",
        "x\nrename-command CONFIG \"\"",
        "p@ss:w/rd",
        "a b",
    ] {
        let o = start(bad)
            .wait_with_output()
            .unwrap_or_else(|e| panic!("{e}"));
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{bad:?}: {stderr}");
        assert!(stderr.contains("REDIS_PASSWORD"), "{bad:?}: {stderr}");
    }
    let password = "Zx9-._~secret";
    let redis = crate::support::Running(start(password));
    let cli = |auth: Option<&str>| {
        let mut c = Command::new("redis-cli");
        c.args(["-p", &port.to_string(), "ping"]);
        if let Some(a) = auth {
            c.env("REDISCLI_AUTH", a);
        }
        c.output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    };
    crate::support::wait_for("redis starts", std::time::Duration::from_secs(10), || {
        cli(Some(password)).contains("PONG")
    });
    assert!(
        cli(None).contains("NOAUTH"),
        "a client without it is refused"
    );
    let cmdline = std::fs::read(format!("/proc/{}/cmdline", redis.0.id())).unwrap_or_default();
    assert!(
        !String::from_utf8_lossy(&cmdline).contains(password),
        "the password is on the command line: {}",
        String::from_utf8_lossy(&cmdline)
    );
}

/// A service that runs only on managed hosts (a platform such as Vercel runs
/// it) gets no scrape job: Prometheus could reach none of its placements. The
/// one beside Prometheus is scraped.
#[test]
fn a_service_on_managed_hosts_only_gets_no_scrape_job() {
    let text = r#"
service web {
  image = "web:1"
  port http = 3000
  metrics = http
}
service api {
  image = "api:1"
  port http = 8000
  metrics = http
}
service prom: prometheus {}
topology t {
  host cdn {
    managed = true
    run = [web]
  }
  host main { run = [api, prom] }
}
"#;
    let compilation = stackc::compile(text, &options());
    assert!(!compilation.has_errors(), "{:?}", compilation.diagnostics);
    let prom = crate::support::artifact(&compilation, "t/prometheus/prometheus.yml");
    let doc: serde_norway::Value = serde_norway::from_str(&prom).unwrap_or_else(|e| panic!("{e}"));
    let jobs: Vec<&str> = doc["scrape_configs"]
        .as_sequence()
        .into_iter()
        .flatten()
        .filter_map(|j| j["job_name"].as_str())
        .collect();
    assert_eq!(jobs, ["api"], "{prom}");
}
