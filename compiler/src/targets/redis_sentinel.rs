//! The files of Redis with Sentinel on Kubernetes, for its ConfigMap: the Redis
//! base config, the two start scripts (which find the current master), and the
//! HAProxy config of the master endpoint (a `tcp-check` that follows
//! `role:master`, so clients keep one address across failovers).

use serde::Serialize;

use super::templates;
use crate::plan::redis_auth::{check, node_preamble, requires_auth};
use crate::plan::{Instance, SentinelPlan, REDIS_PASSWORD_ENV};

pub struct SentinelFiles {
    pub redis_conf: String,
    pub start_redis: String,
    pub start_sentinel: String,
    pub haproxy_cfg: String,
}

#[derive(Serialize)]
struct Model<'a> {
    header: &'a str,
    master: &'a str,
    headless: String,
    sentinel_headless: String,
    namespace: &'a str,
    seed: String,
    sentinel_hosts: String,
    quorum: u32,
    down_after_ms: u64,
    failover_ms: u64,
    /// With a password: the node's check and its directives on standard
    /// input (`redis_auth`, as on hosts), `redis-server`'s ` -` that reads
    /// them, the sentinel's check and its `auth-pass` line; else empty.
    node_auth: String,
    stdin: &'static str,
    sentinel_check: String,
    auth_pass: String,
}

/// The headless Service of the Redis nodes.
pub use crate::plan::kubernetes_names::headless;
/// The sentinels' StatefulSet (and its headless Service, with `-headless`).
pub use crate::plan::kubernetes_names::sentinels as sentinel_name;

/// The master endpoint's Deployment; its Service is the service's own name.
pub fn proxy_name(service: &str) -> String {
    crate::plan::kubernetes_names::master_proxy(service)
}

pub fn files(
    inst: &Instance,
    s: &SentinelPlan,
    namespace: &str,
    header: &str,
) -> Result<SentinelFiles, String> {
    let fqdn = |pod: String, svc: &str| format!("{pod}.{svc}.{namespace}.svc.cluster.local");
    let sentinel_headless = headless(&sentinel_name(&inst.name));
    let auth = requires_auth(inst);
    let when = |s: String| if auth { s } else { String::new() };
    let model = Model {
        header,
        master: &s.master_name,
        headless: headless(&inst.name),
        sentinel_headless: sentinel_headless.clone(),
        namespace,
        seed: fqdn(format!("{}-0", inst.name), &headless(&inst.name)),
        sentinel_hosts: (0..s.sentinels)
            .map(|i| {
                fqdn(
                    format!("{}-{i}", sentinel_name(&inst.name)),
                    &sentinel_headless,
                )
            })
            .collect::<Vec<_>>()
            .join(" "),
        quorum: s.quorum,
        down_after_ms: s.down_after.0,
        failover_ms: s.failover_timeout.0,
        node_auth: when(node_preamble()),
        stdin: if auth { " -" } else { "" },
        sentinel_check: when(check()),
        // In the unquoted here-document: the shell writes the value.
        auth_pass: when(format!(
            "sentinel auth-pass {} \"${REDIS_PASSWORD_ENV}\"\n",
            s.master_name
        )),
    };
    let servers: Vec<String> = (0..inst.replicas)
        .map(|i| {
            format!(
                "server {name}-{i} {}:6379 check",
                fqdn(format!("{}-{i}", inst.name), &headless(&inst.name)),
                name = inst.name
            )
        })
        .collect();
    let mut master: Vec<String> = vec!["option tcp-check".to_string(), "tcp-check connect".into()];
    if auth {
        // HAProxy expands the variable in a double-quoted word; the
        // container has it from the Secret.
        master.extend([
            format!("tcp-check send \"AUTH ${{{REDIS_PASSWORD_ENV}}}\\r\\n\""),
            "tcp-check expect string +OK".into(),
        ]);
    }
    master.extend([
        "tcp-check send PING\\r\\n".into(),
        "tcp-check expect string +PONG".into(),
        "tcp-check send info\\ replication\\r\\n".into(),
        "tcp-check expect string role:master".into(),
        "tcp-check send QUIT\\r\\n".into(),
        "tcp-check expect string +OK".into(),
        // Sessions to a demoted master are cut, so clients reconnect to the new one.
        "default-server inter 1s fall 2 rise 2 on-marked-down shutdown-sessions resolvers cluster"
            .into(),
    ]);
    master.extend(servers);
    let sections = vec![
        (
            "global".to_string(),
            vec![
                "log stdout format raw local0".to_string(),
                "maxconn 2048".into(),
            ],
        ),
        (
            "defaults".into(),
            vec![
                "log global".into(),
                "mode tcp".into(),
                "option tcplog".into(),
                "timeout connect 3s".into(),
                "timeout client 1h".into(),
                "timeout server 1h".into(),
                "timeout check 2s".into(),
                "default-server init-addr last,libc,none".into(),
            ],
        ),
        (
            "resolvers cluster".into(),
            vec![
                "parse-resolv-conf".into(),
                "resolve_retries 3".into(),
                "timeout resolve 1s".into(),
                "timeout retry 1s".into(),
                "hold valid 5s".into(),
            ],
        ),
        (
            "frontend redis".into(),
            vec!["bind :6379".into(), "default_backend master".into()],
        ),
        ("backend master".into(), master),
    ];
    Ok(SentinelFiles {
        redis_conf: templates::render("redis.conf", &model)?,
        start_redis: templates::render("start-redis.sh", &model)?,
        start_sentinel: templates::render("start-sentinel.sh", &model)?,
        haproxy_cfg: super::haproxy::render(header, sections)?,
    })
}
