//! Detectors: the family and detector exist, parameters fit the schema, inputs resolve.

use std::collections::HashSet;

use adr_sdk::params::suggest;

use super::Checker;
use crate::rules::ast::*;
use crate::rules::codes::Code;
use crate::rules::diagnostic::Diagnostic;
use crate::rules::plan::param_value;

impl Checker<'_> {
    /// Looks `family.detector` up and checks `params` against its schema; its info if found.
    fn check_call(
        &mut self,
        family: &Name,
        detector: &Name,
        params: &[(Name, Value)],
    ) -> Option<adr_sdk::DetectorInfo> {
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
            .find(&format!("{}.{}", family.text, detector.text))
        {
            Ok((_, info)) => Some(info),
            Err(crate::plugins::LookupError::UnknownDetector {
                suggestion, known, ..
            }) => {
                self.push(
                    Diagnostic::new(
                        Code::UnknownDetector,
                        detector.span,
                        format!(
                            "family `{}` has no detector `{}`",
                            family.text, detector.text
                        ),
                    )
                    .suggest(suggestion)
                    .note(format!(
                        "`{}` has: {}",
                        family.text,
                        known.join(", ")
                    )),
                );
                None
            }
            Err(_) => {
                let suggestion = suggest(&family.text, families.iter().map(String::as_str));
                let loaded = if families.is_empty() {
                    "none (see --plugins and ADR_PLUGIN_PATH)".to_owned()
                } else {
                    families.join(", ")
                };
                self.push(
                    Diagnostic::new(
                        Code::UnknownFamily,
                        family.span,
                        format!("no loaded plugin has the family `{}`", family.text),
                    )
                    .suggest(suggestion)
                    .note(format!("loaded families: {loaded}")),
                );
                None
            }
        };
        if let Some(info) = &info {
            let mut given: Vec<&str> = Vec::new();
            for (name, value) in params {
                let Some(spec) = info.params.iter().find(|p| p.name == name.text) else {
                    let suggestion =
                        suggest(&name.text, info.params.iter().map(|p| p.name.as_str()));
                    let known: Vec<&str> = info.params.iter().map(|p| p.name.as_str()).collect();
                    self.push(
                        Diagnostic::new(
                            Code::UnknownParam,
                            name.span,
                            format!(
                                "`{}.{}` has no parameter `{}`",
                                family.text, detector.text, name.text
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
                let param_value = param_value(self.resolve(value));
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
                        Diagnostic::new(Code::InvalidParam, value.span, e.to_string()).label(takes);
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
        }
        info.cloned()
    }

    pub(super) fn check_detectors(&mut self) {
        for d in self.detectors.clone() {
            if let Some(info) = self.check_call(&d.family, &d.detector, &d.params) {
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
            if let Some(t) = &d.threshold {
                if let Some(info) = self.check_call(&t.family, &t.detector, &t.params) {
                    if !info.inputs.accepts(1) {
                        self.push(
                            Diagnostic::new(
                                Code::InputArity,
                                t.span,
                                format!(
                                    "`{}.{}` takes {}, but a threshold gets one input: the \
                                     scores of `{}`",
                                    t.family.text, t.detector.text, info.inputs, d.name.text
                                ),
                            )
                            .label("this threshold"),
                        );
                    }
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
}

fn article(word: &str) -> &'static str {
    if word.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    }
}
