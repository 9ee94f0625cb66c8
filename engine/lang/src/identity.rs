//! Definition identities: when a reloaded rule set may keep a running definition's state.
//!
//! A definition's identity is its normalised text: what it computes, with every name it
//! reads replaced by that name's own definition, and nothing else. So an identity is
//! unchanged by reformatting, comments, reordering, renaming a feature, a constant whose
//! value stays the same, or edits elsewhere in the file; and it changes with anything that
//! changes the numbers: a parameter, an input (or the definition of a feature it reads),
//! a training clause, a vote, a severity arm.
//!
//! - feature: its expression, fields as `field(name)`, features inlined;
//! - detector: `family.detector`, its parameters sorted by name, its inputs' identities,
//!   its training clauses;
//! - ensemble (no state of its own, but alerts depend on it): its vote and severity arms,
//!   its members' identities;
//! - alert: two parts. Its *hold* (how long the condition has held, per key) is kept when
//!   the alert's level, hold and group-by and its ensemble's identity are unchanged; its
//!   *cooldown* (when each group last fired, what was suppressed, the counters) is kept
//!   when its name, cooldown and group-by are, so tuning a threshold does not re-fire
//!   every alert that is quiet in its cooldown.
//!
//! The key columns are not part of any identity: a reload may not change them (state is
//! kept per key), see `adr_engine::reload`.

use std::fmt::Write;

use super::features::Node;
use super::plan::{AlertPlan, CondPlan, Member, Plan, VotePlan};

/// The identities of a plan's definitions, index for index.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Identities {
    /// One per [`Plan::features`].
    pub features: Vec<String>,
    /// One per [`Plan::detectors`].
    pub detectors: Vec<String>,
    /// One per [`Plan::ensembles`].
    pub ensembles: Vec<String>,
    /// One per [`Plan::alerts`]: what its hold state depends on.
    pub alert_holds: Vec<String>,
    /// One per [`Plan::alerts`]: what its cooldown state depends on.
    pub alert_cooldowns: Vec<String>,
}

impl Identities {
    /// The identities of `plan`'s definitions.
    pub fn of(plan: &Plan) -> Identities {
        let n_fields = plan.input.fields.len();
        let mut slots: Vec<String> = plan
            .input
            .fields
            .iter()
            .map(|f| format!("field({f})"))
            .collect();
        let mut features = Vec::with_capacity(plan.features.len());
        for f in &plan.features {
            let mut text = String::new();
            node_text(&f.node, &slots, &mut text);
            debug_assert_eq!(f.slot, n_fields + features.len());
            slots.push(format!("({text})"));
            features.push(text);
        }
        let detectors: Vec<String> = plan
            .detectors
            .iter()
            .map(|d| {
                let mut params: Vec<String> = d
                    .params
                    .iter()
                    .map(|(name, value)| format!("{name}={value:?}"))
                    .collect();
                params.sort();
                let inputs: Vec<&str> = d.inputs.iter().map(|&s| slots[s].as_str()).collect();
                let threshold = d.threshold.as_ref().map_or(String::new(), |t| {
                    let mut params: Vec<String> =
                        t.params.iter().map(|(n, v)| format!("{n}={v:?}")).collect();
                    params.sort();
                    format!(" threshold {}({})", t.qualified, params.join(", "))
                });
                format!(
                    "{}({}) on [{}] {:?}{threshold}",
                    d.qualified,
                    params.join(", "),
                    inputs.join(", "),
                    d.training
                )
            })
            .collect();
        let mut ensembles: Vec<String> = Vec::with_capacity(plan.ensembles.len());
        for e in &plan.ensembles {
            let members: Vec<&str> = e
                .members
                .iter()
                .map(|m| match *m {
                    Member::Detector(d) => detectors[d].as_str(),
                    Member::Ensemble(x) => ensembles[x].as_str(),
                })
                .collect();
            let vote = match &e.vote {
                VotePlan::Weighted(weights, t) => format!("weighted({weights:?}) >= {t:?}"),
                other => format!("{other:?}"),
            };
            let arms: Vec<String> = e
                .arms
                .iter()
                .map(|a| {
                    let mut text = format!("{} when ", a.level);
                    match &a.cond {
                        Some(c) => cond_text(c, &mut text),
                        None => text.push_str("otherwise"),
                    }
                    text
                })
                .collect();
            ensembles.push(format!(
                "{vote} of [{}] {{{}}}",
                members.join("; "),
                arms.join("; ")
            ));
        }
        let alert_holds = plan
            .alerts
            .iter()
            .map(|a| {
                format!(
                    "{} {:?} by {:?} on {}",
                    a.level, a.hold, a.group_by, ensembles[a.ensemble]
                )
            })
            .collect();
        let alert_cooldowns = plan.alerts.iter().map(cooldown_text).collect();
        Identities {
            features,
            detectors,
            ensembles,
            alert_holds,
            alert_cooldowns,
        }
    }
}

fn cooldown_text(a: &AlertPlan) -> String {
    format!("{} cooldown {:?} by {:?}", a.name, a.cooldown, a.group_by)
}

fn node_text(node: &Node, slots: &[String], out: &mut String) {
    match node {
        // `{:?}` of an f64 round-trips: two constants print alike only when equal.
        Node::Const(c) => {
            let _ = write!(out, "{c:?}");
        }
        Node::Slot(i) => out.push_str(&slots[*i]),
        Node::Neg(e) => {
            out.push_str("-(");
            node_text(e, slots, out);
            out.push(')');
        }
        Node::Bin(op, a, b) => {
            out.push('(');
            node_text(a, slots, out);
            let _ = write!(out, " {op:?} ");
            node_text(b, slots, out);
            out.push(')');
        }
        Node::Abs(e) => {
            out.push_str("abs(");
            node_text(e, slots, out);
            out.push(')');
        }
        Node::Clip(e, lo, hi) => {
            out.push_str("clip(");
            node_text(e, slots, out);
            let _ = write!(out, ", {lo:?}, {hi:?})");
        }
        // The state index is where the state lives, not what it is: left out.
        Node::Stateful(_, op, args) => {
            let _ = write!(out, "{op:?}(");
            for (i, a) in args.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                node_text(a, slots, out);
            }
            out.push(')');
        }
    }
}

fn cond_text(cond: &CondPlan, out: &mut String) {
    match cond {
        CondPlan::Or(cs) | CondPlan::And(cs) => {
            let word = if matches!(cond, CondPlan::Or(_)) {
                " or "
            } else {
                " and "
            };
            out.push('(');
            for (i, c) in cs.iter().enumerate() {
                if i > 0 {
                    out.push_str(word);
                }
                cond_text(c, out);
            }
            out.push(')');
        }
        CondPlan::Not(c) => {
            out.push_str("not ");
            cond_text(c, out);
        }
        CondPlan::Member(i) => {
            let _ = write!(out, "member#{i}");
        }
        CondPlan::Compare(measure, cmp, x) => {
            let _ = write!(out, "{measure:?} {cmp:?} {x:?}");
        }
    }
}

/// The range of per-key state slots `node` uses (empty for a stateless expression).
pub fn state_range(node: &Node) -> std::ops::Range<usize> {
    fn walk(node: &Node, lo: &mut usize, hi: &mut usize) {
        match node {
            Node::Const(_) | Node::Slot(_) => {}
            Node::Neg(e) | Node::Abs(e) | Node::Clip(e, _, _) => walk(e, lo, hi),
            Node::Bin(_, a, b) => {
                walk(a, lo, hi);
                walk(b, lo, hi);
            }
            Node::Stateful(i, _, args) => {
                *lo = (*lo).min(*i);
                *hi = (*hi).max(*i + 1);
                for a in args {
                    walk(a, lo, hi);
                }
            }
        }
    }
    let (mut lo, mut hi) = (usize::MAX, 0);
    walk(node, &mut lo, &mut hi);
    if hi == 0 {
        0..0
    } else {
        lo..hi
    }
}
