//! A quantile-tracking threshold: each point against the empirical tail of the last
//! `window` points, without a model of the tail (SPOT's non-parametric counterpart).

use adr_sdk::state::{Reader, Writer};
use adr_sdk::{Bounded, Detector, DetectorError, ErrorKind, Score};

use crate::online::{finite, online_detector, Online, Side};

adr_sdk::params! {
    /// Parameters of [`QuantileThreshold`].
    pub struct QuantileThresholdParams {
        /// Tail probability at the alarm threshold: a point is an anomaly when at most
        /// this share of the window is as extreme.
        q: f64 = 0.01, min > 0.0, max < 1.0;
        /// Points the tail is taken from (the last ones before the point).
        window: usize = 1000, min >= 2, max <= 10_000_000;
        /// Points the window must hold before a point is judged; 0 means 1/q.
        min_points: usize = 0;
        /// Which tail: `upper`, `lower` or `both`.
        side: Side = Side::Upper;
    }
}

/// The last `window` points, in arrival order and sorted.
#[derive(Debug)]
pub struct QuantileThreshold {
    params: QuantileThresholdParams,
    recent: Bounded<f64>,
    sorted: Vec<f64>,
}

impl QuantileThreshold {
    /// Points of the window at or above `x`, and at or below it.
    fn tails(&self, x: f64) -> (usize, usize) {
        let n = self.sorted.len();
        let below = self.sorted.partition_point(|&v| v < x);
        let at_most = self.sorted.partition_point(|&v| v <= x);
        (n - below, at_most)
    }

    /// Learns `x`; a window that cannot grow (no memory) learns nothing more and keeps
    /// judging against what it holds.
    fn learn(&mut self, x: f64) {
        let Ok(left) = self.recent.push(x) else {
            return;
        };
        let at = self.sorted.partition_point(|&v| v < x);
        self.sorted.insert(at, x);
        if let Some(old) = left {
            let at = self.sorted.partition_point(|&v| v < old);
            self.sorted.remove(at);
        }
    }
}

impl Online for QuantileThreshold {
    fn step(&mut self, _ts: i64, row: &[f64]) -> Score {
        let Some(x) = finite(row) else {
            return Score::UNDETERMINED;
        };
        let p = &self.params;
        let needed = if p.min_points == 0 {
            (1.0 / p.q).ceil() as usize
        } else {
            p.min_points
        };
        let n = self.sorted.len();
        let score = if n < needed.min(p.window) {
            Score::UNDETERMINED
        } else {
            // (count + 1)/(n + 1): the point itself counts once, so the share is never 0
            let (upper, lower) = self.tails(x);
            let share = |count: usize| (count + 1) as f64 / (n + 1) as f64;
            let raw = match p.side {
                Side::Upper => p.q / share(upper),
                Side::Lower => p.q / share(lower),
                Side::Both => p.q / share(upper).min(share(lower)),
            };
            Score::from_ratio(raw, 1.0)
        };
        self.learn(x);
        score
    }
}

impl QuantileThreshold {
    fn save_state(&self, w: &mut Writer) {
        let (a, b) = self.recent.as_slices();
        w.numbers(a);
        w.numbers(b);
    }

    fn restore_state(
        params: &QuantileThresholdParams,
        r: &mut Reader<'_>,
    ) -> Result<Self, DetectorError> {
        let (first, second) = (r.numbers()?, r.numbers()?);
        if first.len() + second.len() > params.window
            || first.iter().chain(&second).any(|x| !x.is_finite())
        {
            return Err(DetectorError::new(
                ErrorKind::IncompatibleState,
                format!(
                    "state is corrupt: {} points for a window of {}",
                    first.len() + second.len(),
                    params.window
                ),
            ));
        }
        let recent = Bounded::from_values(params.window, first.into_iter().chain(second))?;
        let mut sorted: Vec<f64> = recent.iter().copied().collect();
        sorted.sort_by(f64::total_cmp);
        Ok(QuantileThreshold {
            params: params.clone(),
            recent,
            sorted,
        })
    }
}

impl Detector for QuantileThreshold {
    type Params = QuantileThresholdParams;
    const NAME: &'static str = "quantile";
    const SUMMARY: &'static str =
        "quantile-tracking threshold: the empirical tail of the last `window` points";
    const DOC: &'static str = "\
With n points in the window before x, P̂ = (number of them at least as extreme as x, plus 1) \
/ (n + 1): the share of the window in x's tail (upper, lower, or the smaller of both). \
Raw score: q / P̂, at least 1 exactly when x lies beyond the window's q-quantile, and a tail \
probability comparable between series (SPOT's non-parametric counterpart; use it as a rule's \
`threshold realtime.quantile(q = 0.01)`). Normalised: raw / (raw + 1). Undetermined until \
the window holds `min_points` (default 1/q). NaN/inf inputs: undetermined, never learnt. \
Memory: `window` points.";

    fn new(params: QuantileThresholdParams, _inputs: &[String]) -> Result<Self, DetectorError> {
        Ok(QuantileThreshold {
            recent: Bounded::new(params.window),
            sorted: Vec::new(),
            params,
        })
    }

    fn state_bytes(&self) -> Option<u64> {
        Some(
            Bounded::<f64>::bytes(self.params.window)
                + crate::online::grown(self.params.window + 1, 8)
                + crate::online::FIXED_BYTES,
        )
    }

    online_detector!();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{noise, params, run_stream, run_with_restore};
    use adr_sdk::{ParamValue, Verdict};

    #[test]
    fn the_raw_score_is_the_tail_share_by_hand() {
        let p: QuantileThresholdParams = params(&[
            ("q", ParamValue::Float(0.25)),
            ("window", ParamValue::Int(4)),
        ]);
        let values = [1.0, 2.0, 3.0, 4.0, 3.5, 10.0];
        let scores = run_stream::<QuantileThreshold>(p, &values);
        assert_eq!(scores[3].verdict, Verdict::Undetermined);
        // 3.5 against [1, 2, 3, 4]: one point at least as high → P̂ = 2/5
        assert!((scores[4].raw - 0.25 / 0.4).abs() < 1e-12);
        // 10 against [2, 3, 4, 3.5]: none → P̂ = 1/5 → raw 1.25, an anomaly
        assert!((scores[5].raw - 1.25).abs() < 1e-12);
        assert_eq!(scores[5].verdict, Verdict::Anomaly);
    }

    #[test]
    fn the_alarm_rate_on_noise_is_q() {
        let values = noise(50_000, 13);
        let p: QuantileThresholdParams = params(&[("q", ParamValue::Float(0.01))]);
        let scores = run_stream::<QuantileThreshold>(p, &values);
        let judged = scores
            .iter()
            .filter(|s| s.verdict != Verdict::Undetermined)
            .count();
        let alarms = scores
            .iter()
            .filter(|s| s.verdict == Verdict::Anomaly)
            .count();
        let rate = alarms as f64 / judged as f64;
        // a conformal p-value: the rate is q up to sampling noise (about ±0.0005 here)
        assert!((0.0085..=0.0115).contains(&rate), "rate {rate}");
    }

    #[test]
    fn a_restored_state_continues_exactly() {
        let values = noise(3000, 3);
        let p: QuantileThresholdParams = params(&[("side", ParamValue::Text("both".into()))]);
        let whole = run_stream::<QuantileThreshold>(p.clone(), &values);
        let split = run_with_restore::<QuantileThreshold>(p, &values, 1700);
        assert_eq!(format!("{whole:?}"), format!("{split:?}"));
    }
}
