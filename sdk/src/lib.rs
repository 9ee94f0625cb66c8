//! The SDK every adr detector plugin is built against.
//!
//! A plugin author writes plain Rust: one type per detector implementing [`Detector`], a
//! parameter struct declared with [`params!`], and one [`export_detectors!`] line that
//! turns the crate (built as a `cdylib`) into a plugin the `adr` engine loads at run time:
//!
//! ```
//! use adr_sdk::{Detector, DetectorError, Event, Frame, Score, ScoresMut};
//!
//! adr_sdk::params! {
//!     /// Parameters of [`Magnitude`].
//!     pub struct MagnitudeParams {
//!         /// |x| at or above which a point is an anomaly.
//!         threshold: f64 = 3.0, min > 0.0;
//!     }
//! }
//!
//! /// Flags values far from zero.
//! #[derive(Debug)]
//! pub struct Magnitude {
//!     threshold: f64,
//! }
//!
//! impl Detector for Magnitude {
//!     type Params = MagnitudeParams;
//!     const NAME: &'static str = "magnitude";
//!     const SUMMARY: &'static str = "|x| against a threshold";
//!
//!     fn new(params: MagnitudeParams, _inputs: &[String]) -> Result<Self, DetectorError> {
//!         Ok(Magnitude { threshold: params.threshold })
//!     }
//!
//!     fn score(&mut self, frame: &Frame<'_>, out: &mut ScoresMut<'_>) -> Result<(), DetectorError> {
//!         for (i, x) in frame.f64(0)?.iter().enumerate() {
//!             out.set(i, self.judge(*x));
//!         }
//!         Ok(())
//!     }
//!
//!     fn update(&mut self, event: &Event<'_>) -> Result<Score, DetectorError> {
//!         Ok(self.judge(event.value(0)?))
//!     }
//! }
//!
//! impl Magnitude {
//!     fn judge(&self, x: f64) -> Score {
//!         if x.is_finite() { Score::from_ratio(x.abs(), self.threshold) } else { Score::UNDETERMINED }
//!     }
//! }
//!
//! adr_sdk::export_detectors!(family = "example", detectors = [Magnitude]);
//! # fn main() {}
//! ```
//!
//! # Design
//!
//! * **Stable ABI, hidden.** Plugins and the engine may be built by different compilers
//!   at different times, so everything that crosses the library boundary is a
//!   `#[repr(C)]` type checked by [`abi_stable`] when the plugin is loaded: the layout of
//!   every type and the SDK's ABI version ([`ABI_VERSION`]). Plugin authors never name an
//!   `abi_stable` type; the few that appear in this crate's signatures are wrapped
//!   ([`Frame`], [`ScoresMut`], [`Event`]).
//! * **Zero copy, batch first.** Input crosses as borrowed columns ([`Frame`]) and output
//!   is written into buffers the engine owns ([`ScoresMut`]): one call per batch amortises
//!   the cost of the boundary. [`Detector::update`] scores one streaming event.
//! * **Panics stay inside.** Every call into a plugin runs under `catch_unwind`; a panic
//!   becomes a [`DetectorError`] of kind [`ErrorKind::Panicked`], the detector is marked
//!   poisoned until it is [reset](host::DetectorHandle::reset), and the engine keeps running.
//! * **One score contract for every family** (see [`score`]): a raw score (higher is more
//!   anomalous), a normalised score in `[0, 1]` that is `0.5` exactly at the detector's
//!   alarm threshold, and a [`Verdict`]. Ensembles vote across families on that contract.
//!
//! # ABI evolution
//!
//! The root module and the detector vtable are `abi_stable` prefix types: fields are only
//! ever appended, so an engine can load a plugin built against an older SDK with the same
//! [`ABI_VERSION`] major (or, while `0.x`, minor) number. Any other change bumps
//! [`ABI_VERSION`], and the engine refuses plugins built against another one with a
//! message naming both versions.

mod detector;
mod error;
mod export;
mod frame;
pub mod lane_math;
pub mod params;
pub mod score;
pub mod state;
pub mod window;

#[doc(hidden)]
pub mod ffi;
pub mod host;

pub use detector::{Arity, Detector, DetectorInfo};
pub use error::{DetectorError, ErrorKind};
pub use frame::{Column, Dictionary, Event, Frame, FrameError};
pub use params::{DetectorParams, ParamError, ParamKind, ParamSpec, ParamValue, Window};
pub use score::{Score, ScoresMut, Verdict};
pub use window::Bounded;

/// The version of the plugin ABI this SDK speaks; the engine loads only plugins whose ABI
/// version is compatible with its own (same major version, or same minor while `0.x`).
///
/// 0.2: a streaming event crosses by reference (`FfiDetector::update`), not copied.
/// 0.3: a detector reports its state's size (`FfiDetector::state_bytes`).
#[cfg(not(feature = "__bump-abi-version-for-tests"))]
pub const ABI_VERSION: &str = "0.3.0";
/// The version of the plugin ABI this SDK speaks (bumped on purpose for the loader tests).
#[cfg(feature = "__bump-abi-version-for-tests")]
pub const ABI_VERSION: &str = "0.4.0";

/// Items the export macros expand to; not part of the public API.
#[doc(hidden)]
pub mod __private {
    pub use crate::ffi::{
        create_detector, describe_detector, guard_extern, DetectorBox, FfiDetectorInfo, FfiError,
        FfiParam, PluginModule, PluginRef,
    };
    pub use abi_stable;
}
