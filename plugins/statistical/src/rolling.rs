//! The scoring loop shared by the rolling detectors (z-score, MAD, IQR, Tukey): each point
//! is judged against the window of points before it, then joins the window; in whole-batch
//! mode every point is judged against its whole batch, itself included.
//!
//! Non-finite values (NaN, ±inf) are never judged and never enter a window: their score
//! is undetermined and the window is unchanged.

use adr_sdk::{DetectorError, ErrorKind, Event, Frame, Score, ScoresMut, Window};

use crate::window::{Points, Tracker};

/// A window and the statistic tracked over it.
#[derive(Debug, Clone)]
pub(crate) struct Rolling<T> {
    window: Window,
    min_points: usize,
    points: Points,
    tracker: T,
}

/// A statistic that can also be built in one go over a whole batch.
pub(crate) trait BatchTracker: Tracker + Default {
    fn build(values: &[f64]) -> Self;
}

impl<T: BatchTracker> Rolling<T> {
    /// `min_points = 0` means: the full window for a count window, 2 points otherwise.
    pub(crate) fn new(window: Window, min_points: usize) -> Self {
        let min_points = match (min_points, window) {
            (0, Window::Count(n)) => n,
            (0, _) => 2,
            (m, _) => m.max(2),
        };
        Rolling { window, min_points, points: Points::new(window), tracker: T::default() }
    }

    pub(crate) fn whole_batch(&self) -> bool {
        self.window == Window::Batch
    }

    /// Scores a frame's first input column.
    pub(crate) fn score(
        &mut self,
        frame: &Frame<'_>,
        out: &mut ScoresMut<'_>,
        judge: impl Fn(&T, f64) -> Score,
    ) -> Result<(), DetectorError> {
        let values = frame.f64(0)?;
        if self.whole_batch() {
            let finite: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
            let tracker = T::build(&finite);
            let enough = finite.len() >= self.min_points;
            for (i, &x) in values.iter().enumerate() {
                let score = if enough && x.is_finite() { judge(&tracker, x) } else { Score::UNDETERMINED };
                out.set(i, score);
            }
            return Ok(());
        }
        let ts = frame.timestamps();
        for (i, (&t, &x)) in ts.iter().zip(values).enumerate() {
            out.set(i, self.step(t, x, &judge));
        }
        Ok(())
    }

    /// Scores one event's first input value, then adds it to the window.
    pub(crate) fn update(&mut self, event: &Event<'_>, judge: impl Fn(&T, f64) -> Score) -> Result<Score, DetectorError> {
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
        let score = if self.points.len() >= self.min_points { judge(&self.tracker, x) } else { Score::UNDETERMINED };
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

adr_sdk::param_choice! {
    /// Which deviations from the centre count as anomalous.
    pub enum Side {
        /// Both tails: spikes and drops.
        Both = "both",
        /// Only values above the centre (spikes, pumps).
        Upper = "upper",
        /// Only values below the centre (drops, crashes).
        Lower = "lower",
    }
}

impl Side {
    /// The raw score of a signed deviation: its size on the tails that count, else 0.
    #[inline]
    pub(crate) fn apply(self, signed: f64) -> f64 {
        match self {
            Side::Both => signed.abs(),
            Side::Upper => signed.max(0.0),
            Side::Lower => (-signed).max(0.0),
        }
    }
}

/// `(x − centre) / scale`, with a zero scale giving 0 for `x = centre` and ±inf otherwise.
#[inline]
pub(crate) fn standardise(x: f64, centre: f64, scale: f64) -> f64 {
    let d = x - centre;
    if scale > 0.0 {
        d / scale
    } else if d == 0.0 {
        0.0
    } else {
        d.signum() * f64::INFINITY
    }
}
