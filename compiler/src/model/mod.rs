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
    Ref(Reference),
}

/// `db.url`, `secret.jwt`, `self.port`: a dotted path and where it was written.
#[derive(Debug, Clone, PartialEq)]
pub struct Reference {
    pub path: Vec<Ident>,
    pub span: Span,
}

impl Expr {
    pub fn references(&self) -> impl Iterator<Item = &Reference> {
        self.pieces.iter().filter_map(|p| match p {
            Piece::Ref(r) => Some(r),
            Piece::Text(_) => None,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Stateless,
    Stateful,
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
