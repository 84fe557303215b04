//! Where the alerts go: the topology's `receiver`s, sent to by its service
//! of kind `alertmanager`, which its Prometheus finds as it finds a scrape
//! target. A receiver's credentials (a Slack webhook's URL, a PagerDuty
//! routing key) are secrets: they reach the Alertmanager container in its
//! environment, and its start script writes them to the files its config
//! names (`*_file`), so that no generated file holds them.

use crate::diag::{Code, Diagnostic, Diagnostics, Span};
use crate::model::Severity;

use super::prometheus::Target;
use super::*;

/// The generated config and start script, as the stdlib kind mounts them.
pub const ALERTMANAGER_CONFIG: &str = "alertmanager/alertmanager.yml";
pub const ALERTMANAGER_START: &str = "alertmanager/start.sh";
/// Where the start script writes the credentials, in the container.
pub const CREDENTIALS_DIR: &str = "/tmp/stackc";
const ALERTMANAGER_KIND: &str = "alertmanager";

/// One receiver: each integration it sends to, and the severities it takes
/// (empty: every alert).
#[derive(Debug, Clone, PartialEq)]
pub struct ReceiverPlan {
    pub name: Name,
    pub slack: Option<Credential>,
    pub channel: Option<String>,
    pub pagerduty: Option<Credential>,
    pub webhook: Option<String>,
    pub severities: Vec<Severity>,
}

/// A secret Alertmanager reads from a file: the variable that carries it into
/// the container, and the file the start script writes it to.
#[derive(Debug, Clone, PartialEq)]
pub struct Credential {
    pub env: Name,
    pub file: String,
}

impl Credential {
    fn new(env: Name) -> Credential {
        Credential {
            file: format!("{CREDENTIALS_DIR}/{env}"),
            env,
        }
    }
}

/// The topology's alerting: its receivers, and where its Prometheus reaches
/// each Alertmanager (`host:port`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Alerting {
    pub receivers: Vec<ReceiverPlan>,
    pub alertmanagers: Vec<String>,
}

impl Topo<'_> {
    /// The receivers, checked against what runs in the topology, and the
    /// Alertmanagers its Prometheus sends to (their ports recorded in
    /// `publishes` where it reaches them on another host; at an address
    /// for a Prometheus outside the topology).
    pub(super) fn alerting(&self, publishes: &mut Publishes, diags: &mut Diagnostics) -> Alerting {
        let senders = self.senders();
        if !self.alerting_runs(&senders, diags) {
            return Alerting::default();
        }
        let receivers = self
            .topo
            .receivers
            .values()
            .map(|r| self.receiver(r, diags))
            .collect();
        self.one_alertmanager(&senders, diags);
        let server = self.prometheus_host();
        let mut alertmanagers = Vec::new();
        for name in senders {
            let Some(port) = self.defs.get(name).and_then(|d| d.ports.keys().next()) else {
                continue;
            };
            for p in self.placements.get(name).into_iter().flatten() {
                match self.target(name, p, port, server, publishes, diags) {
                    Some(Target::Dns(t)) => {
                        alertmanagers.push(crate::grammar::host_port(&t.name, t.port))
                    }
                    Some(Target::Static(t)) => alertmanagers.push(t.address),
                    None => {}
                }
            }
        }
        Alerting {
            receivers,
            alertmanagers,
        }
    }

    /// The files of the topology's Alertmanager, which it may mount. They
    /// are there for an Alertmanager without receivers too: that is
    /// reported as such, not as mounting files that are not there.
    pub(super) fn alerting_files(&self, alerting: &Alerting) -> Vec<&'static str> {
        if alerting.receivers.is_empty() && self.senders().is_empty() {
            return Vec::new();
        }
        vec![ALERTMANAGER_CONFIG, ALERTMANAGER_START]
    }

    /// The placed services of kind `alertmanager`.
    fn senders(&self) -> Vec<&str> {
        self.placements
            .keys()
            .copied()
            .filter(|s| self.is_kind(s, ALERTMANAGER_KIND))
            .collect()
    }

    /// Whether the topology sends alerts: receivers and an Alertmanager to
    /// send to them, on compose. Either without the other is reported.
    fn alerting_runs(&self, senders: &[&str], diags: &mut Diagnostics) -> bool {
        let first = self.topo.receivers.values().next();
        match (first, senders.first()) {
            (None, None) => false,
            (Some(r), _) if self.topo.platform.value == Platform::Kubernetes => {
                diags.push(
                    Diagnostic::error(
                        Code::NotSupported,
                        r.name.span,
                        "receivers are written for compose topologies only",
                    )
                    .label("on Kubernetes")
                    .help("on Kubernetes, configure the Alertmanager of the Prometheus Operator (an AlertmanagerConfig); remove the receiver here"),
                );
                false
            }
            (Some(r), None) => {
                diags.push(
                    Diagnostic::error(
                        Code::MissingField,
                        r.name.span,
                        format!("receiver `{}` has no Alertmanager to send to it", r.name.name),
                    )
                    .label("nothing in the topology sends the alerts")
                    .help("add `service alerts: alertmanager {}` and run it on a host, beside the Prometheus service"),
                );
                false
            }
            (None, Some(sender)) => {
                let span = self
                    .placements
                    .get(sender)
                    .and_then(|ps| ps.first())
                    .map_or(self.topo.name.span, |p| p.run_span);
                diags.push(
                    Diagnostic::error(
                        Code::MissingField,
                        span,
                        format!("`{sender}` runs Alertmanager, but the topology names no receiver"),
                    )
                    .label("it would send the alerts nowhere")
                    .help("add `receiver NAME { slack = secret.NAME }` (or `pagerduty`, `webhook`) to the topology"),
                );
                false
            }
            (Some(_), Some(_)) => true,
        }
    }

    /// One Alertmanager per topology: two that do not gossip (stackc writes
    /// no cluster) would each send every alert. (Two replicas of one are
    /// E0404 already: it is stateful.)
    fn one_alertmanager(&self, senders: &[&str], diags: &mut Diagnostics) {
        let mut placed = senders.iter().flat_map(|name| {
            self.placements
                .get(name)
                .into_iter()
                .flatten()
                .map(move |p| (name, p))
        });
        if let (Some(_), Some((name, second))) = (placed.next(), placed.next()) {
            self.second_alertmanager(name, second.run_span, diags);
        }
    }

    fn second_alertmanager(&self, name: &str, span: Span, diags: &mut Diagnostics) {
        diags.push(
            Diagnostic::error(
                Code::NotSupported,
                span,
                format!("a second Alertmanager (`{name}`) in topology `{}`", self.topo.name.name),
            )
            .label("Alertmanagers that do not gossip each send every alert")
            .help("run one Alertmanager (one host, `replicas = 1`): stackc does not write an Alertmanager cluster yet"),
        );
    }

    fn receiver(&self, r: &ReceiverDef, diags: &mut Diagnostics) -> ReceiverPlan {
        let credential = |e: &Option<Expr>, field: &str, diags: &mut Diagnostics| {
            let e = e.as_ref()?;
            let suggested = format!("{}_{field}", r.name.name.replace('-', "_"));
            let (_, env) = self.credential(e, field, &suggested, diags)?;
            Some(Credential::new(env))
        };
        let slack = credential(&r.slack, "slack", diags);
        let pagerduty = credential(&r.pagerduty, "pagerduty", diags);
        if let (Some(channel), None) = (&r.channel, &r.slack) {
            diags.push(
                Diagnostic::error(
                    Code::InvalidValue,
                    channel.span,
                    "`channel` is the Slack channel, and the receiver has no `slack`",
                )
                .label("sent nowhere")
                .help("add `slack = secret.NAME` (the Slack webhook's URL), or remove `channel`"),
            );
        }
        ReceiverPlan {
            name: r.name.name.clone(),
            slack,
            channel: r.channel.as_ref().map(|c| c.value.clone()),
            pagerduty,
            webhook: r.webhook.as_ref().map(|w| w.value.clone()),
            severities: r.severity.iter().map(|s| s.value).collect(),
        }
    }

    /// An Alertmanager's environment: the receivers' credentials, which its
    /// start script writes to files.
    pub(super) fn wire_alertmanager(&self, name: &str, inst: &mut Instance) {
        if !self.is_kind(name, ALERTMANAGER_KIND) {
            return;
        }
        for r in self.topo.receivers.values() {
            for e in [&r.slack, &r.pagerduty].into_iter().flatten() {
                let Some((secret, env)) = self.secret_of(e) else {
                    continue;
                };
                if inst.env.iter().any(|v| v.key == env) {
                    continue;
                }
                inst.env.push(EnvVar {
                    key: env.clone(),
                    value: smallvec::smallvec![Out::secret(secret, env, false)],
                    span: e.span,
                });
            }
        }
    }
}
