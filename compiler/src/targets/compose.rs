//! docker compose: one file per host, `out/<topology>/compose/<host>.yml`.
//!
//! Same-host references use the compose service name; other hosts are reached at
//! their address and published port, bound to that address only. Secrets become
//! `${NAME:?...}` interpolations, so `docker compose up` fails fast when one is
//! missing. Ports are always quoted strings.

use indexmap::IndexMap;
use serde::Serialize;

use super::{header, yaml, Artifact};
use crate::base::Name;
use crate::diag::Diagnostics;
use crate::model::{Command, Cpu, Duration, ProbeCheck, Size};
use crate::options::Options;
use crate::plan::{Bind, Condition, HostPlan, Instance, Out, Probe, TopologyPlan};

/// The compose profile of scheduled tasks.
pub const SCHEDULED_PROFILE: &str = "scheduled";

#[derive(Serialize)]
struct ComposeFile<'a> {
    services: Services<'a>,
    #[serde(skip_serializing_if = "IndexMap::is_empty")]
    volumes: IndexMap<String, IndexMap<String, String>>,
}

/// A host's services, each made as it is written: a host may run thousands, and
/// the file is never held as thousands of structs besides its text.
struct Services<'a> {
    host: &'a HostPlan,
    options: &'a Options,
}

impl Serialize for Services<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(self.host.services.len()))?;
        for inst in &self.host.services {
            map.serialize_entry(&inst.name, &service(inst, self.options))?;
        }
        map.end()
    }
}

#[derive(Serialize)]
struct Service {
    #[serde(skip_serializing_if = "Option::is_none")]
    image: Option<Name>,
    /// A scheduled task is in the profile `scheduled`: `up` leaves it, its
    /// timer runs it (`targets::systemd`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    profiles: Vec<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    build: Option<Build>,
    #[serde(skip_serializing_if = "Option::is_none")]
    entrypoint: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    command: Option<Vec<String>>,
    #[serde(skip_serializing_if = "IndexMap::is_empty")]
    environment: IndexMap<Name, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    network_mode: Option<&'static str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    ports: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    volumes: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    devices: Vec<String>,
    #[serde(skip_serializing_if = "IndexMap::is_empty")]
    depends_on: IndexMap<Name, DependsOn>,
    #[serde(skip_serializing_if = "Option::is_none")]
    healthcheck: Option<Healthcheck>,
    restart: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    stop_grace_period: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    deploy: Option<Deploy>,
}

#[derive(Serialize)]
struct Build {
    context: String,
}

#[derive(Serialize)]
struct DependsOn {
    condition: &'static str,
}

#[derive(Serialize)]
struct Healthcheck {
    test: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    interval: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    timeout: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    retries: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    start_period: Option<String>,
}

#[derive(Serialize)]
struct Deploy {
    #[serde(skip_serializing_if = "Option::is_none")]
    replicas: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    resources: Option<DeployResources>,
}

#[derive(Serialize, Default)]
struct DeployResources {
    #[serde(skip_serializing_if = "Option::is_none")]
    limits: Option<Limits>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reservations: Option<Reservations>,
}

#[derive(Serialize)]
struct Limits {
    #[serde(skip_serializing_if = "Option::is_none")]
    cpus: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    memory: Option<String>,
}

#[derive(Serialize)]
struct Reservations {
    #[serde(skip_serializing_if = "Option::is_none")]
    cpus: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    memory: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    devices: Vec<Device>,
}

#[derive(Serialize)]
struct Device {
    driver: &'static str,
    count: u32,
    capabilities: Vec<&'static str>,
}

pub fn generate(
    topo: &TopologyPlan,
    options: &Options,
    out: &mut super::Files<'_>,
    diags: &mut Diagnostics,
) {
    for host in &topo.hosts {
        if host.managed || host.services.is_empty() {
            continue;
        }
        let mut contents = header("#", options, &topo.name);
        contents.reserve(host.services.len() * super::ROOM_PER_SERVICE);
        if let Err(e) = yaml::append(&mut contents, &compose_file(host, options)) {
            diags.push(super::internal(
                topo,
                &format!("compose file of host `{}`", host.name),
                &e,
            ));
            continue;
        }
        out.push(Artifact {
            path: format!("{}/compose/{}.yml", topo.name, host.name),
            contents,
        });
    }
}

fn compose_file<'a>(host: &'a HostPlan, options: &'a Options) -> ComposeFile<'a> {
    let mut volumes = IndexMap::new();
    for inst in &host.services {
        for v in &inst.storage.volumes {
            volumes.insert(v.name.clone(), IndexMap::new());
        }
    }
    ComposeFile {
        services: Services { host, options },
        volumes,
    }
}

/// A value for compose's `environment`: `$` doubled, secrets interpolated.
pub fn compose_value(value: &[Out]) -> String {
    let mut s = String::new();
    for piece in value {
        match piece {
            Out::Text(t) => s.push_str(&t.replace('$', "$$")),
            Out::Secret(secret) if secret.optional => {
                s.push_str(&format!("${{{}:-}}", secret.env));
            }
            Out::Secret(secret) => {
                s.push_str(&format!(
                    "${{{}:?secret {} is not set}}",
                    secret.env, secret.name
                ));
            }
        }
    }
    s
}

fn relative(path: &str, options: &Options) -> String {
    if path.starts_with('/') {
        return path.to_string();
    }
    let trimmed = path.strip_prefix("./").unwrap_or(path);
    let base = options.source_dir_from_compose.trim_end_matches('/');
    if trimmed.is_empty() || trimmed == "." {
        base.to_string()
    } else {
        format!("{base}/{trimmed}")
    }
}

fn service(inst: &Instance, options: &Options) -> Service {
    Service {
        image: inst.image.clone(),
        profiles: if inst.lifecycle.schedule.is_some() {
            vec![SCHEDULED_PROFILE]
        } else {
            Vec::new()
        },
        build: inst.program.build.as_ref().map(|b| Build {
            context: match b.strip_prefix("@out/") {
                // A generated build context, beside compose/.
                Some(generated) => format!("../{generated}"),
                None => relative(b, options),
            },
        }),
        entrypoint: inst.program.entrypoint.as_deref().map(literal_words),
        command: inst.program.command.as_deref().map(literal_words),
        environment: inst
            .env
            .iter()
            .map(|v| (v.key.clone(), compose_value(&v.value)))
            .collect(),
        network_mode: inst.host_network.then_some("host"),
        ports: ports(inst),
        volumes: volumes(inst, options),
        devices: inst.program.devices.clone(),
        depends_on: inst
            .depends_on
            .iter()
            .map(|(name, cond)| {
                (
                    name.clone(),
                    DependsOn {
                        condition: match cond {
                            Condition::Healthy => "service_healthy",
                            Condition::Started => "service_started",
                            Condition::Completed => "service_completed_successfully",
                        },
                    },
                )
            })
            .collect(),
        healthcheck: inst.ready_check().map(healthcheck),
        restart: inst.restart.as_compose(),
        stop_grace_period: inst.lifecycle.stop_grace_period.map(duration),
        deploy: deploy(inst),
    }
}

/// The published ports, each on its binding address (IPv6 in brackets).
fn ports(inst: &Instance) -> Vec<String> {
    let mut ports = Vec::new();
    // In the host's network a container's ports are the host's: none to publish.
    for port in inst.ports.iter().filter(|_| !inst.host_network) {
        let proto = match port.protocol {
            crate::model::Protocol::Udp => "/udp",
            _ => "",
        };
        for bind in &port.binds {
            ports.push(match bind {
                Bind::All => format!("{}:{}{proto}", port.host, port.container),
                Bind::Address(a) if a.contains(':') => {
                    format!("[{a}]:{}:{}{proto}", port.host, port.container)
                }
                Bind::Address(a) => format!("{a}:{}:{}{proto}", port.host, port.container),
            });
        }
    }
    ports
}

/// The named volumes and the mounts (generated files beside compose/).
fn volumes(inst: &Instance, options: &Options) -> Vec<String> {
    let mut volumes: Vec<String> = inst
        .storage
        .volumes
        .iter()
        .map(|v| format!("{}:{}", v.name, v.path))
        .collect();
    volumes.extend(inst.storage.mounts.iter().map(|m| {
        let ro = if m.read_only { ":ro" } else { "" };
        let source = if m.generated {
            // Generated files sit beside compose/ in the topology's directory.
            format!("../{}", m.source)
        } else {
            relative(&m.source, options)
        };
        format!("{source}:{}{ro}", m.target)
    }));
    volumes
}

/// Replicas and resources, when any differs from the default.
fn deploy(inst: &Instance) -> Option<Deploy> {
    let r = &inst.resources;
    let limits = (r.cpu_limit.is_some() || r.memory_limit.is_some()).then(|| Limits {
        cpus: r.cpu_limit.map(cpus),
        memory: r.memory_limit.map(memory),
    });
    let reservations = (r.cpu.is_some() || r.memory.is_some() || r.gpu > 0).then(|| Reservations {
        cpus: r.cpu.map(cpus),
        memory: r.memory.map(memory),
        devices: if r.gpu > 0 {
            vec![Device {
                driver: "nvidia",
                count: r.gpu,
                capabilities: vec!["gpu"],
            }]
        } else {
            Vec::new()
        },
    });
    let resources = (limits.is_some() || reservations.is_some()).then_some(DeployResources {
        limits,
        reservations,
    });
    (inst.replicas != 1 || resources.is_some()).then_some(Deploy {
        replicas: (inst.replicas != 1).then_some(inst.replicas),
        resources,
    })
}

/// The readiness check as compose runs it.
fn healthcheck(p: &Probe) -> Healthcheck {
    Healthcheck {
        test: match &p.check {
            ProbeCheck::Http(path) => {
                // A query's `&` and `?` are the path's, not the shell's.
                let url = crate::grammar::shell_word(&format!("http://localhost:{}{path}", p.port));
                vec![
                    "CMD-SHELL".into(),
                    format!("curl -fsS -o /dev/null {url} || wget -q -O /dev/null {url} || exit 1"),
                ]
            }
            ProbeCheck::Tcp => vec![
                "CMD-SHELL".into(),
                format!(
                    "nc -z localhost {0} || bash -c ':> /dev/tcp/127.0.0.1/{0}' || exit 1",
                    p.port
                ),
            ],
            ProbeCheck::Command(Command::Exec(args)) => {
                let mut v = vec!["CMD".to_string()];
                v.extend(args.iter().map(|a| literal(a)));
                v
            }
            ProbeCheck::Command(Command::Shell(s)) => {
                vec!["CMD-SHELL".into(), literal(s)]
            }
        },
        interval: p.interval.map(duration),
        timeout: p.timeout.map(duration),
        retries: p.retries,
        start_period: p.start_period.map(duration),
    }
}

/// A literal string as compose reads it: compose interpolates `$VAR` and
/// `${VAR}` everywhere in a file, and `$$` is a literal `$`.
fn literal(s: &str) -> String {
    s.replace('$', "$$")
}

fn literal_words(words: &[String]) -> Vec<String> {
    words.iter().map(|w| literal(w)).collect()
}

/// A Go duration as compose reads it: `500ms`, `30s`, `5m`.
pub fn duration(d: Duration) -> String {
    let ms = d.0;
    if ms.is_multiple_of(60_000) && ms >= 60_000 {
        format!("{}m", ms / 60_000)
    } else if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

/// Compose's `cpus`: a decimal number of CPUs.
pub fn cpus(c: Cpu) -> String {
    let whole = c.0 / 1000;
    let frac = c.0 % 1000;
    if frac == 0 {
        whole.to_string()
    } else {
        format!("{whole}.{}", format!("{frac:03}").trim_end_matches('0'))
    }
}

/// Compose's memory: docker units are binary (`g` = GiB); exact bytes otherwise.
pub fn memory(s: Size) -> String {
    const K: u64 = 1024;
    let b = s.0;
    if b > 0 && b.is_multiple_of(K * K * K) {
        format!("{}g", b / (K * K * K))
    } else if b > 0 && b.is_multiple_of(K * K) {
        format!("{}m", b / (K * K))
    } else if b > 0 && b.is_multiple_of(K) {
        format!("{}k", b / K)
    } else {
        format!("{b}b")
    }
}
