//! The trait a plugin author implements, once per detector.

use crate::{params::DetectorParams, DetectorError, Event, Frame, ParamSpec, Score, ScoresMut};

/// How many input columns a detector takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arity {
    /// Exactly this many.
    Exactly(u32),
    /// This many or more.
    AtLeast(u32),
}

impl Arity {
    /// Whether `n` inputs are acceptable.
    pub fn accepts(self, n: usize) -> bool {
        match self {
            Arity::Exactly(k) => n == k as usize,
            Arity::AtLeast(k) => n >= k as usize,
        }
    }
}

impl std::fmt::Display for Arity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Arity::Exactly(1) => f.write_str("1 column"),
            Arity::Exactly(k) => write!(f, "{k} columns"),
            Arity::AtLeast(k) => write!(f, "{k} or more columns"),
        }
    }
}

/// A detector: a type with a parameter struct, batch scoring and streaming updates.
///
/// The SDK calls these methods under `catch_unwind`; a panic is reported as an error of
/// kind [`Panicked`](crate::ErrorKind::Panicked) and the detector is rebuilt from its
/// parameters before it is used again. State carries over between calls: a batch continues
/// where the previous batch or event left off, so feeding a series in chunks or one event
/// at a time gives the same scores as one batch (except in whole-batch mode).
pub trait Detector: Send + Sized + 'static {
    /// The parameter struct, declared with [`params!`](crate::params!).
    type Params: DetectorParams;

    /// The name used in rules, snake_case: `zscore`.
    const NAME: &'static str;
    /// One line for `adr plugins`.
    const SUMMARY: &'static str;
    /// The formula, the normalisation and the NaN/inf policy, for `adr plugins --doc`.
    const DOC: &'static str = "";
    /// How many input columns the detector takes.
    const INPUTS: Arity = Arity::Exactly(1);
    /// Version of the format [`save`](Self::save) writes; bump it when the format changes
    /// so a restore from an older format is refused instead of misread.
    const STATE_VERSION: u32 = 1;

    /// Builds the detector from checked parameters; `inputs` names the bound columns.
    ///
    /// # Errors
    ///
    /// An [`InvalidParams`](crate::ErrorKind::InvalidParams) error for combinations of
    /// parameters the schema alone cannot rule out.
    fn new(params: Self::Params, inputs: &[String]) -> Result<Self, DetectorError>;

    /// Scores every point of `frame` into `out` (of the frame's length).
    ///
    /// # Errors
    ///
    /// An [`InvalidInput`](crate::ErrorKind::InvalidInput) error if the frame does not fit
    /// (for example a whole-batch test on a sample it does not support).
    fn score(&mut self, frame: &Frame<'_>, out: &mut ScoresMut<'_>) -> Result<(), DetectorError>;

    /// Scores one streaming event, then learns from it.
    ///
    /// # Errors
    ///
    /// An [`Unsupported`](crate::ErrorKind::Unsupported) error if the detector is
    /// configured to score whole batches only.
    fn update(&mut self, event: &Event<'_>) -> Result<Score, DetectorError>;

    /// Whether [`score`](Self::score) needs the whole series in one call (a whole-batch
    /// test) rather than accepting it in chunks.
    fn needs_whole_series(&self) -> bool {
        false
    }

    /// The most memory, in bytes, that this detector's state for one key can take with
    /// its parameters and inputs, once every window, buffer and tree it keeps is full;
    /// `None` where it cannot be known from the parameters (a window of event time holds
    /// as many points as arrive in it).
    ///
    /// The engine adds the estimates of a rule set's detectors into a per-key estimate,
    /// shows it (`adr check`, `adr explain`) and refuses a rule set whose keys would not
    /// fit a memory budget (`--max-state`) at check and at reload, before anything runs.
    /// An estimate must therefore not be low: count what grows with the data up to its
    /// bound, at the size of the values held (8 bytes an `f64`, 16 a timestamped point),
    /// and leave out only what is small and fixed. Default: `None`.
    /// See `docs/state-budget.md`.
    fn state_bytes(&self) -> Option<u64> {
        None
    }

    /// The detector's learned state, to carry it over a reload or a restart; `None` if
    /// the detector keeps no state worth saving. The SDK adds a header with the detector's
    /// name and [`STATE_VERSION`](Self::STATE_VERSION).
    fn save(&self) -> Option<Vec<u8>> {
        None
    }

    /// Restores a state written by [`save`](Self::save) with the same `STATE_VERSION`.
    ///
    /// # Errors
    ///
    /// An [`IncompatibleState`](crate::ErrorKind::IncompatibleState) error if the bytes
    /// cannot be read.
    fn restore(&mut self, state: &[u8]) -> Result<(), DetectorError> {
        let _ = state;
        Err(DetectorError::new(
            crate::ErrorKind::Unsupported,
            format!("detector `{}` does not restore state", Self::NAME),
        ))
    }
}

/// What a plugin says about one of its detectors.
#[derive(Debug, Clone, PartialEq)]
pub struct DetectorInfo {
    /// The name used in rules: `zscore`.
    pub name: String,
    /// One line.
    pub summary: String,
    /// Formula, normalisation and NaN policy.
    pub doc: String,
    /// How many input columns it takes.
    pub inputs: Arity,
    /// Its parameters.
    pub params: Vec<ParamSpec>,
}

impl DetectorInfo {
    /// The info of detector type `D`.
    pub fn of<D: Detector>() -> Self {
        DetectorInfo {
            name: D::NAME.to_owned(),
            summary: D::SUMMARY.to_owned(),
            doc: D::DOC.trim().to_owned(),
            inputs: D::INPUTS,
            params: D::Params::schema(),
        }
    }
}
