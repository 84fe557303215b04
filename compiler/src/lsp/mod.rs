//! The language server, `stackc lsp`: JSON-RPC over standard input and output
//! (lsp-server and lsp-types, as rust-analyzer does).
//!
//! Every open file is analysed by the same pipeline as `stackc check`, from the
//! editor's unsaved text: diagnostics (same codes, spans and help, with the
//! related locations), hover (a reference's value in each topology and host, a
//! service's placements, a kind parameter's or a field's documentation), go
//! to definition, references and rename (services, kinds, secrets, topologies,
//! hosts, from `index`; `prepareRename` names what would change, and a name
//! the kind of name does not allow or another definition has is refused),
//! completion (fields with their documentation, names, attributes, secrets),
//! document symbols, formatting (`format`) and quick fixes (`fixes`: a
//! suggested name or unit, double quotes, a duplicate removed, a secret declared).
//!
//! A file being typed keeps what it can: the entries around a syntax error are
//! parsed (`syntax::recover`), so outline, hover and navigation stay; completion
//! takes names from the last version that parsed, and hover takes values from
//! the last version without errors (saying so).

mod completion;
mod definition;
mod document;
mod features;
mod fixes;
pub mod index;
mod text;
pub mod transport;

use std::collections::HashMap;

use lsp_server::{ErrorCode, Message, Notification, Request, RequestId, Response};
use lsp_types::notification::{
    DidChangeTextDocument, DidCloseTextDocument, DidOpenTextDocument, Notification as _,
    PublishDiagnostics,
};
use lsp_types::request::{
    CodeActionRequest, Completion, DocumentSymbolRequest, Formatting, GotoDefinition, HoverRequest,
    PrepareRenameRequest, References, Rename, Request as _,
};
use lsp_types::{
    CodeActionProviderCapability, CompletionOptions, HoverProviderCapability, InitializeParams,
    OneOf, PositionEncodingKind, PublishDiagnosticsParams, RenameOptions, ServerCapabilities,
    TextDocumentSyncCapability, TextDocumentSyncKind, Uri,
};

use crate::diag::{Diagnostic, FileId, SourceMap};
use crate::plan::Plan;
use crate::syntax::File;
use document::Document;

pub use text::Encoding;

/// Everything the features need of one version of a file.
pub struct Analysis {
    pub sources: SourceMap,
    pub user: FileId,
    pub trees: Vec<(FileId, File)>,
    /// Made by the first request that needs it: diagnostics do not, so an
    /// edit's are published without it.
    index: std::sync::OnceLock<index::Index>,
    pub plan: Option<Plan>,
    pub diagnostics: Vec<Diagnostic>,
    /// The names of the last version that parsed, when this one does not.
    pub fallback: Option<std::sync::Arc<Analysis>>,
    /// The last version with a plan, when this one has errors.
    pub planned: Option<std::sync::Arc<Analysis>>,
}

impl Analysis {
    /// Parses and indexes the file with the stdlib, then runs the whole check
    /// (the plan only when the file has no errors).
    pub fn new(name: &str, text: String) -> Analysis {
        let options = crate::options::Options {
            source_name: name.to_string(),
            topologies: Vec::new(),
            source_dir_from_compose: "../../..".into(),
            source_from_out: format!("../{name}"),
        };
        let a = crate::pipeline::analyze(text, &options, crate::pipeline::Disposal::KeepTrees);
        Analysis {
            sources: a.sources,
            user: a.user,
            trees: a.trees,
            index: std::sync::OnceLock::new(),
            plan: a.plan,
            diagnostics: a.diagnostics,
            fallback: None,
            planned: None,
        }
    }

    /// The definitions and references of the trees.
    pub fn index(&self) -> &index::Index {
        self.index.get_or_init(|| {
            let refs: Vec<(FileId, &File)> = self.trees.iter().map(|(id, f)| (*id, f)).collect();
            index::Index::build(&refs)
        })
    }

    /// The user's file, with its line index.
    pub fn file(&self) -> &crate::diag::SourceFile {
        self.sources.get(self.user)
    }

    /// Whether the file parsed (it may have other errors).
    pub fn parsed(&self) -> bool {
        !self
            .diagnostics
            .iter()
            .any(|d| d.code == crate::diag::Code::Syntax || d.code == crate::diag::Code::BadEscape)
    }

    /// The plan to show values from: this version's, or else the last
    /// version's without errors (`true`: an earlier version's).
    pub fn plan_or_last(&self) -> Option<(&Plan, bool)> {
        match (&self.plan, &self.planned) {
            (Some(plan), _) => Some((plan, false)),
            (None, Some(last)) => last.plan.as_ref().map(|p| (p, true)),
            (None, None) => None,
        }
    }

    /// The analysis whose names to use: this one, or the last that parsed.
    pub fn names(&self) -> &Analysis {
        match &self.fallback {
            Some(f) if !self.parsed() => f,
            _ => self,
        }
    }
}

/// Runs the server on standard input and output until the client exits: the
/// exit code is 0 after `shutdown` then `exit`, else 1 (LSP's rule).
pub fn run_stdio() -> i32 {
    let (sender, receiver) = std::sync::mpsc::channel();
    // Frames are read on a thread of their own, so that the server sees
    // which messages wait while it analyses (and analyses only the latest
    // text). The thread ends with the input; the process does not wait for it.
    std::thread::spawn(move || {
        let stdin = std::io::stdin();
        let mut reader = transport::Reader::new(stdin.lock());
        loop {
            match reader.read() {
                Ok(Some(incoming)) => {
                    if sender.send(incoming).is_err() {
                        break;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    eprintln!("stackc lsp: cannot read standard input: {e}");
                    break;
                }
            }
        }
    });
    let stdout = std::io::stdout();
    match serve(&receiver, &mut stdout.lock()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("stackc lsp: cannot write standard output: {e}");
            1
        }
    }
}

/// A thread that drops what it is sent, until the sender is dropped.
fn dropper<T: Send + 'static>() -> std::sync::mpsc::Sender<T> {
    let (sender, receiver) = std::sync::mpsc::channel::<T>();
    std::thread::spawn(move || receiver.into_iter().for_each(drop));
    sender
}

/// Where the conversation is (LSP's lifecycle).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Before `initialize`: every other request is refused.
    Starting,
    Running,
    /// After `shutdown`: requests are refused until `exit`.
    ShutDown,
}

/// Serves one client: the frames `incoming` receives, the answers written to
/// `out`, until `exit` (or the end of the input). Returns the exit code.
pub fn serve(
    incoming: &std::sync::mpsc::Receiver<transport::Incoming>,
    out: &mut impl std::io::Write,
) -> std::io::Result<i32> {
    use std::sync::mpsc::TryRecvError;
    let mut server = Server {
        docs: HashMap::new(),
        encoding: Encoding::Utf16,
        retired: Vec::new(),
        dropper: dropper(),
        phase: Phase::Starting,
        dirty: Vec::new(),
    };
    loop {
        // The diagnostics of changed documents once no message waits: edits
        // that queued up while one was analysed are analysed once, at their
        // latest text.
        let next = match incoming.try_recv() {
            Ok(next) => Some(next),
            Err(TryRecvError::Empty) => {
                server.publish_dirty(out)?;
                incoming.recv().ok()
            }
            Err(TryRecvError::Disconnected) => None,
        };
        let Some(next) = next else {
            // The client went away without `exit`.
            return Ok(i32::from(server.phase != Phase::ShutDown));
        };
        match next {
            transport::Incoming::Invalid { id, code, message } => {
                transport::write(out, &transport::error_response(id, code, &message))?;
            }
            transport::Incoming::Message(Message::Request(req)) => {
                let response = server.request(req);
                transport::write(out, &message_json(Message::Response(response)))?;
            }
            transport::Incoming::Message(Message::Notification(n)) => {
                if n.method == "exit" {
                    return Ok(i32::from(server.phase != Phase::ShutDown));
                }
                if server.phase == Phase::Running {
                    for out_n in server.notification(n) {
                        transport::write(out, &message_json(Message::Notification(out_n)))?;
                    }
                }
            }
            transport::Incoming::Message(Message::Response(_)) => {}
        }
    }
}

/// A message as the JSON it is written as.
fn message_json(message: Message) -> serde_json::Value {
    let mut value = serde_json::to_value(message).unwrap_or_default();
    if let Some(object) = value.as_object_mut() {
        object.insert("jsonrpc".into(), "2.0".into());
    }
    value
}

/// The answer to `initialize`: the capabilities, with the position encoding
/// the client offered (UTF-8 when it can, LSP 3.17), else UTF-16.
fn initialize(params: serde_json::Value) -> Result<(Encoding, serde_json::Value), String> {
    let params: InitializeParams = serde_json::from_value(params).map_err(|e| e.to_string())?;
    let offered = params
        .capabilities
        .general
        .as_ref()
        .and_then(|g| g.position_encodings.as_ref());
    let encoding = if offered.is_some_and(|e| e.contains(&PositionEncodingKind::UTF8)) {
        Encoding::Utf8
    } else {
        Encoding::Utf16
    };
    let capabilities = ServerCapabilities {
        position_encoding: Some(match encoding {
            Encoding::Utf8 => PositionEncodingKind::UTF8,
            Encoding::Utf16 => PositionEncodingKind::UTF16,
        }),
        text_document_sync: Some(TextDocumentSyncCapability::Kind(
            TextDocumentSyncKind::INCREMENTAL,
        )),
        hover_provider: Some(HoverProviderCapability::Simple(true)),
        definition_provider: Some(OneOf::Left(true)),
        references_provider: Some(OneOf::Left(true)),
        rename_provider: Some(OneOf::Right(RenameOptions {
            prepare_provider: Some(true),
            work_done_progress_options: Default::default(),
        })),
        document_symbol_provider: Some(OneOf::Left(true)),
        document_formatting_provider: Some(OneOf::Left(true)),
        code_action_provider: Some(CodeActionProviderCapability::Simple(true)),
        completion_provider: Some(CompletionOptions {
            trigger_characters: Some(vec![".".into()]),
            ..CompletionOptions::default()
        }),
        ..ServerCapabilities::default()
    };
    let result = serde_json::json!({
        "capabilities": capabilities,
        "serverInfo": { "name": "stackc", "version": env!("CARGO_PKG_VERSION") },
    });
    Ok((encoding, result))
}

struct Server {
    docs: HashMap<String, Document>,
    encoding: Encoding,
    phase: Phase,
    /// Documents changed since their diagnostics were published.
    dirty: Vec<Uri>,
    /// Analyses replaced by newer ones, handed to `dropper` after the answer
    /// is sent: freeing a large file's analysis takes about as long as a
    /// check, which the next edit need not wait for.
    retired: Vec<std::sync::Arc<Analysis>>,
    dropper: std::sync::mpsc::Sender<Vec<std::sync::Arc<Analysis>>>,
}

/// The name a document is analysed under: its path for a `file:` URI.
fn name_of(uri: &Uri) -> String {
    let s = uri.as_str();
    s.strip_prefix("file://").unwrap_or(s).to_string()
}

/// Whether a document is the stdlib's copy that go-to-definition opened: the
/// server neither analyses it (its kinds would be defined twice) nor reports
/// on it.
fn is_stdlib_copy(uri: &Uri) -> bool {
    std::path::Path::new(&name_of(uri)).starts_with(features::stdlib_dir())
}

impl Server {
    fn analysis(&mut self, uri: &Uri) -> Option<std::sync::Arc<Analysis>> {
        if is_stdlib_copy(uri) {
            return None;
        }
        let doc = self.docs.get_mut(uri.as_str())?;
        if doc.analysis.is_none() {
            let mut analysis = Analysis::new(&name_of(uri), doc.text());
            if analysis.plan.is_none() {
                analysis.planned = doc.last_planned.clone();
            }
            if !analysis.parsed() {
                analysis.fallback = doc.last_parsed.clone();
            }
            let analysis = std::sync::Arc::new(analysis);
            if analysis.parsed() {
                self.retired
                    .extend(doc.last_parsed.replace(analysis.clone()));
            }
            if analysis.plan.is_some() {
                self.retired
                    .extend(doc.last_planned.replace(analysis.clone()));
            }
            doc.analysis = Some(analysis);
        }
        doc.analysis.clone()
    }

    fn publish(&mut self, uri: Uri) -> Option<Notification> {
        let diagnostics = match self.analysis(&uri) {
            Some(analysis) => features::diagnostics(&analysis, &uri, self.encoding),
            None if is_stdlib_copy(&uri) => Vec::new(),
            None => return None,
        };
        Some(Notification::new(
            PublishDiagnostics::METHOD.to_string(),
            PublishDiagnosticsParams {
                uri,
                diagnostics,
                version: None,
            },
        ))
    }

    /// Publishes the diagnostics of every changed document.
    fn publish_dirty(&mut self, out: &mut impl std::io::Write) -> std::io::Result<()> {
        for uri in std::mem::take(&mut self.dirty) {
            if let Some(n) = self.publish(uri) {
                transport::write(out, &message_json(Message::Notification(n)))?;
            }
        }
        let retired = std::mem::take(&mut self.retired);
        if !retired.is_empty() {
            // If the thread is gone, the analyses are dropped here instead.
            let _ = self.dropper.send(retired);
        }
        Ok(())
    }

    /// Marks a document's diagnostics to publish, once.
    fn changed(&mut self, uri: Uri) {
        if !self.dirty.contains(&uri) {
            self.dirty.push(uri);
        }
    }

    fn notification(&mut self, n: Notification) -> Vec<Notification> {
        match n.method.as_str() {
            DidOpenTextDocument::METHOD => {
                let Ok(p) =
                    serde_json::from_value::<lsp_types::DidOpenTextDocumentParams>(n.params)
                else {
                    return Vec::new();
                };
                self.docs.insert(
                    p.text_document.uri.as_str().to_string(),
                    Document::open(&p.text_document.text),
                );
                self.changed(p.text_document.uri);
                Vec::new()
            }
            DidChangeTextDocument::METHOD => {
                let Ok(p) =
                    serde_json::from_value::<lsp_types::DidChangeTextDocumentParams>(n.params)
                else {
                    return Vec::new();
                };
                if let Some(doc) = self.docs.get_mut(p.text_document.uri.as_str()) {
                    for change in p.content_changes {
                        self.retired.extend(doc.change(change, self.encoding));
                    }
                }
                self.changed(p.text_document.uri);
                Vec::new()
            }
            DidCloseTextDocument::METHOD => {
                let Ok(p) =
                    serde_json::from_value::<lsp_types::DidCloseTextDocumentParams>(n.params)
                else {
                    return Vec::new();
                };
                self.docs.remove(p.text_document.uri.as_str());
                self.dirty.retain(|u| u != &p.text_document.uri);
                // Clear the file's diagnostics.
                vec![Notification::new(
                    PublishDiagnostics::METHOD.to_string(),
                    PublishDiagnosticsParams {
                        uri: p.text_document.uri,
                        diagnostics: Vec::new(),
                        version: None,
                    },
                )]
            }
            _ => Vec::new(),
        }
    }

    fn request(&mut self, req: Request) -> Response {
        let id = req.id.clone();
        let refuse = |code: ErrorCode, message: &str| {
            Response::new_err(id.clone(), code as i32, message.into())
        };
        match (self.phase, req.method.as_str()) {
            (Phase::Starting, "initialize") => {
                return match initialize(req.params) {
                    Ok((encoding, result)) => {
                        self.encoding = encoding;
                        self.phase = Phase::Running;
                        Response::new_ok(id, result)
                    }
                    Err(e) => refuse(ErrorCode::InvalidParams, &e),
                };
            }
            (Phase::Starting, _) => {
                return refuse(
                    ErrorCode::ServerNotInitialized,
                    "the server is not initialized",
                );
            }
            (Phase::ShutDown, _) => {
                return refuse(
                    ErrorCode::InvalidRequest,
                    "the server is shut down: only `exit` is taken",
                );
            }
            (Phase::Running, "initialize") => {
                return refuse(
                    ErrorCode::InvalidRequest,
                    "the server is initialized already",
                );
            }
            (Phase::Running, "shutdown") => {
                self.phase = Phase::ShutDown;
                return Response::new_ok(id, serde_json::Value::Null);
            }
            (Phase::Running, _) => {}
        }
        match self.dispatch(req) {
            Ok(value) => Response {
                id,
                result: Some(value),
                error: None,
            },
            Err((code, message)) => Response::new_err(id, code as i32, message),
        }
    }

    fn dispatch(&mut self, req: Request) -> Result<serde_json::Value, (ErrorCode, String)> {
        fn params<P: serde::de::DeserializeOwned>(
            req: Request,
        ) -> Result<(RequestId, P), (ErrorCode, String)> {
            let id = req.id.clone();
            serde_json::from_value(req.params)
                .map(|p| (id, p))
                .map_err(|e| (ErrorCode::InvalidParams, e.to_string()))
        }
        let enc = self.encoding;
        let json = |v: serde_json::Result<serde_json::Value>| {
            v.map_err(|e| (ErrorCode::InternalError, e.to_string()))
        };
        let missing = || {
            (
                ErrorCode::InvalidParams,
                "the document is not open".to_string(),
            )
        };
        match req.method.as_str() {
            HoverRequest::METHOD => {
                let (_, p) = params::<lsp_types::HoverParams>(req)?;
                let uri = p.text_document_position_params.text_document.uri;
                let a = self.analysis(&uri).ok_or_else(missing)?;
                let pos = p.text_document_position_params.position;
                json(serde_json::to_value(features::hover(&a, pos, enc)))
            }
            GotoDefinition::METHOD => {
                let (_, p) = params::<lsp_types::GotoDefinitionParams>(req)?;
                let uri = p.text_document_position_params.text_document.uri;
                let a = self.analysis(&uri).ok_or_else(missing)?;
                let pos = p.text_document_position_params.position;
                json(serde_json::to_value(definition::definition(
                    &a, &uri, pos, enc,
                )))
            }
            References::METHOD => {
                let (_, p) = params::<lsp_types::ReferenceParams>(req)?;
                let uri = p.text_document_position.text_document.uri;
                let a = self.analysis(&uri).ok_or_else(missing)?;
                let pos = p.text_document_position.position;
                let with_decl = p.context.include_declaration;
                json(serde_json::to_value(features::references(
                    &a, &uri, pos, with_decl, enc,
                )))
            }
            PrepareRenameRequest::METHOD => {
                let (_, p) = params::<lsp_types::TextDocumentPositionParams>(req)?;
                let a = self.analysis(&p.text_document.uri).ok_or_else(missing)?;
                let range = features::prepare_rename(&a, p.position, enc)
                    .map_err(|m| (ErrorCode::InvalidParams, m))?;
                json(serde_json::to_value(range))
            }
            Rename::METHOD => {
                let (_, p) = params::<lsp_types::RenameParams>(req)?;
                let uri = p.text_document_position.text_document.uri;
                let a = self.analysis(&uri).ok_or_else(missing)?;
                let pos = p.text_document_position.position;
                let edit = features::rename(&a, &uri, pos, &p.new_name, enc)
                    .map_err(|m| (ErrorCode::InvalidParams, m))?;
                json(serde_json::to_value(edit))
            }
            DocumentSymbolRequest::METHOD => {
                let (_, p) = params::<lsp_types::DocumentSymbolParams>(req)?;
                let a = self.analysis(&p.text_document.uri).ok_or_else(missing)?;
                json(serde_json::to_value(features::symbols(&a, enc)))
            }
            Formatting::METHOD => {
                let (_, p) = params::<lsp_types::DocumentFormattingParams>(req)?;
                let a = self.analysis(&p.text_document.uri).ok_or_else(missing)?;
                json(serde_json::to_value(features::formatting(&a, enc)))
            }
            CodeActionRequest::METHOD => {
                let (_, p) = params::<lsp_types::CodeActionParams>(req)?;
                // The fixes travel in the diagnostics' data: the document
                // need only be open.
                let uri = p.text_document.uri.clone();
                self.analysis(&uri).ok_or_else(missing)?;
                json(serde_json::to_value(features::code_actions(&uri, &p)))
            }
            Completion::METHOD => {
                let (_, p) = params::<lsp_types::CompletionParams>(req)?;
                let uri = p.text_document_position.text_document.uri;
                let a = self.analysis(&uri).ok_or_else(missing)?;
                let pos = p.text_document_position.position;
                json(serde_json::to_value(completion::completion(&a, pos, enc)))
            }
            other => Err((ErrorCode::MethodNotFound, format!("unknown method {other}"))),
        }
    }
}
