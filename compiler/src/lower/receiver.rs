//! A topology's `receiver NAME { ... }`: where Alertmanager sends the alerts.

use crate::diag::{Code, Diagnostic};
use crate::grammar::Place;
use crate::model::*;
use crate::schema;
use crate::syntax::{Entry, ValueKind};

use super::{not_a_field, Lower};

impl Lower<'_> {
    pub(super) fn receiver(&mut self, e: &Entry) -> Option<ReceiverDef> {
        self.no_kind(e);
        let name = self.ident_label(e, "receiver name")?;
        let mut r = ReceiverDef {
            name,
            slack: None,
            channel: None,
            pagerduty: None,
            webhook: None,
            severity: Vec::new(),
            span: e.span(),
        };
        let entries = self.block(e);
        for (f, v) in self.settings(entries, "a receiver") {
            match f.key.name.as_str() {
                "slack" => r.slack = self.expr(v),
                "pagerduty" => r.pagerduty = self.expr(v),
                "channel" => {
                    let channel = self.string(v);
                    r.channel = self.in_grammar(Place::SlackChannel, channel);
                }
                "webhook" => {
                    let url = self.string(v);
                    r.webhook = self.in_grammar(Place::WebhookUrl, url);
                }
                "severity" => r.severity = self.severities(v),
                _ => {
                    let d = not_a_field(&f.key, &schema::RECEIVER);
                    self.push(d);
                }
            }
        }
        if r.slack.is_none() && r.pagerduty.is_none() && r.webhook.is_none() {
            self.push(
                Diagnostic::error(
                    Code::MissingField,
                    r.name.span,
                    format!("receiver `{}` sends the alerts nowhere", r.name.name),
                )
                .label("no `slack`, `pagerduty` or `webhook`")
                .help("add `slack = secret.NAME` (a Slack webhook's URL), `pagerduty = secret.NAME` (a routing key) or `webhook = \"https://...\"`"),
            );
        }
        Some(r)
    }

    /// `[critical, warning]`, or one of them without brackets.
    fn severities(&mut self, v: &crate::syntax::Value) -> Vec<Sp<Severity>> {
        let choices = [
            ("critical", Severity::Critical),
            ("warning", Severity::Warning),
        ];
        match &v.kind {
            ValueKind::List(items) => items
                .iter()
                .filter_map(|i| self.choice(i, &choices))
                .collect(),
            _ => self.choice(v, &choices).into_iter().collect(),
        }
    }
}
