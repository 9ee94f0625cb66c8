//! The loaded plugins, indexed by `family.detector`.

use std::path::PathBuf;

use adr_sdk::{host::DetectorHandle, params::suggest, DetectorError, DetectorInfo, ParamValue};

use super::{load, LoadError, LoadedPlugin, SearchPath};

/// Why the plugin set as a whole is unusable.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// Two libraries export the same detector: which code would run is ambiguous.
    #[error("detector `{name}` is exported by two plugins: {} and {}; remove one", first.display(), second.display())]
    Duplicate {
        /// `family.detector`.
        name: String,
        /// The library loaded first.
        first: PathBuf,
        /// The library loaded second.
        second: PathBuf,
    },
}

/// Why a detector name does not resolve.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LookupError {
    /// The name is not `family.detector`.
    #[error("`{0}` is not a detector name; write family.detector, e.g. statistical.zscore")]
    Malformed(String),
    /// No plugin of that family is loaded.
    #[error(
        "no plugin of family `{family}` is loaded{}{}",
        hint(suggestion),
        loaded_list(known)
    )]
    UnknownFamily {
        /// The family asked for.
        family: String,
        /// A near miss.
        suggestion: Option<String>,
        /// The families loaded.
        known: Vec<String>,
    },
    /// The family has no such detector.
    #[error("family `{family}` has no detector `{detector}`{}; it has {}", hint(suggestion), known.join(", "))]
    UnknownDetector {
        /// The family.
        family: String,
        /// The detector asked for.
        detector: String,
        /// A near miss.
        suggestion: Option<String>,
        /// The family's detectors.
        known: Vec<String>,
    },
}

fn hint(suggestion: &Option<String>) -> String {
    suggestion
        .as_ref()
        .map(|s| format!(" (did you mean `{s}`?)"))
        .unwrap_or_default()
}

fn loaded_list(known: &[String]) -> String {
    if known.is_empty() {
        "; no plugin is loaded (see --plugins and ADR_PLUGIN_PATH)".to_owned()
    } else {
        format!("; loaded: {}", known.join(", "))
    }
}

/// Every plugin that loaded from a search path, and every file that did not.
#[derive(Debug, Default)]
pub struct Registry {
    plugins: Vec<LoadedPlugin>,
    skipped: Vec<LoadError>,
}

impl Registry {
    /// Loads every candidate library of `search`. Files that are not usable plugins are
    /// skipped and recorded (see [`skipped`](Self::skipped)); the others still load.
    ///
    /// # Errors
    ///
    /// [`RegistryError::Duplicate`] if two libraries export the same `family.detector`.
    pub fn load(search: &SearchPath) -> Result<Registry, RegistryError> {
        let mut registry = Registry::default();
        for path in search.candidates() {
            match load(&path) {
                Ok(plugin) => registry.add(plugin)?,
                Err(e) => registry.skipped.push(e),
            }
        }
        Ok(registry)
    }

    /// Adds a loaded plugin.
    ///
    /// # Errors
    ///
    /// [`RegistryError::Duplicate`] if it exports a `family.detector` already present.
    pub fn add(&mut self, plugin: LoadedPlugin) -> Result<(), RegistryError> {
        let family = plugin.plugin.family();
        for existing in self.plugins.iter().filter(|p| p.plugin.family() == family) {
            if let Some(d) = plugin
                .detectors
                .iter()
                .find(|d| existing.detectors.iter().any(|e| e.name == d.name))
            {
                return Err(RegistryError::Duplicate {
                    name: format!("{family}.{}", d.name),
                    first: existing.path.clone(),
                    second: plugin.path.clone(),
                });
            }
        }
        self.plugins.push(plugin);
        Ok(())
    }

    /// The loaded plugins, in load order.
    pub fn plugins(&self) -> &[LoadedPlugin] {
        &self.plugins
    }

    /// The files that were not loaded, each with its reason.
    pub fn skipped(&self) -> &[LoadError] {
        &self.skipped
    }

    /// Finds `family.detector`.
    ///
    /// # Errors
    ///
    /// A [`LookupError`] with a suggestion for near misses.
    pub fn find(&self, qualified: &str) -> Result<(&LoadedPlugin, &DetectorInfo), LookupError> {
        let (family, detector) = qualified
            .split_once('.')
            .ok_or_else(|| LookupError::Malformed(qualified.to_owned()))?;
        let in_family: Vec<&LoadedPlugin> = self
            .plugins
            .iter()
            .filter(|p| p.plugin.family() == family)
            .collect();
        if in_family.is_empty() {
            let mut known: Vec<String> = self
                .plugins
                .iter()
                .map(|p| p.plugin.family().to_owned())
                .collect();
            known.dedup();
            return Err(LookupError::UnknownFamily {
                family: family.to_owned(),
                suggestion: suggest(family, known.iter().map(String::as_str)),
                known,
            });
        }
        for plugin in &in_family {
            if let Some(info) = plugin.detectors.iter().find(|d| d.name == detector) {
                return Ok((plugin, info));
            }
        }
        let known: Vec<String> = in_family
            .iter()
            .flat_map(|p| p.detectors.iter().map(|d| d.name.clone()))
            .collect();
        Err(LookupError::UnknownDetector {
            family: family.to_owned(),
            detector: detector.to_owned(),
            suggestion: suggest(detector, known.iter().map(String::as_str)),
            known,
        })
    }

    /// Builds detector `family.detector` with `params` on the columns `inputs`.
    ///
    /// # Errors
    ///
    /// The plugin's [`DetectorError`] (invalid params, wrong inputs, panic); a lookup
    /// failure is reported as [`UnknownDetector`](adr_sdk::ErrorKind::UnknownDetector).
    pub fn create(
        &self,
        qualified: &str,
        params: &[(String, ParamValue)],
        inputs: &[String],
    ) -> Result<DetectorHandle, DetectorError> {
        let (plugin, info) = self
            .find(qualified)
            .map_err(|e| DetectorError::new(adr_sdk::ErrorKind::UnknownDetector, e.to_string()))?;
        plugin.plugin.create(&info.name, params, inputs)
    }
}
