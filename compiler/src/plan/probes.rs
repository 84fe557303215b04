//! A service's probes as its instance runs them: the port each checks, and
//! its timing.

use crate::diag::{Code, Diagnostic, Diagnostics};

use super::*;

impl Topo<'_> {
    /// The liveness, readiness and startup probes.
    pub(super) fn probes(&self, name: &Name, def: &ServiceDef, diags: &mut Diagnostics) -> Probes {
        let health = &def.health;
        let liveness = self.probe(name, def, health.liveness.as_deref(), diags);
        // A check written directly in `health` is both liveness and readiness:
        // one probe, shared (and checked once).
        let readiness = match (&health.liveness, &health.readiness) {
            (Some(l), Some(r)) if Arc::ptr_eq(l, r) => liveness.clone(),
            _ => self.probe(name, def, health.readiness.as_deref(), diags),
        };
        Probes {
            liveness,
            readiness,
            startup: self.probe(name, def, health.startup.as_deref(), diags),
        }
    }

    pub(super) fn probe(
        &self,
        name: &str,
        def: &ServiceDef,
        probe: Option<&ProbeDef>,
        diags: &mut Diagnostics,
    ) -> Option<Arc<Probe>> {
        let probe = probe?;
        let check = probe.check.as_ref()?.value.clone();
        let port = match &probe.port {
            Some(p) => def.ports.get(&p.name),
            None => def.ports.values().next(),
        };
        let (port_name, port) = match (port, &check) {
            (_, ProbeCheck::Command(_)) => (None, 0),
            (Some(p), _) => (
                Some(p.name.name.clone()),
                p.container.as_ref().map_or(0, |c| c.value),
            ),
            (None, _) => {
                diags.push(
                    Diagnostic::error(
                        Code::MissingField,
                        probe.span.unwrap_or_default(),
                        format!(
                            "the health check of `{name}` needs a port, and `{name}` declares none"
                        ),
                    )
                    .label("which port to check?")
                    .help("declare a port, or use `command = [...]`"),
                );
                return None;
            }
        };
        Some(Arc::new(Probe {
            check,
            port_name,
            port,
            interval: probe.interval.as_ref().map(|d| d.value),
            timeout: probe.timeout.as_ref().map(|d| d.value),
            retries: probe.retries.as_ref().map(|d| d.value),
            start_period: probe.start_period.as_ref().map(|d| d.value),
        }))
    }
}
