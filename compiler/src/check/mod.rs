//! Global checks over the lowered stack: kinds and their parents, parameters,
//! names (DNS labels, env var names) and the shape of every reference. Produces the
//! base definition of each service (its kind chain with the service laid over it),
//! which `plan` lays topology overrides over.
//!
//! Topology-specific checks (placement, ports, cycles, health gates) live in `plan`.

use std::sync::Arc;

use crate::base::{IndexMap, Name};

use crate::diag::{listing, suggest, Code, Diagnostic, Diagnostics, FileId, Span};
use crate::model::*;
use crate::schema;
use crate::syntax::Ident;

mod ha;
mod kinds;
mod reference;

pub(crate) use ha::losses;
use kinds::{check_args, check_params, kind_chains, unknown_kind};
pub use kinds::{KindChains, MAX_KIND_DEPTH};
use reference::check_expr;

/// The stack with every service's kind chain applied.
#[derive(Debug, Default)]
pub struct Checked<'a> {
    /// Base definition of each workload service (kind defaults ⊕ service): the
    /// declaration itself for a service without a kind.
    pub bases: IndexMap<Name, DefRef<'a>>,
    /// Each kind's chain, from itself to its root.
    pub kind_chains: KindChains,
}

impl Checked<'_> {
    /// The stack's external services, in file order: the services without a
    /// base, looked for only when there are some (most stacks have none).
    pub fn externals<'s>(
        &self,
        stack: &'s Stack,
    ) -> impl Iterator<Item = (&'s Name, &'s ExternalDef)> + use<'s, '_> {
        let all = stack.services.as_slice();
        let services = if self.bases.len() < all.len() {
            all
        } else {
            &all[..0]
        };
        services.iter().filter_map(|(name, d)| match &d.body {
            ServiceBody::External(e) => Some((name, &**e)),
            ServiceBody::Workload(_) => None,
        })
    }
}

pub fn check<'a>(stack: &'a Stack, diags: &mut Diagnostics) -> Checked<'a> {
    let checked = bases(stack, diags);
    definitions(stack, &checked, diags);
    checked
}

/// The first half of `check`, all that planning needs: secret names, kind chains,
/// and each service's base with its arguments checked.
pub fn bases<'a>(stack: &'a Stack, diags: &mut Diagnostics) -> Checked<'a> {
    let mut checked = Checked::default();
    for secret in stack.secrets.values() {
        if !is_env_name(&secret.name.name) {
            diags.push(
                Diagnostic::error(
                    Code::InvalidEnvName,
                    secret.name.span,
                    format!(
                        "secret name `{}` is not a valid environment variable name",
                        secret.name.name
                    ),
                )
                .label("letters, digits and `_` only")
                .help(format!(
                    "a secret reaches services as the variable `{}`; try `{}`",
                    secret.env_name,
                    secret.name.name.replace('-', "_")
                )),
            );
        }
    }
    checked.kind_chains = kind_chains(stack, diags);
    checked.bases.reserve(stack.services.len());
    let chains = &checked.kind_chains;
    for decl in stack.services.values() {
        dns_label(&decl.name, "service", diags);
        match &decl.body {
            ServiceBody::Workload(def) => {
                let Some(kind) = &decl.kind else {
                    check_args(&decl.name.name, def, &[def], diags);
                    let base = DefRef::Borrowed(def);
                    checked.bases.insert(decl.name.name.clone(), base);
                    continue;
                };
                let mut base = ServiceDef::default();
                let kind_known = match chains.chain(&kind.name) {
                    Some(chain) => {
                        let chain: Vec<&Name> = chain.collect();
                        for k in chain.into_iter().rev() {
                            if let Some(kd) = stack.kinds.get(k) {
                                base.overlay(&kd.def);
                            }
                        }
                        true
                    }
                    None => {
                        diags.push(unknown_kind(stack, kind));
                        false
                    }
                };
                base.overlay(def);
                // With an unknown kind its parameters are unknown too: one error is enough.
                if kind_known {
                    check_args(&decl.name.name, &base, &[def], diags);
                } else {
                    base.parameters.args.clear();
                }
                // A kind unknown or cut by an error may have given the image:
                // its absence is not reported again.
                if !chains.is_whole(&kind.name) {
                    base.rejected.extend(["image".into(), "build".into()]);
                }
                let base = DefRef::Owned(Arc::new(base));
                checked.bases.insert(decl.name.name.clone(), base);
            }
            ServiceBody::External(_) => {
                // Its values are checked with the definitions, once every
                // base exists.
                if let Some(kind) = &decl.kind {
                    if !chains.contains(&kind.name) {
                        diags.push(unknown_kind(stack, kind));
                    }
                }
            }
        }
    }
    checked
}

/// The second half of `check`, which only reports: each base's fields and
/// references, and each topology's names, overrides and externals. Nothing that
/// planning reads comes from here, so `analyze` runs it beside planning.
pub fn definitions(stack: &Stack, checked: &Checked<'_>, diags: &mut Diagnostics) {
    // References are checked after every base exists, so that `db.user` can be
    // checked against db's kind whatever the order of the file.
    for (name, base) in &checked.bases {
        let span = stack
            .services
            .get(name)
            .map_or_else(Span::default, |d| d.name.span);
        check_def(stack, &checked.bases, name, base, diags);
        check_params(name, span, base, diags);
    }
    // The external services' values, against the same bases (a service they
    // refer to may be declared after them).
    for (_, ext) in checked.externals(stack) {
        for e in [&ext.url, &ext.read_url, &ext.public_url, &ext.host]
            .into_iter()
            .flatten()
        {
            check_expr(stack, &checked.bases, None, e, diags);
        }
    }
    for topo in stack.topologies.values() {
        dns_label(&topo.name, "topology", diags);
        for host in topo.hosts.values() {
            dns_label(&host.name, "host", diags);
        }
        for ov in topo
            .overrides
            .values()
            .chain(topo.hosts.values().flat_map(|h| &h.runs))
        {
            let Some(base) = checked.bases.get(&ov.service.name) else {
                continue;
            };
            let Some(over) = &ov.over else {
                // A plain placement adds nothing to check.
                continue;
            };
            let mut eff = ServiceDef::clone(base);
            eff.overlay(over);
            check_args(&ov.service.name, &eff, &[over], diags);
            check_def(stack, &checked.bases, &ov.service.name, &eff, diags);
        }
        for (ident, ext) in topo.externals.values() {
            for e in [&ext.url, &ext.read_url, &ext.public_url, &ext.host]
                .into_iter()
                .flatten()
            {
                check_expr(stack, &checked.bases, Some(&ident.name), e, diags);
            }
        }
        for r in topo.receivers.values() {
            for e in [&r.slack, &r.pagerduty].into_iter().flatten() {
                check_expr(stack, &checked.bases, None, e, diags);
            }
        }
    }
}

/// A stack with services but no topology has nothing to build (a warning). Runs
/// before `--topology` narrows the topologies.
pub fn no_topology(stack: &Stack, user: FileId, diags: &mut Diagnostics) {
    if stack.topologies.is_empty() {
        let (span, label) = match stack.services.values().next() {
            Some(first) => (
                first.name.span,
                "services are defined, but not where they run",
            ),
            // A file that did not parse is already reported.
            None if diags.has_errors() => return,
            // An empty file (or one with only secrets and kinds).
            None => (Span::new(user, 0, 0), "nothing here runs anywhere"),
        };
        diags.push(
            Diagnostic::error(Code::NoTopology, span, "this stack defines no topology")
                .label(label)
                .help("add `topology NAME { host NAME { run = [...] } }`; `build` has nothing to write"),
        );
    }
}

/// The checks of one definition (a service's, or a placement's with its
/// overrides): its names, values, ports, start order and HA options.
fn check_def(
    stack: &Stack,
    bases: &IndexMap<Name, DefRef<'_>>,
    name: &str,
    def: &ServiceDef,
    diags: &mut Diagnostics,
) {
    check_env_names(def, diags);
    check_values(stack, bases, name, def, diags);
    check_volumes(def, diags);
    check_port_refs(name, def, diags);
    check_ports(def, diags);
    check_depends_on(stack, name, def, diags);
    if let Some(h) = &def.replication.ha {
        ha::check_options(stack, bases, name, h, diags);
    }
    if let Some(s3) = def.storage.backup.as_ref().and_then(|b| b.s3.as_ref()) {
        for key in [&s3.access_key, &s3.secret_key].into_iter().flatten() {
            check_expr(stack, bases, Some(name), key, diags);
        }
    }
    if let Some(mode) = def.replication.ha.as_ref().map(|h| &h.mode) {
        ha::check_mode(name, def, mode, diags);
    }
}

/// Environment variable names: valid, and not stackc's own prefix.
fn check_env_names(def: &ServiceDef, diags: &mut Diagnostics) {
    for var in def.env.values() {
        if var.key.name.starts_with(RESERVED_ENV_PREFIX) {
            diags.push(
                Diagnostic::error(
                    Code::InvalidEnvName,
                    var.key.span,
                    format!("`{}` starts with `{RESERVED_ENV_PREFIX}`, which stackc keeps for the variables it adds", var.key.name),
                )
                .label("reserved prefix")
                .help(format!("rename it, for example `{}`", &var.key.name[RESERVED_ENV_PREFIX.len()..])),
            );
        }
        if !is_env_name(&var.key.name) {
            diags.push(
                Diagnostic::error(
                    Code::InvalidEnvName,
                    var.key.span,
                    format!(
                        "`{}` is not a valid environment variable name",
                        var.key.name
                    ),
                )
                .label("letters, digits and `_`, not starting with a digit")
                .help(format!(
                    "try `{}`",
                    var.key.name.replace('-', "_").to_ascii_uppercase()
                )),
            );
        }
    }
}

/// Every value's references.
fn check_values(
    stack: &Stack,
    bases: &IndexMap<Name, DefRef<'_>>,
    name: &str,
    def: &ServiceDef,
    diags: &mut Diagnostics,
) {
    for var in def.env.values() {
        check_expr(stack, bases, Some(name), &var.value, diags);
    }
    for e in [&def.reach.url, &def.reach.read_url, &def.reach.public_url]
        .into_iter()
        .flatten()
    {
        check_expr(stack, bases, Some(name), e, diags);
    }
    for arg in def.parameters.args.values() {
        check_expr(stack, bases, Some(name), &arg.value, diags);
    }
    for p in def.parameters.params.values() {
        if let Some(d) = &p.default {
            check_expr(stack, bases, Some(name), d, diags);
        }
    }
}

/// Volume names are DNS labels, and each has a path.
fn check_volumes(def: &ServiceDef, diags: &mut Diagnostics) {
    for vol in def.storage.volumes.values() {
        dns_label(&vol.name, "volume", diags);
        if vol.path.is_none() && !def.rejected.iter().any(|r| r == "volume") {
            diags.push(
                Diagnostic::error(
                    Code::MissingField,
                    vol.name.span,
                    format!("volume `{}` has no path in the container", vol.name.name),
                )
                .label("path missing")
                .help(format!(
                    "write `volume {} = \"/path\"` or `path = \"/path\"` in its block",
                    vol.name.name
                )),
            );
        }
    }
}

/// Every port a field names is one the service declares.
fn check_port_refs(name: &str, def: &ServiceDef, diags: &mut Diagnostics) {
    let port_names: Vec<&str> = def.ports.keys().map(Name::as_str).collect();
    let port_ref = |ident: &Ident, what: &str, diags: &mut Diagnostics| {
        if !def.ports.contains_key(&ident.name) {
            let d = Diagnostic::error(
                Code::UnknownName,
                ident.span,
                format!(
                    "{what} names port `{}`, which service `{name}` does not declare",
                    ident.name
                ),
            )
            .label("no such port");
            let ports = || port_names.iter().copied();
            diags.push(
                d.suggesting(&ident.name, ports(), || match port_names.is_empty() {
                    true => "declare it with `port NAME = NUMBER`".into(),
                    false => listing("ports", ports()),
                }),
            );
        }
    };
    for p in def.reach.public.iter().flat_map(|p| &p.value) {
        port_ref(p, "`public`", diags);
    }
    for probe in [
        &def.health.liveness,
        &def.health.readiness,
        &def.health.startup,
    ]
    .into_iter()
    .flatten()
    {
        if let Some(p) = &probe.port {
            port_ref(p, "the health check", diags);
        }
    }
    for route in def.routes.values() {
        if let Some(p) = &route.port {
            port_ref(p, "the route", diags);
        }
    }
    if let Some(p) = def.reach.metrics.as_ref().and_then(|m| m.port.as_ref()) {
        port_ref(p, "`metrics`", diags);
    }
}

/// Every port has a container port.
fn check_ports(def: &ServiceDef, diags: &mut Diagnostics) {
    for port in def.ports.values() {
        if port.container.is_none() && !port.invalid {
            diags.push(
                Diagnostic::error(
                    Code::MissingField,
                    port.name.span,
                    format!("port `{}` has no container port", port.name.name),
                )
                .label("number missing")
                .help("write `port NAME = NUMBER` or `container = NUMBER` in its block"),
            );
        }
    }
}

/// `depends_on` names services, never the service itself.
fn check_depends_on(stack: &Stack, name: &str, def: &ServiceDef, diags: &mut Diagnostics) {
    for dep in def.lifecycle.depends_on.iter().flat_map(|d| &d.value) {
        if !stack.services.contains_key(&dep.service.name) {
            diags.push(unknown_service(stack, &dep.service));
        } else if dep.service.name == name {
            // The shortest cycle: the service could never start.
            diags.push(
                Diagnostic::error(
                    Code::DependencyCycle,
                    dep.service.span,
                    format!("`{name}` depends on itself"),
                )
                .label("a service cannot wait for itself to start")
                .help(format!("remove `{name}` from its own `depends_on`")),
            );
        }
    }
}

pub(crate) fn unknown_service(stack: &Stack, ident: &Ident) -> Diagnostic {
    let d = Diagnostic::error(
        Code::UnknownName,
        ident.span,
        format!("unknown service `{}`", ident.name),
    )
    .label("no service has this name");
    d.suggesting(&ident.name, stack.services.keys().map(Name::as_str), || {
        "declare it with `service NAME { ... }` or `external NAME { url = ... }`".into()
    })
}

/// `[A-Za-z_][A-Za-z0-9_]*`. Byte by byte: every service's variables are
/// checked, and a byte that is not ASCII fails as its character would.
/// The prefix of the environment variables stackc adds (Kubernetes reads a
/// secret embedded in a value from `STACKC_<SECRET>`): no user variable takes it.
pub const RESERVED_ENV_PREFIX: &str = "STACKC_";

pub fn is_env_name(s: &str) -> bool {
    match s.as_bytes() {
        [first, rest @ ..] => {
            (first.is_ascii_alphabetic() || *first == b'_')
                && rest.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'_')
        }
        [] => false,
    }
}

pub fn is_dns_label(s: &str) -> bool {
    let bytes = s.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 63
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && bytes.first().is_some_and(u8::is_ascii_alphanumeric)
        && bytes.last().is_some_and(u8::is_ascii_alphanumeric)
}

fn dns_label(ident: &Ident, what: &str, diags: &mut Diagnostics) {
    if !is_dns_label(&ident.name) {
        let fixed: String = ident
            .name
            .to_ascii_lowercase()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect::<String>()
            .trim_matches('-')
            .chars()
            .take(63)
            .collect();
        let why = if ident.name.len() > 63 {
            "longer than 63 characters"
        } else {
            "lowercase letters, digits and `-` only, starting and ending with a letter or digit"
        };
        diags.push(
            Diagnostic::error(
                Code::InvalidDnsName,
                ident.span,
                format!("{what} name `{}` is not a valid DNS label", ident.name),
            )
            .label(why)
            .help(format!(
                "it becomes a host name in the generated files; try `{fixed}`"
            )),
        );
    }
}

#[cfg(test)]
mod tests;
