//! Checking parsed rules against the loaded plugins: every name resolves, every parameter
//! fits its detector's schema, features are well formed, votes and severities make sense.
//! Every problem is reported, not just the first.

use std::collections::{HashMap, HashSet};

use adr_sdk::params::suggest;

use super::ast::*;
use super::codes::Code;
use super::diagnostic::Diagnostic;
use super::source::Loaded;
use adr_plugin_host::Registry;

mod alerts;
mod detectors;
mod ensembles;
mod features;

/// Checks everything that was loaded; returns every problem found, sorted by place, after
/// the loading problems (syntax errors, includes).
pub fn check(loaded: &Loaded, registry: &Registry) -> Vec<Diagnostic> {
    let mut checker = Checker::new(registry, loaded);
    checker.collect();
    checker.check_features();
    checker.check_detectors();
    checker.check_ensembles();
    checker.check_alerts();
    checker.check_tests();
    checker.check_unused();
    let mut diagnostics = checker.diagnostics;
    diagnostics.sort_by_key(|d| (d.primary.span.file, d.primary.span.start));
    diagnostics
}

struct Checker<'a> {
    registry: &'a Registry,
    loaded: &'a Loaded,
    diagnostics: Vec<Diagnostic>,
    consts: HashMap<String, &'a Value>,
    inputs: Vec<&'a Input>,
    fields: HashMap<String, Span>,
    features: Vec<(&'a Name, &'a Expr)>,
    detectors: Vec<&'a DetectorDef>,
    ensembles: Vec<&'a Ensemble>,
    alerts: Vec<&'a Alert>,
    tests: Vec<(&'a Test, FileId)>,
    used: HashSet<String>,
}

impl<'a> Checker<'a> {
    fn new(registry: &'a Registry, loaded: &'a Loaded) -> Self {
        Checker {
            registry,
            loaded,
            diagnostics: loaded.diagnostics.clone(),
            consts: HashMap::new(),
            inputs: Vec::new(),
            fields: HashMap::new(),
            features: Vec::new(),
            detectors: Vec::new(),
            ensembles: Vec::new(),
            alerts: Vec::new(),
            tests: Vec::new(),
            used: HashSet::new(),
        }
    }

    fn push(&mut self, d: Diagnostic) {
        self.diagnostics.push(d);
    }

    /// Gathers definitions and reports duplicates: constants, fields and features share one
    /// namespace (values); detectors and ensembles another (members).
    fn collect(&mut self) {
        let mut values: HashMap<String, Span> = HashMap::new();
        let mut members: HashMap<String, Span> = HashMap::new();
        let mut alerted: HashMap<String, Span> = HashMap::new();
        let defined = |space: &mut HashMap<String, Span>,
                       name: &Name,
                       what: &str,
                       out: &mut Vec<Diagnostic>| {
            if let Some(first) = space.get(&name.text) {
                out.push(
                    Diagnostic::new(
                        Code::Duplicate,
                        name.span,
                        format!("{what} `{}` is defined twice", name.text),
                    )
                    .label("defined again here")
                    .also(*first, "first defined here"),
                );
            } else {
                space.insert(name.text.clone(), name.span);
            }
        };
        let loaded = self.loaded;
        let mut out = Vec::new();
        for file in &loaded.files {
            for item in &file.items {
                match item {
                    Item::Include(..) => {}
                    Item::Const(name, value) => {
                        defined(&mut values, name, "constant", &mut out);
                        self.consts.entry(name.text.clone()).or_insert(value);
                    }
                    Item::Input(input) => {
                        self.inputs.push(input);
                        if self.inputs.len() == 1 {
                            let mut seen: HashMap<&str, Span> = HashMap::new();
                            for column in input.time.iter().chain(&input.keys).chain(&input.fields)
                            {
                                if let Some(first) = seen.insert(&column.text, column.span) {
                                    out.push(
                                        Diagnostic::new(
                                            Code::InputColumn,
                                            column.span,
                                            format!("column `{}` is declared twice", column.text),
                                        )
                                        .also(first, "first declared here"),
                                    );
                                }
                            }
                            for field in &input.fields {
                                defined(&mut values, field, "field", &mut out);
                                self.fields.insert(field.text.clone(), field.span);
                            }
                        } else {
                            out.push(
                                Diagnostic::new(
                                    Code::InputCount,
                                    input.name.span,
                                    format!("a second input block `{}`", input.name.text),
                                )
                                .label("only one input block is allowed")
                                .also(self.inputs[0].name.span, "the input is declared here"),
                            );
                        }
                    }
                    Item::Feature(name, expr) => {
                        defined(&mut values, name, "feature", &mut out);
                        self.features.push((name, expr));
                    }
                    Item::Detector(d) => {
                        defined(&mut members, &d.name, "detector", &mut out);
                        self.detectors.push(d);
                    }
                    Item::Ensemble(e) => {
                        defined(&mut members, &e.name, "ensemble", &mut out);
                        self.ensembles.push(e);
                    }
                    Item::Alert(a) => {
                        defined(&mut alerted, &a.name, "alert for", &mut out);
                        self.alerts.push(a);
                    }
                    Item::Test(t) => self.tests.push((t, file.id)),
                }
            }
        }
        self.diagnostics.extend(out);
        if self.inputs.is_empty() && !(self.features.is_empty() && self.detectors.is_empty()) {
            let root = loaded.files.iter().map(|f| f.id).min().unwrap_or(0);
            self.push(
                Diagnostic::new(Code::InputCount, Span { file: root, start: 0, end: 0 }, "the rules have no input block")
                    .help("declare the columns: input market { time = ts  key = symbol  fields = close, volume }"),
            );
        }
    }

    fn value_names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.fields.keys().map(String::as_str).collect();
        names.extend(self.features.iter().map(|(n, _)| n.text.as_str()));
        names.extend(self.consts.keys().map(String::as_str));
        names.sort_unstable();
        names
    }

    /// A value with constants resolved.
    fn resolve(&mut self, value: &Value) -> ValueKind {
        match &value.kind {
            ValueKind::Name(n) => match self.consts.get(n) {
                Some(c) => {
                    self.used.insert(n.clone());
                    c.kind.clone()
                }
                None => ValueKind::Name(n.clone()),
            },
            other => other.clone(),
        }
    }

    /// A value that must be a number (constants resolved), or a diagnostic.
    fn number(&mut self, value: &Value, what: &str) -> Option<f64> {
        match self.resolve(value) {
            ValueKind::Int(v) => Some(v as f64),
            ValueKind::Float(v) if !v.is_finite() => {
                self.push(
                    Diagnostic::new(
                        Code::WeightType,
                        value.span,
                        format!("{what} must be a finite number, got {v}"),
                    )
                    .label("beyond the largest number (about 1.8e308)"),
                );
                None
            }
            ValueKind::Float(v) => Some(v),
            ValueKind::Name(n) => {
                let known: Vec<&str> = self.consts.keys().map(String::as_str).collect();
                let suggestion = suggest(&n, known);
                self.push(
                    Diagnostic::new(
                        Code::UnknownConstant,
                        value.span,
                        format!("{what} `{n}` is not a number or a constant"),
                    )
                    .label("expected a number")
                    .suggest(suggestion),
                );
                None
            }
            _ => {
                self.push(
                    Diagnostic::new(
                        Code::WeightType,
                        value.span,
                        format!("{what} must be a number"),
                    )
                    .label("not a number"),
                );
                None
            }
        }
    }
}
