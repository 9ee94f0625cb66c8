//! The stable-ABI types that cross the plugin boundary, and the glue the export macro
//! generates around a plain [`Detector`]. Not part of the public API: plugin authors use
//! [`export_detectors!`](crate::export_detectors!), hosts use [`host`](crate::host).
//!
//! Every `extern "C"` entry point and every vtable method runs its body under
//! `catch_unwind`, because unwinding across the boundary would abort the engine.

// `#[sabi_trait]` expands to impls inside a function body.
#![allow(non_local_definitions)]

use std::panic::{catch_unwind, AssertUnwindSafe};

use abi_stable::{
    declare_root_module_statics,
    library::RootModule,
    sabi_trait,
    sabi_types::VersionStrings,
    std_types::{RBox, ROption, RResult, RSlice, RStr, RString, RVec},
    StableAbi,
};

use crate::{
    params::{Bound, ParamKind, ParamSpec, ParamValue},
    Arity, Detector, DetectorError, DetectorInfo, DetectorParams, ErrorKind, Event, Frame, Score,
    ScoresMut,
};

/// The name of the static that holds an abi_stable library's header; the export macro
/// needs it as a literal (a test pins it to abi_stable's constant).
#[macro_export]
#[doc(hidden)]
macro_rules! __root_loader_symbol {
    () => {
        "_1as_0lib_1header_0root_bmodule_bloader"
    };
}

/// An error as it crosses the boundary.
#[repr(C)]
#[derive(Debug, Clone, StableAbi)]
pub struct FfiError {
    kind: u8,
    message: RString,
}

impl From<DetectorError> for FfiError {
    fn from(e: DetectorError) -> Self {
        FfiError {
            kind: e.kind() as u8,
            message: e.message().into(),
        }
    }
}

impl From<FfiError> for DetectorError {
    fn from(e: FfiError) -> Self {
        DetectorError::new(ErrorKind::from_code(e.kind), e.message.into_string())
    }
}

/// A parameter value as it crosses the boundary.
#[repr(C, u8)]
#[derive(Debug, Clone, StableAbi)]
pub enum FfiParamValue {
    /// See [`ParamValue::Int`].
    Int(i64),
    /// See [`ParamValue::Float`].
    Float(f64),
    /// See [`ParamValue::Bool`].
    Bool(bool),
    /// See [`ParamValue::Text`].
    Text(RString),
    /// See [`ParamValue::Duration`].
    Duration(i64),
}

impl From<&ParamValue> for FfiParamValue {
    fn from(v: &ParamValue) -> Self {
        match v {
            ParamValue::Int(x) => FfiParamValue::Int(*x),
            ParamValue::Float(x) => FfiParamValue::Float(*x),
            ParamValue::Bool(x) => FfiParamValue::Bool(*x),
            ParamValue::Text(x) => FfiParamValue::Text(x.as_str().into()),
            ParamValue::Duration(x) => FfiParamValue::Duration(*x),
        }
    }
}

impl From<&FfiParamValue> for ParamValue {
    fn from(v: &FfiParamValue) -> Self {
        match v {
            FfiParamValue::Int(x) => ParamValue::Int(*x),
            FfiParamValue::Float(x) => ParamValue::Float(*x),
            FfiParamValue::Bool(x) => ParamValue::Bool(*x),
            FfiParamValue::Text(x) => ParamValue::Text(x.to_string()),
            FfiParamValue::Duration(x) => ParamValue::Duration(*x),
        }
    }
}

/// A `(name, value)` parameter as it crosses the boundary.
#[repr(C)]
#[derive(Debug, Clone, StableAbi)]
pub struct FfiParam {
    /// The parameter's name.
    pub name: RString,
    /// Its value.
    pub value: FfiParamValue,
}

#[repr(C)]
#[derive(Debug, Clone, Copy, StableAbi)]
struct FfiBound {
    value: f64,
    inclusive: bool,
}

/// A parameter spec as it crosses the boundary.
#[repr(C)]
#[derive(Debug, Clone, StableAbi)]
pub struct FfiParamSpec {
    name: RString,
    kind: u8,
    default: FfiParamValue,
    min: ROption<FfiBound>,
    max: ROption<FfiBound>,
    choices: RVec<RString>,
    doc: RString,
}

impl From<&ParamSpec> for FfiParamSpec {
    fn from(s: &ParamSpec) -> Self {
        let bound = |b: Option<Bound>| {
            b.map(|b| FfiBound {
                value: b.value,
                inclusive: b.inclusive,
            })
            .into()
        };
        FfiParamSpec {
            name: s.name.as_str().into(),
            kind: s.kind as u8,
            default: (&s.default).into(),
            min: bound(s.min),
            max: bound(s.max),
            choices: s
                .choices
                .iter()
                .map(|c| RString::from(c.as_str()))
                .collect(),
            doc: s.doc.as_str().into(),
        }
    }
}

impl TryFrom<&FfiParamSpec> for ParamSpec {
    type Error = DetectorError;
    fn try_from(s: &FfiParamSpec) -> Result<Self, DetectorError> {
        let kind = ParamKind::from_code(s.kind).ok_or_else(|| {
            DetectorError::failed(format!(
                "parameter `{}` has an unknown kind code {}",
                s.name, s.kind
            ))
        })?;
        let bound = |b: ROption<FfiBound>| {
            b.into_option().map(|b| Bound {
                value: b.value,
                inclusive: b.inclusive,
            })
        };
        Ok(ParamSpec {
            name: s.name.to_string(),
            kind,
            default: (&s.default).into(),
            min: bound(s.min),
            max: bound(s.max),
            choices: s.choices.iter().map(|c| c.to_string()).collect(),
            doc: s.doc.to_string(),
        })
    }
}

/// A detector's description as it crosses the boundary.
#[repr(C)]
#[derive(Debug, Clone, StableAbi)]
pub struct FfiDetectorInfo {
    name: RString,
    summary: RString,
    doc: RString,
    inputs_min: u32,
    inputs_exact: bool,
    params: RVec<FfiParamSpec>,
}

impl From<&DetectorInfo> for FfiDetectorInfo {
    fn from(d: &DetectorInfo) -> Self {
        let (inputs_min, inputs_exact) = match d.inputs {
            Arity::Exactly(k) => (k, true),
            Arity::AtLeast(k) => (k, false),
        };
        FfiDetectorInfo {
            name: d.name.as_str().into(),
            summary: d.summary.as_str().into(),
            doc: d.doc.as_str().into(),
            inputs_min,
            inputs_exact,
            params: d.params.iter().map(FfiParamSpec::from).collect(),
        }
    }
}

impl TryFrom<&FfiDetectorInfo> for DetectorInfo {
    type Error = DetectorError;
    fn try_from(d: &FfiDetectorInfo) -> Result<Self, DetectorError> {
        Ok(DetectorInfo {
            name: d.name.to_string(),
            summary: d.summary.to_string(),
            doc: d.doc.to_string(),
            inputs: if d.inputs_exact {
                Arity::Exactly(d.inputs_min)
            } else {
                Arity::AtLeast(d.inputs_min)
            },
            params: d
                .params
                .iter()
                .map(ParamSpec::try_from)
                .collect::<Result<_, _>>()?,
        })
    }
}

/// The vtable of a live detector; implemented by [`Adapter`] around a [`Detector`].
#[sabi_trait]
pub trait FfiDetector: Send {
    /// See [`Detector::score`].
    fn score(&mut self, frame: Frame<'_>, out: ScoresMut<'_>) -> RResult<(), FfiError>;
    /// See [`Detector::update`]. The event crosses by reference: copied as an argument,
    /// its fields (just written one by one) would be read back as wider words, which
    /// waits for the stores to reach the cache, half the cost of a light detector's call.
    fn update(&mut self, event: &Event<'_>) -> RResult<Score, FfiError>;
    /// See [`Detector::needs_whole_series`].
    fn needs_whole_series(&self) -> bool;
    /// See [`Detector::state_bytes`].
    fn state_bytes(&self) -> ROption<u64>;
    /// See [`Detector::save`]; the bytes carry the SDK's state header.
    fn save(&self) -> RResult<ROption<RVec<u8>>, FfiError>;
    /// See [`Detector::restore`].
    fn restore(&mut self, state: RSlice<'_, u8>) -> RResult<(), FfiError>;
    /// Rebuilds the detector from its parameters, dropping its state (and any poison).
    #[sabi(last_prefix_field)]
    fn reset(&mut self) -> RResult<(), FfiError>;
}

/// A boxed detector that crosses the boundary.
pub type DetectorBox = FfiDetector_TO<'static, RBox<()>>;

const STATE_MAGIC: &[u8; 4] = b"ADRS";

fn state_header(name: &str, version: u32) -> Vec<u8> {
    let mut h = Vec::with_capacity(10 + name.len());
    h.extend_from_slice(STATE_MAGIC);
    h.extend_from_slice(&version.to_le_bytes());
    h.extend_from_slice(&(name.len() as u16).to_le_bytes());
    h.extend_from_slice(name.as_bytes());
    h
}

/// Splits a saved state into its payload, checking it was written by detector `name` in
/// state format `version`.
fn state_payload<'s>(state: &'s [u8], name: &str, version: u32) -> Result<&'s [u8], DetectorError> {
    let incompatible = |why: String| DetectorError::new(ErrorKind::IncompatibleState, why);
    if state.len() < 10 || &state[..4] != STATE_MAGIC {
        return Err(incompatible(
            "the bytes are not an adr detector state".into(),
        ));
    }
    let found_version = u32::from_le_bytes(state[4..8].try_into().expect("4 bytes"));
    let name_len = u16::from_le_bytes(state[8..10].try_into().expect("2 bytes")) as usize;
    let found_name = state
        .get(10..10 + name_len)
        .map(String::from_utf8_lossy)
        .unwrap_or_default();
    if found_name != name {
        return Err(incompatible(format!(
            "the state was saved by detector `{found_name}`, not `{name}`"
        )));
    }
    if found_version != version {
        return Err(incompatible(format!(
            "the state of `{name}` has format version {found_version}, this build reads version {version}"
        )));
    }
    Ok(&state[10 + name_len..])
}

/// Wraps a plain detector: catches panics, checks buffer lengths, adds the state header.
#[derive(Debug)]
pub struct Adapter<D: Detector> {
    detector: Option<D>,
    params: D::Params,
    inputs: Vec<String>,
    poison: String,
}

impl<D: Detector + std::fmt::Debug> Adapter<D> {
    fn call<T>(
        &mut self,
        f: impl FnOnce(&mut D) -> Result<T, DetectorError>,
    ) -> RResult<T, FfiError> {
        let Some(detector) = self.detector.as_mut() else {
            return RResult::RErr(
                DetectorError::new(
                    ErrorKind::Panicked,
                    format!(
                        "detector `{}` panicked earlier ({}) and must be reset",
                        D::NAME,
                        self.poison
                    ),
                )
                .into(),
            );
        };
        match catch_unwind(AssertUnwindSafe(|| f(detector))) {
            Ok(result) => result.map_err(FfiError::from).into(),
            Err(payload) => {
                // The state may be half-updated: refuse further calls until a reset.
                self.detector = None;
                self.poison = panic_message(&*payload);
                RResult::RErr(
                    DetectorError::new(
                        ErrorKind::Panicked,
                        format!("detector `{}` panicked: {}", D::NAME, self.poison),
                    )
                    .into(),
                )
            }
        }
    }
}

impl<D: Detector + std::fmt::Debug> FfiDetector for Adapter<D> {
    fn score(&mut self, frame: Frame<'_>, mut out: ScoresMut<'_>) -> RResult<(), FfiError> {
        if out.len() != frame.len() {
            let msg = format!(
                "output buffers hold {} points, the frame {}",
                out.len(),
                frame.len()
            );
            return RResult::RErr(DetectorError::invalid_input(msg).into());
        }
        self.call(|d| d.score(&frame, &mut out))
    }

    fn update(&mut self, event: &Event<'_>) -> RResult<Score, FfiError> {
        self.call(|d| d.update(event))
    }

    fn needs_whole_series(&self) -> bool {
        self.detector.as_ref().is_some_and(|d| {
            catch_unwind(AssertUnwindSafe(|| d.needs_whole_series())).unwrap_or(false)
        })
    }

    fn state_bytes(&self) -> ROption<u64> {
        self.detector
            .as_ref()
            .and_then(|d| {
                catch_unwind(AssertUnwindSafe(|| d.state_bytes()))
                    .ok()
                    .flatten()
            })
            .into()
    }

    fn save(&self) -> RResult<ROption<RVec<u8>>, FfiError> {
        let Some(detector) = self.detector.as_ref() else {
            return RResult::RErr(
                DetectorError::new(
                    ErrorKind::Panicked,
                    "a poisoned detector has no state to save",
                )
                .into(),
            );
        };
        match catch_unwind(AssertUnwindSafe(|| detector.save())) {
            Ok(None) => RResult::ROk(ROption::RNone),
            Ok(Some(payload)) => {
                let mut bytes = state_header(D::NAME, D::STATE_VERSION);
                bytes.extend_from_slice(&payload);
                RResult::ROk(ROption::RSome(bytes.into()))
            }
            Err(payload) => RResult::RErr(
                DetectorError::new(
                    ErrorKind::Panicked,
                    format!(
                        "saving `{}` panicked: {}",
                        D::NAME,
                        panic_message(&*payload)
                    ),
                )
                .into(),
            ),
        }
    }

    fn restore(&mut self, state: RSlice<'_, u8>) -> RResult<(), FfiError> {
        let payload = match state_payload(state.as_slice(), D::NAME, D::STATE_VERSION) {
            Ok(p) => p,
            Err(e) => return RResult::RErr(e.into()),
        };
        self.call(|d| d.restore(payload))
    }

    fn reset(&mut self) -> RResult<(), FfiError> {
        let params = self.params.clone();
        let inputs = &self.inputs;
        match catch_unwind(AssertUnwindSafe(|| D::new(params, inputs))) {
            Ok(Ok(d)) => {
                self.detector = Some(d);
                self.poison.clear();
                RResult::ROk(())
            }
            Ok(Err(e)) => RResult::RErr(e.into()),
            Err(payload) => RResult::RErr(
                DetectorError::new(
                    ErrorKind::Panicked,
                    format!(
                        "building `{}` panicked: {}",
                        D::NAME,
                        panic_message(&*payload)
                    ),
                )
                .into(),
            ),
        }
    }
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic without a message".to_owned()
    }
}

/// Runs the body of an `extern "C"` entry point, turning a panic into an error.
pub fn guard_extern<T>(
    what: &str,
    f: impl FnOnce() -> Result<T, DetectorError>,
) -> RResult<T, FfiError> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(result) => result.map_err(FfiError::from).into(),
        Err(payload) => RResult::RErr(
            DetectorError::new(
                ErrorKind::Panicked,
                format!("{what} panicked: {}", panic_message(&*payload)),
            )
            .into(),
        ),
    }
}

/// Describes detector type `D` for the boundary.
pub fn describe_detector<D: Detector>() -> FfiDetectorInfo {
    FfiDetectorInfo::from(&DetectorInfo::of::<D>())
}

/// Builds detector type `D` from boundary parameters, checking them against its schema.
///
/// # Errors
///
/// [`InvalidParams`](ErrorKind::InvalidParams) listing every problem, or
/// [`InvalidInput`](ErrorKind::InvalidInput) for the wrong number of input columns.
pub fn create_detector<D: Detector + std::fmt::Debug>(
    params: &[FfiParam],
    inputs: &[RString],
) -> Result<DetectorBox, DetectorError> {
    if !D::INPUTS.accepts(inputs.len()) {
        return Err(DetectorError::invalid_input(format!(
            "detector `{}` takes {}, got {}",
            D::NAME,
            D::INPUTS,
            inputs.len()
        )));
    }
    let given: Vec<(String, ParamValue)> = params
        .iter()
        .map(|p| (p.name.to_string(), ParamValue::from(&p.value)))
        .collect();
    let params = D::Params::from_pairs(&given).map_err(|errors| {
        let all: Vec<String> = errors.iter().map(ToString::to_string).collect();
        DetectorError::invalid_params(all.join("; "))
    })?;
    let inputs: Vec<String> = inputs.iter().map(|s| s.to_string()).collect();
    let detector = D::new(params.clone(), &inputs)?;
    let adapter = Adapter::<D> {
        detector: Some(detector),
        params,
        inputs,
        poison: String::new(),
    };
    Ok(FfiDetector_TO::from_value(
        adapter,
        abi_stable::sabi_trait::TD_Opaque,
    ))
}

/// The root module every plugin library exports (through [`export_detectors!`](crate::export_detectors!)).
///
/// Append-only: new fields go after the last one, marked `#[sabi(last_prefix_field)]`
/// moves down, and older plugins stay loadable.
#[repr(C)]
#[derive(StableAbi)]
#[allow(missing_debug_implementations)] // holds only function pointers and names
#[sabi(kind(Prefix(prefix_ref = PluginRef)))]
#[sabi(missing_field(panic))]
pub struct PluginModule {
    /// The family name used in rules: `statistical`.
    pub family: RStr<'static>,
    /// The plugin crate's own version.
    pub plugin_version: RStr<'static>,
    /// The [`ABI_VERSION`](crate::ABI_VERSION) the plugin was built with.
    pub abi_version: RStr<'static>,
    /// Describes every detector.
    pub detectors: extern "C" fn() -> RResult<RVec<FfiDetectorInfo>, FfiError>,
    /// Builds detector `name` with parameters and input column names.
    #[sabi(last_prefix_field)]
    pub create:
        extern "C" fn(RStr<'_>, RVec<FfiParam>, RVec<RString>) -> RResult<DetectorBox, FfiError>,
}

impl RootModule for PluginRef {
    declare_root_module_statics! {PluginRef}
    const BASE_NAME: &'static str = "adr_plugin";
    const NAME: &'static str = "adr_plugin";
    const VERSION_STRINGS: VersionStrings = VersionStrings::new(crate::ABI_VERSION);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_root_loader_symbol_is_abi_stables() {
        assert_eq!(
            crate::__root_loader_symbol!(),
            abi_stable::library::ROOT_MODULE_LOADER_NAME
        );
    }

    #[test]
    fn state_header_is_checked() {
        let mut bytes = state_header("zscore", 2);
        bytes.extend_from_slice(b"payload");
        assert_eq!(state_payload(&bytes, "zscore", 2).unwrap(), b"payload");
        let cases = [
            (
                "other detector",
                "mad",
                2,
                "the state was saved by detector `zscore`, not `mad`",
            ),
            (
                "other version",
                "zscore",
                3,
                "the state of `zscore` has format version 2, this build reads version 3",
            ),
        ];
        for (case, name, version, want) in cases {
            let err = state_payload(&bytes, name, version).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::IncompatibleState, "{case}");
            assert_eq!(err.message(), want, "{case}");
        }
        assert_eq!(
            state_payload(b"junk", "zscore", 2).unwrap_err().kind(),
            ErrorKind::IncompatibleState
        );
    }
}
