//! Tukey's fences: the inner (1.5 IQR) and outer (3 IQR) fences of exploratory data analysis.

use adr_sdk::{score::piecewise, Detector, DetectorError, Score, Window};

use crate::{
    iqr::fence_distance,
    rolling::{Rolling, Side},
    window::Sorted,
};

/// Tukey's inner fence, in IQRs beyond the quartiles.
const INNER: f64 = 1.5;
/// Tukey's outer fence, in IQRs beyond the quartiles.
const OUTER: f64 = 3.0;

adr_sdk::param_choice! {
    /// Which of Tukey's fences raises the alarm.
    pub enum Fence {
        /// 1.5 IQR beyond the quartiles: "outliers" (Tukey's "outside" values).
        Inner = "inner",
        /// 3 IQR beyond the quartiles: "far out" values.
        Outer = "outer",
    }
}

adr_sdk::params! {
    /// Parameters of [`Tukey`].
    pub struct TukeyParams {
        /// The points each point is compared with: the last N points before it, the points
        /// of the last span of event time before it, or `batch`: the whole batch.
        window: Window = Window::Count(500), min >= 2;
        /// The fence that makes a point an anomaly: `inner` (1.5 IQR) or `outer` (3 IQR).
        fence: Fence = Fence::Inner;
        /// Which fences count: `both`, `upper` or `lower`.
        side: Side = Side::Both;
        /// Points the window must hold before a point is judged; 0 means the full window
        /// for a count window and 2 points otherwise.
        min_points: usize = 0;
    }
}

/// Tukey's fences, the fence a point crosses setting its normalised score.
#[derive(Debug)]
pub struct Tukey {
    params: TukeyParams,
    rolling: Rolling<Sorted>,
}

impl Tukey {
    #[inline]
    fn judge(p: &TukeyParams, s: &Sorted, x: f64) -> Score {
        let r = p.side.apply(fence_distance(s.as_slice(), x));
        let anchors = match p.fence {
            Fence::Inner => [(INNER, 0.5), (OUTER, 0.75)],
            Fence::Outer => [(INNER, 0.25), (OUTER, 0.5)],
        };
        Score::new(r, piecewise(r, &anchors))
    }
}

impl Detector for Tukey {
    type Params = TukeyParams;
    const NAME: &'static str = "tukey";
    const SUMMARY: &'static str = "Tukey's inner (1.5 IQR) and outer (3 IQR) fences";
    const DOC: &'static str = "\
Raw score: r = max(Q1 − x, x − Q3, 0) / IQR as for `iqr` (quartiles interpolated linearly, \
over the window of points before x or the whole batch). The fence crossed drives the \
normalised score, piecewise linear in r: with fence = inner, 0 at r = 0, 0.5 on the inner \
fence (r = 1.5), 0.75 on the outer fence (r = 3), then 1 − 0.75/r → 1; with fence = outer, \
0.25 on the inner fence and 0.5 on the outer, then 1 − 1.5/r. Verdict: anomaly past the \
chosen fence. A zero IQR gives r = inf outside the quartiles. NaN/inf inputs: \
undetermined, never enter the window.";

    fn new(params: TukeyParams, _inputs: &[String]) -> Result<Self, DetectorError> {
        let rolling = Rolling::new(params.window, params.min_points);
        Ok(Tukey { params, rolling })
    }

    delegate_to_window!(rolling, |p| |s: &Sorted, x| Self::judge(p, s, x));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{params, run_batch};
    use adr_sdk::{
        ParamValue::{Int, Text},
        Verdict,
    };

    #[test]
    fn the_fence_crossed_sets_the_normalised_score() {
        // window [1,2,3,4,5]: Q3 4, IQR 2: inner fence at 7, outer at 10
        let cases = [
            ("inside", "inner", 4.0, 0.0, Verdict::Normal),
            ("on inner", "inner", 7.0, 0.5, Verdict::Anomaly),
            ("on outer", "inner", 10.0, 0.75, Verdict::Anomaly),
            ("on inner, outer alarm", "outer", 7.0, 0.25, Verdict::Normal),
            (
                "on outer, outer alarm",
                "outer",
                10.0,
                0.5,
                Verdict::Anomaly,
            ),
        ];
        for (name, fence, x, n, verdict) in cases {
            let p = params::<TukeyParams>(&[("window", Int(5)), ("fence", Text(fence.into()))]);
            let s = run_batch::<Tukey>(p, &[1.0, 2.0, 3.0, 4.0, 5.0, x])[5];
            assert!((s.normalised - n).abs() < 1e-12, "{name}: {s:?}");
            assert_eq!(s.verdict, verdict, "{name}");
        }
    }
}
