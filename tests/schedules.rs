//! Tasks and schedules. The times a generated systemd timer fires, as systemd
//! itself computes them (`systemd-analyze calendar`), are the times cron
//! would run the schedule, as croniter computes them; the units pass
//! `systemd-analyze verify`; and compose, as `docker-compose config` resolves
//! it, starts a task's dependents after it succeeds.

use std::path::Path;
use std::process::Command;

use crate::support::{require, write_artifacts};

/// Schedules of every shape the language takes: steps, ranges, lists, names,
/// Sunday as 0 and 7, both day fields (either matches), macros.
const SCHEDULES: &[&str] = &[
    "30 2 * * *",
    "*/15 * * * *",
    "5/20 3-5 * * *",
    "0 0 1 * *",
    "0 12 1,15 * *",
    "0 0 1 * 7",
    "0 0 13 * 5",
    "10 8 * * mon-fri",
    "0 0 * * 0,6",
    "0 0 * * 5-7",
    "0 6 1-31/10 jan,jul *",
    "45 23 28-31 2 *",
    "0 0 29 2 *",
    "0 */6 * * 1-7/2",
    "@hourly",
    "@weekly",
    "@monthly",
];

const BASE: &str = "2026-01-01 00:00:00";
const RUNS: usize = 60;

fn stack() -> String {
    let mut s = String::from("stack cron\n");
    let mut run = Vec::new();
    for (i, schedule) in SCHEDULES.iter().enumerate() {
        s.push_str(&format!(
            "service t{i} {{\n  image = \"busybox:1.36\"\n  role = task\n  schedule = \"{schedule}\"\n}}\n"
        ));
        run.push(format!("t{i}"));
    }
    s.push_str(&format!(
        "topology single {{\n  directory = \"/srv/cron%app/out/single\"\n  host main {{ run = [{}] }}\n}}\n",
        run.join(", ")
    ));
    s
}

/// The times systemd fires a timer with these `OnCalendar=` values.
fn systemd_times(calendars: &[String]) -> Vec<String> {
    let out = Command::new("systemd-analyze")
        .env("TZ", "UTC")
        .arg("calendar")
        .arg(format!("--base-time={BASE} UTC"))
        .arg(format!("--iterations={RUNS}"))
        .args(calendars)
        .output()
        .expect("systemd-analyze runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut times: Vec<String> = text
        .lines()
        .filter_map(|l| {
            let l = l.trim();
            let rest = l.strip_prefix("Next elapse: ").or_else(|| {
                l.split_once(": ")
                    .filter(|(k, _)| k.starts_with("Iter."))
                    .map(|(_, r)| r)
            })?;
            // `Thu 2026-12-03 02:00:00 UTC` -> `2026-12-03 02:00`
            let mut words = rest.split_whitespace().skip(1);
            let (date, time) = (words.next()?, words.next()?);
            Some(format!("{date} {}", &time[..5]))
        })
        .collect();
    times.sort();
    times.dedup();
    times.truncate(RUNS);
    times
}

/// The times cron runs a schedule, by croniter (Debian's python3-croniter).
fn cron_times(schedule: &str) -> Vec<String> {
    let script = format!(
        "import croniter, datetime\n\
         it = croniter.croniter({schedule:?}, datetime.datetime(2026, 1, 1))\n\
         for _ in range({RUNS}):\n    print(it.get_next(datetime.datetime).strftime('%Y-%m-%d %H:%M'))\n"
    );
    let out = Command::new("/usr/bin/python3")
        .args(["-c", &script])
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

fn croniter_installed() -> bool {
    let found = Command::new("/usr/bin/python3")
        .args(["-c", "import croniter"])
        .status()
        .is_ok_and(|s| s.success());
    if !found && std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("python3-croniter is required under CI=true but is not installed (see .ci/run)");
    }
    found
}

fn timer(c: &stackc::Compilation, task: &str) -> String {
    crate::support::artifact(c, &format!("single/systemd/main/cron-{task}.timer"))
}

fn compiled() -> stackc::Compilation {
    let c = stackc::compile(
        stack(),
        &crate::support::options(Path::new("tests/cron.stack")),
    );
    assert!(!c.has_errors(), "{:?}", c.diagnostics);
    c
}

#[test]
fn a_timer_fires_when_cron_would_run_its_schedule() {
    if !require("systemd-analyze") || !croniter_installed() {
        return;
    }
    let c = compiled();
    for (i, schedule) in SCHEDULES.iter().enumerate() {
        let calendars: Vec<String> = timer(&c, &format!("t{i}"))
            .lines()
            .filter_map(|l| l.strip_prefix("OnCalendar="))
            .map(str::to_string)
            .collect();
        assert!(!calendars.is_empty(), "no OnCalendar= for {schedule}");
        // systemd's calendar ends in 2199.
        let mut cron = cron_times(schedule);
        cron.retain(|t| t.as_str() < "2200");
        let mut systemd = systemd_times(&calendars);
        systemd.truncate(cron.len());
        assert_eq!(systemd, cron, "`{schedule}` as {calendars:?}");
    }
}

#[test]
fn the_units_pass_systemd_analyze_verify() {
    if !require("systemd-analyze") || !require("docker") {
        return;
    }
    let c = compiled();
    let dir = tempfile::tempdir().expect("as generated");
    write_artifacts(&c, dir.path());
    let units = dir.path().join("single/systemd/main");
    let service = std::fs::read_to_string(units.join("cron-t0.service")).expect("as generated");
    // `%` starts a specifier in a unit file: undoubled, `%a` would be read as
    // the architecture and another path run. No offline systemd tool prints
    // the command it would run, so the escaping is checked as written.
    assert!(
        service
            .contains("--file /srv/cron%%app/out/single/compose/main.yml run --rm --no-TTY t0\n"),
        "{service}"
    );
    for i in 0..SCHEDULES.len() {
        verify(&[
            units.join(format!("cron-t{i}.timer")),
            units.join(format!("cron-t{i}.service")),
        ]);
    }
}

/// `systemd-analyze verify` accepts the units without a word.
fn verify(units: &[std::path::PathBuf]) {
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .args(units)
        .output()
        .expect("as generated");
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// On compose, what `docker-compose config` resolves: the API waits until the
/// migration has exited with status 0, the migration is not restarted, and
/// the scheduled backup is left to its timer (a profile `up` does not start),
/// whose `ExecStart` runs a service of that very file.
#[test]
fn compose_runs_a_task_before_its_dependents_and_leaves_scheduled_ones_to_timers() {
    if !require("docker-compose") {
        return;
    }
    let path = crate::support::root().join("tests/cases/tasks.stack");
    let c = stackc::compile(crate::support::read(&path), &crate::support::options(&path));
    assert!(!c.has_errors(), "{:?}", c.diagnostics);
    let dir = tempfile::tempdir().expect("as generated");
    write_artifacts(&c, dir.path());
    let r = Command::new("docker-compose")
        .args(["-f", "main.yml", "config"])
        .env("DB_PASSWORD", "x")
        .current_dir(dir.path().join("single/compose"))
        .output()
        .expect("as generated");
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let doc = crate::support::yaml11(&r.stdout);
    let services = &doc["services"];
    assert_eq!(
        services["api"]["depends_on"]["migrate"]["condition"],
        "service_completed_successfully"
    );
    assert_eq!(services["migrate"]["restart"], "no");
    assert_eq!(
        services["backup"]["profiles"],
        serde_json::json!(["scheduled"])
    );
    assert!(services["api"]["profiles"].is_null());
    let unit = crate::support::artifact(&c, "single/systemd/main/shop-backup.service");
    let exec = unit
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .expect("as generated");
    assert_eq!(
        exec,
        "docker compose --project-name shop --file /opt/shop/out/single/compose/main.yml run --rm --no-TTY backup"
    );
    assert!(services["backup"].is_object());
}

/// The units of a proxy on its host that obtains its certificates: the
/// stand-ins before the host's nginx, the client and its timer.
#[test]
fn the_acme_units_of_a_proxy_on_its_host_pass_systemd_analyze_verify() {
    if !require("systemd-analyze") {
        return;
    }
    let stack = r#"stack shop

service app {
  image = "app:1"
  port http = 8080
  public_url = "https://app.example.com"
  route "/"
}

topology single {
  host main {
    address = "10.0.0.5"
    run = [app]
  }
  proxy edge: nginx {
    host = main
    on_host = true
  }
}
"#;
    let c = stackc::compile(stack, &crate::support::options(Path::new("shop.stack")));
    assert!(!c.has_errors(), "{:?}", c.diagnostics);
    let dir = tempfile::tempdir().expect("as generated");
    write_artifacts(&c, dir.path());
    let units = dir.path().join("single/systemd/main");
    let names = [
        "shop-edge-certs.service",
        "shop-edge-acme.service",
        "shop-edge-acme.timer",
    ];
    verify(&names.map(|n| units.join(n)));
    let service = std::fs::read_to_string(units.join(names[1])).expect("as generated");
    assert!(
        service.contains("ExecStart=/bin/sh /opt/shop/out/single/acme/edge.sh obtain\n"),
        "{service}"
    );
}
