//! Rescanning the plugin folders for new builds.
//!
//! A file is new when its path, length or modification time differ from the last scan's.
//! A new file is read whole; when its contents are a build already mapped (the same file
//! copied over itself, or a copy under another name) that build serves it, with no new
//! mapping; otherwise it is mapped from a private copy (see `private_copy`). A
//! plugin that exports a detector already loaded from another file replaces it: the
//! newest file wins. The replaced build is kept as superseded while its file is there, so
//! that removing the newest build falls back to the newest remaining one; a file that no
//! longer loads (half copied in, damaged) keeps the build loaded from it before. Nothing is
//! ever unloaded: every build mapped stays mapped, counted in [`libraries_mapped`] (and the
//! engine's reload status).

use std::path::PathBuf;

use crate::{map, read, LoadError, LoadedPlugin, Registry, SearchPath, Stamp};

/// Libraries mapped into the process by the first load of `registry` and by rescans.
pub fn libraries_mapped(registry: &Registry) -> usize {
    registry.libraries_mapped()
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
    next.inherit_mapped(current);
    for (path, s) in candidates {
        if unchanged(path, s) {
            // As it was: running, superseded or refused.
            match current.loaded_from(path) {
                Some(plugin) => {
                    next.add_stamped(plugin.clone(), *s);
                }
                None => next.remember(path, *s),
            }
            continue;
        }
        match load_new(path, current) {
            Ok(New::Known(plugin)) => {
                tracing::info!(
                    "plugin file {} holds a build already loaded ({} {}, sha256 {}); nothing new to map",
                    path.display(),
                    plugin.plugin.family(),
                    plugin.plugin.plugin_version(),
                    plugin.digest
                );
                next.add_stamped(plugin, *s);
            }
            Ok(New::Mapped(plugin)) => {
                next.mapped_one_more();
                tracing::info!(
                    "plugin {} {} loaded from {} (sha256 {})",
                    plugin.plugin.family(),
                    plugin.plugin.plugin_version(),
                    path.display(),
                    plugin.digest
                );
                for old in next.add_stamped(plugin, *s) {
                    if old != *path {
                        tracing::info!(
                            "plugin file {} is superseded by {}; its detectors move to the new build (remove the old file before the next restart)",
                            old.display(),
                            path.display()
                        );
                    }
                }
            }
            Err(e) => match current.loaded_from(path) {
                // A build being copied in over a loaded one is half there for a while;
                // the build loaded from the file before runs on until it is whole.
                Some(before) => {
                    tracing::warn!(
                        "skipped plugin {e}; the build loaded from it before ({} {}) keeps running",
                        before.plugin.family(),
                        before.plugin.plugin_version()
                    );
                    next.add_stamped(before.clone(), *s);
                }
                None => {
                    tracing::warn!("skipped plugin {e}");
                    next.skip_stamped(e, *s);
                }
            },
        }
    }
    report_removed(current, &next, candidates);
    Some(next)
}

/// Says, for each running build whose file is gone, what runs its detectors now.
fn report_removed(current: &Registry, next: &Registry, candidates: &[(PathBuf, Stamp)]) {
    for gone in current
        .plugins()
        .iter()
        .filter(|p| !candidates.iter().any(|(c, _)| *c == p.path))
    {
        let family = gone.plugin.family();
        let heir = gone.detectors.iter().find_map(|d| {
            next.find(&format!("{family}.{}", d.name))
                .ok()
                .map(|(p, _)| p.path.clone())
        });
        match heir {
            Some(heir) => tracing::info!(
                "plugin file {} is gone; family {family} now runs from {}",
                gone.path.display(),
                heir.display()
            ),
            None => tracing::warn!(
                "plugin file {} is gone and no other build of family {family} is in the plugin folders; rules that use it are refused until one is",
                gone.path.display()
            ),
        }
    }
}

/// What a new or changed plugin file turned out to be.
enum New {
    /// The contents of a build already mapped, now served under this file's name.
    Known(LoadedPlugin),
    /// A new build, mapped now.
    Mapped(LoadedPlugin),
}

/// Reads `path` whole; its contents are a known build or are mapped as a new one.
fn load_new(path: &std::path::Path, current: &Registry) -> Result<New, LoadError> {
    let (bytes, digest) = read(path)?;
    if let Some(known) = current.build_with(digest) {
        return Ok(New::Known(LoadedPlugin {
            path: path.to_path_buf(),
            ..known.clone()
        }));
    }
    map(path, &bytes, digest).map(New::Mapped)
}
