//! What the language server knows of a file's names: every definition
//! (services, kinds, secrets, topologies, hosts) and every reference to one,
//! with spans, read from the syntax trees of the file and the stdlib. Built on
//! every change: it needs only the parser, so it works while the file has
//! other errors.

use rustc_hash::FxHashMap;

use crate::base::Name;
use crate::diag::{FileId, Span};
use crate::syntax::{Entry, EntryValue, File, Label, TemplatePart, Value, ValueKind};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SymbolKind {
    Service,
    Kind,
    Secret,
    Topology,
    Host,
}

impl SymbolKind {
    pub fn word(self) -> &'static str {
        match self {
            SymbolKind::Service => "service",
            SymbolKind::Kind => "kind",
            SymbolKind::Secret => "secret",
            SymbolKind::Topology => "topology",
            SymbolKind::Host => "host",
        }
    }
}

/// What a name means: its kind, its name, and for a host its topology.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Target {
    pub kind: SymbolKind,
    pub name: Name,
    pub topology: Option<Name>,
}

#[derive(Debug, Clone)]
pub struct Definition {
    pub target: Target,
    /// The name.
    pub span: Span,
    /// The whole entry.
    pub entry: Span,
    /// For a service, its kind; for a kind, its parent.
    pub kind_of: Option<Name>,
    /// For a host: the hosts inside a topology are its children.
    pub children: Vec<Definition>,
}

#[derive(Debug, Clone)]
pub struct Reference {
    pub target: Target,
    pub span: Span,
}

#[derive(Debug, Default)]
pub struct Index {
    pub definitions: Vec<Definition>,
    pub references: Vec<Reference>,
    /// Where each target's first definition is: (definition, child).
    targets: FxHashMap<Target, (usize, Option<usize>)>,
}

impl Index {
    /// Builds the index of the files (the stdlib's, then the user's).
    pub fn build(files: &[(FileId, &File)]) -> Index {
        let mut index = Index::default();
        for (_, file) in files {
            for e in &file.entries {
                index.define(e);
            }
        }
        // References are resolved by lookup: a file may define thousands of names.
        for (i, d) in index.definitions.iter().enumerate() {
            index.targets.entry(d.target.clone()).or_insert((i, None));
            for (c, child) in d.children.iter().enumerate() {
                index
                    .targets
                    .entry(child.target.clone())
                    .or_insert((i, Some(c)));
            }
        }
        for (_, file) in files {
            for e in &file.entries {
                index.refer_top(e);
            }
        }
        index
    }

    fn define(&mut self, e: &Entry) {
        let Some(Label::Ident(name)) = e.label.as_deref() else {
            return;
        };
        let kind = match e.key.name.as_str() {
            "service" | "external" => SymbolKind::Service,
            "kind" => SymbolKind::Kind,
            "secret" => SymbolKind::Secret,
            "topology" => SymbolKind::Topology,
            _ => return,
        };
        let mut def = Definition {
            target: Target {
                kind,
                name: name.name.clone(),
                topology: None,
            },
            span: name.span,
            entry: e.span(),
            kind_of: e.kind.as_ref().map(|k| k.name.clone()),
            children: Vec::new(),
        };
        if kind == SymbolKind::Topology {
            if let EntryValue::Block(entries) = &e.value {
                for h in entries.iter().filter(|h| h.key.name == "host") {
                    if let Some(Label::Ident(host)) = h.label.as_deref() {
                        def.children.push(Definition {
                            target: Target {
                                kind: SymbolKind::Host,
                                name: host.name.clone(),
                                topology: Some(name.name.clone()),
                            },
                            span: host.span,
                            entry: h.span(),
                            kind_of: None,
                            children: Vec::new(),
                        });
                    }
                }
            }
        }
        self.definitions.push(def);
    }

    /// The definition of a target.
    pub fn definition(&self, target: &Target) -> Option<&Definition> {
        let &(i, child) = self.targets.get(target)?;
        let d = self.definitions.get(i)?;
        match child {
            None => Some(d),
            Some(c) => d.children.get(c),
        }
    }

    fn exists(&self, kind: SymbolKind, name: &str, topology: Option<&str>) -> bool {
        self.definition(&Target {
            kind,
            name: Name::new(name),
            topology: topology.map(Name::new),
        })
        .is_some()
    }

    fn push(&mut self, kind: SymbolKind, name: &str, span: Span, topology: Option<&str>) {
        self.references.push(Reference {
            target: Target {
                kind,
                name: Name::new(name),
                topology: topology.map(Name::new),
            },
            span,
        });
    }

    fn refer_top(&mut self, e: &Entry) {
        let topology = match (e.key.name.as_str(), e.label.as_deref()) {
            ("topology", Some(Label::Ident(t))) => Some(t.name.clone()),
            _ => None,
        };
        if let Some(k) = &e.kind {
            if matches!(e.key.name.as_str(), "service" | "kind") {
                self.push(SymbolKind::Kind, &k.name, k.span, None);
            }
        }
        self.refer_body(e, topology.as_deref());
    }

    /// References inside an entry: labels that name services (`run`,
    /// `override`, `external`), values that are references, and hosts named in
    /// a topology.
    fn refer_body(&mut self, e: &Entry, topology: Option<&str>) {
        if topology.is_some() && e.key.name != "topology" {
            if let Some(Label::Ident(l)) = e.label.as_deref() {
                if matches!(e.key.name.as_str(), "run" | "override" | "external")
                    && self.exists(SymbolKind::Service, &l.name, None)
                {
                    self.push(SymbolKind::Service, &l.name, l.span, None);
                }
            }
        }
        match &e.value {
            EntryValue::Assign(v) => self.refer_value(v, topology),
            EntryValue::Block(entries) => {
                for c in entries {
                    self.refer_body(c, topology);
                }
            }
            EntryValue::None => {}
        }
    }

    fn refer_value(&mut self, v: &Value, topology: Option<&str>) {
        match &v.kind {
            ValueKind::List(items) => {
                for i in items {
                    self.refer_value(i, topology);
                }
            }
            ValueKind::Path(path) => self.refer_path(path, topology),
            ValueKind::Str(t) => {
                for part in &t.parts {
                    if let TemplatePart::Interp(path, _) = part {
                        self.refer_path(path, topology);
                    }
                }
            }
            _ => {}
        }
    }

    fn refer_path(&mut self, path: &[crate::syntax::Ident], topology: Option<&str>) {
        let Some(first) = path.first() else { return };
        if first.name == "secret" {
            if let Some(name) = path.get(1) {
                self.push(SymbolKind::Secret, &name.name, name.span, None);
            }
        } else if self.exists(SymbolKind::Service, &first.name, None) {
            self.push(SymbolKind::Service, &first.name, first.span, None);
        } else if path.len() == 1 && self.exists(SymbolKind::Host, &first.name, topology) {
            self.push(SymbolKind::Host, &first.name, first.span, topology);
        }
    }

    /// The target named at a byte offset of a file: a definition's name or a
    /// reference.
    pub fn at(&self, file: FileId, offset: u32) -> Option<(Target, Span)> {
        let inside = |s: &Span| s.file == file && s.start <= offset && offset <= s.end;
        self.definitions
            .iter()
            .flat_map(|d| std::iter::once(d).chain(&d.children))
            .find(|d| inside(&d.span))
            .map(|d| (d.target.clone(), d.span))
            .or_else(|| {
                self.references
                    .iter()
                    .find(|r| inside(&r.span))
                    .map(|r| (r.target.clone(), r.span))
            })
    }

    /// Every reference to a target.
    pub fn references_to<'i>(&'i self, target: &'i Target) -> impl Iterator<Item = &'i Reference> {
        self.references.iter().filter(move |r| &r.target == target)
    }
}
