//! A service's workload: its Deployment or StatefulSet, Service, autoscaler,
//! disruption budget and volume claims, and the pod they run.

use super::*;

impl Cx<'_> {
    /// A service's objects: its workload, its Services, its autoscaler and
    /// disruption budget (an HA mode run by an operator or by Sentinel has its
    /// own).
    pub(super) fn service_objects(&self, inst: &Instance) -> Documents {
        let mut docs = if inst.ha == HaMode::CloudNativePg {
            self.cnpg_cluster(inst)
        } else if let Some(s) = &inst.replication.sentinel {
            self.redis_sentinel(inst, s)
        } else if inst.role == Role::Task {
            self.task_objects(inst)
        } else {
            let mut docs = Documents::default();
            let stateful = inst.role == Role::Stateful;
            self.waiting_account(inst, &mut docs);
            self.workload(inst, stateful, &mut docs);
            self.services(inst, stateful, &mut docs);
            self.scaling(inst, &mut docs);
            docs
        };
        self.pod_monitor(inst, &mut docs);
        docs
    }

    /// A StatefulSet with its volume claims, or a Deployment with its
    /// PersistentVolumeClaims.
    fn workload(&self, inst: &Instance, stateful: bool, docs: &mut Documents) {
        let replicas = (inst.scaling.autoscale.is_none()).then_some(inst.replicas);
        let template = PodTemplate {
            metadata: TemplateMetadata {
                labels: self.labels(inst),
                annotations: self.scrape_annotations(inst),
            },
            spec: self.pod_spec(inst, stateful),
        };
        let selector = Selector {
            match_labels: self.selector(inst),
        };
        if stateful {
            docs.push(&Object {
                api_version: "apps/v1",
                kind: "StatefulSet",
                metadata: self.metadata(inst.name.to_string(), inst),
                spec: Some(StatefulSetSpec {
                    replicas,
                    service_name: headless_name(&inst.name),
                    selector,
                    template,
                    volume_claim_templates: inst
                        .storage
                        .volumes
                        .iter()
                        .map(claim_template)
                        .collect(),
                }),
            });
        } else {
            self.volume_claims(inst, docs);
            docs.push(&Object {
                api_version: "apps/v1",
                kind: "Deployment",
                metadata: self.metadata(inst.name.to_string(), inst),
                spec: Some(DeploymentSpec {
                    replicas,
                    selector,
                    strategy: Strategy {
                        kind: "RollingUpdate",
                        rolling_update: RollingUpdate {
                            max_surge: inst.update.max_surge,
                            max_unavailable: inst.update.max_unavailable,
                        },
                    },
                    template,
                }),
            });
        }
    }

    /// A PersistentVolumeClaim per volume, for a workload without claim
    /// templates (a Deployment, a Job).
    pub(super) fn volume_claims(&self, inst: &Instance, docs: &mut Documents) {
        for v in &inst.storage.volumes {
            docs.push(&Object {
                api_version: "v1",
                kind: "PersistentVolumeClaim",
                metadata: self.metadata(v.name.clone(), inst),
                spec: Some(ClaimObjectSpec {
                    access_modes: vec!["ReadWriteOnce"],
                    resources: storage(v.size),
                }),
            });
        }
    }

    /// The Service in-cluster references use, a load balancer for public
    /// ports without an Ingress, and a stateful set's headless Service.
    fn services(&self, inst: &Instance, stateful: bool, docs: &mut Documents) {
        if !inst.ports.is_empty() {
            // In-cluster references use `<name>`, with every port.
            docs.push(&Object {
                api_version: "v1",
                kind: "Service",
                metadata: self.metadata(inst.name.to_string(), inst),
                spec: Some(ServiceSpec {
                    kind: Some("ClusterIP"),
                    publish_not_ready_addresses: false,
                    selector: self.selector(inst),
                    ports: service_ports(inst),
                    ..Default::default()
                }),
            });
            // Public ports without a public URL (an Ingress) get a load balancer.
            if !inst.public.is_empty() && inst.public_url.is_none() {
                docs.push(&Object {
                    api_version: "v1",
                    kind: "Service",
                    metadata: self.metadata(
                        crate::plan::kubernetes_names::public_service(&inst.name),
                        inst,
                    ),
                    spec: Some(ServiceSpec {
                        kind: Some("LoadBalancer"),
                        publish_not_ready_addresses: false,
                        selector: self.selector(inst),
                        ports: service_ports(inst)
                            .into_iter()
                            .filter(|p| inst.public.contains(&p.name))
                            .collect(),
                        ..Default::default()
                    }),
                });
            }
            if stateful {
                docs.push(&Object {
                    api_version: "v1",
                    kind: "Service",
                    metadata: self.metadata(headless_name(&inst.name), inst),
                    spec: Some(ServiceSpec {
                        cluster_ip: Some("None"),
                        publish_not_ready_addresses: false,
                        selector: self.selector(inst),
                        ports: service_ports(inst),
                        ..Default::default()
                    }),
                });
            }
        }
    }

    /// The autoscaler and the disruption budget.
    fn scaling(&self, inst: &Instance, docs: &mut Documents) {
        if let Some(a) = &inst.scaling.autoscale {
            docs.push(&Object {
                api_version: "autoscaling/v2",
                kind: "HorizontalPodAutoscaler",
                metadata: self.metadata(inst.name.to_string(), inst),
                spec: Some(hpa(inst, a)),
            });
        }
        if inst.min_replicas() > 1 {
            let (min_available, max_unavailable) = match inst.scaling.min_available {
                Some(m) => (Some(m), None),
                None => (None, Some(1)),
            };
            docs.push(&Object {
                api_version: "policy/v1",
                kind: "PodDisruptionBudget",
                metadata: self.metadata(inst.name.to_string(), inst),
                spec: Some(PdbSpec {
                    min_available,
                    max_unavailable,
                    selector: Selector {
                        match_labels: self.selector(inst),
                    },
                }),
            });
        }
    }

    pub(super) fn pod_spec(&self, inst: &Instance, stateful: bool) -> PodSpec {
        let replicated =
            inst.replicas > 1 || inst.scaling.autoscale.as_ref().is_some_and(|a| a.max > 1);
        let resources = resources(inst);
        let start_period = inst
            .probes
            .startup
            .is_none()
            .then(|| inst.ready_check().and_then(start_period_probe))
            .flatten();
        // The start period is the startup probe's, not a delay of the others.
        let delayed = start_period.is_none();
        let container = Container {
            name: inst.name.to_string(),
            image: inst.image.clone(),
            // Kubernetes' `command` is the image's ENTRYPOINT, `args` its CMD.
            command: inst.program.entrypoint.as_deref().map(literal_words),
            args: inst.program.command.as_deref().map(literal_words),
            ports: inst
                .ports
                .iter()
                .map(|p| ContainerPort {
                    name: p.name.to_string(),
                    container_port: p.container,
                    protocol: protocol(p.protocol),
                })
                .collect(),
            env: self.env(inst),
            resources,
            liveness_probe: inst.probes.liveness.as_deref().map(|p| probe(p, delayed)),
            readiness_probe: inst.probes.readiness.as_deref().map(|p| probe(p, delayed)),
            startup_probe: inst
                .probes
                .startup
                .as_deref()
                .map(|p| probe(p, true))
                .or(start_period),
            lifecycle: inst.lifecycle.pre_stop.map(|d| Lifecycle {
                pre_stop: Handler {
                    exec: Exec {
                        command: vec![
                            "/bin/sh".into(),
                            "-c".into(),
                            format!("sleep {}", seconds(d)),
                        ],
                    },
                },
            }),
            volume_mounts: inst
                .storage
                .volumes
                .iter()
                .map(|v| VolumeMount {
                    name: v.name.clone(),
                    mount_path: v.path.clone(),
                    read_only: false,
                })
                .collect(),
        };
        let waits = self.task_waits(inst);
        PodSpec {
            restart_policy: (inst.role == Role::Task).then_some(match inst.restart {
                crate::model::Restart::OnFailure => "OnFailure",
                _ => "Never",
            }),
            service_account_name: waits.account.clone(),
            automount_service_account_token: waits.account.as_ref().map(|_| false),
            affinity: replicated.then(|| Affinity {
                pod_anti_affinity: PodAntiAffinity {
                    preferred: vec![WeightedTerm {
                        weight: 100,
                        pod_affinity_term: AffinityTerm {
                            label_selector: Selector {
                                match_labels: self.selector(inst),
                            },
                            topology_key: "kubernetes.io/hostname",
                        },
                    }],
                },
            }),
            termination_grace_period_seconds: inst
                .lifecycle
                .stop_grace_period
                .map(seconds)
                .or_else(|| inst.lifecycle.pre_stop.map(|d| seconds(d) + 30)),
            // Its dependencies first: a task it waits for waits for them too.
            init_containers: self
                .dependency_waits(inst)
                .chain(waits.containers)
                .collect(),
            containers: vec![container],
            // A stateful set's volumes are its claim templates.
            volumes: (if stateful {
                &[][..]
            } else {
                &inst.storage.volumes[..]
            })
            .iter()
            .map(|v| PodVolume {
                name: v.name.clone(),
                persistent_volume_claim: Some(ClaimRef {
                    claim_name: v.name.clone(),
                }),
                ..Default::default()
            })
            .chain(waits.volume)
            .collect(),
        }
    }

    /// The container's env. A value that embeds a secret reads it from a variable
    /// defined earlier in the list: the secret's own variable when the service
    /// already has it, else a helper `STACKC_<NAME>` placed first.
    pub(super) fn env(&self, inst: &Instance) -> Vec<EnvVar> {
        let secret_ref = |env: &str, optional: bool| ValueFrom {
            secret_key_ref: Some(SecretKeyRef {
                name: self.secret_name.clone(),
                key: env.to_string(),
                optional,
            }),
            ..Default::default()
        };
        // Variables that are exactly one secret: usable by later `$(VAR)`s.
        let direct: IndexMap<&str, &str> = inst
            .env
            .iter()
            .filter_map(|v| match v.value.as_slice() {
                [Out::Secret(s)] => Some((s.env.as_str(), v.key.as_str())),
                _ => None,
            })
            .collect();
        let mut helpers: IndexMap<String, (String, bool)> = IndexMap::new();
        let mut hoisted: Vec<&str> = Vec::new();
        for var in &inst.env {
            if var.value.len() < 2 {
                continue;
            }
            for piece in &var.value {
                if let Out::Secret(s) = piece {
                    let (env, optional) = (&s.env, &s.optional);
                    match direct.get(env.as_str()) {
                        Some(key) => {
                            if !hoisted.contains(key) {
                                hoisted.push(key);
                            }
                        }
                        None => {
                            helpers.insert(
                                format!("{}{env}", crate::check::RESERVED_ENV_PREFIX),
                                (env.to_string(), *optional),
                            );
                        }
                    }
                }
            }
        }
        let mut out: Vec<EnvVar> = helpers
            .iter()
            .map(|(name, (env, optional))| EnvVar {
                name: name.clone(),
                value_from: Some(secret_ref(env, *optional)),
                ..Default::default()
            })
            .collect();
        let mut ordered: Vec<&plan::EnvVar> = inst
            .env
            .iter()
            .filter(|v| hoisted.contains(&v.key.as_str()))
            .collect();
        ordered.extend(
            inst.env
                .iter()
                .filter(|v| !hoisted.contains(&v.key.as_str())),
        );
        for var in ordered {
            out.push(match var.value.as_slice() {
                [Out::Secret(s)] => EnvVar {
                    name: var.key.to_string(),
                    value_from: Some(secret_ref(&s.env, s.optional)),
                    ..Default::default()
                },
                pieces => EnvVar {
                    name: var.key.to_string(),
                    value: Some(
                        pieces
                            .iter()
                            .map(|p| match p {
                                Out::Text(t) => expansion_literal(t),
                                Out::Secret(s) => {
                                    let env = &s.env;
                                    let var = direct.get(env.as_str()).map_or_else(
                                        || format!("{}{env}", crate::check::RESERVED_ENV_PREFIX),
                                        |k| k.to_string(),
                                    );
                                    format!("$({var})")
                                }
                            })
                            .collect(),
                    ),
                    ..Default::default()
                },
            });
        }
        out
    }
}

/// Requests and limits; GPUs as the `nvidia.com/gpu` limit.
pub(super) fn resources(inst: &Instance) -> Option<Resources> {
    let r = &inst.resources;
    let mut requests = IndexMap::new();
    let mut limits = IndexMap::new();
    if let Some(c) = r.cpu {
        requests.insert("cpu", cpu(c));
    }
    if let Some(m) = r.memory {
        requests.insert("memory", memory(m));
    }
    if let Some(c) = r.cpu_limit {
        limits.insert("cpu", cpu(c));
    }
    if let Some(m) = r.memory_limit {
        limits.insert("memory", memory(m));
    }
    if r.gpu > 0 {
        limits.insert("nvidia.com/gpu", r.gpu.to_string());
    }
    (!requests.is_empty() || !limits.is_empty()).then_some(Resources { requests, limits })
}

/// Every port of the service, by name, on the container's port number.
fn service_ports(inst: &Instance) -> Vec<ServicePort> {
    inst.ports
        .iter()
        .map(|p| ServicePort {
            name: p.name.to_string(),
            port: p.container,
            target_port: p.name.to_string(),
            protocol: protocol(p.protocol),
        })
        .collect()
}

fn hpa(inst: &Instance, a: &plan::Autoscale) -> HpaSpec {
    let metric = |name: &'static str, pct: u32| Metric {
        kind: "Resource",
        resource: Some(ResourceMetric {
            name,
            target: MetricTarget {
                kind: "Utilization",
                average_utilization: pct,
            },
        }),
        pods: None,
        external: None,
    };
    let rules = |p: &plan::ScalePolicy| {
        let period = p.period.map_or(60, seconds);
        let mut policies = Vec::new();
        if let Some(v) = p.percent {
            policies.push(ScalingPolicy {
                kind: "Percent",
                value: v,
                period_seconds: period,
            });
        }
        if let Some(v) = p.pods {
            policies.push(ScalingPolicy {
                kind: "Pods",
                value: v,
                period_seconds: period,
            });
        }
        ScalingRules {
            stabilization_window_seconds: p.window.map(|d| d.0 / 1000),
            policies,
        }
    };
    let behavior = (a.scale_up.is_some() || a.scale_down.is_some()).then(|| Behavior {
        scale_up: a.scale_up.as_ref().map(rules),
        scale_down: a.scale_down.as_ref().map(rules),
    });
    let mut metrics = Vec::new();
    if let Some(c) = a.cpu {
        metrics.push(metric("cpu", c));
    }
    if let Some(m) = a.memory {
        metrics.push(metric("memory", m));
    }
    metrics.extend(a.metrics.iter().map(scale_metric));
    HpaSpec {
        scale_target_ref: TargetRef {
            api_version: "apps/v1",
            kind: if inst.role == Role::Stateful {
                "StatefulSet"
            } else {
                "Deployment"
            },
            name: inst.name.to_string(),
        },
        min_replicas: a.min,
        max_replicas: a.max,
        metrics,
        behavior,
    }
}

/// A probe; `delayed`: its first check waits for its `start_period`.
fn probe(p: &plan::Probe, delayed: bool) -> Probe {
    let port = p.port_name.as_deref().unwrap_or_default().to_string();
    let (http_get, tcp_socket, exec) = match &p.check {
        ProbeCheck::Http(path) => (
            Some(HttpGet {
                path: path.clone(),
                port,
            }),
            None,
            None,
        ),
        ProbeCheck::Tcp => (None, Some(TcpSocket { port }), None),
        ProbeCheck::Command(c) => (
            None,
            None,
            Some(Exec {
                command: command(c),
            }),
        ),
    };
    Probe {
        http_get,
        tcp_socket,
        exec,
        initial_delay_seconds: p.start_period.filter(|_| delayed).map(|d| d.0 / 1000),
        period_seconds: Some(seconds(p.interval())),
        timeout_seconds: Some(seconds(p.timeout())),
        failure_threshold: Some(p.retries()),
    }
}

/// The startup probe that means the ready check's `start_period` as compose
/// does: failures during the period do not count, but the first success does.
/// An initial delay would hold readiness back for the whole period; this
/// probe checks from the start and allows the period's checks and then the
/// check's retries, while the other probes wait for it to pass.
fn start_period_probe(p: &plan::Probe) -> Option<Probe> {
    let period = seconds(p.start_period.filter(|d| d.0 > 0)?);
    let interval = seconds(p.interval());
    let mut startup = probe(p, false);
    startup.failure_threshold =
        Some(u32::try_from(period.div_ceil(interval)).unwrap_or(u32::MAX) + p.retries());
    Some(startup)
}

/// A literal string in a field where Kubernetes expands `$(VAR)` (a container's
/// env values, `command` and `args`): there `$$` is a literal `$`, so every `$`
/// is doubled and the container sees the string exactly.
fn expansion_literal(s: &str) -> String {
    s.replace('$', "$$")
}

fn literal_words(words: &[String]) -> Vec<String> {
    words.iter().map(|w| expansion_literal(w)).collect()
}

/// A probe's command: Kubernetes expands no variables there.
fn command(c: &Command) -> Vec<String> {
    match c {
        Command::Exec(v) => v.clone(),
        Command::Shell(s) => vec!["/bin/sh".into(), "-c".into(), s.clone()],
    }
}

/// Whole seconds, at least 1 (Kubernetes counts probe periods in seconds).
fn seconds(d: Duration) -> u64 {
    d.0.div_ceil(1000).max(1)
}

fn protocol(p: Protocol) -> &'static str {
    match p {
        Protocol::Udp => "UDP",
        _ => "TCP",
    }
}

fn storage(size: Size) -> ClaimResources {
    ClaimResources {
        requests: IndexMap::from([("storage", memory(size))]),
    }
}

/// A StatefulSet's volume claim for one of its volumes.
pub(super) fn claim_template(v: &plan::Volume) -> ClaimTemplate {
    ClaimTemplate {
        metadata: NameOnly {
            name: v.name.clone(),
        },
        spec: ClaimSpec {
            access_modes: vec!["ReadWriteOnce"],
            resources: storage(v.size),
        },
    }
}

/// A pod metric (the custom metrics API) or an external one, with its target.
fn scale_metric(m: &plan::ScaleMetric) -> Metric {
    use crate::model::ScaleTarget;
    let target = match &m.target {
        ScaleTarget::PerPod(q) => ValueTarget {
            kind: "AverageValue",
            average_value: Some(q.clone()),
            value: None,
        },
        ScaleTarget::Total(q) => ValueTarget {
            kind: "Value",
            average_value: None,
            value: Some(q.clone()),
        },
    };
    let named = NamedMetric {
        metric: MetricIdentifier {
            name: m.name.clone(),
            selector: (!m.labels.is_empty()).then(|| Selector {
                match_labels: m.labels.iter().cloned().collect(),
            }),
        },
        target,
    };
    let (pods, external) = if m.external {
        (None, Some(named))
    } else {
        (Some(named), None)
    };
    Metric {
        kind: if m.external { "External" } else { "Pods" },
        resource: None,
        pods,
        external,
    }
}
