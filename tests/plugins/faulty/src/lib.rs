//! A plugin whose detector panics on purpose (while scoring, or while being built), to
//! test that the engine survives it.

use adr_sdk::{Detector, DetectorError, Event, Frame, Score, ScoresMut};

adr_sdk::params! {
    /// Parameters of [`Panics`].
    pub struct PanicsParams {
        /// Points scored normally before the detector panics.
        after: usize = 2;
        /// Panic while being built instead.
        in_new: bool = false;
    }
}

/// Scores every point 0, and panics on the point after the first `after`.
#[derive(Debug)]
pub struct Panics {
    after: usize,
    seen: usize,
}

impl Panics {
    fn next(&mut self) -> Score {
        if self.seen == self.after {
            panic!("deliberate panic after {} points", self.after);
        }
        self.seen += 1;
        Score::new(0.0, 0.0)
    }
}

impl Detector for Panics {
    type Params = PanicsParams;
    const NAME: &'static str = "panics";
    const SUMMARY: &'static str = "panics after `after` points (for tests)";

    fn new(params: PanicsParams, _inputs: &[String]) -> Result<Self, DetectorError> {
        if params.in_new {
            panic!("deliberate panic while being built");
        }
        Ok(Panics {
            after: params.after,
            seen: 0,
        })
    }

    fn score(&mut self, frame: &Frame<'_>, out: &mut ScoresMut<'_>) -> Result<(), DetectorError> {
        for i in 0..frame.len() {
            out.set(i, self.next());
        }
        Ok(())
    }

    fn update(&mut self, _event: &Event<'_>) -> Result<Score, DetectorError> {
        Ok(self.next())
    }
}

adr_sdk::export_detectors!(family = "faulty", detectors = [Panics]);
