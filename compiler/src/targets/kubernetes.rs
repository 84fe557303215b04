//! Kubernetes: `out/<topology>/k8s/`, for topologies with `platform = kubernetes`.
//!
//! - `00-namespace.yaml`: the Namespace (applied first by `kubectl apply -f k8s/`);
//! - `<service>.yaml`: the workload (a Deployment for stateless services, a
//!   StatefulSet with a headless Service and volume claims for stateful ones), its
//!   Service, and its HorizontalPodAutoscaler, PodDisruptionBudget and volume claims;
//! - `ingress.yaml`: one Ingress for every service with a public URL;
//! - `secrets.sh`: the secret keys the topology needs and the command that creates
//!   the Secret from environment variables. No secret value is ever written.
//!
//! References resolve to Service names in the namespace. A value that embeds a
//! secret is built with `$(VAR)` expansion from a variable defined earlier in the
//! same container's env.

use indexmap::IndexMap;

use super::k8s_types::*;
use super::{header, yaml, Artifact};
use crate::base::{IndexSet, Name};
use crate::diag::Diagnostics;
use crate::model::{Command, Cpu, Duration, HaMode, ProbeCheck, Protocol, Role, Size};
use crate::options::Options;
use crate::plan::{self, Instance, Out, Plan, RoutedPath, SentinelPlan, TopologyPlan};

/// What one topology's objects share.
struct Cx<'a> {
    plan: &'a Plan,
    topo: &'a TopologyPlan,
    options: &'a Options,
    secret_name: String,
}

/// The image of a Redis master endpoint.
const REDIS_PROXY_IMAGE: &str = "haproxy:2.8-alpine";

pub fn generate(
    plan: &Plan,
    topo: &TopologyPlan,
    options: &Options,
    out: &mut super::Files<'_>,
    diags: &mut Diagnostics,
) {
    let cx = Cx {
        plan,
        topo,
        options,
        secret_name: format!("{}-secrets", plan.stack),
    };
    let mut write = |file: &str, docs: Vec<Result<String, String>>, out: &mut super::Files<'_>| {
        let mut body = header("#", options, &topo.name);
        for (i, doc) in docs.into_iter().enumerate() {
            match doc {
                Ok(text) => {
                    if i > 0 {
                        body.push_str("---\n");
                    }
                    body.push_str(&text);
                }
                Err(e) => {
                    diags.push(super::internal(
                        topo,
                        &format!("Kubernetes file {file}"),
                        &e,
                    ));
                    return;
                }
            }
        }
        out.push(Artifact {
            path: format!("{}/k8s/{file}", topo.name),
            contents: body,
        });
    };
    let namespace = Object::<()> {
        api_version: "v1",
        kind: "Namespace",
        metadata: Metadata {
            name: topo.namespace.clone(),
            labels: cx.part_of(),
            ..Default::default()
        },
        ..Default::default()
    };
    write("00-namespace.yaml", vec![yaml::to_string(&namespace)], out);
    let instances: Vec<&Instance> = topo.hosts.iter().flat_map(|h| &h.services).collect();
    for inst in &instances {
        write(
            &format!("{}.yaml", inst.name),
            cx.service_objects(inst),
            out,
        );
    }
    if let Some(ingress) = cx.ingress(&instances) {
        write("ingress.yaml", vec![yaml::to_string(&ingress)], out);
    }
    out.push(Artifact {
        path: format!("{}/k8s/secrets.sh", topo.name),
        contents: cx.secrets_script(&instances, options),
    });
}

impl Cx<'_> {
    fn part_of(&self) -> Labels {
        IndexMap::from([
            ("app.kubernetes.io/part-of".into(), self.plan.stack.clone()),
            ("app.kubernetes.io/managed-by".into(), "stackc".into()),
        ])
    }

    /// The labels that select a service's pods.
    fn selector(&self, inst: &Instance) -> Labels {
        self.named_selector(&inst.name)
    }

    /// The labels that select the pods of one workload (a service may have several).
    fn named_selector(&self, name: &str) -> Labels {
        IndexMap::from([
            ("app.kubernetes.io/name".into(), name.to_string()),
            ("app.kubernetes.io/instance".into(), self.plan.stack.clone()),
        ])
    }

    fn labels(&self, inst: &Instance) -> Labels {
        let component = inst.kind.clone().unwrap_or_else(|| match inst.role {
            Role::Stateful => "stateful".into(),
            Role::Stateless => "stateless".into(),
        });
        self.named_labels(&inst.name, &component)
    }

    fn named_labels(&self, name: &str, component: &str) -> Labels {
        let mut labels = self.named_selector(name);
        labels.insert("app.kubernetes.io/component".into(), component.to_string());
        labels.extend(self.part_of());
        labels
    }

    fn metadata(&self, name: String, inst: &Instance) -> Metadata {
        Metadata {
            name,
            namespace: Some(self.topo.namespace.clone()),
            labels: self.labels(inst),
        }
    }

    /// A CloudNativePG Cluster in place of the StatefulSet and Services: the
    /// operator creates the pods, the volume claims and the `-rw`/`-ro` Services.
    fn cnpg_cluster(&self, inst: &Instance) -> Vec<Result<String, String>> {
        let text = |param: &str| {
            literal(
                inst.rare
                    .params
                    .get(param)
                    .map_or(&[][..], |v| v.as_slice()),
            )
            .unwrap_or_default()
        };
        let size = inst.rare.volumes.first().map_or(Size(1 << 30), |v| v.size);
        let cluster = Object {
            api_version: "postgresql.cnpg.io/v1",
            kind: "Cluster",
            metadata: self.metadata(inst.name.to_string(), inst),
            spec: Some(CnpgClusterSpec {
                instances: inst.replicas.max(1),
                bootstrap: CnpgBootstrap {
                    initdb: CnpgInitDb {
                        database: text("database"),
                        owner: text("user"),
                        secret: NameOnly {
                            name: cnpg_secret(&inst.name),
                        },
                    },
                },
                storage: CnpgStorage { size: memory(size) },
                resources: resources(inst),
                affinity: CnpgAffinity {
                    enable_pod_anti_affinity: true,
                    topology_key: "kubernetes.io/hostname",
                },
            }),
        };
        vec![yaml::to_string(&cluster)]
    }

    /// Redis with Sentinel: the Redis StatefulSet, the sentinels' StatefulSet (each
    /// sentinel's config written into an emptyDir at start), and the master
    /// endpoint (HAProxy) behind the Service clients use.
    fn redis_sentinel(&self, inst: &Instance, s: &SentinelPlan) -> Vec<Result<String, String>> {
        use super::redis_sentinel::{files, headless, proxy_name, sentinel_name};
        let ns = &self.topo.namespace;
        let header = header("#", self.options, &self.topo.name);
        let files = match files(inst, s, ns, &header) {
            Ok(f) => f,
            Err(e) => return vec![Err(e)],
        };
        let image = inst.image.clone();
        let config = crate::plan::kubernetes_names::config(&inst.name);
        let sentinel = sentinel_name(&inst.name);
        let proxy = proxy_name(&inst.name);
        let component = |c: &str| format!("{}-{c}", inst.kind.as_deref().unwrap_or("redis"));
        let meta = |name: &str, c: &str| Metadata {
            name: name.to_string(),
            namespace: Some(ns.clone()),
            labels: self.named_labels(name, &component(c)),
        };
        let pod_name = EnvVar {
            name: "POD_NAME".into(),
            value_from: Some(ValueFrom {
                field_ref: Some(FieldRef {
                    field_path: "metadata.name",
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let mount = |name: &str, path: &str| VolumeMount {
            name: name.into(),
            mount_path: path.into(),
        };
        let config_volume = PodVolume {
            name: "config".into(),
            config_map: Some(ConfigMapRef {
                name: config.clone(),
            }),
            ..Default::default()
        };
        let port = |name: &str, n: u16| ContainerPort {
            name: name.into(),
            container_port: n,
            protocol: "TCP",
        };
        let service_port = |name: &str, n: u16| ServicePort {
            name: name.into(),
            port: n,
            target_port: name.into(),
            protocol: "TCP",
        };
        let exec = |args: &[&str]| Probe {
            exec: Some(Exec {
                command: args.iter().map(|a| a.to_string()).collect(),
            }),
            period_seconds: Some(5),
            timeout_seconds: Some(3),
            failure_threshold: Some(3),
            ..Default::default()
        };
        let anti_affinity = |name: &str| {
            Some(Affinity {
                pod_anti_affinity: PodAntiAffinity {
                    preferred: vec![WeightedTerm {
                        weight: 100,
                        pod_affinity_term: AffinityTerm {
                            label_selector: Selector {
                                match_labels: self.named_selector(name),
                            },
                            topology_key: "kubernetes.io/hostname",
                        },
                    }],
                },
            })
        };
        let headless_service = |name: &str, ports: Vec<ServicePort>, c: &str| Object {
            api_version: "v1",
            kind: "Service",
            metadata: meta(&headless(name), c),
            spec: Some(ServiceSpec {
                cluster_ip: Some("None"),
                publish_not_ready_addresses: true,
                selector: self.named_selector(name),
                ports,
                ..Default::default()
            }),
        };
        let pdb = |name: &str, c: &str| Object {
            api_version: "policy/v1",
            kind: "PodDisruptionBudget",
            metadata: meta(name, c),
            spec: Some(PdbSpec {
                max_unavailable: Some(1),
                selector: Selector {
                    match_labels: self.named_selector(name),
                },
                ..Default::default()
            }),
        };
        let mut docs = vec![yaml::to_string(&ConfigMap {
            api_version: "v1",
            kind: "ConfigMap",
            metadata: meta(&config, "config"),
            data: IndexMap::from([
                ("redis.conf".to_string(), files.redis_conf),
                ("start-redis.sh".to_string(), files.start_redis),
                ("start-sentinel.sh".to_string(), files.start_sentinel),
                ("haproxy.cfg".to_string(), files.haproxy_cfg),
            ]),
        })];
        // The Redis nodes.
        let data = inst.rare.volumes.first();
        let mut redis_mounts = vec![mount("config", "/config")];
        if let Some(v) = data {
            redis_mounts.push(mount(&v.name, &v.path));
        }
        docs.push(yaml::to_string(&headless_service(
            &inst.name,
            vec![service_port("redis", 6379)],
            "node",
        )));
        docs.push(yaml::to_string(&Object {
            api_version: "apps/v1",
            kind: "StatefulSet",
            metadata: self.metadata(inst.name.to_string(), inst),
            spec: Some(StatefulSetSpec {
                replicas: Some(inst.replicas),
                service_name: headless(&inst.name),
                selector: Selector {
                    match_labels: self.selector(inst),
                },
                template: PodTemplate {
                    metadata: TemplateMetadata {
                        labels: self.labels(inst),
                    },
                    spec: PodSpec {
                        affinity: anti_affinity(&inst.name),
                        init_containers: Vec::new(),
                        containers: vec![Container {
                            name: "redis".into(),
                            image: image.clone(),
                            command: Some(vec!["sh".into(), "/config/start-redis.sh".into()]),
                            ports: vec![port("redis", 6379)],
                            env: vec![pod_name.clone()],
                            resources: resources(inst),
                            liveness_probe: Some(exec(&["redis-cli", "ping"])),
                            readiness_probe: Some(exec(&["redis-cli", "ping"])),
                            volume_mounts: redis_mounts,
                            ..Default::default()
                        }],
                        volumes: vec![config_volume.clone()],
                        ..Default::default()
                    },
                },
                volume_claim_templates: inst
                    .rare
                    .volumes
                    .iter()
                    .take(1)
                    .map(claim_template)
                    .collect(),
            }),
        }));
        docs.push(yaml::to_string(&pdb(&inst.name, "node")));
        // The sentinels.
        docs.push(yaml::to_string(&headless_service(
            &sentinel,
            vec![service_port("sentinel", 26379)],
            "sentinel",
        )));
        docs.push(yaml::to_string(&Object {
            api_version: "v1",
            kind: "Service",
            metadata: meta(&sentinel, "sentinel"),
            spec: Some(ServiceSpec {
                kind: Some("ClusterIP"),
                publish_not_ready_addresses: false,
                selector: self.named_selector(&sentinel),
                ports: vec![service_port("sentinel", 26379)],
                ..Default::default()
            }),
        }));
        docs.push(yaml::to_string(&Object {
            api_version: "apps/v1",
            kind: "StatefulSet",
            metadata: meta(&sentinel, "sentinel"),
            spec: Some(StatefulSetSpec {
                replicas: Some(s.sentinels),
                service_name: headless(&sentinel),
                selector: Selector {
                    match_labels: self.named_selector(&sentinel),
                },
                template: PodTemplate {
                    metadata: TemplateMetadata {
                        labels: self.named_labels(&sentinel, &component("sentinel")),
                    },
                    spec: PodSpec {
                        affinity: anti_affinity(&sentinel),
                        init_containers: vec![Container {
                            name: "sentinel-config".into(),
                            image: image.clone(),
                            command: Some(vec!["sh".into(), "/config/start-sentinel.sh".into()]),
                            ports: Vec::new(),
                            env: vec![pod_name.clone()],
                            volume_mounts: vec![
                                mount("config", "/config"),
                                mount("sentinel", "/sentinel"),
                            ],
                            ..Default::default()
                        }],
                        containers: vec![Container {
                            name: "sentinel".into(),
                            image: image.clone(),
                            command: Some(vec![
                                "redis-sentinel".into(),
                                "/sentinel/sentinel.conf".into(),
                            ]),
                            ports: vec![port("sentinel", 26379)],
                            env: Vec::new(),
                            liveness_probe: Some(exec(&["redis-cli", "-p", "26379", "ping"])),
                            readiness_probe: Some(exec(&["redis-cli", "-p", "26379", "ping"])),
                            volume_mounts: vec![mount("sentinel", "/sentinel")],
                            ..Default::default()
                        }],
                        volumes: vec![
                            config_volume.clone(),
                            PodVolume {
                                name: "sentinel".into(),
                                empty_dir: Some(EmptyDir {}),
                                ..Default::default()
                            },
                        ],
                        ..Default::default()
                    },
                },
                volume_claim_templates: Vec::new(),
            }),
        }));
        docs.push(yaml::to_string(&pdb(&sentinel, "sentinel")));
        // The master endpoint: clients use the service's own name.
        docs.push(yaml::to_string(&Object {
            api_version: "apps/v1",
            kind: "Deployment",
            metadata: meta(&proxy, "master-endpoint"),
            spec: Some(DeploymentSpec {
                replicas: Some(2),
                selector: Selector {
                    match_labels: self.named_selector(&proxy),
                },
                strategy: Strategy {
                    kind: "RollingUpdate",
                    rolling_update: RollingUpdate {
                        max_surge: 1,
                        max_unavailable: 0,
                    },
                },
                template: PodTemplate {
                    metadata: TemplateMetadata {
                        labels: self.named_labels(&proxy, &component("master-endpoint")),
                    },
                    spec: PodSpec {
                        affinity: anti_affinity(&proxy),
                        init_containers: Vec::new(),
                        containers: vec![Container {
                            name: "haproxy".into(),
                            image: Some(REDIS_PROXY_IMAGE.into()),
                            ports: vec![port("redis", 6379)],
                            env: Vec::new(),
                            readiness_probe: Some(Probe {
                                tcp_socket: Some(TcpSocket {
                                    port: "redis".into(),
                                }),
                                period_seconds: Some(5),
                                timeout_seconds: Some(2),
                                failure_threshold: Some(3),
                                ..Default::default()
                            }),
                            volume_mounts: vec![mount("config", "/usr/local/etc/haproxy")],
                            ..Default::default()
                        }],
                        volumes: vec![config_volume],
                        ..Default::default()
                    },
                },
            }),
        }));
        docs.push(yaml::to_string(&Object {
            api_version: "v1",
            kind: "Service",
            metadata: meta(&inst.name, "master-endpoint"),
            spec: Some(ServiceSpec {
                kind: Some("ClusterIP"),
                publish_not_ready_addresses: false,
                selector: self.named_selector(&proxy),
                ports: vec![service_port("redis", 6379)],
                ..Default::default()
            }),
        }));
        docs.push(yaml::to_string(&pdb(&proxy, "master-endpoint")));
        docs
    }

    fn service_objects(&self, inst: &Instance) -> Vec<Result<String, String>> {
        if inst.ha == HaMode::CloudNativePg {
            return self.cnpg_cluster(inst);
        }
        if let Some(s) = &inst.rare.sentinel {
            return self.redis_sentinel(inst, s);
        }
        let mut docs = Vec::new();
        let stateful = inst.role == Role::Stateful;
        let replicas = (inst.rare.autoscale.is_none()).then_some(inst.replicas);
        let template = PodTemplate {
            metadata: TemplateMetadata {
                labels: self.labels(inst),
            },
            spec: self.pod_spec(inst, stateful),
        };
        let selector = Selector {
            match_labels: self.selector(inst),
        };
        if stateful {
            docs.push(yaml::to_string(&Object {
                api_version: "apps/v1",
                kind: "StatefulSet",
                metadata: self.metadata(inst.name.to_string(), inst),
                spec: Some(StatefulSetSpec {
                    replicas,
                    service_name: headless_name(&inst.name),
                    selector,
                    template,
                    volume_claim_templates: inst.rare.volumes.iter().map(claim_template).collect(),
                }),
            }));
        } else {
            for v in &inst.rare.volumes {
                docs.push(yaml::to_string(&Object {
                    api_version: "v1",
                    kind: "PersistentVolumeClaim",
                    metadata: self.metadata(v.name.clone(), inst),
                    spec: Some(ClaimObjectSpec {
                        access_modes: vec!["ReadWriteOnce"],
                        resources: storage(v.size),
                    }),
                }));
            }
            docs.push(yaml::to_string(&Object {
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
            }));
        }
        if !inst.ports.is_empty() {
            // In-cluster references use `<name>`, with every port.
            docs.push(yaml::to_string(&Object {
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
            }));
            // Public ports without a public URL (an Ingress) get a load balancer.
            if !inst.public.is_empty() && inst.public_url.is_none() {
                docs.push(yaml::to_string(&Object {
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
                }));
            }
            if stateful {
                docs.push(yaml::to_string(&Object {
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
                }));
            }
        }
        if let Some(a) = &inst.rare.autoscale {
            docs.push(yaml::to_string(&Object {
                api_version: "autoscaling/v2",
                kind: "HorizontalPodAutoscaler",
                metadata: self.metadata(inst.name.to_string(), inst),
                spec: Some(hpa(inst, a)),
            }));
        }
        if inst.min_replicas() > 1 {
            let (min_available, max_unavailable) = match inst.rare.min_available {
                Some(m) => (Some(m), None),
                None => (None, Some(1)),
            };
            docs.push(yaml::to_string(&Object {
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
            }));
        }
        docs
    }

    fn pod_spec(&self, inst: &Instance, stateful: bool) -> PodSpec {
        let replicated =
            inst.replicas > 1 || inst.rare.autoscale.as_ref().is_some_and(|a| a.max > 1);
        let resources = resources(inst);
        let container = Container {
            name: inst.name.to_string(),
            image: inst.image.clone(),
            // Kubernetes' `command` is the image's ENTRYPOINT, `args` its CMD.
            command: inst.rare.entrypoint.as_deref().map(literal_words),
            args: inst.rare.command.as_deref().map(literal_words),
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
            liveness_probe: inst.probes.liveness.as_deref().map(probe),
            readiness_probe: inst.probes.readiness.as_deref().map(probe),
            startup_probe: inst.probes.startup.as_deref().map(probe),
            lifecycle: inst.rare.pre_stop.map(|d| Lifecycle {
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
                .rare
                .volumes
                .iter()
                .map(|v| VolumeMount {
                    name: v.name.clone(),
                    mount_path: v.path.clone(),
                })
                .collect(),
        };
        PodSpec {
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
                .rare
                .stop_grace_period
                .map(seconds)
                .or_else(|| inst.rare.pre_stop.map(|d| seconds(d) + 30)),
            init_containers: Vec::new(),
            containers: vec![container],
            volumes: if stateful {
                Vec::new()
            } else {
                inst.rare
                    .volumes
                    .iter()
                    .map(|v| PodVolume {
                        name: v.name.clone(),
                        persistent_volume_claim: Some(ClaimRef {
                            claim_name: v.name.clone(),
                        }),
                        ..Default::default()
                    })
                    .collect()
            },
        }
    }

    /// The container's env. A value that embeds a secret reads it from a variable
    /// defined earlier in the list: the secret's own variable when the service
    /// already has it, else a helper `STACKC_<NAME>` placed first.
    fn env(&self, inst: &Instance) -> Vec<EnvVar> {
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

    fn ingress(&self, instances: &[&Instance]) -> Option<Object<IngressSpec>> {
        let mut rules: IndexMap<String, Vec<IngressPath>> = IndexMap::new();
        let mut tls: Vec<String> = Vec::new();
        for inst in instances {
            let Some(url) = inst.public_url.as_ref().and_then(|u| literal(u)) else {
                continue;
            };
            let Some((scheme, host)) = split_url(&url) else {
                continue;
            };
            let routes: Vec<RoutedPath> = if inst.routes.is_empty() {
                match inst.ports.first() {
                    Some(p) => vec![RoutedPath {
                        path: Name::new_static("/"),
                        port: p.name.clone(),
                    }],
                    None => continue,
                }
            } else {
                inst.routes.clone()
            };
            if scheme == "https" && !tls.contains(&host) {
                tls.push(host.clone());
            }
            let paths = rules.entry(host).or_default();
            for RoutedPath { path, port } in routes {
                paths.push(IngressPath {
                    path,
                    path_type: "Prefix",
                    backend: IngressBackend {
                        service: BackendService {
                            name: inst.name.to_string(),
                            port: NamedPort {
                                name: port.to_string(),
                            },
                        },
                    },
                });
            }
        }
        if rules.is_empty() {
            return None;
        }
        Some(Object {
            api_version: "networking.k8s.io/v1",
            kind: "Ingress",
            metadata: Metadata {
                name: self.plan.stack.clone(),
                namespace: Some(self.topo.namespace.clone()),
                labels: self.part_of(),
            },
            spec: Some(IngressSpec {
                ingress_class_name: self.topo.ingress_class.clone(),
                tls: tls
                    .into_iter()
                    .map(|h| IngressTls {
                        secret_name: format!("{}-tls", h.replace('.', "-")),
                        hosts: vec![h],
                    })
                    .collect(),
                rules: rules
                    .into_iter()
                    .map(|(host, paths)| IngressRule {
                        host,
                        http: IngressHttp { paths },
                    })
                    .collect(),
            }),
        })
    }

    /// `secrets.sh`: the keys the workloads read, and the command that creates the
    /// Secret from environment variables of the same names.
    fn secrets_script(&self, instances: &[&Instance], options: &Options) -> String {
        let mut keys: IndexMap<&str, (&str, bool)> = IndexMap::new();
        for inst in instances {
            for var in &inst.env {
                for p in &var.value {
                    if let Out::Secret(s) = p {
                        keys.insert(&s.env, (&s.name, s.optional));
                    }
                }
            }
        }
        let mut s = String::from("#!/bin/sh\n");
        s.push_str(&header("#", options, &self.topo.name));
        s.push_str(&format!(
            "#\n# Creates (or updates) the Secret `{}` in namespace `{}` from environment\n# variables of the same names. No value is stored in this file.\n#\n",
            self.secret_name, self.topo.namespace
        ));
        if keys.is_empty() {
            s.push_str("# This topology reads no secret.\nexit 0\n");
            return s;
        }
        s.push_str("# Keys:\n");
        for (env, (name, optional)) in &keys {
            let about = self
                .plan
                .secrets
                .get(*name)
                .and_then(|d| d.description.as_deref())
                .map(|d| format!(": {}", d.replace('\n', " ")))
                .unwrap_or_default();
            let what = if *optional { "optional" } else { "required" };
            s.push_str(&format!("#   {env}  ({what}, secret `{name}`){about}\n"));
        }
        s.push_str("set -eu\n");
        for (env, (name, optional)) in &keys {
            if !optional {
                s.push_str(&format!(": \"${{{env}:?secret {name} is not set}}\"\n"));
            }
        }
        // A secret inside a URL reaches it unencoded: refuse what would
        // change the URL's meaning (`plan::secrets_in_urls`).
        let in_urls: IndexSet<(&str, &str)> = instances
            .iter()
            .flat_map(|i| &i.env)
            .flat_map(|v| plan::secrets_in_urls(&v.value))
            .map(|s| (s.env.as_str(), s.name.as_str()))
            .collect();
        for (env, name) in in_urls {
            s.push_str(&plan::url_safe_check(
                env,
                true,
                &format!("secret {name} is used inside a URL"),
            ));
        }
        // Each value into a file of its own, by the shell's own `printf`: a
        // value on a program's command line would show in `ps` to every user.
        s.push_str("umask 077\nvalues=$(mktemp -d)\ntrap 'rm -rf \"$values\"' EXIT\n");
        for (env, (_, optional)) in &keys {
            let value = if *optional {
                format!("${{{env}:-}}")
            } else {
                format!("${env}")
            };
            s.push_str(&format!("printf '%s' \"{value}\" > \"$values/{env}\"\n"));
        }
        s.push_str(&format!(
            "kubectl create secret generic {} --namespace {} \\\n",
            self.secret_name, self.topo.namespace
        ));
        for env in keys.keys() {
            s.push_str(&format!("  --from-file={env}=\"$values/{env}\" \\\n"));
        }
        s.push_str("  --dry-run=client -o yaml | kubectl apply -f -\n");
        for inst in instances.iter().filter(|i| i.ha == HaMode::CloudNativePg) {
            let user = literal(
                inst.rare
                    .params
                    .get("user")
                    .map_or(&[][..], |v| v.as_slice()),
            )
            .unwrap_or_default();
            let Some([Out::Secret(secret)]) =
                inst.rare.params.get("password").map(|v| v.as_slice())
            else {
                continue;
            };
            let env = &secret.env;
            s.push_str(&format!(
                "# The owner of the PostgreSQL cluster `{}`, for CloudNativePG's bootstrap.\n",
                inst.name
            ));
            s.push_str(&format!(
                "kubectl create secret generic {} --namespace {} --type=kubernetes.io/basic-auth \\\n",
                cnpg_secret(&inst.name),
                self.topo.namespace
            ));
            s.push_str(&format!("  --from-literal=username='{user}' \\\n"));
            s.push_str(&format!("  --from-file=password=\"$values/{env}\" \\\n"));
            s.push_str("  --dry-run=client -o yaml | kubectl apply -f -\n");
        }
        s
    }
}

/// Requests and limits; GPUs as the `nvidia.com/gpu` limit.
fn resources(inst: &Instance) -> Option<Resources> {
    let r = &inst.rare.resources;
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

/// The `kubernetes.io/basic-auth` Secret a CloudNativePG Cluster bootstraps from.
fn cnpg_secret(service: &str) -> String {
    format!("{service}-app")
}

use crate::plan::kubernetes_names::headless as headless_name;

fn hpa(inst: &Instance, a: &plan::Autoscale) -> HpaSpec {
    let metric = |name: &'static str, pct: u32| Metric {
        kind: "Resource",
        resource: ResourceMetric {
            name,
            target: MetricTarget {
                kind: "Utilization",
                average_utilization: pct,
            },
        },
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

fn probe(p: &plan::Probe) -> Probe {
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
        initial_delay_seconds: p.start_period.map(|d| d.0 / 1000),
        period_seconds: p.interval.map(seconds),
        timeout_seconds: p.timeout.map(seconds),
        failure_threshold: p.retries,
    }
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

/// A Kubernetes CPU quantity: cores, or millicores.
pub fn cpu(c: Cpu) -> String {
    if c.0.is_multiple_of(1000) {
        (c.0 / 1000).to_string()
    } else {
        format!("{}m", c.0)
    }
}

/// A Kubernetes memory quantity, in the largest binary or decimal unit that is exact.
pub fn memory(s: Size) -> String {
    let b = s.0;
    let units: [(u64, &str); 6] = [
        (1 << 40, "Ti"),
        (1 << 30, "Gi"),
        (1 << 20, "Mi"),
        (1_000_000_000, "G"),
        (1_000_000, "M"),
        (1 << 10, "Ki"),
    ];
    for (size, unit) in units {
        if b >= size && b.is_multiple_of(size) {
            return format!("{}{unit}", b / size);
        }
    }
    b.to_string()
}

fn storage(size: Size) -> ClaimResources {
    ClaimResources {
        requests: IndexMap::from([("storage", memory(size))]),
    }
}

use crate::plan::text_of as literal;

/// `https://api.example.com/x` → ("https", "api.example.com").
fn split_url(url: &str) -> Option<(String, String)> {
    let u = crate::grammar::url(url).ok()?;
    Some((u.scheme.to_string(), u.host))
}

/// A StatefulSet's volume claim for one of its volumes.
fn claim_template(v: &plan::Volume) -> ClaimTemplate {
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
