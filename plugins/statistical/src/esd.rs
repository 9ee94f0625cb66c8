//! Rosner's generalised extreme Studentized deviate (ESD) test.

use adr_sdk::{Detector, DetectorError, Score, Window};

use crate::{
    sample::{flagged, Extremes, Sampler, BELOW_ALARM},
    tdist::upper_quantile,
};

adr_sdk::params! {
    /// Parameters of [`Esd`].
    pub struct EsdParams {
        /// The sample each point is tested in: the last N points up to and including it,
        /// the points of the last span of event time up to it, or `batch`: the whole batch.
        window: Window = Window::Count(100), min >= 3;
        /// The most outliers the test looks for (Rosner's r).
        max_outliers: usize = 10, min >= 1, max <= 100_000;
        /// Significance level of the test.
        alpha: f64 = 0.05, min > 0.0, max < 1.0;
        /// Points a time window must hold before its newest point is tested.
        min_points: usize = 3, min >= 3;
    }
}

/// The generalised ESD test for up to `max_outliers` outliers (Rosner 1983).
#[derive(Debug)]
pub struct Esd {
    params: EsdParams,
    sampler: Sampler,
}

/// Rosner's critical value λᵢ for the i-th removal from a sample of `n`:
/// `λᵢ = (n − i)·t / √((n − i − 1 + t²)(n − i + 1))`, t the upper `α / (2(n − i + 1))`
/// quantile of Student's t with `n − i − 1` degrees of freedom.
///
/// Written as `(n − i) / √((n − i + 1)(1 + (n − i − 1)/t²))`, stable for a huge `t`; an
/// infinite `t` rejects nothing.
pub(crate) fn critical_value(n: usize, i: usize, alpha: f64) -> f64 {
    let (n, i) = (n as f64, i as f64);
    let t = upper_quantile(alpha / (2.0 * (n - i + 1.0)), n - i - 1.0);
    if t.is_infinite() {
        return f64::INFINITY;
    }
    (n - i) / ((n - i + 1.0) * (1.0 + (n - i - 1.0) / (t * t))).sqrt()
}

/// Scores every point of `sample` by the generalised ESD test.
pub(crate) fn test(sample: &[f64], max_outliers: usize, alpha: f64) -> Vec<Score> {
    let n = sample.len();
    let mut scores = vec![Score::UNDETERMINED; n];
    if n < 3 {
        return scores;
    }
    let mut extremes = Extremes::new(sample);
    let r = max_outliers.min(n - 2);
    // (candidate, λ, range left after removing it) for i = 1..=r
    let mut steps = Vec::with_capacity(r);
    let mut ranges = vec![extremes.range()];
    for i in 1..=r {
        let Some(c) = extremes.candidate() else { break };
        steps.push((c, critical_value(n, i, alpha)));
        extremes.remove(c.pos);
        ranges.push(extremes.range());
    }
    let outliers = steps
        .iter()
        .rposition(|(c, lambda)| c.r >= *lambda)
        .map_or(0, |i| i + 1);
    for (c, lambda) in &steps[..outliers] {
        scores[extremes.order[c.pos]] = flagged(c.r, *lambda);
    }
    let next = outliers + 1;
    let lambda = if n - next >= 2 {
        critical_value(n, next, alpha)
    } else {
        f64::INFINITY
    };
    extremes.judge_rest(ranges[outliers], lambda, &mut scores);
    debug_assert!(scores
        .iter()
        .all(|s| s.verdict != adr_sdk::Verdict::Anomaly || s.normalised > BELOW_ALARM));
    scores
}

impl Detector for Esd {
    type Params = EsdParams;
    const NAME: &'static str = "esd";
    const SUMMARY: &'static str =
        "generalised ESD test (Rosner 1983) for up to max_outliers outliers";
    const DOC: &'static str = "\
On a sample of n points (the window ending at the newest point, or the whole batch): for \
i = 1..r (r = max_outliers, at most n − 2) Rᵢ = max |x − mean| / sd over the sample with the \
i − 1 most extreme points removed, and λᵢ = (n − i)·t / √((n − i − 1 + t²)(n − i + 1)), t \
the upper α/(2(n − i + 1)) quantile of Student's t with n − i − 1 degrees of freedom. The \
number of outliers k is the largest i with Rᵢ ≥ λᵢ, and the k points removed first are the \
outliers (Rosner, Technometrics 25(2), 1983; NIST e-Handbook 1.3.5.17.3). Raw score: a \
flagged point's Rᵢ; any other point's |x − mean| / sd in the sample without the k outliers. \
Normalised: R / (R + λ), at least 0.5 for flagged points and below 0.5 for the others. \
NaN/inf inputs: undetermined, left out of the sample.";

    fn new(params: EsdParams, _inputs: &[String]) -> Result<Self, DetectorError> {
        let sampler = Sampler::new(params.window, params.min_points);
        Ok(Esd { params, sampler })
    }

    delegate_to_window!(sampler, |p| |s: &[f64]| Ok(test(
        s,
        p.max_outliers,
        p.alpha
    )));
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rosner's (1983) example, as worked in the NIST e-Handbook (1.3.5.17.3): 54 values,
    /// r = 10, α = 0.05; the test finds 3 outliers.
    const ROSNER: [f64; 54] = [
        -0.25, 0.68, 0.94, 1.15, 1.20, 1.26, 1.26, 1.34, 1.38, 1.43, 1.49, 1.49, 1.55, 1.56, 1.58,
        1.65, 1.69, 1.70, 1.76, 1.77, 1.81, 1.91, 1.94, 1.96, 1.99, 2.06, 2.09, 2.10, 2.14, 2.15,
        2.23, 2.24, 2.26, 2.35, 2.37, 2.40, 2.47, 2.54, 2.62, 2.64, 2.90, 2.92, 2.92, 2.93, 3.21,
        3.26, 3.30, 3.59, 3.68, 4.30, 4.64, 5.34, 5.42, 6.01,
    ];

    #[test]
    fn finds_rosners_three_outliers() {
        let scores = test(&ROSNER, 10, 0.05);
        let flagged: Vec<f64> = (0..54)
            .filter(|&i| scores[i].verdict == adr_sdk::Verdict::Anomaly)
            .map(|i| ROSNER[i])
            .collect();
        assert_eq!(flagged, [5.34, 5.42, 6.01]);
        // NIST: R1 = 3.118, λ1 = 3.158; R3 = 3.179, λ3 = 3.144
        assert!((critical_value(54, 1, 0.05) - 3.158).abs() < 1e-3);
        assert!((critical_value(54, 3, 0.05) - 3.144).abs() < 1e-3);
        let top = scores[53];
        assert!((top.raw - 3.118).abs() < 1e-3, "{top:?}");
        assert!(
            top.normalised >= 0.5,
            "flagged by the largest-i rule although R1 < λ1"
        );
    }
}
