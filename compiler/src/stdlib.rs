//! The stdlib: component kinds written in the .stack language (`stdlib/*.stack`),
//! compiled into the binary.

/// (file name, text), in load order.
pub const FILES: &[(&str, &str)] = &[
    (
        "postgres.stack",
        include_str!("../../stdlib/postgres.stack"),
    ),
    ("redis.stack", include_str!("../../stdlib/redis.stack")),
    ("qdrant.stack", include_str!("../../stdlib/qdrant.stack")),
    ("etcd.stack", include_str!("../../stdlib/etcd.stack")),
    (
        "prometheus.stack",
        include_str!("../../stdlib/prometheus.stack"),
    ),
    (
        "alertmanager.stack",
        include_str!("../../stdlib/alertmanager.stack"),
    ),
    ("grafana.stack", include_str!("../../stdlib/grafana.stack")),
];
