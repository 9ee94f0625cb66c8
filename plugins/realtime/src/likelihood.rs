//! Anomaly likelihood (after Ahmad, Lavin, Purdy & Agha 2017, the post-processing of
//! Numenta's HTM detector): how surprising the recent average of a score is against the
//! score's own distribution over a long window. Made to sit on top of another detector's
//! raw score, where a fixed cut-off would mean something different on every series.

use adr_sdk::state::{Reader, Writer};
use adr_sdk::{Bounded, Detector, DetectorError, ErrorKind, Score};
use statrs::function::erf::erfc;

use crate::online::{finite, online_detector, standardise, Online};

adr_sdk::params! {
    /// Parameters of [`Likelihood`].
    pub struct LikelihoodParams {
        /// Points averaged into the recent level (the point itself and those before it).
        short: usize = 10, min >= 1, max <= 10_000_000;
        /// Points before the current one whose mean and deviation are the reference.
        long: usize = 8640, min >= 2, max <= 10_000_000;
        /// Points the reference must hold before a point is judged.
        min_points: usize = 100, min >= 2, max <= 10_000_000;
        /// Tail probability at the alarm: the recent level is an anomaly when a normal
        /// one would exceed it with at most this probability.
        q: f64 = 1e-3, min > 0.0, max < 1.0;
        /// Judged points after an alarm that score 0, so one episode alarms once.
        hold: usize = 0;
    }
}

/// The smallest deviation, as a share of the mean, the reference is given: a score that
/// has been nearly constant must not make a rounding-sized change infinitely surprising.
const MIN_RELATIVE_DEVIATION: f64 = 1e-3;

/// The last `short` and `long` points, with the long window's sums.
#[derive(Debug)]
pub struct Likelihood {
    params: LikelihoodParams,
    recent: Bounded<f64>,
    history: Bounded<f64>,
    /// The history's sums of `x − shift` and its square; the shift (the mean at the last
    /// recomputation) keeps the variance free of cancellation.
    shift: f64,
    sum: f64,
    sum_sq: f64,
    /// Points learnt since the sums were recomputed from the history.
    since_exact: usize,
    /// Judged points still to be held after an alarm.
    held: usize,
}

impl Likelihood {
    /// The tail probability of the recent level against the history, once it is long
    /// enough.
    fn tail(&self) -> Option<f64> {
        let n = self.history.len();
        if n < self.params.min_points {
            return None;
        }
        let nf = n as f64;
        let mean = self.shift + self.sum / nf;
        let variance = ((self.sum_sq - self.sum * self.sum / nf) / (nf - 1.0)).max(0.0);
        let deviation = variance.sqrt().max(MIN_RELATIVE_DEVIATION * mean.abs());
        let level = self.recent.iter().sum::<f64>() / self.recent.len() as f64;
        let z = standardise(level, mean, deviation);
        Some(0.5 * erfc(z / std::f64::consts::SQRT_2))
    }

    /// Learns `x`; a history that cannot grow (no memory) learns nothing more.
    fn learn(&mut self, x: f64) {
        let Ok(left) = self.history.push(x) else {
            return;
        };
        let d = x - self.shift;
        self.sum += d;
        self.sum_sq += d * d;
        if let Some(old) = left {
            let old = old - self.shift;
            self.sum -= old;
            self.sum_sq -= old * old;
        }
        self.since_exact += 1;
        if self.since_exact >= self.params.long {
            self.recompute();
        }
    }

    /// The sums from the history itself, re-centred on its mean: what the running
    /// updates have rounded away is gone.
    fn recompute(&mut self) {
        let n = self.history.len().max(1) as f64;
        self.shift = self.history.iter().sum::<f64>() / n;
        self.sum = self.history.iter().map(|x| x - self.shift).sum();
        self.sum_sq = self.history.iter().map(|x| (x - self.shift).powi(2)).sum();
        self.since_exact = 0;
    }
}

impl Online for Likelihood {
    fn step(&mut self, _ts: i64, row: &[f64]) -> Score {
        let Some(x) = finite(row) else {
            return Score::UNDETERMINED;
        };
        if self.recent.push(x).is_err() {
            return Score::UNDETERMINED;
        }
        let alarm_at = -self.params.q.log10();
        let score = match self.tail() {
            None => Score::UNDETERMINED,
            Some(_) if self.held > 0 => {
                self.held -= 1;
                Score::from_ratio(0.0, alarm_at)
            }
            Some(tail) => {
                // decimal digits of surprise: -log10 keeps the far tail apart, where the
                // likelihood itself would round to 1
                let raw = -tail.log10();
                if raw >= alarm_at {
                    self.held = self.params.hold;
                }
                Score::from_ratio(raw, alarm_at)
            }
        };
        self.learn(x);
        score
    }
}

impl Likelihood {
    fn save_state(&self, w: &mut Writer) {
        for part in [&self.recent, &self.history] {
            let (a, b) = part.as_slices();
            w.count(a.len() + b.len());
            w.numbers(a);
            w.numbers(b);
        }
        w.numbers(&[self.shift, self.sum, self.sum_sq]);
        w.count(self.since_exact);
        w.count(self.held);
    }

    fn restore_state(params: &LikelihoodParams, r: &mut Reader<'_>) -> Result<Self, DetectorError> {
        let mut read = |limit: usize| -> Result<Bounded<f64>, DetectorError> {
            let n = r.count(limit)?;
            let (first, second) = (r.numbers()?, r.numbers()?);
            if first.len() + second.len() != n
                || first.iter().chain(&second).any(|x| !x.is_finite())
            {
                return Err(corrupt(format!(
                    "{} points where {n} were written",
                    first.len() + second.len()
                )));
            }
            Bounded::from_values(limit, first.into_iter().chain(second))
        };
        let recent = read(params.short)?;
        let history = read(params.long)?;
        let sums = r.numbers()?;
        let [shift, sum, sum_sq] = sums[..] else {
            return Err(corrupt(format!("{} sums, not 3", sums.len())));
        };
        let since_exact = r.count(params.long)?;
        let held = r.count(params.hold)?;
        Ok(Likelihood {
            params: params.clone(),
            recent,
            history,
            shift,
            sum,
            sum_sq,
            since_exact,
            held,
        })
    }
}

fn corrupt(why: String) -> DetectorError {
    DetectorError::new(
        ErrorKind::IncompatibleState,
        format!("state is corrupt: {why}"),
    )
}

impl Detector for Likelihood {
    type Params = LikelihoodParams;
    const NAME: &'static str = "likelihood";
    const SUMMARY: &'static str =
        "anomaly likelihood: the recent mean of a score against its long-run distribution";
    const DOC: &'static str = "\
With m and s the mean and standard deviation (n − 1) of the `long` points before x (s at \
least 0.001·|m|), and a the mean of the last `short` points including x: z = (a − m) / s \
and the tail P = Q(z), the standard normal's upper tail (Ahmad et al. 2017's anomaly \
likelihood is 1 − P). Raw score: −log10 P, at least −log10 q exactly when P ≤ q. \
Normalised: raw / (raw − log10 q). After an alarm the next `hold` judged points score 0. \
Undetermined until `min_points` points are in the reference. Meant as a threshold on another \
detector's raw score (`threshold realtime.likelihood(q = 1e-3)`), where the score's scale \
differs between series. NaN/inf inputs: undetermined, never learnt. Memory: `short` + \
`long` points per key.";

    fn new(params: LikelihoodParams, _inputs: &[String]) -> Result<Self, DetectorError> {
        Ok(Likelihood {
            recent: Bounded::new(params.short),
            history: Bounded::new(params.long),
            shift: 0.0,
            sum: 0.0,
            sum_sq: 0.0,
            since_exact: 0,
            held: 0,
            params,
        })
    }

    fn state_bytes(&self) -> Option<u64> {
        Some(
            Bounded::<f64>::bytes(self.params.short)
                + Bounded::<f64>::bytes(self.params.long)
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

    fn likelihood(list: &[(&str, i64)]) -> LikelihoodParams {
        let list: Vec<_> = list
            .iter()
            .map(|(n, v)| (*n, ParamValue::Int(*v)))
            .collect();
        params(&list)
    }

    #[test]
    fn the_tail_is_computed_by_hand() {
        let p = likelihood(&[("short", 2), ("long", 4), ("min_points", 4)]);
        let values = [1.0, 2.0, 3.0, 4.0, 5.0, 3.0];
        let scores = run_stream::<Likelihood>(p, &values);
        assert!(scores[..4]
            .iter()
            .all(|s| s.verdict == Verdict::Undetermined));
        // 5: history [1, 2, 3, 4] (m 2.5, s √(5/3)), recent [4, 5] → a 4.5
        let z = (4.5 - 2.5) / (5.0f64 / 3.0).sqrt();
        let want = -(0.5 * erfc(z / std::f64::consts::SQRT_2)).log10();
        assert!(
            (scores[4].raw - want).abs() < 1e-12,
            "{} vs {want}",
            scores[4].raw
        );
        // 3: history [2, 3, 4, 5] (m 3.5), recent [5, 3] → a 4
        let z = (4.0 - 3.5) / (5.0f64 / 3.0).sqrt();
        let want = -(0.5 * erfc(z / std::f64::consts::SQRT_2)).log10();
        assert!((scores[5].raw - want).abs() < 1e-12);
    }

    #[test]
    fn the_alarm_rate_on_noise_with_no_averaging_is_q() {
        let values = noise(100_000, 21);
        let p: LikelihoodParams = params(&[
            ("short", ParamValue::Int(1)),
            ("long", ParamValue::Int(5000)),
            ("q", ParamValue::Float(0.01)),
        ]);
        let scores = run_stream::<Likelihood>(p, &values);
        let judged = scores.iter().filter(|s| s.verdict != Verdict::Undetermined);
        let (n, alarms) = judged.fold((0, 0), |(n, a), s| {
            (n + 1, a + usize::from(s.verdict == Verdict::Anomaly))
        });
        let rate = alarms as f64 / n as f64;
        assert!((0.009..=0.011).contains(&rate), "rate {rate}");
    }

    #[test]
    fn a_step_alarms_once_then_holds() {
        let mut values = noise(3000, 2);
        values[2000..].iter_mut().for_each(|x| *x += 8.0);
        let p: LikelihoodParams = params(&[
            ("short", ParamValue::Int(1)),
            ("long", ParamValue::Int(1000)),
            ("hold", ParamValue::Int(50)),
            ("q", ParamValue::Float(1e-6)),
        ]);
        let scores = run_stream::<Likelihood>(p, &values);
        let alarms: Vec<usize> = (0..values.len())
            .filter(|&i| scores[i].verdict == Verdict::Anomaly)
            .collect();
        assert_eq!(alarms.first(), Some(&2000), "{alarms:?}");
        assert!(scores[2001..=2050].iter().all(|s| s.normalised == 0.0));
        // the raised level keeps alarming, once per hold, until the reference has absorbed it
        assert!(alarms.windows(2).all(|w| w[1] - w[0] > 50), "{alarms:?}");
    }

    #[test]
    fn a_constant_score_does_not_make_rounding_an_alarm() {
        let mut values = vec![0.25; 500];
        values.push(0.25 + 1e-12);
        values.push(0.0);
        let scores = run_stream::<Likelihood>(params(&[]), &values);
        assert_eq!(scores[500].verdict, Verdict::Normal);
        assert_eq!(scores[501].verdict, Verdict::Normal);
        // a constant 0 has no deviation: anything above it is certain
        let mut zeros = vec![0.0; 200];
        zeros.push(1.0);
        let scores = run_stream::<Likelihood>(params(&[]), &zeros);
        assert_eq!(scores[200].normalised, 1.0);
    }

    #[test]
    fn a_restored_state_continues_exactly() {
        let values = noise(20_000, 8);
        let p = likelihood(&[("long", 3000), ("hold", 20)]);
        let whole = run_stream::<Likelihood>(p.clone(), &values);
        for cut in [3, 2999, 12_345] {
            let split = run_with_restore::<Likelihood>(p.clone(), &values, cut);
            assert_eq!(format!("{whole:?}"), format!("{split:?}"), "cut {cut}");
        }
    }
}
