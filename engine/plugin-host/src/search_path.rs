//! Where plugins are looked for.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use super::LoadError;
use crate::FileIdentity;

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
    /// Named by the user (`--plugins`, `ADR_PLUGIN_PATH`): a folder that is missing or
    /// unreadable is worth a word. The default folders next to the binary may be absent.
    named: bool,
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
                named: false,
            });
            dirs.push(SearchDir {
                path: dir.to_path_buf(),
                plugins_only: true,
                named: false,
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
                    named: true,
                })
                .collect(),
        }
    }

    /// The folders, in search order.
    pub fn dirs(&self) -> impl Iterator<Item = &Path> {
        self.dirs.iter().map(|d| d.path.as_path())
    }

    /// Every candidate library file, folder by folder, sorted by name within a folder.
    /// A file reached twice (a folder named twice, or through a link) is one plugin:
    /// listed once, where it is first found.
    pub fn candidates(&self) -> Vec<PathBuf> {
        self.scan().0
    }

    /// The candidate library files (as [`candidates`](Self::candidates)), and what is
    /// wrong with each place on the path that offers none where one was expected: a named
    /// folder that is missing, not a folder or unreadable, an empty name, and an entry
    /// named like a library that is no regular file (a folder, a link leading nowhere or
    /// round in a loop, a pipe).
    pub fn scan(&self) -> (Vec<PathBuf>, Vec<LoadError>) {
        let mut all = Vec::new();
        let mut problems: Vec<LoadError> = Vec::new();
        let mut seen_files = HashSet::new();
        let mut seen_dirs = HashSet::new();
        let mut problem = |e: LoadError| {
            if !problems.iter().any(|p| p.to_string() == e.to_string()) {
                problems.push(e);
            }
        };
        for dir in &self.dirs {
            let folder = |reason: String| LoadError::Folder {
                path: dir.path.clone(),
                reason,
            };
            if dir.path.as_os_str().is_empty() {
                problem(folder(
                    "an empty folder name (two separators in a row in ADR_PLUGIN_PATH, or --plugins \"\"); write `.` for the current folder".into(),
                ));
                continue;
            }
            if !seen_dirs.insert(FileIdentity::of(&dir.path)) {
                continue;
            }
            let entries = match std::fs::read_dir(&dir.path) {
                Ok(entries) => entries,
                Err(_) if !dir.named => continue,
                Err(e) => {
                    problem(folder(folder_problem(&dir.path, &e)));
                    continue;
                }
            };
            let mut files = Vec::new();
            for path in entries.filter_map(|e| e.ok().map(|e| e.path())) {
                if !is_dynamic_library(&path)
                    || (dir.plugins_only && !file_name(&path).contains("adr_plugin_"))
                {
                    continue;
                }
                match std::fs::metadata(&path) {
                    Ok(meta) if meta.is_file() => files.push(path),
                    Ok(meta) => problem(LoadError::NotAFile {
                        path,
                        reason: if meta.is_dir() {
                            "a folder, not a library".into()
                        } else {
                            "not a regular file (a pipe, socket or device)".into()
                        },
                    }),
                    Err(e) => problem(LoadError::NotAFile {
                        path,
                        reason: format!("a link that leads nowhere ({e})"),
                    }),
                }
            }
            files.sort();
            all.extend(
                files
                    .into_iter()
                    .filter(|f| seen_files.insert(FileIdentity::of(f))),
            );
        }
        (all, problems)
    }

    /// The folders, for a person: each once, an empty name shown as `""`.
    pub fn describe(&self) -> String {
        let mut shown: Vec<String> = Vec::new();
        for dir in self.dirs() {
            let name = if dir.as_os_str().is_empty() {
                "\"\"".to_owned()
            } else {
                dir.display().to_string()
            };
            if !shown.contains(&name) {
                shown.push(name);
            }
        }
        if shown.is_empty() {
            "no folder (the running binary's folder is unknown)".to_owned()
        } else {
            shown.join(", ")
        }
    }
}

/// Why a named plugin folder cannot be listed.
fn folder_problem(path: &Path, e: &std::io::Error) -> String {
    match std::fs::metadata(path) {
        Err(_) if e.kind() == std::io::ErrorKind::NotFound => "no such folder".into(),
        Ok(meta) if !meta.is_dir() => {
            "not a folder (--plugins and ADR_PLUGIN_PATH name folders of plugin libraries)".into()
        }
        _ => format!("cannot list it: {e}"),
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

    #[test]
    fn each_place_that_offers_no_plugin_says_why() {
        let dir = tempfile::tempdir().unwrap();
        let ext = std::env::consts::DLL_EXTENSION;
        let file = dir.path().join("notes.txt");
        std::fs::write(&file, b"").unwrap();
        std::fs::create_dir(dir.path().join(format!("liby.{ext}"))).unwrap();
        std::os::unix::fs::symlink(
            dir.path().join(format!("libloop.{ext}")),
            dir.path().join(format!("libloop.{ext}")),
        )
        .unwrap();
        std::os::unix::fs::symlink(
            dir.path().join("gone"),
            dir.path().join(format!("libgone.{ext}")),
        )
        .unwrap();
        let search = SearchPath::explicit([
            dir.path().to_path_buf(),
            PathBuf::from("/nonexistent"),
            file.clone(),
            PathBuf::new(),
            PathBuf::new(),
        ]);
        let (found, problems) = search.scan();
        assert!(found.is_empty(), "{found:?}");
        let said: Vec<String> = problems.iter().map(ToString::to_string).collect();
        let expect = [
            format!("liby.{ext}: not a library file: a folder"),
            format!("libloop.{ext}: not a library file: a link that leads nowhere"),
            format!("libgone.{ext}: not a library file: a link that leads nowhere"),
            "/nonexistent: no such folder".to_owned(),
            "notes.txt: not a folder".to_owned(),
            "folder \"\": an empty folder name".to_owned(),
        ];
        for e in &expect {
            assert!(
                said.iter().any(|s| s.contains(e.as_str())),
                "{e} in {said:#?}"
            );
        }
        assert_eq!(said.len(), expect.len(), "each problem once: {said:#?}");
        assert!(
            search.describe().ends_with(r#"notes.txt, """#),
            "{}",
            search.describe()
        );
    }

    #[test]
    fn the_default_folders_may_be_absent() {
        let exe = Path::new("/nonexistent/bin/adr");
        let (found, problems) = SearchPath::resolve(&[], None, Some(exe)).scan();
        assert!(found.is_empty() && problems.is_empty(), "{problems:?}");
    }
}
