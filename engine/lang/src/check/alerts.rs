//! Alerts, tests, and definitions nothing uses.

use crate::timestamp::TimeFormat;
use adr_sdk::params::suggest;

use super::Checker;
use crate::ast::*;
use crate::codes::Code;
use crate::diagnostic::Diagnostic;
use crate::severity::Severity;

/// Notification targets, and whether each needs an argument.
const TARGETS: [(&str, bool); 3] = [("log", false), ("file", true), ("webhook", true)];

impl Checker<'_> {
    pub(super) fn check_alerts(&mut self) {
        let group_names: Vec<String> = self
            .inputs
            .first()
            .map(|i| i.keys.iter().map(|n| n.text.clone()).collect())
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
                let problem = match hold {
                    Some(Hold::Events(0)) => Some("an alert must hold for at least 1 event"),
                    Some(Hold::Events(n)) if *n > i64::MAX as u64 => {
                        Some("an alert can hold for at most 9223372036854775807 events")
                    }
                    Some(Hold::Duration(ns)) if *ns <= 0 || *ns == i64::MAX => {
                        Some("an alert's hold must be a duration from 1ns to 292 years")
                    }
                    _ => None,
                };
                if let Some(problem) = problem {
                    self.push(Diagnostic::new(Code::VoteRange, a.span, problem));
                }
            }
            for g in &a.group_by {
                if !group_names.contains(&g.text) {
                    self.push(
                        Diagnostic::new(
                            Code::UnknownGroupField,
                            g.span,
                            format!(
                                "cannot group by `{}`: it is no key column of the input",
                                g.text
                            ),
                        )
                        .note("alerts group by key columns: their state and cooldowns are kept per group")
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

    pub(super) fn check_level(&mut self, level: &Name) {
        if Severity::parse(&level.text).is_none() {
            self.push(
                Diagnostic::new(
                    Code::UnknownSeverity,
                    level.span,
                    format!("unknown severity `{}`", level.text),
                )
                .suggest(suggest(&level.text, Severity::ALL.map(Severity::as_str)))
                .note("severities, lowest first: info, low, medium, high, critical"),
            );
        }
    }

    pub(super) fn check_tests(&mut self) {
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
                let has_alert = self.alerts.iter().any(|a| a.name.text == x.target.text);
                let is_ensemble = self.ensembles.iter().any(|e| e.name.text == x.target.text);
                if x.expected == Expected::Alerts && is_ensemble && !has_alert {
                    self.push(
                        Diagnostic::new(
                            Code::TestAlert,
                            x.target.span,
                            format!(
                                "the test expects an alert for `{}`, which has no alert block",
                                x.target.text
                            ),
                        )
                        .help(format!(
                            "add `alert {} {{ when severity >= medium }}`, or expect `fires`",
                            x.target.text
                        )),
                    );
                }
                if TimeFormat::detect(&x.at.0)
                    .and_then(|f| f.parse(&x.at.0).ok())
                    .is_none()
                {
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

    pub(super) fn check_unused(&mut self) {
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
