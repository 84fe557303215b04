//! HA: a service's `ha` block and the modes stackc knows.

use super::*;

/// `ha = MODE` or `ha { mode = MODE  ...options }`: how a stateful service is
/// replicated. Options apply to the modes that use them.
#[derive(Debug, Clone, PartialEq)]
pub struct HaDef {
    pub mode: Sp<HaMode>,
    /// Sentinel: how many sentinels watch the master (default 3).
    pub sentinels: Option<Sp<u32>>,
    /// Sentinel: how many sentinels must agree that the master is down (default: a majority).
    pub quorum: Option<Sp<u32>>,
    /// Sentinel: how long the master may not answer before it is down (default 5s).
    pub down_after: Option<Sp<Duration>>,
    /// Sentinel: the failover timeout (default 3 x `down_after`, at least 10s).
    pub failover_timeout: Option<Sp<Duration>>,
    /// Sentinel: the name clients ask for (default: the service's name).
    pub master_name: Option<Sp<String>>,
    /// Streaming and Patroni: the replication role (default `replicator`).
    pub replication_user: Option<Sp<String>>,
    /// Streaming and Patroni: the replication role's password, a secret.
    pub replication_password: Option<Expr>,
    /// Patroni: the `postgres` superuser's password, a secret (default: the
    /// service's `password`).
    pub superuser_password: Option<Expr>,
    /// Patroni: the leader key's time to live in the DCS (default 30s).
    pub ttl: Option<Sp<Duration>>,
    /// Patroni: the pause between two runs of the HA loop (default 10s).
    pub loop_wait: Option<Sp<Duration>>,
    /// Patroni: how long DCS and PostgreSQL operations are retried (default 10s).
    pub retry_timeout: Option<Sp<Duration>>,
    /// Patroni: how far behind (in WAL) a replica may be and still be
    /// promoted (`maximum_lag_on_failover`, default 1Mi).
    pub maximum_lag: Option<Sp<Size>>,
    /// Patroni: synchronous replication (`synchronous_mode`, default false).
    pub synchronous: Option<Sp<bool>>,
    /// Patroni: the watchdog mode (`off`, `automatic` or `required`).
    pub watchdog: Option<Sp<Watchdog>>,
    /// Patroni: the hosts that run the etcd members (default: the nodes' hosts).
    pub etcd: Option<Sp<Vec<Ident>>>,
    pub span: Span,
}

impl HaDef {
    /// A mode with every option unset.
    pub fn new(mode: Sp<HaMode>, span: Span) -> HaDef {
        HaDef {
            mode,
            sentinels: None,
            quorum: None,
            down_after: None,
            failover_timeout: None,
            master_name: None,
            replication_user: None,
            replication_password: None,
            superuser_password: None,
            ttl: None,
            loop_wait: None,
            retry_timeout: None,
            maximum_lag: None,
            synchronous: None,
            watchdog: None,
            etcd: None,
            span,
        }
    }
}

/// Patroni's watchdog: whether a node that cannot renew its leader key is
/// reset by the kernel (../shared/TARGETS.md 2.1.12).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Watchdog {
    Off,
    Automatic,
    Required,
}

impl Watchdog {
    pub fn as_str(self) -> &'static str {
        match self {
            Watchdog::Off => "off",
            Watchdog::Automatic => "automatic",
            Watchdog::Required => "required",
        }
    }
}

/// How a stateful service is replicated: `ha = MODE`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum HaMode {
    /// One instance (the default, always allowed).
    Single,
    /// PostgreSQL with one primary and streaming standbys (hosts).
    Streaming,
    /// PostgreSQL run by Patroni, with etcd as its DCS (hosts).
    Patroni,
    /// Redis with one master and replicas, no automatic failover (hosts).
    Replica,
    /// Redis watched by Sentinel.
    Sentinel,
    /// PostgreSQL run by the CloudNativePG operator (Kubernetes).
    CloudNativePg,
    /// A mode a kind declares that stackc does not know: no target writes it,
    /// which is reported where a service chooses it.
    Other(Name),
}

impl HaMode {
    pub fn new(name: &str) -> HaMode {
        match name {
            "single" => HaMode::Single,
            "streaming" => HaMode::Streaming,
            "patroni" => HaMode::Patroni,
            "replica" => HaMode::Replica,
            "sentinel" => HaMode::Sentinel,
            "cloudnativepg" => HaMode::CloudNativePg,
            other => HaMode::Other(Name::new(other)),
        }
    }

    /// As a file writes it.
    pub fn name(&self) -> &str {
        match self {
            HaMode::Single => "single",
            HaMode::Streaming => "streaming",
            HaMode::Patroni => "patroni",
            HaMode::Replica => "replica",
            HaMode::Sentinel => "sentinel",
            HaMode::CloudNativePg => "cloudnativepg",
            HaMode::Other(name) => name,
        }
    }

    /// The modes that run on hosts (compose), one instance per host.
    pub fn on_hosts(&self) -> bool {
        matches!(
            self,
            HaMode::Streaming | HaMode::Patroni | HaMode::Replica | HaMode::Sentinel
        )
    }
}

/// The modes an option of an `ha` block applies to (`mode` and unknown
/// options: none listed). The check refuses an option of another mode than
/// the chosen one; completion offers a kind only the options of its modes.
pub fn option_modes(option: &str) -> &'static [HaMode] {
    const SENTINEL: &[HaMode] = &[HaMode::Sentinel];
    const PATRONI: &[HaMode] = &[HaMode::Patroni];
    match option {
        "sentinels" | "quorum" | "down_after" | "failover_timeout" | "master_name" => SENTINEL,
        "replication_user" | "replication_password" => &[HaMode::Streaming, HaMode::Patroni],
        "superuser_password" | "ttl" | "loop_wait" | "retry_timeout" | "maximum_lag"
        | "synchronous" | "watchdog" | "etcd" => PATRONI,
        _ => &[],
    }
}

impl std::fmt::Display for HaMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
