//! Page's two-sided tabular CUSUM, restarting after each alarm.

use adr_sdk::state::{Reader, Writer};
use adr_sdk::{Detector, DetectorError, Score};

use crate::online::{finite, online_detector, standardise, Online, Side, Welford};

adr_sdk::params! {
    /// Parameters of [`Cusum`].
    pub struct CusumParams {
        /// Slack per point, in standard deviations of the reference segment: shifts smaller
        /// than about 2k are ignored.
        k: f64 = 0.5, min >= 0.0;
        /// Decision interval, in standard deviations: an alarm when a sum reaches it.
        h: f64 = 5.0, min > 0.0;
        /// Points that set the reference mean and deviation, at the start and after each
        /// alarm (they are undetermined).
        warmup: usize = 30, min >= 2;
        /// Which shifts count: `both`, `upper` or `lower`.
        side: Side = Side::Both;
    }
}

/// Cumulative sums of standardised deviations from a reference segment's mean.
#[derive(Debug)]
pub struct Cusum {
    params: CusumParams,
    reference: Welford,
    up: f64,
    down: f64,
}

impl Online for Cusum {
    fn step(&mut self, _ts: i64, row: &[f64]) -> Score {
        let Some(x) = finite(row) else {
            return Score::UNDETERMINED;
        };
        let p = &self.params;
        if self.reference.n < p.warmup as u64 {
            self.reference.push(x);
            return Score::UNDETERMINED;
        }
        let z = standardise(x, self.reference.mean, self.reference.variance().sqrt());
        self.up = (self.up + z - p.k).max(0.0);
        self.down = (self.down - z - p.k).max(0.0);
        let raw = p.side.pick(self.up, self.down);
        let score = Score::from_ratio(raw, p.h);
        if raw >= p.h {
            // A new regime: learn its reference from the next points.
            self.reference = Welford::default();
            self.up = 0.0;
            self.down = 0.0;
        }
        score
    }
}

impl Cusum {
    fn save_state(&self, w: &mut Writer) {
        self.reference.save(w);
        w.number(self.up);
        w.number(self.down);
    }

    fn restore_state(params: &CusumParams, r: &mut Reader<'_>) -> Result<Self, DetectorError> {
        Ok(Cusum {
            params: params.clone(),
            reference: Welford::restore(r)?,
            up: r.number()?,
            down: r.number()?,
        })
    }
}

impl Detector for Cusum {
    type Params = CusumParams;
    const NAME: &'static str = "cusum";
    const SUMMARY: &'static str =
        "two-sided CUSUM of standardised deviations, restarting after each alarm";
    const DOC: &'static str = "\
z = (x − μ₀)/σ₀ with μ₀, σ₀ the mean and population deviation of the `warmup` points that \
open the current segment. S⁺ ← max(0, S⁺ + z − k), S⁻ ← max(0, S⁻ − z − k) (Page 1954; \
Montgomery's tabular form). Raw score: max(S⁺, S⁻) (or one of them, see `side`), in \
standard deviations. Normalised: raw / (raw + h), 0.5 at the decision interval h. On an \
alarm both sums restart and the next `warmup` points (undetermined) set the new reference, \
so each shift raises one alarm. A zero σ₀ makes any other value an infinite z. NaN/inf \
inputs: undetermined, never learnt.";

    fn new(params: CusumParams, _inputs: &[String]) -> Result<Self, DetectorError> {
        Ok(Cusum {
            params,
            reference: Welford::default(),
            up: 0.0,
            down: 0.0,
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
    use crate::testing::{noise, params, run_stream};
    use adr_sdk::{ParamValue, Verdict};

    #[test]
    fn one_alarm_per_shift_soon_after_it() {
        let mut values = noise(600, 7);
        for (i, v) in values.iter_mut().enumerate() {
            if (200..400).contains(&i) {
                *v += 2.0;
            } else if i >= 400 {
                *v -= 1.0;
            }
        }
        let p: CusumParams = params(&[
            ("warmup", ParamValue::Int(50)),
            ("h", ParamValue::Float(8.0)),
        ]);
        let scores = run_stream::<Cusum>(p, &values);
        let alarms: Vec<usize> = (0..values.len())
            .filter(|&i| scores[i].verdict == Verdict::Anomaly)
            .collect();
        assert_eq!(alarms.len(), 2, "{alarms:?}");
        assert!((200..210).contains(&alarms[0]), "{alarms:?}");
        assert!((400..420).contains(&alarms[1]), "{alarms:?}");
    }

    #[test]
    fn the_sums_are_page_s_recursion() {
        let values = [0.0, 2.0, 0.0, 2.0, 3.0, 5.0, 1.0];
        let p: CusumParams = params(&[
            ("warmup", ParamValue::Int(4)),
            ("h", ParamValue::Float(100.0)),
        ]);
        let scores = run_stream::<Cusum>(p, &values);
        // reference mean 1, population sd 1: z = 2, 4, 0
        assert!((scores[4].raw - 1.5).abs() < 1e-12);
        assert!((scores[5].raw - 5.0).abs() < 1e-12);
        assert!((scores[6].raw - 4.5).abs() < 1e-12);
    }
}
