//! Running a rule file over one labelled series held in memory: a fresh evaluator per
//! series (detectors start cold, as the benchmarks' rules require), one key, rows in file
//! order, and one ensemble's score and verdict per row.

use std::sync::Arc;

use adr_sdk::Verdict;

use adr_engine::evaluator::{Evaluator, Outcome, Rows};
use adr_engine::io::UnsortedPolicy;
use adr_engine::plugins::Registry;
use adr_engine::rules::plan::Plan;

/// One series: event times and named value columns of the same length.
#[derive(Debug, Clone, Default)]
pub struct Series {
    /// Event times, ns since the epoch (repeats and steps back are allowed).
    pub timestamps: Vec<i64>,
    /// `(name, values)`; a missing value is NaN.
    pub columns: Vec<(String, Vec<f64>)>,
}

/// One ensemble's judgement of each row.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SeriesScores {
    /// The ensemble's normalised score; NaN where undetermined.
    pub scores: Vec<f64>,
    /// Its verdicts.
    pub verdicts: Vec<Verdict>,
}

/// Why a series could not be scored.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SeriesError {
    /// The rules read a field the series does not have.
    #[error("the rules read field `{field}`, but the series has only {have}")]
    MissingField {
        /// The field.
        field: String,
        /// The columns it has.
        have: String,
    },
    /// The rules have no such ensemble.
    #[error("the rules have no ensemble `{0}`")]
    NoEnsemble(String),
    /// The rules have no ensemble at all.
    #[error("the rules define no ensemble to score with")]
    NoEnsembles,
    /// Evaluation failed.
    #[error(transparent)]
    Eval(#[from] adr_engine::evaluator::EvalError),
}

/// The index of the ensemble to score with: `name`, else the plan's last ensemble (the
/// top of a file that builds ensembles from ensembles).
///
/// # Errors
///
/// No such ensemble, or none at all.
pub fn pick_ensemble(plan: &Plan, name: Option<&str>) -> Result<usize, SeriesError> {
    match name {
        Some(name) => plan
            .ensemble(name)
            .ok_or_else(|| SeriesError::NoEnsemble(name.to_owned())),
        None => plan
            .ensembles
            .len()
            .checked_sub(1)
            .ok_or(SeriesError::NoEnsembles),
    }
}

/// Rows handed to the evaluator at a time.
const CHUNK: usize = 8192;

/// Scores `series` with ensemble `ensemble` of `plan`, from a cold start.
///
/// # Errors
///
/// A field the series lacks, or an evaluation error (a detector refusing its input).
pub fn score_series(
    plan: &Plan,
    registry: &Arc<Registry>,
    ensemble: usize,
    series: &Series,
) -> Result<SeriesScores, SeriesError> {
    let columns = plan
        .input
        .fields
        .iter()
        .map(|field| {
            series
                .columns
                .iter()
                .find(|(name, _)| name == field)
                .map(|(_, values)| values.as_slice())
                .ok_or_else(|| SeriesError::MissingField {
                    field: field.clone(),
                    have: series
                        .columns
                        .iter()
                        .map(|(n, _)| format!("`{n}`"))
                        .collect::<Vec<_>>()
                        .join(", "),
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut evaluator = Evaluator::new(plan.clone(), Arc::clone(registry))?;
    // Benchmarks repeat timestamps (NAB's clock changes); rows count by position.
    evaluator.set_unsorted(UnsortedPolicy::Allow);
    let key = evaluator.key(plan.input.keys.iter().map(|_| &b""[..]))?;
    let n = series.timestamps.len();
    let mut out = SeriesScores {
        scores: Vec::with_capacity(n),
        verdicts: Vec::with_capacity(n),
    };
    let mut outcome = Outcome::default();
    let keys = vec![key; CHUNK.min(n)];
    for start in (0..n).step_by(CHUNK) {
        let end = (start + CHUNK).min(n);
        let fields: Vec<&[f64]> = columns.iter().map(|c| &c[start..end]).collect();
        let rows = Rows {
            timestamps: &series.timestamps[start..end],
            keys: &keys[..end - start],
            fields: &fields,
            first_row: start as u64 + 1,
        };
        evaluator.process(&rows, &mut outcome)?;
        for j in &outcome.ensembles[ensemble] {
            out.scores.push(j.score);
            out.verdicts.push(j.verdict);
        }
    }
    Ok(out)
}
