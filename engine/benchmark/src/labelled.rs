//! A rule file's judgement of labelled series, scored three ways: point metrics (each row
//! a sample), range metrics (Tatbul et al. 2018, each labelled window and each run of
//! alarms a range) and NAB's score (its three profiles).
//!
//! Rows the rules leave undetermined (a warm-up) count as normal for every figure made
//! from verdicts (precision, recall, F1, ranges, NAB): a detector that will not judge a
//! row gets no credit for it, and none is dropped. The ranking figures (ROC-AUC, PR-AUC)
//! are computed over the determined rows only, with the count of undetermined rows beside
//! them: ranking those rows below every score would reward a long warm-up for placing
//! labels it never saw (on Gaussian noise with random windows, `zscore(window = 500)`
//! reached a ROC-AUC of 0.62, and a series with nothing flagged 0.55).

use super::metrics::{average_precision, roc_auc};
use super::nab::{self, Corpus, Profile, ProfileResult};
use super::ranges::{runs, RangeOptions, RangeTally};

/// The ensemble's judgement of one series.
#[derive(Debug, Clone, Default)]
pub struct Judged {
    /// The normalised score per row; NaN where undetermined.
    pub scores: Vec<f64>,
    /// Whether each row's verdict is an anomaly.
    pub anomalous: Vec<bool>,
}

/// Point metrics: each row a sample, its label whether it lies in a window.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct PointMetrics {
    /// Rows.
    pub rows: usize,
    /// Rows in a window.
    pub positives: usize,
    /// Rows the verdict calls anomalous.
    pub flagged: usize,
    /// Flagged rows in a window.
    pub true_positives: usize,
    /// Of the flagged rows, the share in a window (0 when none is flagged, as
    /// scikit-learn).
    pub precision: f64,
    /// Of the rows in windows, the share flagged; `None` without one.
    pub recall: Option<f64>,
    /// Harmonic mean of both.
    pub f1: Option<f64>,
    /// Rows without a score (undetermined), left out of the two ranking figures.
    pub undetermined: usize,
    /// Area under the ROC curve of the scores of the determined rows; `None` with one
    /// class only among them.
    pub roc_auc: Option<f64>,
    /// Average precision of the scores of the determined rows (the PR-AUC scikit-learn
    /// reports); `None` without a positive among them.
    pub pr_auc: Option<f64>,
}

impl PointMetrics {
    fn of(scores: &[f64], anomalous: &[bool], labels: &[bool]) -> PointMetrics {
        let positives = labels.iter().filter(|&&l| l).count();
        let flagged = anomalous.iter().filter(|&&a| a).count();
        let true_positives = anomalous
            .iter()
            .zip(labels)
            .filter(|(&a, &l)| a && l)
            .count();
        let precision = if flagged == 0 {
            0.0
        } else {
            true_positives as f64 / flagged as f64
        };
        let recall = (positives > 0).then(|| true_positives as f64 / positives as f64);
        let f1 = recall.map(|r| {
            if precision + r > 0.0 {
                2.0 * precision * r / (precision + r)
            } else {
                0.0
            }
        });
        let (ranked, ranked_labels): (Vec<f64>, Vec<bool>) = scores
            .iter()
            .zip(labels)
            .filter(|(s, _)| !s.is_nan())
            .map(|(&s, &l)| (s, l))
            .unzip();
        PointMetrics {
            rows: labels.len(),
            positives,
            flagged,
            true_positives,
            precision,
            recall,
            f1,
            undetermined: scores.len() - ranked.len(),
            roc_auc: roc_auc(&ranked, &ranked_labels),
            pr_auc: average_precision(&ranked, &ranked_labels),
        }
    }
}

/// Range metrics of one series or of a corpus (every range weighing the same).
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct RangeMetrics {
    /// Range precision.
    pub precision: f64,
    /// Range recall; `None` without a labelled window.
    pub recall: Option<f64>,
    /// Their harmonic mean.
    pub f1: Option<f64>,
    /// Labelled windows.
    pub real_ranges: usize,
    /// Runs of anomalous verdicts.
    pub predicted_ranges: usize,
}

impl From<RangeTally> for RangeMetrics {
    fn from(t: RangeTally) -> RangeMetrics {
        RangeMetrics {
            precision: t.precision(),
            recall: t.recall(),
            f1: t.f1(),
            real_ranges: t.real,
            predicted_ranges: t.predicted,
        }
    }
}

/// One series' figures.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FileReport {
    /// Its name in the labels.
    pub name: String,
    /// Point metrics.
    pub point: PointMetrics,
    /// Range metrics.
    pub range: RangeMetrics,
}

/// The corpus' figures: point metrics over all rows pooled, range metrics over all
/// ranges pooled, NAB's score per profile, and each series'.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Report {
    /// Pooled point metrics.
    pub point: PointMetrics,
    /// Pooled range metrics.
    pub range: RangeMetrics,
    /// The range metric's choices.
    pub range_options: RangeOptions,
    /// NAB's score per profile.
    pub nab: Vec<ProfileResult>,
    /// Per series, in the labels' order.
    pub files: Vec<FileReport>,
}

/// Scores `judged` (one per file of `corpus`, in order).
///
/// # Panics
///
/// When `judged` and the corpus differ in files or rows (a caller's bug).
pub fn report(
    corpus: &Corpus,
    judged: &[Judged],
    options: &RangeOptions,
    profiles: &[Profile],
    threshold: Option<f64>,
) -> Report {
    assert_eq!(corpus.files.len(), judged.len(), "one judgement per file");
    let (mut all_scores, mut all_anomalous, mut all_labels) = (Vec::new(), Vec::new(), Vec::new());
    let mut pooled = RangeTally::default();
    let mut files = Vec::with_capacity(judged.len());
    for (file, j) in corpus.files.iter().zip(judged) {
        assert_eq!(
            file.len(),
            j.scores.len(),
            "{}: one score per row",
            file.name
        );
        let labels = file.labels();
        let tally = RangeTally::of(&file.spans, &runs(&j.anomalous), options);
        pooled.add(&tally);
        files.push(FileReport {
            name: file.name.clone(),
            point: PointMetrics::of(&j.scores, &j.anomalous, &labels),
            range: tally.into(),
        });
        all_scores.extend_from_slice(&j.scores);
        all_anomalous.extend_from_slice(&j.anomalous);
        all_labels.extend(labels);
    }
    let nab_scores: Vec<Vec<f64>> = judged
        .iter()
        .map(|j| {
            j.scores
                .iter()
                .map(|&s| if s.is_nan() { 0.0 } else { s })
                .collect()
        })
        .collect();
    Report {
        point: PointMetrics::of(&all_scores, &all_anomalous, &all_labels),
        range: pooled.into(),
        range_options: *options,
        nab: nab::evaluate(corpus, &nab_scores, profiles, threshold),
        files,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranking_figures_leave_undetermined_rows_out() {
        // A warm-up of four rows, two of them labelled: ranked below every score, they
        // would move the ROC-AUC from 0.75 to 0.5625 (scikit-learn's, on -inf for them):
        // a figure about where the warm-up falls, not about the scores.
        let nan = f64::NAN;
        let scores = [nan, nan, nan, nan, 0.1, 0.4, 0.35, 0.8];
        let labels = [true, false, true, false, false, false, true, true];
        let m = PointMetrics::of(&scores, &[false; 8], &labels);
        assert_eq!(m.undetermined, 4);
        assert_eq!(m.roc_auc, Some(0.75));
        assert_eq!(m.pr_auc, average_precision(&scores[4..], &labels[4..]));
        assert_eq!((m.rows, m.positives), (8, 4), "the counts keep every row");
        let none = PointMetrics::of(&[nan; 3], &[false; 3], &[true, false, true]);
        assert_eq!(
            (none.roc_auc, none.pr_auc, none.undetermined),
            (None, None, 3)
        );
    }
}
