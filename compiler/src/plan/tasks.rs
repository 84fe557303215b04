//! Tasks: services that run to completion (`role = task`), once before their
//! dependents or on a `schedule`. What a task may not have, checked on the
//! definition as it runs on each host (an override may add a field).

use crate::diag::{Code, Diagnostic, Diagnostics, Span};

use super::*;

/// A task has no port, route, health check, replicas or restart after
/// success; a schedule belongs to a task.
pub(super) fn check_task(name: &Name, def: &ServiceDef, role: Role, diags: &mut Diagnostics) {
    if role != Role::Task {
        if let Some(s) = &def.lifecycle.schedule {
            diags.push(
                Diagnostic::error(
                    Code::TaskShape,
                    s.span,
                    format!("`{name}` has a schedule but is not a task"),
                )
                .label("runs on a schedule")
                .help("add `role = task`: a scheduled service runs to completion each time"),
            );
        }
        return;
    }
    for (span, what) in long_running_fields(def) {
        diags.push(
            Diagnostic::error(Code::TaskShape, span, format!("task `{name}` has {what}"))
                .label("a task runs to completion")
                .help("remove it, or make the service long-running (`role = stateless`)"),
        );
    }
    if let Some(r) = &def.lifecycle.restart {
        if matches!(r.value, Restart::Always | Restart::UnlessStopped) {
            diags.push(
                Diagnostic::error(
                    Code::TaskShape,
                    r.span,
                    format!(
                        "task `{name}` restarts after it succeeds (`restart = {}`)",
                        r.value.as_compose()
                    ),
                )
                .label("would run again and again")
                .help("use `restart = no` (the default for a task) or `restart = on-failure`"),
            );
        }
    }
}

/// The fields only a long-running service has, where they are written.
fn long_running_fields(def: &ServiceDef) -> Vec<(Span, &'static str)> {
    let mut found = Vec::new();
    if let Some(port) = def.ports.values().next() {
        found.push((port.name.span, "a port"));
    }
    if let Some(route) = def.routes.values().next() {
        found.push((route.path.span, "a route"));
    }
    if let Some(public) = &def.reach.public {
        found.push((public.span, "public ports"));
    }
    let probes = [
        &def.health.readiness,
        &def.health.liveness,
        &def.health.startup,
    ];
    if let Some(span) = probes.iter().find_map(|p| p.as_ref().and_then(|p| p.span)) {
        found.push((span, "a health check"));
    }
    if let Some(m) = &def.reach.metrics {
        found.push((m.span, "metrics"));
    }
    if let Some(r) = def.replicas.as_ref().filter(|r| r.value != 1) {
        found.push((r.span, "several replicas"));
    }
    if let Some(a) = &def.scaling.autoscale {
        found.push((a.span, "an autoscaler"));
    }
    if let Some(ha) = &def.replication.ha {
        found.push((ha.mode.span, "an HA mode"));
    }
    found
}

/// How a service waits for a task it depends on: until it has succeeded; a
/// scheduled task is refused (it never completes for good).
pub(super) fn wait_for_task(
    name: &Name,
    target: &Name,
    def: &ServiceDef,
    span: Span,
    diags: &mut Diagnostics,
) -> Condition {
    if def.lifecycle.schedule.is_some() {
        diags.push(
            Diagnostic::error(
                Code::TaskShape,
                span,
                format!("`{name}` waits for `{target}`, a scheduled task"),
            )
            .label("runs again and again: never done for good")
            .help(format!(
                "remove `{target}` from `depends_on`, or make it a task that runs once (no `schedule`)"
            )),
        );
    }
    Condition::Completed
}
