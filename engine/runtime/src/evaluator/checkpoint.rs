//! Checkpoints: every key's state (features, detectors through the SDK's `save`, alert
//! holds and cooldowns) as bytes, and back, so a service that restarts goes on where it
//! stopped: an alert that would have fired fires once, and one inside its cooldown not
//! again.
//!
//! A checkpoint is restored only into the rules it was taken under (the same identity of
//! every definition, see [`crate::rules::identity`]): state is meaningful only to the
//! definition that made it, and rules that changed while the service was down start
//! cold, which is said. Floats are kept as their bits, so a restored run gives the same
//! scores, to the bit, as one never interrupted.
//!
//! The format is ours and versioned by its magic: little-endian integers, length-prefixed
//! strings and byte strings, nothing that a reader has to trust (every length is checked
//! against what is left).

use super::alerts::AlertSnapshot;
use super::{EvalError, Evaluator, KeyAlert, KeyDetector};
use crate::rules::features::State;
use crate::rules::plan::TrainingPlan;

/// The first bytes of every checkpoint, with its format's version.
const MAGIC: &[u8; 8] = b"ADRCKPT1";

/// Why a checkpoint was not restored; the evaluator is then as it was, with no keys.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CheckpointError {
    /// The bytes are not a checkpoint this build reads.
    #[error("not a checkpoint this adr reads: {0}")]
    Format(String),
    /// The rules changed since the checkpoint was taken.
    #[error("the rules changed since the checkpoint was taken ({0}); their state starts cold")]
    RulesChanged(String),
    /// The evaluator already holds keys: a checkpoint is restored into a fresh one.
    #[error("a checkpoint is restored before any event; this engine has {0} keys")]
    NotFresh(usize),
    /// A detector cannot be built for a restored key.
    #[error(transparent)]
    Eval(#[from] EvalError),
}

/// What a restore did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Restored {
    /// Keys restored.
    pub keys: usize,
    /// Detector states (per key) that started cold: the detector keeps no state worth
    /// saving, or its build refused the saved one.
    pub cold_detectors: usize,
}

/// Appends values.
#[derive(Default)]
struct Writer(Vec<u8>);

impl Writer {
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn i64(&mut self, v: i64) {
        self.u64(v as u64);
    }
    fn bool(&mut self, v: bool) {
        self.0.push(u8::from(v));
    }
    fn bytes(&mut self, v: &[u8]) {
        self.u64(v.len() as u64);
        self.0.extend_from_slice(v);
    }
    fn str(&mut self, v: &str) {
        self.bytes(v.as_bytes());
    }
    fn strs(&mut self, v: &[String]) {
        self.u64(v.len() as u64);
        for s in v {
            self.str(s);
        }
    }
    fn opt_i64(&mut self, v: Option<i64>) {
        self.bool(v.is_some());
        self.i64(v.unwrap_or(0));
    }
    fn opt_u64(&mut self, v: Option<u64>) {
        self.bool(v.is_some());
        self.u64(v.unwrap_or(0));
    }
    fn opt_bytes(&mut self, v: Option<&[u8]>) {
        self.bool(v.is_some());
        if let Some(v) = v {
            self.bytes(v);
        }
    }
}

/// Reads what a [`Writer`] wrote, checking every length against what is left.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], CheckpointError> {
        if n > self.0.len() {
            return Err(CheckpointError::Format("cut short".into()));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    fn u64(&mut self) -> Result<u64, CheckpointError> {
        let b = self.take(8)?;
        Ok(u64::from_le_bytes(b.try_into().expect("8 bytes")))
    }
    fn i64(&mut self) -> Result<i64, CheckpointError> {
        Ok(self.u64()? as i64)
    }
    fn len(&mut self) -> Result<usize, CheckpointError> {
        let n = usize::try_from(self.u64()?)
            .map_err(|_| CheckpointError::Format("a length past memory".into()))?;
        // Every element takes at least a byte: a length past what is left is a lie.
        if n > self.0.len() {
            return Err(CheckpointError::Format("a length past the end".into()));
        }
        Ok(n)
    }
    fn bool(&mut self) -> Result<bool, CheckpointError> {
        match self.take(1)?[0] {
            0 => Ok(false),
            1 => Ok(true),
            other => Err(CheckpointError::Format(format!("{other} is no flag"))),
        }
    }
    fn bytes(&mut self) -> Result<&'a [u8], CheckpointError> {
        let n = self.len()?;
        self.take(n)
    }
    fn str(&mut self) -> Result<String, CheckpointError> {
        String::from_utf8(self.bytes()?.to_vec())
            .map_err(|_| CheckpointError::Format("text that is not UTF-8".into()))
    }
    fn strs(&mut self) -> Result<Vec<String>, CheckpointError> {
        let n = self.len()?;
        (0..n).map(|_| self.str()).collect()
    }
    fn opt_i64(&mut self) -> Result<Option<i64>, CheckpointError> {
        let some = self.bool()?;
        let v = self.i64()?;
        Ok(some.then_some(v))
    }
    fn opt_u64(&mut self) -> Result<Option<u64>, CheckpointError> {
        let some = self.bool()?;
        let v = self.u64()?;
        Ok(some.then_some(v))
    }
    fn opt_bytes(&mut self) -> Result<Option<&'a [u8]>, CheckpointError> {
        if self.bool()? {
            Ok(Some(self.bytes()?))
        } else {
            Ok(None)
        }
    }
}

/// What the rules' identity is, as a checkpoint records it.
fn identity_of(evaluator: &Evaluator) -> Vec<Vec<String>> {
    let ids = &evaluator.identities;
    vec![
        evaluator.plan.input.keys.clone(),
        ids.features.clone(),
        ids.detectors.clone(),
        ids.ensembles.clone(),
        ids.alert_holds.clone(),
        ids.alert_cooldowns.clone(),
    ]
}

/// One key's detector as a checkpoint keeps it.
struct SavedDetector<'a> {
    seen: u64,
    started: Option<i64>,
    withheld: TrainingPlan,
    state: Option<&'a [u8]>,
    threshold: Option<&'a [u8]>,
}

impl Evaluator {
    /// Every live key's state, as bytes [`restore`](Self::restore) reads. A detector
    /// whose `save` fails or keeps nothing is recorded as such, and starts cold.
    pub fn checkpoint(&self) -> Vec<u8> {
        let mut w = Writer::default();
        w.0.extend_from_slice(MAGIC);
        for part in identity_of(self) {
            w.strs(&part);
        }
        w.u64(self.plan.feature_states as u64);
        w.i64(self.newest);
        w.i64(self.swept_at);
        w.u64(self.unsorted_rows);
        w.u64(self.failures);
        w.u64(self.evicted);
        let live: Vec<super::KeyId> = (0..self.keys.len() as super::KeyId)
            .filter(|&k| self.keys.is_live(k))
            .collect();
        w.u64(live.len() as u64);
        let per_key = self.plan.feature_states;
        let mut words = Vec::new();
        for &k in &live {
            let slot = k as usize;
            w.strs(self.keys.parts(k));
            w.i64(self.last_time[slot]);
            words.clear();
            for state in &self.feature_states[slot * per_key..(slot + 1) * per_key] {
                state.to_words(&mut words);
            }
            w.u64(words.len() as u64);
            for &word in &words {
                w.u64(word);
            }
            for detectors in &self.detectors {
                let d = &detectors[slot];
                let saved = d.handle.save().ok().flatten();
                let threshold = d.threshold.as_ref().map(|t| t.save().ok().flatten());
                // A detector without its whole state is recorded as one that starts cold.
                let whole = saved.is_some() && !matches!(threshold, Some(None));
                w.u64(if whole { d.seen } else { 0 });
                w.opt_i64(d.started.filter(|_| whole));
                w.opt_u64(d.withheld.first_events);
                w.opt_i64(d.withheld.first_span);
                w.opt_i64(d.withheld.refit_every);
                w.opt_bytes(saved.as_deref().filter(|_| whole));
                w.opt_bytes(threshold.flatten().as_deref().filter(|_| whole));
            }
        }
        let alerts = self.alerts.snapshot(&live);
        w.u64(alerts.len() as u64);
        for a in &alerts {
            for key in &a.keys {
                w.bool(key.holding.is_some());
                let (since, events) = key.holding.unwrap_or((0, 0));
                w.i64(since);
                w.u64(events);
                w.bool(key.active);
            }
            w.u64(a.clocks.len() as u64);
            for (name, last_fired, suppressed) in &a.clocks {
                w.str(name);
                w.opt_i64(*last_fired);
                w.u64(*suppressed);
            }
            w.opt_i64(a.shared.0);
            w.u64(a.shared.1);
            w.u64(a.fired);
            w.u64(a.suppressed);
        }
        w.0
    }

    /// Restores a [`checkpoint`](Self::checkpoint) into this evaluator, which has seen
    /// no event yet and runs the rules the checkpoint was taken under.
    ///
    /// # Errors
    ///
    /// A [`CheckpointError`]; the evaluator then holds no key (it starts cold).
    pub fn restore(&mut self, bytes: &[u8]) -> Result<Restored, CheckpointError> {
        if !self.keys.is_empty() {
            return Err(CheckpointError::NotFresh(self.keys.len()));
        }
        let restored = self.read_checkpoint(bytes);
        if restored.is_err() {
            self.forget_all();
        }
        restored
    }

    fn read_checkpoint(&mut self, bytes: &[u8]) -> Result<Restored, CheckpointError> {
        let mut r = Reader(bytes);
        if r.take(MAGIC.len()).ok() != Some(MAGIC.as_slice()) {
            return Err(CheckpointError::Format(
                "no checkpoint header (another format or version)".into(),
            ));
        }
        let names = [
            "key columns",
            "features",
            "detectors",
            "ensembles",
            "alert holds",
            "alert cooldowns",
        ];
        for (name, running) in names.iter().zip(identity_of(self)) {
            if r.strs()? != running {
                return Err(CheckpointError::RulesChanged(format!("its {name} differ")));
            }
        }
        let per_key = self.plan.feature_states;
        if r.u64()? != per_key as u64 {
            return Err(CheckpointError::RulesChanged(
                "its feature states differ".into(),
            ));
        }
        let (newest, swept_at) = (r.i64()?, r.i64()?);
        let (unsorted_rows, failures, evicted) = (r.u64()?, r.u64()?, r.u64()?);
        let n = r.len()?;
        let mut ids = Vec::with_capacity(n.min(1 << 20));
        let mut cold_detectors = 0;
        let width = self.plan.input.keys.len();
        for _ in 0..n {
            let parts = r.strs()?;
            if parts.len() != width {
                return Err(CheckpointError::Format(format!(
                    "a key of {} parts; the rules key by {width}",
                    parts.len()
                )));
            }
            let id = self.key(parts.iter().map(String::as_bytes))?;
            if ids.last().is_some_and(|&last| id <= last) {
                return Err(CheckpointError::Format("a key twice".into()));
            }
            ids.push(id);
            let slot = id as usize;
            self.last_time[slot] = r.i64()?;
            let count = r.len()?;
            let words: Vec<u64> = (0..count).map(|_| r.u64()).collect::<Result<_, _>>()?;
            let mut at = 0;
            for state in &mut self.feature_states[slot * per_key..(slot + 1) * per_key] {
                let (s, used) = State::from_words(&words[at..])
                    .ok_or_else(|| CheckpointError::Format("a feature state".into()))?;
                *state = s;
                at += used;
            }
            if at != words.len() {
                return Err(CheckpointError::Format("feature states left over".into()));
            }
            for d in 0..self.detectors.len() {
                let saved = SavedDetector {
                    seen: r.u64()?,
                    started: r.opt_i64()?,
                    withheld: TrainingPlan {
                        first_events: r.opt_u64()?,
                        first_span: r.opt_i64()?,
                        refit_every: r.opt_i64()?,
                    },
                    state: r.opt_bytes()?,
                    threshold: r.opt_bytes()?,
                };
                if !self.restore_detector(d, slot, &saved)? {
                    cold_detectors += 1;
                }
            }
        }
        let n_alerts = r.len()?;
        if n_alerts != self.plan.alerts.len() {
            return Err(CheckpointError::Format("another number of alerts".into()));
        }
        let mut snapshots = Vec::with_capacity(n_alerts);
        for _ in 0..n_alerts {
            let mut snap = AlertSnapshot::default();
            for _ in 0..n {
                let holding = r.bool()?;
                let (since, events) = (r.i64()?, r.u64()?);
                snap.keys.push(KeyAlert {
                    holding: holding.then_some((since, events)),
                    active: r.bool()?,
                });
            }
            let groups = r.len()?;
            for _ in 0..groups {
                snap.clocks.push((r.str()?, r.opt_i64()?, r.u64()?));
            }
            snap.shared = (r.opt_i64()?, r.u64()?);
            snap.fired = r.u64()?;
            snap.suppressed = r.u64()?;
            snapshots.push(snap);
        }
        if !r.0.is_empty() {
            return Err(CheckpointError::Format("bytes left over".into()));
        }
        self.alerts.restore(snapshots, &ids);
        self.newest = newest;
        self.swept_at = swept_at;
        self.unsorted_rows = unsorted_rows;
        self.failures = failures;
        self.evicted = evicted;
        Ok(Restored {
            keys: n,
            cold_detectors,
        })
    }

    /// Puts a saved detector back for key slot `slot`; whether its state came back (a
    /// refused state leaves it fresh).
    fn restore_detector(
        &mut self,
        d: usize,
        slot: usize,
        saved: &SavedDetector<'_>,
    ) -> Result<bool, CheckpointError> {
        let kept = &mut self.detectors[d][slot];
        let mut whole = saved
            .state
            .is_some_and(|bytes| kept.handle.restore(bytes).is_ok());
        match (kept.threshold.as_mut(), saved.threshold) {
            (Some(threshold), Some(bytes)) => whole &= threshold.restore(bytes).is_ok(),
            (Some(_), None) => whole = false,
            (None, _) => {}
        }
        if whole {
            kept.seen = saved.seen;
            kept.started = saved.started;
            kept.withheld = saved.withheld;
        } else {
            // Half a state is worse than none: start this key's detector cold.
            *kept = KeyDetector::new(&self.registry, &self.plan.detectors[d])?;
        }
        Ok(whole)
    }

    /// Drops every key: back to an evaluator that has seen nothing.
    fn forget_all(&mut self) {
        let fresh = Evaluator::from_prepared(super::Prepared {
            plan: self.plan.clone(),
            identities: self.identities.clone(),
            registry: std::sync::Arc::clone(&self.registry),
            whole_series: self.whole_series,
            state: self.state.clone(),
        });
        let (unsorted, eviction, budget) = (self.unsorted, self.eviction, self.budget);
        *self = fresh;
        self.unsorted = unsorted;
        self.eviction = eviction;
        self.budget = budget;
    }
}
