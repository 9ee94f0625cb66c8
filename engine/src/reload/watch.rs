//! Watching rule files, their includes and the plugin folders.
//!
//! Files are not watched themselves but through their folders (non-recursively): an
//! editor's atomic save renames a temporary file over the original, a Kubernetes ConfigMap
//! swaps a `..data` symlink beside it, a deleted file comes back as a new inode. A watch on
//! the file would die with the first of these; a watch on its folder sees them all. For a
//! file that is a symlink, the folder of its target is watched too. Events are debounced
//! (a save storm is one change), filtered to the files of interest, and reported as one
//! call of `on_change`; whoever receives it compares what the files now hold with what
//! runs (see [`super::Reloader`]), so a spurious event costs one read.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use notify_debouncer_mini::notify::{RecommendedWatcher, RecursiveMode};
use notify_debouncer_mini::{new_debouncer, DebounceEventResult, Debouncer};

/// Why a watch could not be set up.
#[derive(Debug, thiserror::Error)]
#[error("cannot watch {}: {source}", path.display())]
pub struct WatchError {
    /// The folder.
    pub path: PathBuf,
    /// What the watcher said.
    #[source]
    pub source: notify_debouncer_mini::notify::Error,
}

/// What the watch reacts to.
#[derive(Debug, Default)]
struct Interest {
    files: BTreeSet<PathBuf>,
    plugin_dirs: BTreeSet<PathBuf>,
}

impl Interest {
    fn matches(&self, path: &Path) -> bool {
        if self.files.contains(path) {
            return true;
        }
        // `..data`, `..2026_12_01_...`: the ConfigMap pattern's symlink and folders.
        let dotted = path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with(".."));
        let in_plugin_dir = path.parent().is_some_and(|d| self.plugin_dirs.contains(d));
        dotted || in_plugin_dir
    }
}

/// A running watch; dropping it stops it.
pub struct Watcher {
    debouncer: Debouncer<RecommendedWatcher>,
    interest: Arc<Mutex<Interest>>,
    watched_dirs: BTreeSet<PathBuf>,
}

impl std::fmt::Debug for Watcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watcher")
            .field("dirs", &self.watched_dirs)
            .finish_non_exhaustive()
    }
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

impl Watcher {
    /// Watches `files` and `plugin_dirs`; `on_change` is called (on the watcher's thread)
    /// once per debounced burst of relevant events.
    ///
    /// # Errors
    ///
    /// A [`WatchError`] when the system refuses a watch.
    pub fn new(
        files: &[PathBuf],
        plugin_dirs: &[PathBuf],
        debounce: Duration,
        on_change: impl Fn() + Send + 'static,
    ) -> Result<Self, WatchError> {
        let interest = Arc::new(Mutex::new(Interest::default()));
        let seen = Arc::clone(&interest);
        let debouncer = new_debouncer(debounce, move |result: DebounceEventResult| match result {
            Ok(events) => {
                let interest = seen.lock().unwrap_or_else(PoisonError::into_inner);
                if events.iter().any(|e| interest.matches(&e.path)) {
                    drop(interest);
                    on_change();
                }
            }
            Err(e) => tracing::warn!("file watch error: {e}"),
        })
        .map_err(|source| WatchError {
            path: PathBuf::new(),
            source,
        })?;
        let mut watcher = Watcher {
            debouncer,
            interest,
            watched_dirs: BTreeSet::new(),
        };
        watcher.update(files, plugin_dirs)?;
        Ok(watcher)
    }

    /// Follows a new set of files (a reload may add or drop includes).
    ///
    /// # Errors
    ///
    /// A [`WatchError`] when the system refuses a watch.
    pub fn update(&mut self, files: &[PathBuf], plugin_dirs: &[PathBuf]) -> Result<(), WatchError> {
        let mut interest = Interest::default();
        let mut dirs = BTreeSet::new();
        for file in files {
            let file = absolute(file);
            if let Some(dir) = file.parent() {
                dirs.insert(dir.to_path_buf());
            }
            // A symlink's target may change in place, in its own folder.
            if let Ok(target) = std::fs::canonicalize(&file) {
                if target != file {
                    if let Some(dir) = target.parent() {
                        dirs.insert(dir.to_path_buf());
                    }
                    interest.files.insert(target);
                }
            }
            interest.files.insert(file);
        }
        for dir in plugin_dirs {
            let dir = absolute(dir);
            dirs.insert(dir.clone());
            interest.plugin_dirs.insert(dir);
        }
        let watcher = self.debouncer.watcher();
        for gone in self.watched_dirs.difference(&dirs) {
            let _ = watcher.unwatch(gone);
        }
        self.watched_dirs.retain(|d| dirs.contains(d));
        for dir in dirs {
            // A folder that does not exist yet cannot be watched: it is tried again at
            // the next update (after each reload attempt, a manual one included).
            if !self.watched_dirs.contains(&dir) && dir.is_dir() {
                watcher
                    .watch(&dir, RecursiveMode::NonRecursive)
                    .map_err(|source| WatchError {
                        path: dir.clone(),
                        source,
                    })?;
                self.watched_dirs.insert(dir);
            }
        }
        *self.interest.lock().unwrap_or_else(PoisonError::into_inner) = interest;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_files_of_interest_trigger() {
        let interest = Interest {
            files: [PathBuf::from("/etc/adr/rules.adr")].into(),
            plugin_dirs: [PathBuf::from("/opt/adr/plugins")].into(),
        };
        let cases = [
            ("the file", "/etc/adr/rules.adr", true),
            ("an editor's swap file", "/etc/adr/.rules.adr.swp", false),
            ("another file beside it", "/etc/adr/notes.txt", false),
            ("the ConfigMap symlink", "/etc/adr/..data", true),
            (
                "a ConfigMap version folder",
                "/etc/adr/..2026_12_01_10_00_00.1",
                true,
            ),
            (
                "a new plugin build",
                "/opt/adr/plugins/libadr_plugin_ml.so",
                true,
            ),
            (
                "a file in a folder below",
                "/opt/adr/plugins/old/lib.so",
                false,
            ),
        ];
        for (what, path, expected) in cases {
            assert_eq!(interest.matches(Path::new(path)), expected, "{what}");
        }
    }
}
