//! Backups of a Patroni cluster, with the real programs: the cluster of
//! tests/cases/backups-patroni.stack, run as `tests/patroni_cluster.rs` says,
//! archives into a bucket (moto's S3 server behind nginx, `tests/s3_store.rs`)
//! with the installed pgBackRest, from exactly the generated `patroni.yml`,
//! `pgbackrest.conf` and scripts.
//!
//! The backup task runs on every host: the leader's backs up, the replicas'
//! do nothing. Rows are written, the leader is killed, more rows go to the
//! new leader (its WAL archived). Then every node is lost, data and all; the
//! generated `restore.sh` restores one host's node (refused while that node
//! runs), which Patroni takes as the cluster's leader; `restore.sh --replica`
//! empties the others, which clone it; every acknowledged row is back, and
//! the cluster takes writes.

use std::path::Path;
use std::time::Duration;

use crate::patroni_cluster::{execute, psql, text, wait_streaming, Cluster, HOSTS};
use crate::s3_store::{Ports, S3Store};
use crate::support::{require, wait_for};

const TTL: Duration = Duration::from_secs(20);

/// The store of the stack below (its endpoint's port).
const STORE: Ports = Ports {
    endpoint: 19444,
    moto: 19001,
};

/// The stack, with the PostgreSQL installed here and the hosts on loopback.
fn stack() -> String {
    let mut text =
        crate::support::read(&crate::support::root().join("tests/cases/backups-patroni.stack"))
            .replace("postgres:17", "postgres:MAJOR");
    for (i, (_, address)) in HOSTS.iter().enumerate() {
        text = text.replace(&format!("\"10.0.0.1{}\"", i + 1), &format!("\"{address}\""));
    }
    text
}

fn insert(url: &str, what: &str, rows: usize) {
    execute(
        url,
        &format!(
            "INSERT INTO orders (item) SELECT '{what}-' || i FROM generate_series(1, {rows}) i"
        ),
    );
}

fn output(o: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The leader's current WAL segment, switched and archived.
fn archive_now(admin: &str) {
    let segment = text(&psql(admin, "SELECT pg_walfile_name(pg_switch_wal())"));
    wait_for("the segment is archived", Duration::from_secs(30), || {
        text(&psql(
            admin,
            "SELECT last_archived_wal FROM pg_stat_archiver",
        )) >= segment
    });
}

#[test]
fn a_patroni_cluster_is_restored_from_its_bucket() {
    if !require("pgbackrest") {
        return;
    }
    let store_dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let Some(store) = S3Store::start(store_dir.path(), "ha-backups", STORE) else {
        return;
    };
    // The store's certificate in each node's /etc/stackc, and a lock
    // directory per node (containers have their own /tmp; these share one).
    let ca = store.ca.clone();
    let extra = move |base: &Path| {
        std::fs::copy(&ca, base.join("etc/s3-ca.crt")).unwrap_or_else(|e| panic!("{e}"));
        vec![
            (
                "PGBACKREST_REPO1_STORAGE_CA_FILE".to_string(),
                "/etc/stackc/s3-ca.crt".to_string(),
            ),
            (
                "PGBACKREST_LOCK_PATH".to_string(),
                "/var/lib/postgresql/data/pgbackrest-lock".to_string(),
            ),
        ]
    };
    let Some(mut cluster) = Cluster::prepare(&stack(), &extra) else {
        return;
    };
    assert!(
        cluster
            .file("trio/db/image/Dockerfile")
            .contains("pgbackrest"),
        "the node image has pgBackRest"
    );
    for n in 0..HOSTS.len() {
        cluster.start(n);
    }
    cluster.start_haproxy();
    let (url, _, admin) = cluster.urls();
    wait_streaming(&url, &admin, 2);
    execute(
        &url,
        "CREATE TABLE orders (id serial PRIMARY KEY, item text NOT NULL)",
    );
    insert(&url, "before", 100);

    // The task on every host: the leader's backs up, the others' skip.
    let leader = cluster.leader().unwrap_or_else(|| panic!("no leader"));
    for (n, (host, _)) in HOSTS.iter().enumerate() {
        let o = cluster.task(n, None);
        let out = output(&o);
        assert!(o.status.success(), "{host}: {out}");
        if n == leader {
            assert!(
                out.contains("backup command end: completed successfully"),
                "{out}"
            );
        } else {
            assert!(out.contains("is a replica"), "{out}");
        }
    }
    for prefix in [
        "ha/db/backup/db/backup.info",
        "ha/db/archive/db/archive.info",
    ] {
        let keys = store.keys("ha-backups", prefix);
        assert!(
            keys.contains(&format!("<Key>{prefix}</Key>")),
            "{prefix} in the bucket: {keys}"
        );
    }

    // Written after the backup, replayed by both replicas; the leader lost.
    insert(&url, "after-backup", 50);
    wait_for("both replicas replay", Duration::from_secs(20), || {
        text(&psql(
            &admin,
            "SELECT count(*) FROM pg_stat_replication WHERE replay_lsn = pg_current_wal_lsn()",
        )) == "2"
    });
    cluster.kill(leader);
    wait_for(
        "a new leader takes writes",
        TTL + Duration::from_secs(15),
        || cluster.leader().is_some_and(|l| l != leader) && psql(&url, "SELECT 1").status.success(),
    );
    wait_for(
        "the new leader takes writes",
        Duration::from_secs(20),
        || {
            psql(
                &url,
                "INSERT INTO orders (item) VALUES ('after-failover-0')",
            )
            .status
            .success()
        },
    );
    insert(&url, "after-failover", 49);
    archive_now(&admin);

    // A node is not restored while it runs.
    let running = cluster.leader().unwrap_or_else(|| panic!("no leader"));
    let restore = |args: &[&str]| {
        let mut line = vec!["sh".to_string(), "/stackc/backup/restore.sh".into()];
        line.extend(args.iter().map(|a| a.to_string()));
        line
    };
    let o = cluster.task(running, Some(&restore(&[])));
    assert!(!o.status.success(), "a running node is refused");
    assert!(output(&o).contains("is running"), "{}", output(&o));

    // Every node lost, data and all.
    for n in 0..HOSTS.len() {
        cluster.kill(n);
        let pgdata = cluster.nodes[n].volume.join("pgdata");
        std::fs::remove_dir_all(&pgdata).unwrap_or_else(|e| panic!("{e}"));
    }
    let o = cluster.task(0, Some(&restore(&[])));
    assert!(o.status.success(), "restore.sh: {}", output(&o));
    cluster.start(0);
    wait_for("the restored node leads", Duration::from_secs(60), || {
        cluster.leader() == Some(0)
    });
    for n in 1..HOSTS.len() {
        let o = cluster.task(n, Some(&restore(&["--replica"])));
        assert!(o.status.success(), "restore.sh --replica: {}", output(&o));
        cluster.start(n);
    }
    wait_streaming(&url, &admin, 2);
    let rows = text(&psql(&url, "SELECT count(*) FROM orders"));
    assert_eq!(rows, "200", "every acknowledged row is back");
    insert(&url, "after-restore", 1);
}
