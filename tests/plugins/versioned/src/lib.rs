//! A detector that counts its events, for the plugin hot-swap tests. Each build reports
//! its package version: the raw score of an event is `major × 1,000,000 + events seen`,
//! so a test sees which build scored it and whether the count carried over. Builds of
//! major version 3 and later write another state format (`STATE_VERSION` 2), so a move
//! from an older build cannot restore its state.

use adr_sdk::{Detector, DetectorError, ErrorKind, Event, Frame, Score, ScoresMut};

adr_sdk::params! {
    /// Parameters of [`Count`].
    pub struct CountParams {
        /// Added to every raw score.
        offset: f64 = 0.0;
    }
}

const MAJOR: &str = env!("CARGO_PKG_VERSION_MAJOR");

/// Counts events; scores `major × 1e6 + count + offset`, never anomalous.
#[derive(Debug)]
pub struct Count {
    seen: u64,
    offset: f64,
    major: f64,
}

impl Count {
    fn next(&mut self) -> Score {
        self.seen += 1;
        Score::new(
            self.major * 1e6 + self.seen as f64 + self.offset,
            0.0,
        )
    }
}

impl Detector for Count {
    type Params = CountParams;
    const NAME: &'static str = "count";
    const SUMMARY: &'static str = "counts events; the raw score tells the build (for tests)";
    const STATE_VERSION: u32 = match MAJOR.as_bytes() {
        b"1" | b"2" => 1,
        _ => 2,
    };

    fn new(params: CountParams, _inputs: &[String]) -> Result<Self, DetectorError> {
        Ok(Count {
            seen: 0,
            offset: params.offset,
            major: MAJOR.parse().unwrap_or(0.0),
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

    fn save(&self) -> Option<Vec<u8>> {
        Some(self.seen.to_le_bytes().to_vec())
    }

    fn restore(&mut self, state: &[u8]) -> Result<(), DetectorError> {
        let bytes: [u8; 8] = state.try_into().map_err(|_| {
            DetectorError::new(
                ErrorKind::IncompatibleState,
                format!("a count state is 8 bytes, got {}", state.len()),
            )
        })?;
        self.seen = u64::from_le_bytes(bytes);
        Ok(())
    }
}

adr_sdk::export_detectors!(family = "versioned", detectors = [Count]);
