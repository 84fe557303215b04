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
use crate::syntax::{path_text, Ident};

/// The stack with every service's kind chain applied.
#[derive(Debug, Default)]
pub struct Checked<'a> {
    /// Base definition of each workload service (kind defaults ⊕ service): the
    /// declaration itself for a service without a kind.
    pub bases: IndexMap<Name, DefRef<'a>>,
    /// Each kind's chain, from itself to its root.
    pub kind_chains: KindChains,
}

/// The most kinds one chain holds (a kind, its parent, ...): real chains hold
/// two or three, and a bound keeps every walk of a chain short whatever the
/// file says.
pub const MAX_KIND_DEPTH: usize = 64;

/// Every kind's chain, resolved once: a kind's chain is itself, then its
/// parent's. A chain is cut where its parent is unknown, closes a cycle, or
/// would make it longer than `MAX_KIND_DEPTH` (each reported once), so that
/// every chain ends.
#[derive(Debug, Default, Clone)]
pub struct KindChains {
    /// By kind, in the stack's order: the index of its parent here, unless
    /// its chain ends with it.
    parents: IndexMap<Name, Option<usize>>,
    /// By kind: whether its chain was cut by a reported error (what the cut
    /// part holds is unknown).
    cut: Vec<bool>,
}

impl KindChains {
    pub fn contains(&self, kind: &str) -> bool {
        self.parents.contains_key(kind)
    }

    /// Whether a kind's chain is whole: known, and not cut by an error.
    pub fn is_whole(&self, kind: &str) -> bool {
        self.parents
            .get_index_of(kind)
            .is_some_and(|i| !self.cut[i])
    }

    /// The chain of a kind, from itself to its root.
    pub fn chain(&self, kind: &str) -> Option<impl Iterator<Item = &Name> + '_> {
        let start = self.parents.get_index_of(kind)?;
        Some(
            std::iter::successors(Some(start), |&i| self.parents[i])
                .filter_map(|i| self.parents.get_index(i).map(|(name, _)| name)),
        )
    }
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
                    base.rare.args.clear();
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

fn unknown_kind(stack: &Stack, kind: &Ident) -> Diagnostic {
    let d = Diagnostic::error(
        Code::UnknownName,
        kind.span,
        format!("unknown kind `{}`", kind.name),
    )
    .label("no kind has this name");
    let kinds = || stack.kinds.keys().map(Name::as_str);
    d.suggesting(&kind.name, kinds(), || listing("kinds", kinds()))
}

/// Every kind's chain, each kind visited once: from a kind not resolved yet,
/// up its parents to one that is (or to a root, an unknown parent or a cycle),
/// then each kind of that path resolved on the way back. Unknown parents,
/// cycles and chains deeper than `MAX_KIND_DEPTH` are reported, once each.
fn kind_chains(stack: &Stack, diags: &mut Diagnostics) -> KindChains {
    let n = stack.kinds.len();
    let mut parents: Vec<Option<usize>> = vec![None; n];
    // How many kinds each chain would hold uncut (0: not resolved yet).
    let mut depth: Vec<usize> = vec![0; n];
    let mut cut = vec![false; n];
    let mut on_path = vec![false; n];
    for start in 0..n {
        if depth[start] != 0 {
            continue;
        }
        let mut path = vec![start];
        on_path[start] = true;
        let mut current = start;
        // The resolved kind the path hangs from, and whether the walk stopped
        // at an error.
        let mut hang = None;
        let mut broken = false;
        while let Some(parent) = stack.kinds[current].parent.as_ref() {
            match stack.kinds.get_index_of(&parent.name) {
                None => {
                    diags.push(unknown_kind(stack, parent));
                    broken = true;
                    break;
                }
                Some(p) if on_path[p] => {
                    let from = path.iter().position(|&k| k == p).unwrap_or(0);
                    diags.push(kind_cycle(stack, &path[from..], parent));
                    broken = true;
                    break;
                }
                Some(p) if depth[p] != 0 => {
                    hang = Some(p);
                    break;
                }
                Some(p) => {
                    path.push(p);
                    on_path[p] = true;
                    current = p;
                }
            }
        }
        for &k in path.iter().rev() {
            on_path[k] = false;
            let below = hang.map_or(0, |p| depth[p]);
            depth[k] = below + 1;
            cut[k] = hang.map_or(broken, |p| cut[p]);
            if depth[k] > MAX_KIND_DEPTH {
                // Cut: the first kind past the limit is the one reported.
                if depth[k] == MAX_KIND_DEPTH + 1 {
                    diags.push(kind_too_deep(stack, k));
                }
                cut[k] = true;
            } else {
                parents[k] = hang;
            }
            hang = Some(k);
        }
    }
    KindChains {
        parents: stack.kinds.keys().cloned().zip(parents).collect(),
        cut,
    }
}

fn kind_cycle(stack: &Stack, path: &[usize], closing: &Ident) -> Diagnostic {
    let names: Vec<&str> = path
        .iter()
        .filter_map(|&k| stack.kinds.get_index(k).map(|(name, _)| name.as_str()))
        .collect();
    Diagnostic::error(
        Code::DependencyCycle,
        closing.span,
        format!(
            "kinds extend each other in a cycle: {} -> {}",
            names.join(" -> "),
            closing.name
        ),
    )
    .label("this closes the cycle")
    .help("a kind cannot extend itself, directly or through other kinds")
}

fn kind_too_deep(stack: &Stack, k: usize) -> Diagnostic {
    let Some((name, kind)) = stack.kinds.get_index(k) else {
        return Diagnostic::error(
            Code::KindChainTooDeep,
            Span::default(),
            "a kind chain is too deep",
        );
    };
    let span = kind.parent.as_ref().map_or(kind.name.span, |p| p.span);
    Diagnostic::error(
        Code::KindChainTooDeep,
        span,
        format!("kind `{name}` extends a chain of {MAX_KIND_DEPTH} kinds already"),
    )
    .label(format!("a chain holds at most {MAX_KIND_DEPTH} kinds"))
    .help("extend a kind nearer the root: a kind's chain is itself, its parent, its parent's parent and so on")
}

/// Every argument must be a parameter of the kind chain; every parameter without a
/// default must be given.
fn check_args(service: &str, eff: &ServiceDef, written: &[&ServiceDef], diags: &mut Diagnostics) {
    for def in written {
        for (key, arg) in &def.rare.args {
            if !eff.rare.params.contains_key(key) {
                let mut known: Vec<&str> = schema::SERVICE.names().collect();
                known.extend(eff.rare.params.keys().map(Name::as_str));
                let d = Diagnostic::error(
                    Code::UnknownField,
                    arg.key.span,
                    format!("unknown field `{key}` for service `{service}`"),
                )
                .label("not a field of this service or its kind");
                diags.push(d.suggesting(key, known.iter().copied(), || {
                    format!("the fields are: {}", known.join(", "))
                }));
            }
        }
    }
}

fn check_def(
    stack: &Stack,
    bases: &IndexMap<Name, DefRef<'_>>,
    name: &str,
    def: &ServiceDef,
    diags: &mut Diagnostics,
) {
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
        check_expr(stack, bases, Some(name), &var.value, diags);
    }
    for e in [&def.rare.url, &def.rare.read_url, &def.rare.public_url]
        .into_iter()
        .flatten()
    {
        check_expr(stack, bases, Some(name), e, diags);
    }
    for arg in def.rare.args.values() {
        check_expr(stack, bases, Some(name), &arg.value, diags);
    }
    for p in def.rare.params.values() {
        if let Some(d) = &p.default {
            check_expr(stack, bases, Some(name), d, diags);
        }
    }
    for vol in def.rare.volumes.values() {
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
    for p in def.rare.public.iter().flat_map(|p| &p.value) {
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
    if let Some(p) = def.rare.metrics.as_ref().and_then(|m| m.port.as_ref()) {
        port_ref(p, "`metrics`", diags);
    }
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
    for dep in def.rare.depends_on.iter().flat_map(|d| &d.value) {
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
    if let Some(h) = &def.rare.ha {
        let options: [(&[HaMode], &str, Option<Span>); 14] = [
            (
                &[HaMode::Sentinel],
                "sentinels",
                h.sentinels.as_ref().map(|v| v.span),
            ),
            (
                &[HaMode::Sentinel],
                "quorum",
                h.quorum.as_ref().map(|v| v.span),
            ),
            (
                &[HaMode::Sentinel],
                "down_after",
                h.down_after.as_ref().map(|v| v.span),
            ),
            (
                &[HaMode::Sentinel],
                "failover_timeout",
                h.failover_timeout.as_ref().map(|v| v.span),
            ),
            (
                &[HaMode::Sentinel],
                "master_name",
                h.master_name.as_ref().map(|v| v.span),
            ),
            (
                &[HaMode::Streaming, HaMode::Patroni],
                "replication_user",
                h.replication_user.as_ref().map(|v| v.span),
            ),
            (
                &[HaMode::Streaming, HaMode::Patroni],
                "replication_password",
                h.replication_password.as_ref().map(|v| v.span),
            ),
            (
                &[HaMode::Patroni],
                "superuser_password",
                h.superuser_password.as_ref().map(|v| v.span),
            ),
            (&[HaMode::Patroni], "ttl", h.ttl.as_ref().map(|v| v.span)),
            (
                &[HaMode::Patroni],
                "loop_wait",
                h.loop_wait.as_ref().map(|v| v.span),
            ),
            (
                &[HaMode::Patroni],
                "retry_timeout",
                h.retry_timeout.as_ref().map(|v| v.span),
            ),
            (
                &[HaMode::Patroni],
                "synchronous",
                h.synchronous.as_ref().map(|v| v.span),
            ),
            (
                &[HaMode::Patroni],
                "watchdog",
                h.watchdog.as_ref().map(|v| v.span),
            ),
            (&[HaMode::Patroni], "etcd", h.etcd.as_ref().map(|v| v.span)),
        ];
        // An option of another mode than the chosen one.
        for (modes, option, span) in options {
            let Some(span) = span.filter(|_| !modes.contains(&h.mode.value)) else {
                continue;
            };
            let mode = &modes[0];
            diags.push(
                Diagnostic::error(
                    Code::InvalidValue,
                    span,
                    format!(
                        "`{option}` applies to `mode = {}`, not `{}`",
                        modes
                            .iter()
                            .map(HaMode::name)
                            .collect::<Vec<_>>()
                            .join("` or `mode = "),
                        h.mode.value
                    ),
                )
                .label("ignored by this mode")
                .help(format!("remove it, or choose `mode = {mode}`")),
            );
        }
        for p in [&h.replication_password, &h.superuser_password]
            .into_iter()
            .flatten()
        {
            check_expr(stack, bases, Some(name), p, diags);
        }
        if h.mode.value == HaMode::Patroni {
            patroni_timing(h, diags);
        }
        if h.mode.value == HaMode::Sentinel {
            sentinel_fragility(h, diags);
        }
        if let (Some(q), Some(n)) = (&h.quorum, &h.sentinels) {
            if q.value == 0 || q.value > n.value {
                diags.push(
                    Diagnostic::error(
                        Code::InvalidValue,
                        q.span,
                        format!(
                            "a quorum of {} with {} sentinels can never be reached",
                            q.value, n.value
                        ),
                    )
                    .label("from 1 to the number of sentinels")
                    .help(format!("a majority is `quorum = {}`", n.value / 2 + 1)),
                );
            }
        }
    }
    if let Some(ha) = def.rare.ha.as_ref().map(|h| &h.mode) {
        let modes = def.ha_mode_names();
        if ha.value != HaMode::Single && !def.offers(&ha.value) {
            let d = Diagnostic::error(
                Code::InvalidValue,
                ha.span,
                format!("`{}` is not an HA mode of service `{name}`", ha.value),
            )
            .label("unknown HA mode");
            diags.push(d.suggesting(ha.value.name(), modes.iter().copied(), || {
                if modes.is_empty() {
                    "its kind declares no HA modes (`ha_modes = [...]`); only `single` is possible"
                        .into()
                } else {
                    format!("the HA modes of its kind are: single, {}", modes.join(", "))
                }
            }));
        }
    }
}

/// Every parameter without a default must be set by the service (checked on the
/// base definition only, so that placements do not repeat it).
fn check_params(name: &str, name_span: Span, def: &ServiceDef, diags: &mut Diagnostics) {
    for p in def.rare.params.values() {
        if p.default.is_none() && !def.rare.args.contains_key(&p.name.name) {
            diags.push(
                Diagnostic::error(
                    Code::MissingField,
                    name_span,
                    format!("service `{name}` does not set parameter `{}`", p.name.name),
                )
                .label(format!("`{}` missing", p.name.name))
                .with_secondary(p.name.span, "declared without a default here")
                .help(format!(
                    "set it in service `{name}`: `{} = ...`",
                    p.name.name
                )),
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

/// Checks the shape of every reference in an expression. `owner` is the service the
/// expression belongs to (for `self`).
fn check_expr(
    stack: &Stack,
    bases: &IndexMap<Name, DefRef<'_>>,
    owner: Option<&str>,
    expr: &Expr,
    diags: &mut Diagnostics,
) {
    for r in expr.references() {
        if let Some(d) = check_reference(stack, bases, owner, r) {
            diags.push(d);
        }
    }
}

fn check_reference(
    stack: &Stack,
    bases: &IndexMap<Name, DefRef<'_>>,
    owner: Option<&str>,
    r: &Reference,
) -> Option<Diagnostic> {
    let first = r.path.first()?;
    if first.name == "secret" {
        let Some(name) = r.path.get(1) else {
            return Some(
                Diagnostic::error(Code::UnknownName, r.span, "`secret` needs a secret name")
                    .label("write `secret.NAME`")
                    .help("write `secret.NAME`, with NAME declared by `secret NAME`"),
            );
        };
        if !stack.secrets.contains_key(&name.name) {
            let d = Diagnostic::error(
                Code::UndeclaredSecret,
                name.span,
                format!("secret `{}` is not declared", name.name),
            )
            .label("not declared");
            return Some(
                match suggest(&name.name, stack.secrets.keys().map(Name::as_str)) {
                    Some(s) => d.help(format!(
                        "did you mean `{s}`? Or declare it: `secret {}`",
                        name.name
                    )),
                    None => d.help(format!("declare it: `secret {}`", name.name)),
                },
            );
        }
        return too_long(r, 2);
    }
    let service = if first.name == "self" {
        match owner {
            Some(o) => Name::new(o),
            None => {
                return Some(
                    Diagnostic::error(
                        Code::UnknownName,
                        first.span,
                        "`self` is not a service here",
                    )
                    .label("no service owns this value")
.help("`self` refers to the service a value belongs to; outside a service, name the service"),
                )
            }
        }
    } else {
        if !stack.services.contains_key(&first.name) {
            if r.path.len() == 1 {
                // A single name: perhaps a choice written in the wrong place.
                return Some(
                    unknown_service(stack, first)
                        .help(format!("a reference is `SERVICE.ATTRIBUTE`, like `{}.url`; a literal string is written in quotes", first.name)),
                );
            }
            return Some(unknown_service(stack, first));
        }
        first.name.clone()
    };
    let Some(attr) = r.path.get(1) else {
        return Some(
            Diagnostic::error(
                Code::UnknownAttribute,
                r.span,
                format!(
                    "`{}` is a service; refer to one of its attributes",
                    first.name
                ),
            )
            .label("attribute missing")
            .help(format!(
                "for example `{}.url` or `{}.address`",
                first.name, first.name
            )),
        );
    };
    let params: Vec<&str> = bases
        .get(&service)
        .map(|b| b.rare.params.keys().map(Name::as_str).collect())
        .unwrap_or_default();
    if attr.name == "ports" {
        let Some(port) = r.path.get(2) else {
            return Some(
                Diagnostic::error(Code::UnknownAttribute, r.span, "`ports` needs a port name")
                    .label(format!("write `{}.ports.NAME`", first.name))
                    .help(format!("for example `{}.ports.http`", first.name)),
            );
        };
        if let Some(base) = bases.get(&service) {
            if !base.ports.contains_key(&port.name) {
                let d = Diagnostic::error(
                    Code::UnknownAttribute,
                    port.span,
                    format!("service `{service}` has no port `{}`", port.name),
                )
                .label("no such port");
                let names: Vec<&str> = base.ports.keys().map(Name::as_str).collect();
                let ports = || names.iter().copied();
                return Some(
                    d.suggesting(&port.name, ports(), || match names.is_empty() {
                        true => format!("`{service}` declares no port"),
                        false => listing(&format!("ports of `{service}`"), ports()),
                    }),
                );
            }
        }
        return too_long(r, 3);
    }
    if !schema::is_attribute(&attr.name) && !params.contains(&attr.name.as_str()) {
        let mut known: Vec<&str> = schema::ATTRIBUTES.iter().map(|a| a.name).collect();
        known.extend(params.iter().copied());
        let d = Diagnostic::error(
            Code::UnknownAttribute,
            attr.span,
            format!("service `{service}` has no attribute `{}`", attr.name),
        )
        .label("unknown attribute");
        return Some(d.suggesting(&attr.name, known.iter().copied(), || {
            format!("the attributes are: {}", known.join(", "))
        }));
    }
    too_long(r, 2)
}

fn too_long(r: &Reference, len: usize) -> Option<Diagnostic> {
    let extra = r.path.get(len)?;
    let last = r.path.last().map_or(extra.span, |l| l.span);
    Some(
        Diagnostic::error(
            Code::UnknownAttribute,
            extra.span.to(last),
            format!("`{}` goes too deep", path_text(&r.path)),
        )
        .label("nothing to select here")
        .help("a reference is `SERVICE.ATTRIBUTE`, `SERVICE.ports.NAME` or `secret.NAME`"),
    )
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

/// Patroni's DCS timing (../shared/TARGETS.md 2.1.3): whole seconds, a leader
/// key that lives at least 20s, and one HA loop plus two retries within it, or
/// a leader that is merely slow loses its key.
fn patroni_timing(h: &HaDef, diags: &mut Diagnostics) {
    let mut valid = true;
    let mut seconds = |d: &Option<Sp<Duration>>, default: u64| match d {
        Some(d) if d.value.0 % 1000 != 0 => {
            diags.push(
                Diagnostic::error(
                    Code::InvalidValue,
                    d.span,
                    "Patroni counts this in whole seconds",
                )
                .label("not a whole number of seconds")
                .help(format!("write `{}s`", d.value.0.div_ceil(1000))),
            );
            valid = false;
            (d.value.0.div_ceil(1000), d.span)
        }
        Some(d) => (d.value.0 / 1000, d.span),
        None => (default, h.span),
    };
    let ttl = seconds(&h.ttl, 30);
    let loop_wait = seconds(&h.loop_wait, 10);
    let retry = seconds(&h.retry_timeout, 10);
    let minimums = [
        (ttl, 20, "ttl", "Patroni refuses a shorter leader key"),
        (loop_wait, 1, "loop_wait", "the HA loop needs a pause"),
        (
            retry,
            3,
            "retry_timeout",
            "too short to ride out a DCS hiccup",
        ),
    ];
    for ((value, span), least, option, why) in minimums {
        if value < least {
            diags.push(
                Diagnostic::error(
                    Code::InvalidValue,
                    span,
                    format!("`{option} = {value}s` is below Patroni's minimum of {least}s"),
                )
                .label(why)
                .help(format!("write `{option} = {least}s` or more")),
            );
            valid = false;
        }
    }
    if valid && loop_wait.0 + 2 * retry.0 > ttl.0 {
        diags.push(
            Diagnostic::error(
                Code::InvalidValue,
                ttl.1,
                format!(
                    "a leader key of {}s expires before one HA loop ({}s) and two retries ({}s each)",
                    ttl.0, loop_wait.0, retry.0
                ),
            )
            .label("`loop_wait + 2 * retry_timeout` must not exceed `ttl`")
            .help(format!(
                "raise `ttl` to {}s, or shorten `loop_wait` or `retry_timeout`",
                loop_wait.0 + 2 * retry.0
            )),
        );
    }
}

/// How many lost members a cluster survives, in words.
pub(crate) fn losses(n: u32) -> String {
    match n {
        0 => "no loss".into(),
        1 => "the loss of one".into(),
        n => format!("the loss of {n}"),
    }
}

/// Sentinel counts and quorums that fail over less safely than they look
/// (../shared/TARGETS.md 2.4: a failover needs a majority of all sentinels).
fn sentinel_fragility(h: &HaDef, diags: &mut Diagnostics) {
    let n = h.sentinels.as_ref().map_or(3, |s| s.value);
    let span = h.sentinels.as_ref().map_or(h.span, |s| s.span);
    let majority = n / 2 + 1;
    let warn = |span, message: String, label: &str, help: String| {
        Diagnostic::error(Code::FragileFailover, span, message)
            .label(label.to_string())
            .help(help)
    };
    if n < 3 {
        diags.push(warn(
            span,
            format!(
                "{n} sentinel{} cannot fail over when one is lost",
                if n == 1 { "" } else { "s" }
            ),
            "a failover needs a majority of all sentinels",
            "run `sentinels = 3`, on separate hosts or nodes".into(),
        ));
    } else if n.is_multiple_of(2) {
        diags.push(warn(
            span,
            format!(
                "{n} sentinels survive {}, as {} would: a failover needs {majority} of them",
                losses((n - 1) / 2),
                n - 1
            ),
            "an even count adds no tolerance",
            format!("run `sentinels = {}` or `sentinels = {}`", n - 1, n + 1),
        ));
    }
    if let Some(q) = &h.quorum {
        if q.value >= 1 && q.value < majority && q.value <= n {
            diags.push(warn(
                q.span,
                format!(
                    "a quorum of {} lets a minority of the {n} sentinels mark the master down",
                    q.value
                ),
                "below a majority",
                format!("a majority is `quorum = {majority}`"),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::is_env_name;

    fn errors(text: &str) -> Vec<String> {
        let options = crate::options::Options {
            source_name: "t.stack".into(),
            topologies: Vec::new(),
            source_dir_from_compose: "..".into(),
            source_from_out: "../t.stack".into(),
        };
        let diags =
            crate::pipeline::analyze(text.to_string(), &options, crate::pipeline::Disposal::Free)
                .diagnostics;
        diags
            .iter()
            .filter(|d| d.is_error())
            .map(|d| d.message.clone())
            .collect()
    }

    #[test]
    fn an_external_service_may_refer_to_a_service_declared_after_it() {
        let external =
            "external legacy {\n  url = \"postgres://${db.user}@${db.host}/${db.database}\"\n}\n";
        let db = "service db: postgres {\n  database = \"app\"\n  user = \"app\"\n  password = secret.pw\n}\n";
        let rest = "secret pw\nservice api {\n  image = \"api:1\"\n  env {\n    LEGACY_URL = legacy.url\n  }\n}\ntopology single {\n  host main { run = [api, db] }\n}\n";
        for text in [
            format!("stack t\n{external}{db}{rest}"),
            format!("stack t\n{db}{external}{rest}"),
        ] {
            assert_eq!(errors(&text), Vec::<String>::new(), "{text}");
        }
        // What is not an attribute of db's kind is reported wherever db is.
        let wrong = external.replace("db.database", "db.dbname");
        for text in [
            format!("stack t\n{wrong}{db}{rest}"),
            format!("stack t\n{db}{wrong}{rest}"),
        ] {
            assert_eq!(
                errors(&text),
                vec!["service `db` has no attribute `dbname`".to_string()],
                "{text}"
            );
        }
    }

    #[test]
    fn env_names_are_a_letter_or_underscore_then_letters_digits_underscores() {
        for good in ["A", "_", "_OK_1", "log_level", "SVC_9999_URL"] {
            assert!(is_env_name(good), "{good}");
        }
        for bad in ["", "1A", "log-level", "A B", "É", "AÉ", "A.B", "$A"] {
            assert!(!is_env_name(bad), "{bad}");
        }
    }
}
