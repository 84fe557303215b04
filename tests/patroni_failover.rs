//! PostgreSQL run by Patroni on hosts, failed over with the real programs: etcd,
//! Patroni (managing PostgreSQL) and HAProxy start from exactly the generated
//! files on three loopback addresses, one per host.
//!
//! The cluster runs as `tests/patroni_cluster.rs` says.
//!
//! Every `patroni.yml` passes `patroni --validate-config` against the started
//! etcd, the HAProxy config `haproxy -c -dW`, the compose files `docker-compose
//! config`. Then: replicas stream, writes go through the generated primary
//! endpoint and reach both replicas, the primary node is killed (SIGKILL of
//! Patroni and of its postmaster), and writes through the same endpoint must
//! succeed again within ttl + 10 s with every acknowledged write kept. The
//! replica endpoint answers reads from a replica.

use std::process::Command;
use std::time::Duration;

use crate::patroni_cluster::{
    execute, psql, rest_body, rest_post, rest_status, text, wait_streaming, Cluster, HOSTS, SECRETS,
};
use crate::prometheus_server::Prometheus;
use crate::support::{require, wait_for};

const TTL: Duration = Duration::from_secs(20);

const STACK: &str = r#"
stack ha

secret db_password
secret replication_password

service db: postgres {
  image = "postgres:MAJOR"
  database = "orders"
  user = "shop"
  password = secret.db_password
  postgresql {
    max_connections = 50
    work_mem = 8Mi
  }
}

service monitoring: prometheus {}

service app {
  image = "app:1"
  env {
    DATABASE_URL = db.url
    DATABASE_READ_URL = db.read_url
  }
}

topology trio {
  host one {
    address = "127.0.0.71"
    run = [db, app, monitoring]
  }
  host two {
    address = "127.0.0.72"
    run = [db]
  }
  host three {
    address = "127.0.0.73"
    run = [db]
  }
  override db {
    ha {
      mode = patroni
      ttl = 20s
      loop_wait = 2s
      retry_timeout = 5s
      maximum_lag = 2Mi
      replication_password = secret.replication_password
    }
  }
}
"#;

#[test]
fn patroni_fails_over_through_the_generated_haproxy() {
    let Some(mut cluster) = Cluster::prepare(STACK, &|_| Vec::new()) else {
        return;
    };
    let (url, read_url, admin) = cluster.urls();
    assert!(url.ends_with(":5000/orders"), "{url}");
    if require("docker-compose") {
        for (host, _) in HOSTS {
            let f = cluster.out.join(format!("trio/compose/{host}.yml"));
            let o = Command::new("docker-compose")
                .arg("-f")
                .arg(&f)
                .args(["config", "-q"])
                .envs(SECRETS)
                .output()
                .unwrap_or_else(|e| panic!("docker-compose: {e}"));
            assert!(
                o.status.success(),
                "{}: {}",
                f.display(),
                String::from_utf8_lossy(&o.stderr)
            );
        }
    }
    let haproxy_cfg = cluster.out.join("trio/db/haproxy.cfg");
    let o = Command::new("haproxy")
        .args(["-c", "-dW", "-f"])
        .arg(&haproxy_cfg)
        .output()
        .unwrap_or_else(|e| panic!("haproxy: {e}"));
    assert!(
        o.status.success(),
        "haproxy -c: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    for n in 0..HOSTS.len() {
        cluster.start(n);
    }
    cluster.start_haproxy();
    wait_streaming(&url, &admin, 2);
    execute(
        &url,
        "CREATE TABLE orders (id serial PRIMARY KEY, item text NOT NULL)",
    );
    for i in 0..20 {
        execute(
            &url,
            &format!("INSERT INTO orders (item) VALUES ('before-{i}')"),
        );
    }
    // Both replicas have replayed every acknowledged write.
    wait_for(
        "both replicas replay the writes",
        Duration::from_secs(20),
        || {
            text(&psql(
                &admin,
                "SELECT count(*) FROM pg_stat_replication WHERE replay_lsn = pg_current_wal_lsn()",
            )) == "2"
        },
    );
    // The cluster's configuration in etcd, as Patroni serves it.
    let (_, first) = HOSTS[0];
    let config: serde_json::Value =
        serde_json::from_str(&rest_body(first, "/config")).unwrap_or_default();
    assert_eq!(config["maximum_lag_on_failover"], 2 << 20, "{config}");
    wait_for(
        "the replica endpoint reads from a replica",
        Duration::from_secs(10),
        || {
            text(&psql(
                &read_url,
                "SELECT pg_is_in_recovery(), count(*) FROM orders",
            )) == "t|20"
        },
    );
    // The service's settings, cluster-wide (Patroni's DCS): the primary and
    // a replica (once HAProxy has found one up) run with them.
    for u in [&admin, &read_url] {
        assert_eq!(text(&psql(u, "SHOW max_connections")), "50", "{u}");
        assert_eq!(text(&psql(u, "SHOW work_mem")), "8MB", "{u}");
    }

    // A real Prometheus on the generated config scrapes every node's REST
    // API, without its password.
    let config = cluster.out.join("trio/prometheus/prometheus.yml");
    let prometheus = Prometheus::start(&config, "127.0.0.71:9090");
    if let Some(p) = &prometheus {
        wait_for(
            "Prometheus scrapes the three nodes",
            Duration::from_secs(60),
            || p.labels(r#"up{job="patroni-db"} == 1"#, "host") == ["one", "three", "two"],
        );
    }

    // Kill -9 the primary node: Patroni and its postmaster.
    let leader = cluster
        .leader()
        .unwrap_or_else(|| panic!("no node answers /primary"));
    cluster.kill(leader);
    let elapsed = wait_for(
        "writes through the primary endpoint succeed again",
        TTL + Duration::from_secs(10),
        || {
            psql(&url, "INSERT INTO orders (item) VALUES ('after')")
                .status
                .success()
        },
    );
    let after = text(&psql(
        &url,
        "SELECT count(*) FROM orders WHERE item LIKE 'before-%'",
    ));
    assert_eq!(after, "20", "no acknowledged write is lost");
    let new_leader = HOSTS
        .iter()
        .position(|(_, a)| rest_status(a, "/primary") == 200);
    assert!(
        new_leader.is_some_and(|l| l != leader),
        "a replica was promoted"
    );
    eprintln!("patroni failover: writes again {elapsed:?} after the kill");
    // The REST API's unsafe endpoints take the superuser's password only.
    let (_, address) = HOSTS[new_leader.unwrap_or_default()];
    assert_eq!(rest_post(address, "/reload", None), 401, "no password");
    let wrong = Some(("postgres", "not-the-password"));
    assert_eq!(rest_post(address, "/reload", wrong), 401, "a wrong one");
    let password = SECRETS.iter().find(|(k, _)| *k == "DB_PASSWORD");
    let superuser = password.map(|(_, v)| ("postgres", *v));
    assert_eq!(
        rest_post(address, "/reload", superuser),
        202,
        "the superuser's"
    );
    // The generated rules tell of the new leader, as Prometheus evaluates
    // them on what it scraped.
    if let Some(p) = &prometheus {
        let (new_host, _) = HOSTS[new_leader.unwrap_or_default()];
        wait_for(
            "PatroniLeaderChanged fires for the new leader",
            Duration::from_secs(60),
            || {
                p.labels(
                    r#"ALERTS{alertname="PatroniLeaderChanged", alertstate="firing"}"#,
                    "name",
                ) == [new_host]
            },
        );
    }
    for n in &cluster.nodes {
        // Every node's data stayed in its own volume.
        assert!(n.volume.join("pgdata/PG_VERSION").exists());
    }
}
