//! Diagnostics: spans into source files, the renderer-neutral `Diagnostic`, and its
//! renderings (human text through miette, JSON for machines).
//!
//! Every stage reports problems by pushing a `Diagnostic` into a `Diagnostics` list and
//! carries on; only the command line and (later) the language server render them.

use std::fmt;
use std::sync::Arc;

use serde::Serialize;

/// Index of a source file in a [`SourceMap`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct FileId(pub u32);

/// A byte range in one source file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Span {
    pub file: FileId,
    pub start: u32,
    pub end: u32,
}

impl Span {
    pub fn new(file: FileId, start: usize, end: usize) -> Span {
        Span {
            file,
            start: start as u32,
            end: end as u32,
        }
    }

    /// The smallest span that covers both.
    pub fn to(self, other: Span) -> Span {
        Span {
            file: self.file,
            start: self.start.min(other.start),
            end: self.end.max(other.end),
        }
    }
}

/// A source file: its display name and text.
#[derive(Debug, Clone)]
pub struct SourceFile {
    pub name: String,
    pub text: Arc<str>,
    /// The byte offset where each line starts, made the first time a position
    /// is asked for: every later one is a binary search, so that reporting
    /// thousands of diagnostics costs no scan of the file each.
    lines: std::sync::OnceLock<Vec<usize>>,
}

impl SourceFile {
    fn line_starts(&self) -> &[usize] {
        self.lines.get_or_init(|| {
            std::iter::once(0)
                .chain(self.text.match_indices('\n').map(|(i, _)| i + 1))
                .collect()
        })
    }

    /// Where a zero-based line starts, if the file has it.
    pub fn line_start(&self, line: usize) -> Option<usize> {
        self.line_starts().get(line).copied()
    }

    /// The zero-based line that holds a byte offset, and where it starts.
    pub fn line_of(&self, offset: usize) -> (usize, usize) {
        let starts = self.line_starts();
        let line = starts.partition_point(|&s| s <= offset).saturating_sub(1);
        (line, starts[line])
    }
}

/// All source files of one compilation: the user's file and the stdlib files.
#[derive(Debug, Clone, Default)]
pub struct SourceMap {
    files: Vec<SourceFile>,
}

impl SourceMap {
    pub fn add(&mut self, name: impl Into<String>, text: impl Into<Arc<str>>) -> FileId {
        self.files.push(SourceFile {
            name: name.into(),
            text: text.into(),
            lines: std::sync::OnceLock::new(),
        });
        FileId(self.files.len() as u32 - 1)
    }

    pub fn get(&self, id: FileId) -> &SourceFile {
        &self.files[id.0 as usize]
    }

    pub fn files(&self) -> impl Iterator<Item = (FileId, &SourceFile)> {
        self.files
            .iter()
            .enumerate()
            .map(|(i, f)| (FileId(i as u32), f))
    }

    /// The length in characters of the line that holds a byte offset.
    pub fn line_len(&self, file: FileId, offset: u32) -> usize {
        let f = self.get(file);
        let text = &f.text;
        let offset = (offset as usize).min(text.len());
        let (line, start) = f.line_of(offset);
        let end = f
            .line_starts()
            .get(line + 1)
            .map_or(text.len(), |next| next - 1);
        text.get(start..end).map_or(0, |l| l.chars().count())
    }

    /// One-based line and column (in characters) of a byte offset.
    pub fn line_col(&self, file: FileId, offset: u32) -> (usize, usize) {
        let f = self.get(file);
        let offset = (offset as usize).min(f.text.len());
        let (line, start) = f.line_of(offset);
        let col = f.text.get(start..offset).map_or(0, |s| s.chars().count()) + 1;
        (line + 1, col)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

/// A labelled span of a diagnostic.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Label {
    pub span: Span,
    pub message: String,
}

/// A change of the input that resolves a diagnostic, for an editor's quick
/// fix: its edits, applied together.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Fix {
    /// What the fix does, as the editor lists it: "Replace with `10s`".
    pub title: String,
    /// The fix to apply first (an editor's "fix this" applies it alone).
    pub preferred: bool,
    pub edits: Vec<Edit>,
}

/// Text that replaces a span (an empty span inserts; an empty text deletes,
/// and an editor removes the lines an entry leaves empty).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Edit {
    pub span: Span,
    pub text: String,
}

/// One problem found in the input, independent of how it is shown.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Diagnostic {
    pub code: Code,
    pub severity: Severity,
    pub message: String,
    /// The main location; its label says what is wrong there.
    pub primary: Label,
    /// Other places that explain the problem (the first definition of a duplicate,
    /// the other steps of a cycle).
    pub secondary: Vec<Label>,
    pub help: Option<String>,
    /// The changes that resolve it, when they are certain enough to offer.
    pub fixes: Vec<Fix>,
}

impl Diagnostic {
    pub fn error(code: Code, span: Span, message: impl Into<String>) -> Diagnostic {
        let message = message.into();
        Diagnostic {
            code,
            severity: code.default_severity(),
            primary: Label {
                span,
                message: String::new(),
            },
            message,
            secondary: Vec::new(),
            help: None,
            fixes: Vec::new(),
        }
    }

    pub fn label(mut self, label: impl Into<String>) -> Diagnostic {
        self.primary.message = label.into();
        self
    }

    pub fn with_secondary(mut self, span: Span, label: impl Into<String>) -> Diagnostic {
        self.secondary.push(Label {
            span,
            message: label.into(),
        });
        self
    }

    pub fn help(mut self, help: impl Into<String>) -> Diagnostic {
        self.help = Some(help.into());
        self
    }

    /// Offers `text` in place of `span` (preferred: the likely intent).
    pub fn fix_replace(
        mut self,
        title: impl Into<String>,
        span: Span,
        text: impl Into<String>,
    ) -> Diagnostic {
        self.fixes.push(Fix {
            title: title.into(),
            preferred: self.fixes.is_empty(),
            edits: vec![Edit {
                span,
                text: text.into(),
            }],
        });
        self
    }

    /// Offers to delete `span` (an entry: an editor removes the lines it
    /// leaves empty).
    pub fn fix_delete(self, title: impl Into<String>, span: Span) -> Diagnostic {
        self.fix_replace(title, span, "")
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// The list every stage pushes into.
#[derive(Debug, Default, Clone)]
pub struct Diagnostics {
    items: Vec<Diagnostic>,
}

impl Diagnostics {
    pub fn push(&mut self, d: Diagnostic) {
        self.items.push(d);
    }

    pub fn has_errors(&self) -> bool {
        self.items.iter().any(Diagnostic::is_error)
    }

    /// Whether some text does not parse (a bad escape parses).
    pub fn has_syntax_errors(&self) -> bool {
        self.items.iter().any(|d| d.code == Code::Syntax)
    }

    /// The number of errors so far (warnings not counted).
    pub fn error_count(&self) -> usize {
        self.items.iter().filter(|d| d.is_error()).count()
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub fn extend(&mut self, other: Diagnostics) {
        self.items.extend(other.items);
    }

    /// Sorted by position, duplicates removed: the same problem found in two
    /// topologies is reported once.
    /// Each diagnostic whose primary place is outside `user`'s file (in the
    /// stdlib) but which names a place in it: that place first, where the
    /// user changes something, and the other as the second label.
    pub fn user_first(&mut self, user: FileId) {
        for d in &mut self.items {
            if d.primary.span.file == user {
                continue;
            }
            if let Some(i) = d.secondary.iter().position(|l| l.span.file == user) {
                std::mem::swap(&mut d.primary, &mut d.secondary[i]);
            }
        }
    }

    pub fn finish(mut self) -> Vec<Diagnostic> {
        self.items.sort_by(|a, b| {
            (a.primary.span, a.code, &a.message).cmp(&(b.primary.span, b.code, &b.message))
        });
        self.items.dedup();
        self.items
    }
}

/// A did-you-mean suggestion: the closest candidate, if it is close enough.
pub fn suggest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let mut best: Option<(f64, &str)> = None;
    // The word a newcomer brings from another tool, when ours is a candidate.
    let synonym = SYNONYMS
        .iter()
        .find(|(theirs, _)| theirs.eq_ignore_ascii_case(name))
        .map(|(_, ours)| *ours);
    for candidate in candidates {
        if synonym == Some(candidate) {
            return Some(candidate);
        }
        if candidate == name {
            continue;
        }
        let score = strsim::normalized_damerau_levenshtein(name, candidate);
        let prefix = candidate.starts_with(name) || name.starts_with(candidate);
        let score = if prefix { score.max(0.7) } else { score };
        if score >= 0.6 && best.is_none_or(|(s, _)| score > s) {
            best = Some((score, candidate));
        }
    }
    best.map(|(_, c)| c)
}

/// The words of other tools (compose, Kubernetes, Ansible, Terraform) and
/// stackc's for the same thing: a name a newcomer writes, and the one to
/// suggest when it is among the names expected there.
pub const SYNONYMS: &[(&str, &str)] = &[
    // Hosts.
    ("server", "host"),
    ("servers", "host"),
    ("node", "host"),
    ("machine", "host"),
    ("vm", "host"),
    ("vps", "host"),
    ("ip", "address"),
    ("ip_address", "address"),
    ("addr", "address"),
    ("services", "run"),
    ("containers", "run"),
    ("apps", "run"),
    // Services.
    ("environment", "env"),
    ("variables", "env"),
    ("vars", "env"),
    ("ports", "port"),
    ("expose", "port"),
    ("volumes", "volume"),
    ("mounts", "mount"),
    ("healthcheck", "health"),
    ("health_check", "health"),
    ("restart_policy", "restart"),
    ("scale", "replicas"),
    ("instances", "replicas"),
    ("routes", "route"),
    ("location", "route"),
    // Kinds.
    ("postgresql", "postgres"),
    ("pg", "postgres"),
    ("pgsql", "postgres"),
    ("valkey", "redis"),
];

/// How many names a help lists before it says how many more there are: a
/// file of thousands of kinds must not give a help of thousands of names.
const LISTED: usize = 20;

/// `the {what} are: a, b, c` (the first names, then how many more).
pub fn listing<'a>(what: &str, names: impl IntoIterator<Item = &'a str>) -> String {
    let names: Vec<&str> = names.into_iter().collect();
    let shown = names[..names.len().min(LISTED)].join(", ");
    match names.len().saturating_sub(LISTED) {
        0 => format!("the {what} are: {shown}"),
        more => format!("the {what} are: {shown} and {more} more"),
    }
}

impl Diagnostic {
    /// The help of a name that is not known: "did you mean `x`?" when one of
    /// `known` is close to it, else `otherwise`'s.
    pub fn suggesting<'a>(
        self,
        name: &str,
        known: impl IntoIterator<Item = &'a str>,
        otherwise: impl FnOnce() -> String,
    ) -> Diagnostic {
        match suggest(name, known) {
            Some(s) => {
                let span = self.primary.span;
                self.help(format!("did you mean `{s}`?")).fix_replace(
                    format!("Replace with `{s}`"),
                    span,
                    s,
                )
            }
            None => self.help(otherwise()),
        }
    }
}

macro_rules! codes {
    ($( $(#[doc = $doc:literal])+ $name:ident = $code:literal, $sev:ident, $slug:literal; )*) => {
        /// Stable diagnostic codes. A code is never reused for another meaning;
        /// `stackc explain CODE` prints the doc comment.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Code { $( $(#[doc = $doc])+ $name, )* }

        impl Code {
            pub const ALL: &'static [Code] = &[$(Code::$name,)*];

            pub fn as_str(self) -> &'static str {
                match self { $(Code::$name => $code,)* }
            }

            /// A short kebab-case name for the code.
            pub fn slug(self) -> &'static str {
                match self { $(Code::$name => $slug,)* }
            }

            pub fn default_severity(self) -> Severity {
                match self { $(Code::$name => Severity::$sev,)* }
            }

            /// The one-paragraph summary: the code's doc comment.
            pub fn summary(self) -> &'static str {
                match self { $(Code::$name => concat!($($doc, "\n"),+),)* }
            }

            /// The long explanation, with a wrong and a right example:
            /// `compiler/explain/CODE.md` (docs/errors.md is made of them).
            pub fn explanation(self) -> &'static str {
                match self { $(Code::$name => include_str!(concat!("../../explain/", $code, ".md")),)* }
            }
        }
    };
}

codes! {
    /// The file does not follow the grammar of the .stack language.
    Syntax = "E0001", Error, "syntax";
    /// A string contains an escape sequence the language does not know.
    BadEscape = "E0002", Error, "bad-escape";
    /// A name refers to nothing: no service, kind, secret, host or attribute has it.
    UnknownName = "E0101", Error, "unknown-name";
    /// Two definitions share one name where names must be unique.
    DuplicateName = "E0102", Error, "duplicate-name";
    /// A referenced secret is not declared with `secret NAME`.
    UndeclaredSecret = "E0103", Error, "undeclared-secret";
    /// A name must be a valid DNS label (lowercase letters, digits and `-`, at most 63
    /// characters, starting and ending with a letter or digit), because it becomes a
    /// host name in the generated files.
    InvalidDnsName = "E0104", Error, "invalid-dns-name";
    /// An environment variable name (or a secret name, which becomes one) must match
    /// `[A-Za-z_][A-Za-z0-9_]*`.
    InvalidEnvName = "E0105", Error, "invalid-env-name";
    /// A reference names an attribute that the service does not have.
    UnknownAttribute = "E0106", Error, "unknown-attribute";
    /// A field is not known for this kind of block.
    UnknownField = "E0201", Error, "unknown-field";
    /// A value has the wrong type for its field.
    WrongType = "E0202", Error, "wrong-type";
    /// A value is of the right type but not allowed (out of range, not one of the
    /// allowed choices).
    InvalidValue = "E0203", Error, "invalid-value";
    /// A required field is missing.
    MissingField = "E0204", Error, "missing-field";
    /// A field is written twice in one block.
    DuplicateField = "E0205", Error, "duplicate-field";
    /// Services depend on each other in a cycle, so none of them can start first.
    DependencyCycle = "E0301", Error, "dependency-cycle";
    /// A dependency asks to wait until its target is healthy, but the target has no
    /// health check.
    HealthGateWithoutCheck = "E0302", Error, "health-gate-without-check";
    /// A kind extends a chain of kinds longer than stackc follows (64).
    KindChainTooDeep = "E0303", Error, "kind-chain-too-deep";
    /// A service is neither placed on a host of the topology nor external there.
    NotPlaced = "E0401", Error, "not-placed";
    /// A service is placed on a host that cannot run it (a GPU service on a host
    /// without GPU).
    CannotRunOnHost = "E0402", Error, "cannot-run-on-host";
    /// Two services publish the same port on one host.
    PortConflict = "E0403", Error, "port-conflict";
    /// A stateful service has more than one replica but no HA mode: the replicas
    /// would each have their own data.
    StatefulReplicasWithoutHa = "E0404", Error, "stateful-replicas-without-ha";
    /// A service with several replicas on one host publishes a fixed host port; only
    /// one replica can bind it.
    ReplicasPublishPort = "E0405", Error, "replicas-publish-port";
    /// The topology asks for something no target of this stackc emits yet.
    NotSupported = "E0406", Error, "not-supported";
    /// A stateful service is published on all interfaces of its host.
    PublicStateful = "W0407", Warning, "public-stateful";
    /// A reference cannot be resolved in a topology (no public URL there, an external
    /// service without that attribute).
    Unresolvable = "E0408", Error, "unresolvable";
    /// A placed service names the same host twice, or the same service is run twice on
    /// one host.
    DuplicatePlacement = "E0409", Error, "duplicate-placement";
    /// The file defines no topology, so `build` has nothing to write.
    NoTopology = "W0410", Warning, "no-topology";
    /// An autoscaler's bounds do not hold: 1 <= min <= replicas <= max.
    AutoscaleBounds = "E0411", Error, "autoscale-bounds";
    /// A disruption budget keeps every pod: `min_available` is not below the
    /// number of replicas, so no voluntary eviction (node drain) can proceed.
    DisruptionBudgetBlocks = "E0412", Error, "disruption-budget-blocks";
    /// A name is not valid where Kubernetes uses it: Service names must start with a
    /// letter (DNS-1035), port names have at most 15 characters, lowercase letters,
    /// digits and `-`, with at least one letter.
    InvalidKubernetesName = "E0413", Error, "invalid-kubernetes-name";
    /// A route leads to a port that is not HTTP: a proxy can only route HTTP there.
    RouteNotHttp = "E0414", Error, "route-not-http";
    /// Two routes of one domain overlap (one prefix starts the other) and neither is
    /// marked `default = true`: which service answers would depend on the proxy.
    OverlappingRoutes = "E0415", Error, "overlapping-routes";
    /// A placement has a `weight`, but the route to it does not use the `weighted`
    /// strategy, so the weight would be ignored.
    WeightWithoutWeightedStrategy = "E0416", Error, "weight-without-weighted-strategy";
    /// A proxy has TLS settings for a domain that no route serves.
    TlsWithoutDomain = "E0417", Error, "tls-without-domain";
    /// HAProxy checks its servers actively, on the service's HTTP health check; the
    /// service has none on the routed port.
    ActiveCheckWithoutHttpHealth = "E0418", Error, "active-check-without-http-health";
    /// An HA setup that fails over less safely than it looks: fewer than 3
    /// sentinels (a failover needs a majority of all sentinels, so losing one of 2
    /// blocks it), an even number of them (4 tolerate no more losses than 3), or a
    /// quorum below a majority (a minority marks the master down).
    FragileFailover = "W0419", Warning, "fragile-failover";
    /// A task (`role = task`) runs to completion, and this says otherwise: a
    /// port, a route, a health check, several replicas or an autoscaler, a
    /// restart after success; or a `schedule` on a service that is not a task,
    /// or a service that waits for a scheduled task, which never completes for
    /// good.
    TaskShape = "E0420", Error, "task-shape";
    /// `stackc check --secrets FILE`: a required secret is not set in the
    /// values file, so `docker compose up` (or `secrets.sh`) would stop.
    SecretNotSet = "W0421", Warning, "secret-not-set";
    /// Production lint: a password, key or token is written into the file as a
    /// literal instead of `secret.NAME`.
    LiteralCredential = "W0601", Warning, "literal-credential";
    /// Production lint: an image without a tag, or tagged `latest`: what runs
    /// changes without the file changing.
    MutableImageTag = "W0602", Warning, "mutable-image-tag";
    /// Production lint: Redis without a password.
    RedisWithoutPassword = "W0603", Warning, "redis-without-password";
    /// Production lint: a public URL served over plain HTTP.
    PublicWithoutTls = "W0604", Warning, "public-without-tls";
    /// Production lint: debug settings or CORS open to every origin.
    DebugSetting = "W0605", Warning, "debug-setting";
    /// Production lint: a service with several replicas and no health check, so
    /// traffic reaches replicas that are not ready.
    ReplicasWithoutReadiness = "W0606", Warning, "replicas-without-readiness";
    /// Production lint: a stateful service without a volume loses its data
    /// with its container.
    StatefulWithoutVolume = "W0607", Warning, "stateful-without-volume";
    /// Production lint: a stdlib kind's default credential left as it is (the
    /// well-known user `postgres`).
    DefaultCredential = "W0608", Warning, "default-credential";
    /// Production lint: a PostgreSQL or Redis server without `backup`: a lost
    /// volume or a wrong write is lost for good.
    StatefulWithoutBackup = "W0609", Warning, "stateful-without-backup";
    /// An environment value cannot be written to an env file so that both
    /// docker-compose and a POSIX shell read back the same string.
    UnrepresentableEnvValue = "E0501", Error, "unrepresentable-env-value";
    /// A route's setting the Kubernetes Ingress controller cannot express exactly.
    IngressCannotExpress = "W0502", Warning, "ingress-cannot-express";
    /// A host's firewall cannot tell a reader of a port by its address (a host
    /// with no IP address, a Prometheus outside the topology): it lets the
    /// port in from anywhere.
    FirewallOpen = "W0503", Warning, "firewall-open";
    /// A service's metrics timing that the Kubernetes scrape annotations
    /// cannot carry.
    ScrapeCannotExpress = "W0504", Warning, "scrape-cannot-express";
    /// stackc failed to write a file it should be able to write: a bug in stackc.
    /// Nothing is written; please report it with the input.
    Internal = "E0900", Error, "internal";
}

/// docs/errors.md: every code's explanation, in code order.
pub fn errors_markdown() -> String {
    let mut out = String::from(
        "# Diagnostic codes\n\n<!-- Generated from compiler/explain/*.md by the test suite (tests/errors.rs); edit those files. -->\n\nEvery diagnostic has a stable code; `stackc explain CODE` prints its entry. Codes are never reused.\n",
    );
    for c in Code::ALL {
        out.push('\n');
        out.push_str(c.explanation().trim_end());
        out.push('\n');
    }
    out
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Code {
    pub fn parse(s: &str) -> Option<Code> {
        Code::ALL
            .iter()
            .copied()
            .find(|c| c.as_str().eq_ignore_ascii_case(s) || c.slug() == s)
    }
}

mod render;

pub use render::{render_human, render_json};

#[cfg(test)]
mod help_tests {
    use super::*;

    /// Another tool's word suggests stackc's, whatever their spelling
    /// distance, but only where stackc's is expected.
    #[test]
    fn a_synonym_suggests_the_word_expected_there() {
        let host = ["address", "gpu", "managed", "run"];
        assert_eq!(suggest("ip", host), Some("address"));
        assert_eq!(suggest("services", host), Some("run"));
        assert_eq!(suggest("Server", ["host", "proxy"]), Some("host"));
        assert_eq!(
            suggest("postgresql", ["postgres", "redis"]),
            Some("postgres")
        );
        // Not expected here: no suggestion from the table.
        assert_eq!(suggest("ip", ["image", "port"]), None);
        // Every word of ours in the table is a real one somewhere: no word
        // maps to itself, and no word is listed twice.
        let mut theirs: Vec<&str> = SYNONYMS.iter().map(|(t, _)| *t).collect();
        theirs.sort_unstable();
        theirs.dedup();
        assert_eq!(theirs.len(), SYNONYMS.len());
        assert!(SYNONYMS.iter().all(|(t, o)| t != o));
    }

    /// A help lists at most `LISTED` names, then how many more; a close name
    /// is suggested instead.
    #[test]
    fn helps_list_a_bounded_number_of_names() {
        let names: Vec<String> = (0..25).map(|i| format!("kind{i}")).collect();
        let listed = listing("kinds", names.iter().map(String::as_str));
        assert!(
            listed.starts_with("the kinds are: kind0, kind1,"),
            "{listed}"
        );
        assert!(listed.ends_with("kind19 and 5 more"), "{listed}");
        assert_eq!(listing("ports", ["http"]), "the ports are: http");
        let d = Diagnostic::error(Code::UnknownName, Span::default(), "unknown").suggesting(
            "kind3x",
            names.iter().map(String::as_str),
            || "none".into(),
        );
        assert_eq!(d.help.as_deref(), Some("did you mean `kind3`?"));
    }
}
