//! Safe handles for hosts (the engine, test harnesses) to drive loaded plugins.
//!
//! Loading a library from disk is the engine's job; this module starts from a plugin's
//! root module and hides every stable-ABI type behind plain Rust.

#[cfg(doc)]
use crate::ErrorKind;

use abi_stable::std_types::{RSlice, RString, RVec};

use crate::{
    ffi::{DetectorBox, FfiParam, PluginRef},
    DetectorError, DetectorInfo, Event, Frame, ParamValue, Score, ScoresMut,
};

/// A plugin: a family of detectors behind one root module.
#[derive(Clone, Copy)]
pub struct Plugin {
    module: PluginRef,
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin")
            .field("family", &self.family())
            .field("version", &self.plugin_version())
            .finish()
    }
}

impl Plugin {
    /// Wraps a root module (from the loader, or `__adr_plugin_module()` in-process).
    #[doc(hidden)]
    pub fn from_module(module: PluginRef) -> Self {
        Plugin { module }
    }

    /// The family name used in rules: `statistical`.
    pub fn family(&self) -> &'static str {
        self.module.family().as_str()
    }

    /// The plugin crate's version.
    pub fn plugin_version(&self) -> &'static str {
        self.module.plugin_version().as_str()
    }

    /// The SDK ABI version the plugin was built with.
    pub fn abi_version(&self) -> &'static str {
        self.module.abi_version().as_str()
    }

    /// Describes every detector of the plugin.
    ///
    /// # Errors
    ///
    /// The plugin's error, or [`Panicked`](ErrorKind::Panicked) if it panicked.
    pub fn detectors(&self) -> Result<Vec<DetectorInfo>, DetectorError> {
        let infos = (self.module.detectors())()
            .into_result()
            .map_err(DetectorError::from)?;
        infos.iter().map(DetectorInfo::try_from).collect()
    }

    /// Builds detector `name` with `params` on the input columns `inputs`.
    ///
    /// # Errors
    ///
    /// [`UnknownDetector`](ErrorKind::UnknownDetector), [`InvalidParams`](ErrorKind::InvalidParams)
    /// (every problem in one message), [`InvalidInput`](ErrorKind::InvalidInput) for the
    /// wrong number of inputs, or [`Panicked`](ErrorKind::Panicked).
    pub fn create(
        &self,
        name: &str,
        params: &[(String, ParamValue)],
        inputs: &[String],
    ) -> Result<DetectorHandle, DetectorError> {
        let params: RVec<FfiParam> = params
            .iter()
            .map(|(n, v)| FfiParam {
                name: n.as_str().into(),
                value: v.into(),
            })
            .collect();
        let inputs: RVec<RString> = inputs.iter().map(|s| RString::from(s.as_str())).collect();
        let inner = (self.module.create())(name.into(), params, inputs).into_result()?;
        Ok(DetectorHandle {
            inner,
            family: self.family(),
            name: name.to_owned(),
        })
    }
}

/// A live detector inside a plugin.
pub struct DetectorHandle {
    inner: DetectorBox,
    family: &'static str,
    name: String,
}

impl std::fmt::Debug for DetectorHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DetectorHandle({}.{})", self.family, self.name)
    }
}

impl DetectorHandle {
    /// `family.name`, for messages.
    pub fn qualified_name(&self) -> String {
        format!("{}.{}", self.family, self.name)
    }

    /// Scores a batch into `out`, which must have the frame's length.
    ///
    /// # Errors
    ///
    /// The detector's error, [`InvalidInput`](ErrorKind::InvalidInput) for buffers of
    /// another length, or [`Panicked`](ErrorKind::Panicked).
    pub fn score(
        &mut self,
        frame: &Frame<'_>,
        out: &mut ScoresMut<'_>,
    ) -> Result<(), DetectorError> {
        let (raw, normalised, verdict) = out.columns_mut();
        let out = ScoresMut::new(raw, normalised, verdict);
        self.inner
            .score(*frame, out)
            .into_result()
            .map_err(DetectorError::from)
    }

    /// Scores one event and learns from it.
    ///
    /// # Errors
    ///
    /// The detector's error or [`Panicked`](ErrorKind::Panicked).
    #[inline]
    pub fn update(&mut self, event: &Event<'_>) -> Result<Score, DetectorError> {
        self.inner
            .update(event)
            .into_result()
            .map_err(DetectorError::from)
    }

    /// Whether the detector needs the whole series in one batch.
    pub fn needs_whole_series(&self) -> bool {
        self.inner.needs_whole_series()
    }

    /// The detector's estimate of the most memory one key's state takes (see
    /// [`Detector::state_bytes`](crate::Detector::state_bytes)); `None` when unknown.
    pub fn state_bytes(&self) -> Option<u64> {
        self.inner.state_bytes().into_option()
    }

    /// Saves the detector's state; `None` if it keeps none worth saving.
    ///
    /// # Errors
    ///
    /// [`Panicked`](ErrorKind::Panicked) if saving panicked or the detector is poisoned.
    pub fn save(&self) -> Result<Option<Vec<u8>>, DetectorError> {
        let state = self.inner.save().into_result()?;
        Ok(state.into_option().map(RVec::into_vec))
    }

    /// Restores a state saved by the same detector with the same state format.
    ///
    /// # Errors
    ///
    /// [`IncompatibleState`](ErrorKind::IncompatibleState),
    /// [`Unsupported`](ErrorKind::Unsupported) or [`Panicked`](ErrorKind::Panicked).
    pub fn restore(&mut self, state: &[u8]) -> Result<(), DetectorError> {
        self.inner
            .restore(RSlice::from_slice(state))
            .into_result()
            .map_err(DetectorError::from)
    }

    /// Rebuilds the detector from its parameters, dropping its state (and any poison
    /// left by a panic).
    ///
    /// # Errors
    ///
    /// The detector's error while building, or [`Panicked`](ErrorKind::Panicked).
    pub fn reset(&mut self) -> Result<(), DetectorError> {
        self.inner
            .reset()
            .into_result()
            .map_err(DetectorError::from)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn handles_and_errors_are_send() {
        fn check<T: Send>() {}
        check::<super::DetectorHandle>();
        check::<super::Plugin>();
    }
}
