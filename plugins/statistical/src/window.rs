//! The sliding window every rolling detector keeps: the last points by count or by event
//! time, with their order statistics or moments kept up to date as points come and go.

use std::collections::VecDeque;

use adr_sdk::{DetectorError, ErrorKind, Window};

/// The points a rolling detector compares the next point with.
#[derive(Debug, Clone)]
pub(crate) struct Points {
    window: Window,
    points: VecDeque<(i64, f64)>,
    /// Points pushed since the detector started: the position in the series, on which
    /// trackers schedule their rebuilds so that any chunking of a series (events, batches,
    /// parallel chunks) computes exactly the same numbers.
    pushed: u64,
}

/// What leaves and enters the window on one step.
pub(crate) trait Tracker: Sized {
    /// Bytes the tracker keeps for each point of the window, beyond the window's own.
    const BYTES_PER_POINT: u64 = 0;
    /// The tracker of a window holding `values` (oldest first) at a position where a
    /// rebuild is due (see [`REBUILD_EVERY`]), or of a whole batch.
    fn from_window(values: &[f64]) -> Self;
    fn insert(&mut self, x: f64);
    fn remove(&mut self, x: f64);
    /// `insert(new)` then `remove(old)`, in one step where a tracker can do better.
    #[inline]
    fn replace(&mut self, old: f64, new: f64) {
        self.insert(new);
        self.remove(old);
    }
    /// Called after each step with the window's values, oldest first, and the number of
    /// points pushed so far, so a tracker can rebuild itself from scratch at fixed
    /// positions (to shed rounding drift).
    fn maintain(&mut self, _values: &VecDeque<(i64, f64)>, _pushed: u64) {}
    /// State beyond the window's points that a restore must reproduce exactly (running
    /// sums carry rounding that a replay of the points would not).
    fn save_extra(&self) -> Vec<u8> {
        Vec::new()
    }
    /// Restores what [`save_extra`](Self::save_extra) wrote, after the points were replayed.
    fn restore_extra(&mut self, _bytes: &[u8]) -> Result<(), DetectorError> {
        Ok(())
    }
}

/// The most bytes a key's window of `window` takes, with `per_point` more bytes a point
/// kept beside it (a tracker's, a sample's buffer): 16 bytes a point (time and value),
/// up to the next power of two of the count since vectors double as they grow, and a
/// little fixed overhead. Unknown for a window of event time (it holds what arrives); a
/// whole-batch detector keeps nothing between batches.
pub(crate) fn window_bytes(window: Window, per_point: u64) -> Option<u64> {
    const FIXED: u64 = 256;
    match window {
        Window::Count(n) => Some((n as u64 + 1).next_power_of_two() * (16 + per_point) + FIXED),
        Window::Batch => Some(FIXED),
        Window::Time(_) => None,
    }
}

/// Trackers that drift rebuild whenever this many points have been pushed in all.
pub(crate) const REBUILD_EVERY: u64 = 256;

impl Points {
    pub(crate) fn new(window: Window) -> Self {
        // The window grows with the points it holds: a count (up to ten million) only
        // bounds it, and a key that sees few events never pays for the rest.
        let cap = match window {
            Window::Count(n) => n.min(1024) + 1,
            _ => 64,
        };
        Points {
            window,
            points: VecDeque::with_capacity(cap),
            pushed: 0,
        }
    }

    /// A window holding `(timestamps, values)`, after `pushed` points in all.
    pub(crate) fn seeded(window: Window, timestamps: &[i64], values: &[f64], pushed: u64) -> Self {
        let mut p = Points::new(window);
        p.points
            .extend(timestamps.iter().copied().zip(values.iter().copied()));
        p.pushed = pushed;
        p
    }

    pub(crate) fn pushed(&self) -> u64 {
        self.pushed
    }

    pub(crate) fn len(&self) -> usize {
        self.points.len()
    }

    pub(crate) fn values(&self) -> impl ExactSizeIterator<Item = f64> + '_ {
        self.points.iter().map(|&(_, x)| x)
    }

    /// Drops the points that fall out of a time window ending at `ts` (exclusive start:
    /// a point exactly `span` old is out).
    #[inline]
    pub(crate) fn expire<T: Tracker>(&mut self, ts: i64, tracker: &mut T) {
        if let Window::Time(span) = self.window {
            let oldest_kept = ts.saturating_sub(span);
            while let Some(&(t, x)) = self.points.front() {
                if t > oldest_kept {
                    break;
                }
                self.points.pop_front();
                tracker.remove(x);
            }
        }
    }

    /// Appends a point, dropping the oldest past a count window.
    #[inline]
    pub(crate) fn push<T: Tracker>(&mut self, ts: i64, x: f64, tracker: &mut T) {
        self.points.push_back((ts, x));
        match self.window {
            Window::Count(n) if self.points.len() > n => {
                let (_, old) = self.points.pop_front().expect("non-empty");
                tracker.replace(old, x);
            }
            _ => tracker.insert(x),
        }
        self.pushed += 1;
        tracker.maintain(&self.points, self.pushed);
    }

    /// The window as bytes: count, points pushed, then (timestamp, value) pairs,
    /// little-endian, then the tracker's extra state.
    pub(crate) fn save<T: Tracker>(&self, tracker: &T) -> Vec<u8> {
        let mut out = Vec::with_capacity(16 + 16 * self.points.len());
        out.extend_from_slice(&(self.points.len() as u64).to_le_bytes());
        out.extend_from_slice(&self.pushed.to_le_bytes());
        for &(t, x) in &self.points {
            out.extend_from_slice(&t.to_le_bytes());
            out.extend_from_slice(&x.to_le_bytes());
        }
        out.extend_from_slice(&tracker.save_extra());
        out
    }

    /// Restores a window written by [`save`](Self::save), replaying it into `tracker`.
    pub(crate) fn restore<T: Tracker>(
        &mut self,
        bytes: &[u8],
        tracker: &mut T,
    ) -> Result<(), DetectorError> {
        let bad = |why: &str| {
            DetectorError::new(
                ErrorKind::IncompatibleState,
                format!("window state is corrupt: {why}"),
            )
        };
        let word = |i: usize| {
            bytes
                .get(8 * i..8 * i + 8)
                .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
        };
        let count = word(0).ok_or_else(|| bad("no length"))? as usize;
        let pushed = word(1).ok_or_else(|| bad("no position"))?;
        let len = count
            .checked_mul(16)
            .ok_or_else(|| bad("length overflows"))?;
        let body = bytes[16..]
            .get(..len)
            .ok_or_else(|| bad("length does not match the data"))?;
        let (ts, xs): (Vec<i64>, Vec<f64>) = body
            .chunks_exact(16)
            .map(|pair| {
                let t = i64::from_le_bytes(pair[..8].try_into().expect("8 bytes"));
                (
                    t,
                    f64::from_le_bytes(pair[8..].try_into().expect("8 bytes")),
                )
            })
            .unzip();
        *self = Points::seeded(self.window, &ts, &xs, pushed);
        *tracker = T::from_window(&xs);
        tracker.restore_extra(&bytes[16 + len..])
    }
}

/// Mean and variance of the window from running sums of `x − shift`, rebuilt exactly
/// (two passes, shift = the window's mean) every [`REBUILD_EVERY`] points, so rounding
/// never accumulates over more than a few hundred updates and the shift follows the level
/// of the series (no cancellation after a level shift).
///
/// The sums are of `(x − shift)/scale`, `scale` a power of two: 1 for ordinary values
/// (the same bits as without it), near the largest deviation when deviations are so large
/// that their squares overflow (a finite 1e160 in a series near 5) or so small that they
/// underflow (values near 1e-300). An update that overflows, underflows, or removes a
/// point that held most of the sum of squares (the spike leaving the window) makes the
/// next step rebuild, so no point is judged against an infinite or lost variance.
#[derive(Debug, Clone)]
pub(crate) struct Moments {
    shift: f64,
    scale: f64,
    inv_scale: f64,
    sum: f64,
    sum_sq: f64,
    n: usize,
    /// 1/n and 1/(n − 1), refreshed when n changes: the hot path multiplies instead of
    /// dividing (n is constant once a count window is full).
    inv: (f64, f64),
    inv_of: usize,
    /// The largest sum of squares since the last rebuild.
    peak_sq: f64,
}

impl Default for Moments {
    fn default() -> Self {
        Moments {
            shift: 0.0,
            scale: 1.0,
            inv_scale: 1.0,
            sum: 0.0,
            sum_sq: 0.0,
            n: 0,
            inv: (0.0, 0.0),
            inv_of: 0,
            peak_sq: 0.0,
        }
    }
}

/// Below this a deviation's square has lost digits to underflow (2^-960).
const TINY_SQUARE: f64 = f64::from_bits((1023 - 960) << 52);

/// Deviations whose squares (summed over up to 2^24 points) stay normal f64 numbers
/// without scaling: from 2^-480 to 2^480.
const PLAIN_RANGE: (f64, f64) = (
    f64::from_bits((1023 - 480) << 52),
    f64::from_bits((1023 + 480) << 52),
);

impl Moments {
    #[inline]
    pub(crate) fn mean(&self) -> f64 {
        self.shift + self.sum * self.inv.0 * self.scale
    }

    /// Standard deviation with `ddof` (0 or 1) delta degrees of freedom; `NaN` if
    /// `n ≤ ddof`. (Its square may leave f64 where it does not: ask for this.)
    #[inline]
    pub(crate) fn sd(&self, ddof: usize) -> f64 {
        if self.n <= ddof {
            return f64::NAN;
        }
        let scale = if ddof == 0 { self.inv.0 } else { self.inv.1 };
        ((self.sum_sq - self.sum * self.sum * self.inv.0) * scale)
            .max(0.0)
            .sqrt()
            * self.scale
    }

    #[inline]
    fn refresh(&mut self) {
        if self.inv_of != self.n {
            let n = self.n as f64;
            self.inv = (1.0 / n, 1.0 / (n - 1.0));
            self.inv_of = self.n;
        }
    }

    /// Rebuilds the sums from the values, exactly.
    pub(crate) fn rebuild(&mut self, values: &[f64]) {
        self.rebuild_parts([values, &[]], |x| x);
    }

    /// [`rebuild`](Self::rebuild) from the parts of a window (a ring's two slices), each
    /// element's value taken by `value`: plain loops over slices, which the compiler keeps
    /// tight (an iterator over the ring cost twice the instructions).
    #[inline]
    fn rebuild_parts<T: Copy>(&mut self, parts: [&[T]; 2], value: impl Fn(T) -> f64 + Copy) {
        // The plain two passes, as for any ordinary window; the scaled ones only where
        // their result says the magnitudes need them.
        let mut total = 0.0;
        for part in parts {
            for &p in part {
                total += value(p);
            }
        }
        self.n = parts[0].len() + parts[1].len();
        self.shift = if self.n > 0 {
            total / self.n as f64
        } else {
            0.0
        };
        self.set_scale(1.0);
        let (mut s, mut s2) = (0.0, 0.0);
        for part in parts {
            for &p in part {
                let d = value(p) - self.shift;
                s += d;
                s2 += d * d;
            }
        }
        let underflowed = s2 < TINY_SQUARE && (s2 != 0.0 || s != 0.0);
        if s2.is_finite() && self.shift.is_finite() && !underflowed {
            self.sum = s;
            self.sum_sq = s2;
        } else {
            let values: Vec<f64> = parts
                .iter()
                .flat_map(|p| p.iter().map(|&x| value(x)))
                .collect();
            self.rebuild_scaled(&values);
        }
        self.peak_sq = self.sum_sq;
        self.refresh();
    }

    fn set_scale(&mut self, scale: f64) {
        self.scale = scale;
        self.inv_scale = 1.0 / scale;
    }

    /// The rebuild of a window whose values or deviations leave the plain range: the mean
    /// summed without overflow, the deviations in units of a power of two near the largest.
    #[cold]
    fn rebuild_scaled(&mut self, values: &[f64]) {
        let n = values.len() as f64;
        let largest = values.iter().fold(0.0f64, |m, x| m.max(x.abs()));
        let down = power_of_two_at_least(largest);
        self.shift = values.iter().map(|x| x / down / n).sum::<f64>() * down;
        let widest = values
            .iter()
            .fold(0.0f64, |m, x| m.max((x - self.shift).abs()));
        let scale = if widest == 0.0 || (PLAIN_RANGE.0..=PLAIN_RANGE.1).contains(&widest) {
            1.0
        } else {
            power_of_two_at_least(widest)
        };
        self.set_scale(scale);
        let (mut s, mut s2) = (0.0, 0.0);
        for x in values {
            let d = (x - self.shift) * self.inv_scale;
            s += d;
            s2 += d * d;
        }
        self.sum = s;
        self.sum_sq = s2;
    }
}

/// The smallest power of two at or above `x` (positive, finite); 1 otherwise.
fn power_of_two_at_least(x: f64) -> f64 {
    if !(x.is_finite() && x > 0.0) {
        return 1.0;
    }
    let mut p = 2f64.powi(x.log2().floor().clamp(-1074.0, 1023.0) as i32);
    while p < x && p < f64::MAX / 2.0 {
        p *= 2.0;
    }
    p
}

impl Tracker for Moments {
    fn from_window(values: &[f64]) -> Self {
        let mut m = Moments::default();
        m.rebuild(values);
        m
    }

    #[inline]
    fn insert(&mut self, x: f64) {
        if self.n == 0 {
            self.shift = x;
        }
        let d = (x - self.shift) * self.inv_scale;
        let d2 = d * d;
        self.sum += d;
        self.sum_sq += d2;
        self.n += 1;
    }

    #[inline]
    fn remove(&mut self, x: f64) {
        let d = (x - self.shift) * self.inv_scale;
        let d2 = d * d;
        self.sum -= d;
        self.sum_sq -= d2;
        self.n -= 1;
    }

    #[inline]
    fn maintain(&mut self, values: &VecDeque<(i64, f64)>, pushed: u64) {
        // Checked once a step, off the updates: squares that overflowed (a huge value
        // came), or underflowed (tiny deviations: partly, or all to zero while the
        // deviations are not), or sums that no longer hold the spread to full precision.
        self.refresh();
        let sum_sq = self.sum_sq;
        self.peak_sq = self.peak_sq.max(sum_sq);
        let spread = sum_sq - self.sum * self.sum * self.inv.0;
        // (`|`, not `||`: one branch a step, not four)
        let lost = !sum_sq.is_finite()
            | (sum_sq < TINY_SQUARE && (sum_sq != 0.0 || self.sum != 0.0))
            // the spread is a small difference of large sums: the mean has moved far from
            // the shift (a spike in the window when it was last rebuilt has left it)
            | (spread < sum_sq * 1e-6)
            // or the sum of squares fell far below its peak since (one came and left)
            | (sum_sq < self.peak_sq * 1e-6);
        if lost || pushed.is_multiple_of(REBUILD_EVERY) {
            let (a, b) = values.as_slices();
            self.rebuild_parts([a, b], |(_, x)| x);
        }
    }

    fn save_extra(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(40);
        for x in [self.shift, self.sum, self.sum_sq] {
            out.extend_from_slice(&x.to_le_bytes());
        }
        out.extend_from_slice(&(self.n as u64).to_le_bytes());
        out.extend_from_slice(&self.scale.to_le_bytes());
        out
    }

    fn restore_extra(&mut self, bytes: &[u8]) -> Result<(), DetectorError> {
        let words: Vec<[u8; 8]> = bytes
            .chunks_exact(8)
            .map(|c| c.try_into().expect("8 bytes"))
            .collect();
        // 32 bytes: a state saved before the scale existed, at scale 1
        let (shift, sum, sum_sq, n, scale) = match words[..] {
            _ if !bytes.len().is_multiple_of(8) => {
                return Err(DetectorError::new(
                    ErrorKind::IncompatibleState,
                    "moment state is corrupt: expected 32 or 40 bytes",
                ))
            }
            [shift, sum, sum_sq, n] => (shift, sum, sum_sq, n, 1f64.to_le_bytes()),
            [shift, sum, sum_sq, n, scale] => (shift, sum, sum_sq, n, scale),
            _ => {
                return Err(DetectorError::new(
                    ErrorKind::IncompatibleState,
                    "moment state is corrupt: expected 32 or 40 bytes",
                ))
            }
        };
        if u64::from_le_bytes(n) as usize != self.n {
            return Err(DetectorError::new(
                ErrorKind::IncompatibleState,
                "moment state is corrupt: count differs from the window",
            ));
        }
        let scale = f64::from_le_bytes(scale);
        if !(scale.is_normal() && scale > 0.0) {
            return Err(DetectorError::new(
                ErrorKind::IncompatibleState,
                "moment state is corrupt: its scale is not a positive number",
            ));
        }
        self.shift = f64::from_le_bytes(shift);
        self.sum = f64::from_le_bytes(sum);
        self.sum_sq = f64::from_le_bytes(sum_sq);
        self.set_scale(scale);
        self.peak_sq = self.sum_sq;
        self.refresh();
        Ok(())
    }
}

/// The window's values kept sorted, for medians, quantiles and the MAD.
#[derive(Debug, Clone, Default)]
pub(crate) struct Sorted {
    values: Vec<f64>,
}

impl Sorted {
    pub(crate) fn as_slice(&self) -> &[f64] {
        &self.values
    }
}

impl Tracker for Sorted {
    const BYTES_PER_POINT: u64 = 8;

    fn from_window(values: &[f64]) -> Self {
        let mut v = values.to_vec();
        v.sort_unstable_by(f64::total_cmp);
        Sorted { values: v }
    }

    #[inline]
    fn insert(&mut self, x: f64) {
        let i = self.values.partition_point(|&v| v < x);
        self.values.insert(i, x);
    }

    #[inline]
    fn remove(&mut self, x: f64) {
        let i = self.values.partition_point(|&v| v < x);
        debug_assert!(
            self.values[i] == x,
            "removing a value the window does not hold"
        );
        self.values.remove(i);
    }

    /// Moves only the values between the old value's place and the new one's, instead of
    /// shifting half the window twice.
    #[inline]
    fn replace(&mut self, old: f64, new: f64) {
        let v = &mut self.values;
        let i = v.partition_point(|&x| x < old);
        debug_assert!(v[i] == old, "replacing a value the window does not hold");
        let j = v.partition_point(|&x| x < new);
        if j > i {
            v.copy_within(i + 1..j, i);
            v[j - 1] = new;
        } else {
            v.copy_within(j..i, j + 1);
            v[j] = new;
        }
    }
}

/// The `q` quantile of sorted values with linear interpolation between order statistics
/// (Hyndman & Fan type 7, numpy's and pandas' default).
pub(crate) fn quantile(sorted: &[f64], q: f64) -> f64 {
    let h = (sorted.len() - 1) as f64 * q;
    let lo = h.floor() as usize;
    let hi = (lo + 1).min(sorted.len() - 1);
    sorted[lo] + (h - lo as f64) * (sorted[hi] - sorted[lo])
}

/// The median of sorted values.
pub(crate) fn median(sorted: &[f64]) -> f64 {
    let n = sorted.len();
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        0.5 * (sorted[n / 2 - 1] + sorted[n / 2])
    }
}

/// The median absolute deviation from `m` (the median) of sorted values, in O(log n):
/// the deviations of the points left of the middle, read outwards, and of the points right
/// of it, read outwards, are two sorted sequences, and the MAD is the median of their merge.
pub(crate) fn mad(sorted: &[f64], m: f64) -> f64 {
    let n = sorted.len();
    let split = n / 2;
    let left = |j: usize| m - sorted[split - 1 - j]; // j-th smallest deviation on the left
    let right = |j: usize| sorted[split + j] - m;
    let (nl, nr) = (split, n - split);
    let (kth, next) = kth_of_two(n.div_ceil(2) - 1, nl, nr, &left, &right);
    if n % 2 == 1 {
        kth
    } else {
        0.5 * (kth + next)
    }
}

/// The k-th and (k+1)-th smallest (0-based) of the merge of two sorted sequences `a`
/// (length `na`) and `b` (length `nb`), by binary search on how many come from `a`; the
/// second is `+inf` when there is none.
fn kth_of_two(
    k: usize,
    na: usize,
    nb: usize,
    a: &impl Fn(usize) -> f64,
    b: &impl Fn(usize) -> f64,
) -> (f64, f64) {
    // Find i = elements taken from a, j = k + 1 - i from b, with a[i-1] <= b[j] and b[j-1] <= a[i].
    let (mut lo, mut hi) = ((k + 1).saturating_sub(nb), (k + 1).min(na));
    loop {
        let i = (lo + hi) / 2;
        let j = k + 1 - i;
        if i < na && j > 0 && b(j - 1) > a(i) {
            lo = i + 1;
        } else if i > 0 && j < nb && a(i - 1) > b(j) {
            hi = i - 1;
        } else {
            let from_a = if i > 0 { a(i - 1) } else { f64::NEG_INFINITY };
            let from_b = if j > 0 { b(j - 1) } else { f64::NEG_INFINITY };
            let next_a = if i < na { a(i) } else { f64::INFINITY };
            let next_b = if j < nb { b(j) } else { f64::INFINITY };
            return (from_a.max(from_b), next_a.min(next_b));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn brute_mad(values: &[f64]) -> f64 {
        let mut s = values.to_vec();
        s.sort_by(f64::total_cmp);
        let m = median(&s);
        let mut d: Vec<f64> = s.iter().map(|x| (x - m).abs()).collect();
        d.sort_by(f64::total_cmp);
        median(&d)
    }

    #[test]
    fn mad_matches_brute_force_on_many_shapes() {
        let mut state = 12345u64;
        let mut next = || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        for n in 1..60 {
            for trial in 0..20 {
                let values: Vec<f64> = (0..n)
                    .map(|_| {
                        let u = next();
                        if trial % 3 == 0 {
                            (u * 5.0).floor()
                        } else {
                            u * u * 100.0
                        }
                    })
                    .collect();
                let mut s = values.clone();
                s.sort_by(f64::total_cmp);
                let got = mad(&s, median(&s));
                assert_eq!(
                    got,
                    brute_mad(&values),
                    "n={n} trial={trial} values={values:?}"
                );
            }
        }
    }

    #[test]
    fn replace_keeps_the_window_sorted() {
        let mut state = 99u64;
        let mut next = || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 40) % 50) as f64
        };
        let mut fast = Sorted::from_window(&(0..20).map(|_| next()).collect::<Vec<_>>());
        for _ in 0..2_000 {
            let old = fast.as_slice()[(next() as usize) % 20];
            let new = next();
            let mut slow = fast.clone();
            slow.insert(new);
            slow.remove(old);
            fast.replace(old, new);
            assert_eq!(fast.as_slice(), slow.as_slice(), "replace {old} by {new}");
        }
    }

    #[test]
    fn quantiles_interpolate_like_numpy() {
        let s = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(quantile(&s, 0.25), 1.75);
        assert_eq!(quantile(&s, 0.75), 3.25);
        assert_eq!(quantile(&[7.0], 0.25), 7.0);
    }

    #[test]
    fn count_window_keeps_the_last_n_and_time_window_the_last_span() {
        let mut sorted = Sorted::default();
        let mut w = Points::new(Window::Count(3));
        for (t, x) in [(1, 5.0), (2, 1.0), (3, 4.0), (4, 2.0)] {
            w.push(t, x, &mut sorted);
        }
        assert_eq!(sorted.as_slice(), [1.0, 2.0, 4.0]);

        let mut sorted = Sorted::default();
        let mut w = Points::new(Window::Time(10));
        for (t, x) in [(0, 5.0), (5, 1.0), (10, 4.0)] {
            w.expire(t, &mut sorted);
            w.push(t, x, &mut sorted);
        }
        w.expire(15, &mut sorted);
        assert_eq!(
            sorted.as_slice(),
            [4.0],
            "points at 0 and 5 are 10 or more old at 15"
        );
    }

    #[test]
    fn moments_stay_exact_after_a_level_shift() {
        let mut m = Moments::default();
        let mut w = Points::new(Window::Count(100));
        for i in 0..10_000 {
            let level = if i < 5_000 { 0.0 } else { 1e9 };
            w.push(i, level + (i % 7) as f64, &mut m);
        }
        let values: Vec<f64> = w.values().collect();
        let mean = values.iter().sum::<f64>() / 100.0;
        let var = values.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / 99.0;
        assert!((m.mean() - mean).abs() <= 1e-12 * mean.abs());
        assert!(
            (m.sd(1).powi(2) - var).abs() <= 1e-9 * var,
            "{} vs {var}",
            m.sd(1).powi(2)
        );
    }

    #[test]
    fn window_state_round_trips_and_rejects_corruption() {
        let mut m = Moments::default();
        let mut w = Points::new(Window::Count(5));
        for i in 0..8 {
            w.push(i, i as f64, &mut m);
        }
        let bytes = w.save(&m);
        let mut m2 = Moments::default();
        let mut w2 = Points::new(Window::Count(5));
        w2.restore(&bytes, &mut m2).unwrap();
        assert_eq!(
            w2.values().collect::<Vec<_>>(),
            w.values().collect::<Vec<_>>()
        );
        assert_eq!((m2.mean(), m2.sd(1)), (m.mean(), m.sd(1)));
        let err = w2.restore(&bytes[..bytes.len() - 1], &mut m2).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::IncompatibleState);
    }
}
