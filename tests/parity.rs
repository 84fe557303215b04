//! Parity across targets (issue 25, item 9): for every stack with a compose
//! and a Kubernetes topology, each service they both run must mean the same to
//! its process on both platforms: its environment (after compose's
//! interpolation, by `docker-compose config`, and after Kubernetes' `$(VAR)`
//! expansion), its command, its health check and timing, what it starts after,
//! the secrets it reads, its resources, its ports and its replicas.
//!
//! What differs by design is normalized away, and docs/targets.md ("Compose
//! and Kubernetes: what differs") says why: the address a service is reached at
//! (a compose name or a host's address, a Kubernetes Service) becomes the
//! service it reaches, and each platform's defaults are applied before
//! comparing. What the user wrote differently is not compared: a field the
//! topology overrides for the service (its `override` or the host's `run`
//! block), an environment entry set by another line of the file, and a value
//! that reaches a service deployed differently in the two (external in one,
//! another HA mode).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

use serde_json::Value;
use stackc::model::HaMode;
use stackc::plan::{Added, Instance, TopologyPlan};
use stackc::syntax::{Entry, EntryValue};

use crate::support::{
    kubernetes_expand, options, read, rel, require, stack_files, write_artifacts, yaml11,
};

/// How many generated stacks are compared.
const GENERATED: usize = 16;

/// A service's health check as the platform runs it, with its defaults applied.
#[derive(Debug, Clone, PartialEq)]
enum Check {
    Http { port: u64, path: String },
    Tcp { port: u64 },
    Exec(Vec<String>),
    Shell(String),
}

#[derive(Debug, Clone, PartialEq)]
struct Health {
    check: Check,
    /// Seconds between checks.
    interval: u64,
    timeout: u64,
    /// Failures in a row that make it unhealthy.
    retries: u64,
    /// How long after the start it may still fail (compose's `start_period`):
    /// on Kubernetes, the startup probe's failures before the ones that count.
    grace: u64,
    /// How long after the start it cannot pass yet (Kubernetes'
    /// `initialDelaySeconds`; compose counts the first success).
    held: u64,
}

/// CPU in millicores, memory in bytes, as requests and limits.
#[derive(Debug, Clone, Default, PartialEq)]
struct Resources {
    cpu: Option<u64>,
    memory: Option<u64>,
    cpu_limit: Option<u64>,
    memory_limit: Option<u64>,
    gpu: u64,
}

/// What a service's process sees and how it is run, on one platform.
#[derive(Debug, Clone, Default)]
struct Meaning {
    env: BTreeMap<String, String>,
    entrypoint: Option<Vec<String>>,
    command: Option<Vec<String>>,
    health: Option<Health>,
    /// What it starts after: (service, "healthy" or "completed").
    after: BTreeSet<(String, String)>,
    resources: Resources,
    ports: BTreeSet<u64>,
    replicas: Option<u64>,
}

/// A topology's names for the services: every address a value may hold, and
/// the service behind it.
type Addresses = BTreeMap<String, String>;

/// A secret as both platforms give it to the process here: compose
/// interpolates `${KEY}` from the environment the test sets, Kubernetes reads
/// `secretKeyRef` key KEY.
fn secret_marker(key: &str) -> String {
    format!("⟨secret {key}⟩")
}

/// Every address in `value` replaced by the service it reaches, `⟨name⟩`, with
/// its port: which port reaches which service is the endpoint tests' subject
/// (tests/meaning.rs), here only the service matters.
fn normalize(value: &str, addresses: &Addresses) -> String {
    let host_char = |c: char| c.is_ascii_alphanumeric() || c == '.' || c == '-';
    let mut out = String::new();
    let mut rest = value;
    while let Some(start) = rest.find(host_char) {
        out.push_str(&rest[..start]);
        rest = &rest[start..];
        let end = rest.find(|c| !host_char(c)).unwrap_or(rest.len());
        let (word, after) = rest.split_at(end);
        let port_len = after
            .strip_prefix(':')
            .map(|p| p.find(|c: char| !c.is_ascii_digit()).unwrap_or(p.len()))
            .filter(|n| *n > 0)
            .map_or(0, |n| n + 1);
        let with_port = &rest[..end + port_len];
        // A URL's user (`postgresql://api:...@db`) is a name, not an address,
        // even where it is a service's (a role of its own is named so).
        let user = out.ends_with("://")
            && after
                .split('/')
                .next()
                .is_some_and(|authority| authority.contains('@'));
        let service = addresses
            .get(with_port)
            .or_else(|| addresses.get(word))
            .filter(|_| !after.starts_with("://") && !user);
        match service {
            Some(s) => {
                out.push_str(&format!("⟨{s}⟩"));
                rest = &rest[end + port_len..];
            }
            None => {
                out.push_str(word);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

fn seconds(text: &str) -> u64 {
    // Go durations as compose writes them: `1m30s`, `500ms`, `5s`.
    let mut total_ms = 0u64;
    let mut number = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let n: u64 = number.parse().unwrap_or_else(|_| panic!("duration {text}"));
        number.clear();
        total_ms += match c {
            'h' => n * 3_600_000,
            'm' if chars.peek() == Some(&'s') => {
                chars.next();
                n
            }
            'm' => n * 60_000,
            's' => n * 1000,
            _ => panic!("duration {text}"),
        };
    }
    total_ms.div_ceil(1000)
}

fn millicores(text: &str) -> u64 {
    match text.strip_suffix('m') {
        Some(m) => m.parse().unwrap_or_else(|_| panic!("cpu {text}")),
        None => {
            (text.parse::<f64>().unwrap_or_else(|_| panic!("cpu {text}")) * 1000.0).round() as u64
        }
    }
}

fn bytes(text: &str) -> u64 {
    let split = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(text.len());
    let (n, unit) = text.split_at(split);
    let n: f64 = n.parse().unwrap_or_else(|_| panic!("memory {text}"));
    let k = 1024f64;
    let factor = match unit {
        "" | "b" => 1.0,
        "k" | "Ki" | "kb" => k,
        "m" | "Mi" | "mb" => k * k,
        "g" | "Gi" | "gb" => k * k * k,
        "Ti" => k * k * k * k,
        "K" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        _ => panic!("memory unit {unit} in {text}"),
    };
    (n * factor).round() as u64
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn words(v: &Value) -> Option<Vec<String>> {
    v.as_array().map(|a| a.iter().map(text).collect())
}

// ---------------------------------------------------------------- compose

/// A compose healthcheck, with docker's defaults (30 s interval, 30 s timeout,
/// 3 retries, no start period).
fn compose_health(h: &Value) -> Option<Health> {
    let test = words(&h["test"])?;
    let check = match test.first().map(String::as_str) {
        Some("CMD") => Check::Exec(test[1..].to_vec()),
        Some("CMD-SHELL") => shell_check(&test[1]),
        _ => return None,
    };
    let field = |k: &str, default: u64| h[k].as_str().map_or(default, seconds);
    Some(Health {
        check,
        interval: field("interval", 30),
        timeout: field("timeout", 30),
        retries: h["retries"].as_u64().unwrap_or(3),
        grace: field("start_period", 0),
        held: 0,
    })
}

/// The check a CMD-SHELL line runs: the HTTP GET or TCP connection that its
/// `curl`/`wget` or `nc`/`/dev/tcp` fallbacks all make, else the shell line.
fn shell_check(line: &str) -> Check {
    if let Some(url) = line
        .strip_prefix("curl -fsS -o /dev/null ")
        .and_then(|r| r.split(' ').next())
    {
        let url = url.trim_matches('\'');
        let rest = url.strip_prefix("http://localhost:").unwrap_or(url);
        let (port, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        return Check::Http {
            port: port.parse().unwrap_or(0),
            path: path.to_string(),
        };
    }
    if let Some(rest) = line.strip_prefix("nc -z localhost ") {
        let port = rest.split(' ').next().unwrap_or_default();
        return Check::Tcp {
            port: port.parse().unwrap_or(0),
        };
    }
    Check::Shell(line.to_string())
}

fn compose_resources(deploy: &Value) -> (Resources, Option<u64>) {
    let r = &deploy["resources"];
    let cpu = |v: &Value| {
        v.as_str()
            .map(millicores)
            .or(v.as_f64().map(|f| (f * 1000.0) as u64))
    };
    let mem = |v: &Value| v.as_str().map(bytes).or(v.as_u64());
    let gpu = r["reservations"]["devices"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|d| d["count"].as_u64())
        .sum();
    let resources = Resources {
        cpu: cpu(&r["reservations"]["cpus"]),
        memory: mem(&r["reservations"]["memory"]),
        cpu_limit: cpu(&r["limits"]["cpus"]),
        memory_limit: mem(&r["limits"]["memory"]),
        gpu,
    };
    (resources, Some(deploy["replicas"].as_u64().unwrap_or(1)))
}

/// One host's compose services as `docker-compose config` resolves them, with
/// every interpolated variable set to its secret's marker.
fn compose_config(file: &Path) -> Value {
    crate::real_programs::make_contexts(file);
    let text = read(file);
    let mut cmd = Command::new("docker-compose");
    cmd.arg("-f").arg(file).arg("config").env_clear();
    cmd.env("PATH", std::env::var("PATH").unwrap_or_default());
    for piece in text.split("${").skip(1) {
        let name: String = piece
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        cmd.env(&name, secret_marker(&name));
    }
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("docker-compose: {e}"));
    assert!(
        out.status.success(),
        "docker-compose config {}: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    unescape(yaml11(&out.stdout))
}

/// `config` prints the interpolated file with a literal `$` written `$$`.
fn unescape(v: Value) -> Value {
    match v {
        Value::String(s) => Value::String(s.replace("$$", "$")),
        Value::Array(a) => Value::Array(a.into_iter().map(unescape).collect()),
        Value::Object(o) => Value::Object(o.into_iter().map(|(k, v)| (k, unescape(v))).collect()),
        other => other,
    }
}

/// A published port as `config` prints it: the long form, or the short
/// `HOST_IP:PUBLISHED:TARGET/PROTOCOL` when bound to an address.
fn published(p: &Value) -> (Option<String>, Option<u64>, Option<u64>) {
    if let Some(s) = p.as_str() {
        let s = s.split('/').next().unwrap_or_default();
        let parts: Vec<&str> = s.rsplitn(3, ':').collect();
        let target = parts.first().and_then(|t| t.parse().ok());
        let published = parts.get(1).and_then(|t| t.parse().ok());
        return (parts.get(2).map(|ip| ip.to_string()), published, target);
    }
    (None, p["published"].as_u64(), p["target"].as_u64())
}

/// The compose services of a topology, by host, and the addresses that reach
/// each.
fn compose_meanings(
    dir: &Path,
    topo: &TopologyPlan,
) -> (BTreeMap<String, BTreeMap<String, Value>>, Addresses) {
    let mut hosts = BTreeMap::new();
    let mut addresses = Addresses::new();
    for host in &topo.hosts {
        let file = dir
            .join(&*topo.name)
            .join("compose")
            .join(format!("{}.yml", host.name));
        if !file.exists() {
            continue;
        }
        let config = compose_config(&file);
        let services: BTreeMap<String, Value> = config["services"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for (name, svc) in &services {
            let owner = owner(name);
            addresses.insert(name.clone(), owner.clone());
            for p in svc["ports"].as_array().into_iter().flatten() {
                let (ip, port, _) = published(p);
                if let (Some(ip), Some(port)) = (ip.as_ref().or(host.address.as_ref()), port) {
                    addresses.insert(format!("{ip}:{port}"), owner.clone());
                }
            }
        }
        hosts.insert(host.name.to_string(), services);
    }
    (hosts, addresses)
}

fn owner(name: &str) -> String {
    Added::owner(name).map_or(name, |(o, _)| o).to_string()
}

fn compose_meaning(svc: &Value, services: &BTreeMap<String, Value>) -> Meaning {
    let env: BTreeMap<String, String> = svc["environment"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.clone(), text(v)))
        .collect();
    let after = svc["depends_on"]
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(dep, c)| {
            let condition = match c["condition"].as_str() {
                Some("service_healthy") => "healthy",
                Some("service_completed_successfully") => "completed",
                _ => return None,
            };
            services
                .contains_key(dep)
                .then(|| (owner(dep), condition.to_string()))
        })
        .collect();
    let (resources, replicas) = compose_resources(&svc["deploy"]);
    Meaning {
        env,
        entrypoint: words(&svc["entrypoint"]),
        command: words(&svc["command"]),
        health: compose_health(&svc["healthcheck"]),
        after,
        resources,
        ports: svc["ports"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| published(p).2)
            .collect(),
        replicas,
    }
}

fn secrets_in(env: &BTreeMap<String, String>) -> BTreeSet<String> {
    env.values()
        .flat_map(|v| v.split("⟨secret ").skip(1))
        .filter_map(|s| s.split('⟩').next())
        .map(str::to_string)
        .collect()
}

// ---------------------------------------------------------------- Kubernetes

/// A topology's manifests.
fn kubernetes_docs(dir: &Path, topo: &str) -> Vec<Value> {
    let mut docs = Vec::new();
    let k8s = dir.join(topo).join("k8s");
    let mut files: Vec<_> = std::fs::read_dir(&k8s)
        .unwrap_or_else(|e| panic!("{}: {e}", k8s.display()))
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    for f in files {
        for doc in serde_norway::Deserializer::from_str(&read(&f)) {
            let v = <serde_norway::Value as serde::Deserialize>::deserialize(doc)
                .unwrap_or_else(|e| panic!("{}: {e}", f.display()));
            docs.push(serde_json::to_value(v).unwrap_or_else(|e| panic!("{e}")));
        }
    }
    docs
}

/// The pod spec of a workload (Deployment, StatefulSet, Job, CronJob).
fn pod_spec(doc: &Value) -> Option<&Value> {
    match doc["kind"].as_str()? {
        "Deployment" | "StatefulSet" | "Job" => Some(&doc["spec"]["template"]["spec"]),
        "CronJob" => Some(&doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]),
        _ => None,
    }
}

/// Every name a pod may reach a Service by, and the service behind it: the
/// Service's name (bare and qualified) to what its selector picks, and
/// CloudNativePG's Services to their Cluster.
fn kubernetes_addresses(docs: &[Value], namespace: &str, names: &BTreeSet<String>) -> Addresses {
    let mut addresses = Addresses::new();
    let mut add = |service: &str, target: String| {
        for form in [
            service.to_string(),
            format!("{service}.{namespace}"),
            format!("{service}.{namespace}.svc"),
            format!("{service}.{namespace}.svc.cluster.local"),
        ] {
            addresses.insert(form, target.clone());
        }
    };
    for doc in docs {
        let name = doc["metadata"]["name"].as_str().unwrap_or_default();
        match doc["kind"].as_str() {
            Some("Service") => {
                let selected = doc["spec"]["selector"]["app.kubernetes.io/name"]
                    .as_str()
                    .unwrap_or_default();
                add(name, service_of(selected, names));
            }
            Some("Cluster") => {
                for suffix in ["-rw", "-ro", "-r"] {
                    add(&format!("{name}{suffix}"), name.to_string());
                }
            }
            _ => {}
        }
    }
    addresses
}

/// The stackc service a workload belongs to: its name, or the service whose
/// name it extends (`redis-sentinel`, `redis-proxy`).
fn service_of(workload: &str, names: &BTreeSet<String>) -> String {
    if names.contains(workload) {
        return workload.to_string();
    }
    names
        .iter()
        .filter(|n| workload.starts_with(&format!("{n}-")))
        .max_by_key(|n| n.len())
        .cloned()
        .unwrap_or_else(|| workload.to_string())
}

/// A probe, with Kubernetes' defaults (10 s period, 1 s timeout, 3 failures).
fn kubernetes_health(container: &Value) -> Option<Health> {
    let probe = &container["readinessProbe"];
    if probe.is_null() {
        return None;
    }
    let port = |p: &Value| -> u64 {
        match p {
            Value::String(name) => container["ports"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|cp| cp["name"].as_str() == Some(name))
                .and_then(|cp| cp["containerPort"].as_u64())
                .unwrap_or(0),
            other => other.as_u64().unwrap_or(0),
        }
    };
    let check = if !probe["httpGet"].is_null() {
        Check::Http {
            port: port(&probe["httpGet"]["port"]),
            path: text(&probe["httpGet"]["path"]),
        }
    } else if !probe["tcpSocket"].is_null() {
        Check::Tcp {
            port: port(&probe["tcpSocket"]["port"]),
        }
    } else {
        let argv = words(&probe["exec"]["command"]).unwrap_or_default();
        match argv.as_slice() {
            [sh, c, line] if sh == "/bin/sh" && c == "-c" => Check::Shell(line.clone()),
            _ => Check::Exec(argv),
        }
    };
    let field = |p: &Value, k: &str, default: u64| p[k].as_u64().unwrap_or(default);
    let interval = field(probe, "periodSeconds", 10);
    let retries = field(probe, "failureThreshold", 3);
    // A startup probe holds the others back until it succeeds: its failures
    // past the ones readiness would count are the start period.
    let startup = &container["startupProbe"];
    let grace = if startup.is_null() {
        0
    } else {
        (field(startup, "failureThreshold", 3) * field(startup, "periodSeconds", 10))
            .saturating_sub(retries * interval)
    };
    Some(Health {
        check,
        interval,
        timeout: field(probe, "timeoutSeconds", 1),
        retries,
        grace,
        held: field(probe, "initialDelaySeconds", 0),
    })
}

fn kubernetes_resources(r: &Value) -> Resources {
    let cpu = |v: &Value| v.as_str().map(millicores).or(v.as_u64().map(|n| n * 1000));
    let mem = |v: &Value| v.as_str().map(bytes).or(v.as_u64());
    Resources {
        cpu: cpu(&r["requests"]["cpu"]),
        memory: mem(&r["requests"]["memory"]),
        cpu_limit: cpu(&r["limits"]["cpu"]),
        memory_limit: mem(&r["limits"]["memory"]),
        gpu: text(&r["limits"]["nvidia.com/gpu"]).parse().unwrap_or(0),
    }
}

/// The env as the container sees it: `$(VAR)` expanded in order, a secret as
/// its marker. The helpers `STACKC_<SECRET>` are left out (docs/targets.md).
fn kubernetes_env(container: &Value) -> BTreeMap<String, String> {
    let mut defined: BTreeMap<String, String> = BTreeMap::new();
    for e in container["env"].as_array().into_iter().flatten() {
        let name = text(&e["name"]);
        let value = match e["valueFrom"]["secretKeyRef"]["key"].as_str() {
            Some(key) => secret_marker(key),
            None => kubernetes_expand(&text(&e["value"]), &defined),
        };
        defined.insert(name, value);
    }
    defined.retain(|k, _| !k.starts_with("STACKC_"));
    defined
}

/// What a pod's init containers wait for: a Job to complete (`kubectl wait`),
/// or a Service to have a ready endpoint (a connection to it succeeds).
fn kubernetes_after(
    spec: &Value,
    jobs: &BTreeMap<String, String>,
    addresses: &Addresses,
) -> BTreeSet<(String, String)> {
    let mut after = BTreeSet::new();
    for c in spec["initContainers"].as_array().into_iter().flatten() {
        let argv: Vec<String> = words(&c["command"])
            .into_iter()
            .flatten()
            .chain(words(&c["args"]).into_iter().flatten())
            .collect();
        if let Some(job) = argv.iter().find_map(|a| a.strip_prefix("job/")) {
            let task = jobs.get(job).cloned().unwrap_or_else(|| job.to_string());
            after.insert((task, "completed".to_string()));
            continue;
        }
        for word in argv
            .join(" ")
            .split(|c: char| c.is_whitespace() || c == ';')
        {
            if let Some(s) = addresses.get(word) {
                after.insert((s.clone(), "healthy".to_string()));
            }
        }
    }
    after
}

fn kubernetes_meanings(docs: &[Value], addresses: &Addresses) -> BTreeMap<String, Meaning> {
    let jobs: BTreeMap<String, String> = docs
        .iter()
        .filter(|d| d["kind"] == "Job")
        .filter_map(|d| {
            let c = &pod_spec(d)?["containers"][0];
            Some((text(&d["metadata"]["name"]), text(&c["name"])))
        })
        .collect();
    let mut out = BTreeMap::new();
    for doc in docs {
        let Some(spec) = pod_spec(doc) else { continue };
        let workload = text(&doc["metadata"]["name"]);
        let Some(container) = spec["containers"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["name"].as_str().is_some_and(|n| workload.starts_with(n)))
        else {
            continue;
        };
        let name = text(&container["name"]);
        let env = kubernetes_env(container);
        let defined = env.clone();
        let expand = |v: Option<Vec<String>>| {
            v.map(|w| w.iter().map(|x| kubernetes_expand(x, &defined)).collect())
        };
        let replicas = match doc["kind"].as_str() {
            Some("Deployment" | "StatefulSet") => {
                Some(doc["spec"]["replicas"].as_u64().unwrap_or(1))
            }
            _ => Some(1),
        };
        out.insert(
            name,
            Meaning {
                entrypoint: expand(words(&container["command"])),
                command: expand(words(&container["args"])),
                env,
                health: kubernetes_health(container),
                after: kubernetes_after(spec, &jobs, addresses),
                resources: kubernetes_resources(&container["resources"]),
                ports: container["ports"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|p| p["containerPort"].as_u64())
                    .collect(),
                replicas,
            },
        );
    }
    out
}

// ---------------------------------------------------------------- the source

/// What a topology says of each service itself: the fields its `override`
/// and its hosts' `run` blocks set, and the services it declares external.
#[derive(Default)]
struct Says {
    fields: BTreeMap<String, BTreeSet<String>>,
    external: BTreeSet<String>,
}

fn topology_says(entries: &[Entry]) -> Says {
    let mut says = Says::default();
    let mut note = |service: &str, body: &[Entry]| {
        says.fields
            .entry(service.to_string())
            .or_default()
            .extend(body.iter().map(|e| e.key.name.to_string()));
    };
    for e in entries {
        let EntryValue::Block(body) = &e.value else {
            if e.key.name == "external" {
                says.external.extend(e.label_name().map(str::to_string));
            }
            continue;
        };
        match (&*e.key.name, e.label_name()) {
            ("override", Some(s)) => note(s, body),
            ("external", Some(s)) => {
                says.external.insert(s.to_string());
            }
            ("host", _) => {
                for run in body.iter().filter(|r| r.key.name == "run") {
                    if let (EntryValue::Block(b), Some(s)) = (&run.value, run.label_name()) {
                        note(s, b);
                    }
                }
            }
            _ => {}
        }
    }
    says
}

/// The shape a service is deployed in, which a value reaching it depends on.
fn shape(topo: &TopologyPlan, says: &Says, service: &str) -> String {
    if says.external.contains(service) {
        return "external".to_string();
    }
    instances(topo, service)
        .next()
        .map_or("absent".to_string(), |i| format!("{:?}", i.ha))
}

fn instances<'a>(topo: &'a TopologyPlan, service: &'a str) -> impl Iterator<Item = &'a Instance> {
    topo.hosts
        .iter()
        .flat_map(|h| &h.services)
        .filter(move |i| &*i.name == service)
}

// ---------------------------------------------------------------- comparing

/// One difference between the platforms' meanings of a service.
struct Difference {
    service: String,
    host: String,
    aspect: &'static str,
    compose: String,
    kubernetes: String,
}

struct Pair<'a> {
    stack: String,
    source: &'a str,
    compose: &'a TopologyPlan,
    kubernetes: &'a TopologyPlan,
    compose_says: &'a Says,
    kubernetes_says: &'a Says,
}

impl Pair<'_> {
    /// Whether either topology sets `field` for `service` itself.
    fn overridden(&self, service: &str, field: &[&str]) -> bool {
        [self.compose_says, self.kubernetes_says].iter().any(|s| {
            s.fields
                .get(service)
                .is_some_and(|f| field.iter().any(|x| f.contains(*x)))
        })
    }

    /// Whether an env entry means something else by design in the two: set
    /// by different lines (a topology's own), or reaching a service that is
    /// deployed differently.
    fn env_differs_by_source(&self, c: &Instance, k: &Instance, key: &str) -> bool {
        let span = |i: &Instance| i.env.iter().find(|v| v.key == key).map(|v| v.span);
        let (Some(cs), Some(ks)) = (span(c), span(k)) else {
            return true;
        };
        if cs != ks {
            return true;
        }
        let line = &self.source_text(cs);
        let reached = line
            .split(|ch: char| !(ch.is_ascii_alphanumeric() || ch == '-' || ch == '_' || ch == '.'))
            .filter_map(|w| w.split_once('.').map(|(s, _)| s))
            .filter(|s| *s != "secret" && *s != "self");
        reached.into_iter().any(|s| !self.same_shape(s))
    }

    /// Whether `service` is deployed the same way in both (not external in
    /// one, the same HA mode).
    fn same_shape(&self, service: &str) -> bool {
        shape(self.compose, self.compose_says, service)
            == shape(self.kubernetes, self.kubernetes_says, service)
    }

    /// The line of the entry at `span` (its key's span), from the key on.
    fn source_text(&self, span: stackc::diag::Span) -> String {
        let rest = self.source.get(span.start as usize..).unwrap_or_default();
        rest.lines().next().unwrap_or_default().to_string()
    }
}

fn compare(
    pair: &Pair<'_>,
    service: &str,
    host: &str,
    (c, k): (&Meaning, &Meaning),
    (ci, ki): (&Instance, &Instance),
    (ca, ka): (&Addresses, &Addresses),
    out: &mut Vec<Difference>,
) {
    let mut differ = |aspect: &'static str, a: String, b: String| {
        if a != b {
            out.push(Difference {
                service: service.to_string(),
                host: host.to_string(),
                aspect,
                compose: a,
                kubernetes: b,
            });
        }
    };
    let keys: BTreeSet<&String> = c
        .env
        .keys()
        .chain(k.env.keys())
        .filter(|key| !pair.env_differs_by_source(ci, ki, key))
        .collect();
    for key in &keys {
        let a = c.env.get(*key).map(|v| normalize(v, ca));
        let b = k.env.get(*key).map(|v| normalize(v, ka));
        differ("env", format!("{key}={a:?}"), format!("{key}={b:?}"));
    }
    let compared = |env: &BTreeMap<String, String>| {
        secrets_in(
            &env.iter()
                .filter(|(key, _)| keys.contains(key))
                .map(|(key, v)| (key.clone(), v.clone()))
                .collect(),
        )
    };
    differ(
        "secrets",
        format!("{:?}", compared(&c.env)),
        format!("{:?}", compared(&k.env)),
    );
    if !pair.overridden(service, &["command", "entrypoint"]) {
        differ(
            "entrypoint",
            format!("{:?}", c.entrypoint),
            format!("{:?}", k.entrypoint),
        );
        differ(
            "command",
            format!("{:?}", c.command),
            format!("{:?}", k.command),
        );
    }
    if !pair.overridden(service, &["health"]) {
        // A startup probe counts whole checks: it allows the start period
        // rounded up to one.
        let mut kh = k.health.clone();
        if let (Some(a), Some(b)) = (&c.health, &mut kh) {
            if (a.grace..a.grace + b.interval).contains(&b.grace) {
                b.grace = a.grace;
            }
        }
        differ("health", format!("{:?}", c.health), format!("{kh:?}"));
    }
    if !pair.overridden(service, &["depends_on"]) {
        // Compose orders the services of one host only; the cluster is one.
        // A dependency deployed differently is waited for in its own way.
        let same = |s: &String| pair.same_shape(s);
        let on_compose: BTreeSet<_> = c.after.iter().filter(|(s, _)| same(s)).cloned().collect();
        let on_kubernetes: BTreeSet<_> = k
            .after
            .iter()
            .filter(|(s, _)| same(s) && runs_beside(pair, s, host))
            .cloned()
            .collect();
        differ(
            "start order",
            format!("{on_compose:?}"),
            format!("{on_kubernetes:?}"),
        );
    }
    if !pair.overridden(service, &["resources"]) {
        differ(
            "resources",
            format!("{:?}", c.resources),
            format!("{:?}", k.resources),
        );
    }
    if !c.ports.is_subset(&k.ports) {
        differ("ports", format!("{:?}", c.ports), format!("{:?}", k.ports));
    }
    let on_hosts = instances(pair.compose, service).count();
    if !pair.overridden(service, &["replicas", "autoscale"]) && on_hosts == 1 {
        differ(
            "replicas",
            format!("{:?}", c.replicas),
            format!("{:?}", k.replicas),
        );
    }
}

/// Whether compose runs `service` on `host`, where it can order by it.
fn runs_beside(pair: &Pair<'_>, service: &str, host: &str) -> bool {
    pair.compose
        .hosts
        .iter()
        .any(|h| &*h.name == host && h.services.iter().any(|i| &*i.name == service))
}

/// The pairs of one stack and their differences; how many services compared.
fn stack_differences(
    stack: &str,
    source: &str,
    opts: &stackc::Options,
    dir: &Path,
    out: &mut Vec<String>,
) -> usize {
    let compilation = stackc::compile(source.to_string(), opts);
    if compilation.diagnostics.iter().any(|d| d.is_error()) {
        panic!("{stack}: does not build");
    }
    let analysis = stackc::analyze(
        source.to_string(),
        opts,
        stackc::pipeline::Disposal::KeepTrees,
    );
    let Some(plan) = &analysis.plan else {
        panic!("{stack}: no plan");
    };
    let user_tree = analysis
        .trees
        .iter()
        .find(|(id, _)| *id == analysis.user)
        .map(|(_, t)| t)
        .unwrap_or_else(|| panic!("the user's tree is kept"));
    let says: BTreeMap<String, Says> = user_tree
        .entries
        .iter()
        .filter(|e| e.key.name == "topology")
        .filter_map(|e| match &e.value {
            EntryValue::Block(body) => Some((e.label_name()?.to_string(), topology_says(body))),
            _ => None,
        })
        .collect();
    let is_k8s = |t: &&TopologyPlan| t.platform == stackc::model::Platform::Kubernetes;
    let k8s: Vec<&TopologyPlan> = plan.topologies.iter().filter(is_k8s).collect();
    let compose: Vec<&TopologyPlan> = plan.topologies.iter().filter(|t| !is_k8s(t)).collect();
    if k8s.is_empty() || compose.is_empty() {
        return 0;
    }
    write_artifacts(&compilation, dir);
    let no_says = Says::default();
    let mut compared = 0;
    // Each compose topology through `docker-compose config` once, whatever
    // the number of Kubernetes topologies it is compared with.
    let composed: Vec<_> = compose.iter().map(|ct| compose_meanings(dir, ct)).collect();
    for kt in &k8s {
        let names: BTreeSet<String> = kt
            .hosts
            .iter()
            .flat_map(|h| &h.services)
            .map(|i| i.name.to_string())
            .collect();
        let docs = kubernetes_docs(dir, &kt.name);
        let ka = kubernetes_addresses(&docs, &kt.namespace, &names);
        let km = kubernetes_meanings(&docs, &ka);
        for (ct, (hosts, ca)) in compose.iter().zip(&composed) {
            let pair = Pair {
                stack: stack.to_string(),
                source,
                compose: ct,
                kubernetes: kt,
                compose_says: says.get(&*ct.name).unwrap_or(&no_says),
                kubernetes_says: says.get(&*kt.name).unwrap_or(&no_says),
            };
            let mut diffs = Vec::new();
            for (host, services) in hosts {
                for (name, svc) in services {
                    let (Some(k), Some(ci), Some(ki)) = (
                        km.get(name),
                        instances(ct, name).next(),
                        instances(kt, name).next(),
                    ) else {
                        continue;
                    };
                    // Another HA mode is another deployment: its nodes are
                    // not one container on both.
                    if ci.ha != ki.ha || ci.ha != HaMode::Single {
                        continue;
                    }
                    let c = compose_meaning(svc, services);
                    compare(&pair, name, host, (&c, k), (ci, ki), (ca, &ka), &mut diffs);
                    compared += 1;
                }
            }
            for d in diffs {
                out.push(format!(
                    "{} {} vs {}: {} on {}: {}\n    compose:    {}\n    kubernetes: {}",
                    pair.stack,
                    ct.name,
                    kt.name,
                    d.service,
                    d.host,
                    d.aspect,
                    d.compose,
                    d.kubernetes
                ));
            }
        }
    }
    compared
}

#[test]
fn every_service_means_the_same_on_compose_and_kubernetes() {
    if !require("docker-compose") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut differences = Vec::new();
    let mut compared = BTreeMap::new();
    for path in stack_files("examples")
        .into_iter()
        .chain(stack_files("tests/cases"))
    {
        let dir = tmp.path().join(path.file_stem().unwrap_or_default());
        let n = stack_differences(
            &rel(&path),
            &read(&path),
            &options(&path),
            &dir,
            &mut differences,
        );
        if n > 0 {
            compared.insert(rel(&path), n);
        }
    }
    // Varied generated stacks, each with the same services on Kubernetes.
    let mut generated = 0;
    for (name, text) in crate::generate::stacks(GENERATED, 0x5EED_0F57_AC45_0002) {
        let opts = stackc::Options {
            source_name: format!("{name}.stack"),
            topologies: Vec::new(),
            source_dir_from_compose: "../../..".to_string(),
            source_from_out: format!("../{name}.stack"),
        };
        let checked = stackc::analyze(text.clone(), &opts, stackc::pipeline::Disposal::Free);
        if checked.diagnostics.iter().any(|d| d.is_error()) {
            continue;
        }
        let dir = tmp.path().join(&name);
        generated += stack_differences(&name, &text, &opts, &dir, &mut differences);
    }
    assert!(
        generated >= GENERATED,
        "too few generated services compared: {generated}"
    );
    // The stacks with both kinds of topology are compared, service by service.
    for stack in [
        "examples/neural-dsl.stack",
        "examples/synthstack.stack",
        "tests/cases/tasks.stack",
    ] {
        assert!(
            compared.get(stack).is_some_and(|n| *n >= 3),
            "{stack}: too few services compared: {compared:?}"
        );
    }
    assert!(
        differences.is_empty(),
        "{} differences between the platforms:\n{}",
        differences.len(),
        differences.join("\n")
    );
}
