//! A plugin "from the future": same code, bumped SDK ABI version.

use adr_sdk::{Detector, DetectorError, Event, Frame, Score, ScoresMut};

adr_sdk::params! {
    /// No parameters.
    pub struct EchoParams {}
}

/// Scores every point 0.
#[derive(Debug)]
pub struct Echo;

impl Detector for Echo {
    type Params = EchoParams;
    const NAME: &'static str = "echo";
    const SUMMARY: &'static str = "scores every point 0";

    fn new(_: EchoParams, _: &[String]) -> Result<Self, DetectorError> {
        Ok(Echo)
    }

    fn score(&mut self, frame: &Frame<'_>, out: &mut ScoresMut<'_>) -> Result<(), DetectorError> {
        (0..frame.len()).for_each(|i| out.set(i, Score::new(0.0, 0.0)));
        Ok(())
    }

    fn update(&mut self, _: &Event<'_>) -> Result<Score, DetectorError> {
        Ok(Score::new(0.0, 0.0))
    }
}

adr_sdk::export_detectors!(family = "future", detectors = [Echo]);
