//! Evaluating a [`Plan`] over batches of events: features per key, detectors per key
//! (batched through the plugin boundary), ensembles and alerts per event.
//!
//! Results do not depend on how the events are cut into batches: features and alerts step
//! one event at a time, and every streaming detector gives the same scores for a batch as
//! for its events one by one (`docs/decisions/0004`). So a file, a stream and an
//! explanation (which stops the batch at the event it explains) agree to the bit.

use adr_sdk::{host::DetectorHandle, score::ScoreColumns, Column, DetectorError, Frame, Verdict};
use rayon::prelude::*;

use std::sync::Arc;

use crate::budget::StateEstimate;
use crate::io::timestamp::format_rfc3339;
use crate::io::UnsortedPolicy;
use crate::plugins::Registry;
use crate::rules::features::State;
use crate::rules::identity::Identities;
use crate::rules::plan::{DetectorPlan, Member, Plan, TrainingPlan};

pub mod alerts;
pub mod checkpoint;
pub mod ensemble;
pub mod keys;
pub mod swap;

pub use alerts::{AlertBook, Fired, KeyAlert, Step};
pub use checkpoint::{CheckpointError, Restored};
pub use ensemble::{judge, Judgement};
pub use keys::{KeyId, KeyTable};
pub use swap::{Prepared, Retired, SwapReport};

/// Why evaluation stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EvalError {
    /// A detector cannot be built for a key (its parameters were checked, so this is the
    /// plugin refusing, or panicking).
    #[error("detector `{detector}` ({qualified}) cannot be built: {source}")]
    Create {
        /// Its name in the rules.
        detector: String,
        /// `family.detector`.
        qualified: String,
        /// What the plugin said.
        source: DetectorError,
    },
    /// An event is earlier than the previous event of the same key.
    #[error("row {row}: timestamp {time} of key `{key}` is earlier than that key's previous {previous}; each key's events must not go back in time (sort the input, or pass --allow-unsorted)")]
    Unsorted {
        /// Data row, from 1.
        row: u64,
        /// The key.
        key: String,
        /// This row's time.
        time: String,
        /// The key's previous time.
        previous: String,
    },
    /// One key's state does not fit the memory budget (see [`crate::budget`]).
    #[error("{0}; raise the budget (--max-state) or shrink the windows")]
    Budget(#[from] crate::budget::BudgetError),
    /// A batch's columns do not match the plan.
    #[error("a batch has {got} field columns of {len} rows; the rules read {want} fields")]
    Shape {
        /// Columns the plan reads.
        want: usize,
        /// Columns given.
        got: usize,
        /// Rows in the batch.
        len: usize,
    },
}

/// A batch of events: times, keys and the input's fields (in [`Plan::input`] order).
#[derive(Debug, Clone, Copy)]
pub struct Rows<'a> {
    /// Event times, ns.
    pub timestamps: &'a [i64],
    /// Each event's key, from [`Evaluator::key`].
    pub keys: &'a [KeyId],
    /// One column per field.
    pub fields: &'a [&'a [f64]],
    /// Data row number of the first event (from 1), for messages.
    pub first_row: u64,
}

impl<'a> Rows<'a> {
    /// Events in the batch.
    pub fn len(&self) -> usize {
        self.timestamps.len()
    }

    /// Whether the batch is empty.
    pub fn is_empty(&self) -> bool {
        self.timestamps.is_empty()
    }

    /// The events `range` of the batch.
    pub fn slice<'b>(
        &self,
        range: std::ops::Range<usize>,
        fields: &'b mut Vec<&'a [f64]>,
    ) -> Rows<'b>
    where
        'a: 'b,
    {
        // `fields` holds the column slices the returned batch borrows.
        fields.clear();
        fields.extend(self.fields.iter().map(|c| &c[range.clone()]));
        Rows {
            timestamps: &self.timestamps[range.clone()],
            keys: &self.keys[range.clone()],
            fields,
            first_row: self.first_row + range.start as u64,
        }
    }
}

/// A detector that failed on a key: its scores for that key's events of the batch are
/// undetermined, and it is rebuilt for the next batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DetectorFailure {
    /// The detector's name in the rules.
    pub detector: String,
    /// The key.
    pub key: String,
    /// What it reported.
    pub message: String,
}

/// What the evaluator computed for a batch; buffers are reused between batches.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Events in the batch.
    pub len: usize,
    /// Feature values, one column per feature (in [`Plan::features`] order).
    pub features: Vec<Vec<f64>>,
    /// Detector scores, one set of columns per detector.
    pub detectors: Vec<ScoreColumns>,
    /// Ensemble judgements, one column per ensemble.
    pub ensembles: Vec<Vec<Judgement>>,
    /// Alerts fired, in event order.
    pub fired: Vec<Fired>,
    /// Detector failures in this batch.
    pub failures: Vec<DetectorFailure>,
}

/// When keys are forgotten, so that a stream of ever new keys holds bounded memory.
///
/// A key is evicted, with all its state (features, detectors, alert holds), when it has
/// had no event for `idle` of event time (the newest event time seen minus the key's
/// last), or, past `max_keys` keys held, the least recently seen go first (down to 90 %
/// of the cap, so that sweeps are rare). An evicted key that comes back starts cold.
/// A cooldown outlives its keys: a group with no key left is forgotten once its cooldown
/// is over, so groups too are bounded by the keys held plus the cooldowns running. Sweeps
/// run between batches.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Eviction {
    /// Evict keys idle for this long (ns of event time); `None`: never for idleness.
    pub idle: Option<i64>,
    /// Hold at most this many keys; `None`: no cap.
    pub max_keys: Option<usize>,
}

/// One detector's state for one key.
#[derive(Debug)]
struct KeyDetector {
    handle: DetectorHandle,
    /// The `threshold` clause's detector, fed `handle`'s raw scores.
    threshold: Option<DetectorHandle>,
    /// Events seen since the detector was (re)built.
    seen: u64,
    /// Time of the first event since it was (re)built.
    started: Option<i64>,
    /// The training the engine withholds verdicts for (what the detector does not do
    /// itself, see [`TrainingPlan::forward`]).
    withheld: TrainingPlan,
}

/// A plan being evaluated: per-key state for features, detectors and alerts.
#[derive(Debug)]
pub struct Evaluator {
    plan: Plan,
    identities: Identities,
    registry: Arc<Registry>,
    keys: KeyTable,
    last_time: Vec<i64>,
    feature_states: Vec<State>,
    detectors: Vec<Vec<KeyDetector>>,
    whole_series: bool,
    alerts: AlertBook,
    unsorted: UnsortedPolicy,
    unsorted_rows: u64,
    failures: u64,
    eviction: Eviction,
    /// One key's state, as estimated for the plan, and the budget all keys must fit.
    state: StateEstimate,
    budget: Option<u64>,
    evicted: u64,
    /// The newest event time seen, and the newest at the last idle sweep.
    newest: i64,
    swept_at: i64,
    // scratch
    /// Each key's time before the batch being checked, to put back if it is refused.
    order_undo: Vec<(KeyId, i64)>,
    slots: Vec<f64>,
    members: Vec<(f64, Verdict)>,
    sort_scratch: Vec<f64>,
    groups: Groups,
}

impl Evaluator {
    /// Prepares `plan`; builds each detector once to report refusals before any event.
    ///
    /// # Errors
    ///
    /// [`EvalError::Create`] when a plugin refuses its detector.
    pub fn new(plan: Plan, registry: Arc<Registry>) -> Result<Self, EvalError> {
        Ok(Self::from_prepared(Prepared::new(plan, registry)?))
    }

    /// An evaluator of a prepared plan, with no keys yet.
    pub fn from_prepared(prepared: Prepared) -> Self {
        let Prepared {
            plan,
            identities,
            registry,
            whole_series,
            state,
        } = prepared;
        let alerts = AlertBook::new(&plan.alerts, &plan.input.keys);
        Evaluator {
            detectors: plan.detectors.iter().map(|_| Vec::new()).collect(),
            slots: vec![0.0; plan.slots.len()],
            plan,
            identities,
            registry,
            keys: KeyTable::default(),
            last_time: Vec::new(),
            order_undo: Vec::new(),
            feature_states: Vec::new(),
            whole_series,
            alerts,
            unsorted: UnsortedPolicy::Reject,
            eviction: Eviction::default(),
            state,
            budget: None,
            evicted: 0,
            newest: i64::MIN,
            swept_at: i64::MIN,
            unsorted_rows: 0,
            failures: 0,
            members: Vec::new(),
            sort_scratch: Vec::new(),
            groups: Groups::default(),
        }
    }

    /// When to forget keys (default: never).
    pub fn set_eviction(&mut self, eviction: Eviction) {
        self.eviction = eviction;
    }

    /// Bounds all keys' state to `budget` bytes (`None`: no bound, the default): the
    /// rules must fit one key, and at most `budget / per-key estimate` keys are held, the
    /// least recently seen forgotten first (counted as evictions). A reload to rules that
    /// do not fit is refused.
    ///
    /// # Errors
    ///
    /// [`EvalError::Budget`] when one key of the running rules does not fit; the budget
    /// is then unchanged.
    pub fn set_state_budget(&mut self, budget: Option<u64>) -> Result<(), EvalError> {
        if let Some(b) = budget {
            self.state.keys_within(b)?;
        }
        self.budget = budget;
        Ok(())
    }

    /// The estimate of one key's state under the running rules.
    pub fn state_estimate(&self) -> &StateEstimate {
        &self.state
    }

    /// The most keys held: the eviction's cap and what the budget affords, whichever is
    /// lower.
    pub fn key_cap(&self) -> Option<usize> {
        let afforded = self
            .budget
            .map(|b| self.state.keys_within(b).unwrap_or(1).max(1));
        match (self.eviction.max_keys, afforded) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Keys evicted so far.
    pub fn evicted(&self) -> u64 {
        self.evicted
    }

    /// What to do with an event earlier than its key's previous one (default: reject).
    pub fn set_unsorted(&mut self, policy: UnsortedPolicy) {
        self.unsorted = policy;
    }

    /// The plan.
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// The identities of the plan's definitions (what a reload compares).
    pub fn identities(&self) -> &Identities {
        &self.identities
    }

    /// The plugins the plan's detectors come from.
    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    /// Whether a detector needs the whole series in one batch (then feed one batch).
    pub fn needs_whole_series(&self) -> bool {
        self.whole_series
    }

    /// The keys seen so far.
    pub fn keys(&self) -> &KeyTable {
        &self.keys
    }

    /// Alert state and counters.
    pub fn alerts(&self) -> &AlertBook {
        &self.alerts
    }

    /// Events that went back in time within their key (with [`UnsortedPolicy::Allow`]).
    pub fn unsorted_rows(&self) -> u64 {
        self.unsorted_rows
    }

    /// Detector failures so far.
    pub fn failures(&self) -> u64 {
        self.failures
    }

    /// The id of the key made of `parts` (one per key column, none without key columns),
    /// building its state when it is new.
    ///
    /// # Errors
    ///
    /// [`EvalError::Create`] when a plugin refuses to build a detector for the new key.
    pub fn key<'a>(
        &mut self,
        parts: impl IntoIterator<Item = &'a [u8]>,
    ) -> Result<KeyId, EvalError> {
        let (id, new) = self.keys.intern(parts);
        if new {
            let slot = id as usize;
            let parts: Vec<&str> = self.keys.parts(id).iter().map(String::as_str).collect();
            if slot < self.last_time.len() {
                // an evicted key's slot: start it cold
                for (d, states) in self.plan.detectors.iter().zip(&mut self.detectors) {
                    states[slot] = KeyDetector::new(&self.registry, d)?;
                }
                let per_key = self.plan.feature_states;
                self.feature_states[slot * per_key..(slot + 1) * per_key].fill(State::default());
                self.last_time[slot] = i64::MIN;
                self.alerts.reset_key(id, &parts);
            } else {
                for (d, states) in self.plan.detectors.iter().zip(&mut self.detectors) {
                    states.push(KeyDetector::new(&self.registry, d)?);
                }
                self.feature_states.extend(std::iter::repeat_n(
                    State::default(),
                    self.plan.feature_states,
                ));
                self.last_time.push(i64::MIN);
                self.alerts.add_key(&parts);
            }
        }
        Ok(id)
    }

    /// Evaluates a batch into `out`.
    ///
    /// # Errors
    ///
    /// [`EvalError::Unsorted`] for an event earlier than its key's previous one (unless
    /// allowed), [`EvalError::Shape`] for columns that do not match the plan.
    pub fn process(&mut self, rows: &Rows<'_>, out: &mut Outcome) -> Result<(), EvalError> {
        self.process_part(rows, out)?;
        self.end_batch();
        Ok(())
    }

    /// [`process`](Self::process) for part of a batch whose keys were all interned
    /// before it: the eviction sweep waits for [`end_batch`](Self::end_batch), so that no
    /// key of the batch's later parts is forgotten under them.
    ///
    /// # Errors
    ///
    /// As [`process`](Self::process).
    pub fn process_part(&mut self, rows: &Rows<'_>, out: &mut Outcome) -> Result<(), EvalError> {
        let n = rows.len();
        let n_fields = self.plan.input.fields.len();
        if rows.fields.len() != n_fields
            || rows.fields.iter().any(|c| c.len() != n)
            || rows.keys.len() != n
        {
            return Err(EvalError::Shape {
                want: n_fields,
                got: rows.fields.len(),
                len: n,
            });
        }
        self.check_order(rows)?;
        out.len = n;
        out.fired.clear();
        out.failures.clear();
        self.features(rows, out);
        self.groups.build(rows.keys, self.keys.len());
        self.score_detectors(rows, out);
        self.failures += out.failures.len() as u64;
        self.judge(rows, out);
        if let Some(&t) = rows.timestamps.iter().max() {
            self.newest = self.newest.max(t);
        }
        Ok(())
    }

    /// Ends a batch processed in parts: evicts what the eviction policy says.
    pub fn end_batch(&mut self) {
        self.sweep();
    }

    /// Evicts idle keys (when event time has moved on by a quarter of `idle` since the
    /// last sweep) and, past `max_keys`, the least recently seen.
    fn sweep(&mut self) {
        let mut evict = Vec::new();
        if let Some(idle) = self.eviction.idle {
            if self.newest.saturating_sub(self.swept_at) >= (idle / 4).max(1) {
                self.swept_at = self.newest;
                let limit = self.newest.saturating_sub(idle);
                evict = (0..self.keys.len())
                    .map(|k| self.keys.is_live(k as KeyId) && self.last_time[k] < limit)
                    .collect();
            }
        }
        if let Some(cap) = self.key_cap() {
            let held = self.keys.live() - evict.iter().filter(|&&e| e).count();
            if held > cap {
                evict.resize(self.keys.len(), false);
                let mut by_age: Vec<usize> = (0..self.keys.len())
                    .filter(|&k| !evict[k] && self.keys.is_live(k as KeyId))
                    .collect();
                let target = cap - cap / 10;
                let excess = (held - target).min(by_age.len());
                if excess < by_age.len() {
                    let last_time = &self.last_time;
                    by_age.select_nth_unstable_by_key(excess, |&k| last_time[k]);
                }
                for &k in &by_age[..excess] {
                    evict[k] = true;
                }
            }
        }
        let count = evict.iter().filter(|&&e| e).count();
        if count == 0 {
            return;
        }
        // The slots keep their state until a new key takes them (and starts it cold), so
        // memory is bounded by the most keys held at once.
        self.keys.evict(&evict);
        self.alerts.evict(&evict, self.newest);
        self.evicted += count as u64;
    }

    /// Checks that each key's events go forward and records each key's last time. A
    /// batch refused changes nothing (the keys' times are put back as they were), so
    /// that it can be pushed again once fixed.
    fn check_order(&mut self, rows: &Rows<'_>) -> Result<(), EvalError> {
        self.order_undo.clear();
        for (i, (&t, &k)) in rows.timestamps.iter().zip(rows.keys).enumerate() {
            let last = self.last_time[k as usize];
            if t < last {
                if self.unsorted == UnsortedPolicy::Reject {
                    // Newest first, so a key seen twice gets its time before the batch.
                    for &(k, before) in self.order_undo.iter().rev() {
                        self.last_time[k as usize] = before;
                    }
                    return Err(EvalError::Unsorted {
                        row: rows.first_row + i as u64,
                        key: self.keys.name(k).to_owned(),
                        time: format_rfc3339(t),
                        previous: format_rfc3339(last),
                    });
                }
                self.unsorted_rows += 1;
            }
            if self.unsorted == UnsortedPolicy::Reject {
                self.order_undo.push((k, last));
            }
            self.last_time[k as usize] = t;
        }
        Ok(())
    }

    fn features(&mut self, rows: &Rows<'_>, out: &mut Outcome) {
        let n = rows.len();
        let features = &self.plan.features;
        out.features.resize_with(features.len(), Vec::new);
        for column in &mut out.features {
            column.resize(n, 0.0);
        }
        if features.is_empty() {
            return;
        }
        let per_key = self.plan.feature_states;
        let n_fields = rows.fields.len();
        for i in 0..n {
            for (slot, column) in self.slots.iter_mut().zip(rows.fields) {
                *slot = column[i];
            }
            let k = rows.keys[i] as usize;
            let states = &mut self.feature_states[k * per_key..(k + 1) * per_key];
            for (f, feature) in features.iter().enumerate() {
                let v = feature.node.eval(rows.timestamps[i], &self.slots, states);
                self.slots[n_fields + f] = v;
                out.features[f][i] = v;
            }
        }
    }

    fn score_detectors(&mut self, rows: &Rows<'_>, out: &mut Outcome) {
        let n = rows.len();
        out.detectors
            .resize_with(self.plan.detectors.len(), ScoreColumns::default);
        for scores in &mut out.detectors {
            scores.resize(n);
        }
        let columns: Vec<&[f64]> = rows
            .fields
            .iter()
            .copied()
            .chain(out.features.iter().map(Vec::as_slice))
            .collect();
        let groups = &self.groups;
        let key_names = &self.keys;
        let registry = &*self.registry;
        let work = |((plan, states), scores): (
            (&DetectorPlan, &mut Vec<KeyDetector>),
            &mut ScoreColumns,
        )| {
            let mut failures = Vec::new();
            let mut gathered = Gathered::default();
            for (key, rows_of_key) in groups.iter() {
                let state = &mut states[key as usize];
                let result = if groups.single() {
                    let inputs: Vec<&[f64]> = plan.inputs.iter().map(|&s| columns[s]).collect();
                    score_key(plan, state, rows.timestamps, &inputs, scores.as_mut())
                } else {
                    gathered.fill(
                        rows_of_key,
                        rows.timestamps,
                        plan.inputs.iter().map(|&s| columns[s]),
                    );
                    let inputs: Vec<&[f64]> = gathered.columns.iter().map(Vec::as_slice).collect();
                    let result = score_key(
                        plan,
                        state,
                        &gathered.timestamps,
                        &inputs,
                        gathered.scores.as_mut(),
                    );
                    for (j, &i) in rows_of_key.iter().enumerate() {
                        let i = i as usize;
                        scores.raw[i] = gathered.scores.raw[j];
                        scores.normalised[i] = gathered.scores.normalised[j];
                        scores.verdict[i] = gathered.scores.verdict[j];
                    }
                    result
                };
                if let Err(e) = result {
                    for &i in rows_of_key {
                        scores.raw[i as usize] = f64::NAN;
                        scores.normalised[i as usize] = f64::NAN;
                        scores.verdict[i as usize] = Verdict::Undetermined;
                    }
                    // A fresh detector for the next batch: the failure costs this batch's
                    // verdicts for this key, never the run.
                    if let Ok(fresh) = KeyDetector::new(registry, plan) {
                        *state = fresh;
                    }
                    failures.push(DetectorFailure {
                        detector: plan.name.clone(),
                        key: key_names.name(key).to_owned(),
                        message: e.to_string(),
                    });
                }
            }
            failures
        };
        let jobs = self
            .plan
            .detectors
            .iter()
            .zip(&mut self.detectors)
            .zip(&mut out.detectors);
        // Detectors are independent: score them in parallel when the batch is worth it.
        let failures: Vec<Vec<DetectorFailure>> =
            if n * self.plan.detectors.len() >= 16_384 && self.plan.detectors.len() > 1 {
                jobs.collect::<Vec<_>>().into_par_iter().map(work).collect()
            } else {
                jobs.map(work).collect()
            };
        out.failures.extend(failures.into_iter().flatten());
    }

    fn judge(&mut self, rows: &Rows<'_>, out: &mut Outcome) {
        let n = rows.len();
        let ensembles = &self.plan.ensembles;
        out.ensembles.resize_with(ensembles.len(), Vec::new);
        for column in &mut out.ensembles {
            column.resize(n, Judgement::UNDETERMINED);
        }
        for i in 0..n {
            for (e, plan) in ensembles.iter().enumerate() {
                self.members.clear();
                for m in &plan.members {
                    self.members.push(match *m {
                        Member::Detector(d) => {
                            let s = &out.detectors[d];
                            (s.normalised[i], s.verdict[i])
                        }
                        Member::Ensemble(x) => {
                            let j = &out.ensembles[x][i];
                            (j.score, j.verdict)
                        }
                    });
                }
                out.ensembles[e][i] = judge(plan, &self.members, &mut self.sort_scratch);
            }
            for (a, alert) in self.plan.alerts.iter().enumerate() {
                let j = &out.ensembles[alert.ensemble][i];
                if let Step::Fired(f) = self.alerts.step(
                    a,
                    rows.keys[i],
                    rows.timestamps[i],
                    j,
                    rows.first_row + i as u64,
                ) {
                    out.fired.push(f);
                }
            }
        }
    }
}

/// Builds a detector. A detector that trains itself (a `train` or `train_for` parameter)
/// learns from what the rule's `train on first N` / `train on <span>` withholds, unless
/// the rule sets that parameter itself.
impl KeyDetector {
    /// A fresh detector for one key, with its threshold's detector.
    fn new(registry: &Registry, d: &DetectorPlan) -> Result<KeyDetector, EvalError> {
        let (handle, withheld) = create(registry, d)?;
        Ok(KeyDetector {
            handle,
            threshold: create_threshold(registry, d)?,
            seen: 0,
            started: None,
            withheld,
        })
    }
}

/// The `threshold` clause's detector of `d`, if it has one.
pub(crate) fn create_threshold(
    registry: &Registry,
    d: &DetectorPlan,
) -> Result<Option<DetectorHandle>, EvalError> {
    d.threshold
        .as_ref()
        .map(|t| {
            registry
                .create(&t.qualified, &t.params, &[format!("{}.score", d.name)])
                .map_err(|source| EvalError::Create {
                    detector: format!("{} (its threshold)", d.name),
                    qualified: t.qualified.clone(),
                    source,
                })
        })
        .transpose()
}

pub(crate) fn create(
    registry: &Registry,
    d: &DetectorPlan,
) -> Result<(DetectorHandle, TrainingPlan), EvalError> {
    let (params, withheld) = match registry.find(&d.qualified) {
        Ok((_, info)) => d.training.forward(info, &d.params),
        Err(_) => (d.params.clone(), d.training),
    };
    registry
        .create(&d.qualified, &params, &d.input_names)
        .map(|handle| (handle, withheld))
        .map_err(|source| EvalError::Create {
            detector: d.name.clone(),
            qualified: d.qualified.clone(),
            source,
        })
}

/// Scores one key's events of a batch, honouring training and refits.
fn score_key(
    plan: &DetectorPlan,
    state: &mut KeyDetector,
    timestamps: &[i64],
    inputs: &[&[f64]],
    mut out: adr_sdk::ScoresMut<'_>,
) -> Result<(), DetectorError> {
    let n = timestamps.len();
    let training = state.withheld;
    let mut start = 0;
    while start < n {
        let mut end = n;
        if let Some(every) = training.refit_every {
            let began = *state.started.get_or_insert(timestamps[start]);
            if timestamps[start] >= began.saturating_add(every) {
                state.handle.reset()?;
                state.seen = 0;
                state.started = Some(timestamps[start]);
            }
            let began = state.started.unwrap_or(timestamps[start]);
            end = start
                + 1
                + timestamps[start + 1..].partition_point(|&t| t < began.saturating_add(every));
        }
        let columns: Vec<Column<'_>> = plan
            .input_names
            .iter()
            .zip(inputs)
            .map(|(name, values)| Column::f64(name, &values[start..end]))
            .collect();
        let frame = Frame::new(&timestamps[start..end], &columns)
            .expect("gathered columns share the batch's length");
        let mut tail = out.tail(start);
        let (raw, normalised, verdict) = tail.columns_mut();
        let len = end - start;
        let mut part =
            adr_sdk::ScoresMut::new(&mut raw[..len], &mut normalised[..len], &mut verdict[..len]);
        state.handle.score(&frame, &mut part)?;
        if let Some(threshold) = &mut state.threshold {
            // The threshold judges the raw scores; the detector's raw score stays.
            let (raw, normalised, verdict) = part.columns_mut();
            let scores = [Column::f64("score", raw)];
            let frame = Frame::new(&timestamps[start..end], &scores).expect("one score per event");
            let mut judged = ScoreColumns::with_len(len);
            threshold.score(&frame, &mut judged.as_mut())?;
            normalised.copy_from_slice(&judged.normalised);
            verdict.copy_from_slice(&judged.verdict);
        }
        if !training.is_empty() {
            for (j, &t) in timestamps[start..end].iter().enumerate() {
                state.seen += 1;
                let began = *state.started.get_or_insert(t);
                let learning = training.first_events.is_some_and(|k| state.seen <= k)
                    || training
                        .first_span
                        .is_some_and(|span| t < began.saturating_add(span));
                if learning {
                    part.set(j, adr_sdk::Score::UNDETERMINED);
                }
            }
        }
        start = end;
    }
    Ok(())
}

/// Events of a batch grouped by key, each group in event order.
#[derive(Debug, Default)]
struct Groups {
    /// Keys in the order first seen in the batch.
    keys: Vec<KeyId>,
    /// Row indices, grouped; group g is `rows[starts[g]..starts[g + 1]]`.
    rows: Vec<u32>,
    starts: Vec<usize>,
    /// Per key id: its group in this batch, or `u32::MAX`.
    slot: Vec<u32>,
}

impl Groups {
    fn build(&mut self, keys: &[KeyId], n_keys: usize) {
        self.slot.resize(n_keys, u32::MAX);
        for &k in &self.keys {
            self.slot[k as usize] = u32::MAX;
        }
        self.keys.clear();
        let mut counts: Vec<usize> = Vec::new();
        for &k in keys {
            let s = &mut self.slot[k as usize];
            if *s == u32::MAX {
                *s = self.keys.len() as u32;
                self.keys.push(k);
                counts.push(0);
            }
            counts[*s as usize] += 1;
        }
        self.starts.clear();
        self.starts.push(0);
        for c in &counts {
            let last = *self.starts.last().unwrap_or(&0);
            self.starts.push(last + c);
        }
        self.rows.resize(keys.len(), 0);
        let mut next: Vec<usize> = self.starts[..self.keys.len()].to_vec();
        for (i, &k) in keys.iter().enumerate() {
            let g = self.slot[k as usize] as usize;
            self.rows[next[g]] = i as u32;
            next[g] += 1;
        }
    }

    /// Whether the batch holds one key only (its rows are the batch, in order).
    fn single(&self) -> bool {
        self.keys.len() == 1
    }

    fn iter(&self) -> impl Iterator<Item = (KeyId, &[u32])> {
        self.keys
            .iter()
            .enumerate()
            .map(|(g, &k)| (k, &self.rows[self.starts[g]..self.starts[g + 1]]))
    }
}

/// One key's events of a batch, copied out so a detector sees them contiguously.
#[derive(Debug, Default)]
struct Gathered {
    timestamps: Vec<i64>,
    columns: Vec<Vec<f64>>,
    scores: ScoreColumns,
}

impl Gathered {
    fn fill<'a>(
        &mut self,
        rows: &[u32],
        timestamps: &[i64],
        inputs: impl Iterator<Item = &'a [f64]>,
    ) {
        self.timestamps.clear();
        self.timestamps
            .extend(rows.iter().map(|&i| timestamps[i as usize]));
        let mut c = 0;
        for input in inputs {
            if self.columns.len() == c {
                self.columns.push(Vec::new());
            }
            let column = &mut self.columns[c];
            column.clear();
            column.extend(rows.iter().map(|&i| input[i as usize]));
            c += 1;
        }
        self.columns.truncate(c);
        self.scores.resize(rows.len());
    }
}
