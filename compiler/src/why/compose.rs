//! `why` for the lines of a compose service that no single field writes: a
//! dependency (the `depends_on` entry or the reference that makes it, and why
//! its condition is what it is) and a default (`restart`).

use super::{block, Finder, Origin};
use crate::plan::{Added, Instance};

/// `depends_on: TARGET` (and its `condition:` when `condition`): the entry of
/// the service that names the target, and what decides the condition.
pub(super) fn dependency(
    f: &Finder<'_>,
    inst: Option<&Instance>,
    service: &str,
    host: &str,
    target: &str,
    condition: Option<&str>,
) -> Vec<Origin> {
    // A Patroni cluster is reached through the HAProxy beside the consumer.
    let roles = f.roles_task(target, host);
    let named = match (Added::owner(target), roles) {
        (Some((owner, Added::Haproxy)), _) => owner,
        (_, Some((server, _))) => server,
        _ => target,
    };
    let mut out = Vec::new();
    let listed = f
        .layers(service, host)
        .into_iter()
        .flat_map(block)
        .find(|e| e.key.name == "depends_on" && mentions(f, e, named));
    if let Some(e) = listed {
        out.push(Origin::at(format!("`depends_on` of `{service}`"), e.span()));
    } else if let Some(v) = inst.and_then(|i| {
        i.env.iter().find(|v| {
            let text: &str = &f.a.sources.get(v.span.file).text;
            let line = text[v.span.start as usize..]
                .lines()
                .next()
                .unwrap_or_default();
            refers_to(line, named)
        })
    }) {
        out.push(Origin::at(
            format!(
                "environment variable `{}` of `{service}`, which refers to `{named}`",
                v.key
            ),
            v.span,
        ));
    }
    if let Some((server, entry)) = roles {
        out.push(Origin::at(
            format!("`roles` of `{server}`: `{target}` makes its clients' roles first"),
            entry.span(),
        ));
    } else if named != target {
        out.push(Origin::default(format!(
            "`{target}`: a Patroni cluster is reached through the HAProxy beside its consumer"
        )));
    }
    match condition {
        Some("service_healthy") => {
            if let Some(h) = f.field(target, host, &["health"]) {
                out.push(Origin::at(
                    format!("the health check of `{target}`: healthy first"),
                    h.span(),
                ));
            }
        }
        Some("service_completed_successfully") => {
            if let Some(r) = f.field(target, host, &["role"]) {
                out.push(Origin::at(
                    format!("`role` of `{target}`: a task, done first"),
                    r.span(),
                ));
            }
        }
        Some("service_started") => out.push(Origin::default(format!(
            "started, not healthy: `{target}` has no health check, or the reference says `.started`"
        ))),
        _ => {}
    }
    out
}

/// Whether the `depends_on` entry names `target` (`[db]`, `[db.healthy]`).
fn mentions(f: &Finder<'_>, e: &crate::syntax::Entry, target: &str) -> bool {
    let text: &str = &f.a.sources.get(e.key.span.file).text;
    text.get(e.key.span.end as usize..e.end as usize)
        .is_some_and(|v| refers_to(v, target))
}

/// Whether `text` names `target` as a reference: `target`, `target.x`,
/// `${target.x}`, not as part of a longer name.
fn refers_to(text: &str, target: &str) -> bool {
    let name = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    text.match_indices(target).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + target.len()..].chars().next();
        !before.is_some_and(|c| name(c) || c == '.') && !after.is_some_and(name)
    })
}

/// `restart:` where no block sets it: the default, a task's or a service's.
pub(super) fn restart_default(
    f: &Finder<'_>,
    service: &str,
    host: &str,
    inst: Option<&Instance>,
) -> Origin {
    let task = inst.is_some_and(|i| i.role == crate::model::Role::Task);
    match f.field(service, host, &["role"]).filter(|_| task) {
        Some(r) => Origin::at(
            format!("`role` of `{service}`: a task runs once, `restart: \"no\"`"),
            r.span(),
        ),
        None => Origin::default("`unless-stopped`: the default `restart` of a service"),
    }
}
