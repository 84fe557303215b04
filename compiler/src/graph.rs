//! `stackc graph`: a topology as a picture, in Graphviz `dot` or Mermaid. Hosts
//! are clusters holding the containers that run there (the services, and the
//! proxies, sentinels, etcd members and HAProxies stackc adds); an edge goes
//! from a container to what it depends on or connects to (to the container on
//! its own host, else to every container of that service; from a proxy, to
//! every container it balances over); the members of one HA service are
//! joined by dashed edges (the mode is in their labels); a dotted edge goes
//! from a sentinel to the node it watches and from a Prometheus server to
//! what it scrapes.

use std::collections::{HashMap, HashSet};

use crate::model::HaMode;
use crate::plan::{Added, Instance, Plan, TopologyPlan};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GraphFormat {
    Dot,
    Mermaid,
}

/// One container, with its node id.
struct Node<'p> {
    id: String,
    host: usize,
    inst: &'p Instance,
}

/// The nodes, the dependency edges, the HA edges and the watching edges of a
/// topology.
struct Shape<'p> {
    nodes: Vec<Node<'p>>,
    edges: Vec<(usize, usize)>,
    ha: Vec<(usize, usize, &'p str)>,
    /// A sentinel to the node it watches, a Prometheus server to what it
    /// scrapes: drawn dotted, and left out of the layout's ranks.
    watches: Vec<(usize, usize)>,
}

fn id(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

/// The nodes and edges of a topology, each lookup through a map: the nodes of
/// a service, the node of a service on a host, the proxies of a host, the
/// edges drawn so far (a chain of 100,000 services is drawn in linear time).
fn shape(topo: &TopologyPlan) -> Shape<'_> {
    let mut nodes = Vec::new();
    for (h, host) in topo.hosts.iter().enumerate() {
        for inst in &host.services {
            nodes.push(Node {
                id: id(&format!("{}__{}__{}", topo.name, host.name, inst.name)),
                host: h,
                inst,
            });
        }
    }
    let mut of_service: HashMap<&str, Vec<usize>> = HashMap::default();
    let mut on_host: HashMap<(usize, &str), usize> = HashMap::default();
    for (j, m) in nodes.iter().enumerate() {
        of_service.entry(m.inst.name.as_str()).or_default().push(j);
        on_host.entry((m.host, m.inst.name.as_str())).or_insert(j);
    }
    let mut proxies: HashMap<(&str, &str), Vec<&crate::plan::ProxyPlan>> = HashMap::default();
    for p in &topo.proxies {
        proxies
            .entry((p.host.as_str(), p.name.as_str()))
            .or_default()
            .push(p);
    }
    let none: Vec<usize> = Vec::new();
    let all_of = |service: &str| of_service.get(service).unwrap_or(&none);
    let mut edges = Vec::new();
    let mut drawn: HashSet<(usize, usize)> = HashSet::default();
    let mut edge = |i: usize, j: usize| {
        if drawn.insert((i, j)) {
            edges.push((i, j));
        }
    };
    for (i, n) in nodes.iter().enumerate() {
        // A proxy balances over every placement of its upstreams.
        let host = topo.hosts[n.host].name.as_str();
        for proxy in proxies
            .get(&(host, n.inst.name.as_str()))
            .into_iter()
            .flatten()
        {
            for u in &proxy.upstreams {
                for &j in all_of(&u.service) {
                    edge(i, j);
                }
            }
        }
        let targets = n
            .inst
            .depends_on
            .iter()
            .map(|(t, _)| t)
            .chain(&n.inst.refers_to);
        for target in targets {
            let reached = match on_host.get(&(n.host, target.as_str())) {
                Some(j) => std::slice::from_ref(j),
                None => all_of(target).as_slice(),
            };
            for &j in reached.iter().filter(|&&j| j != i) {
                edge(i, j);
            }
        }
    }
    // Each member of an HA service joined to the next member.
    let mut ha = Vec::new();
    for (i, n) in nodes.iter().enumerate() {
        if n.inst.ha == HaMode::Single {
            continue;
        }
        let members = all_of(&n.inst.name);
        let at = members.partition_point(|&j| j <= i);
        if let Some(&j) = members.get(at) {
            ha.push((i, j, n.inst.ha.name()));
        }
    }
    let watches = watches(topo, &nodes, &all_of, &on_host);
    Shape {
        nodes,
        edges,
        ha,
        watches,
    }
}

/// Who watches whom: each sentinel stackc adds, the node of its service on
/// its own host (else every node); a Prometheus server, every container of
/// each service it scrapes.
fn watches<'n>(
    topo: &TopologyPlan,
    nodes: &[Node<'_>],
    all_of: &impl Fn(&str) -> &'n Vec<usize>,
    on_host: &HashMap<(usize, &str), usize>,
) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    for (i, n) in nodes.iter().enumerate() {
        if let Some((owner, Added::Sentinel)) = Added::owner(&n.inst.name) {
            match on_host.get(&(n.host, owner)) {
                Some(&j) => out.push((i, j)),
                None => out.extend(all_of(owner).iter().map(|&j| (i, j))),
            }
        }
        if n.inst.kind.as_deref() == Some("prometheus") {
            for job in &topo.scrape_jobs {
                out.extend(
                    all_of(&job.name)
                        .iter()
                        .filter(|&&j| j != i)
                        .map(|&j| (i, j)),
                );
            }
        }
    }
    out
}

fn label(inst: &Instance) -> String {
    let mut s = inst.name.to_string();
    if inst.replicas > 1 {
        s.push_str(&format!(" x{}", inst.replicas));
    }
    if inst.ha != HaMode::Single {
        s.push_str(&format!(" ({})", inst.ha));
    }
    s
}

/// The graph of the plan's topologies (all of them, or those named).
pub fn render(plan: &Plan, topologies: &[String], format: GraphFormat) -> String {
    let chosen: Vec<&TopologyPlan> = plan
        .topologies
        .iter()
        .filter(|t| topologies.is_empty() || topologies.iter().any(|n| *n == t.name))
        .collect();
    match format {
        GraphFormat::Dot => dot(&plan.stack, &chosen),
        GraphFormat::Mermaid => mermaid(&chosen),
    }
}

fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

fn dot(stack: &str, topologies: &[&TopologyPlan]) -> String {
    let mut out = format!("digraph {} {{\n", quote(stack));
    out.push_str("  rankdir=LR;\n  compound=true;\n  node [shape=box, style=rounded];\n");
    // Left to right, dot stacks the clusters it reads first at the bottom:
    // written last to first, the topologies read top to bottom in the file's
    // order.
    for topo in topologies.iter().rev() {
        let s = shape(topo);
        out.push_str(&format!(
            "  subgraph {} {{\n    label={};\n",
            quote(&format!("cluster_{}", topo.name)),
            quote(&format!("topology {}", topo.name))
        ));
        for (h, host) in topo.hosts.iter().enumerate() {
            let mut title = format!("host {}", host.name);
            if let Some(a) = &host.address {
                title.push_str(&format!(" ({a})"));
            }
            out.push_str(&format!(
                "    subgraph {} {{\n      label={};\n",
                quote(&format!("cluster_{}__{}", topo.name, host.name)),
                quote(&title)
            ));
            for n in s.nodes.iter().filter(|n| n.host == h) {
                out.push_str(&format!(
                    "      {} [label={}];\n",
                    n.id,
                    quote(&label(n.inst))
                ));
            }
            out.push_str("    }\n");
        }
        for (a, b) in &s.edges {
            out.push_str(&format!("    {} -> {};\n", s.nodes[*a].id, s.nodes[*b].id));
        }
        // The mode is in the members' labels: a label on the edge would sit
        // on the hosts' titles it crosses.
        for (a, b, mode) in &s.ha {
            out.push_str(&format!(
                "    {} -> {} [dir=none, style=dashed, tooltip={}];\n",
                s.nodes[*a].id,
                s.nodes[*b].id,
                quote(mode)
            ));
        }
        for (a, b) in &s.watches {
            out.push_str(&format!(
                "    {} -> {} [style=dotted, arrowhead=open, constraint=false];\n",
                s.nodes[*a].id, s.nodes[*b].id
            ));
        }
        out.push_str("  }\n");
    }
    out.push_str("}\n");
    out
}

fn mermaid(topologies: &[&TopologyPlan]) -> String {
    let mut out = String::from("flowchart LR\n");
    let text = |s: &str| format!("\"{}\"", s.replace('"', "#quot;"));
    for topo in topologies {
        let s = shape(topo);
        out.push_str(&format!(
            "  subgraph {}[{}]\n",
            id(&format!("topology__{}", topo.name)),
            text(&format!("topology {}", topo.name))
        ));
        for (h, host) in topo.hosts.iter().enumerate() {
            let mut title = format!("host {}", host.name);
            if let Some(a) = &host.address {
                title.push_str(&format!(" ({a})"));
            }
            out.push_str(&format!(
                "    subgraph {}[{}]\n",
                id(&format!("{}__{}", topo.name, host.name)),
                text(&title)
            ));
            for n in s.nodes.iter().filter(|n| n.host == h) {
                out.push_str(&format!("      {}[{}]\n", n.id, text(&label(n.inst))));
            }
            out.push_str("    end\n");
        }
        out.push_str("  end\n");
        for (a, b) in &s.edges {
            out.push_str(&format!("  {} --> {}\n", s.nodes[*a].id, s.nodes[*b].id));
        }
        for (a, b, mode) in &s.ha {
            out.push_str(&format!(
                "  {} -.-|{}| {}\n",
                s.nodes[*a].id, mode, s.nodes[*b].id
            ));
        }
        for (a, b) in &s.watches {
            out.push_str(&format!("  {} -.-> {}\n", s.nodes[*a].id, s.nodes[*b].id));
        }
    }
    out
}
