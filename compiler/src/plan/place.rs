//! Placement: which services run on which host, and every service placed or
//! external.

use crate::base::IndexMap;

use crate::check::unknown_service;
use crate::diag::{Code, Diagnostic, Diagnostics, Span};

use super::*;

impl Topo<'_> {
    pub(super) fn place(&mut self, diags: &mut Diagnostics) {
        self.placements.reserve(self.defs.len());
        for (name, (ident, _)) in &self.topo.externals {
            if !self.stack.services.contains_key(name) {
                diags.push(unknown_service(self.stack, ident).help(
                    "`external` in a topology replaces a service of the stack by a managed one",
                ));
            }
        }
        let mut unknown_run = false;
        for (h, host) in self.hosts.iter().enumerate() {
            let mut seen: IndexMap<&str, Span> = IndexMap::default();
            seen.reserve(host.runs.len());
            for run in &host.runs {
                let name = run.service.name.as_str();
                match seen.entry(name) {
                    indexmap::map::Entry::Occupied(first) => {
                        diags.push(
                            Diagnostic::error(
                                Code::DuplicatePlacement,
                                run.service.span,
                                format!("service `{name}` runs twice on host `{}`", host.name.name),
                            )
                            .label("placed again here")
                            .with_secondary(*first.get(), "first placed here")
                            .help("use `replicas` for several copies on one host"),
                        );
                        continue;
                    }
                    indexmap::map::Entry::Vacant(v) => {
                        v.insert(run.service.span);
                    }
                }
                // A service with a base (every workload service) is one of the
                // stack's: one lookup for both questions.
                let base = self.defs.get_key_value(name);
                if base.is_none() && !self.stack.services.contains_key(name) {
                    diags.push(unknown_service(self.stack, &run.service));
                    // The service meant is not placed because of this name.
                    unknown_run = true;
                    continue;
                }
                if self.is_external(name) {
                    diags.push(
                        Diagnostic::error(
                            Code::DuplicatePlacement,
                            run.service.span,
                            format!("service `{name}` is external in topology `{}` and cannot run on a host", self.topo.name.name),
                        )
                        .label("external services are not run by stackc")
                        .help("remove it from the host, or remove the `external` declaration"),
                    );
                    continue;
                }
                let Some((&key, topo_def)) = base else {
                    continue;
                };
                let def = topo_def.overlaid(run.over.as_deref());
                // Most services run on one host.
                self.placements
                    .entry(key)
                    .or_insert_with(|| Vec::with_capacity(1))
                    .push(Placement {
                        host: h,
                        def,
                        run_span: run.service.span,
                    });
            }
        }
        self.with_ha = self
            .placements
            .iter()
            .filter(|(_, ps)| ps.first().is_some_and(|p| p.def.replication.ha.is_some()))
            .map(|(name, _)| *name)
            .collect();
        // A cause reported already (an entry not understood, a name in `run`
        // that is no service) would make every service after it look not
        // placed: it alone is reported.
        if self.topo.incomplete || unknown_run {
            return;
        }
        for (name, decl) in &self.stack.services {
            if self.is_external(name) || self.placements.contains_key(name.as_str()) {
                continue;
            }
            diags.push(
                Diagnostic::error(
                    Code::NotPlaced,
                    self.topo.name.span,
                    format!("service `{name}` is not placed in topology `{}`", self.topo.name.name),
                )
                .label(format!("`{name}` runs nowhere here"))
                .with_secondary(decl.name.span, "service defined here")
                .help(format!(
                    "add `{name}` to a host's `run` list, or declare it managed: `external {name} {{ url = ... }}`"
                )),
            );
        }
    }
}
