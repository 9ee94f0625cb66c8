//! The modified z-score of Iglewicz & Hoaglin (1993) on the median absolute deviation.

use adr_sdk::{Detector, DetectorError, Score, Window};

use crate::{
    rolling::{standardise, Rolling, Side},
    window::{mad, median, Sorted},
};

/// 1 / Φ⁻¹(3/4): scales the MAD to a consistent estimate of σ under normality.
pub(crate) const ROBUST_SCALE: f64 = 1.482_602_218_505_602;

/// The constant of the modified z-score, as Iglewicz & Hoaglin give it (≈ 1/1.4826).
const IGLEWICZ_HOAGLIN: f64 = 0.6745;

adr_sdk::params! {
    /// Parameters of [`Mad`].
    pub struct MadParams {
        /// The points each point is compared with: the last N points before it, the points
        /// of the last span of event time before it (`1h`), or `batch`: the whole batch.
        window: Window = Window::Count(500), min >= 2;
        /// Modified z-score at or above which a point is an anomaly (3.5, as Iglewicz and
        /// Hoaglin recommend).
        threshold: f64 = 3.5, min > 0.0;
        /// Which deviations count: `both`, `upper` (spikes) or `lower` (drops).
        side: Side = Side::Both;
        /// Points the window must hold before a point is judged; 0 means the full window
        /// for a count window and 2 points otherwise.
        min_points: usize = 0;
    }
}

/// The modified z-score `0.6745·(x − median)/MAD` against a rolling window or the batch.
#[derive(Debug)]
pub struct Mad {
    params: MadParams,
    rolling: Rolling<Sorted>,
}

impl Mad {
    #[inline]
    fn judge(p: &MadParams, s: &Sorted, x: f64) -> Score {
        let sorted = s.as_slice();
        let m = median(sorted);
        let z = IGLEWICZ_HOAGLIN * standardise(x, m, mad(sorted, m));
        Score::from_ratio(p.side.apply(z), p.threshold)
    }
}

impl Detector for Mad {
    type Params = MadParams;
    const NAME: &'static str = "mad";
    const SUMMARY: &'static str =
        "modified z-score on the median absolute deviation (Iglewicz & Hoaglin)";
    const DOC: &'static str = "\
Raw score: |M| (or its upper/lower part, see `side`), M = 0.6745 · (x − median) / MAD, the \
median and MAD = median(|xᵢ − median|) taken over the window of points before x, or over the \
whole batch including x when window = batch (Iglewicz & Hoaglin, How to Detect and Handle \
Outliers, 1993). A zero MAD gives M = 0 for x at the median and ±inf otherwise. Normalised: \
|M| / (|M| + threshold), 0.5 at the threshold. Undetermined while the window holds fewer \
than `min_points` points. NaN/inf inputs: undetermined, never enter the window.";

    fn new(params: MadParams, _inputs: &[String]) -> Result<Self, DetectorError> {
        let rolling = Rolling::new(params.window, params.min_points);
        Ok(Mad { params, rolling })
    }

    delegate_to_window!(rolling, |p| |s: &Sorted, x| Self::judge(p, s, x));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{params, run_batch, run_stream};
    use adr_sdk::{ParamValue::Int, Verdict};

    #[test]
    fn modified_z_matches_the_formula() {
        // window [1, 2, 3, 4, 100]: median 3, deviations [2,1,0,1,97] → MAD 1
        let values = [1.0, 2.0, 3.0, 4.0, 100.0, 9.0];
        let scores = run_batch::<Mad>(params(&[("window", Int(5))]), &values);
        assert!((scores[5].raw - 0.6745 * 6.0).abs() < 1e-12);
        assert_eq!(scores[5].verdict, Verdict::Anomaly, "4.047 ≥ 3.5");
    }

    #[test]
    fn streaming_equals_batch() {
        let values: Vec<f64> = (0..200).map(|i| ((i * 13) % 11) as f64).collect();
        let p = params::<MadParams>(&[("window", Int(21))]);
        assert_eq!(
            format!("{:?}", run_batch::<Mad>(p.clone(), &values)),
            format!("{:?}", run_stream::<Mad>(p, &values))
        );
    }
}
