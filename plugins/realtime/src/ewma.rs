//! The EWMA control chart with an exponentially weighted variance (EWMV).

use adr_sdk::state::{Reader, Writer};
use adr_sdk::{Detector, DetectorError, Score};

use crate::online::{finite, online_detector, standardise, Online, Side, Welford};

adr_sdk::params! {
    /// Parameters of [`Ewma`].
    pub struct EwmaParams {
        /// Weight of the newest point in the mean and variance (λ); the memory is about
        /// 1/λ points.
        alpha: f64 = 0.05, min > 0.0, max <= 1.0;
        /// |z| at or above which a point is an anomaly.
        threshold: f64 = 3.0, min > 0.0;
        /// Points learnt (plain mean and variance) before the first is judged.
        warmup: usize = 30, min >= 2;
        /// Which deviations count: `both`, `upper` or `lower`.
        side: Side = Side::Both;
    }
}

/// Each point against the exponentially weighted mean and variance of the points before it.
#[derive(Debug)]
pub struct Ewma {
    params: EwmaParams,
    warm: Welford,
    mean: f64,
    variance: f64,
}

impl Online for Ewma {
    fn step(&mut self, _ts: i64, row: &[f64]) -> Score {
        let Some(x) = finite(row) else {
            return Score::UNDETERMINED;
        };
        if self.warm.n < self.params.warmup as u64 {
            self.warm.push(x);
            self.mean = self.warm.mean;
            self.variance = self.warm.variance();
            return Score::UNDETERMINED;
        }
        let z = standardise(x, self.mean, self.variance.sqrt());
        let a = self.params.alpha;
        let d = x - self.mean;
        self.mean += a * d;
        self.variance = (1.0 - a) * (self.variance + a * d * d);
        Score::from_ratio(self.params.side.apply(z), self.params.threshold)
    }
}

impl Ewma {
    fn save_state(&self, w: &mut Writer) {
        self.warm.save(w);
        w.number(self.mean);
        w.number(self.variance);
    }

    fn restore_state(params: &EwmaParams, r: &mut Reader<'_>) -> Result<Self, DetectorError> {
        Ok(Ewma {
            params: params.clone(),
            warm: Welford::restore(r)?,
            mean: r.number()?,
            variance: r.number()?,
        })
    }
}

impl Detector for Ewma {
    type Params = EwmaParams;
    const NAME: &'static str = "ewma";
    const SUMMARY: &'static str =
        "EWMA control chart: z against an exponentially weighted mean and variance";
    const DOC: &'static str = "\
Raw score: |z| (or its upper/lower part), z = (x − m) / √v, where m and v are the \
exponentially weighted mean and variance of the points before x: m ← m + λ·d, \
v ← (1 − λ)·(v + λ·d²), d = x − m (Finch 2009). The first `warmup` points set m and v to \
their plain mean and population variance and are undetermined. A zero variance gives z = 0 \
at the mean and ±inf elsewhere. Normalised: |z| / (|z| + threshold), 0.5 at the threshold. \
NaN/inf inputs: undetermined, never learnt. Gaps in time are not weighted: the memory \
counts points, not seconds.";

    fn new(params: EwmaParams, _inputs: &[String]) -> Result<Self, DetectorError> {
        Ok(Ewma {
            params,
            warm: Welford::default(),
            mean: 0.0,
            variance: 0.0,
        })
    }

    fn state_bytes(&self) -> Option<u64> {
        Some(crate::online::FIXED_BYTES)
    }

    online_detector!();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{params, run_stream};
    use adr_sdk::{ParamValue, Verdict};

    #[test]
    fn follows_the_recursion_and_flags_a_jump() {
        let values: Vec<f64> = (0..200)
            .map(|i| if i == 150 { 50.0 } else { (i % 5) as f64 })
            .collect();
        let p: EwmaParams = params(&[
            ("alpha", ParamValue::Float(0.1)),
            ("warmup", ParamValue::Int(10)),
        ]);
        let scores = run_stream::<Ewma>(p, &values);
        assert!(scores[..10]
            .iter()
            .all(|s| s.verdict == Verdict::Undetermined));
        // replay the recursion by hand
        let (mut m, mut v) = (2.0, 2.0); // mean and population variance of 0,1,2,3,4,0,...,4
        for (i, &x) in values.iter().enumerate().skip(10) {
            let z = (x - m) / f64::sqrt(v);
            assert!((scores[i].raw - z.abs()).abs() < 1e-9, "row {i}");
            let d = x - m;
            m += 0.1 * d;
            v = 0.9 * (v + 0.1 * d * d);
        }
        assert_eq!(scores[150].verdict, Verdict::Anomaly);
        assert!(scores[100].verdict == Verdict::Normal);
    }
}
