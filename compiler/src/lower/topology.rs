//! Lowering of topologies and their hosts.

use indexmap::IndexMap;

use crate::diag::{Code, Diagnostic};
use crate::model::*;
use crate::syntax::{Entry, EntryValue, ValueKind};

use super::{duplicate, unknown_field, Lower, HOST_FIELDS, TOPOLOGY_FIELDS};

impl Lower<'_> {
    pub(super) fn topology(&mut self, e: &Entry) {
        self.no_kind(e);
        let Some(name) = self.ident_label(e, "topology name") else {
            return;
        };
        let entries = self.block(e);
        self.duplicates(entries, "a topology");
        let mut topo = TopologyDef {
            name: name.clone(),
            platform: Sp::new(Platform::Compose, name.span),
            hosts: IndexMap::new(),
            overrides: IndexMap::new(),
            externals: IndexMap::new(),
        };
        for f in entries {
            match f.key.name.as_str() {
                "platform" => {
                    self.no_label(f);
                    if let Some(v) = self.assigned(f) {
                        if let Some(p) = self.choice(v, &[("compose", Platform::Compose)]) {
                            topo.platform = p;
                        }
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
                        .insert(service.name.clone(), RunDef { service, over });
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
                    let d = unknown_field(&f.key, "a topology", TOPOLOGY_FIELDS);
                    self.push(d);
                }
            }
        }
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
            managed: false,
            runs: Vec::new(),
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
                        host.address = self.string(v);
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
                "managed" => {
                    self.no_label(f);
                    if let Some(v) = self.assigned(f) {
                        host.managed = self.boolean(v).unwrap_or(false);
                    }
                }
                "run" => match (&f.label, &f.value) {
                    (None, EntryValue::Assign(v)) => {
                        if let Some(names) = self.names(v) {
                            host.runs
                                .extend(names.value.into_iter().map(|service| RunDef {
                                    service,
                                    over: ServiceDef::default(),
                                }));
                        }
                    }
                    _ => {
                        let Some(service) = self.ident_label(f, "service name") else {
                            continue;
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
                        host.runs.push(RunDef { service, over });
                    }
                },
                _ => {
                    let d = unknown_field(&f.key, "a host", HOST_FIELDS);
                    self.push(d);
                }
            }
        }
        Some(host)
    }
}
