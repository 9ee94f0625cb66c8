//! Subsequence k-nearest-neighbour distance: how far the last `length` points are from
//! their `k` closest earlier windows among the last `memory`. With `k = 1` this is the
//! left matrix profile of a non-normalised series (stumpy's `aamp`), restricted to a
//! sliding memory; a shape the series has not shown lately scores high.

use adr_sdk::score::ratio;
use adr_sdk::state::{Reader, Writer};
use adr_sdk::{Detector, DetectorError, ErrorKind, Score};

use crate::online::{finite, online_detector, Online, Welford};

adr_sdk::params! {
    /// Parameters of [`SubsequenceKnn`].
    pub struct SubsequenceKnnParams {
        /// Points per window (the subsequence length, stumpy's `m`).
        length: usize = 20, min >= 2, max <= 100_000;
        /// Neighbours whose distances are averaged.
        k: usize = 3, min >= 1, max <= 10_000;
        /// Earlier windows a window is compared with (the most recent that do not overlap
        /// it or touch it).
        memory: usize = 1000, min >= 1, max <= 10_000_000;
        /// Alarm when the distance is this many times the mean distance so far.
        threshold: f64 = 3.0, min > 0.0;
    }
}

/// Neighbour counts up to which the nearest are kept in a sorted array during one scan.
const SMALL_K: usize = 16;

/// The recent points and the squared distance from the newest window to each earlier one.
///
/// Window `i` (ending at point `i`) is compared with the windows ending at lags
/// `length + 1 ..= length + memory` before it: stumpy's exclusion zone of one window,
/// so a window never matches a shifted copy of itself. Sliding one point updates every
/// squared distance in O(1) (the matrix-profile recurrence), so a point costs O(memory),
/// not O(memory · length).
#[derive(Debug)]
pub struct SubsequenceKnn {
    params: SubsequenceKnnParams,
    /// The last points (at least `2·length + memory + 1` once that many were seen); the
    /// front is dropped in blocks.
    points: Vec<f64>,
    /// Finite points seen.
    seen: u64,
    /// Squared distances by lag, stored backwards: position `memory − 1 − j` holds lag
    /// `length + 1 + j`, so the valid ones (the shortest lags first) are a suffix.
    distances: Vec<f64>,
    /// The position recomputed from scratch on the next point, which bounds the rounding
    /// the recurrence accumulates to `memory` steps.
    refresh: usize,
    /// The raw scores so far, for the normalisation.
    raws: Welford,
    scratch: Vec<f64>,
}

impl SubsequenceKnn {
    /// Points that must be kept: the newest window, the farthest lag and one window more
    /// for the recurrence.
    fn keep(&self) -> usize {
        2 * self.params.length + self.params.memory + 1
    }

    /// Lags with a distance, given `seen` points.
    fn ready(&self, seen: u64) -> usize {
        let before = 2 * self.params.length as u64;
        (seen.saturating_sub(before)).min(self.params.memory as u64) as usize
    }

    /// The squared distance between the newest window and the one `lag` points earlier.
    fn distance_at(&self, lag: usize) -> f64 {
        let e = self.points.len() - 1;
        let now = &self.points[e + 1 - self.params.length..=e];
        let then = &self.points[e + 1 - self.params.length - lag..=e - lag];
        now.iter().zip(then).map(|(a, b)| (a - b) * (a - b)).sum()
    }

    /// Learns `x` and returns the raw score of the window it ends, if there is one.
    fn learn(&mut self, x: f64) -> Option<f64> {
        let (length, memory, k) = (self.params.length, self.params.memory, self.params.k);
        let before = self.ready(self.seen);
        if self.points.len() >= 2 * self.keep() {
            let drop = self.points.len() - self.keep();
            self.points.drain(..drop);
        }
        self.points.push(x);
        self.seen += 1;
        let e = self.points.len() - 1;
        // slide every valid distance by one point
        if before > 0 {
            let base = e - length - before;
            let (newest, dropped) = (x, self.points[e - length]);
            let entering = &self.points[base..base + before];
            let leaving = &self.points[base - length..base - length + before];
            let valid = &mut self.distances[memory - before..];
            for ((d, a), b) in valid.iter_mut().zip(entering).zip(leaving) {
                *d += (newest - a) * (newest - a) - (dropped - b) * (dropped - b);
            }
        }
        let ready = self.ready(self.seen);
        if ready > before {
            self.distances[memory - 1 - before] = self.distance_at(length + 1 + before);
        }
        let p = self.refresh;
        if p >= memory - ready {
            self.distances[p] = self.distance_at(length + memory - p);
        }
        self.refresh = (p + 1) % memory;
        if ready < k {
            return None;
        }
        let valid = &self.distances[memory - ready..];
        let sum: f64 = if k <= SMALL_K {
            // one pass keeping the k smallest, sorted: almost every distance fails the
            // first comparison, so this is a scan, not a sort
            let mut best = [f64::INFINITY; SMALL_K];
            for &d in valid {
                if d < best[k - 1] {
                    let mut j = k - 1;
                    while j > 0 && best[j - 1] > d {
                        best[j] = best[j - 1];
                        j -= 1;
                    }
                    best[j] = d;
                }
            }
            best[..k].iter().map(|d| d.max(0.0).sqrt()).sum()
        } else {
            self.scratch.clear();
            self.scratch.extend_from_slice(valid);
            let (nearest, kth, _) = self.scratch.select_nth_unstable_by(k - 1, f64::total_cmp);
            nearest
                .iter()
                .chain([&*kth])
                .map(|d| d.max(0.0).sqrt())
                .sum()
        };
        Some(sum / k as f64)
    }
}

impl Online for SubsequenceKnn {
    fn step(&mut self, _ts: i64, row: &[f64]) -> Score {
        let Some(x) = finite(row) else {
            return Score::UNDETERMINED;
        };
        let Some(raw) = self.learn(x) else {
            return Score::UNDETERMINED;
        };
        let score = if self.raws.n == 0 {
            Score::UNDETERMINED
        } else {
            Score::new(raw, ratio(raw, self.params.threshold * self.raws.mean))
        };
        self.raws.push(raw);
        score
    }
}

impl SubsequenceKnn {
    fn save_state(&self, w: &mut Writer) {
        let start = self.points.len().saturating_sub(self.keep());
        w.numbers(&self.points[start..]);
        w.count(self.seen as usize);
        w.numbers(&self.distances);
        w.count(self.refresh);
        self.raws.save(w);
    }

    fn restore_state(
        params: &SubsequenceKnnParams,
        r: &mut Reader<'_>,
    ) -> Result<Self, DetectorError> {
        let points = r.numbers()?;
        let seen = r.count(usize::MAX)? as u64;
        let distances = r.numbers()?;
        let refresh = r.count(usize::MAX)?;
        let raws = Welford::restore(r)?;
        let d = SubsequenceKnn {
            params: params.clone(),
            points,
            seen,
            distances,
            refresh,
            raws,
            scratch: Vec::new(),
        };
        let expected_points = d.keep().min(usize::try_from(seen).unwrap_or(usize::MAX));
        if d.points.len() != expected_points
            || d.distances.len() != params.memory
            || d.refresh >= params.memory
            || d.points.iter().chain(&d.distances).any(|x| !x.is_finite())
        {
            return Err(DetectorError::new(
                ErrorKind::IncompatibleState,
                format!(
                    "state is corrupt: {} points and {} distances for length {} and memory {}",
                    d.points.len(),
                    d.distances.len(),
                    params.length,
                    params.memory
                ),
            ));
        }
        Ok(d)
    }
}

impl Detector for SubsequenceKnn {
    type Params = SubsequenceKnnParams;
    const NAME: &'static str = "subsequence_knn";
    const SUMMARY: &'static str =
        "distance of the last `length` points to their k nearest earlier windows";
    const DOC: &'static str = "\
Raw score: the mean Euclidean distance from the window of the last `length` points to its \
`k` nearest among the `memory` most recent earlier windows that neither overlap nor touch it \
(lags length + 1 ..= length + memory); with k = 1 and a memory covering the series, stumpy's \
left matrix profile of `aamp`. Values are not normalised, so a level shift counts as much as \
a change of shape. Normalised: raw / (raw + threshold · the mean raw score so far). \
Undetermined until 2·length + k points have been seen. NaN/inf inputs: undetermined and left \
out (the windows close up around them). Memory: about 2·(2·length + memory) + 2·memory \
numbers per key; a point costs O(memory). Feed the raw score to a threshold (`threshold \
realtime.likelihood(...)`) to alarm on what is unusual for the series.";

    fn new(params: SubsequenceKnnParams, _inputs: &[String]) -> Result<Self, DetectorError> {
        if params.k > params.memory {
            return Err(DetectorError::new(
                adr_sdk::ErrorKind::InvalidParams,
                format!(
                    "k = {} neighbours, but memory = {} earlier windows: at most that many",
                    params.k, params.memory
                ),
            ));
        }
        let keep = 2 * params.length + params.memory + 1;
        Ok(SubsequenceKnn {
            points: Vec::with_capacity((2 * keep).min(1 << 12)),
            seen: 0,
            distances: vec![0.0; params.memory],
            refresh: 0,
            raws: Welford::default(),
            scratch: Vec::new(),
            params,
        })
    }

    fn state_bytes(&self) -> Option<u64> {
        {
            use crate::online::grown;
            let p = &self.params;
            let keep = 2 * p.length + p.memory + 1;
            Some(
                grown(2 * keep, 8)
                    + 2 * grown(p.memory, 8)
                    + grown(p.k + SMALL_K, 16)
                    + crate::online::FIXED_BYTES,
            )
        }
    }

    online_detector!();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{noise, params, run_stream, run_with_restore};
    use adr_sdk::{ParamValue, Verdict};

    /// The raw score by brute force: every window against its reference windows.
    fn brute_force(values: &[f64], length: usize, k: usize, memory: usize) -> Vec<f64> {
        (0..values.len())
            .map(|i| {
                let ready = (i + 1).saturating_sub(2 * length).min(memory);
                if ready < k {
                    return f64::NAN;
                }
                let now = &values[i + 1 - length..=i];
                let mut d: Vec<f64> = (length + 1..=length + ready)
                    .map(|lag| {
                        let then = &values[i + 1 - length - lag..=i - lag];
                        now.iter()
                            .zip(then)
                            .map(|(a, b)| (a - b) * (a - b))
                            .sum::<f64>()
                            .sqrt()
                    })
                    .collect();
                d.sort_by(f64::total_cmp);
                d[..k].iter().sum::<f64>() / k as f64
            })
            .collect()
    }

    fn knn(length: i64, k: i64, memory: i64) -> SubsequenceKnnParams {
        params(&[
            ("length", ParamValue::Int(length)),
            ("k", ParamValue::Int(k)),
            ("memory", ParamValue::Int(memory)),
        ])
    }

    #[test]
    fn the_sliding_distances_equal_brute_force() {
        // a level far from 0 makes the recurrence's rounding visible if it is not refreshed
        let values: Vec<f64> = noise(6000, 5).iter().map(|x| 1e4 + x).collect();
        for (length, k, memory) in [(5, 1, 50), (12, 3, 200), (3, 4, 7), (4, 20, 60)] {
            let scores = run_stream::<SubsequenceKnn>(knn(length, k, memory), &values);
            let want = brute_force(&values, length as usize, k as usize, memory as usize);
            for (i, (s, w)) in scores.iter().zip(&want).enumerate() {
                if w.is_nan() {
                    assert!(s.raw.is_nan(), "row {i}");
                } else if !s.raw.is_nan() {
                    assert!(
                        (s.raw - w).abs() <= 1e-9 * w.max(1.0),
                        "row {i}: {} vs {w}",
                        s.raw
                    );
                }
            }
            // only the first judged row waits for the mean distance
            let first = want.iter().position(|w| !w.is_nan()).unwrap();
            assert!(scores[first].raw.is_nan() && !scores[first + 1].raw.is_nan());
        }
    }

    #[test]
    fn a_shape_the_memory_has_not_shown_is_an_anomaly() {
        let wobble = noise(3000, 4);
        let mut values: Vec<f64> = (0..3000)
            .map(|i| (i as f64 * std::f64::consts::TAU / 50.0).sin() + 0.01 * wobble[i])
            .collect();
        // one cycle at double speed
        for (j, v) in values[2000..2050].iter_mut().enumerate() {
            *v = (j as f64 * std::f64::consts::TAU / 25.0).sin() + 0.01 * wobble[2000 + j];
        }
        let scores = run_stream::<SubsequenceKnn>(knn(50, 1, 500), &values);
        let alarms: Vec<usize> = (0..values.len())
            .filter(|&i| scores[i].verdict == Verdict::Anomaly)
            .collect();
        assert!(!alarms.is_empty());
        assert!(
            alarms.iter().all(|&i| (2000..2100).contains(&i)),
            "{alarms:?}"
        );
        // a clean cycle is as far from the last one as the wobble makes it (≈ 0.01·√100)
        assert!(scores[1500].raw < 0.2, "{}", scores[1500].raw);
    }

    #[test]
    fn a_restored_state_continues_exactly() {
        let values = noise(4000, 9);
        let whole = run_stream::<SubsequenceKnn>(knn(10, 3, 300), &values);
        for cut in [5, 100, 2500] {
            let split = run_with_restore::<SubsequenceKnn>(knn(10, 3, 300), &values, cut);
            assert_eq!(format!("{whole:?}"), format!("{split:?}"), "cut {cut}");
        }
    }
}
