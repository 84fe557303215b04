//! Reference resolution: a reference as the consuming instance sees it, from its
//! host.

use crate::diag::{Code, Diagnostic, Diagnostics, Span};

use smol_str::format_smolstr;

use super::*;

impl Topo<'_> {
    /// Resolves an expression owned by `owner` as seen from an instance on
    /// `consumer_host`.
    pub(super) fn eval(
        &self,
        owner: &Name,
        consumer_host: usize,
        expr: &Expr,
        fx: &mut Effects,
        diags: &mut Diagnostics,
        depth: usize,
    ) -> Pieces {
        // Built normalized, in one vector. Most values are one piece: a
        // reference alone is its resolved value, taken as it is.
        if let [Piece::Ref(r)] = expr.pieces.as_slice() {
            return self
                .reference(owner, consumer_host, r, fx, diags, depth)
                .unwrap_or_default();
        }
        let mut out = Pieces::with_capacity(expr.pieces.len());
        for piece in &expr.pieces {
            match piece {
                Piece::Text(t) => push_out(&mut out, Out::Text(t.clone())),
                Piece::Ref(r) => {
                    if let Some(v) = self.reference(owner, consumer_host, r, fx, diags, depth) {
                        for p in v {
                            push_out(&mut out, p);
                        }
                    }
                }
            }
        }
        out
    }

    pub(super) fn reference(
        &self,
        owner: &Name,
        consumer_host: usize,
        r: &Reference,
        fx: &mut Effects,
        diags: &mut Diagnostics,
        depth: usize,
    ) -> Option<Pieces> {
        let (service, attr) = match &r.target {
            RefTarget::Secret(name) => return self.secret(name.as_ref()?),
            RefTarget::Service { service, attr } => (service, attr.as_ref()?),
        };
        if depth > 8 {
            diags.push(
                Diagnostic::error(
                    Code::DependencyCycle,
                    r.span,
                    "this value refers to itself through other values",
                )
                .label("the chain of references does not end")
.help("a `url` or parameter refers back to itself through other values; write one of them out"),
            );
            return None;
        }
        let target = if service.name == "self" {
            owner
        } else {
            &service.name
        };
        let external = self.external(target);
        if depth == 0 && target != owner && attr.kind.at_run_time() && external.is_none() {
            fx.deps.push(Dependency {
                target: target.clone(),
                span: r.span,
            });
        }
        if let Some(ext) = external {
            return self.external_attr(target, ext, attr, r, fx, diags, depth);
        }
        if attr.kind.by_address() && self.is_host_sentinel(target) {
            diags.push(
                Diagnostic::error(
                    Code::Unresolvable,
                    r.span,
                    format!(
                        "`{target}.{}` has no fixed address: Sentinel moves the master between hosts",
                        attr.name.name
                    ),
                )
                .label("the master changes at failover")
                .help(format!(
                    "connect through Sentinel: `{target}.sentinels` (the sentinels' addresses) or `{target}.sentinel_url` (Celery's form), and `{target}.master_name`"
                )),
            );
            return None;
        }
        if self.is_patroni(target) {
            if let Some(endpoint) = self.patroni_endpoint(target, &attr.kind) {
                return Some(endpoint);
            }
        }
        let (local, placement) = if self.is_replicated(target) {
            self.replicated_target(target, consumer_host, attr.kind.reads())?
        } else {
            self.where_is(target, consumer_host)?
        };
        let def = &placement.def;
        let host = self.hosts.get(placement.host)?;
        // An HA mode run by an operator answers on its own Services.
        let operator = self.topo.platform.value == Platform::Kubernetes
            && def
                .replication
                .ha
                .as_ref()
                .is_some_and(|h| h.mode.value == HaMode::CloudNativePg);
        let reached = Reached {
            target,
            def,
            host,
            consumer: consumer_host,
            placement,
            local,
            operator,
            span: r.span,
        };
        if !local && host.managed && attr.kind.at_run_time() && def.reach.url.is_none() {
            diags.push(reached.fail(
                format!(
                    "`{target}` runs on the managed host `{}`, which has no address to connect to",
                    host.name.name
                ),
                "not reachable by address",
                format!("refer to `{target}.public_url` instead"),
            ));
            return None;
        }
        self.attribute(&reached, attr, consumer_host, fx, diags, depth)
    }

    /// The attribute `attr` of a service reached from `consumer_host`.
    #[allow(clippy::too_many_arguments)]
    fn attribute(
        &self,
        reached: &Reached<'_>,
        attr: &Attr,
        consumer_host: usize,
        fx: &mut Effects,
        diags: &mut Diagnostics,
        depth: usize,
    ) -> Option<Pieces> {
        let Reached { target, def, .. } = *reached;
        match &attr.kind {
            Attribute::Host | Attribute::ReadHost => reached
                .hostname(attr.kind.reads(), diags)
                .map(|h| smallvec::smallvec![Out::Text(h)]),
            Attribute::Port => reached
                .port(None, fx, diags)
                .map(|p| smallvec::smallvec![Out::Text(Name::new(itoa::Buffer::new().format(p)))]),
            Attribute::Ports(port) => {
                let name = port.as_ref()?.name.as_str();
                reached.port(Some(name), fx, diags).map(|p| {
                    smallvec::smallvec![Out::Text(Name::new(itoa::Buffer::new().format(p)))]
                })
            }
            Attribute::Address | Attribute::ReadAddress => {
                let h = reached.hostname(attr.kind.reads(), diags)?;
                let p = reached.port(None, fx, diags)?;
                Some(smallvec::smallvec![Out::Text(host_port("", &h, p))])
            }
            Attribute::Url | Attribute::ReadUrl => {
                let template = if attr.kind == Attribute::ReadUrl {
                    def.reach.read_url.as_ref().or(def.reach.url.as_ref())
                } else {
                    def.reach.url.as_ref()
                };
                match template {
                    Some(t) => {
                        let role = self.client_role(target, def, attr.kind.reads(), fx);
                        let outer = std::mem::replace(&mut fx.as_role, role);
                        let url = self.eval(target, consumer_host, t, fx, diags, depth + 1);
                        fx.as_role = outer;
                        Some(url)
                    }
                    None => {
                        let http = def.ports.values().next().filter(|p| {
                            p.protocol.as_ref().map(|p| p.value) == Some(Protocol::Http)
                                || (p.protocol.is_none() && p.name.name == "http")
                        });
                        if http.is_none() {
                            diags.push(reached.fail(
                                format!("service `{target}` has no URL form"),
                                "no `url` known",
                                format!(
                                    "give `{target}` a `url = \"scheme://${{self.address}}\"`, or refer to `{target}.address`"
                                ),
                            ));
                            return None;
                        }
                        let h = reached.hostname(false, diags)?;
                        let p = reached.port(None, fx, diags)?;
                        Some(smallvec::smallvec![Out::Text(host_port("http://", &h, p))])
                    }
                }
            }
            Attribute::Sentinels | Attribute::SentinelUrl | Attribute::MasterName => {
                self.sentinel_attribute(reached, attr, consumer_host, fx, diags, depth)
            }
            Attribute::PublicUrl => match &def.reach.public_url {
                Some(t) => Some(self.eval(target, consumer_host, t, fx, diags, depth + 1)),
                None => {
                    diags.push(reached.fail(
                        format!("service `{target}` has no public URL in topology `{}`", self.topo.name.name),
                        "no `public_url` here",
                        format!("set `public_url = \"https://...\"` on `{target}`, or in an `override {target}` of this topology"),
                    ));
                    None
                }
            },
            Attribute::Param => {
                let param = attr.name.name.as_str();
                if let Some(role) = fx.as_role.as_ref().filter(|r| r.server == *target) {
                    if let Some(value) = role.param(param) {
                        return Some(value);
                    }
                }
                let value = def
                    .parameters
                    .args
                    .get(param)
                    .map(|a| &a.value)
                    .or_else(|| {
                        def.parameters
                            .params
                            .get(param)
                            .and_then(|p| p.default.as_ref())
                    })?;
                Some(self.eval(target, consumer_host, value, fx, diags, depth + 1))
            }
        }
    }

    /// `sentinels`, `sentinel_url` and `master_name`: how clients find the
    /// master of a Sentinel-watched Redis.
    fn sentinel_attribute(
        &self,
        reached: &Reached<'_>,
        attr: &Attr,
        consumer_host: usize,
        fx: &mut Effects,
        diags: &mut Diagnostics,
        depth: usize,
    ) -> Option<Pieces> {
        let Reached { target, def, .. } = *reached;
        let sentinel = def
            .replication
            .ha
            .as_ref()
            .filter(|h| h.mode.value == HaMode::Sentinel);
        let Some(ha) = sentinel else {
            diags.push(reached.fail(
                format!(
                    "`{target}` is not watched by Sentinel in topology `{}`",
                    self.topo.name.name
                ),
                "no sentinels here",
                format!(
                    "refer to `{target}.url`; `{}` exists where `{target}` has `ha = sentinel`",
                    attr.name.name
                ),
            ));
            return None;
        };
        let plan = SentinelPlan::from_def(target, ha);
        if attr.kind == Attribute::MasterName {
            return Some(smallvec::smallvec![Out::Text(plan.master_name.into())]);
        }
        let list: Vec<String> = if self.topo.platform.value == Platform::Compose {
            self.host_sentinels(target)
        } else {
            (0..plan.sentinels)
                .map(|i| format!("{target}-sentinel-{i}.{target}-sentinel-headless:26379"))
                .collect()
        };
        if attr.kind == Attribute::SentinelUrl {
            // Celery's (kombu's) form: one `sentinel://` URL per sentinel,
            // with the nodes' password where they require one.
            let password = def
                .env
                .contains_key(REDIS_PASSWORD_ENV)
                .then(|| def.parameters.args.get("password"))
                .flatten()
                .map(|a| self.eval(target, consumer_host, &a.value, fx, diags, depth + 1));
            let mut out = Pieces::new();
            for (i, s) in list.iter().enumerate() {
                let sep = if i == 0 { "" } else { ";" };
                match &password {
                    Some(p) => {
                        out.push(Out::Text(format_smolstr!("{sep}sentinel://:")));
                        out.extend(p.iter().cloned());
                        out.push(Out::Text(format_smolstr!("@{s}")));
                    }
                    None => out.push(Out::Text(format_smolstr!("{sep}sentinel://{s}"))),
                }
            }
            return Some(normalize(out));
        }
        Some(smallvec::smallvec![Out::Text(list.join(",").into())])
    }

    /// `secret.NAME`: the secret, never its value.
    fn secret(&self, name: &Ident) -> Option<Pieces> {
        let secret = self.stack.secrets.get(&name.name)?;
        Some(smallvec::smallvec![Out::secret(
            name.name.clone(),
            secret.env_name.clone(),
            secret.optional,
        )])
    }

    /// A Patroni cluster's endpoint as a consumer reaches it: the HAProxy
    /// beside it. `None` for an attribute built from these (`url`).
    fn patroni_endpoint(&self, target: &Name, attr: &Attribute) -> Option<Pieces> {
        // The HAProxy beside the consumer: the primary's endpoint, or the
        // replicas' for reads. `url` and `read_url` are built from these.
        let read = matches!(attr, Attribute::ReadHost | Attribute::ReadAddress);
        let host = Added::Haproxy.name(target);
        let port = if read {
            PATRONI_REPLICA_PORT
        } else {
            PATRONI_PRIMARY_PORT
        };
        match attr {
            Attribute::Host | Attribute::ReadHost => Some(smallvec::smallvec![Out::Text(host)]),
            Attribute::Port | Attribute::Ports(_) => Some(smallvec::smallvec![Out::Text(
                Name::new(itoa::Buffer::new().format(port))
            )]),
            Attribute::Address | Attribute::ReadAddress => Some(smallvec::smallvec![Out::Text(
                format_smolstr!("{host}:{port}")
            )]),
            _ => None,
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn external_attr(
        &self,
        target: &Name,
        ext: &ExternalDef,
        attr: &Attr,
        r: &Reference,
        fx: &mut Effects,
        diags: &mut Diagnostics,
        depth: usize,
    ) -> Option<Pieces> {
        let name = attr.name.name.as_str();
        let expr = match attr.kind {
            Attribute::Url => ext.url.as_ref(),
            Attribute::ReadUrl => ext.read_url.as_ref().or(ext.url.as_ref()),
            Attribute::PublicUrl => ext.public_url.as_ref().or(ext.url.as_ref()),
            Attribute::Host | Attribute::ReadHost => ext.host.as_ref(),
            Attribute::Port => {
                return ext
                    .port
                    .as_ref()
                    .map(|p| {
                        smallvec::smallvec![Out::Text(Name::new(
                            itoa::Buffer::new().format(p.value)
                        ))]
                    })
                    .or_else(|| {
                        diags.push(missing_external(target, name, r.span, self));
                        None
                    })
            }
            Attribute::Address | Attribute::ReadAddress => {
                let (Some(h), Some(p)) = (&ext.host, &ext.port) else {
                    diags.push(missing_external(target, "host` and `port", r.span, self));
                    return None;
                };
                let mut out = self.eval(target, 0, h, fx, diags, depth + 1);
                out.push(Out::Text(format_smolstr!(":{}", p.value)));
                return Some(normalize(out));
            }
            _ => {
                let declared_external = matches!(
                    self.stack.services.get(target).map(|d| &d.body),
                    Some(ServiceBody::External(_))
                );
                if declared_external {
                    // `check` reported the unknown attribute already.
                    return None;
                }
                None
            }
        };
        match expr {
            Some(e) => Some(self.eval(target, 0, e, fx, diags, depth + 1)),
            None => {
                diags.push(missing_external(target, name, r.span, self));
                None
            }
        }
    }
}

pub(super) fn missing_external(target: &str, attr: &str, span: Span, t: &Topo<'_>) -> Diagnostic {
    Diagnostic::error(
        Code::Unresolvable,
        span,
        format!(
            "external service `{target}` has no `{attr}` in topology `{}`",
            t.topo.name.name
        ),
    )
    .label("not known for a managed service")
    .help(if matches!(attr, "url" | "read_url" | "public_url" | "host" | "port" | "host` and `port") {
        format!("give `external {target}` a `{attr} = ...`")
    } else {
        format!(
            "a managed service is known by `url`, `read_url`, `public_url`, `host` and `port` only; refer to `{target}.url`, or write the value here"
        )
    })
}

/// `PREFIXhost:port`, inline when it is short, the port written by `itoa`
/// (a `format!` is a `String`, grown once or twice, and its formatting
/// machinery cost more than the join, for thousands of URLs). An
/// IPv6 address is bracketed, as in `grammar::host_port`.
pub(super) fn host_port(prefix: &str, host: &str, port: u16) -> Name {
    let mut s = smol_str::SmolStrBuilder::new();
    s.push_str(prefix);
    if host.contains(':') {
        s.push('[');
        s.push_str(host);
        s.push(']');
    } else {
        s.push_str(host);
    }
    s.push(':');
    s.push_str(itoa::Buffer::new().format(port));
    s.finish()
}

/// A service a reference reaches, and how: on the consumer's host or by
/// address, or through an operator's Services.
#[derive(Clone, Copy)]
struct Reached<'a> {
    target: &'a Name,
    def: &'a ServiceDef,
    host: &'a HostDef,
    /// The host of the service that reaches it, by index.
    consumer: usize,
    placement: &'a Placement<'a>,
    /// On the consumer's own host: by name, on the container's port.
    local: bool,
    /// Run by a Kubernetes operator, which answers on its own Services.
    operator: bool,
    /// The reference.
    span: Span,
}

impl Reached<'_> {
    fn fail(&self, msg: String, label: &str, help: String) -> Diagnostic {
        Diagnostic::error(Code::Unresolvable, self.span, msg)
            .label(label.to_string())
            .help(help)
    }

    /// The host name (or address) to connect to; `read`: the read endpoint.
    fn hostname(&self, read: bool, diags: &mut Diagnostics) -> Option<Name> {
        let target = self.target;
        if self.operator {
            return Some(format_smolstr!(
                "{target}-{}",
                if read { "ro" } else { "rw" }
            ));
        }
        if self.local {
            return Some(self.target.clone());
        }
        match &self.host.address {
            Some(a) => Some(Name::new(&a.value)),
            None => {
                diags.push(
                    self.fail(
                        format!(
                            "`{target}` runs on host `{}`, which has no address",
                            self.host.name.name
                        ),
                        "another host connects here",
                        format!("give host `{}` an `address = \"...\"`", self.host.name.name),
                    )
                    .with_secondary(self.host.name.span, "host declared here"),
                );
                None
            }
        }
    }

    /// The port `name` (else the first) as the consumer connects to it; a
    /// port reached by address is published on its host.
    fn port(&self, name: Option<&str>, fx: &mut Effects, diags: &mut Diagnostics) -> Option<u16> {
        let target = self.target;
        let port = match name {
            Some(n) => self.def.ports.get(n),
            None => self.def.ports.values().next(),
        };
        let Some(port) = port else {
            if name.is_some() {
                // An unknown port name was reported by `check`.
                return None;
            }
            diags.push(self.fail(
                format!("service `{target}` declares no port"),
                "no port to connect to",
                format!("declare one in `{target}`: `port NAME = NUMBER`"),
            ));
            return None;
        };
        let endpoint = self.placement.endpoint(Some(&port.name.name))?;
        if self.local {
            Some(endpoint.container)
        } else {
            let key = PublishedPort::new(self.target, self.placement.host, &port.name.name);
            fx.publishes.insert(key, Reader::Host(self.consumer));
            Some(endpoint.published)
        }
    }
}
