//! A service's scaling: its autoscaler's bounds and policies, and a disruption
//! budget that leaves a pod to evict.

use crate::diag::{Code, Diagnostic, Diagnostics, Span};

use super::*;

impl Topo<'_> {
    /// The autoscaler, with its bounds checked: 1 <= min <= replicas <= max.
    pub(super) fn autoscale(
        &self,
        name: &str,
        def: &ServiceDef,
        decl_span: Span,
        diags: &mut Diagnostics,
    ) -> Option<Autoscale> {
        let a = def.scaling.autoscale.as_ref()?;
        let min = a.min.as_ref().map_or(1, |m| m.value);
        let Some(max) = a.max.as_ref().map(|m| m.value) else {
            diags.push(
                Diagnostic::error(
                    Code::MissingField,
                    a.span,
                    format!("the autoscaler of `{name}` has no `max`"),
                )
                .label("how far may it scale?")
                .help("write `max = N` in the autoscale block"),
            );
            return None;
        };
        let bound = |span: Span, message: String, help: String| {
            Diagnostic::error(Code::AutoscaleBounds, span, message)
                .label("outside the autoscaler's bounds")
                .help(help)
        };
        let min_span = a.min.as_ref().map_or(a.span, |m| m.span);
        if min == 0 {
            diags.push(bound(
                min_span,
                "an autoscaler's `min` is at least 1".into(),
                "write `min = 1` or more".into(),
            ));
        } else if min > max {
            diags.push(bound(
                min_span,
                format!("autoscale `min = {min}` is above `max = {max}`"),
                "swap them, or raise `max`".into(),
            ));
        } else if let Some(r) = &def.replicas {
            if r.value < min || r.value > max {
                diags.push(
                    bound(
                        r.span,
                        format!("`replicas = {}` is outside the autoscaler's bounds {min}..{max}", r.value),
                        format!("with an autoscaler, `replicas` is the starting count: write a number from {min} to {max}, or remove it"),
                    )
                    .with_secondary(a.span, "autoscaler here"),
                );
            }
        }
        if a.cpu.is_none() && a.memory.is_none() && a.metrics.is_empty() {
            diags.push(
                Diagnostic::error(
                    Code::MissingField,
                    a.span,
                    format!("the autoscaler of `{name}` has no target"),
                )
                .label("scale on what?")
                .help("write `cpu = 70` and/or `memory = 80` (percent of the requests), or a `metric \"NAME\" { per_pod = N }`"),
            );
        }
        let _ = decl_span;
        let policy = |p: &Option<ScalePolicyDef>| {
            p.as_ref().map(|p| ScalePolicy {
                window: p.window.as_ref().map(|d| d.value),
                percent: p.percent.as_ref().map(|d| d.value),
                pods: p.pods.as_ref().map(|d| d.value),
                period: p.period.as_ref().map(|d| d.value),
            })
        };
        Some(Autoscale {
            min,
            max,
            cpu: a.cpu.as_ref().map(|c| c.value),
            memory: a.memory.as_ref().map(|c| c.value),
            scale_up: policy(&a.scale_up),
            scale_down: policy(&a.scale_down),
            metrics: a
                .metrics
                .iter()
                .filter_map(|m| {
                    Some(ScaleMetric {
                        name: m.name.value.clone(),
                        external: m.external,
                        target: m.target.as_ref()?.value.clone(),
                        labels: m
                            .labels
                            .iter()
                            .map(|(k, v)| (k.name.to_string(), v.value.clone()))
                            .collect(),
                    })
                })
                .collect(),
        })
    }
}

/// A disruption budget must leave a pod that may be evicted.
pub(super) fn check_disruption_budget(
    def: &ServiceDef,
    autoscale: Option<&Autoscale>,
    replicas: u32,
    diags: &mut Diagnostics,
) {
    if let Some(min) = &def.scaling.min_available {
        let least = autoscale.as_ref().map_or(replicas, |a| a.min);
        if min.value >= least {
            diags.push(
                Diagnostic::error(
                    Code::DisruptionBudgetBlocks,
                    min.span,
                    format!("`min_available = {}` with {least} replica{} blocks every voluntary eviction", min.value, if least == 1 { "" } else { "s" }),
                )
                .label("no pod may ever be evicted")
                .help(format!("node drains and upgrades would hang; use `min_available = {}` or more replicas", least.saturating_sub(1))),
            );
        }
    }
}
