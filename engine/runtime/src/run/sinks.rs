//! Writers for a run's results: fired alerts as JSON lines, and the scored table as CSV.

use std::io::Write;

use serde_json::{json, Value};

use super::{BatchView, Sink};
use crate::evaluator::{Fired, Judgement, KeyTable, Outcome};
use crate::io::output::format_number;
use crate::io::timestamp::format_rfc3339;
use crate::rules::plan::{Member, Plan};

/// The JSON document of a fired alert: what fired, when, for which key (its text, and its
/// value per key column under `keys`), and each member's score and verdict at that event.
pub fn alert_json(
    plan: &Plan,
    outcome: &Outcome,
    row_in_batch: usize,
    fired: &Fired,
    keys: &KeyTable,
) -> Value {
    let key = keys.name(fired.key);
    let columns: serde_json::Map<String, Value> = plan
        .input
        .keys
        .iter()
        .cloned()
        .zip(
            keys.parts(fired.key)
                .iter()
                .map(|p| Value::from(p.as_str())),
        )
        .collect();
    let ensemble = &plan.ensembles[plan.alerts[fired.index].ensemble];
    let members: Vec<Value> = ensemble
        .members
        .iter()
        .zip(&ensemble.member_names)
        .map(|(m, name)| {
            let (score, verdict) = member_score(outcome, *m, row_in_batch);
            json!({ "name": name, "score": score, "verdict": verdict.as_str() })
        })
        .collect();
    json!({
        "alert": fired.alert,
        "time": format_rfc3339(fired.ts),
        "key": key,
        "keys": columns,
        "group": fired.group,
        "severity": fired.severity,
        "score": fired.score,
        "since": format_rfc3339(fired.since),
        "events": fired.events,
        "suppressed": fired.suppressed,
        "row": fired.row,
        "members": members,
    })
}

/// A member's normalised score and verdict at a row of the batch.
pub fn member_score(outcome: &Outcome, member: Member, row: usize) -> (f64, adr_sdk::Verdict) {
    match member {
        Member::Detector(d) => {
            let s = &outcome.detectors[d];
            (s.normalised[row], s.verdict[row])
        }
        Member::Ensemble(e) => {
            let Judgement { score, verdict, .. } = outcome.ensembles[e][row];
            (score, verdict)
        }
    }
}

/// Writes each fired alert as a JSON line.
#[derive(Debug)]
pub struct AlertWriter<W: Write> {
    out: W,
    /// Alerts written.
    pub written: u64,
}

impl<W: Write> AlertWriter<W> {
    /// A writer to `out`.
    pub fn new(out: W) -> Self {
        AlertWriter { out, written: 0 }
    }
}

impl<W: Write> Sink for AlertWriter<W> {
    fn batch(&mut self, view: &BatchView<'_>) -> std::io::Result<()> {
        for f in &view.outcome.fired {
            let i = (f.row - view.chunk.first_row) as usize;
            let doc = alert_json(view.plan, view.outcome, i, f, view.key_names);
            serde_json::to_writer(&mut self.out, &doc)?;
            self.out.write_all(b"\n")?;
            self.written += 1;
        }
        // Alerts are for acting on: a reader of a stream sees each batch's at once.
        self.out.flush()
    }

    fn finish(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

/// Writes every event with its features, detector scores and ensemble judgements as CSV.
#[derive(Debug)]
pub struct ScoredWriter<W: Write> {
    out: csv::Writer<W>,
    header: Option<Vec<String>>,
}

impl<W: Write> ScoredWriter<W> {
    /// A writer of `plan`'s results to `out`.
    pub fn new(out: W, plan: &Plan) -> Self {
        ScoredWriter {
            out: csv::WriterBuilder::new()
                .buffer_capacity(1 << 20)
                .from_writer(out),
            header: Some(Self::columns(plan)),
        }
    }

    fn write_header(&mut self) -> csv::Result<()> {
        match self.header.take() {
            Some(header) => self.out.write_record(&header),
            None => Ok(()),
        }
    }

    /// The table's columns: time, key, fields and features, then per detector its raw
    /// score, normalised score and verdict, then per ensemble its score, verdict and
    /// severity.
    pub fn columns(plan: &Plan) -> Vec<String> {
        let mut header: Vec<String> = vec!["time".into()];
        if !plan.input.keys.is_empty() {
            header.push("key".into());
        }
        header.extend(plan.slots.iter().cloned());
        for d in &plan.detectors {
            for suffix in ["raw", "score", "verdict"] {
                header.push(format!("{}.{suffix}", d.name));
            }
        }
        for e in &plan.ensembles {
            for suffix in ["score", "verdict", "severity"] {
                header.push(format!("{}.{suffix}", e.name));
            }
        }
        header
    }
}

impl<W: Write> Sink for ScoredWriter<W> {
    fn batch(&mut self, view: &BatchView<'_>) -> std::io::Result<()> {
        self.write_header()?;
        let (plan, chunk, outcome) = (view.plan, view.chunk, view.outcome);
        let mut buffer = ryu::Buffer::new();
        for i in 0..chunk.len {
            self.out.write_field(format_rfc3339(chunk.timestamps[i]))?;
            if !plan.input.keys.is_empty() {
                self.out.write_field(view.key_names.name(view.keys[i]))?;
            }
            for column in chunk.columns.iter().chain(&outcome.features) {
                self.out
                    .write_field(format_number(&mut buffer, column[i]))?;
            }
            for s in &outcome.detectors {
                self.out.write_field(format_number(&mut buffer, s.raw[i]))?;
                self.out
                    .write_field(format_number(&mut buffer, s.normalised[i]))?;
                self.out.write_field(s.verdict[i].as_str())?;
            }
            for column in &outcome.ensembles {
                let j = &column[i];
                self.out.write_field(format_number(&mut buffer, j.score))?;
                self.out.write_field(j.verdict.as_str())?;
                self.out
                    .write_field(j.severity.map_or("", |s| s.as_str()))?;
            }
            self.out.write_record(None::<&[u8]>)?;
        }
        Ok(())
    }

    fn finish(&mut self) -> std::io::Result<()> {
        self.write_header()?;
        self.out.flush()
    }
}
