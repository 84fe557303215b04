//! Certificates from an ACME server (Let's Encrypt, its staging, or another)
//! for the https domains of a proxy in compose, with certbot's webroot
//! challenge (docs/targets.md, "Certificates"):
//!
//! - `<proxy>-certs`, a task: a self-signed stand-in for each domain that has
//!   no certificate yet, so that the proxy can start (it refuses to without
//!   one), before the proxy;
//! - `<proxy>-acme`, beside the proxy once it is healthy: obtains each missing
//!   certificate (nginx serves the challenge from the shared webroot, HAProxy
//!   forwards it to the client),
//!   renews those due twice a day, and installs each new one where the proxy
//!   reads it; the proxy reloads itself when a certificate changes.
//!
//! A proxy `on_host` runs the same script from systemd units on its host
//! (the stand-in before the host's proxy starts, the client on a timer), and
//! the script reloads the host's proxy itself.

use super::*;
use crate::model::{AcmeDirectory, ProxyKind};

/// The ACME client's image: certbot, with openssl for the stand-ins.
pub const ACME_IMAGE: &str = "certbot/certbot:v2.11.0";
/// Where the proxy reads the certificates stackc obtains: `DOMAIN/fullchain.pem`
/// and `DOMAIN/privkey.pem`.
pub const CERTS_DIR: &str = "/etc/stackc/certs";
/// The webroot of the HTTP-01 challenge, which the proxy serves at
/// `/.well-known/acme-challenge/`.
pub const WEBROOT: &str = "/var/www/certbot";
/// certbot's account and certificate lineages.
const LETSENCRYPT_DIR: &str = "/etc/letsencrypt";
/// Where the generated script is mounted in the client's containers.
pub const SCRIPT_PATH: &str = "/stackc/acme.sh";

/// The ACME server a topology's certificates come from.
#[derive(Debug, Clone, PartialEq)]
pub struct AcmeServer {
    /// The ACME directory URL.
    pub directory: String,
    pub email: Option<String>,
}

/// The certificates a proxy obtains itself.
#[derive(Debug, Clone, PartialEq)]
pub struct AcmePlan {
    pub server: AcmeServer,
    pub domains: Vec<String>,
}

/// The port the ACME client serves the challenge's webroot on, for a proxy
/// that cannot serve files itself (HAProxy forwards the challenge there).
pub const CHALLENGE_PORT: u16 = 8402;

/// Whether the proxy obtains the certificate of `domain` itself: a domain no
/// `tls` block gives files of its own. A proxy in compose has the containers
/// below; one `on_host` has systemd units on its host (`targets::systemd`).
pub(super) fn obtains(proxy: &ProxyDef, domain: &str) -> bool {
    !proxy.tls.contains_key(domain)
}

/// The certificate and key paths of a domain the proxy obtains: nginx reads
/// the chain and the key, HAProxy one PEM of both.
pub(super) fn paths(kind: ProxyKind, domain: &str) -> (String, String) {
    match kind {
        ProxyKind::Nginx => (
            format!("{CERTS_DIR}/{domain}/fullchain.pem"),
            format!("{CERTS_DIR}/{domain}/privkey.pem"),
        ),
        ProxyKind::Haproxy => (format!("{CERTS_DIR}/{domain}/combined.pem"), String::new()),
    }
}

/// A topology's ACME server: its `acme` block's directory, else Let's
/// Encrypt in production and Let's Encrypt's staging elsewhere (whose
/// certificates no browser trusts, and whose rate limits a test never hits).
pub(in crate::plan) fn server(topo: &TopologyDef) -> AcmeServer {
    let acme = topo.acme.clone().unwrap_or_default();
    let directory = acme
        .directory
        .map(|d| d.value)
        .unwrap_or(if topo.production {
            AcmeDirectory::LetsEncrypt
        } else {
            AcmeDirectory::Staging
        });
    AcmeServer {
        directory: directory.url().to_string(),
        email: acme.email.map(|e| e.value),
    }
}

/// The ACME plan of a proxy that obtains `domains`.
pub(super) fn plan(topo: &TopologyDef, domains: Vec<String>) -> Option<AcmePlan> {
    (!domains.is_empty()).then(|| AcmePlan {
        server: server(topo),
        domains,
    })
}

/// The names of a proxy's ACME containers.
pub fn certs_name(proxy: &str) -> Name {
    Name::new(format!("{proxy}-certs"))
}

pub fn client_name(proxy: &str) -> Name {
    Name::new(format!("{proxy}-acme"))
}

fn volume(proxy: &ProxyPlan, what: &str, path: &str) -> Volume {
    Volume {
        name: format!("{}-{what}", proxy.name),
        path: path.into(),
        size: Size(64 << 20),
    }
}

/// Where an nginx that reloads on new certificates has its start script.
pub const START_SCRIPT: &str = "/stackc/start.sh";

/// What a proxy that obtains its certificates has besides: the volumes it
/// shares with its ACME client (the certificates, the challenge's webroot),
/// the start script that reloads it when they change, and the wait for its
/// stand-ins.
pub(super) fn proxy_side(
    proxy: &ProxyPlan,
    mounts: &mut Vec<Mount>,
) -> (Vec<Volume>, Program, Vec<(Name, Condition)>) {
    if proxy.acme.is_none() {
        return (Vec::new(), Program::default(), Vec::new());
    }
    let dir = match proxy.kind {
        ProxyKind::Nginx => "nginx",
        ProxyKind::Haproxy => "haproxy",
    };
    mounts.push(Mount::generated(
        format!("{dir}/{}-start.sh", proxy.name),
        START_SCRIPT,
    ));
    let mut volumes = vec![volume(proxy, "certs", CERTS_DIR)];
    // nginx serves the challenge from the webroot; HAProxy forwards it to
    // the client, which serves it.
    if proxy.kind == ProxyKind::Nginx {
        volumes.push(volume(proxy, "acme-webroot", WEBROOT));
    }
    (
        volumes,
        Program {
            command: Some(vec!["sh".into(), START_SCRIPT.into()]),
            ..Program::default()
        },
        vec![(certs_name(&proxy.name), Condition::Completed)],
    )
}

/// The stand-in task and the ACME client of a proxy that obtains
/// certificates.
pub(in crate::plan) fn instances(proxy: &ProxyPlan) -> Vec<Instance> {
    if proxy.acme.is_none() {
        return Vec::new();
    }
    let container = |name: Name, role: Role, mode: &str, volumes: Vec<Volume>| Instance {
        image: Some(Name::new(ACME_IMAGE)),
        program: Program {
            entrypoint: Some(vec!["sh".into(), SCRIPT_PATH.into()]),
            command: Some(vec![mode.into()]),
            ..Program::default()
        }
        .into(),
        storage: Storage {
            volumes,
            mounts: vec![Mount::generated(
                format!("acme/{}.sh", proxy.name),
                SCRIPT_PATH,
            )],
            backup: None,
            shared_from: Some(Name::new(&proxy.name)),
        }
        .into(),
        kind: Some(Name::new("acme")),
        restart: if role == Role::Task {
            Restart::No
        } else {
            Restart::UnlessStopped
        },
        ..Instance::auxiliary(name, role)
    };
    let certs = container(
        certs_name(&proxy.name),
        Role::Task,
        "stand-in",
        vec![volume(proxy, "certs", CERTS_DIR)],
    );
    let mut client = container(
        client_name(&proxy.name),
        Role::Stateless,
        "run",
        vec![
            volume(proxy, "certs", CERTS_DIR),
            volume(proxy, "acme-webroot", WEBROOT),
            volume(proxy, "letsencrypt", LETSENCRYPT_DIR),
        ],
    );
    // The challenge is answered by the proxy: the client starts once it is up.
    client.depends_on = vec![(Name::new(&proxy.name), Condition::Healthy)];
    vec![certs, client]
}
