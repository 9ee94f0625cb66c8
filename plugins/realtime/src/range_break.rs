//! Range break: a value beyond the range of the earlier values by more than a fraction of
//! that range. This is the "spatial anomaly" that Numenta's HTM detector adds to its
//! anomaly likelihood on NAB (a value more than 5 % of the range past the smallest or
//! largest seen so far). It catches a level the series has never reached, however
//! smoothly it gets there, which distance- and likelihood-based detectors can miss.

use std::collections::VecDeque;

use adr_sdk::state::{Reader, Writer};
use adr_sdk::{Detector, DetectorError, ErrorKind, Score};

use crate::online::{finite, online_detector, Online, Side};

adr_sdk::params! {
    /// Parameters of [`RangeBreak`].
    pub struct RangeBreakParams {
        /// How far past the earlier values' range (max − min) a value must go, as a
        /// fraction of that range (HTM's spatial tolerance).
        tolerance: f64 = 0.05, min > 0.0;
        /// Earlier values the range is taken over: the last `memory`, or all of them (0).
        memory: usize = 0, max <= 10_000_000;
        /// Values learnt before any is judged (undetermined): the first values of a series
        /// widen its range almost every time, and would each alarm.
        warmup: usize = 100;
        /// Which breaks count: `both`, `upper` (new highs: breakouts, pumps) or `lower`
        /// (new lows: crashes).
        side: Side = Side::Both;
    }
}

/// The smallest and largest of the values in a sliding window, each a monotonic queue of
/// (position, value): the front is the extreme, and a value leaves when a newer one is as
/// extreme or it falls out of the window.
#[derive(Debug, Default)]
struct Extremes {
    /// Values in increasing order from the front (the front is the minimum).
    low: VecDeque<(u64, f64)>,
    /// Values in decreasing order from the front (the front is the maximum).
    high: VecDeque<(u64, f64)>,
}

impl Extremes {
    /// (min, max) of the window, if it holds a value.
    fn range(&self) -> Option<(f64, f64)> {
        Some((self.low.front()?.1, self.high.front()?.1))
    }

    /// Adds value `x` at position `at`; with `memory > 0`, drops what is then older than
    /// the last `memory` positions.
    fn push(&mut self, at: u64, x: f64, memory: usize) {
        while self.low.back().is_some_and(|&(_, v)| v >= x) {
            self.low.pop_back();
        }
        while self.high.back().is_some_and(|&(_, v)| v <= x) {
            self.high.pop_back();
        }
        self.low.push_back((at, x));
        self.high.push_back((at, x));
        if memory == 0 {
            // nothing expires, so only the fronts can ever be read
            self.low.truncate(1);
            self.high.truncate(1);
        } else {
            let oldest = (at + 1).saturating_sub(memory as u64);
            for queue in [&mut self.low, &mut self.high] {
                while queue.front().is_some_and(|&(i, _)| i < oldest) {
                    queue.pop_front();
                }
            }
        }
    }
}

/// The range of the earlier values, kept in O(1) memory for the whole history and in
/// O(`memory`) at worst (a monotonic series) for a window.
#[derive(Debug)]
pub struct RangeBreak {
    params: RangeBreakParams,
    /// Finite values learnt.
    seen: u64,
    extremes: Extremes,
}

impl Online for RangeBreak {
    fn step(&mut self, _ts: i64, row: &[f64]) -> Score {
        let Some(x) = finite(row) else {
            return Score::UNDETERMINED;
        };
        let score = match self.extremes.range() {
            _ if self.seen < self.params.warmup as u64 => Score::UNDETERMINED,
            // a range of one value gives no scale to measure a break by
            Some((low, high)) if high > low => {
                let side = self.params.side;
                let excess = side.pick((x - high).max(0.0), (low - x).max(0.0));
                Score::from_ratio(excess / (high - low), self.params.tolerance)
            }
            _ => Score::UNDETERMINED,
        };
        self.extremes.push(self.seen, x, self.params.memory);
        self.seen += 1;
        score
    }
}

impl RangeBreak {
    fn save_state(&self, w: &mut Writer) {
        w.count(self.seen as usize);
        for queue in [&self.extremes.low, &self.extremes.high] {
            w.count(queue.len());
            for &(at, v) in queue {
                w.count(at as usize);
                w.number(v);
            }
        }
    }

    fn restore_state(params: &RangeBreakParams, r: &mut Reader<'_>) -> Result<Self, DetectorError> {
        let seen = r.count(usize::MAX)? as u64;
        let held = if params.memory == 0 { 1 } else { params.memory };
        let mut queues = [VecDeque::new(), VecDeque::new()];
        for queue in &mut queues {
            for _ in 0..r.count(held)? {
                queue.push_back((r.count(usize::MAX)? as u64, r.number()?));
            }
        }
        let [low, high] = queues;
        let windowed = params.memory > 0;
        let oldest = if windowed {
            seen.saturating_sub(params.memory as u64)
        } else {
            0
        };
        // each queue holds a value once one was seen (a window's, the newest), positions in
        // order and within the window, values strictly monotonic
        let sound = |queue: &VecDeque<(u64, f64)>, in_order: fn(f64, f64) -> bool| {
            queue.is_empty() == (seen == 0)
                && (!windowed || queue.back().is_none_or(|&(at, _)| at + 1 == seen))
                && queue
                    .iter()
                    .all(|&(at, v)| v.is_finite() && at >= oldest && at < seen)
                && queue
                    .iter()
                    .zip(queue.iter().skip(1))
                    .all(|(a, b)| a.0 < b.0 && in_order(a.1, b.1))
        };
        if !sound(&low, |a, b| a < b) || !sound(&high, |a, b| a > b) {
            return Err(DetectorError::new(
                ErrorKind::IncompatibleState,
                format!(
                    "state is corrupt: extremes of {} and {} values after {seen} points \
                     (memory {})",
                    low.len(),
                    high.len(),
                    params.memory
                ),
            ));
        }
        Ok(RangeBreak {
            params: params.clone(),
            seen,
            extremes: Extremes { low, high },
        })
    }
}

impl Detector for RangeBreak {
    type Params = RangeBreakParams;
    const NAME: &'static str = "range_break";
    const SUMMARY: &'static str =
        "a value past the range of the earlier values by more than a fraction of it";
    const DOC: &'static str = "\
With min and max the smallest and largest earlier value (of the last `memory`, or of all \
when `memory` = 0): raw score max(x − max, min − x, 0)/(max − min), the break in units of \
the range (only x − max with `side = upper`, only min − x with `lower`); normalised \
raw/(raw + tolerance), so an alarm when x is more than `tolerance` of the range beyond it \
(Numenta's HTM \"spatial anomaly\" on NAB: all values, tolerance 0.05). The value is \
learnt after it is judged, so a new level alarms once and then widens the range. \
Undetermined for the first `warmup` values (learnt, not judged) and until the range is \
wider than one value. NaN/inf inputs: undetermined, never learnt. Memory: two values with \
`memory` = 0, at most 2·memory otherwise (a monotonic series).";

    fn new(params: RangeBreakParams, _inputs: &[String]) -> Result<Self, DetectorError> {
        Ok(RangeBreak {
            params,
            seen: 0,
            extremes: Extremes::default(),
        })
    }

    fn state_bytes(&self) -> Option<u64> {
        Some(match self.params.memory {
            0 => crate::online::FIXED_BYTES,
            m => 2 * crate::online::grown(m + 1, 16) + crate::online::FIXED_BYTES,
        })
    }

    online_detector!();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{noise, params, run_stream};
    use adr_sdk::{ParamValue, Verdict};

    fn with_memory(memory: i64) -> RangeBreakParams {
        params(&[
            ("memory", ParamValue::Int(memory)),
            ("warmup", ParamValue::Int(0)),
        ])
    }

    fn no_warmup() -> RangeBreakParams {
        with_memory(0)
    }

    #[test]
    fn a_value_past_the_tolerance_alarms_and_widens_the_range() {
        // every value widens the range, the ones that alarm too
        let values = [0.0, 10.0, 5.0, 10.4, 11.0, -0.5, -1.2, 5.0];
        let scores = run_stream::<RangeBreak>(no_warmup(), &values);
        let verdicts: Vec<Verdict> = scores.iter().map(|s| s.verdict).collect();
        use Verdict::{Anomaly as A, Normal as N, Undetermined as U};
        // 10.0 has a range of one value before it
        assert_eq!(verdicts, [U, U, N, N, A, N, A, N]);
        assert_eq!(scores[2].raw, 0.0);
        // 10.4 against [0, 10]; 11 against [0, 10.4]; −0.5 against [0, 11]; −1.2 against
        // [−0.5, 11]
        let want = [0.04, 0.6 / 10.4, 0.5 / 11.0, 0.7 / 11.5];
        for (score, want) in scores[3..7].iter().zip(want) {
            assert!(
                (score.raw - want).abs() < 1e-12,
                "{} against {want}",
                score.raw
            );
        }
    }

    #[test]
    fn scores_are_the_break_past_the_earlier_values() {
        // a random walk, so that both ends move and old extremes expire
        let mut values = noise(3000, 5);
        for i in 1..values.len() {
            values[i] += values[i - 1];
        }
        for memory in [0usize, 1, 2, 50, 700] {
            let scores = run_stream::<RangeBreak>(with_memory(memory as i64), &values);
            for (i, score) in scores.iter().enumerate() {
                let earlier = &values[if memory == 0 {
                    0
                } else {
                    i.saturating_sub(memory)
                }..i];
                let low = earlier.iter().copied().fold(f64::INFINITY, f64::min);
                let high = earlier.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                if high <= low {
                    assert_eq!(
                        score.verdict,
                        Verdict::Undetermined,
                        "memory {memory} at {i}"
                    );
                    continue;
                }
                let want = (values[i] - high).max(low - values[i]).max(0.0) / (high - low);
                assert_eq!(score.raw, want, "memory {memory} at {i}");
                assert_eq!(score.verdict == Verdict::Anomaly, want >= 0.05);
            }
        }
    }

    #[test]
    fn a_window_forgets_old_extremes_and_all_history_does_not() {
        let values = [0.0, 10.0, 4.0, 6.0, 5.0, 9.0];
        let windowed = run_stream::<RangeBreak>(with_memory(3), &values);
        let whole = run_stream::<RangeBreak>(no_warmup(), &values);
        // the last 3 before 9.0 span [4, 6]: 9 is 1.5 ranges past them
        assert_eq!(windowed[5].verdict, Verdict::Anomaly);
        assert!((windowed[5].raw - 1.5).abs() < 1e-12);
        assert_eq!(whole[5].verdict, Verdict::Normal);
    }

    #[test]
    fn a_side_counts_only_its_own_breaks() {
        let values = [0.0, 10.0, 5.0, 12.0, -3.0, 5.0];
        let side = |side: &str| {
            let p: RangeBreakParams = params(&[
                ("warmup", ParamValue::Int(0)),
                ("side", ParamValue::Text(side.into())),
            ]);
            run_stream::<RangeBreak>(p, &values)
        };
        let (both, upper, lower) = (side("both"), side("upper"), side("lower"));
        // 12 against [0, 10]: 0.2 up; −3 against [0, 12]: 0.25 down
        assert_eq!((both[3].raw, upper[3].raw, lower[3].raw), (0.2, 0.2, 0.0));
        assert_eq!((both[4].raw, upper[4].raw, lower[4].raw), (0.25, 0.0, 0.25));
        assert_eq!(upper[4].verdict, Verdict::Normal);
        assert_eq!(lower[3].verdict, Verdict::Normal);
        // the range learns every value whatever the side
        assert_eq!(both[5].raw, 0.0);
        assert_eq!(upper[5].raw, 0.0);
    }

    #[test]
    fn a_constant_series_is_undetermined_until_it_moves() {
        let scores = run_stream::<RangeBreak>(no_warmup(), &[3.0, 3.0, 3.0, 4.0, 9.0]);
        assert!(scores[..4]
            .iter()
            .all(|s| s.verdict == Verdict::Undetermined));
        assert_eq!(scores[4].verdict, Verdict::Anomaly);
        assert_eq!(scores[4].raw, 5.0);
    }

    #[test]
    fn the_warm_up_is_learnt_not_judged() {
        let values = noise(300, 3);
        let warm: RangeBreakParams = params(&[("warmup", ParamValue::Int(100))]);
        let (with, without) = (
            run_stream::<RangeBreak>(warm, &values),
            run_stream::<RangeBreak>(no_warmup(), &values),
        );
        assert!(with[..100]
            .iter()
            .all(|s| s.verdict == Verdict::Undetermined));
        assert!(without[..100].iter().any(|s| s.verdict == Verdict::Anomaly));
        assert_eq!(
            format!("{:?}", &with[100..]),
            format!("{:?}", &without[100..])
        );
    }

    #[test]
    fn memory_is_bounded() {
        // a falling series is the worst case of the minimum's queue... and the best of the
        // maximum's: each keeps at most `memory` values
        let falling: Vec<f64> = (0..10_000).map(|i| -(i as f64)).collect();
        for memory in [0usize, 64] {
            let mut d = RangeBreak::new(with_memory(memory as i64), &["x".into()]).unwrap();
            for (i, &x) in falling.iter().enumerate() {
                d.step(i as i64, &[x]);
                let held = d.extremes.low.len() + d.extremes.high.len();
                assert!(held <= 2 * memory.max(1), "memory {memory}: {held} values");
            }
        }
    }

    #[test]
    fn a_restored_state_continues_exactly() {
        let values = noise(2000, 9);
        for memory in [0i64, 100] {
            let p = with_memory(memory);
            let mut d = RangeBreak::new(p.clone(), &["x".into()]).unwrap();
            let want: Vec<Score> = values.iter().map(|&x| d.step(0, &[x])).collect();
            let mut first = RangeBreak::new(p.clone(), &["x".into()]).unwrap();
            values[..1200].iter().for_each(|&x| {
                first.step(0, &[x]);
            });
            let mut w = Writer::default();
            first.save_state(&mut w);
            let mut r = Reader::new(&w.bytes);
            let mut second = RangeBreak::restore_state(&p, &mut r).unwrap();
            r.end().unwrap();
            let got: Vec<Score> = values[1200..]
                .iter()
                .map(|&x| second.step(0, &[x]))
                .collect();
            assert_eq!(format!("{:?}", &want[1200..]), format!("{got:?}"));
        }
    }
}
