//! Alert state: how long an ensemble's severity has held per key, when each group last
//! fired, and what cooldowns suppressed (see `docs/decisions/0008-ensembles-and-alerts.md`).
//!
//! An alert fires at the event where its condition (severity ≥ level) has held for the
//! required events or span; it stays active, without firing again, until the condition
//! breaks. A firing inside the cooldown of the alert's group is suppressed: counted, and
//! reported with the next firing of that group, never dropped silently.

use std::collections::HashMap;

use super::ensemble::Judgement;
use super::keys::{key_text, KeyId};
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
    /// The group's value: the group-by columns' values as a key's text (`keys::key_text`).
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

/// When a cooldown's group last fired, and what it suppressed since.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Clock {
    last_fired: Option<i64>,
    suppressed_since: u64,
}

/// A key slot that belongs to no group (its key was evicted).
const NO_GROUP: u32 = u32::MAX;

/// One alert's state, for every key.
///
/// Groups live while a held key belongs to them or their cooldown runs: an evicted key
/// leaves its group, and a group with no key left is forgotten at the next sweep once its
/// cooldown is over (what it suppressed stays in the alert's counter), its id going to
/// the next new group. So groups are bounded by the keys held plus the cooldowns running.
#[derive(Debug, Clone)]
struct AlertState {
    plan: AlertPlan,
    /// Positions of the group-by columns among the key columns.
    group_columns: Vec<usize>,
    states: Vec<KeyAlert>,
    group_of: Vec<u32>,
    group_ids: HashMap<String, u32>,
    /// Per group id: its name, its clock and how many key slots belong to it.
    group_names: Vec<String>,
    clocks: Vec<Clock>,
    members: Vec<u32>,
    /// Group ids free for new groups.
    free_groups: Vec<u32>,
    /// The clock of a cooldown shared by every group (`cooldown … ` without `per key`).
    shared: Clock,
    fired: u64,
    suppressed: u64,
}

impl AlertState {
    fn add_key(&mut self, parts: &[&str]) {
        self.states.push(KeyAlert::default());
        let group = self.join(parts);
        self.group_of.push(group);
    }

    /// A new key in an evicted key's slot: its own alert state, its own group.
    fn reset_key(&mut self, key: KeyId, parts: &[&str]) {
        self.states[key as usize] = KeyAlert::default();
        self.leave(key);
        self.group_of[key as usize] = self.join(parts);
    }

    /// Takes key slot `key` out of its group.
    fn leave(&mut self, key: KeyId) {
        let group = std::mem::replace(&mut self.group_of[key as usize], NO_GROUP);
        if group != NO_GROUP {
            self.members[group as usize] -= 1;
        }
    }

    /// The id of the cooldown group of a key with `parts` (adding it if new), with one
    /// more member.
    fn join(&mut self, parts: &[&str]) -> u32 {
        // The group's text names it: unambiguous (`key_text`), so two groups never meet.
        let group = if self.group_columns.is_empty() {
            key_text(parts)
        } else {
            key_text(
                &self
                    .group_columns
                    .iter()
                    .map(|&i| parts[i])
                    .collect::<Vec<_>>(),
            )
        };
        let id = match self.group_ids.get(&group) {
            Some(&id) => id,
            None => {
                let id = match self.free_groups.pop() {
                    Some(id) => {
                        self.group_names[id as usize].clone_from(&group);
                        id
                    }
                    None => {
                        self.group_names.push(group.clone());
                        self.clocks.push(Clock::default());
                        self.members.push(0);
                        (self.group_names.len() - 1) as u32
                    }
                };
                self.group_ids.insert(group, id);
                id
            }
        };
        self.members[id as usize] += 1;
        id
    }

    /// Forgets the groups no key belongs to whose cooldown is over at `now`.
    fn forget_groups(&mut self, now: i64) {
        let span = self.plan.cooldown.map_or(0, |(span, _)| span);
        for id in 0..self.group_names.len() {
            if self.members[id] > 0
                || self.clocks[id]
                    .last_fired
                    .is_some_and(|t| now < t.saturating_add(span))
            {
                continue;
            }
            // a group forgotten before (its id free) has no entry of its own any more
            let live = self.group_ids.get(&self.group_names[id]) == Some(&(id as u32));
            if live {
                self.group_ids.remove(&self.group_names[id]);
                self.group_names[id] = String::new();
                self.clocks[id] = Clock::default();
                self.free_groups.push(id as u32);
            }
        }
    }

    /// Groups remembered now.
    fn groups(&self) -> usize {
        self.group_ids.len()
    }

    fn clock(&mut self, key: KeyId) -> &mut Clock {
        match self.plan.cooldown {
            Some((_, false)) => &mut self.shared,
            _ => &mut self.clocks[self.group_of[key as usize] as usize],
        }
    }

    fn cooldown_until(&self, key: KeyId, ts: i64) -> Option<i64> {
        let (span, per_group) = self.plan.cooldown?;
        let clock = if per_group {
            // an evicted key's slot is in no group, so under no cooldown
            self.clocks.get(self.group_of[key as usize] as usize)?
        } else {
            &self.shared
        };
        clock
            .last_fired
            .map(|t| t.saturating_add(span))
            .filter(|&end| ts < end)
    }
}

/// One alert's state as a checkpoint keeps it (see `super::checkpoint`).
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct AlertSnapshot {
    /// Per key, in the checkpoint's order of keys.
    pub(super) keys: Vec<KeyAlert>,
    /// Per group remembered: its name, when it last fired, what it suppressed since.
    pub(super) clocks: Vec<(String, Option<i64>, u64)>,
    /// The shared cooldown's clock.
    pub(super) shared: (Option<i64>, u64),
    pub(super) fired: u64,
    pub(super) suppressed: u64,
}

/// Every alert's state, for every key.
#[derive(Debug, Default)]
pub struct AlertBook {
    alerts: Vec<AlertState>,
}

impl AlertBook {
    /// Alert state for `plans`; `key_columns` are the input's key columns.
    pub fn new(plans: &[AlertPlan], key_columns: &[String]) -> Self {
        AlertBook {
            alerts: plans
                .iter()
                .map(|p| AlertState {
                    plan: p.clone(),
                    group_columns: p
                        .group_by
                        .iter()
                        .filter_map(|g| key_columns.iter().position(|k| k == g))
                        .collect(),
                    states: Vec::new(),
                    group_of: Vec::new(),
                    group_ids: HashMap::new(),
                    group_names: Vec::new(),
                    clocks: Vec::new(),
                    members: Vec::new(),
                    free_groups: Vec::new(),
                    shared: Clock::default(),
                    fired: 0,
                    suppressed: 0,
                })
                .collect(),
        }
    }

    /// Registers a new key (ids in order), given its parts, one per key column.
    pub fn add_key(&mut self, parts: &[&str]) {
        for alert in &mut self.alerts {
            alert.add_key(parts);
        }
    }

    /// Every alert's state, for the keys `ids` (in that order).
    pub(super) fn snapshot(&self, ids: &[KeyId]) -> Vec<AlertSnapshot> {
        self.alerts
            .iter()
            .map(|a| AlertSnapshot {
                keys: ids.iter().map(|&k| a.states[k as usize]).collect(),
                clocks: a
                    .group_ids
                    .iter()
                    .map(|(name, &id)| {
                        let c = a.clocks[id as usize];
                        (name.clone(), c.last_fired, c.suppressed_since)
                    })
                    .collect(),
                shared: (a.shared.last_fired, a.shared.suppressed_since),
                fired: a.fired,
                suppressed: a.suppressed,
            })
            .collect()
    }

    /// Puts back what [`snapshot`](Self::snapshot) took, the keys now at `ids` (added
    /// already, so their groups exist); groups whose keys are gone but whose cooldown ran
    /// come back without members.
    pub(super) fn restore(&mut self, snapshots: Vec<AlertSnapshot>, ids: &[KeyId]) {
        for (a, snap) in self.alerts.iter_mut().zip(snapshots) {
            for (&k, state) in ids.iter().zip(snap.keys) {
                a.states[k as usize] = state;
            }
            for (name, last_fired, suppressed_since) in snap.clocks {
                let id = match a.group_ids.get(&name) {
                    Some(&id) => id,
                    None => {
                        a.group_names.push(name.clone());
                        a.clocks.push(Clock::default());
                        a.members.push(0);
                        let id = (a.group_names.len() - 1) as u32;
                        a.group_ids.insert(name, id);
                        id
                    }
                };
                a.clocks[id as usize] = Clock {
                    last_fired,
                    suppressed_since,
                };
            }
            a.shared = Clock {
                last_fired: snap.shared.0,
                suppressed_since: snap.shared.1,
            };
            a.fired = snap.fired;
            a.suppressed = snap.suppressed;
        }
    }

    /// Gives an evicted key's slot to a new key.
    pub fn reset_key(&mut self, key: KeyId, parts: &[&str]) {
        for alert in &mut self.alerts {
            alert.reset_key(key, parts);
        }
    }

    /// Takes the keys whose `evict[id]` is set out of their groups, and forgets the
    /// groups left with no key whose cooldown is over at `now`.
    pub fn evict(&mut self, evict: &[bool], now: i64) {
        for alert in &mut self.alerts {
            for (key, _) in evict.iter().enumerate().filter(|(_, &e)| e) {
                alert.leave(key as KeyId);
            }
            alert.forget_groups(now);
        }
    }

    /// Cooldown groups alert `a` remembers now.
    pub fn groups(&self, a: usize) -> usize {
        self.alerts[a].groups()
    }

    /// Times alert `a` fired.
    pub fn fired(&self, a: usize) -> u64 {
        self.alerts[a].fired
    }

    /// Firings of alert `a` its cooldown suppressed.
    pub fn suppressed(&self, a: usize) -> u64 {
        self.alerts[a].suppressed
    }

    /// The state of alert `a` for `key`.
    pub fn state(&self, a: usize, key: KeyId) -> KeyAlert {
        self.alerts[a].states[key as usize]
    }

    /// When alert `a`'s cooldown for `key`'s group ends, if it is running at `ts`.
    pub fn cooldown_until(&self, a: usize, key: KeyId, ts: i64) -> Option<i64> {
        self.alerts[a].cooldown_until(key, ts)
    }

    /// Advances alert `a` for `key` with the ensemble's judgement of the event at `ts`.
    #[inline]
    pub fn step(&mut self, a: usize, key: KeyId, ts: i64, j: &Judgement, row: u64) -> Step {
        let alert = &mut self.alerts[a];
        let state = &mut alert.states[key as usize];
        let on = j.severity.is_some_and(|s| s >= alert.plan.level);
        if !on {
            *state = KeyAlert::default();
            return Step::Quiet;
        }
        let (since, events) = match state.holding {
            Some((since, events)) => (since, events + 1),
            None => (ts, 1),
        };
        state.holding = Some((since, events));
        let held = match alert.plan.hold {
            Hold::Events(n) => events >= n,
            Hold::Duration(d) => ts.saturating_sub(since) >= d,
        };
        if !held || state.active {
            return Step::Quiet;
        }
        state.active = true;
        if let Some(until) = alert.cooldown_until(key, ts) {
            alert.clock(key).suppressed_since += 1;
            alert.suppressed += 1;
            return Step::Suppressed { until };
        }
        let clock = alert.clock(key);
        clock.last_fired = Some(ts);
        let suppressed = std::mem::take(&mut clock.suppressed_since);
        alert.fired += 1;
        Step::Fired(Fired {
            index: a,
            alert: alert.plan.name.clone(),
            ts,
            key,
            group: alert.group_names[alert.group_of[key as usize] as usize].clone(),
            severity: j.severity.unwrap_or(Severity::Info),
            score: j.score,
            since,
            events,
            suppressed,
            row,
        })
    }

    /// Gives alert `a` (with no keys yet) the state of alert `o` of `old`, whose cooldown
    /// or hold identity it shares, so the same group-by: the groups and what `keep`s —
    /// how long the condition has held per key (`hold`), when each group last fired, what
    /// was suppressed and the counters (`cooldown`); the rest starts fresh. Both books
    /// must hold the same keys in the same order. Moves rather than copies: `old` is on
    /// its way out.
    pub fn take_from(
        &mut self,
        a: usize,
        old: &mut AlertBook,
        o: usize,
        hold: bool,
        cooldown: bool,
    ) {
        std::mem::swap(&mut self.alerts[a], &mut old.alerts[o]);
        // Each keeps its own plan.
        std::mem::swap(&mut self.alerts[a].plan, &mut old.alerts[o].plan);
        let state = &mut self.alerts[a];
        if !hold {
            state.states.fill(KeyAlert::default());
        }
        if !cooldown {
            state.clocks.fill(Clock::default());
            state.shared = Clock::default();
            state.fired = 0;
            state.suppressed = 0;
        }
    }

    /// Registers keys for alert `a` alone (a new alert joining a running book).
    pub fn add_keys_to(&mut self, a: usize, keys: &super::KeyTable) {
        let alert = &mut self.alerts[a];
        for k in 0..keys.len() {
            let parts: Vec<&str> = keys.parts(k as KeyId).iter().map(String::as_str).collect();
            alert.add_key(&parts);
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
        assert_eq!(book.fired(0), 2);
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
        assert_eq!((book.fired(0), book.suppressed(0)), (2, 2));
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
    fn a_group_without_keys_is_forgotten_once_its_cooldown_is_over() {
        let keys = ["symbol".to_owned()];
        let mut book = AlertBook::new(&[plan(Hold::Events(1), Some((5 * MIN, true)))], &keys);
        book.add_key(&["BTC"]);
        book.add_key(&["ETH"]);
        assert!(matches!(book.step(0, 0, 0, &j(M), 1), Step::Fired(_)));
        // both keys evicted at minute 1: ETH's group goes, BTC's cooldown still runs
        book.evict(&[true, true], MIN);
        assert_eq!(book.groups(0), 1);
        assert_eq!(book.cooldown_until(0, 0, MIN), None, "an evicted slot");
        // BTC comes back into slot 1 within its cooldown: still suppressed
        book.reset_key(1, &["BTC"]);
        book.step(0, 1, 2 * MIN, &j(None), 2);
        assert!(matches!(
            book.step(0, 1, 3 * MIN, &j(M), 3),
            Step::Suppressed { .. }
        ));
        // evicted again after its cooldown: forgotten, and its id serves the next group
        book.evict(&[false, true], 6 * MIN);
        assert_eq!(book.groups(0), 0);
        book.reset_key(1, &["SOL"]);
        assert_eq!(book.groups(0), 1);
        assert_eq!(book.alerts[0].group_names.len(), 2);
        assert!(matches!(book.step(0, 1, 7 * MIN, &j(M), 4), Step::Fired(f) if f.group == "SOL"));
        assert_eq!(book.suppressed(0), 1);
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
