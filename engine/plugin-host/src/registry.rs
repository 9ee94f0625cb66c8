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
    /// Builds still in the folders that a newer build replaced: a removed newer build
    /// falls back to them, with no new mapping.
    superseded: Vec<LoadedPlugin>,
    skipped: Vec<LoadError>,
    /// Libraries mapped into the process for this registry and those it was rescanned
    /// from: a library is never unloaded.
    mapped: usize,
    /// Length and modification time of each file when it was read, to see new builds.
    stamps: Vec<(PathBuf, Stamp)>,
}

/// A file's length and modification time.
pub type Stamp = (u64, std::time::SystemTime);

fn stamp(path: &std::path::Path) -> Option<Stamp> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.len(), meta.modified().ok()?))
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
        let (candidates, problems) = search.scan();
        registry.skipped.extend(problems);
        for path in candidates {
            if let Some(s) = stamp(&path) {
                registry.stamps.push((path.clone(), s));
            }
            match load(&path) {
                Ok(plugin) => {
                    registry.mapped += 1;
                    registry.add(plugin)?;
                }
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

    /// The length and modification time `path` had when it was read.
    pub fn stamp_of(&self, path: &std::path::Path) -> Option<Stamp> {
        self.stamps.iter().find(|(p, _)| p == path).map(|(_, s)| *s)
    }

    /// Adds a plugin read from a file with `stamp`, replacing any loaded plugin of its
    /// family that exports one of its detectors (a new build), which is kept as
    /// superseded; returns the files it replaced.
    pub fn add_stamped(&mut self, plugin: LoadedPlugin, stamp: Stamp) -> Vec<PathBuf> {
        self.stamps.push((plugin.path.clone(), stamp));
        let family = plugin.plugin.family();
        let (replaced, kept): (Vec<LoadedPlugin>, Vec<LoadedPlugin>) =
            std::mem::take(&mut self.plugins)
                .into_iter()
                .partition(|existing| {
                    existing.plugin.family() == family
                        && plugin
                            .detectors
                            .iter()
                            .any(|d| existing.detectors.iter().any(|e| e.name == d.name))
                });
        self.plugins = kept;
        self.plugins.push(plugin);
        let paths = replaced.iter().map(|p| p.path.clone()).collect();
        self.superseded.extend(replaced);
        paths
    }

    /// Records a file with `stamp` that is neither loaded nor superseded (a file refused
    /// before and unchanged since), so a rescan knows it.
    pub fn remember(&mut self, path: &std::path::Path, stamp: Stamp) {
        self.stamps.push((path.to_path_buf(), stamp));
    }

    /// The build loaded from `path`, running or superseded.
    pub fn loaded_from(&self, path: &std::path::Path) -> Option<&LoadedPlugin> {
        self.plugins
            .iter()
            .chain(&self.superseded)
            .find(|p| p.path == path)
    }

    /// A build with the contents `digest`, running or superseded, from whatever file.
    pub fn build_with(&self, digest: super::Digest) -> Option<&LoadedPlugin> {
        self.plugins
            .iter()
            .chain(&self.superseded)
            .find(|p| p.digest == digest)
    }

    /// Libraries mapped into the process for this registry and the registries it was
    /// rescanned from (every build deployed during a run stays mapped).
    pub fn libraries_mapped(&self) -> usize {
        self.mapped
    }

    /// Counts one more library mapped.
    pub(crate) fn mapped_one_more(&mut self) {
        self.mapped += 1;
    }

    /// Starts the count of mapped libraries from an earlier registry's.
    pub(crate) fn inherit_mapped(&mut self, earlier: &Registry) {
        self.mapped = earlier.mapped;
    }

    /// Every file read, loaded or not.
    pub fn stamped(&self) -> impl Iterator<Item = &std::path::Path> {
        self.stamps.iter().map(|(p, _)| p.as_path())
    }

    /// Records a file with `stamp` that could not be loaded.
    pub fn skip_stamped(&mut self, error: LoadError, stamp: Stamp) {
        self.stamps.push((error.path().to_path_buf(), stamp));
        self.skipped.push(error);
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
