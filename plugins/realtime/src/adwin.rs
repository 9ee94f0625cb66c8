//! ADWIN (Bifet & Gavaldà 2007): an adaptive window that drops its older part whenever the
//! two parts' means differ by more than chance allows; the exponential-histogram version
//! (ADWIN2), with River's defaults.

use adr_sdk::state::{Reader, Writer};
use adr_sdk::{Detector, DetectorError, ErrorKind, Score};

use crate::online::{finite, online_detector, Online};

adr_sdk::param_choice! {
    /// What the window does after a change.
    pub enum OnChange {
        /// Start again from an empty window (River's ADWIN drift detector).
        Reset = "reset",
        /// Drop the oldest buckets until no cut is significant (the paper's ADWIN).
        Shrink = "shrink",
    }
}

adr_sdk::params! {
    /// Parameters of [`Adwin`].
    pub struct AdwinParams {
        /// Confidence (δ): smaller means fewer, surer changes.
        delta: f64 = 0.002, min > 0.0, max < 1.0;
        /// Points between tests of the window.
        clock: usize = 32, min >= 1, max <= 10_000_000;
        /// Buckets of each size before two merge (memory is O(this · log n)).
        max_buckets: usize = 5, min >= 2, max <= 10_000;
        /// Points each part of a cut must hold.
        min_window: usize = 5, min >= 1, max <= 10_000_000;
        /// Points before the first test.
        grace: usize = 10, min >= 1, max <= 10_000_000;
        /// After a change: `reset` the window (River) or `shrink` it (the paper).
        on_change: OnChange = OnChange::Reset;
    }
}

/// One row of the histogram: buckets of 2^row points each, oldest first.
#[derive(Debug, Clone, Default, PartialEq)]
struct Row {
    totals: Vec<f64>,
    variances: Vec<f64>,
}

/// The adaptive window as an exponential histogram.
#[derive(Debug)]
pub struct Adwin {
    params: AdwinParams,
    /// Row i holds buckets of 2^i points; row 0 the newest.
    rows: Vec<Row>,
    width: u64,
    total: f64,
    /// Sum of squared deviations from the window's mean.
    variance: f64,
    tick: u64,
}

impl Adwin {
    fn insert(&mut self, x: f64) {
        if self.rows.is_empty() {
            self.rows.push(Row::default());
        }
        self.width += 1;
        if self.width > 1 {
            let w = self.width as f64;
            let d = x - self.total / (w - 1.0);
            self.variance += (w - 1.0) * d * d / w;
        }
        self.total += x;
        self.rows[0].totals.push(x);
        self.rows[0].variances.push(0.0);
        // merge the two oldest buckets of a full row into the next
        let mut i = 0;
        while i < self.rows.len() && self.rows[i].totals.len() > self.params.max_buckets {
            let size = (1u64 << i) as f64;
            let row = &mut self.rows[i];
            let (t1, t2) = (row.totals[0], row.totals[1]);
            let (v1, v2) = (row.variances[0], row.variances[1]);
            row.totals.drain(..2);
            row.variances.drain(..2);
            let d = t1 / size - t2 / size;
            let merged_var = v1 + v2 + size * size * d * d / (2.0 * size);
            if i + 1 == self.rows.len() {
                self.rows.push(Row::default());
            }
            self.rows[i + 1].totals.push(t1 + t2);
            self.rows[i + 1].variances.push(merged_var);
            i += 1;
        }
    }

    /// Drops the oldest bucket.
    fn drop_oldest(&mut self) {
        let last = self.rows.len() - 1;
        let size = 1u64 << last;
        let (total, var) = (
            self.rows[last].totals.remove(0),
            self.rows[last].variances.remove(0),
        );
        self.width -= size;
        self.total -= total;
        if self.width > 0 {
            let (n1, w) = (size as f64, self.width as f64);
            let d = total / n1 - self.total / w;
            self.variance -= var + n1 * w * d * d / (n1 + w);
        } else {
            self.variance = 0.0;
        }
        if self.rows[last].totals.is_empty() {
            self.rows.pop();
        }
    }

    /// The largest |μ₀ − μ₁| / ε over the cuts of the window (≥ 1 means a change).
    fn worst_cut(&self) -> f64 {
        let p = &self.params;
        let (w, m) = (self.width as f64, p.min_window as f64);
        let window_variance = self.variance / w;
        let delta_prime = (2.0 * w.ln() / p.delta).ln();
        let (mut n0, mut u0) = (0.0, 0.0);
        let (mut n1, mut u1) = (w, self.total);
        let mut worst = 0.0f64;
        for (i, row) in self.rows.iter().enumerate().rev() {
            let size = (1u64 << i) as f64;
            for &t in &row.totals {
                n0 += size;
                n1 -= size;
                u0 += t;
                u1 -= t;
                if n1 < m {
                    return worst;
                }
                if n0 >= m {
                    let recip = 1.0 / (n0 - m + 1.0) + 1.0 / (n1 - m + 1.0);
                    let eps = (2.0 * recip * window_variance * delta_prime).sqrt()
                        + 2.0 / 3.0 * delta_prime * recip;
                    let diff = (u1 / n1 - u0 / n0).abs();
                    worst = worst.max(if eps > 0.0 {
                        diff / eps
                    } else if diff > 0.0 {
                        f64::INFINITY
                    } else {
                        0.0
                    });
                }
            }
        }
        worst
    }

    /// The points in the window.
    pub fn width(&self) -> u64 {
        self.width
    }
}

impl Online for Adwin {
    fn step(&mut self, _ts: i64, row: &[f64]) -> Score {
        let Some(x) = finite(row) else {
            return Score::UNDETERMINED;
        };
        self.insert(x);
        self.tick += 1;
        let p = &self.params;
        if !self.tick.is_multiple_of(p.clock as u64) || self.width <= p.grace as u64 {
            return Score::from_ratio(0.0, 1.0);
        }
        let raw = self.worst_cut();
        if raw >= 1.0 {
            match self.params.on_change {
                OnChange::Reset => {
                    self.rows.clear();
                    (self.width, self.total, self.variance, self.tick) = (0, 0.0, 0.0, 0);
                }
                OnChange::Shrink => {
                    while self.width > 0 && self.worst_cut() >= 1.0 {
                        self.drop_oldest();
                    }
                }
            }
        }
        Score::from_ratio(raw, 1.0)
    }
}

impl Adwin {
    fn save_state(&self, w: &mut Writer) {
        w.count(self.width as usize);
        w.number(self.total);
        w.number(self.variance);
        w.count(self.tick as usize);
        w.count(self.rows.len());
        for row in &self.rows {
            w.numbers(&row.totals);
            w.numbers(&row.variances);
        }
    }

    fn restore_state(params: &AdwinParams, r: &mut Reader<'_>) -> Result<Self, DetectorError> {
        let mut d = Adwin::new(params.clone(), &[])?;
        d.width = r.count(usize::MAX)? as u64;
        d.total = r.number()?;
        d.variance = r.number()?;
        d.tick = r.count(usize::MAX)? as u64;
        let rows = r.count(64)?;
        for _ in 0..rows {
            let row = Row {
                totals: r.numbers()?,
                variances: r.numbers()?,
            };
            if row.totals.len() != row.variances.len() || row.totals.len() > params.max_buckets {
                return Err(DetectorError::new(
                    ErrorKind::IncompatibleState,
                    "state is corrupt: a bucket row does not fit",
                ));
            }
            d.rows.push(row);
        }
        let counted: u64 = d
            .rows
            .iter()
            .enumerate()
            .map(|(i, r)| r.totals.len() as u64 * (1 << i))
            .sum();
        if counted != d.width {
            return Err(DetectorError::new(
                ErrorKind::IncompatibleState,
                format!(
                    "state is corrupt: buckets of {counted} points for a window of {}",
                    d.width
                ),
            ));
        }
        Ok(d)
    }
}

impl Detector for Adwin {
    type Params = AdwinParams;
    const NAME: &'static str = "adwin";
    const SUMMARY: &'static str = "ADWIN: adaptive windowing, drops the past when the mean changes";
    const DOC: &'static str = "\
Every `clock` points (after `grace`), each cut of the window into older and newer parts of at \
least `min_window` points is tested: a change when |μ₀ − μ₁| ≥ ε, \
ε = √(2·m·σ²·δ′) + ⅔·δ′·m, m = 1/(n₀ − min_window + 1) + 1/(n₁ − min_window + 1), \
δ′ = ln(2·ln(n)/δ), σ² the window's variance (River's form of ADWIN2). On a change the window \
starts again empty (`on_change = reset`, River's drift detector: the same alarms as River's \
ADWIN on the peers' series) or drops its oldest buckets until no cut is significant \
(`shrink`, the paper). Raw score: the largest |μ₀ − μ₁| / ε over \
the cuts, on test points; 0 on the others. Normalised: raw / (raw + 1), 0.5 at the bound. \
NaN/inf inputs: undetermined, never learnt. Memory: O(max_buckets · log₂ n) numbers.";

    fn new(params: AdwinParams, _inputs: &[String]) -> Result<Self, DetectorError> {
        Ok(Adwin {
            params,
            rows: Vec::new(),
            width: 0,
            total: 0.0,
            variance: 0.0,
            tick: 0,
        })
    }

    fn state_bytes(&self) -> Option<u64> {
        Some(
            64 * 2 * crate::online::grown(self.params.max_buckets + 1, 8)
                + crate::online::FIXED_BYTES,
        )
    }

    online_detector!();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{noise, params, run_stream, run_with_restore};
    use adr_sdk::Verdict;

    #[test]
    fn the_window_keeps_exact_sums() {
        let values = noise(1000, 12);
        let mut d =
            Adwin::new(params(&[("clock", adr_sdk::ParamValue::Int(100_000))]), &[]).unwrap();
        for &x in &values {
            d.step(0, &[x]);
        }
        assert_eq!(d.width(), 1000);
        let mean = values.iter().sum::<f64>() / 1000.0;
        let ss: f64 = values.iter().map(|x| (x - mean) * (x - mean)).sum();
        assert!((d.total - mean * 1000.0).abs() < 1e-9);
        assert!(
            (d.variance / ss - 1.0).abs() < 1e-9,
            "{} vs {ss}",
            d.variance
        );
        // memory is logarithmic
        assert!(d.rows.iter().map(|r| r.totals.len()).sum::<usize>() <= 5 * 11);
    }

    #[test]
    fn a_mean_shift_empties_or_shrinks_the_window() {
        let mut values = noise(4000, 3);
        values[2000..].iter_mut().for_each(|v| *v += 1.5);
        for (on_change, kept) in [("reset", 0..1), ("shrink", 10..600)] {
            let p = params(&[("on_change", adr_sdk::ParamValue::Text(on_change.into()))]);
            let mut d = Adwin::new(p, &[]).unwrap();
            let first = values
                .iter()
                .position(|&x| d.step(0, &[x]).verdict == Verdict::Anomaly)
                .expect("a change");
            assert!((2000..2200).contains(&first), "{on_change}: {first}");
            // reset: nothing kept; shrink: the newer part, after the change
            assert!(
                kept.contains(&d.width()),
                "{on_change}: width {}",
                d.width()
            );
        }
        let calm = run_stream::<Adwin>(params(&[]), &noise(4000, 3));
        assert!(calm.iter().all(|s| s.verdict != Verdict::Anomaly));
    }

    #[test]
    fn a_restored_state_continues_exactly() {
        let mut values = noise(3000, 5);
        values[1500..].iter_mut().for_each(|v| *v -= 2.0);
        let whole = run_stream::<Adwin>(params(&[]), &values);
        let split = run_with_restore::<Adwin>(params(&[]), &values, 1000);
        assert_eq!(format!("{whole:?}"), format!("{split:?}"));
    }
}
