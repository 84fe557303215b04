//! Tasks on Kubernetes (docs/targets.md, "Tasks"). A task that runs once is a
//! Job named after a hash of its spec: a Job's pod template cannot change, so a
//! changed task is a new Job, and applying the same files again changes
//! nothing. A scheduled task is a CronJob. A service that depends on a task
//! that runs once waits for its Job in an init container (`kubectl wait
//! --for=condition=complete`), under a service account that may read that Job
//! alone and whose token only the init container mounts.

use std::cell::RefCell;

use rustc_hash::FxHashMap;
use serde::Serialize;

use super::*;
use crate::model::Restart;
use crate::plan::Condition;

/// The image of the init container that waits for a task's Job.
pub const KUBECTL_IMAGE: &str = "registry.k8s.io/kubectl:v1.32.0";

/// How long one wait lasts before the init container fails (and the kubelet
/// starts it again, with its back-off): a failed task shows as a dependent
/// that does not start.
const WAIT_TIMEOUT: &str = "10m";

/// Where a pod's service account token is mounted, as the kubelet mounts it.
const TOKEN_PATH: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

const API_ACCESS_VOLUME: &str = "task-api-access";

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct JobSpec {
    backoff_limit: u32,
    template: PodTemplate,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CronJobSpec {
    schedule: String,
    time_zone: &'static str,
    concurrency_policy: &'static str,
    successful_jobs_history_limit: u32,
    failed_jobs_history_limit: u32,
    job_template: JobTemplate,
}

#[derive(Serialize)]
struct JobTemplate {
    metadata: TemplateMetadata,
    spec: JobSpec,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Rbac<B: Serialize> {
    api_version: &'static str,
    kind: &'static str,
    metadata: Metadata,
    #[serde(flatten)]
    body: B,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Account {
    automount_service_account_token: bool,
}

#[derive(Serialize)]
struct Rules {
    rules: Vec<Rule>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Rule {
    api_groups: Vec<&'static str>,
    resources: Vec<&'static str>,
    resource_names: Vec<String>,
    verbs: Vec<&'static str>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Binding {
    subjects: Vec<Subject>,
    role_ref: RoleRef,
}

#[derive(Serialize)]
struct Subject {
    kind: &'static str,
    name: String,
    namespace: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RoleRef {
    api_group: &'static str,
    kind: &'static str,
    name: String,
}

/// What a pod needs to wait for the tasks it depends on.
#[derive(Default)]
pub(super) struct Waits {
    /// The pod's service account (none when it waits for no task).
    pub account: Option<String>,
    pub containers: Vec<Container>,
    /// The token, CA and namespace, mounted in the init containers only.
    pub volume: Option<PodVolume>,
}

impl Cx<'_> {
    /// A task's objects: its Job (with the Role and RoleBinding that let its
    /// dependents read it), or its CronJob.
    pub(super) fn task_objects(&self, inst: &Instance) -> Documents {
        let job = self.job_spec(inst);
        let mut docs = Documents::default();
        self.volume_claims(inst, &mut docs);
        match &inst.lifecycle.schedule {
            Some(schedule) => docs.push(&Object {
                api_version: "batch/v1",
                kind: "CronJob",
                metadata: self.metadata(inst.name.to_string(), inst),
                spec: Some(CronJobSpec {
                    schedule: schedule.expression.clone(),
                    time_zone: "Etc/UTC",
                    concurrency_policy: "Forbid",
                    successful_jobs_history_limit: 3,
                    failed_jobs_history_limit: 3,
                    job_template: JobTemplate {
                        metadata: TemplateMetadata {
                            labels: self.labels(inst),
                            annotations: Labels::default(),
                        },
                        spec: job,
                    },
                }),
            }),
            None => {
                let name = job_name(inst, &job);
                docs.push(&Object {
                    api_version: "batch/v1",
                    kind: "Job",
                    metadata: self.metadata(name.clone(), inst),
                    spec: Some(job),
                });
                self.readers(inst, name, &mut docs);
            }
        }
        docs
    }

    fn job_spec(&self, inst: &Instance) -> JobSpec {
        JobSpec {
            // `restart = no`: one try, a failure is final; `on-failure`: the
            // default back-off of six retries.
            backoff_limit: if inst.restart == Restart::OnFailure {
                6
            } else {
                0
            },
            template: PodTemplate {
                metadata: TemplateMetadata {
                    labels: self.labels(inst),
                    annotations: Labels::default(),
                },
                spec: self.pod_spec(inst, false),
            },
        }
    }

    /// The name of the Job of a task that runs once, made once per task (a
    /// task may have thousands of dependents).
    fn task_job_name(&self, task: &Name) -> Option<String> {
        if let Some(name) = self.tasks.jobs.borrow().get(task) {
            return Some(name.clone());
        }
        let inst = *self.tasks.once.get(task.as_str())?;
        let name = job_name(inst, &self.job_spec(inst));
        self.tasks
            .jobs
            .borrow_mut()
            .insert(task.clone(), name.clone());
        Some(name)
    }

    /// The Role that may read the task's Job, and its binding to the service
    /// accounts of the services that wait for it.
    fn readers(&self, task: &Instance, job: String, docs: &mut Documents) {
        let waiting = self.tasks.waiters.get(task.name.as_str());
        let subjects: Vec<Subject> = waiting
            .into_iter()
            .flatten()
            .map(|name| Subject {
                kind: "ServiceAccount",
                name: name.to_string(),
                namespace: self.topo.namespace.clone(),
            })
            .collect();
        if subjects.is_empty() {
            return;
        }
        let name = format!("{}-status", task.name);
        docs.push(&Rbac {
            api_version: "rbac.authorization.k8s.io/v1",
            kind: "Role",
            metadata: self.metadata(name.clone(), task),
            body: Rules {
                rules: vec![Rule {
                    api_groups: vec!["batch"],
                    resources: vec!["jobs"],
                    resource_names: vec![job],
                    verbs: vec!["get", "list", "watch"],
                }],
            },
        });
        docs.push(&Rbac {
            api_version: "rbac.authorization.k8s.io/v1",
            kind: "RoleBinding",
            metadata: self.metadata(name.clone(), task),
            body: Binding {
                subjects,
                role_ref: RoleRef {
                    api_group: "rbac.authorization.k8s.io",
                    kind: "Role",
                    name,
                },
            },
        });
    }

    /// The service account of a service that waits for a task (its file
    /// carries it).
    pub(super) fn waiting_account(&self, inst: &Instance, docs: &mut Documents) {
        if waits_for(inst).next().is_some() {
            docs.push(&Rbac {
                api_version: "v1",
                kind: "ServiceAccount",
                metadata: self.metadata(inst.name.to_string(), inst),
                body: Account {
                    automount_service_account_token: false,
                },
            });
        }
    }

    /// An init container per task the service waits for.
    pub(super) fn task_waits(&self, inst: &Instance) -> Waits {
        let containers: Vec<Container> = waits_for(inst)
            .filter_map(|task| {
                let job = self.task_job_name(task)?;
                Some(Container {
                    name: format!("wait-for-{task}"),
                    image: Some(Name::new(KUBECTL_IMAGE)),
                    command: Some(vec!["kubectl".into()]),
                    args: Some(vec![
                        "wait".into(),
                        "--for=condition=complete".into(),
                        format!("--timeout={WAIT_TIMEOUT}"),
                        format!("--namespace={}", self.topo.namespace),
                        format!("job/{job}"),
                    ]),
                    volume_mounts: vec![VolumeMount {
                        name: API_ACCESS_VOLUME.into(),
                        mount_path: TOKEN_PATH.into(),
                        read_only: true,
                    }],
                    ..Default::default()
                })
            })
            .collect();
        if containers.is_empty() {
            return Waits::default();
        }
        Waits {
            account: Some(inst.name.to_string()),
            containers,
            volume: Some(api_access()),
        }
    }
}

/// A topology's tasks that run once, by name, and the services that wait
/// for each, found in one pass over its instances.
pub(super) struct TaskIndex<'a> {
    once: FxHashMap<&'a str, &'a Instance>,
    waiters: FxHashMap<&'a str, Vec<&'a Name>>,
    /// Job names made so far.
    jobs: RefCell<FxHashMap<Name, String>>,
}

impl<'a> TaskIndex<'a> {
    pub(super) fn new(topo: &'a TopologyPlan) -> TaskIndex<'a> {
        let mut index = TaskIndex {
            once: FxHashMap::default(),
            waiters: FxHashMap::default(),
            jobs: RefCell::default(),
        };
        for inst in topo.hosts.iter().flat_map(|h| &h.services) {
            if inst.role == Role::Task && inst.lifecycle.schedule.is_none() {
                index.once.insert(&inst.name, inst);
            }
            for task in waits_for(inst) {
                index.waiters.entry(task).or_default().push(&inst.name);
            }
        }
        index
    }
}

/// The tasks (that run once) a service waits for.
fn waits_for(inst: &Instance) -> impl Iterator<Item = &Name> {
    inst.depends_on
        .iter()
        .filter(|(_, c)| *c == Condition::Completed)
        .map(|(t, _)| t)
}

/// `<task>-<hash>`: the hash of the Job's spec as written, so that the name
/// changes exactly when the spec does.
fn job_name(inst: &Instance, job: &JobSpec) -> String {
    let text = yaml::to_string(job).unwrap_or_default();
    format!(
        "{}-{:08x}",
        inst.name,
        crate::targets::fnv1a(text.as_bytes()) as u32
    )
}

/// The projected token, CA and namespace, as the kubelet mounts them.
fn api_access() -> PodVolume {
    PodVolume {
        name: API_ACCESS_VOLUME.into(),
        projected: Some(Projected {
            sources: vec![
                ProjectedSource {
                    service_account_token: Some(TokenProjection {
                        path: "token",
                        expiration_seconds: 3607,
                    }),
                    ..Default::default()
                },
                ProjectedSource {
                    config_map: Some(KeysOf {
                        name: "kube-root-ca.crt",
                        items: vec![KeyToPath {
                            key: "ca.crt",
                            path: "ca.crt",
                        }],
                    }),
                    ..Default::default()
                },
                ProjectedSource {
                    downward_api: Some(DownwardItems {
                        items: vec![DownwardItem {
                            path: "namespace",
                            field_ref: FieldRef {
                                field_path: "metadata.namespace",
                            },
                        }],
                    }),
                    ..Default::default()
                },
            ],
        }),
        ..Default::default()
    }
}
