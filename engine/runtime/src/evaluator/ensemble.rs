//! An ensemble's judgement of one event: the vote, the ensemble's own normalised score,
//! and the severity arm that matches (see `docs/decisions/0008-ensembles-and-alerts.md`).
//!
//! The ensemble's score keeps the detectors' contract (0.5 exactly at the vote's
//! threshold, anomaly ⇔ score ≥ 0.5), so an ensemble can vote in another one:
//! - `at_least(k)` (and `any` = 1, `all` = n, `majority` = ⌊n/2⌋+1): the k-th largest
//!   member score, undetermined members counting as 0;
//! - `weighted(..) >= t`: the weighted share W of members saying anomaly, mapped
//!   piecewise-linearly so that 0 → 0, t → 0.5, 1 → 1;
//! - `mean|max|median(..) >= t`: that aggregate A of the determined members' scores,
//!   mapped the same way.
//!
//! An ensemble is undetermined only when every member is.

use adr_sdk::Verdict;

use crate::rules::ast::{Cmp, Measure};
use crate::rules::plan::{CondPlan, EnsemblePlan, VotePlan};
use crate::rules::severity::Severity;

/// What an ensemble says about one event.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Judgement {
    /// The ensemble's normalised score, `NaN` when undetermined.
    pub score: f64,
    /// Its verdict.
    pub verdict: Verdict,
    /// How many members say anomaly.
    pub votes: u32,
    /// The severity of an anomaly; `None` otherwise.
    pub severity: Option<Severity>,
    /// The index of the arm that gave it; `None` for the default (no arm matched).
    pub arm: Option<u8>,
}

impl Judgement {
    /// The judgement when no member can judge.
    pub const UNDETERMINED: Judgement = Judgement {
        score: f64::NAN,
        verdict: Verdict::Undetermined,
        votes: 0,
        severity: None,
        arm: None,
    };
}

/// The severity of an anomaly that no arm matches (and of every anomaly of an ensemble
/// without a severity block).
pub const DEFAULT_SEVERITY: Severity = Severity::Medium;

/// Judges one event from the members' `(normalised score, verdict)`, in member order.
/// `scratch` is reused between calls.
pub fn judge(plan: &EnsemblePlan, members: &[(f64, Verdict)], scratch: &mut Vec<f64>) -> Judgement {
    let mut votes = 0u32;
    let mut determined = 0usize;
    for &(_, v) in members {
        match v {
            Verdict::Anomaly => {
                votes += 1;
                determined += 1;
            }
            Verdict::Normal => determined += 1,
            Verdict::Undetermined => {}
        }
    }
    if determined == 0 {
        return Judgement::UNDETERMINED;
    }
    let (score, anomaly) = match &plan.vote {
        VotePlan::AtLeast(k) => {
            scratch.clear();
            scratch.extend(
                members
                    .iter()
                    .map(|&(n, v)| if v == Verdict::Undetermined { 0.0 } else { n }),
            );
            let k = (*k).clamp(1, scratch.len());
            let (_, kth, _) = scratch.select_nth_unstable_by(k - 1, |a, b| b.total_cmp(a));
            // The k-th largest score is ≥ 0.5 exactly when k members say anomaly; the
            // verdict is taken from the count so rounding cannot split the two.
            (*kth, votes as usize >= k)
        }
        VotePlan::Weighted(weights, t) => {
            let total: f64 = weights.iter().sum();
            let share: f64 = members
                .iter()
                .zip(weights)
                .filter(|((_, v), _)| *v == Verdict::Anomaly)
                .map(|(_, w)| w)
                .sum::<f64>()
                / total;
            let share = if total > 0.0 { share } else { 0.0 };
            (through(share, *t), share >= *t)
        }
        VotePlan::Mean(t) | VotePlan::Max(t) | VotePlan::Median(t) => {
            scratch.clear();
            scratch.extend(
                members
                    .iter()
                    .filter(|(_, v)| *v != Verdict::Undetermined)
                    .map(|&(n, _)| n),
            );
            let a = match &plan.vote {
                VotePlan::Mean(_) => scratch.iter().sum::<f64>() / scratch.len() as f64,
                VotePlan::Max(_) => scratch.iter().copied().fold(f64::NEG_INFINITY, f64::max),
                _ => median(scratch),
            };
            (through(a, *t), a >= *t)
        }
    };
    let verdict = if anomaly {
        Verdict::Anomaly
    } else {
        Verdict::Normal
    };
    let score = match verdict {
        Verdict::Anomaly => score.max(0.5),
        _ => score.min(BELOW_HALF),
    };
    let mut judgement = Judgement {
        score,
        verdict,
        votes,
        severity: None,
        arm: None,
    };
    if anomaly {
        let arm = plan.arms.iter().position(|arm| {
            arm.cond
                .as_ref()
                .is_none_or(|c| holds(c, &judgement, members))
        });
        judgement.severity = Some(arm.map_or(DEFAULT_SEVERITY, |i| plan.arms[i].level));
        judgement.arm = arm.map(|i| i as u8);
    }
    judgement
}

/// The largest float below 0.5: a normal verdict's score stays under the threshold.
const BELOW_HALF: f64 = f64::from_bits(0.5f64.to_bits() - 1);

/// Maps x ∈ [0, 1] piecewise-linearly through (0, 0), (t, 0.5), (1, 1).
fn through(x: f64, t: f64) -> f64 {
    if x < t {
        0.5 * x / t
    } else if t >= 1.0 {
        1.0
    } else {
        0.5 + 0.5 * (x - t) / (1.0 - t)
    }
}

fn median(values: &mut [f64]) -> f64 {
    let n = values.len();
    values.sort_unstable_by(f64::total_cmp);
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

/// Whether a severity condition holds for an anomaly.
pub fn holds(cond: &CondPlan, j: &Judgement, members: &[(f64, Verdict)]) -> bool {
    match cond {
        CondPlan::Or(cs) => cs.iter().any(|c| holds(c, j, members)),
        CondPlan::And(cs) => cs.iter().all(|c| holds(c, j, members)),
        CondPlan::Not(c) => !holds(c, j, members),
        CondPlan::Member(i) => members[*i].1 == Verdict::Anomaly,
        CondPlan::Compare(measure, cmp, v) => {
            let x = match measure {
                Measure::Score => j.score,
                Measure::Votes => f64::from(j.votes),
            };
            match cmp {
                Cmp::Ge => x >= *v,
                Cmp::Le => x <= *v,
                Cmp::Gt => x > *v,
                Cmp::Lt => x < *v,
                Cmp::Eq => x == *v,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::plan::ArmPlan;
    use Verdict::{Anomaly as A, Normal as N, Undetermined as U};

    fn plan(vote: VotePlan, arms: Vec<ArmPlan>) -> EnsemblePlan {
        EnsemblePlan {
            name: "e".into(),
            members: Vec::new(),
            member_names: Vec::new(),
            vote,
            vote_text: String::new(),
            arms,
        }
    }

    fn run(vote: VotePlan, members: &[(f64, Verdict)]) -> Judgement {
        judge(&plan(vote, Vec::new()), members, &mut Vec::new())
    }

    #[test]
    fn count_votes_take_the_kth_largest_score() {
        let m = [(0.9, A), (0.6, A), (0.2, N)];
        let any = run(VotePlan::AtLeast(1), &m);
        assert_eq!((any.score, any.verdict, any.votes), (0.9, A, 2));
        let two = run(VotePlan::AtLeast(2), &m);
        assert_eq!((two.score, two.verdict), (0.6, A));
        let all = run(VotePlan::AtLeast(3), &m);
        assert_eq!((all.score, all.verdict), (0.2, N));
    }

    #[test]
    fn undetermined_members_count_as_zero_and_all_undetermined_is_undetermined() {
        let m = [(0.7, A), (f64::NAN, U), (0.1, N)];
        let two = run(VotePlan::AtLeast(2), &m);
        assert_eq!((two.score, two.verdict), (0.1, N));
        let mean = run(VotePlan::Mean(0.5), &m);
        assert_eq!(mean.verdict, N, "mean of 0.7 and 0.1 is 0.4");
        let none = run(VotePlan::AtLeast(1), &[(f64::NAN, U), (f64::NAN, U)]);
        assert!(none.score.is_nan());
        assert_eq!((none.verdict, none.votes, none.severity), (U, 0, None));
    }

    #[test]
    fn weighted_and_score_votes_put_the_threshold_at_one_half() {
        let m = [(0.9, A), (0.3, N), (0.4, N)];
        let w = run(VotePlan::Weighted(vec![2.0, 1.0, 1.0], 0.5), &m);
        assert_eq!(
            (w.score, w.verdict),
            (0.5, A),
            "share 2/4 is exactly the threshold"
        );
        let w = run(VotePlan::Weighted(vec![1.0, 1.0, 2.0], 0.5), &m);
        assert_eq!(
            (w.score, w.verdict),
            (0.25, N),
            "share 1/4 is half way to 0.5"
        );
        let max = run(VotePlan::Max(0.8), &m);
        assert!(
            (max.score - 0.75).abs() < 1e-12 && max.verdict == A,
            "{max:?}"
        );
        let median = run(VotePlan::Median(0.5), &m);
        assert_eq!(median.verdict, N);
        assert!((median.score - 0.4).abs() < 1e-12);
    }

    #[test]
    fn the_first_matching_arm_gives_the_severity() {
        let arms = vec![
            ArmPlan {
                level: Severity::Critical,
                cond: Some(CondPlan::And(vec![
                    CondPlan::Member(0),
                    CondPlan::Member(1),
                ])),
                text: String::new(),
            },
            ArmPlan {
                level: Severity::High,
                cond: Some(CondPlan::Compare(Measure::Score, Cmp::Ge, 0.8)),
                text: String::new(),
            },
            ArmPlan {
                level: Severity::Low,
                cond: Some(CondPlan::Compare(Measure::Votes, Cmp::Eq, 1.0)),
                text: String::new(),
            },
        ];
        let p = plan(VotePlan::AtLeast(1), arms);
        let j = |m: &[(f64, Verdict)]| judge(&p, m, &mut Vec::new());
        assert_eq!(j(&[(0.6, A), (0.7, A)]).severity, Some(Severity::Critical));
        assert_eq!(j(&[(0.9, A), (0.1, N)]).severity, Some(Severity::High));
        let low = j(&[(0.6, A), (0.1, N)]);
        assert_eq!((low.severity, low.arm), (Some(Severity::Low), Some(2)));
        assert_eq!(
            j(&[(0.1, N), (0.2, N)]).severity,
            None,
            "no anomaly, no severity"
        );
    }

    #[test]
    fn without_arms_an_anomaly_gets_the_default() {
        let j = run(VotePlan::AtLeast(1), &[(0.6, A)]);
        assert_eq!((j.severity, j.arm), (Some(DEFAULT_SEVERITY), None));
    }
}
