//! Features: names resolve, functions exist and get the right arguments, no cycles.

use std::collections::{HashMap, HashSet};

use adr_sdk::params::suggest;

use super::Checker;
use crate::ast::*;
use crate::codes::Code;
use crate::diagnostic::Diagnostic;

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
            Lit::Window => "a window: a count of points (1 to 10000000) or a duration",
            Lit::Count => "a count from 1 to 10000000",
            Lit::Number => "a finite number",
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

impl Checker<'_> {
    pub(super) fn check_features(&mut self) {
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
                if f.name == "clip" && args.len() == 3 {
                    self.check_clip_bounds(&args[1], &args[2], *span);
                }
            }
        }
    }

    /// `clip(x, lo, hi)` with `lo > hi` would clip every value to one of the two.
    fn check_clip_bounds(&mut self, lo: &Expr, hi: &Expr, span: Span) {
        let number = |this: &mut Self, e: &Expr| match this.literal_kind(e) {
            Some(ValueKind::Int(v)) => Some(v as f64),
            Some(ValueKind::Float(v)) => Some(v),
            _ => None,
        };
        if let (Some(a), Some(b)) = (number(self, lo), number(self, hi)) {
            if a > b {
                self.push(
                    Diagnostic::new(
                        Code::ArgumentType,
                        span,
                        format!("`clip`'s lower bound {a} is above its upper bound {b}"),
                    )
                    .label("the bounds are the wrong way round")
                    .note("clip(x, lo, hi) keeps x within lo ..= hi"),
                );
            }
        }
    }

    /// The value of a literal argument or a constant, without marking anything used.
    fn literal_kind(&mut self, arg: &Expr) -> Option<ValueKind> {
        match arg {
            Expr::Value(v) => Some(self.resolve(v)),
            Expr::Name(n) => self.consts.get(&n.text).map(|c| c.kind.clone()),
            _ => None,
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
            (Lit::Window | Lit::Count, Some(ValueKind::Int(n))) => {
                (1..=adr_sdk::params::MAX_WINDOW_COUNT as i64).contains(n)
            }
            (Lit::Window, Some(ValueKind::Duration(ns))) => *ns > 0,
            (Lit::Number, Some(ValueKind::Int(_))) => true,
            (Lit::Number, Some(ValueKind::Float(v))) => v.is_finite(),
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

    pub(super) fn check_value_name(&mut self, n: &Name, refs: &mut Vec<Name>) {
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
}
