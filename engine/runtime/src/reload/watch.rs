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

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use notify_debouncer_mini::notify::{RecommendedWatcher, RecursiveMode};
use notify_debouncer_mini::{new_debouncer, DebounceEventResult, Debouncer};

use crate::plugins::FileIdentity;

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
    /// The folders the files are in, and the plugin folders.
    folders: BTreeSet<PathBuf>,
    /// Folders an event showed removed, renamed or created: their watch is set again at
    /// the next update, whatever their inode (a folder created anew may reuse one).
    stale: BTreeSet<PathBuf>,
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
        dotted || in_plugin_dir || self.folders.iter().any(|f| f.starts_with(path))
    }

    /// Marks the folders an event on `path` (one of them, or a folder above) concerns.
    fn note(&mut self, path: &Path) {
        let hit: Vec<PathBuf> = self
            .folders
            .iter()
            .filter(|f| f.starts_with(path))
            .cloned()
            .collect();
        self.stale.extend(hit);
    }
}

/// A running watch; dropping it stops it.
pub struct Watcher {
    debouncer: Debouncer<RecommendedWatcher>,
    interest: Arc<Mutex<Interest>>,
    /// Each folder watched, with the identity it had when its watch was set.
    watched: BTreeMap<PathBuf, FileIdentity>,
    on_change: Arc<dyn Fn() + Send + Sync>,
    /// Whether the watches were set once (the first setting is no re-arming).
    armed: bool,
}

impl std::fmt::Debug for Watcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watcher")
            .field("dirs", &self.watched.keys())
            .finish_non_exhaustive()
    }
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

impl Watcher {
    /// Watches `files` and `plugin_dirs`; `on_change` is called (on the watcher's thread,
    /// or on the thread that calls [`update`](Self::update)) once per debounced burst of
    /// relevant events, and when a folder that was gone is watched again.
    ///
    /// # Errors
    ///
    /// A [`WatchError`] when the system refuses a watch.
    pub fn new(
        files: &[PathBuf],
        plugin_dirs: &[PathBuf],
        debounce: Duration,
        on_change: impl Fn() + Send + Sync + 'static,
    ) -> Result<Self, WatchError> {
        let on_change: Arc<dyn Fn() + Send + Sync> = Arc::new(on_change);
        let interest = Arc::new(Mutex::new(Interest::default()));
        let seen = Arc::clone(&interest);
        let notify = Arc::clone(&on_change);
        let debouncer = new_debouncer(debounce, move |result: DebounceEventResult| match result {
            Ok(events) => {
                let mut interest = seen.lock().unwrap_or_else(PoisonError::into_inner);
                let mut relevant = false;
                for event in &events {
                    if interest.matches(&event.path) {
                        interest.note(&event.path);
                        relevant = true;
                    }
                }
                drop(interest);
                if relevant {
                    notify();
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
            watched: BTreeMap::new(),
            on_change,
            armed: false,
        };
        watcher.arm(files, plugin_dirs)?;
        Ok(watcher)
    }

    /// Follows a new set of files (a reload may add or drop includes), and sets again the
    /// watch of every folder that was removed, renamed or re-created since: a folder that
    /// is missing is awaited from the nearest folder above it that exists, and each
    /// folder's parent is watched too, to see it go. When a folder is watched again,
    /// `on_change` is called: what was written into it meanwhile was seen by no watch.
    ///
    /// # Errors
    ///
    /// A [`WatchError`] when the system refuses a watch.
    pub fn update(&mut self, files: &[PathBuf], plugin_dirs: &[PathBuf]) -> Result<(), WatchError> {
        if self.arm(files, plugin_dirs)? {
            (self.on_change)();
        }
        Ok(())
    }

    /// Sets the watches; whether a folder of interest got a watch it lacked.
    fn arm(&mut self, files: &[PathBuf], plugin_dirs: &[PathBuf]) -> Result<bool, WatchError> {
        let mut interest = Interest::default();
        for file in files {
            let file = absolute(file);
            if let Some(dir) = file.parent() {
                interest.folders.insert(dir.to_path_buf());
            }
            // A symlink's target may change in place, in its own folder.
            if let Ok(target) = std::fs::canonicalize(&file) {
                if target != file {
                    if let Some(dir) = target.parent() {
                        interest.folders.insert(dir.to_path_buf());
                    }
                    interest.files.insert(target);
                }
            }
            interest.files.insert(file);
        }
        for dir in plugin_dirs {
            let dir = absolute(dir);
            interest.folders.insert(dir.clone());
            interest.plugin_dirs.insert(dir);
        }
        // Each folder and its parent; a missing folder's nearest existing ancestor.
        let mut arm = BTreeSet::new();
        for folder in &interest.folders {
            if folder.is_dir() {
                arm.insert(folder.clone());
                if let Some(parent) = folder.parent().filter(|p| p.is_dir()) {
                    arm.insert(parent.to_path_buf());
                }
            } else if let Some(ancestor) = folder.ancestors().skip(1).find(|a| a.is_dir()) {
                arm.insert(ancestor.to_path_buf());
            }
        }
        let stale = {
            let mut shared = self.interest.lock().unwrap_or_else(PoisonError::into_inner);
            std::mem::take(&mut shared.stale)
        };
        let watcher = self.debouncer.watcher();
        self.watched.retain(|dir, identity| {
            let keep =
                arm.contains(dir) && !stale.contains(dir) && FileIdentity::of(dir) == *identity;
            if !keep {
                // The watch may already be gone with its folder.
                let _ = watcher.unwatch(dir);
            }
            keep
        });
        let mut rearmed = false;
        for dir in arm {
            if self.watched.contains_key(&dir) {
                continue;
            }
            watcher
                .watch(&dir, RecursiveMode::NonRecursive)
                .map_err(|source| WatchError {
                    path: dir.clone(),
                    source,
                })?;
            rearmed |= interest.folders.contains(&dir);
            let identity = FileIdentity::of(&dir);
            self.watched.insert(dir, identity);
        }
        *self.interest.lock().unwrap_or_else(PoisonError::into_inner) = interest;
        let first = !std::mem::replace(&mut self.armed, true);
        Ok(rearmed && !first)
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
            folders: [PathBuf::from("/etc/adr"), PathBuf::from("/opt/adr/plugins")].into(),
            stale: BTreeSet::new(),
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
            ("the rules' folder, removed or renamed", "/etc/adr", true),
            ("a folder above it", "/etc", true),
            ("another folder beside it", "/etc/ssh", false),
        ];
        for (what, path, expected) in cases {
            assert_eq!(interest.matches(Path::new(path)), expected, "{what}");
        }
    }
}
