//! The ACME client's script of each proxy that obtains its certificates,
//! `out/<topology>/acme/<proxy>.sh` (`plan::acme` says who runs it).

use serde::Serialize;

use super::{header, node_files, Files};
use crate::diag::Diagnostics;
use crate::model::ProxyKind;
use crate::options::Options;
use crate::plan::acme::{AcmePlan, CERTS_DIR, CHALLENGE_PORT, WEBROOT};
use crate::plan::{ProxyPlan, TopologyPlan};

/// certbot's account and lineages, in the client's volume.
const STATE_DIR: &str = "/etc/letsencrypt";

#[derive(Serialize)]
struct Script<'a> {
    header: String,
    proxy: &'a str,
    directory: &'a str,
    /// certbot's account options: the contact, or none.
    account: String,
    certs: &'static str,
    webroot: &'static str,
    state: &'static str,
    domains: String,
    key_mode: &'static str,
    serve: String,
    /// The address the script serves the webroot on: its container's, or
    /// the host's loopback, where the host's HAProxy forwards.
    serve_address: &'static str,
    served_by: &'static str,
    /// How a new certificate reaches a proxy on the host: its check and
    /// reload (a proxy in compose reloads itself).
    reload: &'static str,
}

pub fn generate(
    topo: &TopologyPlan,
    options: &Options,
    out: &mut Files<'_>,
    diags: &mut Diagnostics,
) {
    for proxy in &topo.proxies {
        let Some(acme) = &proxy.acme else { continue };
        let file = format!("{}.sh", proxy.name);
        let model = script(topo, proxy, acme, options);
        node_files(
            topo,
            "acme",
            &[(&file, "acme.sh")],
            &model,
            (&proxy.name, &proxy.host),
            out,
            diags,
        );
    }
}

fn script<'a>(
    topo: &TopologyPlan,
    proxy: &'a ProxyPlan,
    acme: &'a AcmePlan,
    options: &Options,
) -> Script<'a> {
    // The URL, the address and the domains follow grammars with no
    // character a shell's single quotes give a meaning (`grammar::Place`).
    Script {
        header: header("#", options, &topo.name),
        proxy: &proxy.name,
        directory: &acme.server.directory,
        account: match &acme.server.email {
            Some(email) => format!("--email {email}"),
            None => "--register-unsafely-without-email".into(),
        },
        certs: CERTS_DIR,
        webroot: WEBROOT,
        state: STATE_DIR,
        domains: acme.domains.join(" "),
        // nginx's master reads its keys as root; HAProxy runs as its own user,
        // and the volume is shared by the proxy and its client alone.
        // nginx's master reads its keys as root; HAProxy in its image runs
        // as its own user (the volume is shared by the proxy and its client
        // alone), on a host it starts as root.
        key_mode: match (proxy.kind, proxy.on_host) {
            (ProxyKind::Haproxy, false) => "644",
            _ => "600",
        },
        serve: match proxy.kind {
            ProxyKind::Nginx => String::new(),
            ProxyKind::Haproxy => CHALLENGE_PORT.to_string(),
        },
        serve_address: if proxy.on_host {
            "127.0.0.1"
        } else {
            "0.0.0.0"
        },
        served_by: match (proxy.kind, proxy.on_host) {
            (ProxyKind::Nginx, false) => "the proxy serves it from the shared webroot",
            (ProxyKind::Nginx, true) => "the host's nginx serves it from the webroot",
            (ProxyKind::Haproxy, _) => "HAProxy forwards it to this script's server",
        },
        reload: match (proxy.kind, proxy.on_host) {
            (_, false) => "",
            (ProxyKind::Nginx, true) => "nginx -t -q && systemctl reload nginx",
            (ProxyKind::Haproxy, true) => {
                "haproxy -c -q -f /etc/haproxy/haproxy.cfg && systemctl reload haproxy"
            }
        },
    }
}
