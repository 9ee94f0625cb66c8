//! Where plugins are looked for.

use std::path::{Path, PathBuf};

/// The folders searched for plugin libraries, in order.
///
/// Resolution: folders given on the command line (`--plugins DIR`, repeatable); else
/// `ADR_PLUGIN_PATH` (folders separated like `PATH`); else the default next to the `adr`
/// binary: its `plugins/` folder, and the binary's own folder for files named like
/// `libadr_plugin_*.so` (where `cargo build` puts them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchPath {
    dirs: Vec<SearchDir>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct SearchDir {
    path: PathBuf,
    /// Only files whose name contains `adr_plugin_` (for the binary's own folder, which
    /// holds other libraries too).
    plugins_only: bool,
}

impl SearchPath {
    /// Resolves the search path from explicit folders, then `env_value` (the value of
    /// `ADR_PLUGIN_PATH`), then the folder of the running binary.
    pub fn resolve(
        explicit: &[PathBuf],
        env_value: Option<&std::ffi::OsStr>,
        exe: Option<&Path>,
    ) -> Self {
        if !explicit.is_empty() {
            return SearchPath::explicit(explicit.iter().cloned());
        }
        if let Some(value) = env_value.filter(|v| !v.is_empty()) {
            return SearchPath::explicit(std::env::split_paths(value));
        }
        let mut dirs = Vec::new();
        if let Some(dir) = exe.and_then(Path::parent) {
            dirs.push(SearchDir {
                path: dir.join("plugins"),
                plugins_only: false,
            });
            dirs.push(SearchDir {
                path: dir.to_path_buf(),
                plugins_only: true,
            });
        }
        SearchPath { dirs }
    }

    /// Resolves from the process: `explicit`, then `ADR_PLUGIN_PATH`, then the binary.
    pub fn from_env(explicit: &[PathBuf]) -> Self {
        let env = std::env::var_os("ADR_PLUGIN_PATH");
        let exe = std::env::current_exe().ok();
        SearchPath::resolve(explicit, env.as_deref(), exe.as_deref())
    }

    /// Exactly these folders; every dynamic library in them is tried.
    pub fn explicit(dirs: impl IntoIterator<Item = PathBuf>) -> Self {
        SearchPath {
            dirs: dirs
                .into_iter()
                .map(|path| SearchDir {
                    path,
                    plugins_only: false,
                })
                .collect(),
        }
    }

    /// The folders, in search order.
    pub fn dirs(&self) -> impl Iterator<Item = &Path> {
        self.dirs.iter().map(|d| d.path.as_path())
    }

    /// Every candidate library file, folder by folder, sorted by name within a folder.
    /// Folders that do not exist are skipped. A file reached twice (a folder named twice,
    /// or through a link) is one plugin: listed once, where it is first found.
    pub fn candidates(&self) -> Vec<PathBuf> {
        let mut all = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for dir in &self.dirs {
            let Ok(entries) = std::fs::read_dir(&dir.path) else {
                continue;
            };
            let mut files: Vec<PathBuf> = entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_file() && is_dynamic_library(p))
                .filter(|p| !dir.plugins_only || file_name(p).contains("adr_plugin_"))
                .collect();
            files.sort();
            all.extend(
                files
                    .into_iter()
                    .filter(|f| seen.insert(crate::io::distinct::FileIdentity::of(f))),
            );
        }
        all
    }
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn is_dynamic_library(p: &Path) -> bool {
    p.extension()
        .is_some_and(|e| e == std::env::consts::DLL_EXTENSION)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_reached_twice_is_one_candidate() {
        let dir = tempfile::tempdir().unwrap();
        let lib = dir
            .path()
            .join(format!("libx.{}", std::env::consts::DLL_EXTENSION));
        std::fs::write(&lib, b"").unwrap();
        let link = dir.path().join("again");
        std::os::unix::fs::symlink(dir.path(), &link).unwrap();
        let search =
            SearchPath::explicit([dir.path().to_path_buf(), dir.path().join("."), link.clone()]);
        assert_eq!(search.candidates(), [lib]);
    }

    #[test]
    fn explicit_beats_environment_beats_default() {
        let exe = Path::new("/opt/adr/bin/adr");
        let env = std::ffi::OsString::from("/a:/b");
        let p = SearchPath::resolve(&[PathBuf::from("/x")], Some(&env), Some(exe));
        assert_eq!(p.dirs().collect::<Vec<_>>(), [Path::new("/x")]);
        let p = SearchPath::resolve(&[], Some(&env), Some(exe));
        assert_eq!(
            p.dirs().collect::<Vec<_>>(),
            [Path::new("/a"), Path::new("/b")]
        );
        let p = SearchPath::resolve(&[], None, Some(exe));
        assert_eq!(
            p.dirs().collect::<Vec<_>>(),
            [Path::new("/opt/adr/bin/plugins"), Path::new("/opt/adr/bin")]
        );
    }

    #[test]
    fn the_binary_folder_only_offers_adr_plugins() {
        let dir = tempfile::tempdir().unwrap();
        let ext = std::env::consts::DLL_EXTENSION;
        for name in [
            format!("libadr_plugin_x.{ext}"),
            format!("libother.{ext}"),
            "notes.txt".to_owned(),
        ] {
            std::fs::write(dir.path().join(name), b"").unwrap();
        }
        let exe = dir.path().join("adr");
        let found = SearchPath::resolve(&[], None, Some(&exe)).candidates();
        assert_eq!(found, [dir.path().join(format!("libadr_plugin_x.{ext}"))]);
        let found = SearchPath::explicit([dir.path().to_path_buf()]).candidates();
        assert_eq!(found.len(), 2, "an explicit folder offers every library");
    }
}
