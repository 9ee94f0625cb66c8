//! Interquartile-range fences, with a configurable multiplier.

use adr_sdk::{Detector, DetectorError, Score, Window};

use crate::{
    rolling::{Rolling, Side},
    window::{quantile, Sorted},
};

adr_sdk::params! {
    /// Parameters of [`Iqr`].
    pub struct IqrParams {
        /// The points each point is compared with: the last N points before it, the points
        /// of the last span of event time before it, or `batch`: the whole batch.
        window: Window = Window::Count(500), min >= 2;
        /// Fence multiplier k: a point beyond Q1 − k·IQR or Q3 + k·IQR is an anomaly.
        k: f64 = 1.5, min > 0.0;
        /// Which fences count: `both`, `upper` or `lower`.
        side: Side = Side::Both;
        /// Points the window must hold before a point is judged; 0 means the full window
        /// for a count window and 2 points otherwise.
        min_points: usize = 0;
    }
}

/// Distance outside the quartiles in IQR units, with the alarm at `k` (default 1.5).
#[derive(Debug)]
pub struct Iqr {
    params: IqrParams,
    rolling: Rolling<Sorted>,
}

/// How far `x` lies outside `[Q1, Q3]` in IQR units, signed (+ above Q3, − below Q1);
/// a zero IQR gives ±inf for points outside and 0 inside.
#[inline]
pub(crate) fn fence_distance(sorted: &[f64], x: f64) -> f64 {
    let (q1, q3) = (quantile(sorted, 0.25), quantile(sorted, 0.75));
    let iqr = q3 - q1;
    let outside = if x > q3 {
        x - q3
    } else if x < q1 {
        x - q1
    } else {
        return 0.0;
    };
    if iqr > 0.0 {
        outside / iqr
    } else {
        outside.signum() * f64::INFINITY
    }
}

impl Iqr {
    #[inline]
    fn judge(p: &IqrParams, s: &Sorted, x: f64) -> Score {
        Score::from_ratio(p.side.apply(fence_distance(s.as_slice(), x)), p.k)
    }
}

impl Detector for Iqr {
    type Params = IqrParams;
    const NAME: &'static str = "iqr";
    const SUMMARY: &'static str = "interquartile-range fences Q1 − k·IQR, Q3 + k·IQR";
    const DOC: &'static str = "\
Raw score: r = max(Q1 − x, x − Q3, 0) / IQR (one side only with `side`), the quartiles \
interpolated linearly between order statistics (numpy's default) over the window of points \
before x, or over the whole batch including x when window = batch. A point is an anomaly \
outside [Q1 − k·IQR, Q3 + k·IQR], i.e. when r ≥ k. A zero IQR gives r = inf outside the \
quartiles. Normalised: r / (r + k), 0.5 on the fence. Undetermined while the window holds \
fewer than `min_points` points. NaN/inf inputs: undetermined, never enter the window.";

    fn new(params: IqrParams, _inputs: &[String]) -> Result<Self, DetectorError> {
        let rolling = Rolling::new(params.window, params.min_points);
        Ok(Iqr { params, rolling })
    }

    delegate_to_window!(rolling, |p| |s: &Sorted, x| Self::judge(p, s, x));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{params, run_batch};
    use adr_sdk::{ParamValue::Int, Verdict};

    #[test]
    fn fence_is_at_k_iqr_beyond_the_quartiles() {
        // window [1,2,3,4,5]: Q1 2, Q3 4, IQR 2; upper fence 4 + 3 = 7
        let p = params::<IqrParams>(&[("window", Int(5))]);
        for (x, raw, verdict) in [
            (7.0, 1.5, Verdict::Anomaly),
            (6.9, 1.45, Verdict::Normal),
            (3.0, 0.0, Verdict::Normal),
            (-1.0, 1.5, Verdict::Anomaly),
        ] {
            let scores = run_batch::<Iqr>(p.clone(), &[1.0, 2.0, 3.0, 4.0, 5.0, x]);
            assert!((scores[5].raw - raw).abs() < 1e-12, "x={x}");
            assert_eq!(scores[5].verdict, verdict, "x={x}");
        }
    }
}
