//! PostgreSQL roles per client (`roles = per_service`), run with the real
//! programs. The compose file is resolved by `docker-compose config` with the
//! secrets' values, as a host would start it; the task `db-roles` then runs
//! its shell line with its environment against a real server (the compose
//! name `db` made the test's address), and each client connects with the URL
//! its environment holds:
//!
//! - each client is its own role, none a superuser;
//! - the migration task (a task that writes) creates tables, the API (`url`)
//!   reads and writes them but creates none, the reports (`read_url` only)
//!   read and write nothing;
//! - the task runs again without error, and a changed password takes effect
//!   (the old one is refused);
//! - the secrets of the roles are the stack's own: `secrets init` generates
//!   them.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::process::{Command, Output};

use serde_norway::Value;

use crate::postgres_streaming::{
    as_postgres, initdb, own, pg_ctl_start, query, run, scratch, PG_PROGRAMS,
};
use crate::support::{
    compose_environment, compose_resolved, options, read, require, write_artifacts,
};

const STACK: &str = r#"
stack shop

secret db_password

service db: postgres {
  password = secret.db_password
  database = "shop"
  roles = per_service
}

service api {
  image = "registry.example.com/api:1.0"
  port http = 8000
  env { DATABASE_URL = db.url }
}

service reports {
  image = "registry.example.com/reports:1.0"
  env { DATABASE_URL = db.read_url }
}

service migrate {
  image = "registry.example.com/api:1.0"
  role = task
  command = ["alembic", "upgrade", "head"]
  env { DATABASE_URL = db.url }
}

topology prod {
  host app {
    address = "127.0.0.61"
    run = [db, api, reports, migrate]
  }
}
"#;

const ADDRESS: &str = "127.0.0.61";
const PORT: u16 = 25461;

/// The compose file as the host resolves it with its secrets' values.
fn resolved(file: &Path, api: &str) -> Value {
    compose_resolved(
        file,
        &[
            ("DB_PASSWORD", "owner-secret"),
            ("DB_API_PASSWORD", api),
            ("DB_REPORTS_PASSWORD", "reports-secret"),
            ("DB_MIGRATE_PASSWORD", "migrate-secret"),
        ],
    )
}

/// Runs the roles task's shell line as the container would, its compose
/// host name `db` made the test's address.
fn run_roles_task(doc: &Value) -> Output {
    let task = &doc["services"]["db-roles"];
    let command: Vec<String> = task["command"]
        .as_sequence()
        .unwrap_or_else(|| panic!("{task:?}"))
        .iter()
        .map(|w| w.as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(command[..2], ["sh".to_string(), "-c".to_string()]);
    let mut env = compose_environment(task);
    assert_eq!(env.get("PGHOST").map(String::as_str), Some("db"));
    env.insert("PGHOST".into(), ADDRESS.into());
    env.insert("PGPORT".into(), PORT.to_string());
    let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    run(as_postgres("sh", &["-c", &command[2]], &pairs))
}

/// A client's URL from its resolved environment, made the test's address.
fn url(doc: &Value, client: &str) -> String {
    let env = compose_environment(&doc["services"][client]);
    env["DATABASE_URL"].replace("@db:5432/", &format!("@{ADDRESS}:{PORT}/"))
}

fn as_client(url: &str, sql: &str) -> Output {
    run(as_postgres(
        "psql",
        &[url, "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql],
        &[],
    ))
}

fn allowed(url: &str, sql: &str) -> String {
    let o = as_client(url, sql);
    assert!(
        o.status.success(),
        "{url}: {sql}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

fn denied(url: &str, sql: &str, why: &str) {
    let o = as_client(url, sql);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains(why),
        "{url}: {sql}: expected `{why}`: {err}"
    );
}

/// The stack built in a scratch directory, and its host's compose file.
fn build() -> (tempfile::TempDir, std::path::PathBuf) {
    let tmp = scratch();
    let stack = tmp.path().join("shop.stack");
    fs::write(&stack, STACK).unwrap_or_else(|e| panic!("{e}"));
    let compilation = stackc::compile(STACK, &options(&stack));
    assert!(!compilation.has_errors(), "{:?}", compilation.diagnostics);
    let out = tmp.path().join("out");
    write_artifacts(&compilation, &out);
    (tmp, out.join("prod/compose/app.yml"))
}

fn can_run() -> bool {
    PG_PROGRAMS.iter().all(|p| require(p)) && require("docker-compose")
}

#[test]
fn each_client_connects_as_its_own_role_with_its_access() {
    if !can_run() {
        return;
    }
    let (tmp, file) = build();
    let doc = resolved(&file, "api-secret");

    // The clients beside the task start after it.
    for client in ["api", "reports", "migrate"] {
        assert_eq!(
            doc["services"][client]["depends_on"]["db-roles"]["condition"].as_str(),
            Some("service_completed_successfully"),
            "{client}"
        );
    }

    let data = tmp.path().join("data");
    initdb(&data);
    let hba = data.join("pg_hba.conf");
    // As the image writes it: passwords over TCP (initdb's `trust` lines
    // for loopback, where the test's connections come from, left out).
    let mut lines: String = read(&hba)
        .lines()
        .filter(|l| !l.starts_with("host"))
        .map(|l| format!("{l}\n"))
        .collect();
    lines.push_str("host all all all scram-sha-256\n");
    fs::write(&hba, lines).unwrap_or_else(|e| panic!("{e}"));
    let socket = tmp.path().join("socket");
    fs::create_dir_all(&socket).unwrap_or_else(|e| panic!("{e}"));
    own(tmp.path());
    let opts = format!(
        "-c listen_addresses={ADDRESS} -c port={PORT} -c unix_socket_directories={}",
        socket.display()
    );
    let _stop = pg_ctl_start(&data, &opts, &tmp.path().join("log"));
    // What the image does at initdb: the owner's password and database.
    query(&socket, PORT, "ALTER USER postgres PASSWORD 'owner-secret'");
    query(&socket, PORT, "CREATE DATABASE shop");

    let o = run_roles_task(&doc);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    let (api, reports, migrate) = (url(&doc, "api"), url(&doc, "reports"), url(&doc, "migrate"));
    for (client, url) in [("api", &api), ("reports", &reports), ("migrate", &migrate)] {
        assert_eq!(
            allowed(
                url,
                "SELECT current_user || ' ' || rolsuper FROM pg_roles WHERE rolname = current_user"
            ),
            format!("{client} false")
        );
        denied(url, "SET ROLE postgres", "permission denied");
    }
    // The migration makes the schema; the API uses it; the reports read it.
    allowed(
        &migrate,
        "CREATE TABLE items (id serial PRIMARY KEY, name text)",
    );
    allowed(&api, "INSERT INTO items (name) VALUES ('first')");
    allowed(&api, "UPDATE items SET name = 'one'");
    assert_eq!(allowed(&reports, "SELECT name FROM items"), "one");
    denied(
        &api,
        "CREATE TABLE other (id int)",
        "permission denied for schema public",
    );
    denied(
        &reports,
        "INSERT INTO items (name) VALUES ('x')",
        "permission denied",
    );
    denied(
        &reports,
        "CREATE TABLE other (id int)",
        "permission denied for schema public",
    );

    // Again, with the API's password changed: the roles stay, the password
    // is the new one.
    let doc = resolved(&file, "api-rotated");
    let o = run_roles_task(&doc);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let rotated = url(&doc, "api");
    assert_ne!(rotated, api);
    assert_eq!(allowed(&rotated, "SELECT count(*) FROM items"), "1");
    denied(&api, "SELECT 1", "password authentication failed");
}

/// A password that would not survive a URL stops the task before any role
/// changes, saying which.
#[test]
fn the_roles_task_refuses_a_password_outside_a_url() {
    if !can_run() {
        return;
    }
    let (_tmp, file) = build();
    let doc = resolved(&file, "a@b");
    let o = run_roles_task(&doc);
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("DB_API_PASSWORD is a role's password"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// The roles' secrets are listed with the declared one, and generated.
#[test]
fn the_roles_secrets_are_the_stacks_own() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let stack = tmp.path().join("shop.stack");
    fs::write(&stack, STACK).unwrap_or_else(|e| panic!("{e}"));
    let o = Command::new(env!("CARGO_BIN_EXE_stackc"))
        .args(["secrets", "init"])
        .arg(&stack)
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let values = read(&tmp.path().join("shop.secrets.env"));
    for name in [
        "DB_PASSWORD",
        "DB_API_PASSWORD",
        "DB_REPORTS_PASSWORD",
        "DB_MIGRATE_PASSWORD",
    ] {
        let line = values
            .lines()
            .find(|l| l.starts_with(&format!("{name}=")))
            .unwrap_or_else(|| panic!("{name} in {values}"));
        assert!(line.len() > name.len() + 16, "{line}");
    }
}

fn documents(text: &str) -> Vec<Value> {
    serde_norway::Deserializer::from_str(text)
        .map(|d| serde::Deserialize::deserialize(d).unwrap_or_else(|e| panic!("{e}")))
        .collect()
}

/// A container's env as Kubernetes defines it for `$(VAR)`: a value as
/// written, a Secret's key as `<secret:KEY>`.
fn kubernetes_env(container: &Value) -> BTreeMap<String, String> {
    let mut defined = BTreeMap::new();
    for var in container["env"].as_sequence().into_iter().flatten() {
        let name = var["name"].as_str().unwrap_or_default().to_string();
        let value = match var["value"].as_str() {
            Some(v) => crate::support::kubernetes_expand(v, &defined),
            None => format!(
                "<secret:{}>",
                var["valueFrom"]["secretKeyRef"]["key"]
                    .as_str()
                    .unwrap_or_default()
            ),
        };
        defined.insert(name, value);
    }
    defined
}

/// The value `applied_secrets` gives the secret of the environment variable
/// `key`.
fn value_of(key: &str) -> String {
    format!("v-{}", key.to_ascii_lowercase().replace('_', "-"))
}

/// The Secrets `secrets.sh` applies, as the real `kubectl create --dry-run`
/// writes them (only `kubectl apply`, which needs a cluster, is a stand-in
/// that keeps what it is given), each secret's value made by `value_of`.
fn applied_secrets(script: &str) -> Vec<Value> {
    assert!(require("kubectl"), "kubectl");
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let (bin, applied) = (dir.path().join("bin"), dir.path().join("applied.yaml"));
    fs::create_dir_all(&bin).unwrap_or_else(|e| panic!("{e}"));
    let real = String::from_utf8_lossy(
        &Command::new("sh")
            .args(["-c", "command -v kubectl"])
            .output()
            .unwrap_or_else(|e| panic!("{e}"))
            .stdout,
    )
    .trim()
    .to_string();
    let wrapper = bin.join("kubectl");
    fs::write(
        &wrapper,
        format!("#!/bin/sh\ncase \" $* \" in *\" apply \"*) {{ cat; echo ---; }} >> \"{}\"; exit 0 ;; esac\nexec {real} \"$@\"\n", applied.display()),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let executable = std::os::unix::fs::PermissionsExt::from_mode(0o755);
    fs::set_permissions(&wrapper, executable).unwrap_or_else(|e| panic!("{e}"));
    let path = format!("{}:/usr/bin:/bin", bin.display());
    let keys: Vec<String> = script
        .lines()
        .filter_map(|l| l.strip_prefix(": \"${"))
        .filter_map(|l| l.split(':').next())
        .map(str::to_string)
        .collect();
    assert!(!keys.is_empty(), "{script}");
    let o = Command::new("sh")
        .arg("-c")
        .arg(script)
        .env_clear()
        .env("PATH", path)
        .env("HOME", dir.path())
        .envs(keys.iter().map(|k| (k.clone(), value_of(k))))
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        o.status.success(),
        "secrets.sh: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    documents(&fs::read_to_string(&applied).unwrap_or_else(|e| panic!("{e}")))
        .into_iter()
        .filter(|d| d["kind"] == "Secret")
        .collect()
}

/// A Secret's `data` value, base64-decoded.
fn decoded(v: &Value) -> String {
    let o = Command::new("base64")
        .arg("-d")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child
                .stdin
                .take()
                .map(|mut i| i.write_all(v.as_str().unwrap_or_default().as_bytes()));
            child.wait_with_output()
        })
        .unwrap_or_else(|e| panic!("base64: {e}"));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn first_container(doc: &Value) -> &Value {
    let spec = &doc["spec"]["template"]["spec"];
    &spec["containers"][0]
}

/// In a cluster without an operator the roles are made by a Job that runs
/// the compose task's line, as Kubernetes expands it; with CloudNativePG the
/// operator makes them from the Cluster's `managed.roles`, each password the
/// Secret `secrets.sh` makes from the key the client's URL reads.
#[test]
fn kubernetes_makes_the_same_roles() {
    let text = format!(
        "{}\n{}",
        STACK.replace(
            "database = \"shop\"",
            "database = \"shop\"\n  user = \"app\""
        ),
        r#"
topology cluster {
  platform = kubernetes
  run = [db, api, reports, migrate]
}

topology operated {
  platform = kubernetes
  run = [db, api, reports, migrate]
  override db {
    replicas = 2
    ha = cloudnativepg
  }
}
"#
    );
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let stack = tmp.path().join("shop.stack");
    let c = stackc::compile(text.as_str(), &options(&stack));
    assert!(!c.has_errors(), "{:?}", c.diagnostics);

    let compose: Value =
        serde_norway::from_str(&crate::support::artifact(&c, "prod/compose/app.yml"))
            .unwrap_or_else(|e| panic!("{e}"));
    let compose_line = compose["services"]["db-roles"]["command"][2]
        .as_str()
        .unwrap_or_default()
        .replace("$$", "$");
    let jobs = documents(&crate::support::artifact(&c, "cluster/k8s/db-roles.yaml"));
    let job = jobs
        .iter()
        .find(|d| d["kind"] == "Job")
        .unwrap_or_else(|| panic!("no Job: {jobs:?}"));
    let container = first_container(job);
    let defined = kubernetes_env(container);
    let line = crate::support::kubernetes_expand(
        container["args"][2].as_str().unwrap_or_default(),
        &defined,
    );
    assert_eq!(line, compose_line, "the Job runs the compose task's line");
    assert_eq!(defined["PGHOST"], "db");
    assert_eq!(defined["PGUSER"], "app");
    assert_eq!(defined["PGPASSWORD"], "<secret:DB_PASSWORD>");
    assert_eq!(defined["DB_API_PASSWORD"], "<secret:DB_API_PASSWORD>");

    let cluster = documents(&crate::support::artifact(&c, "operated/k8s/db.yaml"));
    let cluster = cluster
        .iter()
        .find(|d| d["kind"] == "Cluster")
        .unwrap_or_else(|| panic!("no Cluster"));
    let secrets = applied_secrets(&crate::support::artifact(&c, "operated/k8s/secrets.sh"));
    let roles = cluster["spec"]["managed"]["roles"]
        .as_sequence()
        .unwrap_or_else(|| panic!("no managed roles: {cluster:?}"));
    let mut seen = Vec::new();
    for role in roles {
        let name = role["name"].as_str().unwrap_or_default();
        seen.push(name.to_string());
        assert_eq!(role["superuser"], false, "{name}");
        assert_eq!(role["login"], true, "{name}");
        let in_roles: Vec<&str> = role["inRoles"]
            .as_sequence()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        let expected: &[&str] = match name {
            "reports" => &["pg_read_all_data"],
            "api" => &["pg_read_all_data", "pg_write_all_data"],
            "migrate" => &["pg_read_all_data", "pg_write_all_data", "app"],
            other => panic!("an unexpected role {other}"),
        };
        assert_eq!(in_roles, expected, "{name}");

        // The client's URL, as Kubernetes expands it, names the role and the
        // key whose value the role's Secret holds.
        let workloads = documents(&crate::support::artifact(
            &c,
            &format!("operated/k8s/{name}.yaml"),
        ));
        let workload = workloads
            .iter()
            .find(|d| matches!(d["kind"].as_str(), Some("Deployment" | "Job")))
            .unwrap_or_else(|| panic!("no workload of {name}"));
        let url = &kubernetes_env(first_container(workload))["DATABASE_URL"];
        let (user, rest) = url
            .strip_prefix("postgresql://")
            .and_then(|u| u.split_once(':'))
            .unwrap_or_else(|| panic!("{url}"));
        assert_eq!(user, name, "{url}");
        let key = rest
            .strip_prefix("<secret:")
            .and_then(|r| r.split_once('>'))
            .map(|(k, _)| k)
            .unwrap_or_else(|| panic!("{url}"));
        let secret = role["passwordSecret"]["name"].as_str().unwrap_or_default();
        let made = secrets
            .iter()
            .find(|d| d["metadata"]["name"] == secret)
            .unwrap_or_else(|| panic!("secrets.sh applies no Secret {secret}"));
        assert_eq!(made["type"], "kubernetes.io/basic-auth");
        assert_eq!(made["metadata"]["namespace"], "shop");
        assert_eq!(decoded(&made["data"]["username"]), name);
        assert_eq!(
            decoded(&made["data"]["password"]),
            value_of(key),
            "{secret}"
        );
    }
    assert_eq!(seen, ["api", "reports", "migrate"]);
    assert!(
        !c.artifacts
            .iter()
            .any(|a| a.path == "operated/k8s/db-roles.yaml"),
        "no task beside an operator"
    );
}

const PATRONI_STACK: &str = r#"
stack ha

secret db_password
secret replication_password

service db: postgres {
  image = "postgres:MAJOR"
  database = "orders"
  user = "shop"
  password = secret.db_password
  roles = per_service
}

service app {
  image = "app:1"
  env { DATABASE_URL = db.url }
}

topology trio {
  host one {
    address = "127.0.0.71"
    run = [db, app]
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
      replication_password = secret.replication_password
    }
  }
}
"#;

/// A compose environment with the secrets filled in, the app's role's too.
fn patroni_env(service: &Value) -> BTreeMap<String, String> {
    crate::patroni_cluster::environment(service)
        .into_iter()
        .map(|(k, v)| {
            let v = match v.find("${DB_APP_PASSWORD:") {
                Some(start) => {
                    let end = v[start..].find('}').map_or(v.len(), |e| start + e + 1);
                    format!("{}app-secret{}", &v[..start], &v[end..])
                }
                None => v,
            };
            (k, v)
        })
        .collect()
}

/// On a Patroni cluster the task reaches whichever node leads, through
/// every node's address: the role it makes is the cluster's, and after a
/// failover the task runs again on the new leader.
#[test]
fn patroni_roles_are_made_on_whichever_node_leads() {
    use crate::patroni_cluster::{psql, service, text, wait_streaming, Cluster};
    let Some(mut cluster) = Cluster::prepare(PATRONI_STACK, &|_| Vec::new()) else {
        return;
    };
    for n in 0..3 {
        cluster.start(n);
    }
    cluster.start_haproxy();
    let admin = "postgresql://postgres:orders-secret@127.0.0.1:5000/postgres";
    wait_streaming(admin, admin, 2);

    let one = cluster.file("trio/compose/one.yml");
    let task = service(&one, "db-roles");
    let env = patroni_env(&task);
    assert_eq!(env["PGHOST"], "127.0.0.71,127.0.0.72,127.0.0.73");
    assert_eq!(env["PGTARGETSESSIONATTRS"], "read-write");
    let line = task["command"][2]
        .as_str()
        .unwrap_or_default()
        .replace("$$", "$");
    let run_task = |cluster: &Cluster| {
        let o = cluster
            .as_postgres(0, &env, &["sh".into(), "-c".into(), line.clone()])
            .output()
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    };
    run_task(&cluster);
    let url =
        patroni_env(&service(&one, "app"))["DATABASE_URL"].replace("@db-haproxy:", "@127.0.0.1:");
    assert!(url.starts_with("postgresql://app:app-secret@"), "{url}");
    let who = "SELECT current_user || ' ' || pg_is_in_recovery()";
    assert_eq!(text(&psql(&url, who)), "app false");

    let leader = cluster
        .leader()
        .unwrap_or_else(|| panic!("no node answers /primary"));
    cluster.kill(leader);
    crate::support::wait_for(
        "another node leads",
        std::time::Duration::from_secs(40),
        || cluster.leader().is_some_and(|l| l != leader),
    );
    run_task(&cluster);
    crate::support::wait_for(
        "the app connects to the new leader as its role",
        std::time::Duration::from_secs(20),
        || text(&psql(&url, who)) == "app false",
    );
}
