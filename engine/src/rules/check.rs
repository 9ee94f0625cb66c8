//! Checking parsed rules against the loaded plugins: every name resolves, every parameter
//! fits its detector's schema, features are well formed, votes and severities make sense.
//! Every problem is reported, not just the first.

use std::collections::{HashMap, HashSet};

use adr_sdk::{params::suggest, ParamValue};

use super::ast::*;
use super::codes::Code;
use super::diagnostic::Diagnostic;
use super::source::Loaded;
use crate::io::timestamp::TimeFormat;
use crate::plugins::Registry;

/// Severity levels, lowest first.
pub const LEVELS: [&str; 5] = ["info", "low", "medium", "high", "critical"];

/// Notification targets, and whether each needs an argument.
const TARGETS: [(&str, bool); 3] = [("log", false), ("file", true), ("webhook", true)];

/// A feature function: its name, its arguments (the first `series` are expressions over
/// columns, the rest literals of the given kinds).
struct Function {
    name: &'static str,
    series: usize,
    literals: &'static [Lit],
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Lit {
    /// A count of points or a duration.
    Window,
    /// A count of points, at least 1.
    Count,
    /// A number.
    Number,
    /// A number in (0, 1].
    Fraction,
}

impl Lit {
    fn describe(self) -> &'static str {
        match self {
            Lit::Window => "a window: a count of points or a duration",
            Lit::Count => "a count of at least 1",
            Lit::Number => "a number",
            Lit::Fraction => "a number in (0, 1]",
        }
    }
}

const FUNCTIONS: &[Function] = &[
    Function {
        name: "pct_change",
        series: 1,
        literals: &[],
    },
    Function {
        name: "log_return",
        series: 1,
        literals: &[],
    },
    Function {
        name: "diff",
        series: 1,
        literals: &[],
    },
    Function {
        name: "abs",
        series: 1,
        literals: &[],
    },
    Function {
        name: "lag",
        series: 1,
        literals: &[Lit::Count],
    },
    Function {
        name: "mean",
        series: 1,
        literals: &[Lit::Window],
    },
    Function {
        name: "std",
        series: 1,
        literals: &[Lit::Window],
    },
    Function {
        name: "min",
        series: 1,
        literals: &[Lit::Window],
    },
    Function {
        name: "max",
        series: 1,
        literals: &[Lit::Window],
    },
    Function {
        name: "sum",
        series: 1,
        literals: &[Lit::Window],
    },
    Function {
        name: "zscore",
        series: 1,
        literals: &[Lit::Window],
    },
    Function {
        name: "ewma",
        series: 1,
        literals: &[Lit::Fraction],
    },
    Function {
        name: "vwap",
        series: 2,
        literals: &[Lit::Window],
    },
    Function {
        name: "clip",
        series: 1,
        literals: &[Lit::Number, Lit::Number],
    },
];

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

    fn check_features(&mut self) {
        let feature_names: HashSet<String> =
            self.features.iter().map(|(n, _)| n.text.clone()).collect();
        let mut deps: HashMap<String, Vec<Name>> = HashMap::new();
        for (name, expr) in self.features.clone() {
            let mut refs = Vec::new();
            self.check_expr(expr, &mut refs);
            let feature_refs: Vec<Name> = refs
                .into_iter()
                .filter(|r| feature_names.contains(&r.text))
                .collect();
            deps.insert(name.text.clone(), feature_refs);
        }
        // Cycles: depth-first, reporting each cycle once at the feature that closes it.
        let mut state: HashMap<String, u8> = HashMap::new();
        let order: Vec<String> = self.features.iter().map(|(n, _)| n.text.clone()).collect();
        for start in order {
            let mut path = Vec::new();
            self.visit_feature(&start, &deps, &mut state, &mut path);
        }
    }

    fn visit_feature(
        &mut self,
        name: &str,
        deps: &HashMap<String, Vec<Name>>,
        state: &mut HashMap<String, u8>,
        path: &mut Vec<String>,
    ) {
        match state.get(name) {
            Some(2) => return,
            Some(1) => return,
            _ => {}
        }
        state.insert(name.to_owned(), 1);
        path.push(name.to_owned());
        for dep in deps.get(name).into_iter().flatten() {
            if state.get(&dep.text) == Some(&1) {
                let pos = path.iter().position(|p| p == &dep.text).unwrap_or(0);
                let cycle = path[pos..].join(" -> ");
                self.push(
                    Diagnostic::new(
                        Code::FeatureCycle,
                        dep.span,
                        format!("feature `{}` depends on itself", dep.text),
                    )
                    .label("this reference closes the cycle")
                    .note(format!("cycle: {cycle} -> {}", dep.text)),
                );
            } else {
                self.visit_feature(&dep.text, deps, state, path);
            }
        }
        path.pop();
        state.insert(name.to_owned(), 2);
    }

    fn check_expr(&mut self, expr: &Expr, refs: &mut Vec<Name>) {
        match expr {
            Expr::Value(_) => {}
            Expr::Name(n) => self.check_value_name(n, refs),
            Expr::Neg(e, _) => self.check_expr(e, refs),
            Expr::Binary(_, a, b, _) => {
                self.check_expr(a, refs);
                self.check_expr(b, refs);
            }
            Expr::Call(func, args, span) => {
                let Some(f) = FUNCTIONS.iter().find(|f| f.name == func.text) else {
                    let suggestion = suggest(&func.text, FUNCTIONS.iter().map(|f| f.name));
                    let known: Vec<&str> = FUNCTIONS.iter().map(|f| f.name).collect();
                    self.push(
                        Diagnostic::new(
                            Code::UnknownFunction,
                            func.span,
                            format!("unknown function `{}`", func.text),
                        )
                        .suggest(suggestion)
                        .note(format!("functions: {}", known.join(", "))),
                    );
                    args.iter().for_each(|a| self.check_expr(a, refs));
                    return;
                };
                let want = f.series + f.literals.len();
                if args.len() != want {
                    self.push(
                        Diagnostic::new(
                            Code::Arity,
                            *span,
                            format!(
                                "`{}` takes {want} argument{}, got {}",
                                f.name,
                                if want == 1 { "" } else { "s" },
                                args.len()
                            ),
                        )
                        .label(format!(
                            "{} argument{} here",
                            args.len(),
                            if args.len() == 1 { "" } else { "s" }
                        )),
                    );
                }
                for (i, arg) in args.iter().enumerate() {
                    match f
                        .literals
                        .get(i.wrapping_sub(f.series))
                        .filter(|_| i >= f.series)
                    {
                        None => self.check_expr(arg, refs),
                        Some(&lit) => self.check_literal_arg(f.name, i, arg, lit),
                    }
                }
            }
        }
    }

    fn check_literal_arg(&mut self, func: &str, i: usize, arg: &Expr, lit: Lit) {
        let kind = match arg {
            Expr::Value(v) => Some(self.resolve(v)),
            Expr::Name(n) if self.consts.contains_key(&n.text) => {
                self.used.insert(n.text.clone());
                Some(self.consts[&n.text].kind.clone())
            }
            _ => None,
        };
        let ok = match (lit, &kind) {
            (Lit::Window, Some(ValueKind::Int(n))) => *n >= 1,
            (Lit::Window, Some(ValueKind::Duration(ns))) => *ns > 0,
            (Lit::Count, Some(ValueKind::Int(n))) => *n >= 1,
            (Lit::Number, Some(ValueKind::Int(_) | ValueKind::Float(_))) => true,
            (Lit::Fraction, Some(ValueKind::Float(v))) => *v > 0.0 && *v <= 1.0,
            (Lit::Fraction, Some(ValueKind::Int(1))) => true,
            _ => false,
        };
        if !ok {
            self.push(
                Diagnostic::new(
                    Code::ArgumentType,
                    arg.span(),
                    format!("argument {} of `{func}` must be {}", i + 1, lit.describe()),
                )
                .label("not accepted here"),
            );
        }
    }

    fn check_value_name(&mut self, n: &Name, refs: &mut Vec<Name>) {
        if self.fields.contains_key(&n.text)
            || self.features.iter().any(|(f, _)| f.text == n.text)
            || self.consts.contains_key(&n.text)
        {
            self.used.insert(n.text.clone());
            refs.push(n.clone());
            return;
        }
        let suggestion = suggest(&n.text, self.value_names());
        self.push(
            Diagnostic::new(
                Code::UnknownName,
                n.span,
                format!("unknown field or feature `{}`", n.text),
            )
            .label("not declared in the input or defined as a feature")
            .suggest(suggestion),
        );
    }

    fn check_detectors(&mut self) {
        for d in self.detectors.clone() {
            let families: Vec<String> = {
                let mut f: Vec<String> = self
                    .registry
                    .plugins()
                    .iter()
                    .map(|p| p.plugin.family().to_owned())
                    .collect();
                f.sort();
                f.dedup();
                f
            };
            let info = match self
                .registry
                .find(&format!("{}.{}", d.family.text, d.detector.text))
            {
                Ok((_, info)) => Some(info),
                Err(crate::plugins::LookupError::UnknownDetector {
                    suggestion, known, ..
                }) => {
                    self.push(
                        Diagnostic::new(
                            Code::UnknownDetector,
                            d.detector.span,
                            format!(
                                "family `{}` has no detector `{}`",
                                d.family.text, d.detector.text
                            ),
                        )
                        .suggest(suggestion)
                        .note(format!(
                            "`{}` has: {}",
                            d.family.text,
                            known.join(", ")
                        )),
                    );
                    None
                }
                Err(_) => {
                    let suggestion = suggest(&d.family.text, families.iter().map(String::as_str));
                    let loaded = if families.is_empty() {
                        "none (see --plugins and ADR_PLUGIN_PATH)".to_owned()
                    } else {
                        families.join(", ")
                    };
                    self.push(
                        Diagnostic::new(
                            Code::UnknownFamily,
                            d.family.span,
                            format!("no loaded plugin has the family `{}`", d.family.text),
                        )
                        .suggest(suggestion)
                        .note(format!("loaded families: {loaded}")),
                    );
                    None
                }
            };
            if let Some(info) = info {
                let mut given: Vec<&str> = Vec::new();
                for (name, value) in &d.params {
                    let Some(spec) = info.params.iter().find(|p| p.name == name.text) else {
                        let suggestion =
                            suggest(&name.text, info.params.iter().map(|p| p.name.as_str()));
                        let known: Vec<&str> =
                            info.params.iter().map(|p| p.name.as_str()).collect();
                        self.push(
                            Diagnostic::new(
                                Code::UnknownParam,
                                name.span,
                                format!(
                                    "`{}.{}` has no parameter `{}`",
                                    d.family.text, d.detector.text, name.text
                                ),
                            )
                            .suggest(suggestion)
                            .note(format!("parameters: {}", known.join(", "))),
                        );
                        continue;
                    };
                    if given.contains(&name.text.as_str()) {
                        self.push(Diagnostic::new(
                            Code::InvalidParam,
                            name.span,
                            format!("parameter `{}` is given twice", name.text),
                        ));
                        continue;
                    }
                    given.push(&name.text);
                    let param_value = match self.resolve(value) {
                        ValueKind::Int(v) => ParamValue::Int(v),
                        ValueKind::Float(v) => ParamValue::Float(v),
                        ValueKind::Duration(v) => ParamValue::Duration(v),
                        ValueKind::Bool(v) => ParamValue::Bool(v),
                        ValueKind::Str(v) | ValueKind::Name(v) => ParamValue::Text(v),
                    };
                    if let Err(e) = spec.check(&param_value) {
                        let takes = if spec.choices.is_empty() {
                            format!(
                                "`{}` takes {} {}",
                                spec.name,
                                article(spec.kind.as_str()),
                                spec.kind
                            )
                        } else {
                            format!("`{}` takes one of {}", spec.name, spec.choices.join(", "))
                        };
                        let range = spec.range_text();
                        let takes = if range.is_empty() {
                            takes
                        } else {
                            format!("{takes} {range}")
                        };
                        let mut diag =
                            Diagnostic::new(Code::InvalidParam, value.span, e.to_string())
                                .label(takes);
                        if let adr_sdk::ParamError::NotAChoice {
                            value: word,
                            choices,
                            ..
                        } = &e
                        {
                            diag = diag.suggest(suggest(word, choices.iter().map(String::as_str)));
                        }
                        if !spec.doc.is_empty() {
                            diag = diag.note(format!("`{}`: {}", spec.name, spec.doc));
                        }
                        self.push(diag);
                    }
                }
                if !info.inputs.accepts(d.inputs.len()) {
                    let span = Span {
                        file: d.inputs[0].span.file,
                        start: d.inputs[0].span.start,
                        end: d.inputs[d.inputs.len() - 1].span.end,
                    };
                    self.push(
                        Diagnostic::new(
                            Code::InputArity,
                            span,
                            format!(
                                "`{}.{}` takes {}, got {}",
                                d.family.text,
                                d.detector.text,
                                info.inputs,
                                d.inputs.len()
                            ),
                        )
                        .label("these inputs"),
                    );
                }
            }
            for input in &d.inputs {
                let mut refs = Vec::new();
                self.check_value_name(input, &mut refs);
            }
            let mut kinds = HashSet::new();
            for t in &d.training {
                let (kind, span, bad) = match t {
                    Training::First(n, s) => ("train", *s, *n == 0),
                    Training::For(ns, s) => ("train", *s, *ns <= 0),
                    Training::Refit(ns, s) => ("refit", *s, *ns <= 0),
                };
                if bad {
                    self.push(
                        Diagnostic::new(
                            Code::Training,
                            span,
                            "a training span must be more than zero",
                        )
                        .label("empty training"),
                    );
                }
                if !kinds.insert(kind) {
                    self.push(Diagnostic::new(
                        Code::Training,
                        span,
                        format!("`{kind}` is given twice for `{}`", d.name.text),
                    ));
                }
            }
        }
    }

    fn member_names(&self) -> Vec<&str> {
        self.detectors
            .iter()
            .map(|d| d.name.text.as_str())
            .chain(self.ensembles.iter().map(|e| e.name.text.as_str()))
            .collect()
    }

    fn is_member(&self, name: &str) -> bool {
        self.detectors.iter().any(|d| d.name.text == name)
            || self.ensembles.iter().any(|e| e.name.text == name)
    }

    fn check_ensembles(&mut self) {
        for e in self.ensembles.clone() {
            let mut seen: HashMap<&str, Span> = HashMap::new();
            for m in &e.vote.members {
                if let Some(first) = seen.insert(&m.text, m.span) {
                    self.push(
                        Diagnostic::new(
                            Code::DuplicateMember,
                            m.span,
                            format!("`{}` votes twice in `{}`", m.text, e.name.text),
                        )
                        .also(first, "first listed here"),
                    );
                }
                if self.is_member(&m.text) {
                    self.used.insert(m.text.clone());
                } else {
                    let suggestion = suggest(&m.text, self.member_names());
                    self.push(
                        Diagnostic::new(
                            Code::UnknownMember,
                            m.span,
                            format!("ensemble member `{}` is no detector or ensemble", m.text),
                        )
                        .suggest(suggestion),
                    );
                }
            }
            let n = e.vote.members.len();
            match &e.vote.kind {
                VoteKind::AtLeast(k) => {
                    if let Some(k_value) = self.number(k, "the count of at_least") {
                        if k_value.fract() != 0.0 || k_value < 1.0 || k_value > n as f64 {
                            self.push(
                                Diagnostic::new(
                                    Code::VoteRange,
                                    k.span,
                                    format!(
                                        "at_least needs a whole count from 1 to {n}, got {k_value}"
                                    ),
                                )
                                .label(format!("{n} member{} vote", if n == 1 { "" } else { "s" })),
                            );
                        }
                    }
                }
                VoteKind::Weighted(weights, threshold) => {
                    for w in weights {
                        if let Some(v) = self.number(w, "a weight") {
                            if v < 0.0 {
                                self.push(Diagnostic::new(
                                    Code::VoteRange,
                                    w.span,
                                    format!("a weight must not be negative, got {v}"),
                                ));
                            }
                        }
                    }
                    self.share_threshold(threshold, "the weighted share of anomalous members");
                }
                VoteKind::Score(_, threshold) => {
                    self.share_threshold(threshold, "a normalised score")
                }
                VoteKind::Any | VoteKind::All | VoteKind::Majority => {}
            }
            self.check_severity(e);
        }
        self.check_ensemble_cycles();
    }

    fn share_threshold(&mut self, threshold: &Value, what: &str) {
        if let Some(v) = self.number(threshold, "a vote threshold") {
            if !(0.0..=1.0).contains(&v) {
                self.push(
                    Diagnostic::new(
                        Code::VoteRange,
                        threshold.span,
                        format!("a vote threshold must be within 0 and 1, got {v}"),
                    )
                    .note(format!("it is compared with {what}, which lies in [0, 1]")),
                );
            }
        }
    }

    fn check_severity(&mut self, e: &Ensemble) {
        let members: Vec<&str> = e.vote.members.iter().map(|m| m.text.as_str()).collect();
        let mut otherwise: Option<Span> = None;
        let mut earlier: Vec<(&Cond, Span)> = Vec::new();
        for arm in &e.severity {
            if let Some(cond) = &arm.cond {
                self.check_cond(cond, &members);
            }
            if let Some(first) = otherwise {
                self.push(
                    Diagnostic::new(
                        Code::UnreachableArm,
                        arm.span,
                        format!("this `{}` arm can never match", arm.level.text),
                    )
                    .label("after `otherwise`")
                    .also(first, "every point stops here"),
                );
                continue;
            }
            match &arm.cond {
                None => otherwise = Some(arm.span),
                Some(cond) => {
                    if let Some((_, span)) = earlier.iter().find(|(c, _)| implies(cond, c)) {
                        self.push(
                            Diagnostic::new(
                                Code::UnreachableArm,
                                arm.span,
                                format!("this `{}` arm can never match", arm.level.text),
                            )
                            .label("every point it matches")
                            .also(*span, "is taken by this earlier arm"),
                        );
                    }
                    earlier.push((cond, arm.span));
                }
            }
        }
    }

    fn check_cond(&mut self, cond: &Cond, members: &[&str]) {
        match cond {
            Cond::Or(cs) | Cond::And(cs) => cs.iter().for_each(|c| self.check_cond(c, members)),
            Cond::Not(c) => self.check_cond(c, members),
            Cond::Member(m) => {
                if !members.contains(&m.text.as_str()) {
                    self.push(
                        Diagnostic::new(
                            Code::ConditionMember,
                            m.span,
                            format!("`{}` is not a member of this ensemble", m.text),
                        )
                        .suggest(suggest(&m.text, members.iter().copied()))
                        .note(format!("members: {}", members.join(", "))),
                    );
                }
            }
            Cond::Compare(measure, _, value, _) => {
                if let Some(v) = self.number(value, "a comparison") {
                    if *measure == Measure::Score && !(0.0..=1.0).contains(&v) {
                        self.push(
                            Diagnostic::new(Code::VoteRange, value.span, format!("an ensemble score lies in [0, 1], so comparing it with {v} is always the same"))
                                .label("out of range"),
                        );
                    }
                }
            }
        }
    }

    fn check_ensemble_cycles(&mut self) {
        let edges: HashMap<&str, Vec<&Name>> = self
            .ensembles
            .iter()
            .map(|e| {
                (
                    e.name.text.as_str(),
                    e.vote
                        .members
                        .iter()
                        .filter(|m| self.ensembles.iter().any(|x| x.name.text == m.text))
                        .collect(),
                )
            })
            .collect();
        let mut reported = HashSet::new();
        for e in &self.ensembles {
            let mut stack = vec![(e.name.text.as_str(), vec![e.name.text.as_str()])];
            let mut visited = HashSet::new();
            while let Some((node, path)) = stack.pop() {
                for m in edges.get(node).into_iter().flatten() {
                    if m.text == e.name.text {
                        if reported.insert(e.name.text.clone()) {
                            self.diagnostics.push(
                                Diagnostic::new(
                                    Code::EnsembleCycle,
                                    m.span,
                                    format!("ensemble `{}` contains itself", e.name.text),
                                )
                                .label("this member leads back")
                                .note(format!(
                                    "cycle: {} -> {}",
                                    path.join(" -> "),
                                    e.name.text
                                )),
                            );
                        }
                    } else if visited.insert(m.text.as_str()) {
                        let mut next = path.clone();
                        next.push(m.text.as_str());
                        stack.push((m.text.as_str(), next));
                    }
                }
            }
        }
    }

    fn check_alerts(&mut self) {
        let group_names: Vec<String> = self
            .inputs
            .first()
            .map(|i| {
                i.keys
                    .iter()
                    .chain(&i.fields)
                    .map(|n| n.text.clone())
                    .collect()
            })
            .unwrap_or_default();
        for a in self.alerts.clone() {
            if self.ensembles.iter().any(|e| e.name.text == a.name.text) {
                self.used.insert(a.name.text.clone());
            } else {
                let suggestion = suggest(
                    &a.name.text,
                    self.ensembles.iter().map(|e| e.name.text.as_str()),
                );
                self.push(
                    Diagnostic::new(
                        Code::UnknownEnsemble,
                        a.name.span,
                        format!("alert for `{}`, which is no ensemble", a.name.text),
                    )
                    .label("alerts watch ensembles")
                    .suggest(suggestion),
                );
            }
            if let Some((level, hold)) = &a.when {
                self.check_level(level);
                if let Some(Hold::Events(0)) = hold {
                    self.push(Diagnostic::new(
                        Code::VoteRange,
                        a.span,
                        "an alert must hold for at least 1 event",
                    ));
                }
            }
            for g in &a.group_by {
                if !group_names.contains(&g.text) {
                    self.push(
                        Diagnostic::new(
                            Code::UnknownGroupField,
                            g.span,
                            format!(
                                "cannot group by `{}`: it is no key or field of the input",
                                g.text
                            ),
                        )
                        .suggest(suggest(&g.text, group_names.iter().map(String::as_str))),
                    );
                }
            }
            for t in &a.notify {
                match TARGETS.iter().find(|(k, _)| *k == t.kind.text) {
                    None => self.push(
                        Diagnostic::new(
                            Code::UnknownTarget,
                            t.kind.span,
                            format!("unknown notify target `{}`", t.kind.text),
                        )
                        .suggest(suggest(&t.kind.text, TARGETS.iter().map(|(k, _)| *k)))
                        .note("targets: log, file(\"path\"), webhook(\"url\")"),
                    ),
                    Some((kind, needs)) if *needs && t.arg.is_none() => self.push(
                        Diagnostic::new(
                            Code::UnknownTarget,
                            t.kind.span,
                            format!("`{kind}` needs an argument"),
                        )
                        .help(format!(
                            "write {kind}(\"{}\")",
                            if *kind == "file" {
                                "alerts.jsonl"
                            } else {
                                "http://127.0.0.1:9000/hook"
                            }
                        )),
                    ),
                    Some((kind, needs)) if !*needs && t.arg.is_some() => {
                        self.push(Diagnostic::new(
                            Code::UnknownTarget,
                            t.kind.span,
                            format!("`{kind}` takes no argument"),
                        ))
                    }
                    _ => {}
                }
            }
        }
    }

    fn check_level(&mut self, level: &Name) {
        if !LEVELS.contains(&level.text.as_str()) {
            self.push(
                Diagnostic::new(
                    Code::UnknownSeverity,
                    level.span,
                    format!("unknown severity `{}`", level.text),
                )
                .suggest(suggest(&level.text, LEVELS))
                .note("severities, lowest first: info, low, medium, high, critical"),
            );
        }
    }

    fn check_tests(&mut self) {
        for (t, file) in self.tests.clone() {
            match self.inputs.first() {
                Some(input) if input.name.text == t.input.text => {}
                first => {
                    let suggestion = first.map(|i| i.name.text.clone());
                    self.push(
                        Diagnostic::new(
                            Code::TestInput,
                            t.input.span,
                            format!(
                                "test \"{}\" feeds `{}`, which is no input block",
                                t.name, t.input.text
                            ),
                        )
                        .suggest(suggestion),
                    );
                }
            }
            let dir = self
                .loaded
                .sources
                .path(file)
                .parent()
                .map(std::path::Path::to_path_buf)
                .unwrap_or_default();
            let data = dir.join(&t.data.0);
            if !data.is_file() {
                self.push(
                    Diagnostic::new(
                        Code::TestData,
                        t.data.1,
                        format!("test data `{}` cannot be read", t.data.0),
                    )
                    .note(format!("looked for {}", data.display())),
                );
            }
            for x in &t.expectations {
                if self.ensembles.iter().any(|e| e.name.text == x.target.text) {
                    self.used.insert(x.target.text.clone());
                } else {
                    let suggestion = suggest(
                        &x.target.text,
                        self.ensembles.iter().map(|e| e.name.text.as_str()),
                    );
                    self.push(
                        Diagnostic::new(
                            Code::UnknownEnsemble,
                            x.target.span,
                            format!("the test expects `{}`, which is no ensemble", x.target.text),
                        )
                        .suggest(suggestion),
                    );
                }
                if let Expected::Severity(level) = &x.expected {
                    self.check_level(level);
                }
                if TimeFormat::detect(&x.at.0).is_none() {
                    self.push(
                        Diagnostic::new(
                            Code::TestTime,
                            x.at.1,
                            format!("`{}` is not a timestamp", x.at.0),
                        )
                        .help("write ISO-8601, e.g. \"2025-01-15T10:30:00Z\", or epoch seconds"),
                    );
                }
            }
        }
    }

    fn check_unused(&mut self) {
        let unused_features: Vec<(String, Span)> = self
            .features
            .iter()
            .filter(|(n, _)| !self.used.contains(&n.text))
            .map(|(n, _)| (n.text.clone(), n.span))
            .collect();
        for (name, span) in unused_features {
            self.push(
                Diagnostic::new(
                    Code::Unused,
                    span,
                    format!("feature `{name}` is never used"),
                )
                .label("no detector or feature reads it"),
            );
        }
        let unused_detectors: Vec<(String, Span)> = self
            .detectors
            .iter()
            .filter(|d| !self.used.contains(&d.name.text))
            .map(|d| (d.name.text.clone(), d.name.span))
            .collect();
        for (name, span) in unused_detectors {
            self.push(
                Diagnostic::new(
                    Code::Unused,
                    span,
                    format!("detector `{name}` is never used"),
                )
                .label("no ensemble votes with it"),
            );
        }
        let unused_consts: Vec<(String, Span)> = self
            .loaded
            .files
            .iter()
            .flat_map(|f| &f.items)
            .filter_map(|i| match i {
                Item::Const(n, _) if !self.used.contains(&n.text) => Some((n.text.clone(), n.span)),
                _ => None,
            })
            .collect();
        for (name, span) in unused_consts {
            self.push(Diagnostic::new(
                Code::Unused,
                span,
                format!("constant `{name}` is never used"),
            ));
        }
    }
}

/// Whether every point matching `later` also matches `earlier` (so an arm with `later`
/// placed after `earlier` can never match). Decides identical conditions and single
/// comparisons of the same measure; says no when unsure.
fn implies(later: &Cond, earlier: &Cond) -> bool {
    if later == earlier {
        return true;
    }
    match (later, earlier) {
        (Cond::Compare(m1, c1, v1, _), Cond::Compare(m2, c2, v2, _)) if m1 == m2 => {
            let (Some(a), Some(b)) = (literal_number(v1), literal_number(v2)) else {
                return false;
            };
            match (c1, c2) {
                (Cmp::Ge | Cmp::Gt, Cmp::Ge) => a >= b,
                (Cmp::Gt, Cmp::Gt) | (Cmp::Ge, Cmp::Gt) => a > b || (a == b && *c1 == Cmp::Gt),
                (Cmp::Le | Cmp::Lt, Cmp::Le) => a <= b,
                (Cmp::Lt, Cmp::Lt) | (Cmp::Le, Cmp::Lt) => a < b || (a == b && *c1 == Cmp::Lt),
                _ => false,
            }
        }
        (Cond::And(parts), _) => parts.iter().any(|p| implies(p, earlier)),
        _ => false,
    }
}

fn article(word: &str) -> &'static str {
    if word.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    }
}

fn literal_number(v: &Value) -> Option<f64> {
    match v.kind {
        ValueKind::Int(i) => Some(i as f64),
        ValueKind::Float(f) => Some(f),
        _ => None,
    }
}
