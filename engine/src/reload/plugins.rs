//! Rescanning the plugin folders for new builds.
//!
//! A file is new when its path, length or modification time differ from the last scan's.
//! A new file is loaded; a plugin it exports that is already loaded from another file is
//! replaced (the newest file wins: a new build). Because the dynamic linker hands back the
//! library already loaded under a name, a file that replaced one at the same path is
//! loaded from a private copy (see [`LoadedPlugin::build`]). Nothing is ever unloaded:
//! superseded builds stay mapped, counted in [`super::ReloadStatus::libraries_mapped`].

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::plugins::{load_build, LoadedPlugin, Registry, SearchPath, Stamp};

/// Libraries mapped by rescans (beyond the first load), for the status.
static MAPPED_BY_RESCANS: AtomicUsize = AtomicUsize::new(0);

/// Libraries mapped into the process by the first load of `registry` and by rescans.
pub fn libraries_mapped(registry: &Registry) -> usize {
    registry.plugins().len() + MAPPED_BY_RESCANS.load(Ordering::Relaxed)
}

/// The plugin files of `search` with their length and modification time, oldest first
/// (so the newest build of a plugin is added last and wins).
pub fn candidates(search: &SearchPath) -> Vec<(PathBuf, Stamp)> {
    let mut candidates: Vec<(PathBuf, Stamp)> = search
        .candidates()
        .into_iter()
        .filter_map(|p| {
            let meta = std::fs::metadata(&p).ok()?;
            Some((p, (meta.len(), meta.modified().ok()?)))
        })
        .collect();
    candidates.sort_by(|a, b| a.1 .1.cmp(&b.1 .1).then_with(|| a.0.cmp(&b.0)));
    candidates
}

/// A new registry when a plugin file among `candidates` appeared, changed or went away
/// since `current` was loaded; `None` when nothing did.
pub fn rescan(current: &Registry, candidates: &[(PathBuf, Stamp)]) -> Option<Registry> {
    let unchanged = |path: &PathBuf, s: &Stamp| current.stamp_of(path) == Some(*s);
    let removed = current
        .stamped()
        .any(|p| !candidates.iter().any(|(c, _)| c == p));
    if !removed && candidates.iter().all(|(p, s)| unchanged(p, s)) {
        return None;
    }
    let mut next = Registry::default();
    for (path, s) in candidates {
        if unchanged(path, s) {
            // As it was: loaded, superseded or refused.
            match current.plugins().iter().find(|p| &p.path == path) {
                Some(plugin) => {
                    next.add_stamped(plugin.clone(), *s);
                }
                None => next.remember(path, *s),
            }
            continue;
        }
        match load_new(path, current) {
            Ok(plugin) => {
                MAPPED_BY_RESCANS.fetch_add(1, Ordering::Relaxed);
                tracing::info!(
                    "plugin {} {} loaded from {}",
                    plugin.plugin.family(),
                    plugin.plugin.plugin_version(),
                    path.display()
                );
                for old in next.add_stamped(plugin, *s) {
                    tracing::info!(
                        "plugin file {} is superseded by {}; its detectors move to the new build (remove the old file before the next restart)",
                        old.display(),
                        path.display()
                    );
                }
            }
            Err(e) => {
                tracing::warn!("skipped plugin: {e}");
                next.skip_stamped(e, *s);
            }
        }
    }
    Some(next)
}

/// Loads `path`, from a private copy when a library was already loaded under its name.
fn load_new(path: &Path, current: &Registry) -> Result<LoadedPlugin, crate::plugins::LoadError> {
    let loaded_before = current
        .plugins()
        .iter()
        .any(|p| p.path == path || p.build == path);
    if !loaded_before {
        return load_build(path, path);
    }
    let dir = std::env::temp_dir().join(format!("adr-plugin-builds-{}", std::process::id()));
    let copy = (|| -> std::io::Result<PathBuf> {
        std::fs::create_dir_all(&dir)?;
        let n = MAPPED_BY_RESCANS.load(Ordering::Relaxed);
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        let copy = dir.join(format!("{n}-{name}"));
        std::fs::copy(path, &copy)?;
        Ok(copy)
    })()
    .map_err(|e| crate::plugins::LoadError::Open {
        path: path.to_path_buf(),
        reason: format!("cannot make a private copy to load a new build: {e}"),
    })?;
    load_build(path, &copy)
}
