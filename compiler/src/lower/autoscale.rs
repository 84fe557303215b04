//! A service's `autoscale` block: its bounds, its targets (CPU and memory
//! utilization, and `metric "NAME"` and `external "NAME"` metrics) and its
//! scaling policies.

use crate::diag::{Code, Diagnostic};
use crate::grammar::Place;
use crate::model::*;
use crate::schema;
use crate::syntax::{Entry, EntryValue, Value, ValueKind};

use super::{not_a_field, Lower};

impl Lower<'_> {
    pub(super) fn autoscale(&mut self, e: &Entry) -> AutoscaleDef {
        let mut a = AutoscaleDef {
            span: e.span(),
            ..AutoscaleDef::default()
        };
        let entries = self.block(e);
        self.duplicates(entries, "an autoscale block");
        for f in entries {
            self.no_kind(f);
            if !matches!(f.key.name.as_str(), "metric" | "external") {
                self.no_label(f);
            }
            match f.key.name.as_str() {
                "metric" | "external" => {
                    if let Some(m) = self.scale_metric(f) {
                        a.metrics.push(m);
                    }
                }
                "scale_up" | "scale_down" => {
                    let policy = self.scale_policy(f);
                    if f.key.name == "scale_up" {
                        a.scale_up = Some(policy);
                    } else {
                        a.scale_down = Some(policy);
                    }
                }
                key => {
                    let Some(v) = self.assigned(f) else { continue };
                    match key {
                        "min" => a.min = self.integer(v, "a replica count"),
                        "max" => a.max = self.integer(v, "a replica count"),
                        "cpu" => a.cpu = self.percent(v),
                        "memory" => a.memory = self.percent(v),
                        _ => {
                            let d = not_a_field(&f.key, &schema::AUTOSCALE);
                            self.push(d);
                        }
                    }
                }
            }
        }
        a
    }

    fn scale_policy(&mut self, e: &Entry) -> ScalePolicyDef {
        let mut p = ScalePolicyDef::default();
        let entries = self.block(e);
        for (f, v) in self.settings(entries, "a scaling policy") {
            match f.key.name.as_str() {
                "window" => p.window = self.duration(v),
                "period" => p.period = self.duration(v),
                "percent" => p.percent = self.integer(v, "a percentage"),
                "pods" => p.pods = self.integer(v, "a pod count"),
                _ => {
                    let d = not_a_field(&f.key, &schema::SCALE_POLICY);
                    self.push(d);
                }
            }
        }
        p
    }

    /// A utilization target in percent (1 to 100, or more for bursting pods).
    fn percent(&mut self, v: &Value) -> Option<Sp<u32>> {
        let p = self.integer::<u32>(v, "a percentage")?;
        if p.value == 0 {
            self.push(
                Diagnostic::error(
                    Code::InvalidValue,
                    p.span,
                    "a utilization target of 0% scales forever",
                )
                .label("expected a percentage above 0")
                .help("targets are percentages of the requested CPU or memory, like `70`"),
            );
            return None;
        }
        Some(p)
    }

    /// `metric "NAME" { per_pod = N }` or `external "NAME" { per_pod = N
    /// labels { ... } }` (or `total = N`).
    fn scale_metric(&mut self, e: &Entry) -> Option<ScaleMetricDef> {
        let external = e.key.name == "external";
        let what = if external {
            "an external metric's name"
        } else {
            "a metric's name"
        };
        // A metric whose name or target is wrong is reported once and kept,
        // without a target: the autoscaler has a target, written wrong.
        let name = self.string_label(e, what)?;
        let valid = self
            .in_grammar(Place::MetricName, Some(name.clone()))
            .is_some();
        let mut written = false;
        let mut m = ScaleMetricDef {
            name,
            external,
            target: None,
            labels: Vec::new(),
            span: e.span(),
        };
        let block = &schema::SCALE_METRIC;
        for f in self.block(e) {
            self.no_kind(f);
            match (f.key.name.as_str(), &f.value) {
                ("labels", EntryValue::Block(labels)) if external => {
                    self.no_label(f);
                    m.labels = self.metric_labels(labels);
                }
                (key @ ("per_pod" | "total"), EntryValue::Assign(v)) => {
                    self.no_label(f);
                    written = true;
                    if key == "total" && !external {
                        self.push(
                            Diagnostic::error(
                                Code::InvalidValue,
                                f.key.span,
                                "a pod metric's target is per pod",
                            )
                            .label("each pod has its own value")
                            .help("write `per_pod = N`, or make it `external \"NAME\"`"),
                        );
                        continue;
                    }
                    let Some(q) = self.metric_quantity(v) else {
                        continue;
                    };
                    let target = if key == "total" {
                        ScaleTarget::Total(q)
                    } else {
                        ScaleTarget::PerPod(q)
                    };
                    m.target = Some(Sp::new(target, v.span));
                }
                _ => {
                    let d = not_a_field(&f.key, block);
                    self.push(d);
                }
            }
        }
        if !written {
            self.push(
                Diagnostic::error(
                    Code::MissingField,
                    m.span,
                    format!("the metric `{}` has no target", m.name.value),
                )
                .label("keep it at what value?")
                .help(if external {
                    "write `per_pod = N` (the value divided by the pods) or `total = N`"
                } else {
                    "write `per_pod = N` (the pods' average)"
                }),
            );
        }
        if !valid {
            m.target = None;
        }
        Some(m)
    }

    /// An external metric's labels, which pick its series.
    fn metric_labels(&mut self, entries: &[Entry]) -> Vec<(crate::syntax::Ident, Sp<String>)> {
        let mut out = Vec::new();
        for (f, v) in self.settings(entries, "a metric's labels") {
            let key = Sp::new(f.key.name.to_string(), f.key.span);
            if self.in_grammar(Place::LabelValue, Some(key)).is_none() {
                continue;
            }
            let value = self.string(v);
            if let Some(value) = self.in_grammar(Place::LabelValue, value) {
                out.push((f.key.clone(), value));
            }
        }
        out
    }

    /// A positive number as a Kubernetes quantity: `1000`, `0.5`, `500m`.
    fn metric_quantity(&mut self, v: &Value) -> Option<String> {
        if let ValueKind::Quantity { number, unit } = &v.kind {
            let positive = number.parse::<f64>().is_ok_and(|n| n > 0.0);
            if positive && (unit.is_empty() || unit == "m") {
                return Some(format!("{number}{unit}"));
            }
        }
        self.push(
            Diagnostic::error(
                Code::InvalidValue,
                v.span,
                "a metric's target is a number above 0",
            )
            .label("expected a number, like `100`, `0.5` or `500m`")
            .help("the value to keep the metric at, in the metric's own unit"),
        );
        None
    }
}
