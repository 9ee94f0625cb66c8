//! Detectors: the family and detector exist, parameters fit the schema, inputs resolve.

use std::collections::HashSet;

use adr_sdk::params::suggest;

use super::Checker;
use crate::rules::ast::*;
use crate::rules::codes::Code;
use crate::rules::diagnostic::Diagnostic;
use crate::rules::plan::param_value;

impl Checker<'_> {
    pub(super) fn check_detectors(&mut self) {
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
}

fn article(word: &str) -> &'static str {
    if word.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    }
}
