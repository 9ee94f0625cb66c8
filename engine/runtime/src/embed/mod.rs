//! The engine as a library: build it from rule files and a plugin path, push events, get
//! results through [`Sink`]s, ask for its status, reload it, stop it with everything
//! flushed. `adr run` is this code path over a file or standard input.
//!
//! ```no_run
//! use adr_engine::embed::{EngineBuilder, Events};
//! use adr_engine::plugins::SearchPath;
//!
//! let mut engine = EngineBuilder::new(["rules/market_stress.adr"])
//!     .plugins(SearchPath::explicit(["target/release".into()]))
//!     .watch(true)
//!     .build()?;
//! let mut events = Events::new(&["open", "high", "low", "close", "volume"], 1);
//! events.push(1_736_935_800_000_000_000, &["BTC-USD"], &[98533.8, 98535.5, 94411.5, 94423.7, 159.6])?;
//! engine.push_batch(&events)?;
//! let summary = engine.finish()?;
//! println!("{}", summary.render());
//! # Ok::<(), adr_engine::embed::EngineError>(())
//! ```
//!
//! Results reach a service through [`Sink`]s, called in order on the pushing thread, or
//! through a [`ChannelSink`] on another thread.
//!
//! Reloads (a watched file changed, [`StatusHandle::request_reload`], SIGHUP in `adr run
//! --watch`) are prepared on a background thread and swapped in between two batches, so
//! every event is scored exactly once, by the rules in force when its batch began.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use adr_sdk::Verdict;

use crate::evaluator::{DetectorFailure, EvalError, Evaluator, Outcome, Prepared};
use crate::io::EventInput;
use crate::plugins::RegistryError;
use crate::reload::watch::WatchError;
use crate::reload::{compatible, libraries_mapped, Attempt, ReloadStatus};
use crate::rules::plan::Plan;
use crate::rules::source;
use crate::run::{AlertCount, Batch, BatchView, RunSummary, Sink};

mod builder;
mod channel;
mod events;
mod worker;

pub use builder::EngineBuilder;
pub use channel::{BatchResult, ChannelSink, EventResult};
pub use events::Events;
pub use worker::StatusHandle;
use worker::{lock, Shared, Trigger};

/// Why the engine cannot start or go on.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// The plugins cannot be loaded.
    #[error(transparent)]
    Plugins(#[from] RegistryError),
    /// A rule file cannot be read.
    #[error(transparent)]
    Read(#[from] source::ReadError),
    /// The rules have errors; the text is the rendered diagnostics.
    #[error("the rules have errors:\n{0}")]
    Invalid(String),
    /// A detector cannot be built, or a batch cannot be evaluated.
    #[error(transparent)]
    Eval(#[from] EvalError),
    /// The rules read a field the pushed events do not carry.
    #[error("the rules read field `{field}`, which the events do not carry (they have: {})", have.join(", "))]
    MissingField {
        /// The field.
        field: String,
        /// The events' columns.
        have: Vec<String>,
    },
    /// Pushed events with the wrong number of values or key parts.
    #[error("an event has {got} {what}, its batch {want}")]
    EventShape {
        /// `values` or `key parts`.
        what: &'static str,
        /// What it has.
        got: usize,
        /// What the batch has.
        want: usize,
    },
    /// The watch on the rule files cannot be set up.
    #[error(transparent)]
    Watch(#[from] WatchError),
    /// The reload thread cannot be started.
    #[error("cannot start the reload thread: {0}")]
    Start(std::io::Error),
    /// Reading the input failed.
    #[error(transparent)]
    Run(#[from] crate::run::RunError),
}

/// A running engine: rules, their state per key, sinks, and the reload machinery.
pub struct Engine {
    evaluator: Evaluator,
    outcome: Outcome,
    batch: Batch,
    /// Event-time order with an allowed lateness, when asked for.
    reorder: Option<crate::run::reorder::Reorder>,
    /// Rows read or pushed before the reorder stage takes them.
    staging: Batch,
    sinks: Vec<Box<dyn Sink + Send>>,
    /// The value columns the stream carries; `None` when each pushed batch names its own.
    columns: Option<Vec<String>>,
    shared: Arc<Shared>,
    trigger: Sender<Trigger>,
    worker: Option<JoinHandle<()>>,
    rows: u64,
    anomalies: BTreeMap<String, u64>,
    alerts_by_severity: BTreeMap<String, u64>,
    failures: Vec<DetectorFailure>,
    input_stats: crate::io::InputStats,
    started: Instant,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("rows", &self.rows)
            .field("keys", &self.evaluator.keys().len())
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// The rules in force.
    pub fn plan(&self) -> &Plan {
        self.evaluator.plan()
    }

    /// The evaluator (state per key, alert counters).
    pub fn evaluator(&self) -> &Evaluator {
        &self.evaluator
    }

    /// A handle for other threads.
    pub fn status_handle(&self) -> StatusHandle {
        StatusHandle {
            shared: Arc::clone(&self.shared),
            trigger: self.trigger.clone(),
        }
    }

    /// The reload history.
    pub fn reload_status(&self) -> ReloadStatus {
        lock(&self.shared.status).clone()
    }

    /// Reloads now, on this thread, even if no file changed; returns what the swap did.
    ///
    /// # Errors
    ///
    /// Why the new rules were refused (they are not applied; the running rules stay).
    pub fn reload_now(&mut self) -> Result<crate::evaluator::SwapReport, String> {
        // What the reload thread prepared is older than what this attempt reads.
        lock(&self.shared.pending).take();
        match self.shared.attempt(true) {
            // A forced attempt always reads; nothing to swap if it did not.
            Attempt::Unchanged => Ok(crate::evaluator::SwapReport::default()),
            Attempt::Failed(why) => {
                self.shared.fail(why.clone());
                Err(why)
            }
            Attempt::Ready(prepared, _) => self.apply(*prepared),
        }
    }

    /// Every key's state (features, detectors, alert holds and cooldowns) as bytes, for
    /// [`restore`](Self::restore) in a later process running the same rules: a service
    /// takes one at a clean stop and now and then, so a restart goes on where it was.
    /// Events held for lateness ([`EngineBuilder::lateness`]) are not in it.
    pub fn checkpoint(&self) -> Vec<u8> {
        self.evaluator.checkpoint()
    }

    /// Restores a [`checkpoint`](Self::checkpoint) before any event is pushed.
    ///
    /// # Errors
    ///
    /// A [`CheckpointError`](crate::evaluator::CheckpointError): not a checkpoint, taken
    /// under other rules (their state would mean nothing to these), or events were pushed
    /// already. The engine then holds no key and runs on cold.
    pub fn restore(
        &mut self,
        checkpoint: &[u8],
    ) -> Result<crate::evaluator::Restored, crate::evaluator::CheckpointError> {
        self.evaluator.restore(checkpoint)
    }

    /// Swaps in a reload prepared meanwhile, if there is one; whether it did.
    /// [`push_batch`](Self::push_batch) does this first itself; an embedder that builds
    /// its batch from the plan's fields calls it before reading [`plan`](Self::plan), so
    /// the batch carries what the rules it meets will read.
    pub fn refresh(&mut self) -> bool {
        self.apply_pending()
    }

    /// Swaps in what the reload thread prepared, if anything; called between batches.
    fn apply_pending(&mut self) -> bool {
        if !self.shared.ready.swap(false, Ordering::Acquire) {
            return false;
        }
        let Some(prepared) = lock(&self.shared.pending).take() else {
            return false;
        };
        self.apply(*prepared).is_ok()
    }

    fn apply(&mut self, prepared: Prepared) -> Result<crate::evaluator::SwapReport, String> {
        let started = Instant::now();
        let fits = compatible(
            &self.evaluator.plan().input,
            &prepared.plan().input,
            self.columns.as_deref(),
        )
        .and_then(|()| {
            if prepared.needs_whole_series() && !self.evaluator.needs_whole_series() {
                Err("the new rules have a detector that needs the whole series in one batch (window = batch), which a running stream cannot give; restart to run them".to_owned())
            } else {
                Ok(())
            }
        });
        if let Err(why) = fits {
            self.shared.fail(why.clone());
            return Err(why);
        }
        if prepared.plan().input.fields != self.evaluator.plan().input.fields {
            // held events carry the fields they were read with: score them with the
            // rules they were read for, before their lateness has passed
            if let Some(reorder) = &mut self.reorder {
                reorder.drain();
            }
            if let Err(e) = self.release(false) {
                let why = format!("cannot score the held events before the reload: {e}");
                self.shared.fail(why.clone());
                return Err(why);
            }
        }
        match self.evaluator.swap(prepared) {
            Ok((report, retired)) => {
                let pause = started.elapsed().as_nanos() as u64;
                // Freeing the old state is for the reload thread, not the event path.
                let _ = self.trigger.send(Trigger::Retire(Box::new(retired)));
                log_swap(&report, pause);
                let mut status = lock(&self.shared.status);
                let mapped = libraries_mapped(self.evaluator.registry());
                if mapped > status.libraries_mapped {
                    tracing::info!(
                        "{mapped} plugin libraries are mapped, {} of them superseded builds: a library is never unloaded, restart to reclaim them",
                        mapped.saturating_sub(self.evaluator.registry().plugins().len())
                    );
                }
                status.libraries_mapped = mapped;
                status.swapped(report.clone(), pause);
                Ok(report)
            }
            Err(e) => {
                let why = e.to_string();
                self.shared.fail(why.clone());
                Err(why)
            }
        }
    }

    /// Evaluates one event (see [`Events::push`]).
    ///
    /// # Errors
    ///
    /// As [`push_batch`](Self::push_batch).
    pub fn push(
        &mut self,
        time: i64,
        key: &[&str],
        values: &[(&str, f64)],
    ) -> Result<(), EngineError> {
        let names: Vec<&str> = values.iter().map(|(n, _)| *n).collect();
        let mut events = Events::new(&names, key.len());
        let values: Vec<f64> = values.iter().map(|(_, v)| *v).collect();
        events.push(time, key, &values)?;
        self.push_batch(&events)
    }

    /// Evaluates a batch of events and hands the results to the sinks. A reload prepared
    /// meanwhile is applied first, so the whole batch is scored by one rule set.
    ///
    /// # Errors
    ///
    /// [`EngineError::MissingField`] when the rules read a column the events lack;
    /// [`EngineError::Eval`] for events out of order within their key (unless allowed);
    /// a sink's write error. The batch is then not evaluated, and nothing of it is lost:
    /// push it again after fixing it.
    pub fn push_batch(&mut self, events: &Events) -> Result<(), EngineError> {
        self.apply_pending();
        let fields = &self.evaluator.plan().input.fields;
        let mut order = Vec::with_capacity(fields.len());
        for f in fields {
            match events.names().iter().position(|n| n == f) {
                Some(i) => order.push(i),
                None => {
                    return Err(EngineError::MissingField {
                        field: f.clone(),
                        have: events.names().to_vec(),
                    })
                }
            }
        }
        if self.reorder.is_some() {
            for i in 0..events.len() {
                let values = order.iter().map(|&c| events.column(c)[i]).collect();
                self.offer(events.timestamps()[i], events.key(i).to_vec(), values, None)?;
            }
            return self.release(false);
        }
        let chunk = &mut self.batch.chunk;
        chunk.timestamps.clear();
        chunk.timestamps.extend_from_slice(events.timestamps());
        chunk.columns.resize_with(order.len(), Vec::new);
        for (column, &i) in chunk.columns.iter_mut().zip(&order) {
            column.clear();
            column.extend_from_slice(events.column(i));
        }
        chunk.len = events.len();
        chunk.first_row = self.rows + 1;
        self.batch.keys.clear();
        for i in 0..events.len() {
            let parts = events.key(i);
            let id = self.evaluator.key(parts.iter().map(|p| p.as_bytes()))?;
            self.batch.keys.push(id);
        }
        self.evaluate()
    }

    /// Evaluates the events the reorder stage lets go (all of them with `all`).
    fn release(&mut self, all: bool) -> Result<(), EngineError> {
        let Some(reorder) = &mut self.reorder else {
            return Ok(());
        };
        if reorder.release(&mut self.evaluator, &mut self.batch, all)? > 0 {
            self.batch.chunk.first_row = self.rows + 1;
            self.evaluate()?;
        }
        Ok(())
    }

    /// Hands one event to the reorder stage; when it holds too many, evaluates what it
    /// can let go, and the oldest early if that is not enough.
    fn offer(
        &mut self,
        time: i64,
        key: Vec<String>,
        values: Vec<f64>,
        record: Option<csv::ByteRecord>,
    ) -> Result<(), EngineError> {
        let Some(reorder) = &mut self.reorder else {
            return Ok(());
        };
        reorder.offer(time, key, values, record);
        if reorder.full() {
            self.release(false)?;
            if let Some(reorder) = self.reorder.as_mut().filter(|r| r.full()) {
                reorder.force();
                self.release(false)?;
            }
        }
        Ok(())
    }

    /// Hands a chunk read from the input to the reorder stage, then evaluates what it
    /// lets go.
    fn offer_chunk(&mut self, input: &EventInput) -> Result<(), EngineError> {
        let chunk = std::mem::take(&mut self.staging.chunk);
        let mut result = Ok(());
        for i in 0..chunk.len {
            let key = input
                .key_parts(&chunk, i)
                .map(|p| String::from_utf8_lossy(p).into_owned())
                .collect();
            let values = chunk.columns.iter().map(|c| c[i]).collect();
            result = self.offer(
                chunk.timestamps[i],
                key,
                values,
                chunk.records.get(i).cloned(),
            );
            if result.is_err() {
                break;
            }
        }
        self.staging.chunk = chunk;
        result?;
        self.release(false)
    }

    /// Evaluates `self.batch` and feeds the sinks.
    fn evaluate(&mut self) -> Result<(), EngineError> {
        let mut fields = Vec::new();
        self.evaluator
            .process(&self.batch.rows(&mut fields), &mut self.outcome)?;
        self.rows += self.batch.chunk.len as u64;
        let plan = self.evaluator.plan();
        for (e, column) in plan.ensembles.iter().zip(&self.outcome.ensembles) {
            let n = column
                .iter()
                .filter(|j| j.verdict == Verdict::Anomaly)
                .count() as u64;
            if let Some(count) = self.anomalies.get_mut(&e.name) {
                *count += n;
            } else {
                self.anomalies.insert(e.name.clone(), n);
            }
        }
        for f in &self.outcome.fired {
            *self
                .alerts_by_severity
                .entry(f.severity.to_string())
                .or_default() += 1;
        }
        self.failures.extend(self.outcome.failures.iter().cloned());
        let view = BatchView {
            plan,
            chunk: &self.batch.chunk,
            keys: &self.batch.keys,
            key_names: self.evaluator.keys(),
            outcome: &self.outcome,
        };
        for sink in &mut self.sinks {
            sink.batch(&view).map_err(crate::run::RunError::Output)?;
        }
        Ok(())
    }

    /// Detector failures since the last call (each cost that detector's verdicts for one
    /// key in one batch).
    pub fn take_failures(&mut self) -> Vec<DetectorFailure> {
        std::mem::take(&mut self.failures)
    }

    /// Runs the whole of `input` through the engine, applying reloads between batches;
    /// `progress` gets the bytes read after each batch.
    ///
    /// # Errors
    ///
    /// The input's or the evaluation's error; what the sinks were given stays written.
    pub fn run_input(
        &mut self,
        input: &mut EventInput,
        mut progress: impl FnMut(u64, &mut Self),
    ) -> Result<(), EngineError> {
        self.columns = Some(input.value_columns());
        loop {
            if self.apply_pending() {
                input
                    .set_fields(&self.evaluator.plan().input.fields)
                    .map_err(crate::run::RunError::Input)?;
            }
            if self.reorder.is_some() {
                if input
                    .read_chunk(&mut self.staging.chunk)
                    .map_err(crate::run::RunError::Input)?
                    == 0
                {
                    break;
                }
                self.offer_chunk(input)?;
            } else {
                if crate::run::read_batch(input, &mut self.evaluator, &mut self.batch)? == 0 {
                    break;
                }
                self.evaluate()?;
            }
            progress(input.bytes_read(), self);
        }
        self.input_stats = input.stats();
        Ok(())
    }

    /// Stops the reload thread and the watch, flushes the sinks, and summarises the run.
    ///
    /// # Errors
    ///
    /// A sink's write error.
    pub fn finish(mut self) -> Result<RunSummary, EngineError> {
        // the events still waiting for the watermark: the stream has ended, none can
        // come before them
        self.release(true)?;
        self.stop_worker();
        let mut problems = Vec::new();
        let mut deliveries = Vec::new();
        for sink in &mut self.sinks {
            sink.finish().map_err(crate::run::RunError::Output)?;
            problems.extend(sink.problems());
            deliveries.extend(sink.deliveries());
        }
        let evaluator = &self.evaluator;
        let plan = evaluator.plan();
        let seconds = self.started.elapsed().as_secs_f64();
        Ok(RunSummary {
            rows: self.rows,
            keys: evaluator.keys().created(),
            evicted_keys: evaluator.evicted(),
            anomalies: std::mem::take(&mut self.anomalies),
            alerts_by_severity: std::mem::take(&mut self.alerts_by_severity),
            alerts: plan
                .alerts
                .iter()
                .enumerate()
                .map(|(a, p)| AlertCount {
                    alert: p.name.clone(),
                    fired: evaluator.alerts().fired(a),
                    suppressed: evaluator.alerts().suppressed(a),
                })
                .collect(),
            detector_failures: evaluator.failures(),
            input: self.input_stats,
            unsorted_rows: evaluator.unsorted_rows(),
            reorder: self
                .reorder
                .as_ref()
                .map(crate::run::reorder::Reorder::stats),
            seconds,
            rows_per_second: self.rows as f64 / seconds.max(1e-9),
            reloads: lock(&self.shared.status).clone(),
            problems,
            deliveries,
            state: evaluator.state_estimate().clone(),
        })
    }

    fn stop_worker(&mut self) {
        let _ = self.trigger.send(Trigger::Stop);
        if let Some(worker) = self.worker.take() {
            let _ = worker.join();
        }
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.stop_worker();
    }
}

fn log_swap(report: &crate::evaluator::SwapReport, pause_ns: u64) {
    tracing::info!(
        "rules reloaded in {:.3} ms of the event path ({} keys): {} kept, {} fresh, {} dropped",
        pause_ns as f64 / 1e6,
        report.keys,
        report.kept.len(),
        report.fresh.len(),
        report.dropped.len()
    );
    for what in &report.fresh {
        tracing::info!("{what}: new or changed, starts fresh");
    }
    for what in &report.dropped {
        tracing::info!("{what}: gone from the rules, its state dropped");
    }
    for what in &report.moved {
        tracing::info!("{what} moved to the new plugin build with its state");
    }
    for what in &report.reinitialised {
        tracing::warn!(
            "{what} moved to the new plugin build, which cannot take its state: it starts fresh"
        );
    }
}
