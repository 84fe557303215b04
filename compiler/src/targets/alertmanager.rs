//! Alertmanager: `out/<topology>/alertmanager/alertmanager.yml`, the topology's
//! receivers and the routes to them, and `start.sh`, which writes the
//! receivers' credentials from the environment to the files the config names.
//! Every receiver gets the alerts of its severities (`continue`: several may
//! get one); an alert no receiver takes goes to `stackc:unrouted`, which sends
//! nowhere. The config is serialized from typed structs.

use serde::Serialize;

use super::{header, yaml, Artifact};
use crate::diag::Diagnostics;
use crate::options::Options;
use crate::plan::{
    Credential, ReceiverPlan, TopologyPlan, ALERTMANAGER_CONFIG, ALERTMANAGER_START,
    CREDENTIALS_DIR,
};

/// The receiver of what no receiver takes: no integration, so it drops.
/// Not a name a `.stack` file can give (`:` is not in a name).
const UNROUTED: &str = "stackc:unrouted";
/// As the stdlib kind mounts the config and keeps its data.
const CONFIG_PATH: &str = "/etc/alertmanager/alertmanager.yml";
const STORAGE_PATH: &str = "/alertmanager";

#[derive(Serialize)]
struct Config<'a> {
    route: Route<'a>,
    receivers: Vec<Receiver<'a>>,
}

#[derive(Serialize)]
struct Route<'a> {
    receiver: &'static str,
    /// One notification per alert and cluster or job, listing its instances.
    group_by: [&'static str; 3],
    group_wait: &'static str,
    group_interval: &'static str,
    repeat_interval: &'static str,
    routes: Vec<ChildRoute<'a>>,
}

#[derive(Serialize)]
struct ChildRoute<'a> {
    receiver: &'a str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    matchers: Vec<String>,
    #[serde(rename = "continue")]
    and_the_next: bool,
}

#[derive(Serialize)]
struct Receiver<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    slack_configs: Vec<Slack<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pagerduty_configs: Vec<PagerDuty<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    webhook_configs: Vec<Webhook<'a>>,
}

#[derive(Serialize)]
struct Slack<'a> {
    api_url_file: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    channel: Option<&'a str>,
    send_resolved: bool,
}

#[derive(Serialize)]
struct PagerDuty<'a> {
    routing_key_file: &'a str,
    send_resolved: bool,
}

#[derive(Serialize)]
struct Webhook<'a> {
    url: &'a str,
    send_resolved: bool,
}

/// A credential the start script writes: `$env` to `file`.
#[derive(Serialize)]
struct CredentialFile<'a> {
    env: &'a str,
    file: &'a str,
}

#[derive(Serialize)]
struct StartScript<'a> {
    header: String,
    dir: &'static str,
    credentials: Vec<CredentialFile<'a>>,
    config: &'static str,
    storage: &'static str,
}

pub fn generate(
    topo: &TopologyPlan,
    options: &Options,
    out: &mut super::Files<'_>,
    diags: &mut Diagnostics,
) {
    let receivers = &topo.alerting.receivers;
    if receivers.is_empty() {
        return;
    }
    let config = Config {
        route: Route {
            receiver: UNROUTED,
            group_by: ["alertname", "scope", "job"],
            group_wait: "30s",
            group_interval: "5m",
            repeat_interval: "4h",
            routes: receivers.iter().map(route).collect(),
        },
        receivers: std::iter::once(Receiver {
            name: UNROUTED,
            slack_configs: Vec::new(),
            pagerduty_configs: Vec::new(),
            webhook_configs: Vec::new(),
        })
        .chain(receivers.iter().map(receiver))
        .collect(),
    };
    let header = header("#", options, &topo.name);
    match yaml::to_string(&config) {
        Ok(body) => out.push(Artifact {
            path: format!("{}/{ALERTMANAGER_CONFIG}", topo.name),
            contents: format!("{header}{body}"),
        }),
        Err(e) => diags.push(super::internal(topo, "Alertmanager config", &e)),
    }
    let credentials = receivers
        .iter()
        .flat_map(|r| r.slack.iter().chain(&r.pagerduty))
        .map(|c: &Credential| CredentialFile {
            env: &c.env,
            file: &c.file,
        })
        .collect();
    let model = StartScript {
        header,
        dir: CREDENTIALS_DIR,
        credentials,
        config: CONFIG_PATH,
        storage: STORAGE_PATH,
    };
    let file = ALERTMANAGER_START
        .rsplit('/')
        .next()
        .unwrap_or(ALERTMANAGER_START);
    super::node_files(
        topo,
        "alertmanager",
        &[(file, "alertmanager-start.sh")],
        &model,
        ("alertmanager", &topo.name),
        out,
        diags,
    );
}

fn route(r: &ReceiverPlan) -> ChildRoute<'_> {
    let names: Vec<&str> = r.severities.iter().map(|s| s.name()).collect();
    let matchers = match names.as_slice() {
        [] => Vec::new(),
        [one] => vec![format!("severity=\"{one}\"")],
        many => vec![format!("severity=~\"{}\"", many.join("|"))],
    };
    ChildRoute {
        receiver: &r.name,
        matchers,
        and_the_next: true,
    }
}

fn receiver(r: &ReceiverPlan) -> Receiver<'_> {
    Receiver {
        name: &r.name,
        slack_configs: r
            .slack
            .iter()
            .map(|c| Slack {
                api_url_file: &c.file,
                channel: r.channel.as_deref(),
                send_resolved: true,
            })
            .collect(),
        pagerduty_configs: r
            .pagerduty
            .iter()
            .map(|c| PagerDuty {
                routing_key_file: &c.file,
                send_resolved: true,
            })
            .collect(),
        webhook_configs: r
            .webhook
            .iter()
            .map(|url| Webhook {
                url,
                send_resolved: true,
            })
            .collect(),
    }
}
