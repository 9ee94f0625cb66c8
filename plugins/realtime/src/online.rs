//! What every detector of this family shares: it judges one event, then learns from it,
//! so a batch is the same loop as a stream and chunked, per-event and whole-batch scoring
//! agree exactly.

use adr_sdk::{DetectorError, Event, Frame, Score, ScoresMut};

/// A detector that scores an event against what it has learnt, then learns it.
pub(crate) trait Online {
    /// Judges the event at `ts` with input values `row` (one per input column), then
    /// learns from it.
    fn step(&mut self, ts: i64, row: &[f64]) -> Score;
}

/// Runs `detector` over every row of `frame`, in order.
pub(crate) fn score_frame<O: Online>(
    detector: &mut O,
    frame: &Frame<'_>,
    out: &mut ScoresMut<'_>,
) -> Result<(), DetectorError> {
    let columns = (0..frame.columns().len())
        .map(|i| frame.f64(i))
        .collect::<Result<Vec<_>, _>>()?;
    let mut row = vec![0.0; columns.len()];
    for (i, &ts) in frame.timestamps().iter().enumerate() {
        for (x, column) in row.iter_mut().zip(&columns) {
            *x = column[i];
        }
        out.set(i, detector.step(ts, &row));
    }
    Ok(())
}

/// Scores one event.
pub(crate) fn score_event<O: Online>(
    detector: &mut O,
    event: &Event<'_>,
) -> Result<Score, DetectorError> {
    Ok(detector.step(event.timestamp(), event.values()))
}

/// The `Detector` methods that hand scoring to [`Online::step`] and the state to the
/// detector's `save_state`/`restore_state`.
macro_rules! online_detector {
    () => {
        fn score(
            &mut self,
            frame: &adr_sdk::Frame<'_>,
            out: &mut adr_sdk::ScoresMut<'_>,
        ) -> Result<(), adr_sdk::DetectorError> {
            $crate::online::score_frame(self, frame, out)
        }

        fn update(
            &mut self,
            event: &adr_sdk::Event<'_>,
        ) -> Result<adr_sdk::Score, adr_sdk::DetectorError> {
            $crate::online::score_event(self, event)
        }

        fn save(&self) -> Option<Vec<u8>> {
            let mut w = adr_sdk::state::Writer::default();
            self.save_state(&mut w);
            Some(w.bytes)
        }

        fn restore(&mut self, state: &[u8]) -> Result<(), adr_sdk::DetectorError> {
            let mut r = adr_sdk::state::Reader::new(state);
            let restored = Self::restore_state(&self.params, &mut r)?;
            r.end()?;
            *self = restored;
            Ok(())
        }
    };
}
pub(crate) use online_detector;

/// Which deviations count: the SDK's choice, shared by the families.
pub use adr_sdk::params::Side;

pub(crate) use adr_sdk::params::standardise;

/// Running mean and population variance (Welford), for warm-ups.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Welford {
    pub(crate) n: u64,
    pub(crate) mean: f64,
    m2: f64,
}

impl Welford {
    pub(crate) fn push(&mut self, x: f64) {
        self.n += 1;
        let d = x - self.mean;
        self.mean += d / self.n as f64;
        self.m2 += d * (x - self.mean);
    }

    /// Population variance (0 before two points).
    pub(crate) fn variance(&self) -> f64 {
        if self.n < 2 {
            0.0
        } else {
            self.m2 / self.n as f64
        }
    }

    pub(crate) fn save(&self, w: &mut adr_sdk::state::Writer) {
        w.count(self.n as usize);
        w.number(self.mean);
        w.number(self.m2);
    }

    pub(crate) fn restore(r: &mut adr_sdk::state::Reader<'_>) -> Result<Self, DetectorError> {
        Ok(Welford {
            n: r.count(usize::MAX)? as u64,
            mean: r.number()?,
            m2: r.number()?,
        })
    }
}

/// Bytes of a vector grown to `n` values of `each` bytes: a vector doubles as it grows, so
/// up to the next power of two (see [`adr_sdk::Detector::state_bytes`]).
pub(crate) fn grown(n: usize, each: u64) -> u64 {
    (n as u64).max(1).next_power_of_two().saturating_mul(each)
}

/// The fixed part of a detector's state estimate: its parameters and scalars.
pub(crate) const FIXED_BYTES: u64 = 256;

/// Inputs beyond this magnitude are treated as ±inf: their squares, which every
/// detector's variance or distance takes, would overflow and poison its state.
pub(crate) const LARGEST_INPUT: f64 = 1e150;

/// Whether a detector may judge and learn `x`: not NaN, and within ±[`LARGEST_INPUT`].
#[inline]
pub(crate) fn learnable(x: f64) -> bool {
    x.abs() <= LARGEST_INPUT
}

/// The first input, or `None` when it is not [`learnable`] (such events are never judged
/// and never learnt).
#[inline]
pub(crate) fn finite(row: &[f64]) -> Option<f64> {
    row.first().copied().filter(|&x| learnable(x))
}
