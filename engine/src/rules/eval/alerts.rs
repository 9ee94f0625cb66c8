//! Alert state: how long an ensemble's severity has held per key, when each group last
//! fired, and what cooldowns suppressed (see `docs/decisions/0008-ensembles-and-alerts.md`).
//!
//! An alert fires at the event where its condition (severity ≥ level) has held for the
//! required events or span; it stays active, without firing again, until the condition
//! breaks. A firing inside the cooldown of the alert's group is suppressed: counted, and
//! reported with the next firing of that group, never dropped silently.

use std::collections::HashMap;

use super::ensemble::Judgement;
use super::keys::KeyId;
use crate::rules::ast::Hold;
use crate::rules::plan::AlertPlan;
use crate::rules::severity::Severity;

/// A fired alert.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Fired {
    /// The alert's index in [`Plan::alerts`](crate::rules::plan::Plan::alerts).
    #[serde(skip)]
    pub index: usize,
    /// The alert's (and its ensemble's) name.
    pub alert: String,
    /// Event time of the event that fired it, ns.
    pub ts: i64,
    /// The key.
    #[serde(skip)]
    pub key: KeyId,
    /// The group's value (the group-by columns joined with `/`).
    pub group: String,
    /// The severity at the firing event.
    pub severity: Severity,
    /// The ensemble's score at the firing event.
    pub score: f64,
    /// Event time the condition started to hold, ns.
    pub since: i64,
    /// Events the condition has held for.
    pub events: u64,
    /// Firings of this group suppressed by its cooldown since it last fired.
    pub suppressed: u64,
    /// Data row of the firing event, from 1.
    pub row: u64,
}

/// The state of one alert for one key, for explanations.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct KeyAlert {
    /// When the condition started to hold, and for how many events, if it holds.
    pub holding: Option<(i64, u64)>,
    /// Whether the alert fired (or was suppressed) for the current run of the condition.
    pub active: bool,
}

/// What one step of an alert did.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Nothing to report.
    Quiet,
    /// It fired.
    Fired(Fired),
    /// It would have fired, but the group is in its cooldown until this time (ns).
    Suppressed {
        /// End of the cooldown.
        until: i64,
    },
}

/// Every alert's state, for every key.
#[derive(Debug, Default)]
pub struct AlertBook {
    plans: Vec<AlertPlan>,
    /// Positions of each alert's group-by columns among the key columns.
    group_columns: Vec<Vec<usize>>,
    states: Vec<Vec<KeyAlert>>,
    group_of: Vec<Vec<u32>>,
    group_ids: Vec<HashMap<String, u32>>,
    group_names: Vec<Vec<String>>,
    last_fired: Vec<Vec<Option<i64>>>,
    suppressed_since: Vec<Vec<u64>>,
    /// Alerts fired, per alert.
    pub fired: Vec<u64>,
    /// Firings suppressed by cooldowns, per alert.
    pub suppressed: Vec<u64>,
}

impl AlertBook {
    /// Alert state for `plans`; `key_columns` are the input's key columns.
    pub fn new(plans: &[AlertPlan], key_columns: &[String]) -> Self {
        let n = plans.len();
        AlertBook {
            plans: plans.to_vec(),
            group_columns: plans
                .iter()
                .map(|p| {
                    p.group_by
                        .iter()
                        .filter_map(|g| key_columns.iter().position(|k| k == g))
                        .collect()
                })
                .collect(),
            states: vec![Vec::new(); n],
            group_of: vec![Vec::new(); n],
            group_ids: vec![HashMap::new(); n],
            group_names: vec![Vec::new(); n],
            last_fired: vec![Vec::new(); n],
            suppressed_since: vec![Vec::new(); n],
            fired: vec![0; n],
            suppressed: vec![0; n],
        }
    }

    /// Registers a new key (ids in order), given its parts, one per key column.
    pub fn add_key(&mut self, parts: &[&str]) {
        for a in 0..self.plans.len() {
            self.states[a].push(KeyAlert::default());
            let group = if self.group_columns[a].is_empty() {
                parts.join("/")
            } else {
                self.group_columns[a]
                    .iter()
                    .map(|&i| parts[i])
                    .collect::<Vec<_>>()
                    .join("/")
            };
            let next = self.group_names[a].len() as u32;
            let id = *self.group_ids[a].entry(group.clone()).or_insert(next);
            if id == next {
                self.group_names[a].push(group);
                self.last_fired[a].push(None);
                self.suppressed_since[a].push(0);
            }
            self.group_of[a].push(id);
        }
    }

    /// The state of alert `a` for `key`.
    pub fn state(&self, a: usize, key: KeyId) -> KeyAlert {
        self.states[a][key as usize]
    }

    /// When alert `a`'s cooldown for `key`'s group ends, if it is running at `ts`.
    pub fn cooldown_until(&self, a: usize, key: KeyId, ts: i64) -> Option<i64> {
        let (span, _) = self.plans[a].cooldown?;
        let g = self.cooldown_group(a, key);
        self.last_fired[a][g]
            .map(|t| t.saturating_add(span))
            .filter(|&end| ts < end)
    }

    fn cooldown_group(&self, a: usize, key: KeyId) -> usize {
        match self.plans[a].cooldown {
            // One cooldown shared by every group: kept in group 0's slot.
            Some((_, false)) => 0,
            _ => self.group_of[a][key as usize] as usize,
        }
    }

    /// Advances alert `a` for `key` with the ensemble's judgement of the event at `ts`.
    #[inline]
    pub fn step(&mut self, a: usize, key: KeyId, ts: i64, j: &Judgement, row: u64) -> Step {
        let plan = &self.plans[a];
        let state = &mut self.states[a][key as usize];
        let on = j.severity.is_some_and(|s| s >= plan.level);
        if !on {
            *state = KeyAlert::default();
            return Step::Quiet;
        }
        let (since, events) = match state.holding {
            Some((since, events)) => (since, events + 1),
            None => (ts, 1),
        };
        state.holding = Some((since, events));
        let held = match plan.hold {
            Hold::Events(n) => events >= n,
            Hold::Duration(d) => ts.saturating_sub(since) >= d,
        };
        if !held || state.active {
            return Step::Quiet;
        }
        state.active = true;
        if let Some(until) = self.cooldown_until(a, key, ts) {
            let g = self.cooldown_group(a, key);
            self.suppressed_since[a][g] += 1;
            self.suppressed[a] += 1;
            return Step::Suppressed { until };
        }
        let g = self.cooldown_group(a, key);
        self.last_fired[a][g] = Some(ts);
        let suppressed = std::mem::take(&mut self.suppressed_since[a][g]);
        self.fired[a] += 1;
        Step::Fired(Fired {
            index: a,
            alert: self.plans[a].name.clone(),
            ts,
            key,
            group: self.group_names[a][self.group_of[a][key as usize] as usize].clone(),
            severity: j.severity.unwrap_or(Severity::Info),
            score: j.score,
            since,
            events,
            suppressed,
            row,
        })
    }

    /// Takes alert `a`'s state from alert `hold` of `old` (how long its condition has held
    /// per key) and its cooldown state from alert `cooldown` of `old` (when each group last
    /// fired, what was suppressed, the counters). Both books must hold the same keys in the
    /// same order, and the alerts the same group-by, so group ids line up.
    pub fn carry(
        &mut self,
        a: usize,
        old: &AlertBook,
        hold: Option<usize>,
        cooldown: Option<usize>,
    ) {
        if let Some(o) = hold {
            self.states[a].clone_from(&old.states[o]);
        }
        if let Some(o) = cooldown {
            self.last_fired[a].clone_from(&old.last_fired[o]);
            self.suppressed_since[a].clone_from(&old.suppressed_since[o]);
            self.fired[a] = old.fired[o];
            self.suppressed[a] = old.suppressed[o];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use adr_sdk::Verdict;

    const MIN: i64 = 60_000_000_000;

    fn plan(hold: Hold, cooldown: Option<(i64, bool)>) -> AlertPlan {
        AlertPlan {
            ensemble: 0,
            name: "a".into(),
            level: Severity::Medium,
            hold,
            cooldown,
            group_by: Vec::new(),
            notify: Vec::new(),
        }
    }

    fn j(severity: Option<Severity>) -> Judgement {
        Judgement {
            score: if severity.is_some() { 0.9 } else { 0.1 },
            verdict: if severity.is_some() {
                Verdict::Anomaly
            } else {
                Verdict::Normal
            },
            votes: 1,
            severity,
            arm: None,
        }
    }

    /// Runs `levels` (one per minute) through the alert; returns F, S or . per event.
    fn trace(book: &mut AlertBook, key: KeyId, levels: &[Option<Severity>]) -> String {
        levels
            .iter()
            .enumerate()
            .map(
                |(i, s)| match book.step(0, key, i as i64 * MIN, &j(*s), i as u64 + 1) {
                    Step::Quiet => '.',
                    Step::Fired(_) => 'F',
                    Step::Suppressed { .. } => 'S',
                },
            )
            .collect()
    }

    const M: Option<Severity> = Some(Severity::Medium);
    const L: Option<Severity> = Some(Severity::Low);

    #[test]
    fn fires_once_per_run_after_the_hold() {
        let mut book = AlertBook::new(&[plan(Hold::Events(2), None)], &[]);
        book.add_key(&[]);
        assert_eq!(
            trace(&mut book, 0, &[M, M, M, None, M, L, M, M]),
            ".F.....F"
        );
        assert_eq!(book.fired[0], 2);
    }

    #[test]
    fn a_duration_hold_counts_event_time() {
        let mut book = AlertBook::new(&[plan(Hold::Duration(2 * MIN), None)], &[]);
        book.add_key(&[]);
        assert_eq!(trace(&mut book, 0, &[M, M, M, M]), "..F.");
    }

    #[test]
    fn cooldown_suppresses_and_counts_then_reports_with_the_next_firing() {
        let mut book = AlertBook::new(&[plan(Hold::Events(1), Some((5 * MIN, true)))], &[]);
        book.add_key(&[]);
        assert_eq!(
            trace(&mut book, 0, &[M, None, M, None, M, None, M]),
            "F.S.S.F"
        );
        assert_eq!((book.fired[0], book.suppressed[0]), (2, 2));
        // the firing at minute 6 carries the two suppressed ones
        let mut book2 = AlertBook::new(&[plan(Hold::Events(1), Some((5 * MIN, true)))], &[]);
        book2.add_key(&[]);
        let mut last = None;
        for (i, s) in [M, None, M, None, M, None, M].iter().enumerate() {
            if let Step::Fired(f) = book2.step(0, 0, i as i64 * MIN, &j(*s), 0) {
                last = Some(f);
            }
        }
        assert_eq!(last.unwrap().suppressed, 2);
    }

    #[test]
    fn cooldowns_are_per_group_or_shared() {
        let keys = ["exchange".to_owned(), "symbol".to_owned()];
        let mut per_group = plan(Hold::Events(1), Some((5 * MIN, true)));
        per_group.group_by = vec!["exchange".into()];
        let shared = plan(Hold::Events(1), Some((5 * MIN, false)));
        for (p, want) in [(per_group, "FFS"), (shared, "FSS")] {
            let mut book = AlertBook::new(&[p], &keys);
            book.add_key(&["binance", "BTC"]);
            book.add_key(&["kraken", "BTC"]);
            book.add_key(&["binance", "ETH"]);
            let got: String = (0..3)
                .map(|k| match book.step(0, k, 0, &j(M), 1) {
                    Step::Fired(_) => 'F',
                    Step::Suppressed { .. } => 'S',
                    Step::Quiet => '.',
                })
                .collect();
            assert_eq!(got, want);
        }
    }
}
