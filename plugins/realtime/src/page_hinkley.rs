//! The Page-Hinkley test for a shift in the mean, as River's `drift.PageHinkley`.

use adr_sdk::state::{Reader, Writer};
use adr_sdk::{Detector, DetectorError, Score};

use crate::online::{finite, online_detector, Online, Side};

adr_sdk::params! {
    /// Parameters of [`PageHinkley`].
    pub struct PageHinkleyParams {
        /// Points since the start (or the last alarm) before the test is made.
        min_points: usize = 30, min >= 1;
        /// Tolerated drift per point (δ).
        delta: f64 = 0.005, min >= 0.0;
        /// Alarm level of the cumulative statistic (λ), in the input's units.
        threshold: f64 = 50.0, min > 0.0;
        /// Forgetting factor of the cumulative sums (α); 1 never forgets.
        alpha: f64 = 0.9999, min > 0.0, max <= 1.0;
        /// Which shifts count: `both`, `upper` or `lower`.
        side: Side = Side::Both;
    }
}

/// Cumulative deviations from the running mean against their running extremes.
#[derive(Debug)]
pub struct PageHinkley {
    params: PageHinkleyParams,
    n: u64,
    mean: f64,
    sum_up: f64,
    sum_down: f64,
    min_up: f64,
    max_down: f64,
}

impl PageHinkley {
    fn fresh(params: PageHinkleyParams) -> Self {
        PageHinkley {
            params,
            n: 0,
            mean: 0.0,
            sum_up: 0.0,
            sum_down: 0.0,
            min_up: f64::INFINITY,
            // River starts the maximum at −1, not −inf; kept so both give the same alarms.
            max_down: -1.0,
        }
    }
}

impl Online for PageHinkley {
    fn step(&mut self, _ts: i64, row: &[f64]) -> Score {
        let Some(x) = finite(row) else {
            return Score::UNDETERMINED;
        };
        let p = &self.params;
        self.n += 1;
        self.mean += (x - self.mean) / self.n as f64;
        let dev = x - self.mean;
        self.sum_up = p.alpha * self.sum_up + dev - p.delta;
        self.sum_down = p.alpha * self.sum_down + dev + p.delta;
        self.min_up = self.min_up.min(self.sum_up);
        self.max_down = self.max_down.max(self.sum_down);
        if self.n < p.min_points as u64 {
            return Score::UNDETERMINED;
        }
        let raw = p
            .side
            .pick(self.sum_up - self.min_up, self.max_down - self.sum_down);
        // River alarms past the threshold, not at it: on integer data a tie is common,
        // and alarming on it would move every later alarm (the test restarts).
        let score = Score::past_threshold(raw, p.threshold);
        if raw > p.threshold {
            *self = Self::fresh(self.params.clone());
        }
        score
    }
}

impl PageHinkley {
    fn save_state(&self, w: &mut Writer) {
        w.count(self.n as usize);
        for x in [
            self.mean,
            self.sum_up,
            self.sum_down,
            self.min_up,
            self.max_down,
        ] {
            w.number(x);
        }
    }

    fn restore_state(
        params: &PageHinkleyParams,
        r: &mut Reader<'_>,
    ) -> Result<Self, DetectorError> {
        Ok(PageHinkley {
            params: params.clone(),
            n: r.count(usize::MAX)? as u64,
            mean: r.number()?,
            sum_up: r.number()?,
            sum_down: r.number()?,
            min_up: r.number()?,
            max_down: r.number()?,
        })
    }
}

impl Detector for PageHinkley {
    type Params = PageHinkleyParams;
    const NAME: &'static str = "page_hinkley";
    const SUMMARY: &'static str =
        "Page-Hinkley test for a shift in the mean (as River's PageHinkley)";
    const DOC: &'static str = "\
With x̄ₙ the running mean, Uₙ = α·Uₙ₋₁ + (xₙ − x̄ₙ − δ) and Dₙ = α·Dₙ₋₁ + (xₙ − x̄ₙ + δ). \
Raw score: max(Uₙ − min U, max D − Dₙ) (or one of them, see `side`), in the input's units. \
Normalised: raw / (raw + threshold); an alarm when raw > threshold (River's test), so a raw \
score equal to the threshold is normal, just below 0.5. Undetermined for the first \
`min_points` points after the start or an alarm; each alarm restarts the test. River's \
PageHinkley with the same parameters raises its drift flag on the same points, ties \
included. NaN/inf inputs: undetermined, never learnt.";

    fn new(params: PageHinkleyParams, _inputs: &[String]) -> Result<Self, DetectorError> {
        Ok(Self::fresh(params))
    }

    fn state_bytes(&self) -> Option<u64> {
        Some(crate::online::FIXED_BYTES)
    }

    online_detector!();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{noise, params, run_stream};
    use adr_sdk::Verdict;

    #[test]
    fn a_level_shift_raises_one_alarm() {
        let mut values = noise(1000, 3);
        values[500..].iter_mut().for_each(|v| *v += 3.0);
        let p: PageHinkleyParams = params(&[]);
        let scores = run_stream::<PageHinkley>(p, &values);
        let alarms: Vec<usize> = (0..values.len())
            .filter(|&i| scores[i].verdict == Verdict::Anomaly)
            .collect();
        assert_eq!(alarms.len(), 1, "{alarms:?}");
        assert!((500..540).contains(&alarms[0]), "{alarms:?}");
    }
}
