//! Loading one plugin library and explaining, in one line, why a file is not usable.

use std::path::{Path, PathBuf};

use abi_stable::{
    library::{lib_header_from_path, LibraryError, RootModule},
    sabi_types::{VersionNumber, VersionStrings},
};
use adr_sdk::{ffi::PluginRef, host::Plugin, DetectorInfo};

/// A plugin library that loaded and described its detectors.
#[derive(Debug, Clone)]
pub struct LoadedPlugin {
    /// The file it was loaded from.
    pub path: PathBuf,
    /// The file the dynamic linker opened: `path`, or a private copy of it when a new build
    /// replaced a file already loaded (the linker would hand back the old library for the
    /// same name). Two builds never share it, so it tells them apart.
    pub build: PathBuf,
    /// The plugin's entry points.
    pub plugin: Plugin,
    /// Its detectors, as it describes them.
    pub detectors: Vec<DetectorInfo>,
}

/// Why a file was not loaded as a plugin. Each message is one line naming the file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// The dynamic linker refused the file (corrupt, truncated, wrong architecture).
    #[error("{}: not a loadable library: {reason}", path.display())]
    Open {
        /// The file.
        path: PathBuf,
        /// The linker's reason.
        reason: String,
    },
    /// A library, but it exports no adr plugin.
    #[error("{}: not an adr plugin (it exports no abi_stable root module)", path.display())]
    NotAPlugin {
        /// The file.
        path: PathBuf,
    },
    /// Built against an SDK whose ABI version is incompatible with this engine's.
    #[error("{}: built against adr-sdk ABI {found}, this engine needs ABI {expected}; rebuild the plugin against adr-sdk {expected}", path.display())]
    IncompatibleAbi {
        /// The file.
        path: PathBuf,
        /// The engine's ABI version.
        expected: String,
        /// The plugin's ABI version.
        found: String,
    },
    /// Same ABI version, but the types crossing the boundary differ.
    #[error("{}: its plugin types do not match this engine's ({summary}); rebuild it against the same adr-sdk", path.display())]
    Layout {
        /// The file.
        path: PathBuf,
        /// The first line of abi_stable's (multi-kilobyte) report.
        summary: String,
    },
    /// The plugin failed or panicked while starting or describing its detectors.
    #[error("{}: the plugin failed to start: {reason}", path.display())]
    Init {
        /// The file.
        path: PathBuf,
        /// What it reported.
        reason: String,
    },
}

impl LoadError {
    /// The file the error is about.
    pub fn path(&self) -> &Path {
        match self {
            LoadError::Open { path, .. }
            | LoadError::NotAPlugin { path }
            | LoadError::IncompatibleAbi { path, .. }
            | LoadError::Layout { path, .. }
            | LoadError::Init { path, .. } => path,
        }
    }
}

/// Loads the plugin library at `path`.
///
/// The library stays mapped for the life of the process, whatever the outcome after it
/// opened (abi_stable's design: its globals may be referenced from the engine).
///
/// # Errors
///
/// A [`LoadError`] saying in one line why the file is not a usable plugin.
pub fn load(path: &Path) -> Result<LoadedPlugin, LoadError> {
    load_build(path, path)
}

/// Loads the library at `build`, a private copy of `path` (see [`LoadedPlugin::build`]),
/// reporting problems under `path`.
///
/// # Errors
///
/// As [`load`].
pub fn load_build(path: &Path, build: &Path) -> Result<LoadedPlugin, LoadError> {
    let path_buf = path.to_path_buf();
    check_complete(path, build)?;
    let header = lib_header_from_path(build).map_err(|e| classify(path_buf.clone(), e))?;
    check_abi_version(path, header.version_strings())?;
    let module = header
        .init_root_module::<PluginRef>()
        .map_err(|e| classify(path_buf.clone(), e))?;
    let plugin = Plugin::from_module(module);
    let detectors = plugin.detectors().map_err(|e| LoadError::Init {
        path: path_buf.clone(),
        reason: e.to_string(),
    })?;
    Ok(LoadedPlugin {
        build: build.to_path_buf(),
        path: path_buf,
        plugin,
        detectors,
    })
}

/// abi_stable accepts a library whose version is newer in the minor number even under
/// `0.x`; adr's rule is stricter and symmetric (see `adr_sdk::ABI_VERSION`): the same
/// major version, or the same minor while `0.x`. Additive changes are patch releases.
fn check_abi_version(path: &Path, found: VersionStrings) -> Result<(), LoadError> {
    let incompatible = |found: String| LoadError::IncompatibleAbi {
        path: path.to_path_buf(),
        expected: adr_sdk::ABI_VERSION.to_owned(),
        found,
    };
    let expected =
        VersionNumber::new(PluginRef::VERSION_STRINGS).expect("the SDK's ABI version parses");
    let found = VersionNumber::new(found).map_err(|e| incompatible(format!("unreadable ({e})")))?;
    if expected.is_loosely_compatible(found) {
        Ok(())
    } else {
        Err(incompatible(found.to_string()))
    }
}

/// Refuses files that are not whole shared libraries before the dynamic linker sees them:
/// it maps a truncated library without complaint, and the first touch of a page past the
/// end of the file kills the process with SIGBUS.
fn check_complete(path: &Path, build: &Path) -> Result<(), LoadError> {
    use object::{Object, ObjectSection, ObjectSegment};
    let open = |reason: String| LoadError::Open {
        path: path.to_path_buf(),
        reason,
    };
    let data = std::fs::read(build).map_err(|e| open(e.to_string()))?;
    let file =
        object::File::parse(&*data).map_err(|e| open(format!("not a shared library ({e})")))?;
    let len = data.len() as u64;
    let needed = file
        .segments()
        .map(|s| s.file_range())
        .chain(file.sections().filter_map(|s| s.file_range()))
        .map(|(offset, size)| offset.saturating_add(size))
        .max()
        .unwrap_or(0);
    if needed > len {
        return Err(open(format!(
            "the file is truncated: {len} bytes, its contents reach byte {needed}"
        )));
    }
    Ok(())
}

fn classify(path: PathBuf, err: LibraryError) -> LoadError {
    match err {
        LibraryError::OpenError { err, .. } => LoadError::Open {
            path,
            reason: first_line(&err.to_string()),
        },
        LibraryError::GetSymbolError { .. } => LoadError::NotAPlugin { path },
        LibraryError::IncompatibleVersionNumber {
            expected_version,
            actual_version,
            ..
        } => LoadError::IncompatibleAbi {
            path,
            expected: expected_version.to_string(),
            found: actual_version.to_string(),
        },
        LibraryError::ParseVersionError(e) => LoadError::IncompatibleAbi {
            path,
            expected: adr_sdk::ABI_VERSION.into(),
            found: format!("unreadable ({e})"),
        },
        LibraryError::InvalidAbiHeader(header) => LoadError::Layout {
            path,
            summary: format!("it was built with an incompatible abi_stable ({header:?})"),
        },
        LibraryError::AbiInstability(e) => LoadError::Layout {
            path,
            summary: summarise_layout(&e.to_string()),
        },
        LibraryError::InvalidCAbi { .. } => LoadError::Layout {
            path,
            summary: "the compiler that built it passes C types differently".into(),
        },
        LibraryError::RootModule { err, .. } => LoadError::Init {
            path,
            reason: first_line(&err.to_string()),
        },
        LibraryError::Many(errors) => {
            let first = errors.into_iter().next();
            match first {
                Some(e) => classify(path, e),
                None => LoadError::Init {
                    path,
                    reason: "unknown error".into(),
                },
            }
        }
    }
}

fn first_line(text: &str) -> String {
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("");
    truncate(line, 200)
}

/// abi_stable reports a layout mismatch as a tree of every type it compared, often tens of
/// kilobytes; people need the first mismatch and how many there were.
fn summarise_layout(report: &str) -> String {
    let mismatches = report.matches("Error:").count().max(1);
    let key = report
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("Error:") || l.contains("mismatch") || l.contains("expected"))
        .unwrap_or_else(|| report.lines().next().unwrap_or("layout mismatch"));
    let key = key.trim_start_matches("Error:").trim();
    format!(
        "{}; {mismatches} mismatch{} in all",
        truncate(key, 160),
        if mismatches == 1 { "" } else { "es" }
    )
}

fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_owned()
    } else {
        let cut: String = text.chars().take(max).collect();
        format!("{cut}…")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_reports_are_summarised_to_one_short_line() {
        let report = format!(
            "Compared <this>:\n{}\nError:Mismatched field name\n  Expected: foo\n  Found: bar\n{}\nError:Mismatched size\n",
            "x".repeat(5000),
            "y".repeat(5000)
        );
        let s = summarise_layout(&report);
        assert!(s.starts_with("Mismatched field name"), "{s}");
        assert!(s.ends_with("2 mismatches in all"), "{s}");
        assert!(s.len() < 250);
    }

    #[test]
    fn missing_files_are_open_errors() {
        let err = load(Path::new("/nonexistent/libnothing.so")).unwrap_err();
        assert!(matches!(err, LoadError::Open { .. }), "{err}");
        assert!(!err.to_string().contains('\n'));
    }
}
