//! `adr test`: runs each test block's data through a fresh copy of the rules and checks
//! its expectations at the events they name.

use std::collections::HashMap;
use std::sync::Arc;

use adr_sdk::Verdict;

use super::{event_spec, BatchView, Sink};
use crate::evaluator::{Evaluator, Judgement, Outcome};
use crate::io::timestamp::format_rfc3339;
use crate::io::{open_path, EventInput, InputFormat};
use crate::plugins::Registry;
use crate::rules::plan::{Expect, ExpectPlan, Plan, TestPlan};

/// The result of one expectation.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct CheckResult {
    /// The clause as written.
    pub expectation: String,
    /// `file:line`.
    pub place: String,
    /// Whether it held.
    pub passed: bool,
    /// What was found at that time: per key, the ensemble's judgement and its members.
    pub got: String,
}

/// The result of one test block.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TestResult {
    /// The test's name.
    pub name: String,
    /// `file:line`.
    pub place: String,
    /// Whether every expectation held (and the data could be run).
    pub passed: bool,
    /// Why the test could not run, if it could not.
    pub error: Option<String>,
    /// Each expectation.
    pub checks: Vec<CheckResult>,
}

/// What was seen at one expected event.
#[derive(Debug, Clone)]
struct Hit {
    key: String,
    judgement: Judgement,
    members: Vec<(String, f64, Verdict)>,
    alerted: bool,
}

/// Collects, for each expectation, the events at its time.
struct Collector<'p> {
    expectations: &'p [ExpectPlan],
    at: HashMap<i64, Vec<usize>>,
    hits: Vec<Vec<Hit>>,
}

impl Sink for Collector<'_> {
    fn batch(&mut self, view: &BatchView<'_>) -> std::io::Result<()> {
        for (i, ts) in view.chunk.timestamps.iter().enumerate() {
            let Some(wanted) = self.at.get(ts) else {
                continue;
            };
            let key = view.key_names.name(view.keys[i]);
            for &x in wanted {
                let e = &self.expectations[x];
                if e.key.as_deref().is_some_and(|k| k != key) {
                    continue;
                }
                let plan = &view.plan.ensembles[e.ensemble];
                let members = plan
                    .members
                    .iter()
                    .zip(&plan.member_names)
                    .map(|(m, name)| {
                        let (score, verdict) = super::sinks::member_score(view.outcome, *m, i);
                        (name.clone(), score, verdict)
                    })
                    .collect();
                let row = view.chunk.first_row + i as u64;
                let alerted = view
                    .outcome
                    .fired
                    .iter()
                    .any(|f| f.row == row && view.plan.alerts[f.index].ensemble == e.ensemble);
                self.hits[x].push(Hit {
                    key: key.to_owned(),
                    judgement: view.outcome.ensembles[e.ensemble][i],
                    members,
                    alerted,
                });
            }
        }
        Ok(())
    }
}

/// Runs every test of `plan`.
pub fn run_tests(plan: &Plan, registry: &Arc<Registry>) -> Vec<TestResult> {
    plan.tests
        .iter()
        .map(|t| run_test(plan, t, registry))
        .collect()
}

fn run_test(plan: &Plan, test: &TestPlan, registry: &Arc<Registry>) -> TestResult {
    let mut result = TestResult {
        name: test.name.clone(),
        place: test.place.clone(),
        passed: false,
        error: None,
        checks: Vec::new(),
    };
    let mut collector = Collector {
        expectations: &test.expectations,
        at: HashMap::new(),
        hits: vec![Vec::new(); test.expectations.len()],
    };
    for (i, e) in test.expectations.iter().enumerate() {
        collector.at.entry(e.at).or_default().push(i);
    }
    let outcome = (|| -> Result<(), String> {
        let mut evaluator =
            Evaluator::new(plan.clone(), Arc::clone(registry)).map_err(|e| e.to_string())?;
        let path = test.data.display().to_string();
        let source = open_path(&path).map_err(|e| format!("cannot read {path}: {e}"))?;
        let mut input = EventInput::open(
            source,
            InputFormat::from_path(&path),
            &event_spec(&evaluator),
        )
        .map_err(|e| format!("{path}: {e}"))?;
        let (mut batch, mut outcome) = (super::Batch::default(), Outcome::default());
        let fail = |e: &dyn std::fmt::Display| format!("{path}: {e}");
        while super::read_batch(&mut input, &mut evaluator, &mut batch).map_err(|e| fail(&e))? > 0 {
            let mut fields = Vec::new();
            evaluator
                .process(&batch.rows(&mut fields), &mut outcome)
                .map_err(|e| fail(&e))?;
            let view = BatchView {
                plan: evaluator.plan(),
                chunk: &batch.chunk,
                keys: &batch.keys,
                key_names: evaluator.keys(),
                outcome: &outcome,
            };
            collector.batch(&view).map_err(|e| fail(&e))?;
        }
        Ok(())
    })();
    if let Err(e) = outcome {
        result.error = Some(e);
        return result;
    }
    for (x, e) in test.expectations.iter().enumerate() {
        let hits = &collector.hits[x];
        let matches = |h: &Hit| match e.expected {
            Expect::Alerts => h.alerted,
            Expect::Fires => h.judgement.verdict == Verdict::Anomaly,
            Expect::Severity(level) => h.judgement.severity == Some(level),
        };
        let passed = !hits.is_empty() && (hits.iter().any(matches) != e.negated);
        let got = if hits.is_empty() {
            format!(
                "no event at {}{}",
                format_rfc3339(e.at),
                e.key
                    .as_ref()
                    .map(|k| format!(" for key {k}"))
                    .unwrap_or_default()
            )
        } else {
            hits.iter().map(describe).collect::<Vec<_>>().join("; ")
        };
        result.checks.push(CheckResult {
            expectation: e.text.clone(),
            place: e.place.clone(),
            passed,
            got,
        });
    }
    result.passed = result.checks.iter().all(|c| c.passed);
    result
}

fn describe(h: &Hit) -> String {
    let j = &h.judgement;
    let key = if h.key.is_empty() {
        String::new()
    } else {
        format!("key {}: ", h.key)
    };
    let verdict = match (j.verdict, j.severity) {
        (Verdict::Anomaly, Some(s)) => format!("anomaly, severity {s}"),
        (v, _) => v.as_str().to_owned(),
    };
    let members: Vec<String> = h
        .members
        .iter()
        .map(|(name, score, v)| {
            if score.is_nan() {
                format!("{name} undetermined")
            } else {
                format!("{name} {score:.3} {}", v.as_str())
            }
        })
        .collect();
    format!(
        "{key}{verdict} (score {}, {} vote{}{}): {}",
        if j.score.is_nan() {
            "-".to_owned()
        } else {
            format!("{:.3}", j.score)
        },
        j.votes,
        if j.votes == 1 { "" } else { "s" },
        if h.alerted { ", alert fired" } else { "" },
        members.join(", ")
    )
}
