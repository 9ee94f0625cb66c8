//! Ensembles: members exist, votes are in range, severity arms can match, no cycles.

use std::collections::{HashMap, HashSet};

use adr_sdk::params::suggest;

use super::Checker;
use crate::ast::*;
use crate::codes::Code;
use crate::diagnostic::Diagnostic;

impl Checker<'_> {
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

    pub(super) fn check_ensembles(&mut self) {
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
                            if !(v > 0.0 && v.is_finite()) {
                                self.push(
                                    Diagnostic::new(
                                        Code::VoteRange,
                                        w.span,
                                        format!(
                                            "a weight must be a positive finite number, got {v}"
                                        ),
                                    )
                                    .label("weights are shares of the vote")
                                    .note("leave a member out of the vote rather than weigh it 0"),
                                );
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
            let (Some(a), Some(b)) = (v1.kind.as_number(), v2.kind.as_number()) else {
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
