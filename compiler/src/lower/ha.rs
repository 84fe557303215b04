//! `ha = MODE` or `ha { mode = MODE ...options }`.

use super::*;
use crate::grammar::Place;

impl Lower<'_> {
    /// `ha = MODE` or `ha { mode = MODE  sentinels = 3  quorum = 2  ... }`.
    pub(super) fn ha(&mut self, e: &Entry) -> Option<HaDef> {
        match &e.value {
            EntryValue::Assign(v) => Some(HaDef::new(ha_mode(self.name(v)?), e.span())),
            EntryValue::Block(entries) => {
                self.duplicates(entries, "an ha block");
                let unset = Sp::new(HaMode::Single, e.key.span);
                let mut ha = HaDef::new(unset, e.span());
                let mut mode = None;
                for f in entries {
                    self.no_label(f);
                    self.no_kind(f);
                    let Some(v) = self.assigned(f) else { continue };
                    match f.key.name.as_str() {
                        "mode" => mode = self.name(v),
                        "sentinels" => ha.sentinels = self.integer(v, "a sentinel count"),
                        "quorum" => ha.quorum = self.integer(v, "a sentinel count"),
                        "down_after" => ha.down_after = self.duration(v),
                        "failover_timeout" => ha.failover_timeout = self.duration(v),
                        "master_name" => {
                            let name = self.string(v);
                            ha.master_name = self.in_grammar(Place::SentinelName, name);
                        }
                        "replication_user" => {
                            let user = self.string(v);
                            ha.replication_user = self.in_grammar(Place::RoleName, user);
                        }
                        "replication_password" => ha.replication_password = self.expr(v),
                        "superuser_password" => ha.superuser_password = self.expr(v),
                        "ttl" => ha.ttl = self.duration(v),
                        "loop_wait" => ha.loop_wait = self.duration(v),
                        "retry_timeout" => ha.retry_timeout = self.duration(v),
                        "maximum_lag" => ha.maximum_lag = self.size(v),
                        "synchronous" => {
                            ha.synchronous = self.boolean(v).map(|b| Sp::new(b, v.span))
                        }
                        "watchdog" => {
                            ha.watchdog = self.choice(
                                v,
                                &[
                                    ("off", Watchdog::Off),
                                    ("automatic", Watchdog::Automatic),
                                    ("required", Watchdog::Required),
                                ],
                            )
                        }
                        "etcd" => ha.etcd = self.names(v),
                        _ => {
                            let d = not_a_field(&f.key, &schema::HA);
                            self.push(d);
                        }
                    }
                }
                match mode {
                    Some(m) => ha.mode = ha_mode(m),
                    None => {
                        self.push(
                            Diagnostic::error(Code::MissingField, e.key.span, "an `ha` block needs a `mode`")
                                .label("which HA mode?")
                                .help("write `mode = sentinel` (or another mode of the kind) in the block"),
                        );
                        return None;
                    }
                }
                Some(ha)
            }
            EntryValue::None => {
                self.push(
                    Diagnostic::error(Code::MissingField, e.key.span, "`ha` needs a mode")
                        .label("expected `= MODE` or a block")
                        .help("write `ha = sentinel` or `ha { mode = sentinel ... }`"),
                );
                None
            }
        }
    }
}

/// The HA mode a name written in the file names.
fn ha_mode(name: Ident) -> Sp<HaMode> {
    Sp::new(HaMode::new(&name.name), name.span)
}
