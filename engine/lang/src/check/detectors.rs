//! Detectors: the family and detector exist, parameters fit the schema, inputs resolve.

use std::collections::HashSet;

use adr_sdk::params::suggest;

use super::Checker;
use crate::ast::*;
use crate::codes::Code;
use crate::diagnostic::Diagnostic;
use crate::plan::{param_value, TrainingPlan};

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
            Err(adr_plugin_host::LookupError::UnknownDetector {
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
        // Every parameter reads its constants, even one the detector refuses or that names
        // no detector at all: a refusal must not add a false "never used" warning.
        for (_, value) in params {
            self.resolve(value);
        }
        let info = info?;
        let mut given: Vec<&str> = Vec::new();
        for (name, value) in params {
            let Some(spec) = info.params.iter().find(|p| p.name == name.text) else {
                let suggestion = suggest(&name.text, info.params.iter().map(|p| p.name.as_str()));
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
        Some(info.clone())
    }

    /// Creates the detector a definition that passed every other check describes, with
    /// exactly the parameters a run gives it ([`TrainingPlan::forward`]), so that what a
    /// detector refuses as a whole (one parameter against another, sizes its state cannot
    /// afford) is refused here, before anything runs, as it would be at run time.
    fn check_creation(&mut self, d: &DetectorDef, info: &adr_sdk::DetectorInfo) {
        let params: Vec<_> = d
            .params
            .iter()
            .map(|(n, v)| (n.text.clone(), param_value(self.resolve(v))))
            .collect();
        let (params, _) = TrainingPlan::of(&d.training).forward(info, &params);
        let inputs: Vec<String> = d.inputs.iter().map(|n| n.text.clone()).collect();
        let qualified = format!("{}.{}", d.family.text, d.detector.text);
        let mut refused = self.registry.create(&qualified, &params, &inputs).err();
        if let (None, Some(t)) = (&refused, &d.threshold) {
            let params: Vec<_> = t
                .params
                .iter()
                .map(|(n, v)| (n.text.clone(), param_value(self.resolve(v))))
                .collect();
            let qualified = format!("{}.{}", t.family.text, t.detector.text);
            refused = self
                .registry
                .create(&qualified, &params, &[format!("{}.score", d.name.text)])
                .err();
        }
        if let Some(e) = refused {
            self.push(
                Diagnostic::new(
                    Code::InvalidParam,
                    d.span,
                    format!("`{}` cannot be created: {}", d.name.text, e.message()),
                )
                .label("refused by the detector"),
            );
        }
    }

    pub(super) fn check_detectors(&mut self) {
        for d in self.detectors.clone() {
            let before = self.diagnostics.len();
            let info = self.check_call(&d.family, &d.detector, &d.params);
            if let Some(info) = &info {
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
                let (kind, span, problem) = match *t {
                    Training::First(0, s) => (
                        "train",
                        s,
                        Some("`train on first` needs at least one event"),
                    ),
                    Training::First(n, s) if n > i64::MAX as u64 => (
                        "train",
                        s,
                        Some("`train on first` takes at most 9223372036854775807 events"),
                    ),
                    Training::First(_, s) => ("train", s, None),
                    Training::For(ns, s) if ns <= 0 => {
                        ("train", s, Some("a training span must be more than zero"))
                    }
                    Training::For(i64::MAX, s) => (
                        "train",
                        s,
                        Some("a training span must be shorter than 292 years"),
                    ),
                    Training::For(_, s) => ("train", s, None),
                    Training::Refit(ns, s) if ns <= 0 => {
                        ("refit", s, Some("`refit every` must be more than zero"))
                    }
                    Training::Refit(i64::MAX, s) => (
                        "refit",
                        s,
                        Some("`refit every` must be shorter than 292 years"),
                    ),
                    Training::Refit(_, s) => ("refit", s, None),
                };
                if let Some(problem) = problem {
                    self.push(Diagnostic::new(Code::Training, span, problem).label("here"));
                }
                // A span longer than a year is legal, and most likely a slip: every event
                // of that long would be undetermined, and nothing else would say so.
                const YEAR: i64 = 366 * 86_400_000_000_000;
                if let Training::For(ns, s) = *t {
                    if ns > YEAR && ns != i64::MAX {
                        self.push(
                            Diagnostic::new(
                                Code::LongTraining,
                                s,
                                format!(
                                    "`{}` trains for {}: its verdicts are undetermined until then",
                                    d.name.text,
                                    adr_sdk::params::format_duration(ns)
                                ),
                            )
                            .label("longer than a year")
                            .note("write the span the data covers, such as `train on 1d`"),
                        );
                    }
                }
                if !kinds.insert(kind) {
                    self.push(Diagnostic::new(
                        Code::Training,
                        span,
                        format!("`{kind}` is given twice for `{}`", d.name.text),
                    ));
                }
            }
            let clean = !self.diagnostics[before..]
                .iter()
                .any(|x| x.level == crate::diagnostic::Level::Error);
            if let (true, Some(info)) = (clean, &info) {
                self.check_creation(d, info);
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
