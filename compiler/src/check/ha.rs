//! HA options: each applies to the modes that use it; Patroni's timing and
//! Sentinel's quorum hold; the chosen mode is one the kind offers.

use super::*;

/// The options of an `ha` block: each applies to the modes that use it,
/// its secrets are declared, Patroni's timing holds, Sentinel's quorum can be
/// reached.
pub(super) fn check_options(
    stack: &Stack,
    bases: &IndexMap<Name, DefRef<'_>>,
    name: &str,
    h: &HaDef,
    diags: &mut Diagnostics,
) {
    // An option of another mode than the chosen one.
    for (option, span) in options_set(h) {
        let modes = crate::model::option_modes(option);
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

/// The chosen mode is one the service's kind offers (or `single`).
pub(super) fn check_mode(name: &str, def: &ServiceDef, ha: &Sp<HaMode>, diags: &mut Diagnostics) {
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

/// The options an `ha` block sets, with where.
fn options_set(h: &HaDef) -> [(&'static str, Option<Span>); 15] {
    fn at<T>(v: &Option<Sp<T>>) -> Option<Span> {
        v.as_ref().map(|v| v.span)
    }
    [
        ("sentinels", at(&h.sentinels)),
        ("quorum", at(&h.quorum)),
        ("down_after", at(&h.down_after)),
        ("failover_timeout", at(&h.failover_timeout)),
        ("master_name", at(&h.master_name)),
        ("replication_user", at(&h.replication_user)),
        (
            "replication_password",
            h.replication_password.as_ref().map(|v| v.span),
        ),
        (
            "superuser_password",
            h.superuser_password.as_ref().map(|v| v.span),
        ),
        ("ttl", at(&h.ttl)),
        ("loop_wait", at(&h.loop_wait)),
        ("retry_timeout", at(&h.retry_timeout)),
        ("maximum_lag", at(&h.maximum_lag)),
        ("synchronous", at(&h.synchronous)),
        ("watchdog", at(&h.watchdog)),
        ("etcd", at(&h.etcd)),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The options the check knows are the `ha` block's fields (but `mode`),
    /// and each applies to some mode.
    #[test]
    fn every_ha_option_has_its_modes() {
        let mode = Sp {
            value: HaMode::Single,
            span: Span::default(),
        };
        let h = HaDef::new(mode, Span::default());
        let set: Vec<&str> = options_set(&h).iter().map(|(o, _)| *o).collect();
        let fields: Vec<&str> = crate::schema::HA.names().filter(|f| *f != "mode").collect();
        assert_eq!(set, fields);
        for option in set {
            assert!(!crate::model::option_modes(option).is_empty(), "{option}");
        }
    }
}
