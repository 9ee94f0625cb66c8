//! `adr explain`: why the rules said what they said at one event: each detector's raw and
//! normalised score and verdict, each ensemble's vote, score and matching severity arm, and
//! each alert's state (how long its condition has held, whether it fired, its cooldown).
//!
//! The input is evaluated up to and including the event, in the same batches a run uses
//! (through the same reorder stage, with a lateness) but cut right after it, so the
//! state shown is exactly the state at that event.

use serde::Serialize;

use super::reorder::Reorder;
use super::{read_batch, Batch, RunError};
use crate::evaluator::keys::key_text;
use crate::evaluator::{Evaluator, Outcome, Rows};
use crate::io::timestamp::format_rfc3339;
use crate::io::EventInput;
use crate::rules::ast::Hold;

/// One detector at the event.
#[derive(Debug, Clone, Serialize)]
pub struct DetectorView {
    /// Its name in the rules.
    pub name: String,
    /// `family.detector`.
    pub detector: String,
    /// What it reads.
    pub inputs: Vec<String>,
    /// Its input values at the event.
    pub values: Vec<f64>,
    /// Raw score.
    pub raw: f64,
    /// Normalised score.
    pub score: f64,
    /// Verdict.
    pub verdict: &'static str,
}

/// One ensemble at the event.
#[derive(Debug, Clone, Serialize)]
pub struct EnsembleView {
    /// Its name.
    pub name: String,
    /// The vote as written.
    pub vote: String,
    /// Members saying anomaly, of how many.
    pub votes: u32,
    /// Members.
    pub members: usize,
    /// Its normalised score.
    pub score: f64,
    /// Its verdict.
    pub verdict: &'static str,
    /// Its severity, for an anomaly.
    pub severity: Option<String>,
    /// The arm that gave the severity, as written (`None`: the default, `medium`).
    pub arm: Option<String>,
}

/// One alert at the event.
#[derive(Debug, Clone, Serialize)]
pub struct AlertView {
    /// Its name.
    pub name: String,
    /// Its condition, as a sentence.
    pub condition: String,
    /// Since when the condition holds, if it does.
    pub holding_since: Option<String>,
    /// For how many events.
    pub holding_events: u64,
    /// Whether it fired at this event.
    pub fired_here: bool,
    /// Whether it has fired (or was suppressed) for the current run of the condition.
    pub active: bool,
    /// When the cooldown of its group ends, if it runs.
    pub cooldown_until: Option<String>,
}

/// Everything at one event.
#[derive(Debug, Clone, Serialize)]
pub struct Explanation {
    /// Event time.
    pub time: String,
    /// Key.
    pub key: String,
    /// Data row, from 1.
    pub row: u64,
    /// Detectors.
    pub detectors: Vec<DetectorView>,
    /// Ensembles.
    pub ensembles: Vec<EnsembleView>,
    /// Alerts.
    pub alerts: Vec<AlertView>,
}

/// An event looked for that the run did not score: it came after the watermark.
#[derive(Debug, Clone, Serialize)]
pub struct DroppedLate {
    /// Event time.
    pub time: String,
    /// Key.
    pub key: String,
    /// Data row, from 1.
    pub row: u64,
    /// The watermark when it came: events before it were too late to place.
    pub watermark: String,
}

/// What was found of the events looked for.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Explained {
    /// Each event scored, explained.
    pub events: Vec<Explanation>,
    /// Each event the run dropped as late (with a reorder stage).
    pub dropped_late: Vec<DroppedLate>,
}

/// Evaluates `input` and explains every event at `at` (of `key`, when given); with
/// `reorder`, through that event-time reorder stage, as `adr run --lateness` does (rows
/// are then numbered in scoring order, and an event it drops as late is reported as such).
///
/// # Errors
///
/// A [`RunError`] from reading or evaluating.
pub fn explain(
    evaluator: &mut Evaluator,
    input: &mut EventInput,
    at: i64,
    key: Option<&str>,
    reorder: Option<&mut Reorder>,
) -> Result<Explained, RunError> {
    let mut look = Looking {
        at,
        key,
        found: Vec::new(),
        outcome: Outcome::default(),
        scored: 0,
    };
    let mut batch = Batch::default();
    let Some(reorder) = reorder else {
        while read_batch(input, evaluator, &mut batch)? > 0 {
            look.batch(evaluator, &batch)?;
        }
        return Ok(Explained {
            events: look.found,
            dropped_late: Vec::new(),
        });
    };
    let mut dropped_late = Vec::new();
    let mut staging = Batch::default();
    while input.read_chunk(&mut staging.chunk)? > 0 {
        let chunk = &staging.chunk;
        for i in 0..chunk.len {
            let parts = input.key_parts(chunk, i);
            let key: Vec<String> = parts
                .map(|p| String::from_utf8_lossy(p).into_owned())
                .collect();
            let values = chunk.columns.iter().map(|c| c[i]).collect();
            let (time, watermark) = (chunk.timestamps[i], reorder.watermark());
            let text = (time == at).then(|| key_text(&key));
            if !reorder.offer(time, key, values, None) {
                if let Some(text) = text.filter(|t| look.key.is_none_or(|k| k == t)) {
                    dropped_late.push(DroppedLate {
                        time: format_rfc3339(time),
                        key: text,
                        row: chunk.first_row + i as u64,
                        watermark: format_rfc3339(watermark),
                    });
                }
            }
            if reorder.full() {
                look.released(evaluator, reorder, &mut batch, false)?;
                if reorder.full() {
                    reorder.force();
                    look.released(evaluator, reorder, &mut batch, false)?;
                }
            }
        }
        look.released(evaluator, reorder, &mut batch, false)?;
    }
    look.released(evaluator, reorder, &mut batch, true)?;
    Ok(Explained {
        events: look.found,
        dropped_late,
    })
}

/// The event looked for, and what was found of it so far.
struct Looking<'k> {
    at: i64,
    key: Option<&'k str>,
    found: Vec<Explanation>,
    outcome: Outcome,
    /// Rows scored so far (with a reorder stage, rows are numbered in this order).
    scored: u64,
}

impl Looking<'_> {
    /// Evaluates one batch, cut right after each event looked for, explaining it.
    fn batch(&mut self, evaluator: &mut Evaluator, batch: &Batch) -> Result<(), RunError> {
        let mut fields = Vec::new();
        let rows = batch.rows(&mut fields);
        let mut start = 0;
        for i in 0..rows.len() {
            if rows.timestamps[i] != self.at
                || self
                    .key
                    .is_some_and(|k| evaluator.keys().name(rows.keys[i]) != k)
            {
                continue;
            }
            // Evaluate up to and including this event, then look.
            let mut sub = Vec::new();
            let part = rows.slice(start..i + 1, &mut sub);
            evaluator.process_part(&part, &mut self.outcome)?;
            self.found
                .push(describe(evaluator, &part, &self.outcome, i - start));
            start = i + 1;
        }
        if start < rows.len() {
            let mut sub = Vec::new();
            evaluator.process_part(&rows.slice(start..rows.len(), &mut sub), &mut self.outcome)?;
        }
        // as adr run does: evictions between batches only
        evaluator.end_batch();
        self.scored += rows.len() as u64;
        Ok(())
    }

    /// Evaluates what `reorder` lets go (everything with `all`).
    fn released(
        &mut self,
        evaluator: &mut Evaluator,
        reorder: &mut Reorder,
        batch: &mut Batch,
        all: bool,
    ) -> Result<(), RunError> {
        if reorder.release(evaluator, batch, all)? > 0 {
            batch.chunk.first_row = self.scored + 1;
            self.batch(evaluator, batch)?;
        }
        Ok(())
    }
}

fn describe(evaluator: &Evaluator, rows: &Rows<'_>, outcome: &Outcome, i: usize) -> Explanation {
    let row = rows.first_row + i as u64;
    let plan = evaluator.plan();
    let n_fields = plan.input.fields.len();
    let detectors = plan
        .detectors
        .iter()
        .zip(&outcome.detectors)
        .map(|(d, s)| DetectorView {
            name: d.name.clone(),
            detector: d.qualified.clone(),
            inputs: d.input_names.clone(),
            values: d
                .inputs
                .iter()
                .map(|&slot| {
                    if slot < n_fields {
                        rows.fields[slot][i]
                    } else {
                        outcome.features[slot - n_fields][i]
                    }
                })
                .collect(),
            raw: s.raw[i],
            score: s.normalised[i],
            verdict: s.verdict[i].as_str(),
        })
        .collect();
    let ensembles = plan
        .ensembles
        .iter()
        .zip(&outcome.ensembles)
        .map(|(e, column)| {
            let j = column[i];
            EnsembleView {
                name: e.name.clone(),
                vote: e.vote_text.clone(),
                votes: j.votes,
                members: e.members.len(),
                score: j.score,
                verdict: j.verdict.as_str(),
                severity: j.severity.map(|s| s.to_string()),
                arm: j.arm.map(|a| e.arms[a as usize].text.clone()),
            }
        })
        .collect();
    let (key, ts) = (rows.keys[i], rows.timestamps[i]);
    let alerts = plan
        .alerts
        .iter()
        .enumerate()
        .map(|(a, p)| {
            let state = evaluator.alerts().state(a, key);
            AlertView {
                name: p.name.clone(),
                condition: format!(
                    "severity >= {} for {}",
                    p.level,
                    match p.hold {
                        Hold::Events(n) => format!("{n} event{}", if n == 1 { "" } else { "s" }),
                        Hold::Duration(d) => adr_sdk::params::format_duration(d),
                    }
                ),
                holding_since: state.holding.map(|(t, _)| format_rfc3339(t)),
                holding_events: state.holding.map_or(0, |(_, n)| n),
                fired_here: outcome.fired.iter().any(|f| f.row == row && f.index == a),
                active: state.active,
                cooldown_until: evaluator
                    .alerts()
                    .cooldown_until(a, key, ts)
                    .map(format_rfc3339),
            }
        })
        .collect();
    Explanation {
        time: format_rfc3339(ts),
        key: evaluator.keys().name(key).to_owned(),
        row,
        detectors,
        ensembles,
        alerts,
    }
}

impl Explanation {
    /// The explanation for a person.
    pub fn render(&self) -> String {
        let num = |x: f64| {
            if x.is_nan() {
                "-".to_owned()
            } else {
                format!("{x:.4}")
            }
        };
        let mut out = format!(
            "at {}{} (row {})\n\ndetectors\n",
            self.time,
            if self.key.is_empty() {
                String::new()
            } else {
                format!(", key {}", self.key)
            },
            self.row
        );
        for d in &self.detectors {
            let values: Vec<String> = d
                .inputs
                .iter()
                .zip(&d.values)
                .map(|(n, v)| format!("{n} = {}", num(*v)))
                .collect();
            out.push_str(&format!(
                "  {:<14} {:<22} raw {:>10}  score {:>6}  {:<12} ({})\n",
                d.name,
                d.detector,
                num(d.raw),
                num(d.score),
                d.verdict,
                values.join(", ")
            ));
        }
        out.push_str("\nensembles\n");
        for e in &self.ensembles {
            out.push_str(&format!(
                "  {:<14} {}: {} of {} members say anomaly, score {} -> {}{}\n",
                e.name,
                e.vote,
                e.votes,
                e.members,
                num(e.score),
                e.verdict,
                match (&e.severity, &e.arm) {
                    (Some(s), Some(arm)) => format!(", severity {s} by `{arm}`"),
                    (Some(s), None) => format!(", severity {s} (no arm matched: the default)"),
                    _ => String::new(),
                }
            ));
        }
        if !self.alerts.is_empty() {
            out.push_str("\nalerts\n");
        }
        for a in &self.alerts {
            let holding = match &a.holding_since {
                Some(since) => format!(
                    "holding since {since} ({} event{})",
                    a.holding_events,
                    if a.holding_events == 1 { "" } else { "s" }
                ),
                None => "not holding".to_owned(),
            };
            let state = if a.fired_here {
                "FIRED at this event".to_owned()
            } else if a.active {
                "active (fired or suppressed earlier in this run of the condition)".to_owned()
            } else {
                "not fired".to_owned()
            };
            out.push_str(&format!(
                "  {:<14} when {}: {holding}; {state}{}\n",
                a.name,
                a.condition,
                a.cooldown_until
                    .as_ref()
                    .map(|t| format!("; cooldown until {t}"))
                    .unwrap_or_default()
            ));
        }
        out
    }
}
