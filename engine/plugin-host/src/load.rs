//! Loading one plugin library and explaining, in one line, why a file is not usable.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use abi_stable::{
    library::{lib_header_from_path, LibraryError, RootModule},
    sabi_types::{VersionNumber, VersionStrings},
};
use adr_sdk::{ffi::PluginRef, host::Plugin, DetectorInfo};

use super::private_copy::{Digest, PrivateCopy};

/// A plugin library that loaded and described its detectors.
#[derive(Debug, Clone)]
pub struct LoadedPlugin {
    /// The file it was loaded from.
    pub path: PathBuf,
    /// Which mapping its code runs from, a number unique in the process: files with the
    /// same contents share one, a new build gets a new one. The mapping is of a private
    /// copy (see `private_copy`), never of `path`.
    pub build: u64,
    /// The SHA-256 of the file's contents when it was loaded.
    pub digest: Digest,
    /// The plugin's entry points.
    pub plugin: Plugin,
    /// Its detectors, as it describes them.
    pub detectors: Vec<DetectorInfo>,
}

/// Why a place on the plugin search path gave no plugin: a file that is not one, or a
/// folder that cannot be searched. Each message is one line that starts with the path.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// A folder named on the search path cannot be searched.
    #[error("folder {}: {reason}", shown(path))]
    Folder {
        /// The folder as named.
        path: PathBuf,
        /// Why: missing, not a folder, unreadable, an empty name.
        reason: String,
    },
    /// An entry named like a library that is no regular file.
    #[error("{}: not a library file: {reason}", path.display())]
    NotAFile {
        /// The entry.
        path: PathBuf,
        /// What it is instead.
        reason: String,
    },
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
            LoadError::Folder { path, .. }
            | LoadError::NotAFile { path, .. }
            | LoadError::Open { path, .. }
            | LoadError::NotAPlugin { path }
            | LoadError::IncompatibleAbi { path, .. }
            | LoadError::Layout { path, .. }
            | LoadError::Init { path, .. } => path,
        }
    }
}

/// Loads the plugin library at `path`, mapped from a private copy of its contents, so that
/// nothing written to `path` later can change or crash the code that runs.
///
/// The library stays mapped for the life of the process, whatever the outcome after it
/// opened (abi_stable's design: its globals may be referenced from the engine).
///
/// # Errors
///
/// A [`LoadError`] saying in one line why the file is not a usable plugin.
pub fn load(path: &Path) -> Result<LoadedPlugin, LoadError> {
    let (bytes, digest) = read(path)?;
    map(path, &bytes, digest)
}

/// The whole contents of the plugin file at `path` and their digest, checked to be a
/// complete shared library.
///
/// # Errors
///
/// [`LoadError::Open`] when the file cannot be read or is not a whole shared library.
pub(crate) fn read(path: &Path) -> Result<(Vec<u8>, Digest), LoadError> {
    let open = |reason: String| LoadError::Open {
        path: path.to_path_buf(),
        reason,
    };
    let file = std::fs::File::open(path).map_err(|e| open(e.to_string()))?;
    let meta = file.metadata().map_err(|e| open(e.to_string()))?;
    if !meta.is_file() {
        return Err(open("not a regular file".into()));
    }
    if meta.len() > MAX_PLUGIN_BYTES {
        return Err(open(format!(
            "{} bytes, more than a plugin library may have ({MAX_PLUGIN_BYTES})",
            meta.len()
        )));
    }
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(
        &mut std::io::Read::take(file, MAX_PLUGIN_BYTES + 1),
        &mut bytes,
    )
    .map_err(|e| open(e.to_string()))?;
    check_complete(path, &bytes)?;
    let digest = Digest::of(&bytes);
    Ok((bytes, digest))
}

/// The largest plugin file read (1 GiB): it is read whole into memory. Release builds of
/// the shipped plugins are a few megabytes; debug builds with full debug information a
/// few hundred.
const MAX_PLUGIN_BYTES: u64 = 1 << 30;

/// Builds mapped so far in this process, to number the next.
static BUILDS: AtomicU64 = AtomicU64::new(0);

/// Maps `bytes`, read from `path` with `digest`, from a private copy, and starts the
/// plugin; problems are reported under `path`.
///
/// # Errors
///
/// As [`load`].
pub(crate) fn map(path: &Path, bytes: &[u8], digest: Digest) -> Result<LoadedPlugin, LoadError> {
    let path_buf = path.to_path_buf();
    let name = path
        .file_name()
        .map_or_else(|| "plugin".into(), |n| n.to_string_lossy());
    let copy = PrivateCopy::write(bytes, digest, &name).map_err(|e| LoadError::Open {
        path: path_buf.clone(),
        reason: format!(
            "cannot write the private copy the engine loads plugins from (in {}): {e}",
            std::env::temp_dir().display()
        ),
    })?;
    let header = lib_header_from_path(copy.path()).map_err(|e| {
        let mut e = classify(path_buf.clone(), e);
        if let LoadError::Open { reason, .. } = &mut e {
            if reason.contains("map segment") {
                reason.push_str(&format!(
                    "; the engine loads plugins from a private copy in {}, which may be mounted noexec: set TMPDIR to a folder that allows executables",
                    std::env::temp_dir().display()
                ));
            }
        }
        e
    })?;
    check_abi_version(path, header.version_strings())?;
    let module = header
        .init_root_module::<PluginRef>()
        .map_err(|e| classify(path_buf.clone(), e))?;
    let plugin = Plugin::from_module(module);
    let detectors = plugin.detectors().map_err(|e| LoadError::Init {
        path: path_buf.clone(),
        reason: e.to_string(),
    })?;
    // The mapping holds the contents; the copy's name can go.
    drop(copy);
    Ok(LoadedPlugin {
        build: BUILDS.fetch_add(1, Ordering::Relaxed),
        digest,
        path: path_buf,
        plugin,
        detectors,
    })
}

/// A path for a message: an empty one (from `ADR_PLUGIN_PATH="a::b"`) as `""`.
fn shown(path: &Path) -> String {
    if path.as_os_str().is_empty() {
        "\"\"".to_owned()
    } else {
        path.display().to_string()
    }
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
fn check_complete(path: &Path, data: &[u8]) -> Result<(), LoadError> {
    use object::{Object, ObjectSection, ObjectSegment};
    let open = |reason: String| LoadError::Open {
        path: path.to_path_buf(),
        reason,
    };
    let file =
        object::File::parse(data).map_err(|e| open(format!("not a shared library ({e})")))?;
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
