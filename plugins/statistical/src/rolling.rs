//! The scoring loop shared by the rolling detectors (z-score, MAD, IQR, Tukey): each point
//! is judged against the window of points before it, then joins the window; in whole-batch
//! mode every point is judged against its whole batch, itself included.
//!
//! Non-finite values (NaN, ±inf) are never judged and never enter a window: their score
//! is undetermined and the window is unchanged.

use adr_sdk::{DetectorError, ErrorKind, Event, Frame, Score, ScoresMut, Verdict, Window};
use rayon::prelude::*;

use crate::window::{Points, Tracker, REBUILD_EVERY};

/// Points per parallel chunk: large enough to amortise seeding a window, a multiple of
/// [`REBUILD_EVERY`] so every chunk starts where a sequential run rebuilds too.
const CHUNK: usize = 64 * REBUILD_EVERY as usize;

/// A window and the statistic tracked over it.
#[derive(Debug, Clone)]
pub(crate) struct Rolling<T> {
    window: Window,
    min_points: usize,
    points: Points,
    tracker: T,
}

impl<T: Tracker + Default + Clone + Send + Sync> Rolling<T> {
    /// `min_points = 0` means: the full window for a count window, 2 points otherwise.
    pub(crate) fn new(window: Window, min_points: usize) -> Self {
        let min_points = match (min_points, window) {
            (0, Window::Count(n)) => n,
            (0, _) => 2,
            (m, _) => m.max(2),
        };
        Rolling {
            window,
            min_points,
            points: Points::new(window),
            tracker: T::default(),
        }
    }

    pub(crate) fn whole_batch(&self) -> bool {
        self.window == Window::Batch
    }

    /// See [`adr_sdk::Detector::state_bytes`].
    pub(crate) fn state_bytes(&self) -> Option<u64> {
        crate::window::window_bytes(self.window, T::BYTES_PER_POINT)
    }

    /// Scores a frame's first input column.
    pub(crate) fn score(
        &mut self,
        frame: &Frame<'_>,
        out: &mut ScoresMut<'_>,
        judge: impl Fn(&T, f64) -> Score + Sync,
    ) -> Result<(), DetectorError> {
        let values = frame.f64(0)?;
        if self.whole_batch() {
            let finite: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
            let tracker = T::from_window(&finite);
            let enough = finite.len() >= self.min_points;
            for (i, &x) in values.iter().enumerate() {
                let score = if enough && x.is_finite() {
                    judge(&tracker, x)
                } else {
                    Score::UNDETERMINED
                };
                out.set(i, score);
            }
            return Ok(());
        }
        let ts = frame.timestamps();
        let (raw, normalised, verdict) = out.columns_mut();
        if let Some(split) = self.parallel_split(values) {
            return self.score_parallel(ts, values, split, (raw, normalised, verdict), &judge);
        }
        self.run(ts, values, raw, normalised, verdict, &judge);
        Ok(())
    }

    fn run(
        &mut self,
        ts: &[i64],
        values: &[f64],
        raw: &mut [f64],
        normalised: &mut [f64],
        verdict: &mut [Verdict],
        judge: &impl Fn(&T, f64) -> Score,
    ) {
        let outputs = raw
            .iter_mut()
            .zip(normalised.iter_mut())
            .zip(verdict.iter_mut());
        for ((&t, &x), ((r, n), v)) in ts.iter().zip(values).zip(outputs) {
            let s = self.step(t, x, judge);
            (*r, *n, *v) = (s.raw, s.normalised, s.verdict);
        }
    }

    /// Where the first parallel chunk starts, if the batch is worth splitting: a count
    /// window, every value finite (so the window before any point is the `w` values before
    /// it in the frame), and the first chunk boundary, which must fall where a sequential
    /// run rebuilds its tracker, at least `w` points in.
    fn parallel_split(&self, values: &[f64]) -> Option<usize> {
        let Window::Count(w) = self.window else {
            return None;
        };
        if values.len() < 2 * CHUNK
            || rayon::current_num_threads() < 2
            || !values.iter().all(|x| x.is_finite())
        {
            return None;
        }
        let pushed = self.points.pushed();
        let to_boundary = ((REBUILD_EVERY - pushed % REBUILD_EVERY) % REBUILD_EVERY) as usize;
        let first = to_boundary
            + (w.max(CHUNK) - to_boundary).div_ceil(REBUILD_EVERY as usize)
                * REBUILD_EVERY as usize;
        (first < values.len()).then_some(first)
    }

    /// Scores `values[..split]` on this window, and each chunk after it on a window seeded
    /// from the `w` values before the chunk, in parallel. Every chunk starts at a rebuild
    /// position, so the numbers are exactly those of a sequential run.
    fn score_parallel(
        &mut self,
        ts: &[i64],
        values: &[f64],
        split: usize,
        (raw, normalised, verdict): (&mut [f64], &mut [f64], &mut [Verdict]),
        judge: &(impl Fn(&T, f64) -> Score + Sync),
    ) -> Result<(), DetectorError> {
        let Window::Count(w) = self.window else {
            unreachable!("parallel scoring needs a count window")
        };
        let start_pushed = self.points.pushed();
        let (raw_head, raw_tail) = raw.split_at_mut(split);
        let (norm_head, norm_tail) = normalised.split_at_mut(split);
        let (verdict_head, verdict_tail) = verdict.split_at_mut(split);
        let template = Rolling {
            window: self.window,
            min_points: self.min_points,
            points: Points::new(self.window),
            tracker: T::default(),
        };
        let mut tails: Vec<Rolling<T>> = raw_tail
            .par_chunks_mut(CHUNK)
            .zip(norm_tail.par_chunks_mut(CHUNK))
            .zip(verdict_tail.par_chunks_mut(CHUNK))
            .enumerate()
            .map(|(k, ((r, n), v))| {
                let start = split + k * CHUNK;
                let end = start + r.len();
                let mut rolling = template.clone();
                rolling.points = Points::seeded(
                    self.window,
                    &ts[start - w..start],
                    &values[start - w..start],
                    start_pushed + start as u64,
                );
                rolling.tracker = T::from_window(&values[start - w..start]);
                rolling.run(&ts[start..end], &values[start..end], r, n, v, judge);
                rolling
            })
            .collect();
        self.run(
            &ts[..split],
            &values[..split],
            raw_head,
            norm_head,
            verdict_head,
            judge,
        );
        *self = tails.pop().expect("at least one chunk after the split");
        Ok(())
    }

    /// Scores one event's first input value, then adds it to the window.
    pub(crate) fn update(
        &mut self,
        event: &Event<'_>,
        judge: impl Fn(&T, f64) -> Score,
    ) -> Result<Score, DetectorError> {
        if self.whole_batch() {
            return Err(DetectorError::new(
                ErrorKind::Unsupported,
                "window = batch judges whole batches only; give a count or a duration to stream",
            ));
        }
        Ok(self.step(event.timestamp(), event.value(0)?, &judge))
    }

    #[inline]
    fn step(&mut self, t: i64, x: f64, judge: &impl Fn(&T, f64) -> Score) -> Score {
        if !x.is_finite() {
            return Score::UNDETERMINED;
        }
        self.points.expire(t, &mut self.tracker);
        let score = if self.points.len() >= self.min_points {
            judge(&self.tracker, x)
        } else {
            Score::UNDETERMINED
        };
        self.points.push(t, x, &mut self.tracker);
        score
    }

    pub(crate) fn save(&self) -> Option<Vec<u8>> {
        (!self.whole_batch()).then(|| self.points.save(&self.tracker))
    }

    pub(crate) fn restore(&mut self, state: &[u8]) -> Result<(), DetectorError> {
        self.points.restore(state, &mut self.tracker)
    }
}

/// Which deviations count: the SDK's choice, shared by the families.
pub use adr_sdk::params::Side;

pub(crate) use adr_sdk::params::standardise;
