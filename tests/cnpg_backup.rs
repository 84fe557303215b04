//! The backups of a CloudNativePG cluster (tests/cases/backups-cnpg.stack),
//! checked across objects as the operator and its Barman Cloud plugin would
//! read them. No schema of these custom resources is available offline (see
//! docs/targets.md, "Backups"): the field names were checked against the
//! operator's and the plugin's CRDs when they were written; this test checks
//! that every name one object gives another resolves.

use serde_norway::Value;

use crate::support::{artifact, options, read, root};

fn docs(text: &str) -> Vec<Value> {
    serde_norway::Deserializer::from_str(text)
        .map(|d| serde::Deserialize::deserialize(d).unwrap_or_else(|e| panic!("{e}")))
        .collect()
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> &'a str {
    path.iter()
        .fold(v, |v, k| &v[*k])
        .as_str()
        .unwrap_or_else(|| panic!("no {path:?} in {v:?}"))
}

#[test]
fn a_cloudnativepg_cluster_archives_backs_up_and_restores_from_its_store() {
    let path = root().join("tests/cases/backups-cnpg.stack");
    let c = stackc::compile(read(&path), &options(&path));
    assert!(!c.has_errors(), "{:?}", c.diagnostics);
    let objects = docs(&artifact(&c, "cluster/k8s/db.yaml"));
    let of = |kind: &str| {
        objects
            .iter()
            .find(|d| d["kind"] == kind)
            .unwrap_or_else(|| panic!("no {kind} in k8s/db.yaml"))
    };
    let (cluster, store, scheduled) = (of("Cluster"), of("ObjectStore"), of("ScheduledBackup"));
    let namespace = str_at(cluster, &["metadata", "namespace"]);
    for d in [store, scheduled] {
        assert_eq!(str_at(d, &["metadata", "namespace"]), namespace);
    }

    // The cluster archives its WAL into the store, through the plugin.
    let plugin = &cluster["spec"]["plugins"][0];
    assert_eq!(plugin["name"], "barman-cloud.cloudnative-pg.io");
    assert_eq!(plugin["isWALArchiver"], true);
    let store_name = str_at(store, &["metadata", "name"]);
    assert_eq!(
        str_at(plugin, &["parameters", "barmanObjectName"]),
        store_name
    );

    // The store: the bucket and path of the .stack file, its credentials and
    // region in a Secret that secrets.sh makes with exactly those keys.
    let config = &store["spec"]["configuration"];
    assert_eq!(
        str_at(config, &["destinationPath"]),
        "s3://shop-backups/shop/db"
    );
    assert_eq!(
        str_at(config, &["endpointURL"]),
        "https://s3.eu-central-1.amazonaws.com"
    );
    assert_eq!(str_at(store, &["spec", "retentionPolicy"]), "30d");
    let secrets = artifact(&c, "cluster/k8s/secrets.sh");
    for field in ["accessKeyId", "secretAccessKey", "region"] {
        let secret = str_at(config, &["s3Credentials", field, "name"]);
        let key = str_at(config, &["s3Credentials", field, "key"]);
        let create = format!("kubectl create secret generic {secret} --namespace {namespace}");
        let start = secrets
            .find(&create)
            .unwrap_or_else(|| panic!("secrets.sh does not create {secret}:\n{secrets}"));
        let command = &secrets[start..];
        let command = &command[..command.find("| kubectl apply").unwrap_or(command.len())];
        assert!(
            command.contains(&format!("--from-file={key}="))
                || command.contains(&format!("--from-literal={key}=")),
            "{secret} has no key {key}:\n{command}"
        );
    }
    assert!(
        secrets.contains("--from-literal=REGION='eu-central-1'"),
        "{secrets}"
    );
    // The credentials come from the secrets' values, never from the file.
    assert!(!secrets.contains("--from-literal=ACCESS"), "{secrets}");

    // The schedule: the .stack file's, with CloudNativePG's seconds first.
    let spec = &scheduled["spec"];
    assert_eq!(str_at(spec, &["schedule"]), "0 0 2 * * *");
    assert_eq!(
        str_at(spec, &["cluster", "name"]),
        str_at(cluster, &["metadata", "name"])
    );
    assert_eq!(str_at(spec, &["method"]), "plugin");
    assert_eq!(
        str_at(spec, &["pluginConfiguration", "name"]),
        "barman-cloud.cloudnative-pg.io"
    );

    // The restore: outside k8s/, the same cluster recovered from the store's
    // backups of it, archiving there again.
    assert!(
        !c.artifacts
            .iter()
            .any(|a| a.path.starts_with("cluster/k8s/") && a.contents.contains("recovery:")),
        "applying k8s/ never restores"
    );
    let restore = docs(&artifact(&c, "cluster/restore/db.yaml"));
    assert_eq!(restore.len(), 1);
    let again = &restore[0];
    assert_eq!(again["kind"], "Cluster");
    for field in ["name", "namespace"] {
        assert_eq!(again["metadata"][field], cluster["metadata"][field]);
    }
    assert_eq!(
        again["metadata"]["annotations"]["cnpg.io/skipEmptyWalArchiveCheck"],
        "enabled"
    );
    let bootstrap = &again["spec"]["bootstrap"];
    assert!(bootstrap["initdb"].is_null(), "{bootstrap:?}");
    let source = str_at(bootstrap, &["recovery", "source"]);
    let external = again["spec"]["externalClusters"]
        .as_sequence()
        .into_iter()
        .flatten()
        .find(|e| e["name"] == source)
        .unwrap_or_else(|| panic!("no external cluster {source}"));
    let params = &external["plugin"]["parameters"];
    assert_eq!(str_at(params, &["barmanObjectName"]), store_name);
    assert_eq!(
        str_at(params, &["serverName"]),
        str_at(cluster, &["metadata", "name"])
    );
    assert_eq!(again["spec"]["plugins"], cluster["spec"]["plugins"]);
    for field in ["database", "owner", "secret"] {
        assert_eq!(
            bootstrap["recovery"][field],
            cluster["spec"]["bootstrap"]["initdb"][field]
        );
    }
}
