//! The typed model: what a .stack file means, after lowering and before topologies
//! are resolved. Definitions are partial (every field optional) so that a kind, a
//! service, a topology override and a per-host override can be laid over each other
//! (`ServiceDef::overlay`) before the result is read as one `Service`.

use std::ops::Deref;
use std::sync::Arc;

use crate::base::{IndexMap, Name};

use crate::diag::Span;
use crate::syntax::Ident;

mod ha;
mod service;
mod topology;

pub use ha::*;
pub use service::*;
pub use topology::*;

/// A value with the span it was written at.
#[derive(Debug, Clone, PartialEq)]
pub struct Sp<T> {
    pub value: T,
    pub span: Span,
}

impl<T> Sp<T> {
    pub fn new(value: T, span: Span) -> Sp<T> {
        Sp { value, span }
    }
}

/// A string-valued expression: literal text and references, concatenated.
#[derive(Debug, Clone, PartialEq)]
pub struct Expr {
    pub pieces: Vec<Piece>,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Piece {
    Text(Name),
    /// Boxed: a piece is most often text, and a reference is several names.
    Ref(Box<Reference>),
}

/// `db.url`, `secret.jwt`, `self.port`, `db.ports.http`: what a reference
/// names, as its shape says (decided once, where it is lowered; `check`
/// decides whether that exists), and where it was written.
#[derive(Debug, Clone, PartialEq)]
pub struct Reference {
    pub target: RefTarget,
    /// Names past what the shape takes (`db.url.x`): an error of `check`.
    pub extra: Vec<Ident>,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub enum RefTarget {
    /// `secret.NAME` (`None`: `secret` alone).
    Secret(Option<Ident>),
    /// `SERVICE.ATTRIBUTE` (`self`: the value's own service; `None`: the
    /// service alone).
    Service { service: Ident, attr: Option<Attr> },
}

/// An attribute of a service a reference names, as written and as meant.
#[derive(Debug, Clone, PartialEq)]
pub struct Attr {
    pub name: Ident,
    pub kind: Attribute,
}

/// What a reference asks of a service (`schema::ATTRIBUTES` documents each).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attribute {
    Host,
    ReadHost,
    Port,
    /// `ports.NAME` (`None`: `ports` alone).
    Ports(Option<Ident>),
    Address,
    ReadAddress,
    Url,
    ReadUrl,
    PublicUrl,
    Sentinels,
    SentinelUrl,
    MasterName,
    /// A parameter of the service's kind.
    Param,
}

impl Attribute {
    /// Whether using it needs the service running: a start-order edge.
    /// `public_url` and parameters do not (a browser, not the service, uses
    /// them).
    pub fn at_run_time(&self) -> bool {
        !matches!(self, Attribute::PublicUrl | Attribute::Param)
    }

    /// Whether it is the read endpoint's (the replicas', where there are some).
    pub fn reads(&self) -> bool {
        matches!(
            self,
            Attribute::ReadHost | Attribute::ReadAddress | Attribute::ReadUrl
        )
    }

    /// Whether it is reached by the service's address (a host or a port).
    pub fn by_address(&self) -> bool {
        matches!(
            self,
            Attribute::Host
                | Attribute::Port
                | Attribute::Ports(_)
                | Attribute::Address
                | Attribute::Url
                | Attribute::ReadHost
                | Attribute::ReadAddress
                | Attribute::ReadUrl
        )
    }
}

impl Reference {
    /// The reference as written: `db.ports.http`.
    pub fn text(&self) -> String {
        let mut path: Vec<&Ident> = Vec::new();
        match &self.target {
            RefTarget::Secret(name) => path.extend(name),
            RefTarget::Service { service, attr } => {
                path.push(service);
                if let Some(attr) = attr {
                    path.push(&attr.name);
                    if let Attribute::Ports(Some(port)) = &attr.kind {
                        path.push(port);
                    }
                }
            }
        }
        path.extend(&self.extra);
        let mut out = String::new();
        if matches!(self.target, RefTarget::Secret(_)) {
            out.push_str("secret");
        }
        for ident in path {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(&ident.name);
        }
        out
    }
}

impl Expr {
    pub fn references(&self) -> impl Iterator<Item = &Reference> {
        self.pieces.iter().filter_map(|p| match p {
            Piece::Ref(r) => Some(&**r),
            Piece::Text(_) => None,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Stateless,
    Stateful,
    /// Runs to completion (a migration, a seed, a scheduled job).
    Task,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Restart {
    No,
    Always,
    OnFailure,
    UnlessStopped,
}

impl Restart {
    pub fn as_compose(self) -> &'static str {
        match self {
            Restart::No => "no",
            Restart::Always => "always",
            Restart::OnFailure => "on-failure",
            Restart::UnlessStopped => "unless-stopped",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Http,
    Tcp,
    Udp,
}

/// How the cluster's Prometheus finds what to scrape (Kubernetes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Scrape {
    /// A Prometheus Operator `PodMonitor` per service with metrics.
    #[default]
    PodMonitor,
    /// The `prometheus.io/scrape`, `port` and `path` pod annotations.
    Annotations,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Platform {
    Compose,
    Kubernetes,
}

/// Milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Duration(pub u64);

/// Bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Size(pub u64);

/// Millicores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Cpu(pub u64);

#[derive(Debug, Clone, PartialEq)]
pub struct SecretDef {
    pub name: Ident,
    /// The environment variable that carries it: the name in upper case.
    pub env_name: Name,
    /// An optional secret may be left empty; a required one stops `docker compose up`.
    pub optional: bool,
    /// `stackc secrets init` may make a random value for it (a password of
    /// the stack's own), or not (a third party's credential: the user
    /// brings it).
    pub generate: bool,
    pub description: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct KindDef {
    pub name: Ident,
    pub parent: Option<Ident>,
    pub def: ServiceDef,
    pub from_stdlib: bool,
}

/// A managed service: only its URLs are known.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ExternalDef {
    pub url: Option<Expr>,
    pub read_url: Option<Expr>,
    pub public_url: Option<Expr>,
    pub host: Option<Expr>,
    pub port: Option<Sp<u16>>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ServiceBody {
    Workload(Box<ServiceDef>),
    External(Box<ExternalDef>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct ServiceDecl {
    pub name: Ident,
    pub kind: Option<Ident>,
    pub body: ServiceBody,
}

/// A whole lowered stack.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Stack {
    pub name: String,
    /// Where `stack NAME` names it (none: the name is the file's).
    pub name_span: Option<Span>,
    pub secrets: IndexMap<Name, SecretDef>,
    pub kinds: IndexMap<Name, KindDef>,
    pub services: IndexMap<Name, ServiceDecl>,
    pub topologies: IndexMap<Name, TopologyDef>,
}
