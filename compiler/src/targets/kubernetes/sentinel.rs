//! Redis with Sentinel on Kubernetes: the Redis and sentinel StatefulSets and
//! the master endpoint clients connect to.

use super::workload::{claim_template, resources};
use super::*;
use crate::plan::REDIS_PASSWORD_ENV;
use crate::targets::redis_sentinel::{files, headless, proxy_name, sentinel_name};

impl Cx<'_> {
    /// Redis with Sentinel: the Redis StatefulSet, the sentinels' StatefulSet (each
    /// sentinel's config written into an emptyDir at start), and the master
    /// endpoint (HAProxy) behind the Service clients use.
    pub(super) fn redis_sentinel(&self, inst: &Instance, s: &SentinelPlan) -> Documents {
        let ns = &self.topo.namespace;
        let header = header("#", self.options, &self.topo.name);
        let files = match files(inst, s, ns, &header) {
            Ok(f) => f,
            Err(e) => return Documents::failed(e),
        };
        let set = Set {
            cx: self,
            inst,
            plan: s,
            config: crate::plan::kubernetes_names::config(&inst.name),
            sentinel: sentinel_name(&inst.name),
            proxy: proxy_name(&inst.name),
        };
        let mut docs = Documents::of(&ConfigMap {
            api_version: "v1",
            kind: "ConfigMap",
            metadata: set.meta(&set.config, "config"),
            data: IndexMap::from([
                ("redis.conf".to_string(), files.redis_conf),
                ("start-redis.sh".to_string(), files.start_redis),
                ("start-sentinel.sh".to_string(), files.start_sentinel),
                ("haproxy.cfg".to_string(), files.haproxy_cfg),
            ]),
        });
        set.nodes(&mut docs);
        set.sentinels(&mut docs);
        set.master_endpoint(&mut docs);
        docs
    }
}

/// One Sentinel-watched Redis and the names of its objects.
struct Set<'a> {
    cx: &'a Cx<'a>,
    inst: &'a Instance,
    plan: &'a SentinelPlan,
    config: String,
    sentinel: String,
    proxy: String,
}

impl Set<'_> {
    fn component(&self, c: &str) -> String {
        format!("{}-{c}", self.inst.kind.as_deref().unwrap_or("redis"))
    }

    fn meta(&self, name: &str, c: &str) -> Metadata {
        Metadata {
            name: name.to_string(),
            namespace: Some(self.cx.topo.namespace.clone()),
            labels: self.cx.named_labels(name, &self.component(c)),
            ..Metadata::default()
        }
    }

    fn anti_affinity(&self, name: &str) -> Option<Affinity> {
        Some(Affinity {
            pod_anti_affinity: PodAntiAffinity {
                preferred: vec![WeightedTerm {
                    weight: 100,
                    pod_affinity_term: AffinityTerm {
                        label_selector: Selector {
                            match_labels: self.cx.named_selector(name),
                        },
                        topology_key: "kubernetes.io/hostname",
                    },
                }],
            },
        })
    }

    fn headless_service(
        &self,
        name: &str,
        ports: Vec<ServicePort>,
        c: &str,
    ) -> Object<ServiceSpec> {
        Object {
            api_version: "v1",
            kind: "Service",
            metadata: self.meta(&headless(name), c),
            spec: Some(ServiceSpec {
                cluster_ip: Some("None"),
                publish_not_ready_addresses: true,
                selector: self.cx.named_selector(name),
                ports,
                ..Default::default()
            }),
        }
    }

    fn pdb(&self, name: &str, c: &str) -> Object<PdbSpec> {
        Object {
            api_version: "policy/v1",
            kind: "PodDisruptionBudget",
            metadata: self.meta(name, c),
            spec: Some(PdbSpec {
                max_unavailable: Some(1),
                selector: Selector {
                    match_labels: self.cx.named_selector(name),
                },
                ..Default::default()
            }),
        }
    }

    /// The password's variable, from the Secret, for the containers that
    /// authenticate to the nodes (sentinels, the master endpoint's checks);
    /// `None` for a Redis without one.
    fn password(&self) -> Option<EnvVar> {
        self.cx
            .env(self.inst)
            .into_iter()
            .find(|v| v.name == REDIS_PASSWORD_ENV)
    }

    /// A node's probe: `PONG` to a ping, with the password where it has one.
    fn ping(&self) -> Probe {
        if self.password().is_none() {
            return exec(&["redis-cli", "ping"]);
        }
        let line = format!("REDISCLI_AUTH=\"${REDIS_PASSWORD_ENV}\" redis-cli ping | grep -q PONG");
        exec(&["sh", "-c", &line])
    }

    /// The Redis nodes.
    fn nodes(&self, docs: &mut Documents) {
        let data = self.inst.storage.volumes.first();
        let mut redis_mounts = vec![mount("config", "/config")];
        if let Some(v) = data {
            redis_mounts.push(mount(&v.name, &v.path));
        }
        docs.push(&self.headless_service(
            &self.inst.name,
            vec![service_port("redis", 6379)],
            "node",
        ));
        docs.push(&Object {
            api_version: "apps/v1",
            kind: "StatefulSet",
            metadata: self.cx.metadata(self.inst.name.to_string(), self.inst),
            spec: Some(StatefulSetSpec {
                replicas: Some(self.inst.replicas),
                service_name: headless(&self.inst.name),
                selector: Selector {
                    match_labels: self.cx.selector(self.inst),
                },
                template: PodTemplate {
                    metadata: TemplateMetadata {
                        labels: self.cx.labels(self.inst),
                        annotations: Labels::default(),
                    },
                    spec: PodSpec {
                        affinity: self.anti_affinity(&self.inst.name),
                        init_containers: Vec::new(),
                        containers: vec![Container {
                            name: "redis".into(),
                            image: self.inst.image.clone(),
                            command: Some(vec!["sh".into(), "/config/start-redis.sh".into()]),
                            ports: vec![port("redis", 6379)],
                            env: [pod_name()]
                                .into_iter()
                                .chain(self.cx.env(self.inst))
                                .collect(),
                            resources: resources(self.inst),
                            liveness_probe: Some(self.ping()),
                            readiness_probe: Some(self.ping()),
                            volume_mounts: redis_mounts,
                            ..Default::default()
                        }],
                        volumes: vec![config_volume(&self.config)],
                        ..Default::default()
                    },
                },
                volume_claim_templates: self
                    .inst
                    .storage
                    .volumes
                    .iter()
                    .take(1)
                    .map(claim_template)
                    .collect(),
            }),
        });
        docs.push(&self.pdb(&self.inst.name, "node"));
    }

    /// The sentinels.
    fn sentinels(&self, docs: &mut Documents) {
        docs.push(&self.headless_service(
            &self.sentinel,
            vec![service_port("sentinel", 26379)],
            "sentinel",
        ));
        docs.push(&Object {
            api_version: "v1",
            kind: "Service",
            metadata: self.meta(&self.sentinel, "sentinel"),
            spec: Some(ServiceSpec {
                kind: Some("ClusterIP"),
                publish_not_ready_addresses: false,
                selector: self.cx.named_selector(&self.sentinel),
                ports: vec![service_port("sentinel", 26379)],
                ..Default::default()
            }),
        });
        docs.push(&Object {
            api_version: "apps/v1",
            kind: "StatefulSet",
            metadata: self.meta(&self.sentinel, "sentinel"),
            spec: Some(StatefulSetSpec {
                replicas: Some(self.plan.sentinels),
                service_name: headless(&self.sentinel),
                selector: Selector {
                    match_labels: self.cx.named_selector(&self.sentinel),
                },
                template: PodTemplate {
                    metadata: TemplateMetadata {
                        labels: self
                            .cx
                            .named_labels(&self.sentinel, &self.component("sentinel")),
                        annotations: Labels::default(),
                    },
                    spec: PodSpec {
                        affinity: self.anti_affinity(&self.sentinel),
                        init_containers: vec![Container {
                            name: "sentinel-config".into(),
                            image: self.inst.image.clone(),
                            command: Some(vec!["sh".into(), "/config/start-sentinel.sh".into()]),
                            ports: Vec::new(),
                            env: [pod_name()].into_iter().chain(self.password()).collect(),
                            volume_mounts: vec![
                                mount("config", "/config"),
                                mount("sentinel", "/sentinel"),
                            ],
                            ..Default::default()
                        }],
                        containers: vec![Container {
                            name: "sentinel".into(),
                            image: self.inst.image.clone(),
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
                            config_volume(&self.config),
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
        });
        docs.push(&self.pdb(&self.sentinel, "sentinel"));
    }

    /// The master endpoint: clients use the service's own name.
    fn master_endpoint(&self, docs: &mut Documents) {
        docs.push(&Object {
            api_version: "apps/v1",
            kind: "Deployment",
            metadata: self.meta(&self.proxy, "master-endpoint"),
            spec: Some(DeploymentSpec {
                replicas: Some(2),
                selector: Selector {
                    match_labels: self.cx.named_selector(&self.proxy),
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
                        labels: self
                            .cx
                            .named_labels(&self.proxy, &self.component("master-endpoint")),
                        annotations: Labels::default(),
                    },
                    spec: PodSpec {
                        affinity: self.anti_affinity(&self.proxy),
                        init_containers: Vec::new(),
                        containers: vec![Container {
                            name: "haproxy".into(),
                            image: Some(REDIS_PROXY_IMAGE.into()),
                            ports: vec![port("redis", 6379)],
                            env: self.password().into_iter().collect(),
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
                        volumes: vec![config_volume(&self.config)],
                        ..Default::default()
                    },
                },
            }),
        });
        docs.push(&Object {
            api_version: "v1",
            kind: "Service",
            metadata: self.meta(&self.inst.name, "master-endpoint"),
            spec: Some(ServiceSpec {
                kind: Some("ClusterIP"),
                publish_not_ready_addresses: false,
                selector: self.cx.named_selector(&self.proxy),
                ports: vec![service_port("redis", 6379)],
                ..Default::default()
            }),
        });
        docs.push(&self.pdb(&self.proxy, "master-endpoint"));
    }
}

/// The pod's own name, for a node or sentinel to announce itself.
fn pod_name() -> EnvVar {
    EnvVar {
        name: "POD_NAME".into(),
        value_from: Some(ValueFrom {
            field_ref: Some(FieldRef {
                field_path: "metadata.name",
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn mount(name: &str, path: &str) -> VolumeMount {
    VolumeMount {
        name: name.into(),
        mount_path: path.into(),
        read_only: false,
    }
}

/// The ConfigMap of the configs and start scripts, as a volume.
fn config_volume(config: &str) -> PodVolume {
    PodVolume {
        name: "config".into(),
        config_map: Some(ConfigMapRef {
            name: config.to_string(),
        }),
        ..Default::default()
    }
}

fn port(name: &str, n: u16) -> ContainerPort {
    ContainerPort {
        name: name.into(),
        container_port: n,
        protocol: "TCP",
    }
}

fn service_port(name: &str, n: u16) -> ServicePort {
    ServicePort {
        name: name.into(),
        port: n,
        target_port: name.into(),
        protocol: "TCP",
    }
}

/// A probe that runs `args`.
fn exec(args: &[&str]) -> Probe {
    Probe {
        exec: Some(Exec {
            command: args.iter().map(|a| a.to_string()).collect(),
        }),
        period_seconds: Some(5),
        timeout_seconds: Some(3),
        failure_threshold: Some(3),
        ..Default::default()
    }
}
