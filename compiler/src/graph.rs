//! `stackc graph`: a topology as a picture, in Graphviz `dot` or Mermaid. Hosts
//! are clusters holding the containers that run there (the services, and the
//! proxies, sentinels, etcd members and HAProxies stackc adds); an edge goes
//! from a container to what it depends on or connects to (to the container on
//! its own host, else to every container of that service; from a proxy, to
//! every container it balances over); the members of one
//! HA service are joined by dashed edges labelled with the mode.

use crate::plan::{Instance, Plan, TopologyPlan};

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

/// The nodes, the dependency edges and the HA edges of a topology.
struct Shape<'p> {
    nodes: Vec<Node<'p>>,
    edges: Vec<(usize, usize)>,
    ha: Vec<(usize, usize, &'p str)>,
}

fn id(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

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
    let mut edges = Vec::new();
    let all_of = |service: &str| -> Vec<usize> {
        nodes
            .iter()
            .enumerate()
            .filter(|(_, m)| m.inst.name == service)
            .map(|(j, _)| j)
            .collect()
    };
    for (i, n) in nodes.iter().enumerate() {
        // A proxy balances over every placement of its upstreams.
        let host = &topo.hosts[n.host].name;
        for proxy in topo
            .proxies
            .iter()
            .filter(|p| p.name == n.inst.name && &p.host == host)
        {
            for u in &proxy.upstreams {
                for j in all_of(&u.service) {
                    if !edges.contains(&(i, j)) {
                        edges.push((i, j));
                    }
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
            let local = nodes
                .iter()
                .position(|m| m.host == n.host && &m.inst.name == target);
            let reached: Vec<usize> = match local {
                Some(j) => vec![j],
                None => all_of(target),
            };
            for j in reached {
                if j != i && !edges.contains(&(i, j)) {
                    edges.push((i, j));
                }
            }
        }
    }
    let mut ha = Vec::new();
    for (i, n) in nodes.iter().enumerate() {
        if n.inst.ha == "single" {
            continue;
        }
        // Joined to the next member of the same service.
        if let Some(j) = nodes
            .iter()
            .enumerate()
            .skip(i + 1)
            .find(|(_, m)| m.inst.name == n.inst.name)
            .map(|(j, _)| j)
        {
            ha.push((i, j, n.inst.ha.as_str()));
        }
    }
    Shape { nodes, edges, ha }
}

fn label(inst: &Instance) -> String {
    let mut s = inst.name.to_string();
    if inst.replicas > 1 {
        s.push_str(&format!(" x{}", inst.replicas));
    }
    if inst.ha != "single" {
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
    for topo in topologies {
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
        for (a, b, mode) in &s.ha {
            out.push_str(&format!(
                "    {} -> {} [dir=none, style=dashed, label={}];\n",
                s.nodes[*a].id,
                s.nodes[*b].id,
                quote(mode)
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
    }
    out
}
