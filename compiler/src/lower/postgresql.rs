//! A service's `postgresql { NAME = VALUE ... }`: PostgreSQL's settings, each
//! checked for what PostgreSQL reads (a name, a number, a size, a duration,
//! a boolean or a one-line text), and none of those stackc sets itself.

use crate::diag::{Code, Diagnostic};
use crate::model::*;
use crate::syntax::{Entry, Value, ValueKind};

use super::Lower;

/// The settings stackc writes itself, from the HA mode, the backups and the
/// topology: a user's value would be lost or break replication.
const SET_BY_STACKC: &[&str] = &[
    "archive_command",
    "archive_mode",
    "archive_timeout",
    "cluster_name",
    "config_file",
    "data_directory",
    "hba_file",
    "hot_standby",
    "ident_file",
    "listen_addresses",
    "max_replication_slots",
    "max_wal_senders",
    "password_encryption",
    "port",
    "primary_conninfo",
    "primary_slot_name",
    "restore_command",
    "unix_socket_directories",
    "wal_level",
    "wal_log_hints",
];

impl Lower<'_> {
    pub(super) fn postgresql(&mut self, def: &mut ServiceDef, e: &Entry) {
        let entries = self.block(e);
        for (f, v) in self.settings(entries, "a postgresql block") {
            let name = &f.key.name;
            if let Some(why) = setting_name(name) {
                self.push(
                    Diagnostic::error(Code::InvalidValue, f.key.span, why)
                        .label("not a PostgreSQL setting")
                        .help("PostgreSQL's settings are lowercase letters, digits and `_` (`max_connections`)"),
                );
                continue;
            }
            if SET_BY_STACKC.contains(&name.as_str()) {
                self.push(
                    Diagnostic::error(
                        Code::InvalidValue,
                        f.key.span,
                        format!("`{name}` is set by stackc"),
                    )
                    .label("stackc writes this setting")
                    .help("remove it: the HA mode, the backups and the topology decide it (docs/targets.md)"),
                );
                continue;
            }
            let Some(value) = self.setting_value(v) else {
                continue;
            };
            def.replication.postgresql.insert(
                name.clone(),
                PgSetting {
                    name: f.key.clone(),
                    value,
                },
            );
        }
    }

    fn setting_value(&mut self, v: &Value) -> Option<Sp<PgValue>> {
        let value = match &v.kind {
            ValueKind::Quantity { number, unit } if unit.is_empty() => {
                PgValue::Number(number.clone())
            }
            ValueKind::Quantity { unit, .. } if super::values::is_duration_unit(unit) => {
                PgValue::Duration(self.duration(v)?.value)
            }
            ValueKind::Quantity { .. } => PgValue::Size(self.size(v)?.value),
            ValueKind::Bool(b) => PgValue::Bool(*b),
            // A word PostgreSQL takes as it is: `synchronous_commit = local`.
            ValueKind::Path(p) if p.len() == 1 => PgValue::Text(p[0].name.to_string()),
            ValueKind::Str(_) => {
                let text = self.string(v)?;
                if let Some(c) = text.value.chars().find(|c| c.is_control()) {
                    self.push(
                        Diagnostic::error(
                            Code::InvalidValue,
                            v.span,
                            format!("a PostgreSQL setting cannot hold {c:?}"),
                        )
                        .label("not one line of text")
                        .help("write the value on one line, without control characters"),
                    );
                    return None;
                }
                PgValue::Text(text.value)
            }
            _ => {
                self.wrong_type(
                    v,
                    "a number, a size (`1Gi`), a duration (`500ms`), a boolean or a string",
                );
                return None;
            }
        };
        Some(Sp::new(value, v.span))
    }
}

/// Why `name` cannot be a PostgreSQL setting's name.
fn setting_name(name: &str) -> Option<String> {
    let ok = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_';
    name.chars()
        .find(|&c| !ok(c))
        .map(|c| format!("a PostgreSQL setting's name cannot hold {c:?}"))
}

#[cfg(test)]
mod tests {
    use crate::model::{Duration, PgValue, Size};

    /// Sizes and durations in the largest unit that holds them exactly.
    #[test]
    fn values_in_postgresql_units() {
        let cases = [
            (PgValue::Size(Size(1 << 30)), "1GB"),
            (PgValue::Size(Size(1536 << 20)), "1536MB"),
            (PgValue::Size(Size(64 << 10)), "64kB"),
            (PgValue::Size(Size(1000)), "1000B"),
            (PgValue::Size(Size(2 << 40)), "2TB"),
            (PgValue::Duration(Duration(1500)), "1500ms"),
            (PgValue::Duration(Duration(90_000)), "90s"),
            (PgValue::Duration(Duration(120_000)), "2min"),
            (PgValue::Duration(Duration(7_200_000)), "2h"),
            (PgValue::Duration(Duration(0)), "0ms"),
            (PgValue::Bool(false), "off"),
            (PgValue::Number("0.9".into()), "0.9"),
        ];
        for (value, conf) in cases {
            assert_eq!(value.to_conf(), conf, "{value:?}");
        }
    }
}
