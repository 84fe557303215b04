//! Rendering diagnostics: for people (miette's report, with a window of the
//! source around each span) and for machines (JSON).

use super::*;

#[derive(Debug)]
struct MietteView<'a> {
    diag: &'a Diagnostic,
    /// `None` when a label is too far right to draw a snippet (see `render_human`).
    source: Option<Window<'a>>,
    code: String,
}

/// A source file as miette reads it: only the lines around each span. miette
/// finds a span's lines by scanning its source from the start, so that each
/// diagnostic of a large file cost a scan of the whole file; here it scans a
/// window of lines found through the file's line index, and the line numbers
/// are shifted back to the file's.
#[derive(Debug)]
struct Window<'a> {
    file: &'a SourceFile,
}

impl miette::SourceCode for Window<'_> {
    fn read_span<'b>(
        &'b self,
        span: &miette::SourceSpan,
        before: usize,
        after: usize,
    ) -> Result<Box<dyn miette::SpanContents<'b> + 'b>, miette::MietteError> {
        let text: &'b str = &self.file.text;
        let starts = self.file.line_starts();
        let end = (span.offset() + span.len()).min(text.len());
        let (first, _) = self.file.line_of(span.offset().min(text.len()));
        let (last, _) = self.file.line_of(end);
        // A line more on each side than miette asks for: it decides on them
        // exactly as it would with the whole file.
        let lo_line = first.saturating_sub(before + 1);
        let hi_line = (last + after + 2).min(starts.len());
        let lo = starts[lo_line];
        let hi = starts.get(hi_line).copied().unwrap_or(text.len());
        let window: &'b str = &text[lo..hi];
        let inner_span = miette::SourceSpan::new((span.offset() - lo).into(), span.len());
        let inner = window.read_span(&inner_span, before, after)?;
        Ok(Box::new(miette::MietteSpanContents::new_named(
            self.file.name.clone(),
            inner.data(),
            miette::SourceSpan::new((inner.span().offset() + lo).into(), inner.span().len()),
            inner.line() + lo_line,
            inner.column(),
            // miette joins two labels into one snippet when the first's line
            // plus this count reaches the second's line. Its own count (of
            // lines from the start of the text) joins nearly every pair; the
            // lines the snippet holds, and `JOIN_GAP` more, join only labels
            // a few lines apart, and a long block's first and last lines
            // (`elide_long_labels`) are drawn apart, its middle left out.
            inner.data().iter().filter(|&&b| b == b'\n').count() + JOIN_GAP,
        )))
    }
}

/// Lines longer than this are not drawn as snippets: miette pads labels with
/// format widths, which panic past 65535, and prints whole lines, which would be
/// unreadable anyway.
const MAX_SNIPPET_COLUMN: usize = 1000;

impl fmt::Display for MietteView<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.diag.message)
    }
}

impl std::error::Error for MietteView<'_> {}

impl miette::Diagnostic for MietteView<'_> {
    fn code<'b>(&'b self) -> Option<Box<dyn fmt::Display + 'b>> {
        Some(Box::new(&self.code))
    }

    fn severity(&self) -> Option<miette::Severity> {
        Some(match self.diag.severity {
            Severity::Error => miette::Severity::Error,
            Severity::Warning => miette::Severity::Warning,
        })
    }

    fn help<'b>(&'b self) -> Option<Box<dyn fmt::Display + 'b>> {
        self.diag
            .help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        self.source.as_ref().map(|s| s as &dyn miette::SourceCode)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = miette::LabeledSpan> + '_>> {
        self.source.as_ref()?;
        let file = self.diag.primary.span.file;
        let primary = std::iter::once(&self.diag.primary).map(|l| {
            miette::LabeledSpan::new_primary_with_span(
                Some(l.message.clone()).filter(|m| !m.is_empty()),
                to_miette(l.span),
            )
        });
        // miette draws one source per diagnostic: labels in other files are listed
        // in the help text by `render_human` instead.
        let secondary = self
            .diag
            .secondary
            .iter()
            .filter(move |l| l.span.file == file)
            .map(|l| {
                miette::LabeledSpan::new_with_span(Some(l.message.clone()), to_miette(l.span))
            });
        Some(Box::new(primary.chain(secondary)))
    }
}

fn to_miette(span: Span) -> miette::SourceSpan {
    miette::SourceSpan::new(
        (span.start as usize).into(),
        (span.end - span.start) as usize,
    )
}

/// Labels at most this many lines apart share one snippet.
const JOIN_GAP: usize = 2;

/// A label spans at most this many lines in a snippet; a longer one (a whole
/// block) is drawn as its first line and its last, the lines between elided.
const MAX_LABEL_LINES: usize = 6;

/// Cuts each label longer than `MAX_LABEL_LINES` to its first line, and
/// marks its last line with a label of its own: miette draws labels far
/// apart as separate snippets, so the middle of the block is left out.
fn elide_long_labels(sources: &SourceMap, diag: &mut Diagnostic) {
    let mut ends = Vec::new();
    for label in std::iter::once(&mut diag.primary).chain(diag.secondary.iter_mut()) {
        let f = sources.get(label.span.file);
        let (start, end) = (label.span.start as usize, label.span.end as usize);
        let (first, _) = f.line_of(start);
        let (last, last_start) = f.line_of(end.saturating_sub(1).max(start));
        if last - first < MAX_LABEL_LINES {
            continue;
        }
        let first_end = f.text[start..].find('\n').map_or(end, |i| start + i);
        let last_text = &f.text[last_start..end];
        let indent = last_text.len() - last_text.trim_start().len();
        ends.push(Label {
            span: Span::new(label.span.file, last_start + indent, end),
            message: "ends here".into(),
        });
        label.span.end = first_end as u32;
    }
    diag.secondary.extend(ends);
}

/// Renders diagnostics as human-readable text, without colors when `color` is false.
pub fn render_human(sources: &SourceMap, diags: &[Diagnostic], color: bool) -> String {
    let theme = if color {
        miette::GraphicalTheme::unicode()
    } else {
        miette::GraphicalTheme::unicode_nocolor()
    };
    let handler = miette::GraphicalReportHandler::new_themed(theme)
        .with_width(100)
        .with_links(false);
    let mut out = String::new();
    for diag in diags {
        let file = sources.get(diag.primary.span.file);
        let mut diag = diag.clone();
        elide_long_labels(sources, &mut diag);
        for other in diag
            .secondary
            .iter()
            .filter(|l| l.span.file != diag.primary.span.file)
        {
            let f = sources.get(other.span.file);
            let (line, col) = sources.line_col(other.span.file, other.span.start);
            let note = format!("{} ({}:{}:{})", other.message, f.name, line, col);
            diag.help = Some(match diag.help.take() {
                Some(h) => format!("{h}\n{note}"),
                None => note,
            });
        }
        let too_wide = std::iter::once(&diag.primary)
            .chain(&diag.secondary)
            .filter(|l| l.span.file == diag.primary.span.file)
            .any(|l| {
                sources.line_len(l.span.file, l.span.start) > MAX_SNIPPET_COLUMN
                    || sources.line_len(l.span.file, l.span.end) > MAX_SNIPPET_COLUMN
            });
        if too_wide {
            let (line, col) = sources.line_col(diag.primary.span.file, diag.primary.span.start);
            let at = format!("at {}:{line}:{col}: {}", file.name, diag.primary.message);
            diag.help = Some(match diag.help.take() {
                Some(h) => format!("{at}\n{h}"),
                None => at,
            });
        }
        let view = MietteView {
            diag: &diag,
            source: (!too_wide).then_some(Window { file }),
            code: diag.code.as_str().to_string(),
        };
        let _ = handler.render_report(&mut out, &view);
    }
    let errors = diags.iter().filter(|d| d.is_error()).count();
    let warnings = diags.len() - errors;
    if errors + warnings > 0 {
        out.push_str(&format!(
            "{} error{}, {} warning{}\n",
            errors,
            if errors == 1 { "" } else { "s" },
            warnings,
            if warnings == 1 { "" } else { "s" }
        ));
    }
    out
}

#[derive(Serialize)]
struct JsonLabel<'a> {
    file: &'a str,
    start: u32,
    end: u32,
    line: usize,
    column: usize,
    end_line: usize,
    end_column: usize,
    message: &'a str,
}

#[derive(Serialize)]
struct JsonDiagnostic<'a> {
    code: &'static str,
    name: &'static str,
    severity: Severity,
    message: &'a str,
    primary: JsonLabel<'a>,
    secondary: Vec<JsonLabel<'a>>,
    help: Option<&'a str>,
    fixes: Vec<JsonFix<'a>>,
}

/// A fix: its edits, offsets in bytes (`start == end` inserts).
#[derive(Serialize)]
struct JsonFix<'a> {
    title: &'a str,
    preferred: bool,
    edits: Vec<JsonEdit<'a>>,
}

#[derive(Serialize)]
struct JsonEdit<'a> {
    file: &'a str,
    start: u32,
    end: u32,
    text: &'a str,
}

/// Renders diagnostics as JSON lines: one object per diagnostic.
pub fn render_json(sources: &SourceMap, diags: &[Diagnostic]) -> String {
    let label = |l: &'_ Label| {
        let (line, column) = sources.line_col(l.span.file, l.span.start);
        let (end_line, end_column) = sources.line_col(l.span.file, l.span.end);
        (
            sources.get(l.span.file).name.clone(),
            l.span,
            line,
            column,
            end_line,
            end_column,
        )
    };
    let mut out = String::new();
    for d in diags {
        let p = label(&d.primary);
        let secondary: Vec<_> = d.secondary.iter().map(|l| (label(l), l)).collect();
        let json = JsonDiagnostic {
            code: d.code.as_str(),
            name: d.code.slug(),
            severity: d.severity,
            message: &d.message,
            primary: JsonLabel {
                file: &p.0,
                start: p.1.start,
                end: p.1.end,
                line: p.2,
                column: p.3,
                end_line: p.4,
                end_column: p.5,
                message: &d.primary.message,
            },
            secondary: secondary
                .iter()
                .map(|(s, l)| JsonLabel {
                    file: &s.0,
                    start: s.1.start,
                    end: s.1.end,
                    line: s.2,
                    column: s.3,
                    end_line: s.4,
                    end_column: s.5,
                    message: &l.message,
                })
                .collect(),
            help: d.help.as_deref(),
            fixes: d
                .fixes
                .iter()
                .map(|f| JsonFix {
                    title: &f.title,
                    preferred: f.preferred,
                    edits: f
                        .edits
                        .iter()
                        .map(|e| JsonEdit {
                            file: &sources.get(e.span.file).name,
                            start: e.span.start,
                            end: e.span.end,
                            text: &e.text,
                        })
                        .collect(),
                })
                .collect(),
        };
        if let Ok(line) = serde_json::to_string(&json) {
            out.push_str(&line);
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod window_tests {
    use super::*;
    use miette::SourceCode;

    /// The window reads every span as miette reads it from the whole file,
    /// but for the count of lines, which is the lines it holds and
    /// `JOIN_GAP` more (miette joins labels by it).
    #[test]
    fn a_window_reads_spans_as_the_whole_file_does() {
        let text = "a\n\nservice s1 {\n  image = \"s:1\"\r\n  x = 1\n}\n\nlast line";
        let mut map = SourceMap::default();
        let id = map.add("f.stack", text);
        let window = Window { file: map.get(id) };
        for start in 0..text.len() {
            for len in [0, 1, 3, 12, 30] {
                let len = len.min(text.len() - start);
                for (before, after) in [(0, 0), (1, 1), (2, 2), (3, 1)] {
                    let span = miette::SourceSpan::new(start.into(), len);
                    let whole = text.read_span(&span, before, after);
                    let part = window.read_span(&span, before, after);
                    match (whole, part) {
                        (Ok(w), Ok(p)) => {
                            let got = (p.data(), p.span(), p.line(), p.column());
                            let want = (w.data(), w.span(), w.line(), w.column());
                            assert_eq!(got, want, "span {start}+{len}, context {before}/{after}");
                            let held = w.data().iter().filter(|&&b| b == b'\n').count();
                            assert_eq!(p.line_count(), held + JOIN_GAP);
                        }
                        (Err(_), Err(_)) => {}
                        (w, p) => panic!("span {start}+{len}: {:?} vs {:?}", w.is_ok(), p.is_ok()),
                    }
                }
            }
        }
    }
}
