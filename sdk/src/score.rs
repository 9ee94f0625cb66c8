//! What a detector says about one point, and the score contract every family follows.
//!
//! # The score contract
//!
//! For every point a detector yields a [`Score`] of three parts:
//!
//! * **raw**: the detector's own statistic (a |z|, a test statistic, an isolation depth
//!   turned around...). Higher always means more anomalous; the scale is the detector's
//!   and is documented with it. `NaN` when the verdict is [`Verdict::Undetermined`];
//!   `+inf` is allowed (a point off a zero-variance window).
//! * **normalised**: a number `n` in `[0, 1]` that puts every detector on one scale so
//!   ensembles can vote and average across families. Each detector defines `n` as a
//!   non-decreasing function of its raw score (for a given detector state) such that
//!   1. `n = 0` for a perfectly typical point (raw score at its minimum),
//!   2. `n = 0.5` **exactly at the detector's alarm threshold**,
//!   3. `n → 1` as the raw score grows without bound.
//!
//!   Most detectors use [`ratio`]: `n = r / (r + t)` for raw score `r ≥ 0` and threshold
//!   `t > 0`, so a raw score of twice the threshold gives `2/3`, ten times gives `10/11`.
//!   `n` is **not a probability**: it says how far past (or short of) its own threshold a
//!   detector is, in a shape that is comparable between detectors. `NaN` exactly when the
//!   verdict is undetermined.
//! * **verdict**: [`Verdict::Anomaly`] exactly when `n ≥ 0.5`, [`Verdict::Normal`] when
//!   `n < 0.5`, and [`Verdict::Undetermined`] when the detector cannot judge the point:
//!   during warm-up (not enough history), or for a missing/non-finite input value.
//!   Ensembles leave undetermined members out of the vote.

use abi_stable::{std_types::RSliceMut, StableAbi};

/// A detector's judgement of one point.
#[repr(u8)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, StableAbi)]
pub enum Verdict {
    /// The point is within the detector's threshold (`normalised < 0.5`).
    Normal = 0,
    /// The point crosses the detector's threshold (`normalised ≥ 0.5`).
    Anomaly = 1,
    /// The detector cannot judge the point: warm-up, or a missing/non-finite input.
    Undetermined = 2,
}

impl Verdict {
    /// The lowercase name used in output files: `normal`, `anomaly`, `undetermined`.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Normal => "normal",
            Verdict::Anomaly => "anomaly",
            Verdict::Undetermined => "undetermined",
        }
    }
}

/// Raw score, normalised score and verdict of one point (see the [module docs](self)).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, StableAbi)]
pub struct Score {
    /// The detector's own statistic; higher is more anomalous; `NaN` when undetermined.
    pub raw: f64,
    /// The raw score mapped to `[0, 1]`, `0.5` at the alarm threshold; `NaN` when undetermined.
    pub normalised: f64,
    /// `Anomaly` exactly when `normalised ≥ 0.5`.
    pub verdict: Verdict,
}

impl Score {
    /// The score of a point the detector cannot judge.
    pub const UNDETERMINED: Score = Score {
        raw: f64::NAN,
        normalised: f64::NAN,
        verdict: Verdict::Undetermined,
    };

    /// A score whose verdict follows from the normalised score (`Anomaly` iff `n ≥ 0.5`).
    ///
    /// A `NaN` normalised score gives an undetermined verdict.
    pub fn new(raw: f64, normalised: f64) -> Score {
        let verdict = if normalised.is_nan() {
            return Score::UNDETERMINED;
        } else if normalised >= 0.5 {
            Verdict::Anomaly
        } else {
            Verdict::Normal
        };
        Score {
            raw,
            normalised,
            verdict,
        }
    }

    /// A score normalised with [`ratio`] against `threshold`.
    pub fn from_ratio(raw: f64, threshold: f64) -> Score {
        Score::new(raw, ratio(raw, threshold))
    }

    /// The score of a detector that alarms only *past* its threshold (`raw > threshold`,
    /// as River's and PyOD's tests do): [`ratio`], except that a raw score equal to the
    /// threshold stays just below 0.5, so a tie is normal.
    pub fn past_threshold(raw: f64, threshold: f64) -> Score {
        let normalised = ratio(raw, threshold);
        if raw > threshold {
            Score::new(raw, normalised.max(0.5))
        } else {
            Score::new(raw, normalised.min(0.5f64.next_down()))
        }
    }
}

/// The standard normalisation `r / (r + t)`: `0` at `r = 0`, `0.5` at `r = t`, `→ 1` as
/// `r → ∞` (exactly `1` for `r = +inf`). Negative raw scores count as `0`; `NaN` stays `NaN`.
pub fn ratio(raw: f64, threshold: f64) -> f64 {
    if raw.is_nan() {
        f64::NAN
    } else if raw == f64::INFINITY {
        1.0
    } else {
        let r = raw.max(0.0);
        r / (r + threshold)
    }
}

/// Piecewise-linear normalisation through `anchors` (raw, normalised) pairs, sorted by raw
/// score and starting at `(0, 0)`; past the last anchor `(a, m)` it approaches `1` as
/// `1 − (1 − m)·a/r`. Used where a detector has several thresholds (Tukey's fences).
pub fn piecewise(raw: f64, anchors: &[(f64, f64)]) -> f64 {
    if raw.is_nan() {
        return f64::NAN;
    }
    let r = raw.max(0.0);
    let mut prev = (0.0, 0.0);
    for &(a, m) in anchors {
        if r <= a {
            return prev.1 + (m - prev.1) * (r - prev.0) / (a - prev.0);
        }
        prev = (a, m);
    }
    if r == f64::INFINITY {
        1.0
    } else {
        1.0 - (1.0 - prev.1) * prev.0 / r
    }
}

/// Output buffers of a batch call, owned by the engine and filled by the detector.
///
/// The three columns have the frame's length; a detector must set every point.
#[repr(C)]
#[derive(Debug, StableAbi)]
pub struct ScoresMut<'a> {
    raw: RSliceMut<'a, f64>,
    normalised: RSliceMut<'a, f64>,
    verdict: RSliceMut<'a, Verdict>,
}

impl<'a> ScoresMut<'a> {
    /// Wraps three buffers of equal length.
    ///
    /// # Panics
    ///
    /// If the buffers differ in length.
    pub fn new(raw: &'a mut [f64], normalised: &'a mut [f64], verdict: &'a mut [Verdict]) -> Self {
        assert!(
            raw.len() == normalised.len() && raw.len() == verdict.len(),
            "score buffers must have one length, got {}, {} and {}",
            raw.len(),
            normalised.len(),
            verdict.len()
        );
        ScoresMut {
            raw: raw.into(),
            normalised: normalised.into(),
            verdict: verdict.into(),
        }
    }

    /// Number of points.
    pub fn len(&self) -> usize {
        self.raw.len()
    }

    /// Whether there are no points.
    pub fn is_empty(&self) -> bool {
        self.raw.is_empty()
    }

    /// Sets point `i`.
    ///
    /// # Panics
    ///
    /// If `i` is out of bounds.
    #[inline]
    pub fn set(&mut self, i: usize, score: Score) {
        self.raw[i] = score.raw;
        self.normalised[i] = score.normalised;
        self.verdict[i] = score.verdict;
    }

    /// Reads point `i` back.
    ///
    /// # Panics
    ///
    /// If `i` is out of bounds.
    pub fn get(&self, i: usize) -> Score {
        Score {
            raw: self.raw[i],
            normalised: self.normalised[i],
            verdict: self.verdict[i],
        }
    }

    /// The three columns, for detectors that fill them in bulk.
    pub fn columns_mut(&mut self) -> (&mut [f64], &mut [f64], &mut [Verdict]) {
        (
            self.raw.as_mut_slice(),
            self.normalised.as_mut_slice(),
            self.verdict.as_mut_slice(),
        )
    }

    /// A shorter view of points `start..`, for detectors that score a batch in parts.
    pub fn tail(&mut self, start: usize) -> ScoresMut<'_> {
        let (raw, normalised, verdict) = self.columns_mut();
        ScoresMut::new(
            &mut raw[start..],
            &mut normalised[start..],
            &mut verdict[start..],
        )
    }
}

/// Owned score columns, for hosts and tests.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ScoreColumns {
    /// Raw scores.
    pub raw: Vec<f64>,
    /// Normalised scores.
    pub normalised: Vec<f64>,
    /// Verdicts.
    pub verdict: Vec<Verdict>,
}

impl ScoreColumns {
    /// Columns of `len` undetermined points.
    pub fn with_len(len: usize) -> Self {
        ScoreColumns {
            raw: vec![f64::NAN; len],
            normalised: vec![f64::NAN; len],
            verdict: vec![Verdict::Undetermined; len],
        }
    }

    /// Resizes to `len` points, reusing the allocation.
    pub fn resize(&mut self, len: usize) {
        self.raw.resize(len, f64::NAN);
        self.normalised.resize(len, f64::NAN);
        self.verdict.resize(len, Verdict::Undetermined);
    }

    /// Number of points.
    pub fn len(&self) -> usize {
        self.raw.len()
    }

    /// Whether there are no points.
    pub fn is_empty(&self) -> bool {
        self.raw.is_empty()
    }

    /// Point `i`.
    pub fn get(&self, i: usize) -> Score {
        Score {
            raw: self.raw[i],
            normalised: self.normalised[i],
            verdict: self.verdict[i],
        }
    }

    /// A mutable view for a detector to fill.
    pub fn as_mut(&mut self) -> ScoresMut<'_> {
        ScoresMut::new(&mut self.raw, &mut self.normalised, &mut self.verdict)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratio_is_half_at_threshold_and_bounded() {
        let cases = [
            ("zero", 0.0, 0.0),
            ("at threshold", 3.0, 0.5),
            ("twice", 6.0, 2.0 / 3.0),
            ("infinite", f64::INFINITY, 1.0),
            ("negative counts as zero", -1.0, 0.0),
        ];
        for (name, raw, want) in cases {
            assert!((ratio(raw, 3.0) - want).abs() < 1e-15, "{name}");
        }
        assert!(ratio(f64::NAN, 3.0).is_nan());
    }

    #[test]
    fn piecewise_passes_through_anchors_and_approaches_one() {
        let anchors = [(1.5, 0.5), (3.0, 0.75)];
        assert_eq!(piecewise(0.0, &anchors), 0.0);
        assert_eq!(piecewise(0.75, &anchors), 0.25);
        assert_eq!(piecewise(1.5, &anchors), 0.5);
        assert_eq!(piecewise(3.0, &anchors), 0.75);
        assert_eq!(piecewise(6.0, &anchors), 0.875);
        assert_eq!(piecewise(f64::INFINITY, &anchors), 1.0);
        let mut last = 0.0;
        for i in 0..1000 {
            let n = piecewise(i as f64 * 0.01, &anchors);
            assert!(n >= last && n < 1.0, "monotone and below 1 at {i}");
            last = n;
        }
    }

    #[test]
    fn verdict_follows_normalised_score() {
        assert_eq!(Score::new(1.0, 0.5).verdict, Verdict::Anomaly);
        assert_eq!(Score::new(1.0, 0.4999).verdict, Verdict::Normal);
        assert_eq!(
            Score::new(f64::NAN, f64::NAN).verdict,
            Verdict::Undetermined
        );
        assert_eq!(Score::from_ratio(3.0, 3.0).verdict, Verdict::Anomaly);
    }
}
