//! Shared machinery of the significance tests (Grubbs, ESD, Dixon): the sample a test
//! judges, and the removal of extreme points one at a time.
//!
//! In streaming mode the sample is the window ending at the newest point (the suspect must
//! be in the sample it is tested against) and only the newest point's result is reported;
//! in whole-batch mode the sample is every finite point of the batch.

use adr_sdk::{DetectorError, ErrorKind, Event, Frame, Score, ScoresMut, Window};

use crate::window::{Points, Tracker};

/// The largest normalised score below the alarm: non-flagged points are clamped under it
/// so that `verdict = anomaly ⇔ normalised ≥ 0.5` holds even where a test's decision rule
/// (Rosner's "largest i") and the ratio of a single point disagree.
pub(crate) const BELOW_ALARM: f64 = 0.499_999_999_999_999_94;

struct Untracked;

impl Tracker for Untracked {
    fn from_window(_: &[f64]) -> Self {
        Untracked
    }
    fn insert(&mut self, _: f64) {}
    fn remove(&mut self, _: f64) {}
}

/// The points a test judges.
#[derive(Debug, Clone)]
pub(crate) struct Sampler {
    window: Window,
    min_points: usize,
    points: Points,
    buffer: Vec<f64>,
}

impl Sampler {
    pub(crate) fn new(window: Window, min_points: usize) -> Self {
        let min_points = match window {
            Window::Count(n) => n,
            _ => min_points,
        };
        Sampler {
            window,
            min_points,
            points: Points::new(window),
            buffer: Vec::new(),
        }
    }

    pub(crate) fn whole_batch(&self) -> bool {
        self.window == Window::Batch
    }

    /// See [`adr_sdk::Detector::state_bytes`]: the window and the sample buffer a test
    /// copies it into.
    pub(crate) fn state_bytes(&self) -> Option<u64> {
        crate::window::window_bytes(self.window, 8)
    }

    /// Scores the frame's first column with `test`, which scores every point of a sample.
    pub(crate) fn score(
        &mut self,
        frame: &Frame<'_>,
        out: &mut ScoresMut<'_>,
        test: impl Fn(&[f64]) -> Result<Vec<Score>, DetectorError>,
    ) -> Result<(), DetectorError> {
        let values = frame.f64(0)?;
        if self.whole_batch() {
            let finite: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
            let mut scores = test(&finite)?.into_iter();
            for (i, x) in values.iter().enumerate() {
                let score = if x.is_finite() {
                    scores.next().expect("one score per finite point")
                } else {
                    Score::UNDETERMINED
                };
                out.set(i, score);
            }
            return Ok(());
        }
        for (i, (&t, &x)) in frame.timestamps().iter().zip(values).enumerate() {
            out.set(i, self.step(t, x, &test)?);
        }
        Ok(())
    }

    pub(crate) fn update(
        &mut self,
        event: &Event<'_>,
        test: impl Fn(&[f64]) -> Result<Vec<Score>, DetectorError>,
    ) -> Result<Score, DetectorError> {
        if self.whole_batch() {
            return Err(DetectorError::new(
                ErrorKind::Unsupported,
                "window = batch tests whole batches only; give a count or a duration to stream",
            ));
        }
        self.step(event.timestamp(), event.value(0)?, &test)
    }

    fn step(
        &mut self,
        t: i64,
        x: f64,
        test: &impl Fn(&[f64]) -> Result<Vec<Score>, DetectorError>,
    ) -> Result<Score, DetectorError> {
        if !x.is_finite() {
            return Ok(Score::UNDETERMINED);
        }
        self.points.expire(t, &mut Untracked);
        self.points.push(t, x, &mut Untracked);
        if self.points.len() < self.min_points {
            return Ok(Score::UNDETERMINED);
        }
        self.buffer.clear();
        self.buffer.extend(self.points.values());
        Ok(*test(&self.buffer)?.last().expect("non-empty sample"))
    }

    pub(crate) fn save(&self) -> Option<Vec<u8>> {
        (!self.whole_batch()).then(|| self.points.save(&Untracked))
    }

    pub(crate) fn restore(&mut self, state: &[u8]) -> Result<(), DetectorError> {
        self.points.restore(state, &mut Untracked)
    }
}

/// A sample sorted once, from which the most extreme point (farthest from the mean of
/// what remains) is removed step by step. What remains is always a contiguous range of the
/// sorted values, so each step costs O(1) after the sort.
///
/// The statistics are scale-free (R = |x − mean| / sd), so they are computed on the values
/// divided by a power of two near the largest magnitude (exact), and the sums of what
/// remains on the deviations from its mean divided by another power of two near the
/// largest deviation: a finite 1e160 among values near 5 neither overflows the sum of
/// squares (which made every R zero) nor leaves the others' deviations to underflow once
/// it is removed.
#[derive(Debug)]
pub(crate) struct Extremes {
    /// Sorted values, divided by a power of two so that the largest magnitude is in [1, 2).
    sorted: Vec<f64>,
    /// `order[j]`: the sample index of `sorted[j]`.
    pub(crate) order: Vec<usize>,
    lo: usize,
    hi: usize,
    /// The mean of what remained at the last exact resum (scaled units).
    shift: f64,
    /// A power of two near the largest |value − shift| at the last resum: the sums are in
    /// units of it.
    unit: f64,
    sum: f64,
    sum_sq: f64,
    /// The sum of squares at the last exact resum: once the running one has fallen far
    /// below it, subtraction has cancelled most of its digits.
    resummed_sq: f64,
}

/// The next point to remove: its sorted position, R = |x − mean| / sd, and the size of
/// the sample it was judged in.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Candidate {
    pub(crate) pos: usize,
    pub(crate) r: f64,
    pub(crate) n: usize,
}

/// The power of two at or below `x` (> 0, finite); 1 for zero or non-finite `x`.
fn power_of_two_below(x: f64) -> f64 {
    if !(x.is_finite() && x > 0.0) {
        return 1.0;
    }
    if x < f64::MIN_POSITIVE {
        // subnormal: scale up exactly first
        return power_of_two_below(x * 2f64.powi(600)) * 2f64.powi(-600);
    }
    f64::from_bits(x.to_bits() & 0x7ff0_0000_0000_0000)
}

impl Extremes {
    pub(crate) fn new(sample: &[f64]) -> Self {
        let mut order: Vec<usize> = (0..sample.len()).collect();
        order.sort_by(|&a, &b| sample[a].total_cmp(&sample[b]));
        let largest = sample.iter().fold(0.0f64, |m, x| m.max(x.abs()));
        let scale = power_of_two_below(largest);
        let sorted: Vec<f64> = order.iter().map(|&i| sample[i] / scale).collect();
        let mut e = Extremes {
            sorted,
            order,
            lo: 0,
            hi: sample.len(),
            shift: 0.0,
            unit: 1.0,
            sum: 0.0,
            sum_sq: 0.0,
            resummed_sq: 0.0,
        };
        e.resum();
        e
    }

    /// Recomputes the sums exactly over what remains (two passes, shifted to the mean and
    /// in units of the largest deviation from it).
    fn resum(&mut self) {
        let range = &self.sorted[self.lo..self.hi];
        self.shift = if range.is_empty() {
            0.0
        } else {
            range.iter().sum::<f64>() / range.len() as f64
        };
        let largest = range
            .iter()
            .fold(0.0f64, |m, x| m.max((x - self.shift).abs()));
        self.unit = power_of_two_below(largest);
        let (shift, unit) = (self.shift, self.unit);
        self.sum = range.iter().map(|x| (x - shift) / unit).sum();
        self.sum_sq = range.iter().map(|x| ((x - shift) / unit).powi(2)).sum();
        self.resummed_sq = self.sum_sq;
    }

    pub(crate) fn len(&self) -> usize {
        self.hi - self.lo
    }

    /// Mean and sample standard deviation (ddof 1) of what remains, in scaled units.
    fn mean_sd(&self) -> (f64, f64) {
        let n = self.len() as f64;
        let mean = self.shift + self.unit * (self.sum / n);
        let var = ((self.sum_sq - self.sum * self.sum / n) / (n - 1.0)).max(0.0);
        (mean, self.unit * var.sqrt())
    }

    /// The most extreme remaining point, if at least 3 remain and they are not all equal.
    pub(crate) fn candidate(&self) -> Option<Candidate> {
        if self.len() < 3 {
            return None;
        }
        let (mean, sd) = self.mean_sd();
        if sd == 0.0 {
            return None;
        }
        let below = mean - self.sorted[self.lo];
        let above = self.sorted[self.hi - 1] - mean;
        let (pos, dev) = if above >= below {
            (self.hi - 1, above)
        } else {
            (self.lo, below)
        };
        Some(Candidate {
            pos,
            r: dev / sd,
            n: self.len(),
        })
    }

    /// Removes the candidate at `pos` (one end of what remains).
    pub(crate) fn remove(&mut self, pos: usize) {
        let x = self.sorted[pos];
        if pos == self.lo {
            self.lo += 1;
        } else {
            debug_assert_eq!(pos, self.hi - 1);
            self.hi -= 1;
        }
        let d = (x - self.shift) / self.unit;
        // A point that dominated the sum of squares would leave mostly rounding behind;
        // so would many removals that together took all but a millionth of it.
        if d * d > 0.5 * self.sum_sq || self.sum_sq - d * d < self.resummed_sq * 1e-6 {
            self.resum();
            return;
        }
        self.sum -= d;
        self.sum_sq -= d * d;
        // What remains may sit far from the old shift (the outliers that pulled the mean
        // are gone): the variance would then be a small difference of two large sums.
        let n = self.len() as f64;
        let offset = self.sum * self.sum / n;
        if offset > 1e4 * (self.sum_sq - offset) {
            self.resum();
        }
    }

    /// Where what remains starts and ends in sorted order, to come back to it later.
    pub(crate) fn range(&self) -> (usize, usize) {
        (self.lo, self.hi)
    }

    /// Scores every point in sorted positions `lo..hi` against the mean and sd of exactly
    /// those points, normalised against `critical` and kept below the alarm.
    pub(crate) fn judge_rest(
        &mut self,
        (lo, hi): (usize, usize),
        critical: f64,
        scores: &mut [Score],
    ) {
        self.lo = lo;
        self.hi = hi;
        self.resum();
        let (mean, sd) = if self.len() >= 2 {
            self.mean_sd()
        } else {
            (self.sorted.get(lo).copied().unwrap_or(0.0), 0.0)
        };
        for j in lo..hi {
            let raw = if sd > 0.0 {
                (self.sorted[j] - mean).abs() / sd
            } else {
                0.0
            };
            let normalised = if critical.is_finite() {
                adr_sdk::score::ratio(raw, critical).min(BELOW_ALARM)
            } else {
                0.0
            };
            scores[self.order[j]] = Score::new(raw, normalised);
        }
    }
}

/// The score of a point a test flags: its statistic, normalised against the critical value
/// and kept at or above the alarm.
pub(crate) fn flagged(r: f64, critical: f64) -> Score {
    Score::new(r, adr_sdk::score::ratio(r, critical).max(0.5))
}
