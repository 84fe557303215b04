//! The schema: every block of a `.stack` file with its fields and what each
//! means, and the attributes a reference may name. The lowering's field
//! lists, the language server's completion and hover, and the parser's
//! static words are all read from here (docs/language.md is the long form).

/// A field of a block, or an attribute of a reference.
#[derive(Debug)]
pub struct Field {
    pub name: &'static str,
    /// What it means, in one line: the editor shows it.
    pub doc: &'static str,
}

/// A block: how messages call it, and its fields.
#[derive(Debug)]
pub struct Block {
    /// As a message names it: "a route".
    pub called: &'static str,
    pub fields: &'static [Field],
}

impl Block {
    pub fn names(&self) -> impl Iterator<Item = &'static str> + Clone {
        self.fields.iter().map(|f| f.name)
    }

    pub fn has(&self, name: &str) -> bool {
        self.field(name).is_some()
    }

    pub fn field(&self, name: &str) -> Option<&'static Field> {
        self.fields.iter().find(|f| f.name == name)
    }
}

const fn f(name: &'static str, doc: &'static str) -> Field {
    Field { name, doc }
}

/// The top level of a file.
pub const TOP: Block = Block {
    called: "a .stack file",
    fields: &[
        f("stack", "the stack's name (default: the file's name)"),
        f(
            "secret",
            "a secret, declared by name: its value is never written",
        ),
        f(
            "kind",
            "shared defaults for services: `kind NAME [: PARENT] { ... }`",
        ),
        f("service", "a workload: `service NAME [: KIND] { ... }`"),
        f("external", "a managed service, known by its URL"),
        f("topology", "where and how the services run"),
    ],
};

/// A service (and a kind, and an override of a service in a topology).
pub const SERVICE: Block = Block {
    called: "a service",
    fields: &[
        f(
            "role",
            "`stateless` (default), `stateful`, or `task`: runs to completion (a migration, a scheduled job)",
        ),
        f("image", "the container image"),
        f(
            "build",
            "the build context, relative to the .stack file (compose)",
        ),
        f(
            "command",
            "replaces the image's CMD: a list of words, or a string split into words",
        ),
        f(
            "entrypoint",
            "replaces the image's ENTRYPOINT (the same forms as `command`)",
        ),
        f(
            "port",
            "a named port: `port http = 3000` or `port NAME { container host protocol }`",
        ),
        f(
            "public",
            "the ports published on all interfaces of the service's host",
        ),
        f(
            "env",
            "the environment: text, references (`db.url`) and secrets (`secret.NAME`)",
        ),
        f(
            "volume",
            "a named volume: `volume data = \"/path\"` or `volume NAME { path size }`",
        ),
        f(
            "mount",
            "a bind mount relative to the .stack file, or an `@out/` file stackc generates",
        ),
        f("replicas", "how many instances run (default 1)"),
        f("resources", "reserved and limited CPU, memory and GPUs"),
        f(
            "health",
            "one check for liveness and readiness, or separate probes",
        ),
        f("route", "a public path prefix the topology's proxies serve"),
        f(
            "backup",
            "PostgreSQL: scheduled base backups and WAL archiving with pgBackRest, and a restore script",
        ),
        f(
            "restart",
            "`no`, `always`, `on-failure` or `unless-stopped` (default; a task: `no`)",
        ),
        f(
            "schedule",
            "a task's cron schedule, in UTC: `MINUTE HOUR DAY MONTH WEEKDAY` or `@daily`",
        ),
        f(
            "depends_on",
            "services started first (`NAME.healthy`: once healthy)",
        ),
        f("url", "how others reach it: a template (kinds set it)"),
        f("read_url", "the read-only form of `url` (default: `url`)"),
        f("public_url", "the URL the public reaches it at"),
        f(
            "roles",
            "PostgreSQL and Redis: `per_service` gives each client a role (a user) of its own (default `shared`)",
        ),
        f(
            "ha",
            "an HA mode its kind allows, or a block of the mode's options",
        ),
        f(
            "postgresql",
            "PostgreSQL's settings: `postgresql { max_connections = 200  shared_buffers = 1Gi }`",
        ),
        f("autoscale", "Kubernetes: a HorizontalPodAutoscaler"),
        f(
            "update",
            "Kubernetes: the rolling update's surge and unavailability",
        ),
        f(
            "stop_grace_period",
            "how long a stop waits before killing (compose and Kubernetes)",
        ),
        f(
            "pre_stop",
            "Kubernetes: a sleep before SIGTERM, while endpoints drain",
        ),
        f(
            "min_available",
            "Kubernetes: the PodDisruptionBudget's minimum",
        ),
        f("weight", "this placement's share of a `weighted` route"),
        f(
            "metrics",
            "what Prometheus scrapes: a port, or `metrics { port path interval timeout }`",
        ),
    ],
};

/// The fields only a kind has, besides a service's.
pub const KIND_ONLY: Block = Block {
    called: "a kind",
    fields: &[
        f("param", "a parameter of the kind: `param NAME [= DEFAULT]`"),
        f("ha_modes", "the HA modes services of the kind may choose"),
    ],
};

pub const SECRET: Block = Block {
    called: "a secret",
    fields: &[
        f("optional", "a service may start without it (default false)"),
        f(
            "generate",
            "`stackc secrets init` may make a random value (default true); `false` for a third party's credential, which the user brings",
        ),
        f("description", "what it is for: shown by `stackc secrets`"),
    ],
};

pub const EXTERNAL: Block = Block {
    called: "an external service",
    fields: &[
        f("url", "the URL to connect to"),
        f("read_url", "the read-only URL (default: `url`)"),
        f("public_url", "the URL the public reaches it at"),
        f("host", "the host name to connect to"),
        f("port", "the port to connect to"),
    ],
};

pub const AUTOSCALE: Block = Block {
    called: "an autoscale block",
    fields: &[
        f("min", "the fewest replicas"),
        f("max", "the most replicas"),
        f("cpu", "the target CPU utilization, percent of the request"),
        f(
            "memory",
            "the target memory utilization, percent of the request",
        ),
        f(
            "metric",
            "a pod metric to scale on: `metric \"NAME\" { per_pod = N }`",
        ),
        f(
            "external",
            "a metric from outside the cluster: `external \"NAME\" { per_pod = N  labels { ... } }`",
        ),
        f("scale_up", "how fast replicas are added"),
        f("scale_down", "how fast replicas are removed"),
    ],
};

pub const SCALE_METRIC: Block = Block {
    called: "an autoscale metric",
    fields: &[
        f(
            "per_pod",
            "the value per pod to keep it at (a pod metric's average)",
        ),
        f("total", "an external metric: its own value to keep it at"),
        f("labels", "an external metric: the labels of its series"),
    ],
};

pub const SCALE_POLICY: Block = Block {
    called: "a scaling policy",
    fields: &[
        f("window", "the stabilization window"),
        f("percent", "at most this percent of the replicas per period"),
        f("pods", "at most this many pods per period"),
        f("period", "the period of `percent` and `pods`"),
    ],
};

pub const UPDATE: Block = Block {
    called: "an update block",
    fields: &[
        f("max_surge", "pods above `replicas` during a rollout"),
        f("max_unavailable", "pods below `replicas` during a rollout"),
    ],
};

pub const VOLUME: Block = Block {
    called: "a volume",
    fields: &[
        f("path", "where it is mounted in the container"),
        f("size", "the Kubernetes volume claim (default 1Gi)"),
    ],
};

pub const BACKUP: Block = Block {
    called: "a backup block",
    fields: &[
        f(
            "schedule",
            "when a full backup runs, in UTC (cron; default `0 2 * * *`)",
        ),
        f(
            "retention",
            "how many days of backups are kept (default 30)",
        ),
        f(
            "s3",
            "the repository in an S3-compatible bucket (default: the volume `<service>-backups`)",
        ),
    ],
};

pub const S3: Block = Block {
    called: "an s3 block",
    fields: &[
        f("bucket", "the bucket's name (required)"),
        f(
            "endpoint",
            "`https://HOST[:PORT]` (default: AWS's endpoint of the region)",
        ),
        f("region", "the bucket's region, `eu-central-1` (required)"),
        f(
            "path",
            "the repository's path in the bucket (default `/<stack>/<service>`)",
        ),
        f("access_key", "the access key id, `secret.NAME` (required)"),
        f(
            "secret_key",
            "the secret access key, `secret.NAME` (required)",
        ),
    ],
};

pub const METRICS: Block = Block {
    called: "a metrics block",
    fields: &[
        f("port", "the port scraped (default: the first)"),
        f("path", "the path scraped (default /metrics)"),
        f("interval", "how often it is scraped"),
        f("timeout", "how long a scrape may take: at most `interval`"),
        f(
            "requests",
            "the counter of HTTP requests (`http_requests_total`): alerts on its 5xx rate",
        ),
        f(
            "status_label",
            "the label of `requests` that holds the status (default `code`)",
        ),
        f(
            "error_rate",
            "the percent of requests answered 5xx that alerts (default 5)",
        ),
        f(
            "latency",
            "the histogram of request durations in seconds: alerts on its 95th percentile",
        ),
        f(
            "latency_p95",
            "the 95th percentile of `latency` that alerts (default 2s)",
        ),
    ],
};

pub const HA: Block = Block {
    called: "an ha block",
    fields: &[
        f(
            "mode",
            "the HA mode: one of the kind's `ha_modes`, or `single`",
        ),
        f("sentinels", "Sentinel: how many sentinels (default 3)"),
        f(
            "quorum",
            "Sentinel: the sentinels that must agree (default: a majority)",
        ),
        f(
            "down_after",
            "Sentinel: how long the master is unreachable before failover",
        ),
        f("failover_timeout", "Sentinel: the failover timeout"),
        f(
            "master_name",
            "Sentinel: the master's name (default: the service's)",
        ),
        f(
            "replication_user",
            "the replication role (default \"replicator\")",
        ),
        f(
            "replication_password",
            "the replication role's password: a secret",
        ),
        f(
            "superuser_password",
            "Patroni: the superuser's password (a secret)",
        ),
        f(
            "ttl",
            "Patroni: the leader key's time to live (default 30s)",
        ),
        f("loop_wait", "Patroni: the loop's sleep (default 10s)"),
        f(
            "retry_timeout",
            "Patroni: the DCS and PostgreSQL retry timeout (default 10s)",
        ),
        f(
            "maximum_lag",
            "Patroni: the most WAL a replica may trail by and still be promoted (default 1Mi)",
        ),
        f(
            "synchronous",
            "Patroni: synchronous replication, no acknowledged write lost",
        ),
        f("watchdog", "Patroni: `off`, `automatic` or `required`"),
        f(
            "etcd",
            "Patroni: the hosts of the etcd members (default: the nodes')",
        ),
    ],
};

pub const RESOURCES: Block = Block {
    called: "resources",
    fields: &[
        f("cpu", "CPUs reserved (Kubernetes requests)"),
        f("memory", "memory reserved (Kubernetes requests)"),
        f("cpu_limit", "the CPU limit"),
        f("memory_limit", "the memory limit"),
        f("gpu", "NVIDIA GPUs reserved per replica"),
    ],
};

/// The probes of a `health` block, when it has separate ones.
pub const HEALTH: Block = Block {
    called: "a health block",
    fields: &[
        f("liveness", "restarts the container when it fails"),
        f("readiness", "takes it out of service while it fails"),
        f("startup", "holds the other probes until it passes once"),
    ],
};

pub const PROBE: Block = Block {
    called: "a health check",
    fields: &[
        f("http", "an HTTP GET of this path"),
        f("tcp", "a TCP connection to the port"),
        f("command", "a command run in the container by `sh -c`"),
        f("port", "the port checked (default: the first)"),
        f("interval", "time between checks"),
        f("timeout", "how long a check may take"),
        f("retries", "failures before it counts as failed"),
        f(
            "start_period",
            "time after start when failures do not count",
        ),
    ],
};

pub const PORT: Block = Block {
    called: "a port",
    fields: &[
        f("container", "the port the container listens on"),
        f(
            "host",
            "the port published on the host (default: the container's)",
        ),
        f("protocol", "`http`, `tcp` or `udp`"),
    ],
};

pub const MOUNT: Block = Block {
    called: "a mount",
    fields: &[
        f("target", "the path in the container"),
        f("read_only", "mounted read-only (default false)"),
    ],
};

pub const ROUTE: Block = Block {
    called: "a route",
    fields: &[
        f("port", "the port routed to (default: the first HTTP port)"),
        f(
            "domain",
            "the domain served (default: the host of `public_url`)",
        ),
        f(
            "strategy",
            "`round_robin` (default), `least_conn`, `ip_hash` or `weighted`",
        ),
        f("rate", "requests per second per client address"),
        f("burst", "requests above `rate` let through at once"),
        f("limit_status", "the status past the limit (default 429)"),
        f("connect_timeout", "the timeout of connecting to a server"),
        f("send_timeout", "the timeout of sending to a server"),
        f("read_timeout", "the timeout of reading from a server"),
        f("body_size", "the largest request body"),
        f("websocket", "pass Upgrade and Connection"),
        f(
            "default",
            "the domain's catch-all (may overlap other routes)",
        ),
        f("strip_prefix", "forward `/api/x` as `/x`"),
    ],
};

pub const PROXY: Block = Block {
    called: "a proxy",
    fields: &[
        f("host", "the host it runs on"),
        f(
            "on_host",
            "a system service on the host, not in its compose file",
        ),
        f("bind", "the address it listens on (default: all)"),
        f("http", "the HTTP port (default 80)"),
        f("https", "the HTTPS port (default 443)"),
        f("image", "its image, when it runs in compose"),
        f(
            "tls",
            "a domain's certificate and key: `tls \"DOMAIN\" { cert key }`",
        ),
    ],
};

pub const TLS: Block = Block {
    called: "a tls block",
    fields: &[
        f("cert", "the certificate chain's path"),
        f("key", "the private key's path"),
    ],
};

pub const ACME: Block = Block {
    called: "an acme block",
    fields: &[
        f(
            "directory",
            "the ACME server: `letsencrypt`, `staging` (Let's Encrypt's; the default outside `production = true`) or an `https://` URL",
        ),
        f("email", "the ACME account's contact, for expiry notices"),
    ],
};

/// A few of PostgreSQL's settings, for the editor: the block takes any.
pub const POSTGRESQL: Block = Block {
    called: "a postgresql block",
    fields: &[
        f("max_connections", "the most concurrent connections"),
        f("shared_buffers", "the memory for shared buffers (`1Gi`)"),
        f("effective_cache_size", "the planner's idea of the OS cache"),
        f("work_mem", "the memory of a sort or hash, per operation"),
        f("wal_keep_size", "the WAL kept for standbys (`1Gi`)"),
    ],
};

pub const RECEIVER: Block = Block {
    called: "a receiver",
    fields: &[
        f("slack", "a Slack incoming webhook's URL: `secret.NAME`"),
        f("channel", "the Slack channel to post to (`#ops`)"),
        f("pagerduty", "a PagerDuty routing key: `secret.NAME`"),
        f("webhook", "a URL that receives Alertmanager's JSON"),
        f(
            "severity",
            "the severities it receives: `[critical]`, `[critical, warning]` (default: all)",
        ),
    ],
};

/// Attributes a reference may name on a service, besides its parameters.
pub const ATTRIBUTES: &[Field] = &[
    f(
        "url",
        "the URL to connect to (the service's `url` template)",
    ),
    f("host", "the host name or address to connect to"),
    f("port", "the port to connect to"),
    f("address", "`host:port`"),
    f(
        "read_url",
        "the URL of the read replicas (the primary when there are none)",
    ),
    f("read_host", "the read replicas' host"),
    f("read_address", "the read replicas' `host:port`"),
    f("public_url", "the URL the public reaches it at"),
    f("ports", "`ports.NAME`: a named port"),
    f(
        "sentinels",
        "Redis with Sentinel: the sentinels' `host:26379` list",
    ),
    f(
        "sentinel_url",
        "Redis with Sentinel: Celery's `sentinel://` URLs",
    ),
    f("master_name", "Redis with Sentinel: the master's name"),
];

/// The blocks whose fields an entry with this key holds, as the editor sees
/// it (the key alone; `""` is the top level).
pub fn blocks_of(key: &str) -> &'static [&'static Block] {
    match key {
        "" => &[&TOP],
        "service" | "override" | "run" => &[&SERVICE],
        "kind" => &[&SERVICE, &KIND_ONLY],
        "secret" => &[&SECRET],
        "external" => &[&EXTERNAL],
        "topology" => &[&TOPOLOGY],
        "autoscale" => &[&AUTOSCALE],
        "scale_up" | "scale_down" => &[&SCALE_POLICY],
        "metric" => &[&SCALE_METRIC],
        "update" => &[&UPDATE],
        "volume" => &[&VOLUME],
        "metrics" => &[&METRICS],
        "backup" => &[&BACKUP],
        "s3" => &[&S3],
        "ha" => &[&HA],
        "host" => &[&HOST],
        "resources" => &[&RESOURCES],
        "health" => &[&HEALTH, &PROBE],
        "liveness" | "readiness" | "startup" => &[&PROBE],
        "port" => &[&PORT],
        "mount" => &[&MOUNT],
        "route" => &[&ROUTE],
        "proxy" => &[&PROXY],
        "tls" => &[&TLS],
        "acme" => &[&ACME],
        "receiver" => &[&RECEIVER],
        "postgresql" => &[&POSTGRESQL],
        _ => &[],
    }
}

/// Every block.
pub(crate) const BLOCKS: &[&Block] = &[
    &TOP,
    &SERVICE,
    &KIND_ONLY,
    &SECRET,
    &EXTERNAL,
    &TOPOLOGY,
    &AUTOSCALE,
    &SCALE_POLICY,
    &SCALE_METRIC,
    &UPDATE,
    &VOLUME,
    &METRICS,
    &BACKUP,
    &S3,
    &HA,
    &HOST,
    &RESOURCES,
    &HEALTH,
    &PROBE,
    &PORT,
    &MOUNT,
    &ROUTE,
    &PROXY,
    &TLS,
    &ACME,
    &RECEIVER,
    &POSTGRESQL,
];

/// Values files write again and again (platforms, roles, strategies...).
const COMMON_VALUES: &[&str] = &[
    "compose",
    "kubernetes",
    "nginx",
    "haproxy",
    "stateful",
    "stateless",
    "least_conn",
    "round_robin",
    "ip_hash",
    "self",
];

/// The values of the choice fields, as completion offers them after
/// `FIELD =` (the lowering accepts each: `lower::tests`).
pub const CHOICES: &[(&str, &[&str])] = &[
    ("role", &["stateless", "stateful", "task"]),
    ("restart", &["no", "always", "on-failure", "unless-stopped"]),
    (
        "strategy",
        &["round_robin", "least_conn", "ip_hash", "weighted"],
    ),
    ("protocol", &["http", "tcp", "udp"]),
    ("platform", &["compose", "kubernetes"]),
    ("scrape", &["pod_monitor", "annotations"]),
    ("roles", &["shared", "per_service"]),
];

/// The values a choice field takes, when `field` is one.
pub fn choices(field: &str) -> Option<&'static [&'static str]> {
    CHOICES.iter().find(|(f, _)| *f == field).map(|(_, c)| *c)
}

/// Every field name, attribute and common value: the words the parser keeps
/// as static text instead of copying.
pub fn words() -> impl Iterator<Item = &'static str> {
    BLOCKS
        .iter()
        .flat_map(|b| b.names())
        .chain(ATTRIBUTES.iter().map(|a| a.name))
        .chain(COMMON_VALUES.iter().copied())
}

mod topology;
pub use topology::{HOST, TOPOLOGY};

#[cfg(test)]
mod tests;
