//! Running rules over an event stream: read a batch, evaluate it, hand it to the sinks
//! (alerts, the scored table, notifications, tests, explanations), and count.
//!
//! This is the pipeline behind `adr run`, `adr test` and `adr explain`, and the one a
//! service embeds: [`Evaluator`] for the state, [`read_batch`] to feed it from a file or
//! stream, [`Sink`]s for what to do with the results.

use std::collections::BTreeMap;
use std::time::Instant;

use adr_sdk::Verdict;

use crate::io::{Chunk, EventInput, EventSpec, InputError, InputStats};
use crate::rules::eval::{EvalError, Evaluator, KeyId, KeyTable, Outcome, Rows};
use crate::rules::plan::Plan;

pub mod explain;
pub mod notify;
pub mod sinks;
pub mod testing;

/// Why a run stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunError {
    /// The input is unreadable.
    #[error(transparent)]
    Input(#[from] InputError),
    /// Evaluation failed.
    #[error(transparent)]
    Eval(#[from] EvalError),
    /// Writing results failed.
    #[error("writing the output failed: {0}")]
    Output(#[from] std::io::Error),
}

/// A batch of events as read: the rows and each row's key.
#[derive(Debug, Default)]
pub struct Batch {
    /// Times, field values and raw records.
    pub chunk: Chunk,
    /// Each row's key.
    pub keys: Vec<KeyId>,
}

impl Batch {
    /// The batch as the evaluator takes it; `fields` holds the column slices.
    pub fn rows<'a>(&'a self, fields: &'a mut Vec<&'a [f64]>) -> Rows<'a> {
        fields.clear();
        fields.extend(self.chunk.columns.iter().map(Vec::as_slice));
        Rows {
            timestamps: &self.chunk.timestamps,
            keys: &self.keys,
            fields,
            first_row: self.chunk.first_row,
        }
    }
}

/// What the sinks see of a batch.
#[derive(Debug, Clone, Copy)]
pub struct BatchView<'a> {
    /// The rules.
    pub plan: &'a Plan,
    /// The rows.
    pub chunk: &'a Chunk,
    /// Each row's key.
    pub keys: &'a [KeyId],
    /// The key names.
    pub key_names: &'a KeyTable,
    /// What was computed.
    pub outcome: &'a Outcome,
}

/// Something done with each evaluated batch.
pub trait Sink {
    /// Takes a batch.
    ///
    /// # Errors
    ///
    /// Writing failed.
    fn batch(&mut self, view: &BatchView<'_>) -> std::io::Result<()>;

    /// Flushes at the end of the stream.
    ///
    /// # Errors
    ///
    /// Writing failed.
    fn finish(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The columns the plan reads, as an input spec; one batch for the whole input when a
/// detector needs the whole series.
pub fn event_spec(evaluator: &Evaluator<'_>) -> EventSpec {
    let input = &evaluator.plan().input;
    EventSpec {
        time: input.time.clone(),
        keys: input.keys.clone(),
        fields: input.fields.clone(),
        chunk_rows: if evaluator.needs_whole_series() {
            usize::MAX
        } else {
            0
        },
    }
}

/// Reads the next batch and gives each row its key; 0 at the end.
///
/// # Errors
///
/// The input's error, or a detector refusing to be built for a new key.
pub fn read_batch(
    input: &mut EventInput,
    evaluator: &mut Evaluator<'_>,
    batch: &mut Batch,
) -> Result<usize, RunError> {
    let n = input.read_chunk(&mut batch.chunk)?;
    batch.keys.clear();
    for i in 0..n {
        batch
            .keys
            .push(evaluator.key(input.key_parts(&batch.chunk, i))?);
    }
    Ok(n)
}

/// Alerts fired and suppressed by one alert.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct AlertCount {
    /// The alert.
    pub alert: String,
    /// Times it fired.
    pub fired: u64,
    /// Firings its cooldown suppressed.
    pub suppressed: u64,
}

/// What a run did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct RunSummary {
    /// Rows read.
    pub rows: u64,
    /// Distinct keys.
    pub keys: u64,
    /// Anomalous events per ensemble.
    pub anomalies: BTreeMap<String, u64>,
    /// Alerts fired, by severity.
    pub alerts_by_severity: BTreeMap<String, u64>,
    /// Per alert: fired and suppressed.
    pub alerts: Vec<AlertCount>,
    /// Detector failures (each costs that detector's verdicts for one key in one batch).
    pub detector_failures: u64,
    /// What the input held besides clean rows.
    pub input: InputStats,
    /// Rows that went back in time within their key (with `--unsorted allow`).
    pub unsorted_rows: u64,
    /// Wall time.
    pub seconds: f64,
    /// Rows per second.
    pub rows_per_second: f64,
}

/// Runs the evaluator over the whole input, feeding every batch to every sink; `progress`
/// gets the bytes read after each batch and `on_failure` each detector failure.
///
/// # Errors
///
/// A [`RunError`]; what the sinks were given before it stays written.
pub fn run(
    evaluator: &mut Evaluator<'_>,
    input: &mut EventInput,
    sinks: &mut [&mut dyn Sink],
    mut progress: impl FnMut(u64),
    mut on_failure: impl FnMut(&crate::rules::eval::DetectorFailure),
) -> Result<RunSummary, RunError> {
    let started = Instant::now();
    let mut batch = Batch::default();
    let mut outcome = Outcome::default();
    let mut summary = RunSummary::default();
    let mut anomalies = vec![0u64; evaluator.plan().ensembles.len()];
    while read_batch(input, evaluator, &mut batch)? > 0 {
        let chunk = &batch.chunk;
        let mut fields = Vec::new();
        evaluator.process(&batch.rows(&mut fields), &mut outcome)?;
        outcome.failures.iter().for_each(&mut on_failure);
        for (count, column) in anomalies.iter_mut().zip(&outcome.ensembles) {
            *count += column
                .iter()
                .filter(|j| j.verdict == Verdict::Anomaly)
                .count() as u64;
        }
        for f in &outcome.fired {
            *summary
                .alerts_by_severity
                .entry(f.severity.to_string())
                .or_default() += 1;
        }
        let view = BatchView {
            plan: evaluator.plan(),
            chunk,
            keys: &batch.keys,
            key_names: evaluator.keys(),
            outcome: &outcome,
        };
        for sink in sinks.iter_mut() {
            sink.batch(&view)?;
        }
        progress(input.bytes_read());
    }
    for sink in sinks.iter_mut() {
        sink.finish()?;
    }
    let plan = evaluator.plan();
    summary.anomalies = plan
        .ensembles
        .iter()
        .map(|e| e.name.clone())
        .zip(anomalies)
        .collect();
    summary.alerts = plan
        .alerts
        .iter()
        .enumerate()
        .map(|(a, p)| AlertCount {
            alert: p.name.clone(),
            fired: evaluator.alerts().fired[a],
            suppressed: evaluator.alerts().suppressed[a],
        })
        .collect();
    summary.input = input.stats();
    summary.rows = summary.input.rows;
    summary.keys = evaluator.keys().len() as u64;
    summary.detector_failures = evaluator.failures();
    summary.unsorted_rows = evaluator.unsorted_rows();
    summary.seconds = started.elapsed().as_secs_f64();
    summary.rows_per_second = summary.rows as f64 / summary.seconds.max(1e-9);
    Ok(summary)
}

impl RunSummary {
    /// The summary for a person, a few lines.
    pub fn render(&self) -> String {
        let mut out = format!(
            "{} rows, {} key{} in {:.2} s ({:.0} rows/s)\n",
            self.rows,
            self.keys,
            if self.keys == 1 { "" } else { "s" },
            self.seconds,
            self.rows_per_second
        );
        for (ensemble, n) in &self.anomalies {
            out.push_str(&format!("ensemble {ensemble}: {n} anomalous events\n"));
        }
        for a in &self.alerts {
            out.push_str(&format!(
                "alert {}: {} fired, {} suppressed by cooldown\n",
                a.alert, a.fired, a.suppressed
            ));
        }
        if !self.alerts_by_severity.is_empty() {
            let by: Vec<String> = crate::rules::severity::Severity::ALL
                .iter()
                .rev()
                .filter_map(|s| {
                    self.alerts_by_severity
                        .get(s.as_str())
                        .map(|n| format!("{n} {s}"))
                })
                .collect();
            out.push_str(&format!("alerts by severity: {}\n", by.join(", ")));
        }
        let odd = [
            (self.input.missing, "missing values"),
            (self.input.non_finite, "non-finite values"),
            (self.unsorted_rows, "rows earlier than their key's previous"),
            (
                self.detector_failures,
                "detector failures (see the warnings above)",
            ),
        ];
        for (n, what) in odd {
            if n > 0 {
                out.push_str(&format!("{n} {what}\n"));
            }
        }
        out
    }
}
