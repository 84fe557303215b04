//! Lowering of services, kinds and overrides: every field of a service.

use crate::base::Name;
use crate::diag::{Code, Diagnostic};
use crate::model::*;
use crate::schema;
use crate::syntax::{Entry, EntryValue, Ident, Value, ValueKind};

use crate::grammar::Place;

use super::{not_a_field, unknown_field, Lower};

impl Lower<'_> {
    pub(super) fn service_def(
        &mut self,
        entries: &[Entry],
        what: &str,
        is_kind: bool,
    ) -> ServiceDef {
        self.duplicates(entries, what);
        let mut def = ServiceDef::default();
        // Each map sized once, to its entries: a map grown by one insert at a
        // time reallocates as it goes, and keeps room for more, in each of a
        // large file's thousands of services.
        let count = |key: &str| entries.iter().filter(|e| e.key.name == key).count();
        def.ports.reserve_exact(count("port"));
        def.routes.reserve_exact(count("route"));
        for e in entries {
            let before = self.diags.error_count();
            self.service_field(&mut def, e, what, is_kind);
            if self.diags.error_count() > before {
                def.rejected.push(e.key.name.clone());
            }
        }
        def
    }

    /// One entry of a service's (or a kind's, or an override's) block: a
    /// block field has its arm here, a `key = value` one in `assignment`.
    pub(super) fn service_field(
        &mut self,
        def: &mut ServiceDef,
        e: &Entry,
        what: &str,
        is_kind: bool,
    ) {
        let key = e.key.name.as_str();
        let labelled = matches!(key, "port" | "volume" | "mount" | "route" | "param");
        if !labelled {
            self.no_label(e);
        }
        self.no_kind(e);
        match key {
            "env" => self.env(def, e),
            "update" => self.update(def, e),
            "resources" => self.resources(def, e),
            "route" => self.route_entry(def, e),
            "param" if is_kind => self.param(def, e),
            "port" => self.port(def, e),
            "volume" => self.volume(def, e),
            "autoscale" => def.scaling.autoscale = Some(Box::new(self.autoscale(e))),
            "metrics" => def.reach.metrics = self.metrics(e).map(Box::new),
            "backup" => def.storage.backup = Some(Box::new(self.backup(e))),
            "mount" => self.mount(def, e),
            "health" => self.health(def, e),
            "ha" => def.replication.ha = self.ha(e).map(Box::new),
            "postgresql" => self.postgresql(def, e),
            _ if schema::SERVICE.has(key) || (is_kind && key == "ha_modes") => {
                if let Some(v) = self.assigned(e) {
                    self.assignment(def, &e.key, v);
                }
            }
            _ => self.argument(def, e, what, is_kind),
        }
    }

    /// A service field written `key = value`: every such field of
    /// `schema::SERVICE` has its arm here (a test writes each).
    fn assignment(&mut self, def: &mut ServiceDef, key: &Ident, v: &Value) {
        match key.name.as_str() {
            "role" => {
                def.role = self.choice(
                    v,
                    &[
                        ("stateless", Role::Stateless),
                        ("stateful", Role::Stateful),
                        ("task", Role::Task),
                    ],
                );
            }
            "image" => {
                let image = self.name_string(v);
                def.image = self.in_grammar(Place::Image, image);
            }
            "build" => def.program.build = self.string(v),
            "command" => def.program.command = self.container_command(v),
            "entrypoint" => def.program.entrypoint = self.container_command(v),
            "public" => def.reach.public = self.names(v),
            "stop_grace_period" => def.lifecycle.stop_grace_period = self.duration(v),
            "pre_stop" => def.lifecycle.pre_stop = self.duration(v),
            "weight" => {
                def.reach.weight = self.integer(v, "a weight");
                if let Some(w) = &def.reach.weight {
                    if w.value == 0 {
                        self.push(
                            Diagnostic::error(
                                Code::InvalidValue,
                                w.span,
                                "a weight of 0 sends no request",
                            )
                            .label("expected 1 or more")
                            .help("remove the placement instead, or give it a weight of 1 or more"),
                        );
                    }
                }
            }
            "min_available" => def.scaling.min_available = self.integer(v, "a pod count"),
            "replicas" => def.replicas = self.integer(v, "a replica count"),
            "restart" => {
                def.lifecycle.restart = self.choice(
                    v,
                    &[
                        ("no", Restart::No),
                        ("always", Restart::Always),
                        ("on-failure", Restart::OnFailure),
                        ("unless-stopped", Restart::UnlessStopped),
                    ],
                );
            }
            "depends_on" => def.lifecycle.depends_on = self.depends_on(v),
            "schedule" => def.lifecycle.schedule = self.schedule(v),
            "url" => def.reach.url = self.expr(v),
            "read_url" => def.reach.read_url = self.expr(v),
            "public_url" => def.reach.public_url = self.expr(v),
            "ha_modes" => def.replication.ha_modes = self.names(v),
            "roles" => {
                def.reach.roles = self.choice(
                    v,
                    &[
                        ("shared", Roles::Shared),
                        ("per_service", Roles::PerService),
                    ],
                );
            }
            _ => {
                let d = not_a_field(key, &schema::SERVICE);
                self.push(d);
            }
        }
    }

    /// `env { NAME = value ... }`.
    fn env(&mut self, def: &mut ServiceDef, e: &Entry) {
        let entries = self.block(e);
        def.env.reserve_exact(entries.len());
        for (f, v) in self.settings(entries, "an env block") {
            if let Some(value) = self.expr(v) {
                def.env.insert(
                    f.key.name.clone(),
                    Assignment {
                        key: f.key.clone(),
                        value,
                    },
                );
            }
        }
    }

    /// `update { max_surge  max_unavailable }`.
    fn update(&mut self, def: &mut ServiceDef, e: &Entry) {
        let entries = self.block(e);
        for (f, v) in self.settings(entries, "an update block") {
            match f.key.name.as_str() {
                "max_surge" => def.scaling.update.max_surge = self.integer(v, "a pod count"),
                "max_unavailable" => {
                    def.scaling.update.max_unavailable = self.integer(v, "a pod count")
                }
                _ => {
                    let d = not_a_field(&f.key, &schema::UPDATE);
                    self.push(d);
                }
            }
        }
    }

    /// `resources { cpu memory cpu_limit memory_limit gpu }`.
    fn resources(&mut self, def: &mut ServiceDef, e: &Entry) {
        let entries = self.block(e);
        for (f, v) in self.settings(entries, "resources") {
            let r = &mut def.resources;
            match f.key.name.as_str() {
                "cpu" => r.cpu = self.cpu(v),
                "cpu_limit" => r.cpu_limit = self.cpu(v),
                "memory" => r.memory = self.size(v),
                "memory_limit" => r.memory_limit = self.size(v),
                "gpu" => r.gpu = self.integer(v, "a GPU count"),
                _ => {
                    let d = not_a_field(&f.key, &schema::RESOURCES);
                    self.push(d);
                }
            }
        }
    }

    /// `route "/prefix" ...`, its path checked first.
    fn route_entry(&mut self, def: &mut ServiceDef, e: &Entry) {
        let path = self.name_label(e, "path prefix");
        let Some(path) = self.in_grammar(Place::RoutePath, path) else {
            return;
        };
        let route = self.route(path, e);
        def.routes.insert(route.path.value.clone(), route);
    }

    /// `param NAME [= DEFAULT]` of a kind.
    fn param(&mut self, def: &mut ServiceDef, e: &Entry) {
        let Some(name) = self.ident_label(e, "parameter name") else {
            return;
        };
        if schema::SERVICE.has(&name.name) {
            self.push(
                Diagnostic::error(
                    Code::DuplicateName,
                    name.span,
                    format!("parameter `{}` has the name of a service field", name.name),
                )
                .label("already a field")
                .help("rename the parameter"),
            );
            return;
        }
        let default = match &e.value {
            EntryValue::Assign(v) => self.expr(v),
            EntryValue::None => None,
            EntryValue::Block(_) => {
                self.push(
                                    Diagnostic::error(
                                        Code::WrongType,
                                        e.span(),
                                        "a parameter takes a value, not a block",
                                    )
                                    .label("expected `= value`")
        .help("write `param NAME = DEFAULT`, or `param NAME` for one that services must set"),
                                );
                None
            }
        };
        def.parameters
            .params
            .insert(name.name.clone(), ParamDecl { name, default });
    }

    /// Any other key: a value for a parameter the kind may declare (`check`
    /// decides), else an unknown field.
    fn argument(&mut self, def: &mut ServiceDef, e: &Entry, what: &str, is_kind: bool) {
        // Another tool's name of a field, given a list (`ports = [8000]`): no
        // parameter takes a list, so the name is the mistake, not the value.
        let misnamed = matches!(&e.value, EntryValue::Assign(v) if matches!(v.kind, ValueKind::List(_)))
            && crate::diag::SYNONYMS
                .iter()
                .any(|(theirs, ours)| *theirs == e.key.name.as_str() && schema::SERVICE.has(ours));
        match &e.value {
            // A value for a parameter that the kind may declare; `check` decides.
            EntryValue::Assign(v) if e.label.is_none() && !misnamed => {
                if let Some(value) = self.expr(v) {
                    def.parameters.args.insert(
                        e.key.name.clone(),
                        Assignment {
                            key: e.key.clone(),
                            value,
                        },
                    );
                }
            }
            _ => {
                let mut known: Vec<&str> = schema::SERVICE.names().collect();
                if is_kind {
                    known.extend(schema::KIND_ONLY.names());
                }
                let d = unknown_field(&e.key, what, &known, Some(&schema::SERVICE));
                self.push(d);
            }
        }
    }

    /// `route "/prefix"` or `route "/prefix" { strategy = least_conn  rate = 10 ... }`.
    fn route(&mut self, path: Sp<Name>, e: &Entry) -> RouteDef {
        let mut r = RouteDef {
            path,
            port: None,
            strategy: None,
            websocket: false,
            default: false,
            strip_prefix: false,
            options: crate::base::Part::default(),
        };
        let entries = self.block(e);
        for (f, v) in self.settings(entries, "a route") {
            match f.key.name.as_str() {
                "port" => r.port = self.name(v),
                "domain" => {
                    let domain = self.string(v);
                    r.options.domain = self.in_grammar(Place::Domain, domain);
                }
                "strategy" => {
                    r.strategy = self.choice(
                        v,
                        &[
                            ("round_robin", Strategy::RoundRobin),
                            ("least_conn", Strategy::LeastConn),
                            ("ip_hash", Strategy::IpHash),
                            ("weighted", Strategy::Weighted),
                        ],
                    )
                }
                "rate" => r.options.rate = self.integer(v, "requests per second"),
                "burst" => r.options.burst = self.integer(v, "a request count"),
                "limit_status" => r.options.limit_status = self.integer(v, "an HTTP status"),
                "connect_timeout" => r.options.connect_timeout = self.duration(v),
                "send_timeout" => r.options.send_timeout = self.duration(v),
                "read_timeout" => r.options.read_timeout = self.duration(v),
                "body_size" => r.options.body_size = self.size(v),
                "websocket" => r.websocket = self.boolean(v).unwrap_or(false),
                "default" => r.default = self.boolean(v).unwrap_or(false),
                "strip_prefix" => r.strip_prefix = self.boolean(v).unwrap_or(false),
                _ => {
                    let d = not_a_field(&f.key, &schema::ROUTE);
                    self.push(d);
                }
            }
        }
        r
    }

    /// A percent of requests, 1 to 99.
    fn error_rate(&mut self, v: &Value) -> Option<Sp<u32>> {
        let p = self.integer::<u32>(v, "a percentage")?;
        if p.value == 0 || p.value >= 100 {
            self.push(
                Diagnostic::error(
                    Code::InvalidValue,
                    p.span,
                    format!("an error rate of {}% never alerts usefully", p.value),
                )
                .label("expected a percent from 1 to 99")
                .help("the percent of requests answered 5xx above which it alerts, like `5`"),
            );
            return None;
        }
        Some(p)
    }

    fn metrics(&mut self, e: &Entry) -> Option<MetricsDef> {
        let mut m = MetricsDef {
            port: None,
            path: None,
            interval: None,
            timeout: None,
            requests: None,
            status_label: None,
            error_rate: None,
            latency: None,
            latency_p95: None,
            span: e.span(),
        };
        // The fields written, right or wrong: a threshold beside a metric
        // whose name was wrong is not reported again.
        let mut written: Vec<&str> = Vec::new();
        match &e.value {
            EntryValue::Assign(v) => m.port = Some(self.name(v)?),
            EntryValue::Block(entries) => {
                for (f, v) in self.settings(entries, "a metrics block") {
                    written.push(f.key.name.as_str());
                    match f.key.name.as_str() {
                        "port" => m.port = self.name(v),
                        "path" => {
                            let path = self.string(v);
                            m.path = self.in_grammar(Place::MetricsPath, path);
                        }
                        "interval" => m.interval = self.duration(v),
                        "timeout" => m.timeout = self.duration(v),
                        "requests" | "latency" => {
                            let name = self.string(v);
                            let name = self.in_grammar(Place::MetricName, name);
                            if f.key.name == "requests" {
                                m.requests = name;
                            } else {
                                m.latency = name;
                            }
                        }
                        "status_label" => {
                            let label = self.string(v);
                            m.status_label = self.in_grammar(Place::PromLabel, label);
                        }
                        "error_rate" => m.error_rate = self.error_rate(v),
                        "latency_p95" => m.latency_p95 = self.duration(v),
                        _ => {
                            let d = not_a_field(&f.key, &schema::METRICS);
                            self.push(d);
                        }
                    }
                }
            }
            EntryValue::None => {}
        }
        if let (Some(i), Some(t)) = (&m.interval, &m.timeout) {
            if t.value > i.value {
                self.push(
                    Diagnostic::error(
                        Code::InvalidValue,
                        t.span,
                        "the scrape timeout is longer than the scrape interval",
                    )
                    .label("Prometheus rejects this")
                    .help("make `timeout` at most `interval`"),
                );
            }
        }
        for (at, field, of) in [
            (
                m.error_rate.as_ref().map(|s| s.span),
                "error_rate",
                "requests",
            ),
            (
                m.status_label.as_ref().map(|s| s.span),
                "status_label",
                "requests",
            ),
            (
                m.latency_p95.as_ref().map(|s| s.span),
                "latency_p95",
                "latency",
            ),
        ] {
            if !written.contains(&of) {
                self.alert_needs(at, field, of);
            }
        }
        Some(m)
    }

    /// A threshold without the metric it is of.
    fn alert_needs(&mut self, at: Option<crate::diag::Span>, field: &str, of: &str) {
        if let Some(span) = at {
            self.push(
                Diagnostic::error(
                    Code::MissingField,
                    span,
                    format!("`{field}` needs `{of}`, the metric it reads"),
                )
                .label(format!("no `{of}` in this metrics block"))
                .help(format!(
                    "name the metric: `{of} = \"{}\"`",
                    if of == "requests" {
                        "http_requests_total"
                    } else {
                        "http_request_duration_seconds"
                    }
                )),
            );
        }
    }

    /// `volume NAME = "/path"` or `volume NAME { path = "/path"  size = 10Gi }`.
    pub(super) fn volume(&mut self, def: &mut ServiceDef, e: &Entry) {
        let Some(name) = self.ident_label(e, "volume name") else {
            return;
        };
        let (mut path, mut size) = (None, None);
        match &e.value {
            EntryValue::Assign(v) => path = self.string(v),
            EntryValue::Block(entries) => {
                for (f, v) in self.settings(entries, "a volume") {
                    match f.key.name.as_str() {
                        "path" => path = self.string(v),
                        "size" => size = self.size(v),
                        _ => {
                            let d = not_a_field(&f.key, &schema::VOLUME);
                            self.push(d);
                        }
                    }
                }
            }
            EntryValue::None => {}
        }
        if matches!(e.value, EntryValue::None) {
            self.push(
                Diagnostic::error(
                    Code::MissingField,
                    e.span(),
                    "a volume needs a path in the container",
                )
                .label("expected a path")
                .help(format!(
                    "write `volume {} = \"/path/in/container\"`",
                    name.name
                )),
            );
            return;
        }
        let path = self.in_grammar(Place::FilePath, path);
        if let Some(path) = &path {
            self.absolute_path(path);
        }
        def.storage
            .volumes
            .insert(name.name.clone(), VolumeDef { name, path, size });
    }

    pub(super) fn absolute_path(&mut self, path: &Sp<String>) {
        if !path.value.starts_with('/') {
            self.push(
                Diagnostic::error(
                    Code::InvalidValue,
                    path.span,
                    format!("`{}` is not an absolute path in the container", path.value),
                )
                .label("expected a path starting with `/`")
                .help(format!(
                    "write `\"/{}\"`",
                    path.value.trim_start_matches("./")
                )),
            );
        }
    }

    pub(super) fn port(&mut self, def: &mut ServiceDef, e: &Entry) {
        let Some(name) = self.ident_label(e, "port name") else {
            return;
        };
        let mut port = PortDef {
            name: name.clone(),
            container: None,
            host: None,
            protocol: None,
            invalid: false,
        };
        match &e.value {
            EntryValue::Assign(v) => {
                port.container = self.port_number(v);
                // Reported already: later stages must not report it missing too.
                port.invalid = port.container.is_none();
            }
            EntryValue::Block(entries) => {
                for (f, v) in self.settings(entries, "a port") {
                    match f.key.name.as_str() {
                        "container" => {
                            port.container = self.port_number(v);
                            port.invalid = port.container.is_none();
                        }
                        "host" => port.host = self.port_number(v),
                        "protocol" => {
                            port.protocol = self.choice(
                                v,
                                &[
                                    ("http", Protocol::Http),
                                    ("tcp", Protocol::Tcp),
                                    ("udp", Protocol::Udp),
                                ],
                            )
                        }
                        _ => {
                            let d = not_a_field(&f.key, &schema::PORT);
                            self.push(d);
                        }
                    }
                }
            }
            EntryValue::None => {
                self.push(
                    Diagnostic::error(Code::MissingField, e.span(), "a port needs a number")
                        .label("expected `= NUMBER`")
                        .help("write `port NAME = NUMBER`"),
                );
            }
        }
        def.ports.insert(name.name, port);
    }

    pub(super) fn mount(&mut self, def: &mut ServiceDef, e: &Entry) {
        let source = self.string_label(e, "host path");
        let Some(source) = self.in_grammar(Place::FilePath, source) else {
            return;
        };
        let mut target = None;
        let mut read_only = false;
        match &e.value {
            EntryValue::Assign(v) => target = self.string(v),
            EntryValue::Block(entries) => {
                for f in entries {
                    self.no_label(f);
                    let Some(v) = self.assigned(f) else { continue };
                    match f.key.name.as_str() {
                        "target" => target = self.string(v),
                        "read_only" => read_only = self.boolean(v).unwrap_or(false),
                        _ => {
                            let d = not_a_field(&f.key, &schema::MOUNT);
                            self.push(d);
                        }
                    }
                }
            }
            EntryValue::None => {}
        }
        let Some(target) = self.in_grammar(Place::FilePath, target) else {
            self.push(
                Diagnostic::error(Code::MissingField, e.span(), "a mount needs a target path")
                    .label("expected `= \"/path/in/container\"`")
                    .help("write `mount \"./host/path\" = \"/path/in/container\"`"),
            );
            return;
        };
        self.absolute_path(&target);
        def.storage.mounts.insert(
            Name::new(&source.value),
            MountDef {
                source,
                target,
                read_only,
            },
        );
    }

    pub(super) fn depends_on(&mut self, v: &Value) -> Option<Sp<Vec<DepDecl>>> {
        let ValueKind::List(items) = &v.kind else {
            self.wrong_type(v, "a list of services");
            return None;
        };
        let mut deps = Vec::new();
        for item in items {
            match &item.kind {
                ValueKind::Path(p) if !p.is_empty() && p.len() <= 2 => {
                    let gate = match p.get(1).map(|i| i.name.as_str()) {
                        None => Gate::Default,
                        Some("healthy") => Gate::Healthy,
                        Some("started") => Gate::Started,
                        Some(other) => {
                            let d = Diagnostic::error(
                                Code::InvalidValue,
                                item.span,
                                format!("`{other}` is not a dependency condition"),
                            )
                            .label("expected `healthy` or `started`")
                            .help("write `db`, `db.healthy` (wait for its health check) or `db.started`");
                            self.push(d);
                            continue;
                        }
                    };
                    deps.push(DepDecl {
                        service: p[0].clone(),
                        gate,
                        span: item.span,
                    });
                }
                _ => self.wrong_type(item, "a service name, `NAME.healthy` or `NAME.started`"),
            }
        }
        Some(Sp::new(deps, v.span))
    }
}
