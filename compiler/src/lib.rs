//! stackc: compiles a `.stack` file into the infrastructure files of each of its
//! topologies. See `docs/ARCHITECTURE.md` for the stages.
//!
//! ```text
//! text ──parse──▶ syntax::File ──lower──▶ model::Stack ──check──▶ Checked
//!      ──plan──▶ plan::Plan ──targets──▶ Vec<Artifact>   (pipeline: no IO)
//! emit: Vec<Artifact> ──▶ files on disk (atomic, never clobbers)
//! ```

pub mod base;
pub mod check;
pub mod cli;
pub mod diag;
pub mod emit;
pub mod format;
pub mod grammar;
pub mod graph;
pub mod lower;
pub mod lsp;
pub mod model;
pub mod options;
pub mod par;
pub mod pipeline;
pub mod plan;
pub mod report;
pub mod review;
pub mod schedule;
pub mod schema;
pub mod secrets;
pub mod stdlib;
pub mod syntax;
pub mod targets;
pub mod why;

pub use options::Options;
pub use pipeline::{analyze, compile, Analysis, Compilation, Disposal, SourceText};
