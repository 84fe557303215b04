//! The Kubernetes manifests of every example, checked across objects, as the API
//! server and the controllers would use them. No schema validator checks any of
//! this (see ../shared/TARGETS.md 1.7 and 2.8).

use std::collections::{BTreeMap, BTreeSet};

use serde_norway::Value;

use crate::support::{options, read, rel, stack_files};

/// One topology's manifests: every document, and the secrets script.
pub(crate) struct Set {
    pub name: String,
    pub docs: Vec<Value>,
    secrets_script: String,
}

pub(crate) fn sets() -> Vec<Set> {
    let mut sets: BTreeMap<String, Set> = BTreeMap::new();
    for path in stack_files("examples")
        .into_iter()
        .chain(stack_files("tests/cases"))
    {
        let compilation = stackc::compile(read(&path), &options(&path));
        for a in &compilation.artifacts {
            let Some((topology, file)) = a.path.split_once("/k8s/") else {
                continue;
            };
            let key = format!("{} {topology}", rel(&path));
            let set = sets.entry(key.clone()).or_insert_with(|| Set {
                name: key,
                docs: Vec::new(),
                secrets_script: String::new(),
            });
            if file == "secrets.sh" {
                set.secrets_script = a.contents.clone();
                continue;
            }
            for doc in serde_norway::Deserializer::from_str(&a.contents) {
                let value = <Value as serde::Deserialize>::deserialize(doc)
                    .unwrap_or_else(|e| panic!("{}: {e}", a.path));
                set.docs.push(value);
            }
        }
    }
    let sets: Vec<Set> = sets.into_values().collect();
    assert!(sets.len() >= 2, "the examples have Kubernetes topologies");
    sets
}

fn kind(doc: &Value) -> &str {
    doc["kind"].as_str().unwrap_or_default()
}

fn name(doc: &Value) -> &str {
    doc["metadata"]["name"].as_str().unwrap_or_default()
}

fn labels(v: &Value) -> BTreeMap<String, String> {
    v.as_mapping()
        .into_iter()
        .flatten()
        .map(|(k, v)| {
            let value = v
                .as_str()
                .unwrap_or_else(|| panic!("label {k:?} is not a string: {v:?}"));
            (
                k.as_str().unwrap_or_default().to_string(),
                value.to_string(),
            )
        })
        .collect()
}

fn subset(a: &BTreeMap<String, String>, b: &BTreeMap<String, String>) -> bool {
    a.iter().all(|(k, v)| b.get(k) == Some(v))
}

fn workloads(set: &Set) -> Vec<&Value> {
    set.docs
        .iter()
        .filter(|d| matches!(kind(d), "Deployment" | "StatefulSet"))
        .collect()
}

fn containers(workload: &Value) -> Vec<&Value> {
    workload["spec"]["template"]["spec"]["containers"]
        .as_sequence()
        .into_iter()
        .flatten()
        .collect()
}

fn port_names(container: &Value) -> BTreeSet<String> {
    container["ports"]
        .as_sequence()
        .into_iter()
        .flatten()
        .filter_map(|p| p["name"].as_str().map(str::to_string))
        .collect()
}

#[test]
fn selectors_match_their_templates() {
    for set in sets() {
        for w in workloads(&set) {
            let selector = labels(&w["spec"]["selector"]["matchLabels"]);
            let template = labels(&w["spec"]["template"]["metadata"]["labels"]);
            assert!(
                !selector.is_empty(),
                "{}: {} selects nothing",
                set.name,
                name(w)
            );
            assert!(
                subset(&selector, &template),
                "{}: {} selector not in its template labels",
                set.name,
                name(w)
            );
        }
    }
}

#[test]
fn services_select_pods_and_target_declared_ports() {
    for set in sets() {
        for svc in set.docs.iter().filter(|d| kind(d) == "Service") {
            let selector = labels(&svc["spec"]["selector"]);
            let selected: Vec<&Value> = workloads(&set)
                .into_iter()
                .filter(|w| {
                    subset(
                        &selector,
                        &labels(&w["spec"]["template"]["metadata"]["labels"]),
                    )
                })
                .collect();
            assert!(
                !selected.is_empty(),
                "{}: Service {} selects no pod template",
                set.name,
                name(svc)
            );
            for port in svc["spec"]["ports"].as_sequence().into_iter().flatten() {
                let target = port["targetPort"].as_str().unwrap_or_default();
                for w in &selected {
                    assert!(
                        containers(w).iter().any(|c| port_names(c).contains(target)),
                        "{}: Service {} targets port {target}, which {} does not declare",
                        set.name,
                        name(svc),
                        name(w)
                    );
                }
            }
        }
    }
}

#[test]
fn probes_use_declared_ports() {
    let mut probes = 0;
    for set in sets() {
        for w in workloads(&set) {
            for c in containers(w) {
                let ports = port_names(c);
                for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
                    for check in ["httpGet", "tcpSocket"] {
                        if let Some(port) = c[probe][check]["port"].as_str() {
                            probes += 1;
                            assert!(
                                ports.contains(port),
                                "{}: {} {probe} on undeclared port {port}",
                                set.name,
                                name(w)
                            );
                        }
                    }
                }
            }
        }
    }
    assert!(probes > 3, "the examples have probes on named ports");
}

#[test]
fn statefulsets_name_a_headless_service() {
    let mut seen = 0;
    for set in sets() {
        for sts in set.docs.iter().filter(|d| kind(d) == "StatefulSet") {
            seen += 1;
            let service = sts["spec"]["serviceName"].as_str().unwrap_or_default();
            let headless = set.docs.iter().any(|d| {
                kind(d) == "Service"
                    && name(d) == service
                    && d["spec"]["clusterIP"].as_str() == Some("None")
            });
            assert!(
                headless,
                "{}: StatefulSet {} names {service}, not a headless Service",
                set.name,
                name(sts)
            );
        }
    }
    assert!(seen > 0, "the examples have StatefulSets");
}

#[test]
fn secret_keys_are_listed_and_env_expansions_defined_earlier() {
    let mut refs = 0;
    let mut expansions = 0;
    for set in sets() {
        let listed: BTreeSet<String> = set
            .secrets_script
            .lines()
            .filter_map(|l| l.trim().strip_prefix("--from-file="))
            .filter_map(|l| l.split('=').next().map(str::to_string))
            .collect();
        for w in workloads(&set) {
            for c in containers(w) {
                let mut defined: BTreeSet<String> = BTreeSet::new();
                for var in c["env"].as_sequence().into_iter().flatten() {
                    let var_name = var["name"].as_str().unwrap_or_default().to_string();
                    if let Some(r) = var["valueFrom"]["secretKeyRef"].as_mapping() {
                        refs += 1;
                        let key = r.get("key").and_then(Value::as_str).unwrap_or_default();
                        assert!(
                            listed.contains(key),
                            "{}: {} reads secret key {key}, not in secrets.sh",
                            set.name,
                            name(w)
                        );
                        assert!(
                            set.secrets_script.contains(&format!(
                                "create secret generic {} ",
                                r.get("name").and_then(Value::as_str).unwrap_or_default()
                            )),
                            "{}: {} reads a Secret that secrets.sh does not create",
                            set.name,
                            name(w)
                        );
                    }
                    let value = var["value"].as_str().unwrap_or_default();
                    for used in expansions_in(value) {
                        expansions += 1;
                        assert!(
                            defined.contains(&used),
                            "{}: {}.{var_name} uses $({used}) before it is defined",
                            set.name,
                            name(w)
                        );
                    }
                    defined.insert(var_name);
                }
            }
        }
    }
    assert!(
        refs > 5 && expansions > 0,
        "the examples read secrets ({refs}) and compose them ({expansions})"
    );
}

#[test]
fn autoscalers_budgets_and_ingresses_point_at_what_exists() {
    for set in sets() {
        let workload_names: BTreeSet<(&str, &str)> =
            workloads(&set).iter().map(|w| (kind(w), name(w))).collect();
        for hpa in set
            .docs
            .iter()
            .filter(|d| kind(d) == "HorizontalPodAutoscaler")
        {
            let target = &hpa["spec"]["scaleTargetRef"];
            let t = (
                target["kind"].as_str().unwrap_or_default(),
                target["name"].as_str().unwrap_or_default(),
            );
            assert!(
                workload_names.contains(&t),
                "{}: HPA {} scales {t:?}, which does not exist",
                set.name,
                name(hpa)
            );
        }
        for pdb in set.docs.iter().filter(|d| kind(d) == "PodDisruptionBudget") {
            let selector = labels(&pdb["spec"]["selector"]["matchLabels"]);
            assert!(
                workloads(&set).iter().any(|w| subset(
                    &selector,
                    &labels(&w["spec"]["template"]["metadata"]["labels"])
                )),
                "{}: PDB {} selects no pods",
                set.name,
                name(pdb)
            );
        }
        for ing in set.docs.iter().filter(|d| kind(d) == "Ingress") {
            for rule in ing["spec"]["rules"].as_sequence().into_iter().flatten() {
                for p in rule["http"]["paths"].as_sequence().into_iter().flatten() {
                    let svc = p["backend"]["service"]["name"].as_str().unwrap_or_default();
                    let port = p["backend"]["service"]["port"]["name"]
                        .as_str()
                        .unwrap_or_default();
                    let found = set.docs.iter().any(|d| {
                        kind(d) == "Service"
                            && name(d) == svc
                            && d["spec"]["ports"]
                                .as_sequence()
                                .into_iter()
                                .flatten()
                                .any(|sp| sp["name"].as_str() == Some(port))
                    });
                    assert!(
                        found,
                        "{}: Ingress routes to {svc}:{port}, which no Service has",
                        set.name
                    );
                }
            }
        }
    }
}

#[test]
fn names_are_dns_labels() {
    for set in sets() {
        for doc in &set.docs {
            let n = name(doc);
            assert!(
                stackc::check::is_dns_label(n),
                "{}: {} name {n:?}",
                set.name,
                kind(doc)
            );
            if kind(doc) == "Service" {
                assert!(
                    n.starts_with(|c: char| c.is_ascii_lowercase()),
                    "{}: Service {n} must start with a letter",
                    set.name
                );
            }
            labels(&doc["metadata"]["labels"])
                .values()
                .for_each(|v| assert!(v.len() <= 63, "{}: label value {v}", set.name));
        }
    }
}

/// The `$(NAME)` expansions in a value (`$$(` is a literal).
fn expansions_in(value: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = value;
    while let Some(i) = rest.find("$(") {
        if rest[..i].ends_with('$') {
            rest = &rest[i + 2..];
            continue;
        }
        let after = &rest[i + 2..];
        match after.find(')') {
            Some(j) => {
                out.push(after[..j].to_string());
                rest = &after[j..];
            }
            None => break,
        }
    }
    out
}

/// A CloudNativePG Cluster bootstraps from a basic-auth Secret that secrets.sh
/// creates, and clients reach it on the operator's `-rw` and `-ro` Services.
#[test]
fn cloudnativepg_clusters_are_wired() {
    let mut clusters = 0;
    for set in sets() {
        let names: BTreeSet<&str> = set
            .docs
            .iter()
            .filter(|d| kind(d) == "Cluster")
            .map(name)
            .collect();
        for cluster in set.docs.iter().filter(|d| kind(d) == "Cluster") {
            clusters += 1;
            let secret = cluster["spec"]["bootstrap"]["initdb"]["secret"]["name"]
                .as_str()
                .unwrap_or_default();
            assert!(
                set.secrets_script
                    .contains(&format!("create secret generic {secret} --namespace ")),
                "{}: Cluster {} bootstraps from {secret}, which secrets.sh does not create",
                set.name,
                name(cluster)
            );
            assert!(set
                .secrets_script
                .contains("--type=kubernetes.io/basic-auth"));
            assert!(cluster["spec"]["instances"].as_u64().unwrap_or(0) >= 1);
        }
        // Every `<x>-rw` / `<x>-ro` host in an env value is a Cluster's Service.
        for w in workloads(&set) {
            for c in containers(w) {
                for var in c["env"].as_sequence().into_iter().flatten() {
                    let value = var["value"].as_str().unwrap_or_default();
                    for suffix in ["-rw:", "-ro:"] {
                        if let Some(i) = value.find(suffix) {
                            let host = value[..i].rsplit(['@', '/']).next().unwrap_or_default();
                            assert!(
                                names.contains(host),
                                "{}: {} points at {host}{suffix} but no Cluster {host}",
                                set.name,
                                name(w)
                            );
                        }
                    }
                }
            }
        }
    }
    assert!(clusters > 0, "the examples have a CloudNativePG Cluster");
}

/// No secret value is on a program's command line, where `ps` shows it to
/// every user of the machine: `secrets.sh` reads each variable only in shell
/// built-ins (`:`, `case`, `printf` into a file of mode 0600) and hands
/// `kubectl` the files.
#[test]
fn secrets_sh_puts_no_secret_on_a_command_line() {
    for set in sets() {
        let keys: Vec<String> = set
            .secrets_script
            .lines()
            .filter_map(|l| l.trim().strip_prefix("--from-file="))
            .filter_map(|l| l.split('=').next().map(str::to_string))
            .filter(|k| k != "password")
            .collect();
        assert!(
            !keys.is_empty() || !set.secrets_script.contains("kubectl"),
            "{}",
            set.name
        );
        for line in set
            .secrets_script
            .lines()
            .filter(|l| !l.trim_start().starts_with('#'))
        {
            for key in &keys {
                let expanded =
                    line.contains(&format!("${key}")) || line.contains(&format!("${{{key}"));
                if !expanded {
                    continue;
                }
                let builtin = [": \"${", "case \"${", "printf '%s' \""]
                    .iter()
                    .any(|b| line.starts_with(b));
                assert!(
                    builtin,
                    "{}: `{line}` expands {key} outside a shell built-in",
                    set.name
                );
            }
        }
        assert!(set.secrets_script.contains("umask 077"), "{}", set.name);
    }
}

#[test]
fn waits_for_tasks_name_jobs_their_pods_may_read() {
    let mut waits = 0;
    for set in sets() {
        let of = |k: &str, n: &str| {
            set.docs
                .iter()
                .find(|d| kind(d) == k && name(d) == n)
                .unwrap_or_else(|| panic!("{}: no {k} {n}", set.name))
        };
        for w in workloads(&set) {
            let pod = &w["spec"]["template"]["spec"];
            let inits = pod["initContainers"].as_sequence().into_iter().flatten();
            for init in inits.filter(|c| c["command"][0].as_str() == Some("kubectl")) {
                waits += 1;
                let args: Vec<&str> = init["args"]
                    .as_sequence()
                    .expect("in the manifest")
                    .iter()
                    .map(|a| a.as_str().expect("in the manifest"))
                    .collect();
                assert_eq!(args[..2], ["wait", "--for=condition=complete"]);
                let job = args
                    .last()
                    .expect("in the manifest")
                    .strip_prefix("job/")
                    .expect("in the manifest");
                let job_doc = of("Job", job);
                let policy = job_doc["spec"]["template"]["spec"]["restartPolicy"].as_str();
                assert!(matches!(policy, Some("Never" | "OnFailure")), "{job}");
                // The pod's service account may read that Job, and only its
                // init containers hold the account's token.
                let account = pod["serviceAccountName"].as_str().expect("in the manifest");
                let sa = of("ServiceAccount", account);
                assert_eq!(sa["automountServiceAccountToken"].as_bool(), Some(false));
                assert_eq!(pod["automountServiceAccountToken"].as_bool(), Some(false));
                let readable = set
                    .docs
                    .iter()
                    .filter(|d| kind(d) == "RoleBinding")
                    .filter(|b| {
                        b["subjects"]
                            .as_sequence()
                            .expect("in the manifest")
                            .iter()
                            .any(|s| {
                                s["kind"] == "ServiceAccount" && s["name"].as_str() == Some(account)
                            })
                    })
                    .map(|b| {
                        of(
                            "Role",
                            b["roleRef"]["name"].as_str().expect("in the manifest"),
                        )
                    })
                    .any(|role| {
                        role["rules"]
                            .as_sequence()
                            .expect("in the manifest")
                            .iter()
                            .any(|r| {
                                let has = |k: &str, v: &str| {
                                    r[k].as_sequence()
                                        .expect("in the manifest")
                                        .iter()
                                        .any(|x| x.as_str() == Some(v))
                                };
                                has("resources", "jobs")
                                    && has("resourceNames", job)
                                    && ["get", "list", "watch"].iter().all(|v| has("verbs", v))
                            })
                    });
                assert!(readable, "{}: {account} may not read job {job}", set.name);
                let token = "/var/run/secrets/kubernetes.io/serviceaccount";
                let mounts = |c: &Value| -> Vec<String> {
                    c["volumeMounts"]
                        .as_sequence()
                        .into_iter()
                        .flatten()
                        .filter(|m| m["mountPath"].as_str() == Some(token))
                        .map(|m| m["name"].as_str().expect("in the manifest").to_string())
                        .collect()
                };
                let volume = mounts(init)
                    .pop()
                    .expect("the init container mounts a token");
                assert!(pod["volumes"]
                    .as_sequence()
                    .expect("in the manifest")
                    .iter()
                    .any(|v| {
                        v["name"].as_str() == Some(volume.as_str())
                            && v["projected"]["sources"][0]["serviceAccountToken"].is_mapping()
                    }));
                for c in containers(w) {
                    assert!(
                        mounts(c).is_empty(),
                        "{}: {} holds the token",
                        set.name,
                        name(w)
                    );
                }
            }
        }
    }
    assert!(waits > 0, "a case waits for a task");
}

/// The init containers that wait for a dependency (not a task), in a pod.
fn dependency_waits(pod: &Value) -> impl Iterator<Item = &Value> {
    pod["initContainers"]
        .as_sequence()
        .into_iter()
        .flatten()
        .filter(|c| c["command"][0].as_str() == Some("bash"))
}

/// The Service and port a dependency's wait connects to.
fn wait_target(init: &Value) -> (String, u64) {
    let args = &init["args"];
    let host = args[1].as_str().expect("in the manifest").to_string();
    let port = args[2]
        .as_str()
        .expect("in the manifest")
        .parse()
        .expect("a port");
    (host, port)
}

#[test]
fn a_pod_waits_for_each_healthy_dependency_on_its_service() {
    let mut waits = 0;
    for set in sets() {
        let services: BTreeMap<&str, &Value> = set
            .docs
            .iter()
            .filter(|d| kind(d) == "Service")
            .map(|d| (name(d), d))
            .collect();
        let clusters: BTreeSet<String> = set
            .docs
            .iter()
            .filter(|d| kind(d) == "Cluster")
            .map(|d| format!("{}-rw", name(d)))
            .collect();
        for w in &set.docs {
            let pod = match kind(w) {
                "CronJob" => &w["spec"]["jobTemplate"]["spec"]["template"]["spec"],
                "Deployment" | "StatefulSet" | "Job" => &w["spec"]["template"]["spec"],
                _ => continue,
            };
            for init in dependency_waits(pod) {
                waits += 1;
                let (host, port) = wait_target(init);
                // A Service of the namespace with that port, which routes to
                // ready pods only (no `publishNotReadyAddresses`), or
                // CloudNativePG's primary on PostgreSQL's port.
                match services.get(host.as_str()) {
                    Some(s) => {
                        assert!(
                            s["spec"]["ports"]
                                .as_sequence()
                                .into_iter()
                                .flatten()
                                .any(|p| p["port"].as_u64() == Some(port)),
                            "{}: {}: waits for {host}:{port}, which the Service does not serve",
                            set.name,
                            name(w)
                        );
                        assert!(s["spec"]["publishNotReadyAddresses"].is_null());
                    }
                    None => assert!(
                        clusters.contains(&host) && port == 5432,
                        "{}: {}: waits for {host}:{port}, which no Service serves",
                        set.name,
                        name(w)
                    ),
                }
            }
        }
    }
    assert!(waits >= 5, "the examples' pods wait for their dependencies");
}

/// The generated wait, run by bash as the init container runs it: it keeps
/// trying while nothing listens, and ends, successfully, once the port
/// accepts a connection.
#[test]
fn a_dependency_wait_ends_once_its_service_accepts() {
    if !crate::support::require("bash") {
        return;
    }
    let set = sets()
        .into_iter()
        .find(|s| s.name.contains("neural-dsl"))
        .expect("the Neural DSL example");
    let api = set
        .docs
        .iter()
        .find(|d| kind(d) == "Deployment" && name(d) == "api")
        .expect("the api Deployment");
    let init = dependency_waits(&api["spec"]["template"]["spec"])
        .next()
        .expect("api waits for a dependency");
    let command: Vec<String> = init["command"]
        .as_sequence()
        .expect("in the manifest")
        .iter()
        .map(|w| w.as_str().expect("in the manifest").to_string())
        .collect();
    // A free port: bound, then released, so nothing listens on it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port");
    let mut child = std::process::Command::new(&command[0])
        .args(&command[1..])
        .args(["wait", "127.0.0.1", &port.to_string()])
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("bash");
    std::thread::sleep(std::time::Duration::from_secs(3));
    assert!(
        child.try_wait().expect("wait").is_none(),
        "the wait ended while nothing listened"
    );
    let _listener = std::net::TcpListener::bind(("127.0.0.1", port)).expect("listen");
    let start = std::time::Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if start.elapsed() > std::time::Duration::from_secs(10) {
            let _ = child.kill();
            panic!("the wait did not end once the port accepted");
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    assert!(status.success(), "the wait failed: {status}");
}

#[test]
fn a_tasks_job_is_renamed_exactly_when_its_spec_changes() {
    let path = crate::support::root().join("tests/cases/tasks.stack");
    let text = read(&path);
    let job = |text: &str| {
        let c = stackc::compile(text, &options(&path));
        let file = crate::support::artifact(&c, "cluster/k8s/migrate.yaml");
        file.lines()
            .find_map(|l| l.strip_prefix("  name: migrate-"))
            .expect("in the manifest")
            .to_string()
    };
    assert_eq!(job(&text), job(&text));
    let changed = text.replace(
        "command = [\"pnpm\", \"run\", \"migrate\"]",
        "command = [\"pnpm\", \"run\", \"migrate:deploy\"]",
    );
    assert_ne!(changed, text);
    assert_ne!(job(&text), job(&changed));
    // A change elsewhere (the API's replicas) leaves the Job as it is.
    let elsewhere = text.replace("replicas = 2", "replicas = 3");
    assert_ne!(elsewhere, text);
    assert_eq!(job(&text), job(&elsewhere));
}

/// Every https host of an Ingress gets its Secret from a cert-manager
/// Certificate for exactly that host, issued by an ACME Issuer of the set that
/// solves HTTP-01 on the Ingress's own class.
#[test]
fn every_tls_secret_of_an_ingress_is_filled_by_a_certificate() {
    let mut checked = 0;
    for set in sets() {
        for ingress in set.docs.iter().filter(|d| kind(d) == "Ingress") {
            let class = &ingress["spec"]["ingressClassName"];
            for tls in ingress["spec"]["tls"].as_sequence().into_iter().flatten() {
                let secret = tls["secretName"].as_str().expect("a secret name");
                let cert = set
                    .docs
                    .iter()
                    .find(|d| {
                        kind(d) == "Certificate" && d["spec"]["secretName"].as_str() == Some(secret)
                    })
                    .unwrap_or_else(|| panic!("{}: no Certificate fills {secret}", set.name));
                assert_eq!(cert["spec"]["dnsNames"], tls["hosts"], "{}", set.name);
                let issuer_name = cert["spec"]["issuerRef"]["name"].as_str();
                let issuer = set
                    .docs
                    .iter()
                    .find(|d| kind(d) == "Issuer" && Some(name(d)) == issuer_name)
                    .unwrap_or_else(|| panic!("{}: no Issuer {issuer_name:?}", set.name));
                let acme = &issuer["spec"]["acme"];
                assert!(acme["server"]
                    .as_str()
                    .is_some_and(|s| s.starts_with("https://")));
                assert_eq!(
                    &acme["solvers"][0]["http01"]["ingress"]["ingressClassName"],
                    class
                );
                checked += 1;
            }
        }
    }
    assert!(checked > 0, "the examples have https Ingress hosts");
}

/// Every route of every Kubernetes topology reaches its Ingress with what it
/// asks (as ingress-nginx's annotations read it): its timeouts in seconds,
/// its body size, its rate and burst; on its own `domain` when it has one.
/// A route without settings is in an Ingress without annotations; a route
/// with its own domain is served there even without a public URL.
#[test]
fn each_ingress_keeps_its_routes_settings() {
    let mut routes = 0;
    for path in stack_files("examples")
        .into_iter()
        .chain(stack_files("tests/cases"))
    {
        let options = options(&path);
        let analysis = stackc::analyze(read(&path), &options, stackc::Disposal::Free);
        let Some(plan) = analysis.plan else {
            continue;
        };
        let sets = sets();
        for topo in plan
            .topologies
            .iter()
            .filter(|t| t.platform == stackc::model::Platform::Kubernetes)
        {
            let set = sets
                .iter()
                .find(|s| s.name == format!("{} {}", rel(&path), topo.name))
                .unwrap_or_else(|| panic!("{} {}: no manifests", rel(&path), topo.name));
            if topo.gateway.is_some() {
                // HTTPRoutes instead (http_routes_attach_to_the_gateway...).
                continue;
            }
            for inst in topo.hosts.iter().flat_map(|h| &h.services) {
                // On the Ingress: with a public URL, or on its own domain.
                let public = inst.public_url.is_some();
                for route in inst.routes.iter().filter(|r| public || r.domain.is_some()) {
                    let ingress = set
                        .docs
                        .iter()
                        .filter(|d| kind(d) == "Ingress")
                        .find(|d| {
                            d["spec"]["rules"]
                                .as_sequence()
                                .into_iter()
                                .flatten()
                                .any(|r| {
                                    route
                                        .domain
                                        .as_deref()
                                        .is_none_or(|h| r["host"].as_str() == Some(h))
                                        && r["http"]["paths"]
                                            .as_sequence()
                                            .into_iter()
                                            .flatten()
                                            .any(|p| {
                                                p["path"].as_str() == Some(&route.path)
                                                    && p["backend"]["service"]["name"].as_str()
                                                        == Some(&inst.name)
                                            })
                                })
                        })
                        .unwrap_or_else(|| {
                            panic!(
                                "{}: no Ingress routes {} to {}",
                                set.name, route.path, inst.name
                            )
                        });
                    let annotation = |key: &str| {
                        ingress["metadata"]["annotations"]
                            [format!("nginx.ingress.kubernetes.io/{key}")]
                        .as_str()
                        .map(str::to_string)
                    };
                    let s = &route.settings;
                    let seconds = |d: Option<stackc::model::Duration>| {
                        d.map(|d| d.0.div_ceil(1000).to_string())
                    };
                    assert_eq!(
                        annotation("proxy-connect-timeout"),
                        seconds(s.connect_timeout),
                        "{}",
                        set.name
                    );
                    assert_eq!(
                        annotation("proxy-send-timeout"),
                        seconds(s.send_timeout),
                        "{}",
                        set.name
                    );
                    assert_eq!(
                        annotation("proxy-read-timeout"),
                        seconds(s.read_timeout),
                        "{}",
                        set.name
                    );
                    assert_eq!(
                        annotation("limit-rps"),
                        s.rate.map(|r| r.rate.to_string()),
                        "{}",
                        set.name
                    );
                    if let Some(r) = s.rate.filter(|r| r.burst > 0 && r.burst % r.rate == 0) {
                        assert_eq!(
                            annotation("limit-burst-multiplier"),
                            Some((r.burst / r.rate).to_string())
                        );
                    }
                    assert_eq!(
                        annotation("proxy-body-size").is_some(),
                        s.body_size.is_some(),
                        "{}",
                        set.name
                    );
                    if *s == stackc::plan::RouteSettings::default() {
                        assert!(
                            ingress["metadata"]["annotations"].is_null(),
                            "{}: {:?}",
                            set.name,
                            ingress["metadata"]
                        );
                    }
                    routes += 1;
                }
            }
        }
    }
    assert!(routes >= 5, "{routes} routes on Kubernetes");
}

/// Every PodMonitor selects the pods of one workload (or one CloudNativePG
/// cluster's instances) and scrapes a port they name, and its endpoints are a
/// scrape config Prometheus accepts (`promtool check config`: paths,
/// durations, a timeout within the interval). A topology with `scrape =
/// annotations` has none, and its annotations name a container port.
#[test]
fn pod_monitors_and_scrape_annotations_name_what_exists() {
    let mut monitors = 0;
    let mut jobs = Vec::new();
    for set in sets() {
        let pods: Vec<(&str, &Value)> = set
            .docs
            .iter()
            .filter(|d| matches!(kind(d), "Deployment" | "StatefulSet"))
            .map(|d| (name(d), &d["spec"]["template"]))
            .collect();
        let clusters: BTreeSet<&str> = set
            .docs
            .iter()
            .filter(|d| kind(d) == "Cluster")
            .map(name)
            .collect();
        for m in set.docs.iter().filter(|d| kind(d) == "PodMonitor") {
            monitors += 1;
            let selector = labels(&m["spec"]["selector"]["matchLabels"]);
            let endpoint = &m["spec"]["podMetricsEndpoints"][0];
            let port = endpoint["port"].as_str().expect("a port name");
            if let Some(cluster) = selector.get("cnpg.io/cluster") {
                assert!(
                    clusters.contains(cluster.as_str()),
                    "{}: {cluster}",
                    set.name
                );
                assert_eq!(port, "metrics", "CloudNativePG's exporter port");
            } else {
                let selected: Vec<&(&str, &Value)> = pods
                    .iter()
                    .filter(|(_, t)| subset(&selector, &labels(&t["metadata"]["labels"])))
                    .collect();
                assert_eq!(
                    selected.len(),
                    1,
                    "{}: {} selects {}",
                    set.name,
                    name(m),
                    selected.len()
                );
                let names: BTreeSet<String> = containers_of(selected[0].1)
                    .iter()
                    .flat_map(|c| port_names(c))
                    .collect();
                assert!(
                    names.contains(port),
                    "{}: {} scrapes {port}",
                    set.name,
                    name(m)
                );
            }
            jobs.push(format!(
                "  - job_name: {:?}\n    metrics_path: {:?}\n{}{}    static_configs:\n      - targets: [\"localhost:9\"]\n",
                format!("{} {}", set.name.replace(['/', ' '], "-"), name(m)),
                endpoint["path"].as_str().expect("a path"),
                endpoint["interval"]
                    .as_str()
                    .map(|i| format!("    scrape_interval: {i}\n"))
                    .unwrap_or_default(),
                endpoint["scrapeTimeout"]
                    .as_str()
                    .map(|t| format!("    scrape_timeout: {t}\n"))
                    .unwrap_or_default(),
            ));
        }
        let annotated: Vec<&(&str, &Value)> = pods
            .iter()
            .filter(|(_, t)| {
                t["metadata"]["annotations"]["prometheus.io/scrape"].as_str() == Some("true")
            })
            .collect();
        for (workload, template) in &annotated {
            let a = &template["metadata"]["annotations"];
            let port: u64 = a["prometheus.io/port"]
                .as_str()
                .and_then(|p| p.parse().ok())
                .expect("a port");
            let ports: BTreeSet<u64> = containers_of(template)
                .iter()
                .flat_map(|c| c["ports"].as_sequence().into_iter().flatten())
                .filter_map(|p| p["containerPort"].as_u64())
                .collect();
            assert!(
                ports.contains(&port),
                "{}: {workload} annotates port {port}",
                set.name
            );
            assert!(a["prometheus.io/path"]
                .as_str()
                .is_some_and(|p| p.starts_with('/')));
            assert!(
                !set.docs.iter().any(|d| kind(d) == "PodMonitor"),
                "{}: annotations and PodMonitors both",
                set.name
            );
        }
    }
    assert!(monitors >= 2, "the examples' metrics have PodMonitors");
    if !crate::support::require("promtool") {
        return;
    }
    let dir = tempfile::tempdir().expect("a temporary directory");
    let file = dir.path().join("prometheus.yml");
    std::fs::write(&file, format!("scrape_configs:\n{}", jobs.concat())).expect("write");
    let out = std::process::Command::new("promtool")
        .args(["check", "config"])
        .arg(&file)
        .output()
        .expect("promtool");
    assert!(
        out.status.success(),
        "promtool check config: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn containers_of(template: &Value) -> Vec<&Value> {
    template["spec"]["containers"]
        .as_sequence()
        .into_iter()
        .flatten()
        .collect()
}

/// With a Gateway, the public routes are HTTPRoutes attached to it, and no
/// Ingress: each rule a path prefix to a Service port that exists, a
/// stripped prefix rewritten to `/`.
#[test]
fn http_routes_attach_to_the_gateway_and_reach_services() {
    let mut rules = 0;
    for set in sets() {
        let routes: Vec<&Value> = set.docs.iter().filter(|d| kind(d) == "HTTPRoute").collect();
        if routes.is_empty() {
            continue;
        }
        assert!(
            !set.docs.iter().any(|d| kind(d) == "Ingress"),
            "{}: HTTPRoutes and Ingresses both",
            set.name
        );
        for r in routes {
            assert_eq!(r["spec"]["parentRefs"][0]["name"].as_str(), Some("public"));
            assert_eq!(
                r["spec"]["parentRefs"][0]["namespace"].as_str(),
                Some("infra")
            );
            assert_eq!(r["spec"]["hostnames"].as_sequence().map(Vec::len), Some(1));
            for rule in r["spec"]["rules"].as_sequence().expect("rules") {
                rules += 1;
                let path = rule["matches"][0]["path"]["value"]
                    .as_str()
                    .expect("a path");
                assert!(path.starts_with('/'));
                assert_eq!(
                    rule["matches"][0]["path"]["type"].as_str(),
                    Some("PathPrefix")
                );
                let backend = &rule["backendRefs"][0];
                let service = backend["name"].as_str().expect("a backend");
                let port = backend["port"].as_u64().expect("a port");
                let served = set.docs.iter().any(|d| {
                    kind(d) == "Service"
                        && name(d) == service
                        && d["spec"]["ports"]
                            .as_sequence()
                            .into_iter()
                            .flatten()
                            .any(|p| p["port"].as_u64() == Some(port))
                });
                assert!(
                    served,
                    "{}: {} routes to {service}:{port}",
                    set.name,
                    name(r)
                );
                if path == "/api/" {
                    let rewrite = &rule["filters"][0]["urlRewrite"]["path"];
                    assert_eq!(rewrite["type"].as_str(), Some("ReplacePrefixMatch"));
                    assert_eq!(rewrite["replacePrefixMatch"].as_str(), Some("/"));
                }
            }
        }
    }
    assert!(rules >= 3, "the Gateway case routes three paths");
}
