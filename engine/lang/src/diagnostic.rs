//! Problems found in rule files: a stable code, a level, a message, labelled spans, notes
//! and a suggestion; rendered like a compiler's, or as JSON for editors and CI.

use std::fmt::Write as _;

use codespan_reporting::{
    diagnostic as cs,
    files::SimpleFiles,
    term::{self, termcolor::NoColor},
};

use super::{ast::Span, codes::Code, source::Sources};

/// How bad a problem is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// The rules cannot run.
    Error,
    /// The rules run, but something is likely wrong.
    Warning,
}

/// A span and what to say about it.
#[derive(Debug, Clone, PartialEq)]
pub struct Label {
    /// Where.
    pub span: Span,
    /// What about it (may be empty).
    pub message: String,
}

/// One problem in the rules.
#[derive(Debug, Clone, PartialEq)]
pub struct Diagnostic {
    /// Stable code, never reused.
    pub code: Code,
    /// Error or warning.
    pub level: Level,
    /// One line, lowercase, naming the thing.
    pub message: String,
    /// The place of the problem.
    pub primary: Label,
    /// Related places.
    pub secondary: Vec<Label>,
    /// Further explanation.
    pub notes: Vec<String>,
    /// What to do, e.g. `did you mean `zscore`?`.
    pub help: Option<String>,
}

impl Diagnostic {
    /// A problem of `code` (whose level it takes) at `span`.
    pub fn new(code: Code, span: Span, message: impl Into<String>) -> Self {
        Diagnostic {
            code,
            level: code.level(),
            message: message.into(),
            primary: Label {
                span,
                message: String::new(),
            },
            secondary: Vec::new(),
            notes: Vec::new(),
            help: None,
        }
    }

    /// Sets the primary label's text.
    pub fn label(mut self, message: impl Into<String>) -> Self {
        self.primary.message = message.into();
        self
    }

    /// Adds a related place.
    pub fn also(mut self, span: Span, message: impl Into<String>) -> Self {
        self.secondary.push(Label {
            span,
            message: message.into(),
        });
        self
    }

    /// Adds a note.
    pub fn note(mut self, note: impl Into<String>) -> Self {
        self.notes.push(note.into());
        self
    }

    /// Sets the help line.
    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// Sets the help line to a suggestion, if there is one.
    pub fn suggest(self, suggestion: Option<String>) -> Self {
        match suggestion {
            Some(s) => self.help(format!("did you mean `{s}`?")),
            None => self,
        }
    }
}

/// Renders diagnostics like a compiler does: code, message, the source line, a caret under
/// the span, notes and help. Plain text (no colour), for terminals, logs and golden files.
pub fn render(diagnostics: &[Diagnostic], sources: &Sources) -> String {
    let mut files = SimpleFiles::new();
    let ids: Vec<usize> = sources
        .files()
        .map(|(name, text)| files.add(name.to_owned(), text.to_owned()))
        .collect();
    let config = term::Config::default();
    let mut out = NoColor::new(Vec::new());
    for d in diagnostics {
        let mut labels = vec![cs::Label::primary(
            ids[d.primary.span.file],
            d.primary.span.start..d.primary.span.end,
        )
        .with_message(&d.primary.message)];
        labels.extend(d.secondary.iter().map(|l| {
            cs::Label::secondary(ids[l.span.file], l.span.start..l.span.end)
                .with_message(&l.message)
        }));
        let mut notes = d.notes.clone();
        if let Some(help) = &d.help {
            notes.push(format!("help: {help}"));
        }
        let severity = match d.level {
            Level::Error => cs::Severity::Error,
            Level::Warning => cs::Severity::Warning,
        };
        let diagnostic = cs::Diagnostic::new(severity)
            .with_code(d.code.id())
            .with_message(&d.message)
            .with_labels(labels)
            .with_notes(notes);
        term::emit(&mut out, &config, &files, &diagnostic)
            .expect("rendering to memory cannot fail");
    }
    let mut text = String::from_utf8(out.into_inner()).expect("diagnostics are UTF-8");
    let errors = diagnostics
        .iter()
        .filter(|d| d.level == Level::Error)
        .count();
    let warnings = diagnostics.len() - errors;
    let _ = writeln!(
        text,
        "{errors} error{}, {warnings} warning{}",
        plural(errors),
        plural(warnings)
    );
    text
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// Diagnostics as JSON values: code, level, message, file, line/column of start and end
/// (from 1), notes and help.
pub fn to_json(diagnostics: &[Diagnostic], sources: &Sources) -> serde_json::Value {
    let place = |span: Span| {
        let (line, column) = sources.line_col(span.file, span.start);
        let (end_line, end_column) = sources.line_col(span.file, span.end);
        serde_json::json!({
            "file": sources.name(span.file), "line": line, "column": column,
            "end_line": end_line, "end_column": end_column,
        })
    };
    serde_json::Value::Array(
        diagnostics
            .iter()
            .map(|d| {
                serde_json::json!({
                    "code": d.code.id(),
                    "level": d.level,
                    "message": d.message,
                    "location": place(d.primary.span),
                    "label": d.primary.message,
                    "related": d.secondary.iter().map(|l| serde_json::json!({"location": place(l.span), "message": l.message})).collect::<Vec<_>>(),
                    "notes": d.notes,
                    "help": d.help,
                })
            })
            .collect(),
    )
}
