//! Health checks: one check for liveness and readiness, or separate probes.

use super::*;
use crate::grammar::Place;

impl Lower<'_> {
    pub(super) fn health(&mut self, def: &mut ServiceDef, e: &Entry) {
        let entries = self.block(e);
        self.duplicates(entries, "a health block");
        // Probe fields written directly in `health` define one check used for
        // liveness and readiness.
        let (probes, direct): (Vec<&Entry>, Vec<&Entry>) = entries
            .iter()
            .partition(|f| schema::HEALTH.has(&f.key.name));
        if !direct.is_empty() {
            let probe = std::sync::Arc::new(self.probe(&direct, e.span()));
            def.health.liveness = Some(probe.clone());
            def.health.readiness = Some(probe);
        }
        for f in probes {
            self.no_label(f);
            self.no_kind(f);
            let inner: Vec<&Entry> = self.block(f).iter().collect();
            let probe = std::sync::Arc::new(self.probe(&inner, f.span()));
            match f.key.name.as_str() {
                "liveness" => def.health.liveness = Some(probe),
                "readiness" => def.health.readiness = Some(probe),
                _ => def.health.startup = Some(probe),
            }
        }
    }

    pub(super) fn probe(&mut self, entries: &[&Entry], span: Span) -> ProbeDef {
        let mut p = ProbeDef {
            span: Some(span),
            ..ProbeDef::default()
        };
        for f in entries {
            self.no_label(f);
            self.no_kind(f);
            let Some(v) = self.assigned(f) else { continue };
            let check = |c: ProbeCheck| Some(Sp::new(c, f.span()));
            let previous = p.check.as_ref().map(|c| c.span);
            match f.key.name.as_str() {
                "http" => {
                    let path = self.name_string(v);
                    if let Some(path) = self.in_grammar(Place::RequestPath, path) {
                        p.check = check(ProbeCheck::Http(path.value));
                    }
                }
                "tcp" => {
                    if self.boolean(v) == Some(true) {
                        p.check = check(ProbeCheck::Tcp);
                    }
                }
                "command" => {
                    if let Some(c) = self.command(v) {
                        p.check = check(ProbeCheck::Command(c.value));
                    }
                }
                "port" => p.port = self.name(v),
                "interval" => p.interval = self.duration(v),
                "timeout" => p.timeout = self.duration(v),
                "start_period" => p.start_period = self.duration(v),
                "retries" => p.retries = self.integer(v, "a retry count"),
                _ => {
                    let known: Vec<&str> = schema::PROBE
                        .names()
                        .chain(schema::HEALTH.names())
                        .collect();
                    let d =
                        unknown_field(&f.key, schema::PROBE.called, &known, Some(&schema::PROBE));
                    self.push(d);
                    continue;
                }
            }
            if let (Some(prev), true) = (
                previous,
                matches!(f.key.name.as_str(), "http" | "tcp" | "command"),
            ) {
                self.push(
                    Diagnostic::error(
                        Code::DuplicateField,
                        f.key.span,
                        "a health check has one kind of check",
                    )
                    .label("second check here")
                    .with_secondary(prev, "first check here")
                    .help("use one of `http`, `tcp` or `command`"),
                );
            }
        }
        if p.check.is_none() {
            self.push(
                Diagnostic::error(
                    Code::MissingField,
                    span,
                    "a health check needs `http`, `tcp` or `command`",
                )
                .label("no check given")
                .help("for example `http = \"/health\"`"),
            );
        }
        p
    }
}
