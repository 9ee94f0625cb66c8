//! Running rules over an event stream: read a batch, evaluate it, hand it to the sinks
//! (alerts, the scored table, notifications, tests, explanations), and count.
//!
//! These are the pieces behind `adr run` (through [`crate::embed::Engine`]), `adr test`
//! and `adr explain`: [`Evaluator`] for the state, [`read_batch`] to feed it from a file
//! or stream, [`Sink`]s for what to do with the results.

use std::collections::BTreeMap;

use crate::evaluator::{EvalError, Evaluator, KeyId, KeyTable, Outcome, Rows};
use crate::io::{Chunk, EventInput, EventSpec, InputError, InputStats};
use crate::rules::plan::Plan;

pub mod explain;
pub mod notify;
pub mod outbox;
pub mod reorder;
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

    /// Problems to report at the end, one line each (failed deliveries, say).
    fn problems(&self) -> Vec<String> {
        Vec::new()
    }

    /// What happened to deliveries to outside targets (webhooks), per target.
    fn deliveries(&self) -> Vec<outbox::DeliveryStats> {
        Vec::new()
    }
}

/// The text of a panic's payload.
pub fn panic_message(payload: &Box<dyn std::any::Any + Send>) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a non-text panic".to_owned())
}

/// The columns the plan reads, as an input spec; one batch for the whole input when a
/// detector needs the whole series.
pub fn event_spec(evaluator: &Evaluator) -> EventSpec {
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
    evaluator: &mut Evaluator,
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
    /// Distinct keys (a key that came back after its eviction counts again).
    pub keys: u64,
    /// Keys evicted (idle, or past the cap).
    pub evicted_keys: u64,
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
    /// Rows that went back in time within their key (with `--allow-unsorted`).
    pub unsorted_rows: u64,
    /// What the event-time reorder stage did (with `--lateness`).
    pub reorder: Option<reorder::ReorderStats>,
    /// Wall time.
    pub seconds: f64,
    /// Rows per second.
    pub rows_per_second: f64,
    /// Reloads of the rules.
    pub reloads: crate::reload::ReloadStatus,
    /// What the sinks had to report (failed notification deliveries).
    pub problems: Vec<String>,
    /// Deliveries to outside targets (webhooks): delivered, retried, failed, dropped and
    /// circuit openings per target.
    pub deliveries: Vec<outbox::DeliveryStats>,
    /// The estimate of one key's state under the rules running at the end.
    pub state: crate::budget::StateEstimate,
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
            (self.evicted_keys, "keys evicted (idle or past --max-keys)"),
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
        if let Some(r) = &self.reorder {
            out.push_str(&format!(
                "event time, lateness {:.3} s: {} events put back in order, {} too late (not \
                 scored), {} released early (buffer full), at most {} held\n",
                r.lateness_ns as f64 / 1e9,
                r.reordered,
                r.late,
                r.released_early,
                r.peak_held
            ));
        }
        let r = &self.reloads;
        if r.attempts > 0 {
            out.push_str(&format!(
                "reloads: {} applied, {} refused (longest pause of the event path {:.3} ms)\n",
                r.successes,
                r.failures,
                r.longest_swap_ns as f64 / 1e6
            ));
        }
        out
    }
}
