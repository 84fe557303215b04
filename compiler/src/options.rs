//! What a compilation needs besides the source text: read by the pipeline,
//! the targets (names and paths written into files) and the output (whose a
//! topology's directory is).

/// What a compilation needs besides the source text.
#[derive(Debug, Clone)]
pub struct Options {
    /// The name of the source file as written in headers and diagnostics.
    pub source_name: String,
    /// Only these topologies (all when empty).
    pub topologies: Vec<String>,
    /// The stack's directory as seen from a generated compose file's directory, for
    /// relative build contexts and mounts (`../../..` for the default `out/`).
    pub source_dir_from_compose: String,
    /// The source file's path from the output directory (`../app.stack` for
    /// the default `out/`): how a topology's manifest says whose it is.
    pub source_from_out: String,
}

impl Options {
    /// The source as generated files name it: its file name only, so that the
    /// same input gives the same bytes on every machine and in every directory.
    pub fn output_name(&self) -> &str {
        std::path::Path::new(&self.source_name)
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or(&self.source_name)
    }
}
