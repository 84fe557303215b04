//! systemd units, in `out/<topology>/systemd/<host>/`: on a compose host,
//! each scheduled task is a `.timer` and a oneshot `.service` that runs it
//! with `docker compose run`; a proxy `on_host` that obtains certificates
//! has its stand-ins before the host's proxy starts, and its ACME client on
//! a timer (`plan::acme`). The schedule is written as `OnCalendar=`
//! lines made from the expanded cron fields, so the timer fires at exactly the
//! times cron would (a day matching either day field, when both are
//! restricted, is two lines: systemd requires both in one).

use serde::Serialize;

use super::{header, node_files, Files};
use crate::diag::Diagnostics;
use crate::model::{ProxyKind, Role};
use crate::options::Options;
use crate::plan::acme::CERTS_DIR;
use crate::plan::{HostPlan, Instance, Plan, ProxyPlan, TopologyPlan};
use crate::schedule::{Field, Schedule};

#[derive(Serialize)]
struct TaskUnits<'a> {
    header: String,
    stack: &'a str,
    host: &'a str,
    task: &'a str,
    unit: String,
    schedule: &'a str,
    compose_file: String,
    on_calendar: Vec<String>,
}

pub fn generate(
    plan: &Plan,
    topo: &TopologyPlan,
    options: &Options,
    out: &mut Files<'_>,
    diags: &mut Diagnostics,
) {
    for host in topo.hosts.iter().filter(|h| !h.managed) {
        for proxy in topo
            .proxies
            .iter()
            .filter(|p| p.on_host && p.host == host.name && p.acme.is_some())
        {
            acme_units(plan, topo, host, proxy, options, out, diags);
        }
        for inst in host.services.iter().filter(|i| i.role == Role::Task) {
            if let Some(schedule) = &inst.lifecycle.schedule {
                let units = units(plan, topo, host, inst, schedule, options);
                let dir = format!("systemd/{}", host.name);
                let files = [
                    (&*format!("{}.service", units.unit), "task.service"),
                    (&*format!("{}.timer", units.unit), "task.timer"),
                ];
                node_files(
                    topo,
                    &dir,
                    &files,
                    &units,
                    (&inst.name, &host.name),
                    out,
                    diags,
                );
            }
        }
    }
}

/// The units of the ACME client of a proxy on its host.
#[derive(Serialize)]
struct AcmeUnits<'a> {
    header: String,
    stack: &'a str,
    host: &'a str,
    proxy: &'a str,
    unit: String,
    /// The host's own unit of the proxy (Debian's packages').
    proxy_unit: &'static str,
    script: String,
    directory: &'a str,
    certs: &'static str,
}

fn acme_units(
    plan: &Plan,
    topo: &TopologyPlan,
    host: &HostPlan,
    proxy: &ProxyPlan,
    options: &Options,
    out: &mut Files<'_>,
    diags: &mut Diagnostics,
) {
    let Some(acme) = &proxy.acme else { return };
    let units = AcmeUnits {
        header: header("#", options, &topo.name),
        stack: &plan.stack,
        host: &host.name,
        proxy: &proxy.name,
        unit: unit_name(&plan.stack, &proxy.name),
        proxy_unit: match proxy.kind {
            ProxyKind::Nginx => "nginx",
            ProxyKind::Haproxy => "haproxy",
        },
        // `%` starts a specifier in a unit file.
        script: format!("{}/acme/{}.sh", topo.directory, proxy.name).replace('%', "%%"),
        directory: &acme.server.directory,
        certs: CERTS_DIR,
    };
    let dir = format!("systemd/{}", host.name);
    let files = [
        (
            &*format!("{}-certs.service", units.unit),
            "acme-certs.service",
        ),
        (&*format!("{}-acme.service", units.unit), "acme.service"),
        (&*format!("{}-acme.timer", units.unit), "acme.timer"),
    ];
    node_files(
        topo,
        &dir,
        &files,
        &units,
        (&proxy.name, &host.name),
        out,
        diags,
    );
}

/// The unit name of a scheduled task: `<stack>-<task>`.
pub fn unit_name(stack: &str, task: &str) -> String {
    format!("{stack}-{task}")
}

fn units<'a>(
    plan: &'a Plan,
    topo: &'a TopologyPlan,
    host: &'a HostPlan,
    inst: &'a Instance,
    schedule: &'a Schedule,
    options: &Options,
) -> TaskUnits<'a> {
    TaskUnits {
        header: header("#", options, &topo.name),
        stack: &plan.stack,
        host: &host.name,
        task: &inst.name,
        unit: unit_name(&plan.stack, &inst.name),
        schedule: &schedule.expression,
        // `%` starts a specifier in a unit file.
        compose_file: format!("{}/compose/{}.yml", topo.directory, host.name).replace('%', "%%"),
        on_calendar: on_calendar(schedule),
    }
}

/// The `OnCalendar=` values that fire at the schedule's times, in UTC.
pub fn on_calendar(s: &Schedule) -> Vec<String> {
    let time = format!(
        "{}:{}:00",
        component(s, Field::Hour),
        component(s, Field::Minute)
    );
    let month = component(s, Field::Month);
    let day = component(s, Field::DayOfMonth);
    let weekdays = weekdays(s);
    if s.either_day() {
        // Cron runs on a day that matches either field; systemd needs both
        // within one expression, so each field is an expression of its own.
        return vec![
            format!("*-{month}-{day} {time} UTC"),
            format!("{weekdays} *-{month}-* {time} UTC"),
        ];
    }
    let date = format!("*-{month}-{day} {time} UTC");
    if s.is_every(Field::DayOfWeek) {
        vec![date]
    } else {
        vec![format!("{weekdays} {date}")]
    }
}

/// One date or time component: `*`, or the values, runs of three or more
/// written `A..B`.
fn component(s: &Schedule, field: Field) -> String {
    if s.is_every(field) {
        return "*".into();
    }
    let values: Vec<u8> = s.values(field).collect();
    runs(&values, |v| format!("{v:02}"))
}

/// The days of the week, Monday first as systemd counts them.
fn weekdays(s: &Schedule) -> String {
    const NAMES: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
    let mut days: Vec<u8> = s.values(Field::DayOfWeek).collect();
    // Monday first: Sunday (0) goes last, as 7.
    days.iter_mut().filter(|d| **d == 0).for_each(|d| *d = 7);
    days.sort_unstable();
    runs(&days, |d| NAMES[d as usize % 7].to_string())
}

/// Values joined by `,`, with each run of three or more consecutive ones
/// written `first..last`.
fn runs(values: &[u8], show: impl Fn(u8) -> String) -> String {
    let mut parts = Vec::new();
    let mut i = 0;
    while i < values.len() {
        let mut j = i;
        while j + 1 < values.len() && values[j + 1] == values[j] + 1 {
            j += 1;
        }
        if j >= i + 2 {
            parts.push(format!("{}..{}", show(values[i]), show(values[j])));
        } else {
            parts.extend(values[i..=j].iter().map(|v| show(*v)));
        }
        i = j + 1;
    }
    parts.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cal(s: &str) -> Vec<String> {
        on_calendar(&Schedule::parse(s).unwrap_or_else(|e| panic!("{s}: {e:?}")))
    }

    #[test]
    fn fields_become_calendar_components() {
        assert_eq!(cal("0 2 * * *"), ["*-*-* 02:00:00 UTC"]);
        assert_eq!(cal("*/15 * * * *"), ["*-*-* *:00,15,30,45:00 UTC"]);
        assert_eq!(
            cal("30 4 1-5 * 1-5"),
            ["*-*-01..05 04:30:00 UTC", "Mon..Fri *-*-* 04:30:00 UTC"]
        );
        assert_eq!(cal("0 0 * * 0,6"), ["Sat,Sun *-*-* 00:00:00 UTC"]);
    }
}
