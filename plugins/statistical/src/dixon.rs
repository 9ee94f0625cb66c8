//! Dixon's Q test for one outlier in a small sample.

use adr_sdk::{score::ratio, Detector, DetectorError, Score, Window};

use crate::sample::Sampler;

/// The smallest and largest sample the critical-value table covers.
const SIZES: std::ops::RangeInclusive<usize> = 3..=30;

/// Significance levels of the table's columns.
const ALPHAS: [f64; 6] = [0.20, 0.10, 0.05, 0.04, 0.02, 0.01];

/// Critical values of Dixon's r10 ratio Q = gap / range for n = 3..30 (rows) at the levels
/// of [`ALPHAS`] (columns: confidence 80, 90, 95, 96, 98 and 99%), from D. B. Rorabacher,
/// "Statistical Treatment for Rejection of Deviant Values: Critical Values of Dixon's 'Q'
/// Parameter and Related Subrange Ratios at the 95% Confidence Level", Analytical
/// Chemistry 63(2):139–146, 1991, Table 1 (two-tailed).
#[rustfmt::skip]
#[allow(clippy::approx_constant)] // 0.318 is a table entry, not 1/π
const CRITICAL: [[f64; 6]; 28] = [
    [0.886, 0.941, 0.970, 0.976, 0.988, 0.994],
    [0.679, 0.765, 0.829, 0.846, 0.889, 0.926],
    [0.557, 0.642, 0.710, 0.729, 0.780, 0.821],
    [0.482, 0.560, 0.625, 0.644, 0.698, 0.740],
    [0.434, 0.507, 0.568, 0.586, 0.637, 0.680],
    [0.399, 0.468, 0.526, 0.543, 0.590, 0.634],
    [0.370, 0.437, 0.493, 0.510, 0.555, 0.598],
    [0.349, 0.412, 0.466, 0.483, 0.527, 0.568],
    [0.332, 0.392, 0.444, 0.460, 0.502, 0.542],
    [0.318, 0.376, 0.426, 0.441, 0.482, 0.522],
    [0.305, 0.361, 0.410, 0.425, 0.465, 0.503],
    [0.294, 0.349, 0.396, 0.411, 0.450, 0.488],
    [0.285, 0.338, 0.384, 0.399, 0.438, 0.475],
    [0.277, 0.329, 0.374, 0.388, 0.426, 0.463],
    [0.269, 0.320, 0.365, 0.379, 0.416, 0.452],
    [0.263, 0.313, 0.356, 0.370, 0.407, 0.442],
    [0.258, 0.306, 0.349, 0.363, 0.398, 0.433],
    [0.252, 0.300, 0.342, 0.356, 0.391, 0.425],
    [0.247, 0.295, 0.337, 0.350, 0.384, 0.418],
    [0.242, 0.290, 0.331, 0.344, 0.378, 0.411],
    [0.238, 0.285, 0.326, 0.338, 0.372, 0.404],
    [0.234, 0.281, 0.321, 0.333, 0.367, 0.399],
    [0.230, 0.277, 0.317, 0.329, 0.362, 0.393],
    [0.227, 0.273, 0.312, 0.324, 0.357, 0.388],
    [0.224, 0.269, 0.308, 0.320, 0.353, 0.384],
    [0.220, 0.266, 0.305, 0.316, 0.349, 0.380],
    [0.218, 0.263, 0.301, 0.312, 0.345, 0.376],
    [0.215, 0.260, 0.298, 0.309, 0.341, 0.372],
];

adr_sdk::params! {
    /// Parameters of [`DixonQ`].
    pub struct DixonQParams {
        /// The sample each point is tested in: the last N points up to and including it
        /// (3 to 30), the points of the last span of event time up to it, or `batch`: the
        /// whole batch (which must then hold 3 to 30 points).
        window: Window = Window::Count(10), min >= 3, max <= 30;
        /// Significance level: one of 0.20, 0.10, 0.05, 0.04, 0.02, 0.01 (the table's columns).
        alpha: f64 = 0.05, min > 0.0, max < 1.0;
        /// Points a time window must hold before its newest point is tested.
        min_points: usize = 3, min >= 3, max <= 30;
    }
}

/// Dixon's Q test: the gap between an extreme point and its neighbour over the range.
#[derive(Debug)]
pub struct DixonQ {
    params: DixonQParams,
    sampler: Sampler,
}

/// The table column of significance level `alpha`, if the table has one.
fn column(alpha: f64) -> Option<usize> {
    ALPHAS.iter().position(|&a| (a - alpha).abs() < 1e-12)
}

/// Scores every point of `sample` (3 to 30 points) with Dixon's Q at table column `column`.
pub(crate) fn test(sample: &[f64], column: usize) -> Result<Vec<Score>, DetectorError> {
    let n = sample.len();
    if !SIZES.contains(&n) {
        return Err(DetectorError::invalid_input(format!(
            "dixon_q tests samples of 3 to 30 points (Rorabacher's table), got {n}; \
             use a window of at most 30 points, or grubbs/esd for larger samples"
        )));
    }
    let critical = CRITICAL[n - 3][column];
    let (mut lo, mut lo2, mut hi, mut hi2) = (
        f64::INFINITY,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::NEG_INFINITY,
    );
    for &x in sample {
        if x < lo {
            (lo2, lo) = (lo, x);
        } else if x < lo2 {
            lo2 = x;
        }
        if x > hi {
            (hi2, hi) = (hi, x);
        } else if x > hi2 {
            hi2 = x;
        }
    }
    let range = hi - lo;
    Ok(sample
        .iter()
        .map(|&x| {
            // Only an extreme point has a gap; a tied extreme has a gap of 0.
            let q = if range == 0.0 {
                0.0
            } else if x == hi {
                (hi - hi2) / range
            } else if x == lo {
                (lo2 - lo) / range
            } else {
                0.0
            };
            Score::new(q, ratio(q, critical))
        })
        .collect())
}

impl Detector for DixonQ {
    type Params = DixonQParams;
    const NAME: &'static str = "dixon_q";
    const SUMMARY: &'static str = "Dixon's Q test for one outlier in samples of 3 to 30 points";
    const DOC: &'static str = "\
On a sorted sample x₁ ≤ … ≤ xₙ, 3 ≤ n ≤ 30 (the window ending at the newest point, or the \
whole batch): Q = (x₂ − x₁)/(xₙ − x₁) for the smallest point and (xₙ − xₙ₋₁)/(xₙ − x₁) for \
the largest (Dixon's r10 ratio; Dean & Dixon 1951). Critical values: Rorabacher, Anal. Chem. \
63(2), 1991, Table 1, for α = 0.20, 0.10, 0.05, 0.04, 0.02, 0.01. Raw score: Q for the two \
extreme points, 0 for the others and for tied extremes. Normalised: Q / (Q + Q_crit); \
anomaly when Q ≥ Q_crit. A batch outside 3..30 points is an error; a window of event time \
holding more than 30 points leaves its newest point undetermined. NaN/inf inputs: \
undetermined, left out of the sample.";

    fn new(params: DixonQParams, _inputs: &[String]) -> Result<Self, DetectorError> {
        if column(params.alpha).is_none() {
            return Err(DetectorError::invalid_params(format!(
                "parameter `alpha` must be one of 0.2, 0.1, 0.05, 0.04, 0.02, 0.01 (the levels of Rorabacher's table), got {}",
                params.alpha
            )));
        }
        let sampler = Sampler::new(params.window, params.min_points);
        Ok(DixonQ { params, sampler })
    }

    delegate_to_window!(sampler, |p| |s: &[f64]| {
        // A window of event time can hold more points than the table covers: its newest
        // point cannot be tested (undetermined), which is no error of the run's.
        if p.window != Window::Batch && s.len() > 30 {
            return Ok(vec![Score::UNDETERMINED; s.len()]);
        }
        test(s, column(p.alpha).expect("checked in new"))
    });
}

impl DixonQ {
    /// The parameters the detector was built with.
    pub fn params(&self) -> &DixonQParams {
        &self.params
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{params, run_batch, run_stream};
    use adr_sdk::{
        ErrorKind,
        ParamValue::{Float, Int, Text},
        Verdict,
    };

    #[test]
    fn textbook_example() {
        // Rorabacher (1991): 0.189, 0.167, 0.187, 0.183, 0.186, 0.182, 0.181, 0.184, 0.181, 0.177
        // Q for 0.167 = (0.177 − 0.167)/(0.189 − 0.167) = 0.4545 < 0.466 (n = 10, 95%): kept
        let sample = [
            0.189, 0.167, 0.187, 0.183, 0.186, 0.182, 0.181, 0.184, 0.181, 0.177,
        ];
        let scores = test(&sample, 2).unwrap();
        assert!((scores[1].raw - 0.010 / 0.022).abs() < 1e-12);
        assert_eq!(scores[1].verdict, Verdict::Normal);
        let scores = test(&sample, 0).unwrap();
        assert_eq!(scores[1].verdict, Verdict::Anomaly, "0.4545 ≥ 0.349 at 80%");
    }

    #[test]
    fn sample_size_outside_the_table_is_a_clear_error() {
        let p = params::<DixonQParams>(&[("window", Text("batch".into()))]);
        let mut d = DixonQ::new(p, &["x".into()]).unwrap();
        let values = vec![1.0; 31];
        let ts: Vec<i64> = (0..31).collect();
        let cols = [adr_sdk::Column::f64("x", &values)];
        let frame = adr_sdk::Frame::new(&ts, &cols).unwrap();
        let mut out = adr_sdk::score::ScoreColumns::with_len(31);
        let err = d.score(&frame, &mut out.as_mut()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert!(err.message().contains("3 to 30 points"), "{err}");
    }

    #[test]
    fn alpha_must_be_a_table_column() {
        let p = params::<DixonQParams>(&[("alpha", Float(0.03))]);
        let err = DixonQ::new(p, &["x".into()]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidParams);
        assert!(err.message().contains("0.2, 0.1, 0.05"), "{err}");
    }

    #[test]
    fn streams_over_a_window() {
        let values: Vec<f64> = (0..40)
            .map(|i| (i % 3) as f64 + if i == 30 { 50.0 } else { 0.0 })
            .collect();
        let scores = run_stream::<DixonQ>(params(&[("window", Int(8))]), &values);
        assert_eq!(scores[30].verdict, Verdict::Anomaly);
        assert_eq!(
            run_batch::<DixonQ>(params(&[("window", Int(8))]), &values)[30],
            scores[30]
        );
    }
}
