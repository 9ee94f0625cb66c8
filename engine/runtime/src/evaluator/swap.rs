//! Swapping a running evaluator to a new plan at an event boundary, keeping the state of
//! every definition whose identity did not change (see [`crate::rules::identity`]).
//!
//! The costly part, checking the rules and building each detector once, happens in
//! [`Prepared::new`], off the event path. [`Evaluator::swap`] then only moves state: per
//! key, the detector handles and feature states of unchanged definitions change hands,
//! new and changed definitions get fresh state, and detectors whose plugin was replaced
//! by a new build are moved to it (their saved state restored where the build accepts
//! it). Fresh detectors are built for every known key before anything is moved, so a
//! plugin that refuses leaves the running evaluator as it was.

use std::collections::HashMap;
use std::sync::Arc;

use adr_sdk::host::DetectorHandle;

use super::{AlertBook, EvalError, Evaluator, KeyDetector};
use crate::budget::{detector_bytes, StateEstimate};
use crate::plugins::Registry;
use crate::rules::features::State;
use crate::rules::identity::{state_range, Identities};
use crate::rules::plan::Plan;

/// A checked plan with its detectors probed, ready to be swapped in.
#[derive(Debug)]
pub struct Prepared {
    pub(super) plan: Plan,
    pub(super) identities: Identities,
    pub(super) registry: Arc<Registry>,
    pub(super) whole_series: bool,
    pub(super) state: StateEstimate,
}

impl Prepared {
    /// Builds each of `plan`'s detectors once, so a plugin that refuses its parameters is
    /// reported before any event.
    ///
    /// # Errors
    ///
    /// [`EvalError::Create`] when a plugin refuses a detector.
    pub fn new(plan: Plan, registry: Arc<Registry>) -> Result<Self, EvalError> {
        let mut whole_series = false;
        let mut bytes = Vec::with_capacity(plan.detectors.len());
        for d in &plan.detectors {
            let state = KeyDetector::new(&registry, d)?;
            whole_series |= state.handle.needs_whole_series()
                || state
                    .threshold
                    .as_ref()
                    .is_some_and(|t| t.needs_whole_series());
            bytes.push((
                d.name.clone(),
                detector_bytes(&state.handle, state.threshold.as_ref()),
            ));
        }
        Ok(Prepared {
            identities: Identities::of(&plan),
            state: StateEstimate::of(&plan, bytes),
            plan,
            registry,
            whole_series,
        })
    }

    /// The estimate of one key's state under these rules.
    pub fn state_estimate(&self) -> &StateEstimate {
        &self.state
    }

    /// The plan.
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// Whether a detector needs the whole series in one batch.
    pub fn needs_whole_series(&self) -> bool {
        self.whole_series
    }
}

/// What a swap replaced: the old plan and the state nothing took over. Freeing it costs
/// time (detector handles, windows, strings), so the event path hands it to another
/// thread to drop.
#[derive(Debug)]
pub struct Retired {
    _plan: Plan,
    _identities: Identities,
    _registry: Arc<Registry>,
    _detectors: Vec<Vec<KeyDetector>>,
    _feature_states: Vec<State>,
    _alerts: AlertBook,
}

/// What a swap did with each definition, for the log.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct SwapReport {
    /// Definitions that kept their state (`detector spike`, `feature r`, `alert x`).
    pub kept: Vec<String>,
    /// New or changed definitions, starting fresh.
    pub fresh: Vec<String>,
    /// Definitions of the old plan whose names the new one lacks (a changed definition
    /// under the same name is in `fresh`).
    pub dropped: Vec<String>,
    /// Detectors moved to a new build of their plugin with their state.
    pub moved: Vec<String>,
    /// Detectors moved to a new build of their plugin that could not take their state
    /// back (each with the reason): they start fresh.
    pub reinitialised: Vec<String>,
    /// Keys whose state was carried.
    pub keys: usize,
}

impl SwapReport {
    /// Whether the new plan kept every definition's state.
    pub fn all_kept(&self) -> bool {
        self.fresh.is_empty() && self.dropped.is_empty() && self.reinitialised.is_empty()
    }
}

/// The build a detector's code comes from, to tell a new plugin build from the old one.
fn provider(registry: &Registry, qualified: &str) -> Option<u64> {
    registry.find(qualified).ok().map(|(p, _)| p.build)
}

impl Evaluator {
    /// Switches to `next` between two batches. The keys, their order checks and the
    /// counters carry over; so does the state of every feature, detector and alert whose
    /// identity is unchanged.
    ///
    /// # Errors
    ///
    /// [`EvalError::Create`] when a plugin refuses to build a new detector for a known
    /// key; the evaluator is then unchanged.
    pub fn swap(&mut self, next: Prepared) -> Result<(SwapReport, Retired), EvalError> {
        if let Some(budget) = self.budget {
            next.state.keys_within(budget)?;
        }
        let Prepared {
            plan,
            identities,
            registry,
            whole_series,
            state,
        } = next;
        let n_keys = self.keys.len();
        let mut report = SwapReport {
            keys: n_keys,
            ..SwapReport::default()
        };
        let same_plugins = Arc::ptr_eq(&self.registry, &registry);

        // Detectors: the n-th new definition of an identity takes the n-th old one's state.
        let mut old_by_identity: HashMap<&str, Vec<usize>> = HashMap::new();
        for (i, id) in self.identities.detectors.iter().enumerate().rev() {
            old_by_identity.entry(id).or_default().push(i);
        }
        let matched: Vec<Option<usize>> = identities
            .detectors
            .iter()
            .map(|id| old_by_identity.get_mut(id.as_str()).and_then(Vec::pop))
            .collect();
        // Phase 1, fallible: build every handle the new plan needs that is not moved.
        enum Source {
            Old(usize),
            Rebuilt(usize, Vec<KeyDetector>, Vec<bool>),
            Fresh(Vec<KeyDetector>),
        }
        let mut sources = Vec::with_capacity(plan.detectors.len());
        for (d, old) in plan.detectors.iter().zip(&matched) {
            let source = match *old {
                Some(o) if same_plugins => Source::Old(o),
                Some(o)
                    if provider(&self.registry, &d.qualified)
                        == provider(&registry, &d.qualified)
                        && d.threshold
                            .as_ref()
                            .map(|t| provider(&self.registry, &t.qualified))
                            == d.threshold
                                .as_ref()
                                .map(|t| provider(&registry, &t.qualified)) =>
                {
                    Source::Old(o)
                }
                Some(o) => {
                    // A new build of its plugin: save each key's state, restore it there.
                    let mut states = Vec::with_capacity(n_keys);
                    let mut restored = Vec::with_capacity(n_keys);
                    let mut reason = None;
                    for state in &self.detectors[o] {
                        let mut fresh = KeyDetector::new(&registry, d)?;
                        let carried = carry(&state.handle, &mut fresh.handle)
                            .and_then(|()| match (&state.threshold, &mut fresh.threshold) {
                                (Some(from), Some(to)) => carry(from, to),
                                _ => Ok(()),
                            })
                            .map(|()| true)
                            .unwrap_or_else(|e| {
                                reason.get_or_insert(e.to_string());
                                false
                            });
                        if !carried {
                            // `restore` may have left it half-way: start from scratch.
                            fresh = KeyDetector::new(&registry, d)?;
                        }
                        states.push(fresh);
                        restored.push(carried);
                    }
                    match reason {
                        None => report.moved.push(format!("detector `{}`", d.name)),
                        Some(r) => report
                            .reinitialised
                            .push(format!("detector `{}` ({r})", d.name)),
                    }
                    Source::Rebuilt(o, states, restored)
                }
                None => {
                    report.fresh.push(format!("detector `{}`", d.name));
                    Source::Fresh(
                        (0..n_keys)
                            .map(|_| KeyDetector::new(&registry, d))
                            .collect::<Result<_, _>>()?,
                    )
                }
            };
            sources.push(source);
        }

        // Phase 2, infallible: move the state.
        let mut old_detectors = std::mem::take(&mut self.detectors);
        self.detectors = sources
            .into_iter()
            .zip(&plan.detectors)
            .map(|(source, d)| match source {
                Source::Old(o) => {
                    report.kept.push(format!("detector `{}`", d.name));
                    std::mem::take(&mut old_detectors[o])
                }
                Source::Rebuilt(o, states, restored) => states
                    .into_iter()
                    .zip(restored)
                    .zip(&old_detectors[o])
                    .map(|((state, carried), old)| KeyDetector {
                        seen: if carried { old.seen } else { 0 },
                        started: if carried { old.started } else { None },
                        ..state
                    })
                    .collect(),
                Source::Fresh(states) => states,
            })
            .collect();
        for (o, d) in self.plan.detectors.iter().enumerate() {
            if !matched.contains(&Some(o)) && !plan.detectors.iter().any(|n| n.name == d.name) {
                report.dropped.push(format!("detector `{}`", d.name));
            }
        }

        let feature_states = self.swap_features(&plan, &identities, &mut report);
        let alerts = self.swap_alerts(&plan, &identities, &mut report);

        self.slots = vec![0.0; plan.slots.len()];
        self.whole_series = whole_series;
        self.state = state;
        let retired = Retired {
            _plan: std::mem::replace(&mut self.plan, plan),
            _identities: std::mem::replace(&mut self.identities, identities),
            _registry: std::mem::replace(&mut self.registry, registry),
            _detectors: old_detectors,
            _feature_states: feature_states,
            _alerts: alerts,
        };
        Ok((report, retired))
    }

    fn swap_features(
        &mut self,
        plan: &Plan,
        identities: &Identities,
        report: &mut SwapReport,
    ) -> Vec<State> {
        let n_keys = self.keys.len();
        let (old_per_key, new_per_key) = (self.plan.feature_states, plan.feature_states);
        let old_ranges: Vec<_> = self
            .plan
            .features
            .iter()
            .map(|f| state_range(&f.node))
            .collect();
        let mut states = vec![State::default(); n_keys * new_per_key];
        let mut used = vec![false; self.plan.features.len()];
        let mut old_index: HashMap<&str, usize> = HashMap::new();
        for (i, id) in self.identities.features.iter().enumerate() {
            old_index.entry(id).or_insert(i);
        }
        for (f, id) in plan.features.iter().zip(&identities.features) {
            let Some(&o) = old_index.get(id.as_str()) else {
                report.fresh.push(format!("feature `{}`", f.name));
                continue;
            };
            used[o] = true;
            report.kept.push(format!("feature `{}`", f.name));
            let (from, to) = (old_ranges[o].clone(), state_range(&f.node));
            if from.is_empty() {
                continue;
            }
            for k in 0..n_keys {
                let old = &self.feature_states[k * old_per_key..][from.clone()];
                states[k * new_per_key..][to.clone()].clone_from_slice(old);
            }
        }
        for (f, used) in self.plan.features.iter().zip(used) {
            if !used && !plan.features.iter().any(|n| n.name == f.name) {
                report.dropped.push(format!("feature `{}`", f.name));
            }
        }
        std::mem::replace(&mut self.feature_states, states)
    }

    fn swap_alerts(
        &mut self,
        plan: &Plan,
        identities: &Identities,
        report: &mut SwapReport,
    ) -> AlertBook {
        let old = &self.identities;
        let index = |ids: &'_ [String]| -> HashMap<String, usize> {
            ids.iter()
                .enumerate()
                .map(|(i, id)| (id.clone(), i))
                .collect()
        };
        let (holds, cooldowns) = (index(&old.alert_holds), index(&old.alert_cooldowns));
        let mut book = AlertBook::new(&plan.alerts, &plan.input.keys);
        let mut taken = vec![false; self.plan.alerts.len()];
        for (a, alert) in plan.alerts.iter().enumerate() {
            let hold = holds.get(&identities.alert_holds[a]).copied();
            let cooldown = cooldowns.get(&identities.alert_cooldowns[a]).copied();
            // The cooldown's match first: it is the one that names the alert.
            match cooldown.or(hold).filter(|&o| !taken[o]) {
                Some(o) => {
                    taken[o] = true;
                    let (hold, cooldown) = (hold == Some(o), cooldown == Some(o));
                    book.take_from(a, &mut self.alerts, o, hold, cooldown);
                    report.kept.push(match (hold, cooldown) {
                        (true, true) => format!("alert `{}`", alert.name),
                        (false, _) => {
                            report.fresh.push(format!(
                                "alert `{}` (hold only: its cooldown carries over)",
                                alert.name
                            ));
                            continue;
                        }
                        (true, false) => {
                            report.fresh.push(format!(
                                "alert `{}` (cooldown only: how long it has held carries over)",
                                alert.name
                            ));
                            continue;
                        }
                    });
                }
                None => {
                    book.add_keys_to(a, &self.keys);
                    report.fresh.push(format!("alert `{}`", alert.name));
                }
            }
        }
        for (a, taken) in self.plan.alerts.iter().zip(taken) {
            if !taken && !plan.alerts.iter().any(|n| n.name == a.name) {
                report.dropped.push(format!("alert `{}`", a.name));
            }
        }
        std::mem::replace(&mut self.alerts, book)
    }
}

/// Moves a detector's saved state into a fresh handle of another build of its plugin.
fn carry(from: &DetectorHandle, to: &mut DetectorHandle) -> Result<(), adr_sdk::DetectorError> {
    match from.save()? {
        Some(bytes) => to.restore(&bytes),
        None => Ok(()),
    }
}
