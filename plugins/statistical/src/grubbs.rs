//! Grubbs' test for outliers, two-sided and iterated.

use adr_sdk::{Detector, DetectorError, Score, Window};

use crate::{
    sample::{flagged, Extremes, Sampler},
    tdist::upper_quantile,
};

adr_sdk::params! {
    /// Parameters of [`Grubbs`].
    pub struct GrubbsParams {
        /// The sample each point is tested in: the last N points up to and including it,
        /// the points of the last span of event time up to it, or `batch`: the whole batch.
        window: Window = Window::Count(100), min >= 3;
        /// Significance level of each two-sided test.
        alpha: f64 = 0.05, min > 0.0, max < 1.0;
        /// Points a time window must hold before its newest point is tested.
        min_points: usize = 3, min >= 3;
    }
}

/// Grubbs' test, repeated while it finds an outlier (Grubbs 1969; NIST e-Handbook 1.3.5.17).
#[derive(Debug)]
pub struct Grubbs {
    params: GrubbsParams,
    sampler: Sampler,
}

/// The two-sided critical value of Grubbs' statistic for a sample of `n` at level `alpha`:
/// `G_crit = (n − 1)/√n · √(t² / (n − 2 + t²))`, `t` the upper `alpha/(2n)` quantile of
/// Student's t with `n − 2` degrees of freedom.
///
/// Written as `(n − 1)/√n / √(1 + (n − 2)/t²)` so that a huge `t` (a tiny `alpha`) gives
/// the limit `(n − 1)/√n` instead of ∞/∞; an infinite `t` (`alpha/(2n)` below the
/// smallest number) rejects nothing.
pub(crate) fn critical_value(n: usize, alpha: f64) -> f64 {
    let nf = n as f64;
    let t = upper_quantile(alpha / (2.0 * nf), nf - 2.0);
    if t.is_infinite() {
        return f64::INFINITY;
    }
    (nf - 1.0) / nf.sqrt() / (1.0 + (nf - 2.0) / (t * t)).sqrt()
}

/// Scores every point of `sample` by iterated Grubbs tests.
pub(crate) fn test(sample: &[f64], alpha: f64) -> Vec<Score> {
    let mut scores = vec![Score::UNDETERMINED; sample.len()];
    if sample.len() < 3 {
        return scores;
    }
    let mut extremes = Extremes::new(sample);
    while let Some(c) = extremes.candidate() {
        let critical = critical_value(c.n, alpha);
        if c.r < critical {
            break;
        }
        scores[extremes.order[c.pos]] = flagged(c.r, critical);
        extremes.remove(c.pos);
    }
    let rest = extremes.range();
    let n = rest.1 - rest.0;
    let critical = if n >= 3 {
        critical_value(n, alpha)
    } else {
        f64::INFINITY
    };
    extremes.judge_rest(rest, critical, &mut scores);
    scores
}

impl Detector for Grubbs {
    type Params = GrubbsParams;
    const NAME: &'static str = "grubbs";
    const SUMMARY: &'static str = "Grubbs' test, two-sided, iterated until no outlier is left";
    const DOC: &'static str = "\
On a sample of n ≥ 3 points (the window ending at the newest point, or the whole batch): \
G = max |xᵢ − mean| / sd (sd with n − 1); the point is an outlier when G ≥ G_crit = \
(n − 1)/√n · √(t² / (n − 2 + t²)), t the upper α/(2n) quantile of Student's t with n − 2 \
degrees of freedom; it is removed and the test repeats on the n − 1 others until it finds \
none (Grubbs 1969; NIST/SEMATECH e-Handbook 1.3.5.17). Raw score: a flagged point's G at \
its removal; any other point's |x − mean| / sd in the sample left after the removals. \
Normalised: G / (G + G_crit), at least 0.5 for flagged points and below 0.5 for the others. \
NaN/inf inputs: undetermined, left out of the sample.";

    fn new(params: GrubbsParams, _inputs: &[String]) -> Result<Self, DetectorError> {
        let sampler = Sampler::new(params.window, params.min_points);
        Ok(Grubbs { params, sampler })
    }

    delegate_to_window!(sampler, |p| |s: &[f64]| Ok(test(s, p.alpha)));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{params, run_batch, run_stream};
    use adr_sdk::{
        ParamValue::{Int, Text},
        Verdict,
    };

    #[test]
    fn critical_values_match_the_published_table() {
        // NIST e-Handbook / Grubbs (1969) two-sided α = 0.05: n = 10 → 2.290, n = 20 → 2.708, n = 100 → 3.384
        for (n, want) in [(10, 2.290), (20, 2.708), (100, 3.384)] {
            assert!(
                (critical_value(n, 0.05) - want).abs() < 5e-4,
                "n={n}: {}",
                critical_value(n, 0.05)
            );
        }
    }

    #[test]
    fn critical_values_match_scipy_across_the_whole_alpha_range() {
        // scipy 1.17.1: (n-1)/sqrt(n)/sqrt(1 + (n-2)/t**2), t = t.isf(alpha/(2n), n-2)
        let cases = [
            (3, 0.5, 1.1153550716504108),
            (3, 0.05, 1.1543048513440386),
            (3, 1e-10, 1.1547005383792517),
            (3, 1e-300, 1.1547005383792517),
            (10, 0.5, 1.7984100049505738),
            (10, 0.05, 2.2899540844796),
            (10, 1e-10, 2.8425491667831784),
            (10, 1e-16, 2.8459392309931313),
            (10, 1e-100, 2.846049894151541),
            (100, 0.5, 2.7583877881051735),
            (100, 0.05, 3.384082901154891),
            (100, 1e-10, 6.310306853157357),
            (100, 1e-16, 7.347485383177489),
            (100, 1e-100, 9.856725986221942),
            (100, 1e-300, 9.899996421653151),
        ];
        for (n, alpha, want) in cases {
            let got = critical_value(n, alpha);
            assert!(
                ((got - want) / want).abs() < 1e-12,
                "n={n} alpha={alpha}: {got} vs {want}"
            );
        }
        assert_eq!(critical_value(100, 1e-320 * 1e-10), f64::INFINITY);
    }

    #[test]
    fn a_stricter_alpha_never_flags_more() {
        let values: Vec<f64> = (0..600)
            .map(|i| ((i * 7919) % 101) as f64 / 10.0 + if i % 97 == 0 { 25.0 } else { 0.0 })
            .collect();
        let mut last = usize::MAX;
        for alpha in [
            0.5, 0.05, 1e-5, 1e-10, 1e-15, 1e-16, 1e-50, 1e-100, 1e-200, 1e-300,
        ] {
            for window in [Int(100), Text("batch".into())] {
                let scores = run_batch::<Grubbs>(
                    params(&[
                        ("window", window.clone()),
                        ("alpha", adr_sdk::ParamValue::Float(alpha)),
                    ]),
                    &values,
                );
                let flagged = scores
                    .iter()
                    .filter(|s| s.verdict == Verdict::Anomaly)
                    .count();
                if window == Int(100) {
                    assert!(
                        flagged <= last,
                        "alpha {alpha}: {flagged} flagged, more than {last}"
                    );
                    last = flagged;
                }
                assert!(
                    scores
                        .iter()
                        .all(|s| s.verdict != Verdict::Anomaly || s.normalised >= 0.5),
                    "alpha {alpha}"
                );
            }
        }
    }

    #[test]
    fn a_huge_finite_spike_is_the_outlier_not_a_zero() {
        let mut values: Vec<f64> = (0..300)
            .map(|i| 5.0 + ((i * 37) % 11) as f64 / 10.0)
            .collect();
        values[200] = 1e160;
        for window in [Int(100), Text("batch".into())] {
            let grubbs = run_batch::<Grubbs>(params(&[("window", window.clone())]), &values);
            let esd = run_batch::<crate::esd::Esd>(params(&[("window", window.clone())]), &values);
            for (name, scores) in [("grubbs", &grubbs), ("esd", &esd)] {
                assert_eq!(
                    scores[200].verdict,
                    Verdict::Anomaly,
                    "{name} {window:?}: {:?}",
                    scores[200]
                );
                assert!(
                    scores[200].raw.is_finite() && scores[200].raw > 9.0,
                    "{name}: {:?}",
                    scores[200]
                );
                // the rows after the spike are judged on their own scale
                let after = scores[201..]
                    .iter()
                    .filter(|s| s.verdict == Verdict::Anomaly)
                    .count();
                assert_eq!(after, 0, "{name} {window:?}");
            }
        }
    }

    #[test]
    fn iterates_until_no_outlier_is_left() {
        let mut values: Vec<f64> = (0..30).map(|i| (i % 5) as f64).collect();
        values[3] = 40.0;
        values[17] = -35.0;
        let scores = run_batch::<Grubbs>(params(&[("window", Text("batch".into()))]), &values);
        let flagged: Vec<usize> = (0..30)
            .filter(|&i| scores[i].verdict == Verdict::Anomaly)
            .collect();
        assert_eq!(flagged, [3, 17]);
        for s in &scores {
            assert_eq!(s.verdict == Verdict::Anomaly, s.normalised >= 0.5);
        }
    }

    #[test]
    fn streaming_tests_the_newest_point_in_its_window() {
        let values: Vec<f64> = (0..60)
            .map(|i| ((i * 7) % 5) as f64 + if i == 45 { 30.0 } else { 0.0 })
            .collect();
        let scores = run_stream::<Grubbs>(params(&[("window", Int(20))]), &values);
        assert_eq!(scores[18].verdict, Verdict::Undetermined);
        assert_eq!(scores[45].verdict, Verdict::Anomaly);
        assert_eq!(scores[46].verdict, Verdict::Normal);
    }
}
