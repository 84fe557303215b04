//! The NetworkPolicies of every Kubernetes topology, evaluated as the
//! NetworkPolicy API documents them (kubernetes.io, "Network Policies": a pod
//! that a policy of type Ingress selects is isolated, and a connection to it
//! is allowed when some policy that selects it has a rule whose ports and
//! peers both match), written out below, against the connections the
//! manifests themselves make: a pod that names a Service (in its env, its
//! command, its init containers, a ConfigMap it mounts) reaches the pods that
//! Service selects, the ingress controller reaches the Ingresses' backends,
//! anyone reaches a LoadBalancer, and CloudNativePG's operator and instances
//! reach the instances. Every such connection is allowed, and every other one
//! from a pod of the stack, the ingress controller, the operator, a pod of
//! another namespace or the outside is denied. No CNI runs here.

use std::collections::{BTreeMap, BTreeSet};

use serde_norway::Value;

use crate::kubernetes::{sets, Set};

type Labels = BTreeMap<String, String>;

/// Who opens a connection.
#[derive(Debug, Clone, PartialEq)]
enum Source {
    Pod {
        namespace: String,
        labels: Labels,
    },
    /// An address outside the cluster.
    Outside,
}

/// A pod that accepts connections: its name (for messages), labels, ports.
#[derive(Debug, Clone)]
struct Target {
    name: String,
    labels: Labels,
    ports: BTreeSet<u64>,
}

fn labels(v: &Value) -> Labels {
    v.as_mapping()
        .into_iter()
        .flatten()
        .map(|(k, v)| {
            (
                k.as_str().unwrap_or_default().to_string(),
                v.as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// A label selector with `matchLabels` only (stackc writes no expressions):
/// every label it names, with that value. An empty one selects everything.
fn selects(selector: &Value, of: &Labels) -> bool {
    assert!(
        selector["matchExpressions"].is_null(),
        "matchExpressions are not evaluated here"
    );
    labels(&selector["matchLabels"])
        .iter()
        .all(|(k, v)| of.get(k) == Some(v))
}

fn peer_matches(peer: &Value, source: &Source, namespace: &str) -> bool {
    let Source::Pod {
        namespace: ns,
        labels: pod,
    } = source
    else {
        return false;
    };
    let pods = &peer["podSelector"];
    let namespaces = &peer["namespaceSelector"];
    assert!(peer["ipBlock"].is_null(), "ipBlock is not evaluated here");
    if namespaces.is_null() {
        // A pod selector alone: pods of the policy's own namespace.
        return ns == namespace && selects(pods, pod);
    }
    let ns_labels = Labels::from([("kubernetes.io/metadata.name".to_string(), ns.clone())]);
    selects(namespaces, &ns_labels) && (pods.is_null() || selects(pods, pod))
}

/// Whether the policies let `source` connect to `target` on `port`.
fn allowed(
    policies: &[&Value],
    namespace: &str,
    source: &Source,
    target: &Target,
    port: u64,
) -> bool {
    let selecting: Vec<&&Value> = policies
        .iter()
        .filter(|p| {
            let types: Vec<&str> = p["spec"]["policyTypes"]
                .as_sequence()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            types.contains(&"Ingress") && selects(&p["spec"]["podSelector"], &target.labels)
        })
        .collect();
    if selecting.is_empty() {
        return true;
    }
    selecting.iter().any(|p| {
        p["spec"]["ingress"]
            .as_sequence()
            .into_iter()
            .flatten()
            .any(|rule| {
                let ports = rule["ports"].as_sequence();
                let port_ok = ports.is_none_or(|ps| {
                    ps.is_empty() || ps.iter().any(|x| x["port"].as_u64() == Some(port))
                });
                let from = rule["from"].as_sequence();
                let peer_ok = from.is_none_or(|f| {
                    f.is_empty() || f.iter().any(|peer| peer_matches(peer, source, namespace))
                });
                port_ok && peer_ok
            })
    })
}

/// The pod spec and the object's name of every workload.
fn pod_specs(set: &Set) -> Vec<(&Value, &Value)> {
    set.docs
        .iter()
        .filter_map(|d| {
            let spec = match d["kind"].as_str()? {
                "Deployment" | "StatefulSet" | "Job" => &d["spec"]["template"],
                "CronJob" => &d["spec"]["jobTemplate"]["spec"]["template"],
                _ => return None,
            };
            Some((d, spec))
        })
        .collect()
}

fn kind_docs<'a>(set: &'a Set, kind: &str) -> Vec<&'a Value> {
    set.docs
        .iter()
        .filter(|d| d["kind"].as_str() == Some(kind))
        .collect()
}

fn name(d: &Value) -> &str {
    d["metadata"]["name"].as_str().unwrap_or_default()
}

/// The names a pod's text mentions, as host names: each word of letters,
/// digits, `.`, `-` and `_` (which no host name has); and, apart, what
/// follows a word's first dot, the Service of a pod's DNS name under a
/// headless Service (`redis-0.redis-headless`).
fn mentioned(text: &str) -> (BTreeSet<String>, BTreeSet<String>) {
    let mut words = BTreeSet::new();
    let mut pods = BTreeSet::new();
    for word in text.split(|c: char| !(c.is_ascii_alphanumeric() || "._-".contains(c))) {
        let word = word.trim_matches('.');
        words.insert(word.to_string());
        // A StatefulSet's pod: `<name>-<ordinal>.<service>`.
        let pod = |p: &str| {
            p.rsplit_once('-')
                .is_some_and(|(_, n)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        };
        if let Some((_, rest)) = word.split_once('.').filter(|(p, _)| pod(p)) {
            pods.insert(rest.to_string());
        }
    }
    (words, pods)
}

/// Everything a pod runs with: its spec, and the files of a ConfigMap it
/// mounts that its spec names. The names of objects and fields are left out
/// (a container `redis` and an image `redis:7-alpine` name no host).
fn pod_text(set: &Set, template: &Value) -> String {
    let mut spec = template["spec"].clone();
    strip_names(&mut spec);
    let own = serde_norway::to_string(&spec).unwrap_or_default();
    let mut text = own.clone();
    for v in template["spec"]["volumes"]
        .as_sequence()
        .into_iter()
        .flatten()
    {
        let Some(cm) = v["configMap"]["name"].as_str() else {
            continue;
        };
        for d in kind_docs(set, "ConfigMap")
            .into_iter()
            .filter(|d| name(d) == cm)
        {
            // The files of the ConfigMap that the pod runs or reads: those
            // its spec names.
            for (file, content) in d["data"].as_mapping().into_iter().flatten() {
                let file = file.as_str().unwrap_or_default();
                if own.contains(file) || read_by_image(&template["spec"], v, file) {
                    text.push_str(content.as_str().unwrap_or_default());
                }
            }
        }
    }
    text
}

/// Removes what names no host: every `name` (of a container, a port, a
/// volume, a variable, a Secret), the images, the service account and the
/// label selectors (of the pod's anti-affinity).
fn strip_names(v: &mut Value) {
    match v {
        Value::Mapping(m) => {
            for key in [
                "name",
                "image",
                "serviceAccountName",
                "claimName",
                "labelSelector",
            ] {
                m.remove(key);
            }
            for (_, child) in m.iter_mut() {
                strip_names(child);
            }
        }
        Value::Sequence(items) => items.iter_mut().for_each(strip_names),
        // The statements of a psql here-document and Redis's `user`
        // directives name roles, users and tables (a role is named after its
        // client), not hosts: the host psql reaches is its environment's.
        Value::String(line) => {
            while let Some(start) = line.find("<<'SQL'\n") {
                let end = line[start..]
                    .find("\nSQL\n")
                    .map_or(line.len(), |e| start + e + "\nSQL\n".len());
                line.replace_range(start..end, "");
            }
            if line.contains("\nuser ") {
                *line = line
                    .lines()
                    .filter(|l| !(l.starts_with("user ") && l.contains(" on ")))
                    .map(|l| format!("{l}\n"))
                    .collect();
            }
        }
        _ => {}
    }
}

/// The files an image reads without being told, where the pod mounts them:
/// the official HAProxy image's `haproxy.cfg`.
fn read_by_image(spec: &Value, volume: &Value, file: &str) -> bool {
    const DEFAULTS: [(&str, &str); 1] = [("/usr/local/etc/haproxy", "haproxy.cfg")];
    spec["containers"]
        .as_sequence()
        .into_iter()
        .flatten()
        .flat_map(|c| c["volumeMounts"].as_sequence().into_iter().flatten())
        .filter(|m| m["name"] == volume["name"])
        .any(|m| DEFAULTS.contains(&(m["mountPath"].as_str().unwrap_or_default(), file)))
}

/// The name forms a Service is reached by in `namespace`.
fn forms(service: &str, namespace: &str) -> [String; 4] {
    [
        service.to_string(),
        format!("{service}.{namespace}"),
        format!("{service}.{namespace}.svc"),
        format!("{service}.{namespace}.svc.cluster.local"),
    ]
}

struct Cluster {
    namespace: String,
    policies: Vec<Value>,
    targets: Vec<Target>,
    /// Service name → (the pods' selector, the target ports).
    services: BTreeMap<String, (Value, BTreeSet<u64>)>,
    /// A Service's port, by its name and by its number: the target port,
    /// where a route's backend names one.
    backend_ports: BTreeMap<(String, String), u64>,
    /// The CloudNativePG clusters' names.
    cnpg: BTreeSet<String>,
}

const CNPG_PORTS: [u64; 3] = [5432, 8000, 9187];

fn cluster(set: &Set) -> Cluster {
    let namespace = kind_docs(set, "Namespace")
        .first()
        .map(|n| name(n).to_string())
        .expect("a Namespace");
    let mut targets = Vec::new();
    for (doc, template) in pod_specs(set) {
        let ports = template["spec"]["containers"]
            .as_sequence()
            .into_iter()
            .flatten()
            .flat_map(|c| c["ports"].as_sequence().into_iter().flatten())
            .filter_map(|p| p["containerPort"].as_u64())
            .collect();
        targets.push(Target {
            name: name(doc).to_string(),
            labels: labels(&template["metadata"]["labels"]),
            ports,
        });
    }
    let cnpg: BTreeSet<String> = kind_docs(set, "Cluster")
        .iter()
        .map(|c| name(c).to_string())
        .collect();
    for c in &cnpg {
        targets.push(Target {
            name: format!("{c}-1"),
            labels: Labels::from([("cnpg.io/cluster".to_string(), c.clone())]),
            ports: CNPG_PORTS.into(),
        });
    }
    let mut services = BTreeMap::new();
    let mut backend_ports = BTreeMap::new();
    for s in kind_docs(set, "Service") {
        let selector = s["spec"]["selector"].clone();
        // The target ports, as numbers: a named one is the selected pods'.
        let target = |p: &Value| match &p["targetPort"] {
            Value::Number(n) => n.as_u64(),
            Value::String(port_name) => pod_specs(set)
                .iter()
                .filter(|(_, t)| {
                    let mut sel = Value::Mapping(Default::default());
                    sel["matchLabels"] = selector.clone();
                    selects(&sel, &labels(&t["metadata"]["labels"]))
                })
                .flat_map(|(_, t)| t["spec"]["containers"].as_sequence().into_iter().flatten())
                .flat_map(|c| c["ports"].as_sequence().into_iter().flatten())
                .find(|cp| cp["name"].as_str() == Some(port_name))
                .and_then(|cp| cp["containerPort"].as_u64()),
            _ => p["port"].as_u64(),
        };
        let mut ports = BTreeSet::new();
        for p in s["spec"]["ports"].as_sequence().into_iter().flatten() {
            let Some(t) = target(p) else { continue };
            ports.insert(t);
            for key in [
                p["name"].as_str().map(str::to_string),
                p["port"].as_u64().map(|n| n.to_string()),
            ]
            .into_iter()
            .flatten()
            {
                backend_ports.insert((name(s).to_string(), key), t);
            }
        }
        let mut sel = Value::Mapping(Default::default());
        sel["matchLabels"] = selector;
        services.insert(name(s).to_string(), (sel, ports));
    }
    for c in &cnpg {
        let mut sel = Value::Mapping(Default::default());
        sel["matchLabels"]["cnpg.io/cluster"] = Value::String(c.clone());
        for suffix in ["-rw", "-ro", "-r"] {
            services.insert(
                format!("{c}{suffix}"),
                (sel.clone(), BTreeSet::from([5432])),
            );
        }
    }
    Cluster {
        backend_ports,
        namespace,
        policies: kind_docs(set, "NetworkPolicy")
            .into_iter()
            .cloned()
            .collect(),
        targets,
        services,
        cnpg,
    }
}

/// The Services of the Sentinel-watched Redis that `service` belongs to
/// (`redis`, `redis-headless`, `redis-sentinel`, `redis-sentinel-headless`)
/// and its master endpoint's workload (`redis-proxy`), when it does.
fn sentinel_family(set: &Set, service: &str) -> Vec<String> {
    let statefulsets: BTreeSet<&str> = kind_docs(set, "StatefulSet")
        .into_iter()
        .map(name)
        .collect();
    statefulsets
        .iter()
        .filter(|n| statefulsets.contains(format!("{n}-sentinel").as_str()))
        .map(|n| {
            [
                n.to_string(),
                format!("{n}-headless"),
                format!("{n}-sentinel"),
                format!("{n}-sentinel-headless"),
                format!("{n}-proxy"),
            ]
        })
        .find(|family| family.iter().any(|m| m == service))
        .map(Vec::from)
        .unwrap_or_default()
}

/// A pod in another namespace, with the name label the operators' charts give.
fn actor(namespace: &str, app: &str) -> Source {
    Source::Pod {
        namespace: namespace.to_string(),
        labels: Labels::from([("app.kubernetes.io/name".to_string(), app.to_string())]),
    }
}

/// The connections the manifests make: (source, target pod, port).
fn needed(set: &Set, c: &Cluster) -> Vec<(Source, String, u64)> {
    let mut out = Vec::new();
    let reach = |source: &Source, service: &str, out: &mut Vec<(Source, String, u64)>| {
        let Some((selector, ports)) = c.services.get(service) else {
            return;
        };
        for t in c.targets.iter().filter(|t| selects(selector, &t.labels)) {
            for p in ports {
                out.push((source.clone(), t.name.clone(), *p));
            }
        }
    };
    for (doc, template) in pod_specs(set) {
        let source = Source::Pod {
            namespace: c.namespace.clone(),
            labels: labels(&template["metadata"]["labels"]),
        };
        let (words, pods) = mentioned(&pod_text(set, template));
        let own = labels(&template["metadata"]["labels"]);
        for (service, (selector, _)) in &c.services {
            // A pod names its own workload (its containers, its config): a
            // connection to the pods of its own Service is one to another
            // pod's DNS name (a replica to its master).
            let named = if selects(selector, &own) {
                forms(service, &c.namespace)
                    .iter()
                    .any(|f| pods.contains(f))
            } else {
                forms(service, &c.namespace)
                    .iter()
                    .any(|f| words.contains(f) || pods.contains(f))
            };
            if named {
                reach(&source, service, &mut out);
                // A policy is per service, not per attribute: a consumer of a
                // Sentinel-watched Redis may reach its nodes (a Sentinel client
                // connects to the master it is told of), its sentinels and its
                // master endpoint, whichever of them it names.
                let outside = sentinel_family(set, name(doc)).is_empty();
                for member in sentinel_family(set, service)
                    .into_iter()
                    .filter(|_| outside)
                {
                    reach(&source, &member, &mut out);
                }
            }
        }
    }
    let controller = controller(set);
    // A route's backend: the port of the Service it names, only.
    let backend = |service: &str, port: &Value, out: &mut Vec<(Source, String, u64)>| {
        let key = port
            .as_str()
            .map(str::to_string)
            .or_else(|| port.as_u64().map(|n| n.to_string()));
        let target = key.and_then(|k| c.backend_ports.get(&(service.to_string(), k)));
        match (target, c.services.get(service)) {
            (Some(t), Some((selector, _))) => {
                for pod in c.targets.iter().filter(|p| selects(selector, &p.labels)) {
                    out.push((controller.clone(), pod.name.clone(), *t));
                }
            }
            _ => reach(&controller, service, out),
        }
    };
    for route in kind_docs(set, "HTTPRoute") {
        for rule in route["spec"]["rules"].as_sequence().into_iter().flatten() {
            for b in rule["backendRefs"].as_sequence().into_iter().flatten() {
                backend(b["name"].as_str().unwrap_or_default(), &b["port"], &mut out);
            }
        }
    }
    for ing in kind_docs(set, "Ingress") {
        for rule in ing["spec"]["rules"].as_sequence().into_iter().flatten() {
            for path in rule["http"]["paths"].as_sequence().into_iter().flatten() {
                let service = &path["backend"]["service"];
                let port = if service["port"]["name"].is_null() {
                    &service["port"]["number"]
                } else {
                    &service["port"]["name"]
                };
                backend(service["name"].as_str().unwrap_or_default(), port, &mut out);
            }
        }
    }
    for s in kind_docs(set, "Service") {
        if s["spec"]["type"].as_str() == Some("LoadBalancer") {
            reach(&Source::Outside, name(s), &mut out);
        }
    }
    scraped(set, c, &mut out);
    for cl in &c.cnpg {
        let target = format!("{cl}-1");
        out.push((actor("cnpg-system", "cloudnative-pg"), target.clone(), 8000));
        let peer = Source::Pod {
            namespace: c.namespace.clone(),
            labels: Labels::from([("cnpg.io/cluster".to_string(), cl.clone())]),
        };
        out.push((peer, target, 5432));
    }
    out
}

/// Where the cluster's Prometheus runs: the namespace the stack names for
/// it (`monitoring_namespace`), a fact of the cluster the file states, else
/// kube-prometheus-stack's usual one.
fn prometheus(set: &Set) -> Source {
    actor(
        &stated(set, "monitoring_namespace", "monitoring"),
        "prometheus",
    )
}

/// Where the ingress controller or the Gateway's data plane runs: as the
/// stack states it (`ingress_namespace`), else ingress-nginx's namespace.
fn controller(set: &Set) -> Source {
    actor(
        &stated(set, "ingress_namespace", "ingress-nginx"),
        "ingress-nginx",
    )
}

/// A setting of the set's stack file, as written, or its default.
fn stated(set: &Set, field: &str, default: &str) -> String {
    let path = set.name.split(' ').next().unwrap_or_default();
    let text = crate::support::read(&crate::support::root().join(path));
    text.lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix(&format!("{field} = "))
                .map(str::to_string)
        })
        .map_or(default.to_string(), |v| v.trim_matches('"').to_string())
}

/// What the cluster's Prometheus scrapes: each PodMonitor's pods on its
/// endpoints' ports, each pod with `prometheus.io/scrape` on the annotated
/// port (a CloudNativePG cluster's through its inherited annotations).
fn scraped(set: &Set, c: &Cluster, out: &mut Vec<(Source, String, u64)>) {
    let prometheus = prometheus(set);
    for m in kind_docs(set, "PodMonitor") {
        for endpoint in m["spec"]["podMetricsEndpoints"]
            .as_sequence()
            .into_iter()
            .flatten()
        {
            let port_name = endpoint["port"].as_str().unwrap_or_default();
            for t in c
                .targets
                .iter()
                .filter(|t| selects(&m["spec"]["selector"], &t.labels))
            {
                let port = named_port(set, t, port_name)
                    .unwrap_or_else(|| panic!("{}: {}: no port {port_name}", set.name, t.name));
                out.push((prometheus.clone(), t.name.clone(), port));
            }
        }
    }
    for (doc, template) in pod_specs(set) {
        annotated(
            &template["metadata"]["annotations"],
            name(doc),
            &prometheus,
            out,
        );
    }
    for cl in kind_docs(set, "Cluster") {
        let target = format!("{}-1", name(cl));
        annotated(
            &cl["spec"]["inheritedMetadata"]["annotations"],
            &target,
            &prometheus,
            out,
        );
    }
}

fn annotated(
    annotations: &Value,
    target: &str,
    prometheus: &Source,
    out: &mut Vec<(Source, String, u64)>,
) {
    if annotations["prometheus.io/scrape"].as_str() == Some("true") {
        let port = annotations["prometheus.io/port"]
            .as_str()
            .and_then(|p| p.parse().ok())
            .expect("an annotated port");
        out.push((prometheus.clone(), target.to_string(), port));
    }
}

/// A named container port of a target: its workload's, or a CloudNativePG
/// instance's exporter.
fn named_port(set: &Set, target: &Target, port_name: &str) -> Option<u64> {
    if target.labels.contains_key("cnpg.io/cluster") {
        return (port_name == "metrics").then_some(9187);
    }
    pod_specs(set)
        .iter()
        .find(|(d, _)| name(d) == target.name)
        .and_then(|(_, t)| {
            t["spec"]["containers"]
                .as_sequence()
                .into_iter()
                .flatten()
                .flat_map(|c| c["ports"].as_sequence().into_iter().flatten())
                .find(|p| p["name"].as_str() == Some(port_name))
                .and_then(|p| p["containerPort"].as_u64())
        })
}

#[test]
fn network_policies_allow_exactly_the_connections_the_manifests_make() {
    let mut checked = 0;
    for set in sets() {
        let c = cluster(&set);
        assert!(!c.policies.is_empty(), "{}: no NetworkPolicy", set.name);
        let policies: Vec<&Value> = c.policies.iter().collect();
        let needed = needed(&set, &c);
        let mut sources: Vec<Source> = needed.iter().map(|(s, _, _)| s.clone()).collect();
        sources.extend([
            actor("default", "stranger"),
            controller(&set),
            actor("cnpg-system", "cloudnative-pg"),
            prometheus(&set),
            Source::Outside,
        ]);
        sources.extend(pod_specs(&set).iter().map(|(_, t)| Source::Pod {
            namespace: c.namespace.clone(),
            labels: labels(&t["metadata"]["labels"]),
        }));
        sources.dedup();
        for source in &sources {
            for target in &c.targets {
                for port in &target.ports {
                    // A LoadBalancer's port is anyone's, the cluster's pods too.
                    let want = needed.iter().any(|(s, t, p)| {
                        (s == source || *s == Source::Outside) && *t == target.name && p == port
                    });
                    let got = allowed(&policies, &c.namespace, source, target, *port);
                    assert_eq!(
                        got, want,
                        "{}: {source:?} to {}:{port}: allowed {got}, needed {want}",
                        set.name, target.name
                    );
                    checked += 1;
                }
            }
        }
    }
    assert!(checked > 200, "only {checked} connections checked");
}

/// The cluster's Prometheus reaches a metrics port and nothing else of the
/// Neural DSL example (its `api` serves metrics on `http`).
#[test]
fn the_clusters_prometheus_reaches_the_metrics_ports_only() {
    let set = sets()
        .into_iter()
        .find(|s| s.name.contains("neural-dsl"))
        .expect("the Neural DSL example");
    let c = cluster(&set);
    let policies: Vec<&Value> = c.policies.iter().collect();
    let prometheus = actor("monitoring", "prometheus");
    for target in &c.targets {
        for port in &target.ports {
            let want = target.name == "api" && *port == 8000;
            assert_eq!(
                allowed(&policies, &c.namespace, &prometheus, target, *port),
                want,
                "Prometheus to {}:{port}",
                target.name
            );
        }
    }
}
