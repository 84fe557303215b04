//! Lowering of topologies and their hosts.

use crate::base::{IndexMap, Name};

use crate::diag::{Code, Diagnostic, Span};
use crate::model::*;
use crate::schema;
use crate::syntax::{Entry, EntryValue, Ident, ValueKind};

use crate::grammar::Place;

use super::{duplicate, not_a_field, Lower};

impl Lower<'_> {
    pub(super) fn topology(&mut self, e: &Entry) {
        self.no_kind(e);
        let Some(name) = self.ident_label(e, "topology name") else {
            return;
        };
        let entries = self.block(e);
        self.duplicates(entries, "a topology");
        let mut topo = TopologyDef::new(name.clone());
        let mut cluster_runs = Vec::new();
        let mut run_spans = Vec::new();
        for f in entries {
            match f.key.name.as_str() {
                "platform" => {
                    self.no_label(f);
                    if let Some(v) = self.assigned(f) {
                        let choices = [
                            ("compose", Platform::Compose),
                            ("kubernetes", Platform::Kubernetes),
                        ];
                        if let Some(p) = self.choice(v, &choices) {
                            topo.platform = p;
                        }
                    }
                }
                "scrape" => {
                    self.no_label(f);
                    if let Some(v) = self.assigned(f) {
                        let choices = [
                            ("pod_monitor", Scrape::PodMonitor),
                            ("annotations", Scrape::Annotations),
                        ];
                        topo.scrape = self.choice(v, &choices);
                    }
                }
                "run" => {
                    self.no_kind(f);
                    run_spans.push(f.key.span);
                    self.run_entry(f, &mut cluster_runs);
                }
                "namespace"
                | "ingress_class"
                | "ingress_namespace"
                | "monitoring_namespace"
                | "cnpg_namespace"
                | "gateway" => self.cluster_name(f, &mut topo),
                "acme" => {
                    self.no_label(f);
                    topo.acme = Some(self.acme(f));
                }
                "receiver" => {
                    let Some(r) = self.receiver(f) else { continue };
                    if let Some(first) = topo.receivers.get(&r.name.name) {
                        let first = first.name.span;
                        self.push(duplicate(&r.name, "receiver", first));
                    } else {
                        topo.receivers.insert(r.name.name.clone(), r);
                    }
                }
                "directory" => {
                    self.no_label(f);
                    topo.directory = self.assigned(f).and_then(|v| self.directory(v));
                }
                "proxy" => {
                    if let Some(proxy) = self.proxy(f) {
                        if let Some(first) = topo.proxies.get(&proxy.name.name) {
                            let first = first.name.span;
                            self.push(duplicate(&proxy.name, "proxy", first));
                        } else {
                            topo.proxies.insert(proxy.name.name.clone(), proxy);
                        }
                    }
                }
                "gpu_nodes" => topo.gpu_nodes = self.flag(f),
                "production" => topo.production = self.flag(f),
                "allow" => {
                    self.no_label(f);
                    if let Some(v) = self.assigned(f) {
                        topo.allow = self.names(v).map(|n| n.value).unwrap_or_default();
                    }
                }
                "host" => {
                    self.no_kind(f);
                    if let Some(host) = self.host(f) {
                        topo.hosts.insert(host.name.name.clone(), host);
                    }
                }
                "override" => {
                    self.no_kind(f);
                    let Some(service) = self.ident_label(f, "service name") else {
                        continue;
                    };
                    let entries = self.block(f);
                    let over = self.service_def(entries, "an override", false);
                    topo.overrides
                        .insert(service.name.clone(), RunDef::new(service, over));
                }
                "external" => {
                    self.no_kind(f);
                    let Some(service) = self.ident_label(f, "service name") else {
                        continue;
                    };
                    let def = self.external_def(f);
                    topo.externals.insert(service.name.clone(), (service, def));
                }
                _ => {
                    let d = not_a_field(&f.key, &schema::TOPOLOGY);
                    self.push(d);
                    topo.incomplete = true;
                }
            }
        }
        topo.incomplete |= topo.hosts.values().any(|h| h.incomplete);
        self.platform_shape(&mut topo, cluster_runs, &run_spans);
        if let Some(first) = self.stack.topologies.get(&name.name) {
            let first = first.name.span;
            self.push(duplicate(&name, "topology", first));
            return;
        }
        self.stack.topologies.insert(name.name.clone(), topo);
    }

    pub(super) fn host(&mut self, e: &Entry) -> Option<HostDef> {
        let name = self.ident_label(e, "host name")?;
        let mut host = HostDef {
            name,
            address: None,
            gpu: None,
            ssh_port: None,
            managed: false,
            runs: Vec::new(),
            incomplete: false,
        };
        let entries = self.block(e);
        let fields: Vec<Entry> = entries
            .iter()
            .filter(|f| f.key.name != "run")
            .cloned()
            .collect();
        self.duplicates(&fields, "a host");
        for f in entries {
            match f.key.name.as_str() {
                "address" => {
                    self.no_label(f);
                    if let Some(v) = self.assigned(f) {
                        let address = self.string(v);
                        host.address = self.ip_address(address, "a host's `address`");
                    }
                }
                "gpu" => {
                    self.no_label(f);
                    if let Some(v) = self.assigned(f) {
                        host.gpu = match &v.kind {
                            ValueKind::Bool(b) => Some(Sp::new(u32::from(*b), v.span)),
                            _ => self.integer(v, "a GPU count or `true`"),
                        };
                    }
                }
                "ssh_port" => {
                    self.no_label(f);
                    if let Some(v) = self.assigned(f) {
                        host.ssh_port = self.port_number(v);
                    }
                }
                "managed" => {
                    self.no_label(f);
                    if let Some(v) = self.assigned(f) {
                        host.managed = self.boolean(v).unwrap_or(false);
                    }
                }
                "run" => self.run_entry(f, &mut host.runs),
                _ => {
                    let d = not_a_field(&f.key, &schema::HOST);
                    self.push(d);
                    host.incomplete = true;
                }
            }
        }
        Some(host)
    }

    /// `run = [a, b]`, `run NAME` or `run NAME { overrides }`.
    fn run_entry(&mut self, f: &Entry, runs: &mut Vec<RunDef>) {
        match (f.label.as_deref(), &f.value) {
            (None, EntryValue::Assign(v)) => {
                if let Some(names) = self.names(v) {
                    runs.extend(names.value.into_iter().map(|service| RunDef {
                        service,
                        over: None,
                    }));
                }
            }
            _ => {
                let Some(service) = self.ident_label(f, "service name") else {
                    return;
                };
                let over = match &f.value {
                    EntryValue::Block(entries) => {
                        self.service_def(entries, "a per-host override", false)
                    }
                    EntryValue::Assign(v) => {
                        self.push(
                            Diagnostic::error(
                                Code::WrongType,
                                v.span,
                                "`run NAME` takes a block of overrides, not a value",
                            )
                            .label("expected `{ ... }`")
                            .help("write `run = [a, b]` for several services, or `run NAME { ... }` for one with overrides"),
                        );
                        ServiceDef::default()
                    }
                    EntryValue::None => ServiceDef::default(),
                };
                runs.push(RunDef::new(service, over));
            }
        }
    }

    /// Compose topologies place services on hosts; a Kubernetes topology runs them
    /// in one cluster, which becomes its only host, `cluster`.
    /// `acme { directory = letsencrypt | staging | "https://..."  email = "..." }`.
    fn acme(&mut self, e: &Entry) -> AcmeDef {
        let mut acme = AcmeDef::default();
        for g in self.block(e) {
            self.no_label(g);
            self.no_kind(g);
            let Some(v) = self.assigned(g) else { continue };
            match g.key.name.as_str() {
                "directory" => {
                    acme.directory = match &v.kind {
                        crate::syntax::ValueKind::Str(_) => {
                            let url = self.string(v);
                            self.in_grammar(Place::AcmeDirectory, url)
                                .map(|u| Sp::new(AcmeDirectory::Url(u.value), u.span))
                        }
                        _ => {
                            let choices = [("letsencrypt", true), ("staging", false)];
                            self.choice(v, &choices).map(|production| {
                                let d = if production.value {
                                    AcmeDirectory::LetsEncrypt
                                } else {
                                    AcmeDirectory::Staging
                                };
                                Sp::new(d, production.span)
                            })
                        }
                    }
                }
                "email" => {
                    let email = self.string(v);
                    acme.email = self.in_grammar(Place::Email, email);
                }
                _ => {
                    let d = not_a_field(&g.key, &schema::ACME);
                    self.push(d);
                }
            }
        }
        acme
    }

    /// A topology's `NAME = true|false` (false when it is not a boolean).
    fn flag(&mut self, f: &Entry) -> bool {
        self.no_label(f);
        self.assigned(f)
            .and_then(|v| self.boolean(v))
            .unwrap_or(false)
    }

    /// A compose topology's `directory`: an absolute path, which a systemd
    /// unit on its hosts names.
    fn directory(&mut self, v: &crate::syntax::Value) -> Option<Sp<String>> {
        let value = self.string(v);
        let d = self.in_grammar(Place::FilePath, value)?;
        if !d.value.starts_with('/') {
            self.push(
                Diagnostic::error(
                    Code::InvalidValue,
                    d.span,
                    format!("`{}` is not an absolute path", d.value),
                )
                .label("a systemd unit on the host names it")
                .help("write the directory's full path on the hosts, `\"/srv/app/out/prod\"`"),
            );
        }
        Some(d)
    }

    /// A Kubernetes topology's name-valued setting (`namespace`, the
    /// IngressClass, the namespaces its NetworkPolicies let in).
    fn cluster_name(&mut self, f: &Entry, topo: &mut TopologyDef) {
        self.no_label(f);
        let Some(v) = self.assigned(f) else { return };
        let Some(value) = self.string(v) else {
            return;
        };
        let field = match &*f.key.name {
            "namespace" => &mut topo.namespace,
            "ingress_class" => &mut topo.ingress_class,
            "ingress_namespace" => &mut topo.ingress_namespace,
            "monitoring_namespace" => &mut topo.monitoring_namespace,
            "gateway" => &mut topo.gateway,
            _ => &mut topo.cnpg_namespace,
        };
        *field = Some(value);
    }

    fn platform_shape(&mut self, topo: &mut TopologyDef, runs: Vec<RunDef>, run_spans: &[Span]) {
        match topo.platform.value {
            Platform::Compose => {
                for span in run_spans {
                    self.push(
                        Diagnostic::error(Code::UnknownField, *span, "`run` belongs in a host of a compose topology")
                            .label("no host here")
                            .help("write `host NAME { run = [...] }`, or `platform = kubernetes` to run the services in a cluster"),
                    );
                }
                let k8s_only = [
                    ("namespace", topo.namespace.as_ref().map(|n| n.span)),
                    ("ingress_class", topo.ingress_class.as_ref().map(|n| n.span)),
                    (
                        "ingress_namespace",
                        topo.ingress_namespace.as_ref().map(|n| n.span),
                    ),
                    (
                        "monitoring_namespace",
                        topo.monitoring_namespace.as_ref().map(|n| n.span),
                    ),
                    (
                        "cnpg_namespace",
                        topo.cnpg_namespace.as_ref().map(|n| n.span),
                    ),
                    ("scrape", topo.scrape.as_ref().map(|n| n.span)),
                    ("gateway", topo.gateway.as_ref().map(|n| n.span)),
                ];
                for (field, span) in k8s_only {
                    if let Some(span) = span {
                        self.push(
                            Diagnostic::error(
                                Code::UnknownField,
                                span,
                                format!("`{field}` is for Kubernetes topologies"),
                            )
                            .label("this topology runs on compose")
                            .help("set `platform = kubernetes`, or remove it"),
                        );
                    }
                }
            }
            Platform::Kubernetes => {
                if let Some(d) = &topo.directory {
                    self.push(
                        Diagnostic::error(
                            Code::UnknownField,
                            d.span,
                            "`directory` is for compose topologies",
                        )
                        .label("this topology runs in a cluster")
                        .help("remove it: a cluster runs scheduled tasks as CronJobs"),
                    );
                }
                let mut runs = runs;
                for host in topo.hosts.values() {
                    // Reported; its services still run in the cluster, so that the
                    // mistake is not reported again as unplaced services.
                    runs.extend(host.runs.iter().cloned());
                    self.push(
                        Diagnostic::error(Code::UnknownField, host.name.span, "a Kubernetes topology has no hosts")
                            .label("hosts are for compose topologies")
                            .help("list the services with `run = [...]` in the topology; the cluster schedules them"),
                    );
                }
                let name = Ident {
                    name: Name::new_static(CLUSTER_HOST),
                    span: topo.name.span,
                };
                let host = HostDef {
                    name,
                    address: None,
                    gpu: Some(Sp::new(
                        if topo.gpu_nodes { u32::MAX } else { 0 },
                        topo.name.span,
                    )),
                    ssh_port: None,
                    managed: false,
                    runs,
                    incomplete: false,
                };
                topo.hosts = [(Name::new_static(CLUSTER_HOST), host)]
                    .into_iter()
                    .collect();
            }
        }
    }

    /// `proxy NAME: nginx { host = app  on_host = false  http = 80  https = 443 ... }`.
    fn proxy(&mut self, e: &Entry) -> Option<ProxyDef> {
        let name = self.ident_label(e, "proxy name")?;
        let kinds = [("nginx", ProxyKind::Nginx), ("haproxy", ProxyKind::Haproxy)];
        let kind = match &e.kind {
            Some(k) => {
                match kinds.iter().find(|(n, _)| *n == k.name) {
                    Some((_, kind)) => Sp::new(*kind, k.span),
                    None => {
                        self.push(
                        Diagnostic::error(Code::InvalidValue, k.span, format!("`{}` is not a proxy", k.name))
                            .label("expected nginx or haproxy")
                            .help("write `proxy NAME: nginx { ... }` or `proxy NAME: haproxy { ... }`"),
                    );
                        return None;
                    }
                }
            }
            None => {
                self.push(
                    Diagnostic::error(Code::MissingField, name.span, "a proxy needs a kind")
                        .label("nginx or haproxy?")
                        .help(format!("write `proxy {}: nginx {{ ... }}`", name.name)),
                );
                return None;
            }
        };
        let mut proxy = ProxyDef {
            name,
            kind,
            host: None,
            on_host: false,
            bind: None,
            http: None,
            https: None,
            image: None,
            tls: IndexMap::default(),
            span: e.span(),
        };
        let entries = self.block(e);
        self.duplicates(entries, "a proxy");
        for f in entries {
            self.no_kind(f);
            if f.key.name == "tls" {
                let Some(domain) = self.string_label(f, "domain") else {
                    continue;
                };
                // A block of a domain that cannot be served is left out, so
                // that no "no route on this domain" follows the report.
                if crate::grammar::invalid(Place::Domain, &domain.value).is_some() {
                    self.in_grammar(Place::Domain, Some(domain));
                    continue;
                }
                let mut tls = TlsDef {
                    domain,
                    cert: None,
                    key: None,
                };
                for g in self.block(f) {
                    self.no_label(g);
                    self.no_kind(g);
                    let Some(v) = self.assigned(g) else { continue };
                    match g.key.name.as_str() {
                        "cert" => {
                            let path = self.string(v);
                            tls.cert = self.in_grammar(Place::FilePath, path);
                        }
                        "key" => {
                            let path = self.string(v);
                            tls.key = self.in_grammar(Place::FilePath, path);
                        }
                        _ => {
                            let d = not_a_field(&g.key, &schema::TLS);
                            self.push(d);
                        }
                    }
                }
                proxy.tls.insert(Name::new(&tls.domain.value), tls);
                continue;
            }
            // Not a field: that alone, not also how its label or block is
            // written.
            if !schema::PROXY.has(&f.key.name) {
                let mut d = not_a_field(&f.key, &schema::PROXY);
                if f.key.name == "route" {
                    d = d.help("a route belongs to the service it serves: write `route \"/\"` in that service; the proxy serves the routes of the services placed in its topology");
                }
                self.push(d);
                continue;
            }
            self.no_label(f);
            let Some(v) = self.assigned(f) else { continue };
            match f.key.name.as_str() {
                "host" => proxy.host = self.name(v),
                "on_host" => proxy.on_host = self.boolean(v).unwrap_or(false),
                "bind" => {
                    let bind = self.string(v);
                    proxy.bind = self.ip_address(bind, "a proxy's `bind`");
                }
                "http" => proxy.http = self.port_number(v),
                "https" => proxy.https = self.port_number(v),
                "image" => proxy.image = self.string(v),
                _ => {
                    let d = not_a_field(&f.key, &schema::PROXY);
                    self.push(d);
                }
            }
        }
        Some(proxy)
    }
}
