//! The host firewalls (`firewall/HOST.nft`): every one loads in nftables, and
//! a loaded one lets in exactly its readers, on the host itself and on a port
//! published the way Docker publishes it (DNAT to a container), in network
//! namespaces on the real kernel.

use std::path::Path;
use std::process::Command;

use crate::netns::Lab;
use crate::support::{self, require};

/// Every firewall of every example and case is accepted by `nft -c`.
#[test]
fn every_hosts_firewall_loads_in_nft() {
    if !require("nft") || !require("unshare") {
        return;
    }
    let dir = tempfile::tempdir().expect("firewall test step");
    let mut checked = 0;
    let mut files = support::stack_files("examples");
    files.extend(support::stack_files("tests/cases"));
    for path in files {
        let compilation = stackc::compile(support::read(&path), &support::options(&path));
        for a in compilation
            .artifacts
            .iter()
            .filter(|a| a.path.ends_with(".nft"))
        {
            let file = dir.path().join("ruleset.nft");
            std::fs::write(&file, &a.contents).expect("firewall test step");
            let out = Command::new("unshare")
                .args(["-rn", "nft", "-c", "-f"])
                .arg(&file)
                .output()
                .expect("firewall test step");
            assert!(
                out.status.success(),
                "{}: {}: {}",
                support::rel(&path),
                a.path,
                String::from_utf8_lossy(&out.stderr)
            );
            checked += 1;
        }
    }
    assert!(checked >= 20, "only {checked} firewalls checked");
}

const STACK: &str = r#"stack fw

service db {
  image = "postgres:16"
  port postgres = 5432
}

service api {
  image = "api:1"
  port http = 8000
  public = [http]
  env {
    DB_HOST = db.host
    DB_PORT = db.port
  }
}

topology two {
  host data {
    address = "10.77.0.1"
    ssh_port = 2222
    run = [db]
  }
  host app {
    address = "10.77.0.2"
    run = [api]
  }
}
"#;

fn load(lab: &Lab, name: &str, ruleset: &Path) {
    let file = ruleset.to_string_lossy().to_string();
    lab.exec(name, &["nft", "-f", &file]);
}

/// The database host lets in the API's host and no other, whether PostgreSQL
/// listens on the host itself or in a container Docker publishes; the API's
/// public port and the host's SSH port are let in from anywhere.
#[test]
fn a_loaded_firewall_lets_in_exactly_the_readers() {
    if !require("nft") || !require("ip") {
        return;
    }
    let compilation = stackc::compile(STACK, &support::options(Path::new("fw.stack")));
    assert!(compilation
        .artifacts
        .iter()
        .any(|a| a.path == "two/firewall/data.nft"));
    let dir = tempfile::tempdir().expect("firewall test step");
    support::write_artifacts(&compilation, dir.path());

    let mut lab = Lab::new("fw");
    for ns in ["lan", "data", "app", "other", "ctr"] {
        lab.add(ns);
    }
    lab.exec("lan", &["ip", "link", "add", "br0", "type", "bridge"]);
    lab.exec("lan", &["ip", "link", "set", "br0", "up"]);
    for (ns, addr) in [
        ("data", "10.77.0.1/24"),
        ("app", "10.77.0.2/24"),
        ("other", "10.77.0.3/24"),
    ] {
        let port = format!("p-{ns}");
        lab.link((ns, "eth0", addr), ("lan", &port));
        lab.exec("lan", &["ip", "link", "set", &port, "master", "br0"]);
    }
    load(&lab, "data", &dir.path().join("two/firewall/data.nft"));
    load(&lab, "app", &dir.path().join("two/firewall/app.nft"));

    // PostgreSQL on the host itself (the input chain).
    lab.listen("data", 5432);
    lab.listen("data", 9999);
    only_the_readers(&lab, "on the host");
    // SSH on the port the host names, from anywhere; 22 is nothing there.
    lab.listen("data", 2222);
    lab.listen("data", 22);
    assert!(
        lab.reaches("other", "10.77.0.1", 2222),
        "the host's SSH port is open to all"
    );
    assert!(
        !lab.reaches("other", "10.77.0.1", 22),
        "port 22 is closed when SSH listens elsewhere"
    );
    lab.listen("app", 8000);
    assert!(
        lab.reaches("other", "10.77.0.2", 8000),
        "a public port is open to all"
    );
    lab.stop_listeners();

    // PostgreSQL in a container, published as Docker does: DNAT to the
    // container's address on a bridge, so the connection is forwarded.
    lab.link(("ctr", "eth0", "172.31.0.2/24"), ("data", "br-fwtest"));
    lab.exec(
        "data",
        &["ip", "addr", "add", "172.31.0.1/24", "dev", "br-fwtest"],
    );
    lab.exec(
        "ctr",
        &["ip", "route", "add", "default", "via", "172.31.0.1"],
    );
    lab.exec("data", &["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
    let nat = "table ip docker-like {\n chain prerouting {\n  type nat hook prerouting priority dstnat;\n  ip daddr 10.77.0.1 tcp dport { 5432, 9999 } dnat to 172.31.0.2\n }\n}\n";
    let nat_file = dir.path().join("nat.nft");
    std::fs::write(&nat_file, nat).expect("firewall test step");
    load(&lab, "data", &nat_file);
    lab.listen("ctr", 5432);
    lab.listen("ctr", 9999);
    only_the_readers(&lab, "in a container");
}

/// PostgreSQL's port on the database host lets in the API's host only, and
/// a port no service publishes is closed.
fn only_the_readers(lab: &Lab, listening: &str) {
    assert!(
        lab.reaches("app", "10.77.0.1", 5432),
        "{listening}: the API's host is let in"
    );
    assert!(
        !lab.reaches("other", "10.77.0.1", 5432),
        "{listening}: another host is not"
    );
    assert!(
        !lab.reaches("app", "10.77.0.1", 9999),
        "{listening}: an unpublished port is closed"
    );
}
