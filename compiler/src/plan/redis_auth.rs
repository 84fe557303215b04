//! How a Redis with a password (`redis_auth`, `redis_tls`) and its sentinels
//! get it: never on a command line, where `ps` shows it to every user of the
//! machine. A node's shell makes its standard input a here-document of config
//! directives (`requirepass`, `masterauth`), which `redis-server -` reads; a
//! sentinel's shell writes `sentinel auth-pass` into the sentinel's own config
//! (Sentinel mode reads no standard input, and rewrites that file itself).
//! Both are the shell's own work (`exec`, `printf`): no program sees the value
//! in its arguments. A config line takes the value as it is (a `"` or a
//! newline would end it), and the value is in the clients' URLs too: so a
//! password outside `URL_SAFE` stops the container at its start, saying why.

use super::*;
use crate::diag::Span;

/// The here-document's delimiter.
const END: &str = "STACKC_REDIS_AUTH";

/// The check every start makes before the password is used.
pub(crate) fn check() -> String {
    url_safe_check(
        REDIS_PASSWORD_ENV,
        false,
        &format!("{REDIS_PASSWORD_ENV} is set and used in the clients' URLs"),
    )
}

/// The lines a node's shell runs before it starts Redis: the password's
/// check, then standard input made the directives that carry it.
pub(crate) fn node_preamble() -> String {
    node_preamble_with(&[])
}

/// An ACL user of a node: a client with a role of its own (`roles =
/// per_service`, `plan/roles.rs`).
pub(super) struct User<'a> {
    pub(super) name: &'a str,
    pub(super) password: &'a SecretRef,
    /// Reads only (a client of `read_url` alone).
    pub(super) read_only: bool,
}

/// `node_preamble` with the ACL users of the clients: each password checked
/// as the server's is, and its `user` directive on standard input too. The
/// default user, whose password is the server's, stays for replication,
/// sentinels and backups.
fn node_preamble_with(users: &[User<'_>]) -> String {
    let var = REDIS_PASSWORD_ENV;
    let mut s = check();
    let mut directives = String::new();
    for u in users {
        let env = &u.password.env;
        s.push_str(&url_safe_check(
            env,
            false,
            &format!("{env} is a Redis user's password, in its client's URL"),
        ));
        let rules = if u.read_only {
            "~* resetchannels +@read +@connection"
        } else {
            "~* &* +@all -@admin"
        };
        directives.push_str(&format!("user {} on \">${env}\" {rules}\n", u.name));
    }
    format!("{s}exec <<{END}\nrequirepass \"${var}\"\nmasterauth \"${var}\"\n{directives}{END}\n")
}

/// Gives a node the ACL users of its clients: their passwords in its
/// environment, their `user` directives in the preamble `wire_redis_auth`
/// gave it.
pub(super) fn add_users(inst: &mut Instance, users: &[User<'_>], span: Span) {
    let Some(line) = inst.program.command.as_mut().and_then(|c| c.get_mut(2)) else {
        return;
    };
    *line = line.replacen(&node_preamble(), &node_preamble_with(users), 1);
    for u in users {
        let p = u.password;
        inst.env.push(EnvVar {
            key: p.env.clone(),
            value: smallvec::smallvec![Out::secret(p.name.clone(), p.env.clone(), p.optional)],
            span,
        });
    }
}

/// The lines a sentinel's shell runs before it starts: its config's
/// `auth-pass` for `master` replaced by the current password (the file is in
/// the sentinel's volume, where Sentinel itself keeps it).
pub(super) fn sentinel_preamble(conf: &str, master: &str) -> String {
    let new = format!("{conf}.stackc-new");
    format!(
        "{check}grep -v '^sentinel auth-pass ' {conf} > {new} || :\nprintf 'sentinel auth-pass %s \"%s\"\\n' {master} \"${var}\" >> {new}\nmv {new} {conf}\n",
        check = check(),
        master = crate::grammar::shell_word(master),
        var = REDIS_PASSWORD_ENV,
    )
}

/// Whether an instance runs a password-protected Redis.
pub(crate) fn requires_auth(inst: &Instance) -> bool {
    inst.env.iter().any(|v| v.key == REDIS_PASSWORD_ENV)
}

/// `redis-server`'s words reading config from standard input: `-` right after
/// the program, or last when a config file comes first (Redis takes `-` only
/// in those two places).
fn reading_stdin(mut words: Vec<String>) -> Vec<String> {
    match words.get(1) {
        Some(first) if !first.starts_with('-') => words.push("-".into()),
        _ => words.insert(1.min(words.len()), "-".into()),
    }
    words
}

impl Topo<'_> {
    /// Gives a password-protected Redis node its password on standard input:
    /// a command of words becomes `sh -c` with the preamble and `exec` of
    /// those words reading it; a shell line of its own (`sh -c LINE`) gets the
    /// preamble before it (the line passes `-` to `redis-server` itself).
    /// The last wiring of a node: replication has added its arguments.
    pub(super) fn wire_redis_auth(&self, name: &str, inst: &mut Instance) {
        if !self.is_kind(name, "redis") || !requires_auth(inst) {
            return;
        }
        let command = inst.program.command.take();
        let line = match command.as_deref().and_then(replication::shell_line) {
            Some(line) => line.to_string(),
            None => {
                let words = reading_stdin(command.unwrap_or_else(|| vec!["redis-server".into()]));
                let words: Vec<String> = words
                    .iter()
                    .map(|w| crate::grammar::shell_word(w))
                    .collect();
                format!("exec {}", words.join(" "))
            }
        };
        inst.program.command = Some(vec![
            "sh".into(),
            "-c".into(),
            format!("{}{line}", node_preamble()),
        ]);
    }
}
