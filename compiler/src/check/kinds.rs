//! Kinds: each kind's chain resolved once (unknown parents, cycles and chains
//! too deep reported once each), and a service's arguments against its
//! kind's parameters.

use super::*;

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

pub(super) fn unknown_kind(stack: &Stack, kind: &Ident) -> Diagnostic {
    let d = Diagnostic::error(
        Code::UnknownName,
        kind.span,
        format!("unknown kind `{}`", kind.name),
    )
    .label("no kind has this name");
    // A proxy is not a service of the stack but a topology's.
    if let Some(proxy) = ["nginx", "haproxy"]
        .into_iter()
        .find(|p| kind.name.eq_ignore_ascii_case(p))
    {
        return d.help(format!(
            "{proxy} is a proxy of a topology, not a kind: write `proxy edge: {proxy} {{ host = HOST }}` inside the topology, and `route \"/\"` in the services it serves"
        ));
    }
    let kinds = || stack.kinds.keys().map(Name::as_str);
    d.suggesting(&kind.name, kinds(), || listing("kinds", kinds()))
}

/// Every kind's chain, each kind visited once: from a kind not resolved yet,
/// up its parents to one that is (or to a root, an unknown parent or a cycle),
/// then each kind of that path resolved on the way back. Unknown parents,
/// cycles and chains deeper than `MAX_KIND_DEPTH` are reported, once each.
pub(super) fn kind_chains(stack: &Stack, diags: &mut Diagnostics) -> KindChains {
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
pub(super) fn check_args(
    service: &str,
    eff: &ServiceDef,
    written: &[&ServiceDef],
    diags: &mut Diagnostics,
) {
    for def in written {
        for (key, arg) in &def.parameters.args {
            if !eff.parameters.params.contains_key(key) {
                let mut known: Vec<&str> = schema::SERVICE.names().collect();
                known.extend(eff.parameters.params.keys().map(Name::as_str));
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

/// Every parameter without a default must be set by the service (checked on the
/// base definition only, so that placements do not repeat it).
pub(super) fn check_params(name: &str, name_span: Span, def: &ServiceDef, diags: &mut Diagnostics) {
    for p in def.parameters.params.values() {
        if p.default.is_none() && !def.parameters.args.contains_key(&p.name.name) {
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
