//! The plan: checked rules lowered to what the evaluator runs. Names become indices,
//! constants become numbers, features are ordered so each is computed after what it reads,
//! ensembles after their member ensembles.
//!
//! A plan is built only from rules the checker passed; [`Plan::build`] refuses rules with
//! errors, and its own guards (which the checker makes unreachable) return a [`PlanError`]
//! rather than panicking.

use std::collections::HashMap;
use std::path::PathBuf;

use adr_sdk::ParamValue;

use super::ast::*;
use super::check;
use super::diagnostic::{Diagnostic, Level};
use super::features::{compile, Node};
use super::severity::Severity;
use super::source::Loaded;
use crate::timestamp::TimeFormat;
use adr_plugin_host::Registry;

/// Why rules cannot be planned.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PlanError {
    /// The checker found errors; render them with [`diagnostic::render`](super::diagnostic::render).
    #[error("the rules have {} error(s)", .0.iter().filter(|d| d.level == Level::Error).count())]
    Invalid(Vec<Diagnostic>),
    /// Something the checker should have refused.
    #[error("cannot plan the rules: {0}")]
    Internal(String),
}

/// The columns the rules read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct InputPlan {
    /// The input block's name.
    pub name: String,
    /// The timestamp column; `None`: the reader's default.
    pub time: Option<String>,
    /// Key columns; state is kept per distinct combination.
    pub keys: Vec<String>,
    /// Value columns, in slot order (slots `0..fields.len()`).
    pub fields: Vec<String>,
}

/// One feature: its slot and its compiled expression.
#[derive(Debug, Clone, PartialEq)]
pub struct FeaturePlan {
    /// Its name.
    pub name: String,
    /// The value slot it fills.
    pub slot: usize,
    /// The expression.
    pub node: Node,
}

/// How a detector learns before its verdicts count.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct TrainingPlan {
    /// Verdicts are withheld for the first N events of each key...
    pub first_events: Option<u64>,
    /// ...or for the first span of event time (ns) of each key.
    pub first_span: Option<i64>,
    /// Every span (ns) the detector is rebuilt and trains again.
    pub refit_every: Option<i64>,
}

impl TrainingPlan {
    /// Whether there is any training clause.
    pub fn is_empty(&self) -> bool {
        *self == TrainingPlan::default()
    }

    /// The plan of a detector's training clauses.
    pub fn of(clauses: &[Training]) -> TrainingPlan {
        let mut training = TrainingPlan::default();
        for t in clauses {
            match *t {
                Training::First(n, _) => training.first_events = Some(n),
                Training::For(ns, _) => training.first_span = Some(ns),
                Training::Refit(ns, _) => training.refit_every = Some(ns),
            }
        }
        training
    }

    /// The parameters a detector described by `info` is created with, and what the
    /// engine still withholds itself.
    ///
    /// A detector that trains itself (it has a `train` or `train_for` parameter) is
    /// given the rule's `train on first N` / `train on <span>` as that parameter, unless
    /// the rule sets it, and its own undetermined verdicts are the training: the engine
    /// withholds nothing more, so `train = 100` with `train on 1d` trains on at most 100
    /// events as the parameter's doc says. Other detectors are judged from the start and
    /// the engine withholds their verdicts. `adr check` and every run go through this one
    /// function, so what one accepts the other means the same way.
    pub fn forward(
        &self,
        info: &adr_sdk::DetectorInfo,
        params: &[(String, ParamValue)],
    ) -> (Vec<(String, ParamValue)>, TrainingPlan) {
        let mut params = params.to_vec();
        let mut withheld = *self;
        let has = |name: &str| info.params.iter().any(|p| p.name == name);
        let set =
            |params: &[(String, ParamValue)], name: &str| params.iter().any(|(n, _)| n == name);
        if has("train") || has("train_for") {
            if let Some(n) = self.first_events {
                if has("train") && !set(&params, "train") {
                    params.push((
                        "train".into(),
                        ParamValue::Int(i64::try_from(n).unwrap_or(i64::MAX)),
                    ));
                }
                withheld.first_events = None;
            }
            if let Some(span) = self.first_span {
                if has("train_for") && !set(&params, "train_for") {
                    params.push(("train_for".into(), ParamValue::Duration(span)));
                }
                withheld.first_span = None;
            }
        }
        (params, withheld)
    }
}

/// One detector definition.
#[derive(Debug, Clone, PartialEq)]
pub struct DetectorPlan {
    /// Its name in the rules.
    pub name: String,
    /// `family.detector`.
    pub qualified: String,
    /// Parameters, typed.
    pub params: Vec<(String, ParamValue)>,
    /// The value slots it reads.
    pub inputs: Vec<usize>,
    /// Their names.
    pub input_names: Vec<String>,
    /// Training clauses.
    pub training: TrainingPlan,
    /// The detector that judges this one's raw scores (`threshold` clause), if any.
    pub threshold: Option<ThresholdPlan>,
}

/// A threshold clause: a one-input detector over another detector's raw scores.
#[derive(Debug, Clone, PartialEq)]
pub struct ThresholdPlan {
    /// `family.detector`.
    pub qualified: String,
    /// Parameters, typed.
    pub params: Vec<(String, ParamValue)>,
}

/// An ensemble member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Member {
    /// A detector, by index in [`Plan::detectors`].
    Detector(usize),
    /// An ensemble, by index in [`Plan::ensembles`] (always an earlier one).
    Ensemble(usize),
}

/// How members' verdicts and scores combine.
#[derive(Debug, Clone, PartialEq)]
pub enum VotePlan {
    /// At least k members say anomaly (`any` is 1, `all` is n, `majority` ⌊n/2⌋+1).
    AtLeast(usize),
    /// The weighted share of members saying anomaly reaches the threshold.
    Weighted(Vec<f64>, f64),
    /// The mean of the determined members' normalised scores reaches the threshold.
    Mean(f64),
    /// Their maximum does.
    Max(f64),
    /// Their median does.
    Median(f64),
}

/// A severity condition with names resolved to member positions.
#[derive(Debug, Clone, PartialEq)]
pub enum CondPlan {
    /// Any.
    Or(Vec<CondPlan>),
    /// All.
    And(Vec<CondPlan>),
    /// Not.
    Not(Box<CondPlan>),
    /// The member at this position says anomaly.
    Member(usize),
    /// `score >= 0.9`, `votes >= 2`.
    Compare(Measure, Cmp, f64),
}

/// One severity arm.
#[derive(Debug, Clone, PartialEq)]
pub struct ArmPlan {
    /// The level it gives.
    pub level: Severity,
    /// `None` for `otherwise`.
    pub cond: Option<CondPlan>,
    /// The arm as written, for explanations.
    pub text: String,
}

/// One ensemble.
#[derive(Debug, Clone, PartialEq)]
pub struct EnsemblePlan {
    /// Its name.
    pub name: String,
    /// Its members, in the order written.
    pub members: Vec<Member>,
    /// Their names.
    pub member_names: Vec<String>,
    /// The vote.
    pub vote: VotePlan,
    /// The vote's rule as written (`any(a, b)`), for explanations.
    pub vote_text: String,
    /// Severity arms in order; empty: every anomaly is `medium`.
    pub arms: Vec<ArmPlan>,
}

/// A notification target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotifyPlan {
    /// A line on the log (standard error).
    Log,
    /// JSON lines appended to a file.
    File(PathBuf),
    /// A JSON POST to a URL.
    Webhook(String),
}

/// One alert.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertPlan {
    /// The ensemble it watches, by index, and its name.
    pub ensemble: usize,
    /// The ensemble's name (an alert is named after it).
    pub name: String,
    /// The lowest severity that counts.
    pub level: Severity,
    /// How long the severity must hold: events, or a span of event time.
    pub hold: Hold,
    /// Quiet time after firing (ns), and whether it is kept per group.
    pub cooldown: Option<(i64, bool)>,
    /// Columns whose values group alerts; empty: the input's key columns.
    pub group_by: Vec<String>,
    /// Where fired alerts go.
    pub notify: Vec<NotifyPlan>,
}

/// What a test expects.
#[derive(Debug, Clone, PartialEq)]
pub struct ExpectPlan {
    /// The ensemble, by index.
    pub ensemble: usize,
    /// `not`.
    pub negated: bool,
    /// What must (or, negated, must not) happen.
    pub expected: Expect,
    /// Event time, ns.
    pub at: i64,
    /// The clause as written, for reports.
    pub text: String,
    /// The key as alerts print it (`adr_engine::evaluator::keys::key_text`).
    pub key: Option<String>,
    /// `file:line` of the clause.
    pub place: String,
}

/// What a test expects of an ensemble at an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// It says anomaly, whatever the severity.
    Fires,
    /// It says anomaly with this severity.
    Severity(Severity),
    /// Its alert fires at that event.
    Alerts,
}

/// One test block.
#[derive(Debug, Clone, PartialEq)]
pub struct TestPlan {
    /// Its name.
    pub name: String,
    /// The data file, resolved against the rule file's folder.
    pub data: PathBuf,
    /// Expectations.
    pub expectations: Vec<ExpectPlan>,
    /// `file:line` of the block.
    pub place: String,
}

/// Checked rules, ready to evaluate.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// The columns read.
    pub input: InputPlan,
    /// Names of the value slots: fields, then features in evaluation order.
    pub slots: Vec<String>,
    /// Features in evaluation order.
    pub features: Vec<FeaturePlan>,
    /// How many stateful functions the features hold per key.
    pub feature_states: usize,
    /// Detectors.
    pub detectors: Vec<DetectorPlan>,
    /// Ensembles, each after the ensembles it contains.
    pub ensembles: Vec<EnsemblePlan>,
    /// Alerts.
    pub alerts: Vec<AlertPlan>,
    /// Tests.
    pub tests: Vec<TestPlan>,
}

impl Plan {
    /// Checks `loaded` against `registry` and plans it.
    ///
    /// # Errors
    ///
    /// [`PlanError::Invalid`] with every diagnostic when the checker finds an error.
    pub fn build(
        loaded: &Loaded,
        registry: &Registry,
    ) -> Result<(Plan, Vec<Diagnostic>), PlanError> {
        let diagnostics = check::check(loaded, registry);
        if diagnostics.iter().any(|d| d.level == Level::Error) {
            return Err(PlanError::Invalid(diagnostics));
        }
        let mut plan = Planner::new(loaded).plan()?;
        plan.canonicalise_params(registry);
        Ok((plan, diagnostics))
    }

    /// Writes every detector's parameters in the form its schema gives them (`4` for a
    /// number is `4.0`, a window of `0` is `batch`), so that a value written another way
    /// is the same value: a reload that only respells one keeps the detector's state.
    fn canonicalise_params(&mut self, registry: &Registry) {
        let canonical = |qualified: &str, params: &mut Vec<(String, ParamValue)>| {
            let Ok((_, info)) = registry.find(qualified) else {
                return;
            };
            for (name, value) in params.iter_mut() {
                if let Some(Ok(v)) = info
                    .params
                    .iter()
                    .find(|p| &p.name == name)
                    .map(|p| p.check(value))
                {
                    *value = v;
                }
            }
        };
        for d in &mut self.detectors {
            canonical(&d.qualified, &mut d.params);
            if let Some(t) = &mut d.threshold {
                canonical(&t.qualified, &mut t.params);
            }
        }
    }

    /// The ensemble named `name`.
    pub fn ensemble(&self, name: &str) -> Option<usize> {
        self.ensembles.iter().position(|e| e.name == name)
    }
}

struct Planner<'a> {
    loaded: &'a Loaded,
    consts: HashMap<&'a str, &'a ValueKind>,
}

fn internal(message: impl Into<String>) -> PlanError {
    PlanError::Internal(message.into())
}

impl<'a> Planner<'a> {
    fn new(loaded: &'a Loaded) -> Self {
        let consts = items(loaded)
            .filter_map(|(_, i)| match i {
                Item::Const(n, v) => Some((n.text.as_str(), &v.kind)),
                _ => None,
            })
            .collect();
        Planner { loaded, consts }
    }

    fn resolve(&self, kind: &ValueKind) -> ValueKind {
        match kind {
            ValueKind::Name(n) => self
                .consts
                .get(n.as_str())
                .map_or(kind.clone(), |k| (*k).clone()),
            other => other.clone(),
        }
    }

    fn number(&self, value: &Value) -> Result<f64, PlanError> {
        self.resolve(&value.kind)
            .as_number()
            .ok_or_else(|| internal("a vote number is not a number"))
    }

    /// The source text of `span` with runs of whitespace folded to one space.
    fn text(&self, span: Span) -> String {
        self.loaded
            .sources
            .files()
            .nth(span.file)
            .map(|(_, text)| {
                text[span.start..span.end]
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_default()
    }

    fn place(&self, span: Span) -> String {
        let (line, _) = self.loaded.sources.line_col(span.file, span.start);
        format!("{}:{line}", self.loaded.sources.name(span.file))
    }

    fn plan(&self) -> Result<Plan, PlanError> {
        let input = items(self.loaded)
            .find_map(|(_, i)| match i {
                Item::Input(input) => Some(input),
                _ => None,
            })
            .map(|i| InputPlan {
                name: i.name.text.clone(),
                time: i.time.as_ref().map(|t| t.text.clone()),
                keys: i.keys.iter().map(|k| k.text.clone()).collect(),
                fields: i.fields.iter().map(|f| f.text.clone()).collect(),
            })
            .unwrap_or_default();
        let mut slots = input.fields.clone();
        let (features, feature_states) = self.features(&mut slots)?;
        let slot = |name: &str| slots.iter().position(|s| s == name);

        let mut detectors = Vec::new();
        for (_, item) in items(self.loaded) {
            let Item::Detector(d) = item else { continue };
            let training = TrainingPlan::of(&d.training);
            detectors.push(DetectorPlan {
                name: d.name.text.clone(),
                qualified: format!("{}.{}", d.family.text, d.detector.text),
                params: d
                    .params
                    .iter()
                    .map(|(n, v)| (n.text.clone(), param_value(self.resolve(&v.kind))))
                    .collect(),
                inputs: d
                    .inputs
                    .iter()
                    .map(|n| {
                        slot(&n.text).ok_or_else(|| internal(format!("no slot for `{}`", n.text)))
                    })
                    .collect::<Result<_, _>>()?,
                input_names: d.inputs.iter().map(|n| n.text.clone()).collect(),
                training,
                threshold: d.threshold.as_ref().map(|t| ThresholdPlan {
                    qualified: format!("{}.{}", t.family.text, t.detector.text),
                    params: t
                        .params
                        .iter()
                        .map(|(n, v)| (n.text.clone(), param_value(self.resolve(&v.kind))))
                        .collect(),
                }),
            });
        }

        let ensembles = self.ensembles(&detectors)?;
        let find_ensemble = |name: &str| {
            ensembles
                .iter()
                .position(|e| e.name == name)
                .ok_or_else(|| internal(format!("no ensemble `{name}`")))
        };
        let mut alerts = Vec::new();
        let mut tests = Vec::new();
        for (file, item) in items(self.loaded) {
            match item {
                Item::Alert(a) => {
                    let (level, hold) = match &a.when {
                        Some((level, hold)) => (
                            Severity::parse(&level.text)
                                .ok_or_else(|| internal("unknown severity"))?,
                            hold.unwrap_or(Hold::Events(1)),
                        ),
                        None => (Severity::Info, Hold::Events(1)),
                    };
                    let dir = self.folder(file);
                    alerts.push(AlertPlan {
                        ensemble: find_ensemble(&a.name.text)?,
                        name: a.name.text.clone(),
                        level,
                        hold,
                        cooldown: a.cooldown,
                        group_by: a.group_by.iter().map(|g| g.text.clone()).collect(),
                        notify: a
                            .notify
                            .iter()
                            .map(|t| match (t.kind.text.as_str(), &t.arg) {
                                ("log", _) => Ok(NotifyPlan::Log),
                                ("file", Some(p)) => Ok(NotifyPlan::File(dir.join(p))),
                                ("webhook", Some(u)) => Ok(NotifyPlan::Webhook(u.clone())),
                                _ => Err(internal("bad notify target")),
                            })
                            .collect::<Result<_, _>>()?,
                    });
                }
                Item::Test(t) => {
                    let mut expectations = Vec::new();
                    for x in &t.expectations {
                        let at = TimeFormat::detect(&x.at.0)
                            .and_then(|f| f.parse(&x.at.0).ok())
                            .ok_or_else(|| internal("bad test time"))?;
                        expectations.push(ExpectPlan {
                            ensemble: find_ensemble(&x.target.text)?,
                            negated: x.negated,
                            expected: match &x.expected {
                                Expected::Fires => Expect::Fires,
                                Expected::Alerts => Expect::Alerts,
                                Expected::Severity(l) => Expect::Severity(
                                    Severity::parse(&l.text)
                                        .ok_or_else(|| internal("unknown severity"))?,
                                ),
                            },
                            at,
                            text: self.text(x.span),
                            key: x.key.clone(),
                            place: self.place(x.span),
                        });
                    }
                    tests.push(TestPlan {
                        name: t.name.clone(),
                        data: self.folder(file).join(&t.data.0),
                        expectations,
                        place: self.place(t.span),
                    });
                }
                _ => {}
            }
        }
        Ok(Plan {
            input,
            slots,
            features,
            feature_states,
            detectors,
            ensembles,
            alerts,
            tests,
        })
    }

    fn folder(&self, file: FileId) -> PathBuf {
        self.loaded
            .sources
            .path(file)
            .parent()
            .map(std::path::Path::to_path_buf)
            .unwrap_or_default()
    }

    /// Features in dependency order (each after the features it reads).
    fn features(&self, slots: &mut Vec<String>) -> Result<(Vec<FeaturePlan>, usize), PlanError> {
        let defined: Vec<(&Name, &Expr)> = items(self.loaded)
            .filter_map(|(_, i)| match i {
                Item::Feature(n, e) => Some((n, e)),
                _ => None,
            })
            .collect();
        let order = dependency_order(defined.len(), "features depend on each other", |i| {
            let mut refs = Vec::new();
            names_in(defined[i].1, &mut refs);
            refs.iter()
                .filter_map(|r| defined.iter().position(|(n, _)| n.text == *r))
                .collect()
        })?;
        let mut states = 0;
        let mut features = Vec::new();
        for i in order {
            let (name, expr) = defined[i];
            let node = {
                let slot = |n: &str| slots.iter().position(|s| s == n);
                let constant = |n: &str| self.consts.get(n).map(|k| (*k).clone());
                compile(expr, &slot, &constant, &mut states).map_err(|e| internal(e.to_string()))?
            };
            features.push(FeaturePlan {
                name: name.text.clone(),
                slot: slots.len(),
                node,
            });
            slots.push(name.text.clone());
        }
        Ok((features, states))
    }

    /// Ensembles, each after its member ensembles.
    fn ensembles(&self, detectors: &[DetectorPlan]) -> Result<Vec<EnsemblePlan>, PlanError> {
        let defined: Vec<&Ensemble> = items(self.loaded)
            .filter_map(|(_, i)| match i {
                Item::Ensemble(e) => Some(e),
                _ => None,
            })
            .collect();
        let order = dependency_order(defined.len(), "ensembles contain each other", |i| {
            defined[i]
                .vote
                .members
                .iter()
                .filter_map(|m| defined.iter().position(|e| e.name.text == m.text))
                .collect()
        })?;
        let mut planned: Vec<EnsemblePlan> = Vec::new();
        for i in order {
            let e = defined[i];
            let members = e
                .vote
                .members
                .iter()
                .map(|m| {
                    if let Some(d) = detectors.iter().position(|d| d.name == m.text) {
                        Ok(Member::Detector(d))
                    } else if let Some(x) = planned.iter().position(|x| x.name == m.text) {
                        Ok(Member::Ensemble(x))
                    } else {
                        Err(internal(format!("unknown member `{}`", m.text)))
                    }
                })
                .collect::<Result<Vec<_>, _>>()?;
            let n = members.len();
            let vote = match &e.vote.kind {
                VoteKind::Any => VotePlan::AtLeast(1),
                VoteKind::All => VotePlan::AtLeast(n),
                VoteKind::Majority => VotePlan::AtLeast(n / 2 + 1),
                VoteKind::AtLeast(k) => VotePlan::AtLeast(self.number(k)? as usize),
                VoteKind::Weighted(ws, t) => {
                    let ws: Vec<f64> = ws
                        .iter()
                        .map(|w| self.number(w))
                        .collect::<Result<_, _>>()?;
                    // Only the ratios matter: relative to the largest, the sum of weights
                    // cannot overflow (1e308 and 1e308 vote as 1 and 1).
                    let largest = ws.iter().copied().fold(0.0f64, f64::max);
                    let ws = if largest > 0.0 {
                        ws.iter().map(|w| w / largest).collect()
                    } else {
                        ws
                    };
                    VotePlan::Weighted(ws, self.number(t)?)
                }
                VoteKind::Score(ScoreAgg::Mean, t) => VotePlan::Mean(self.number(t)?),
                VoteKind::Score(ScoreAgg::Max, t) => VotePlan::Max(self.number(t)?),
                VoteKind::Score(ScoreAgg::Median, t) => VotePlan::Median(self.number(t)?),
            };
            let member_names: Vec<String> = e.vote.members.iter().map(|m| m.text.clone()).collect();
            let arms = e
                .severity
                .iter()
                .map(|arm| {
                    Ok(ArmPlan {
                        level: Severity::parse(&arm.level.text)
                            .ok_or_else(|| internal("unknown severity"))?,
                        cond: arm
                            .cond
                            .as_ref()
                            .map(|c| self.cond(c, &member_names))
                            .transpose()?,
                        text: self.text(arm.span),
                    })
                })
                .collect::<Result<_, PlanError>>()?;
            planned.push(EnsemblePlan {
                name: e.name.text.clone(),
                members,
                member_names,
                vote,
                // `vote = any(a, b)` as `any(a, b)`: the clause's rule, not its keyword.
                vote_text: self
                    .text(e.vote.span)
                    .split_once('=')
                    .map_or_else(String::new, |(_, rule)| rule.trim().to_owned()),
                arms,
            });
        }
        Ok(planned)
    }

    fn cond(&self, cond: &Cond, members: &[String]) -> Result<CondPlan, PlanError> {
        Ok(match cond {
            Cond::Or(cs) => CondPlan::Or(
                cs.iter()
                    .map(|c| self.cond(c, members))
                    .collect::<Result<_, _>>()?,
            ),
            Cond::And(cs) => CondPlan::And(
                cs.iter()
                    .map(|c| self.cond(c, members))
                    .collect::<Result<_, _>>()?,
            ),
            Cond::Not(c) => CondPlan::Not(Box::new(self.cond(c, members)?)),
            Cond::Member(m) => CondPlan::Member(
                members
                    .iter()
                    .position(|x| *x == m.text)
                    .ok_or_else(|| internal(format!("`{}` is no member", m.text)))?,
            ),
            Cond::Compare(measure, cmp, value, _) => {
                CondPlan::Compare(*measure, *cmp, self.number(value)?)
            }
        })
    }
}

/// The indices `0..n` ordered so each comes after those `deps` names (depth first).
fn dependency_order(
    n: usize,
    what: &str,
    deps: impl Fn(usize) -> Vec<usize>,
) -> Result<Vec<usize>, PlanError> {
    fn visit(
        i: usize,
        deps: &dyn Fn(usize) -> Vec<usize>,
        state: &mut [u8],
        order: &mut Vec<usize>,
    ) -> bool {
        match state[i] {
            2 => return true,
            1 => return false,
            _ => {}
        }
        state[i] = 1;
        if !deps(i).into_iter().all(|j| visit(j, deps, state, order)) {
            return false;
        }
        state[i] = 2;
        order.push(i);
        true
    }
    let (mut state, mut order) = (vec![0u8; n], Vec::with_capacity(n));
    for i in 0..n {
        if !visit(i, &deps, &mut state, &mut order) {
            return Err(internal(format!("{what} in a cycle")));
        }
    }
    Ok(order)
}

/// Every item of every loaded file, with its file.
fn items(loaded: &Loaded) -> impl Iterator<Item = (FileId, &Item)> {
    loaded
        .files
        .iter()
        .flat_map(|f| f.items.iter().map(move |i| (f.id, i)))
}

fn names_in(expr: &Expr, out: &mut Vec<String>) {
    match expr {
        Expr::Value(_) => {}
        Expr::Name(n) => out.push(n.text.clone()),
        Expr::Neg(e, _) => names_in(e, out),
        Expr::Binary(_, a, b, _) => {
            names_in(a, out);
            names_in(b, out);
        }
        Expr::Call(_, args, _) => args.iter().for_each(|a| names_in(a, out)),
    }
}

pub(crate) fn param_value(kind: ValueKind) -> ParamValue {
    match kind {
        ValueKind::Int(v) => ParamValue::Int(v),
        ValueKind::Float(v) => ParamValue::Float(v),
        ValueKind::Duration(v) => ParamValue::Duration(v),
        ValueKind::Bool(v) => ParamValue::Bool(v),
        ValueKind::Str(v) | ValueKind::Name(v) => ParamValue::Text(v),
    }
}
