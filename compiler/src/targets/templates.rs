//! The handlebars registry for the line-based targets: strict (a missing field is
//! an error, not an empty string) and without HTML escaping.

use std::sync::OnceLock;

use handlebars::Handlebars;
use serde::Serialize;

/// Templates, compiled into the binary from the repository's `targets/`.
const TEMPLATES: &[(&str, &str)] = &[
    (
        "nginx-head",
        include_str!("../../../targets/nginx/head.hbs"),
    ),
    (
        "nginx-upstream",
        include_str!("../../../targets/nginx/upstream.hbs"),
    ),
    (
        "nginx-server",
        include_str!("../../../targets/nginx/server.hbs"),
    ),
    (
        "nginx-location",
        include_str!("../../../targets/nginx/location.hbs"),
    ),
    (
        "nginx-server-end",
        include_str!("../../../targets/nginx/server-end.hbs"),
    ),
    ("nginx-end", include_str!("../../../targets/nginx/end.hbs")),
    (
        "haproxy",
        include_str!("../../../targets/haproxy/haproxy.cfg.hbs"),
    ),
    (
        "postgresql.conf",
        include_str!("../../../targets/postgres/postgresql.conf.hbs"),
    ),
    (
        "pg_hba.conf",
        include_str!("../../../targets/postgres/pg_hba.conf.hbs"),
    ),
    (
        "init-replication.sh",
        include_str!("../../../targets/postgres/init-replication.sh.hbs"),
    ),
    (
        "standby.sh",
        include_str!("../../../targets/postgres/standby.sh.hbs"),
    ),
    (
        "hostssl.sh",
        include_str!("../../../targets/postgres/hostssl.sh.hbs"),
    ),
    (
        "patroni-post-bootstrap.sh",
        include_str!("../../../targets/patroni/post-bootstrap.sh.hbs"),
    ),
    (
        "patroni-Dockerfile",
        include_str!("../../../targets/patroni/Dockerfile.hbs"),
    ),
    (
        "redis-node.conf",
        include_str!("../../../targets/redis/node.conf.hbs"),
    ),
    (
        "sentinel-host.conf",
        include_str!("../../../targets/redis/sentinel-host.conf.hbs"),
    ),
    ("acme.sh", include_str!("../../../targets/acme/acme.sh.hbs")),
    (
        "haproxy-start.sh",
        include_str!("../../../targets/haproxy/start.sh.hbs"),
    ),
    (
        "alertmanager-start.sh",
        include_str!("../../../targets/alertmanager/start.sh.hbs"),
    ),
    (
        "nginx-start.sh",
        include_str!("../../../targets/nginx/start.sh.hbs"),
    ),
    (
        "pgbackrest-Dockerfile",
        include_str!("../../../targets/pgbackrest/Dockerfile.hbs"),
    ),
    (
        "pgbackrest.conf",
        include_str!("../../../targets/pgbackrest/pgbackrest.conf.hbs"),
    ),
    (
        "pgbackrest-backup.sh",
        include_str!("../../../targets/pgbackrest/backup.sh.hbs"),
    ),
    (
        "pgbackrest-restore.sh",
        include_str!("../../../targets/pgbackrest/restore.sh.hbs"),
    ),
    (
        "pgbackrest-restore-patroni.sh",
        include_str!("../../../targets/pgbackrest/restore-patroni.sh.hbs"),
    ),
    (
        "redis-backup.sh",
        include_str!("../../../targets/redis/backup.sh.hbs"),
    ),
    (
        "redis-restore.sh",
        include_str!("../../../targets/redis/restore.sh.hbs"),
    ),
    (
        "task.service",
        include_str!("../../../targets/systemd/task.service.hbs"),
    ),
    (
        "task.timer",
        include_str!("../../../targets/systemd/task.timer.hbs"),
    ),
    (
        "acme-certs.service",
        include_str!("../../../targets/systemd/acme-certs.service.hbs"),
    ),
    (
        "acme.service",
        include_str!("../../../targets/systemd/acme.service.hbs"),
    ),
    (
        "acme.timer",
        include_str!("../../../targets/systemd/acme.timer.hbs"),
    ),
    (
        "host.nft",
        include_str!("../../../targets/firewall/host.nft.hbs"),
    ),
    (
        "redis.conf",
        include_str!("../../../targets/redis/redis.conf.hbs"),
    ),
    (
        "start-redis.sh",
        include_str!("../../../targets/redis/start-redis.sh.hbs"),
    ),
    (
        "start-sentinel.sh",
        include_str!("../../../targets/redis/start-sentinel.sh.hbs"),
    ),
];

fn registry() -> Result<Handlebars<'static>, String> {
    let mut hb = Handlebars::new();
    hb.set_strict_mode(true);
    hb.register_escape_fn(handlebars::no_escape);
    for (name, text) in TEMPLATES {
        hb.register_template_string(name, text)
            .map_err(|e| e.to_string())?;
    }
    Ok(hb)
}

/// The compiled templates: once per process, shared by the threads of the
/// topologies.
fn compiled() -> Result<&'static Handlebars<'static>, String> {
    static REGISTRY: OnceLock<Result<Handlebars<'static>, String>> = OnceLock::new();
    REGISTRY
        .get_or_init(registry)
        .as_ref()
        .map_err(Clone::clone)
}

/// Renders a template with a view-model.
pub fn render<T: Serialize>(template: &str, model: &T) -> Result<String, String> {
    compiled()?
        .render(template, model)
        .map_err(|e| e.to_string())
}

/// Renders a template with a view-model at the end of `out`: a large file is
/// rendered block by block, each from a small view-model (handlebars copies its
/// view-model into JSON before rendering it).
pub fn render_into<T: Serialize>(
    template: &str,
    model: &T,
    out: &mut Vec<u8>,
) -> Result<(), String> {
    compiled()?
        .render_to_write(template, model, out)
        .map_err(|e| e.to_string())
}
