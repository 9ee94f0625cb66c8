//! Range-based precision and recall (Tatbul, Lee, Zdonik, Alam & Gottschlich, NeurIPS
//! 2018): anomalies are ranges of rows, and a detection is rewarded for existing, for
//! how much of a range it covers, where, and for not splitting it.
//!
//! For real ranges R and predicted ranges P (maximal runs of anomalous rows):
//!
//! - Recall = mean over R of α·Existence(Rᵢ) + (1 − α)·Overlap(Rᵢ, P)
//! - Precision = mean over P of Overlap(Pⱼ, R) (no existence term, as the paper says)
//! - Overlap(A, B) = γ(A, B) · Σ_{b ∈ B} ω(A, A ∩ b), with ω the share of A's positional
//!   weight δ that the intersection holds, and γ = 1 when A meets at most one b, else 1
//!   (`one`) or 1/(ranges met) (`reciprocal`).
//!
//! With α = 0 the recall is what the `prts` package computes; `tests/tests/range_metrics.rs`
//! checks both against it.

/// Where in a range a detection is worth most (δ).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Bias {
    /// Every row alike.
    #[default]
    Flat,
    /// The first rows most (early detection).
    Front,
    /// The middle most.
    Middle,
    /// The last rows most.
    Back,
}

impl Bias {
    /// The weight of row `i` (1-based) of a range of `len` rows.
    fn weight(self, i: usize, len: usize) -> f64 {
        match self {
            Bias::Flat => 1.0,
            Bias::Front => (len - i + 1) as f64,
            Bias::Back => i as f64,
            Bias::Middle if 2 * i <= len => i as f64,
            Bias::Middle => (len - i + 1) as f64,
        }
    }
}

/// What a range that meets several others is worth (γ).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Cardinality {
    /// No penalty.
    #[default]
    One,
    /// Divided by the number of ranges it meets.
    Reciprocal,
}

/// The metric's choices.
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize)]
pub struct RangeOptions {
    /// Weight of existence against overlap in the recall, in [0, 1].
    pub alpha: f64,
    /// Positional bias.
    pub bias: Bias,
    /// Cardinality penalty.
    pub cardinality: Cardinality,
}

/// An inclusive range of rows.
pub type Range = (usize, usize);

/// The maximal runs of `true` in `flags`.
pub fn runs(flags: &[bool]) -> Vec<Range> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, &f) in flags.iter().enumerate() {
        match (f, start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                out.push((s, i - 1));
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        out.push((s, flags.len() - 1));
    }
    out
}

/// ω: the share of `range`'s positional weight inside `part` (a sub-range of it).
fn omega(range: Range, part: Range, bias: Bias) -> f64 {
    let len = range.1 - range.0 + 1;
    if bias == Bias::Flat {
        return (part.1 - part.0 + 1) as f64 / len as f64;
    }
    let (mut inside, mut total) = (0.0, 0.0);
    for i in 1..=len {
        let w = bias.weight(i, len);
        total += w;
        let row = range.0 + i - 1;
        if (part.0..=part.1).contains(&row) {
            inside += w;
        }
    }
    if total > 0.0 {
        inside / total
    } else {
        0.0
    }
}

/// (existence, overlap reward) of `range` against the sorted, disjoint `others`.
fn reward(range: Range, others: &[Range], options: &RangeOptions) -> (f64, f64) {
    let first = others.partition_point(|o| o.1 < range.0);
    let (mut met, mut sum) = (0usize, 0.0);
    for o in others[first..].iter().take_while(|o| o.0 <= range.1) {
        met += 1;
        sum += omega(range, (o.0.max(range.0), o.1.min(range.1)), options.bias);
    }
    let gamma = match options.cardinality {
        Cardinality::Reciprocal if met > 1 => 1.0 / met as f64,
        _ => 1.0,
    };
    (f64::from(u8::from(met > 0)), gamma * sum)
}

/// Sums of the per-range precision and recall terms and the range counts, so series can
/// be pooled (every range weighs the same) or reported one by one.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct RangeTally {
    /// Σ over real ranges of their recall term.
    pub recall_sum: f64,
    /// Real ranges.
    pub real: usize,
    /// Σ over predicted ranges of their precision term.
    pub precision_sum: f64,
    /// Predicted ranges.
    pub predicted: usize,
}

impl RangeTally {
    /// The terms of one series: `real` and `predicted` sorted and disjoint.
    pub fn of(real: &[Range], predicted: &[Range], options: &RangeOptions) -> RangeTally {
        let recall_sum = real
            .iter()
            .map(|&r| {
                let (exists, overlap) = reward(r, predicted, options);
                options.alpha * exists + (1.0 - options.alpha) * overlap
            })
            .sum();
        let precision_sum = predicted.iter().map(|&p| reward(p, real, options).1).sum();
        RangeTally {
            recall_sum,
            real: real.len(),
            precision_sum,
            predicted: predicted.len(),
        }
    }

    /// Adds another series' terms.
    pub fn add(&mut self, other: &RangeTally) {
        self.recall_sum += other.recall_sum;
        self.real += other.real;
        self.precision_sum += other.precision_sum;
        self.predicted += other.predicted;
    }

    /// Range recall; `None` without a real range.
    pub fn recall(&self) -> Option<f64> {
        (self.real > 0).then(|| self.recall_sum / self.real as f64)
    }

    /// Range precision; 0 without a predicted range (nothing right was said), as `prts`.
    pub fn precision(&self) -> f64 {
        if self.predicted == 0 {
            0.0
        } else {
            self.precision_sum / self.predicted as f64
        }
    }

    /// The harmonic mean of both; 0 when both are 0, `None` without a real range.
    pub fn f1(&self) -> Option<f64> {
        let (p, r) = (self.precision(), self.recall()?);
        Some(if p + r > 0.0 {
            2.0 * p * r / (p + r)
        } else {
            0.0
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_are_the_maximal_stretches() {
        let f = [true, true, false, true, false, false, true];
        assert_eq!(runs(&f), vec![(0, 1), (3, 3), (6, 6)]);
        assert!(runs(&[false; 3]).is_empty());
    }

    #[test]
    fn the_paper_s_terms_by_hand() {
        let flat = RangeOptions::default();
        // one real range 10..=19, predictions 8..=11 and 15..=15
        let t = RangeTally::of(&[(10, 19)], &[(8, 11), (15, 15)], &flat);
        // recall: (2 + 1) of 10 rows; precision: 2 of 4 rows, then 1 of 1
        assert!((t.recall().unwrap() - 0.3).abs() < 1e-12);
        assert!((t.precision() - 0.75).abs() < 1e-12);
        // existence only
        let exists = RangeOptions { alpha: 1.0, ..flat };
        assert_eq!(
            RangeTally::of(&[(10, 19)], &[(15, 15)], &exists).recall(),
            Some(1.0)
        );
        // split detections: 1/2 with the reciprocal penalty
        let split = RangeOptions {
            cardinality: Cardinality::Reciprocal,
            ..flat
        };
        let t = RangeTally::of(&[(10, 19)], &[(8, 11), (15, 15)], &split);
        assert!((t.recall().unwrap() - 0.15).abs() < 1e-12);
        // front bias over 4 rows (weights 4 3 2 1): catching the first row is 4/10
        let front = RangeOptions {
            bias: Bias::Front,
            ..flat
        };
        let t = RangeTally::of(&[(0, 3)], &[(0, 0)], &front);
        assert!((t.recall().unwrap() - 0.4).abs() < 1e-12);
        let back = RangeOptions {
            bias: Bias::Back,
            ..flat
        };
        let t = RangeTally::of(&[(0, 3)], &[(0, 0)], &back);
        assert!((t.recall().unwrap() - 0.1).abs() < 1e-12);
        // nothing predicted: precision 0, recall 0
        let t = RangeTally::of(&[(0, 3)], &[], &flat);
        assert_eq!(
            (t.precision(), t.recall(), t.f1()),
            (0.0, Some(0.0), Some(0.0))
        );
        assert_eq!(RangeTally::of(&[], &[(1, 2)], &flat).recall(), None);
    }
}
