//! Telling whether two paths are one file: links, `.` and `..`, a folder named twice.

use std::path::{Path, PathBuf};

/// What makes two paths one file.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum FileIdentity {
    /// An existing file: its device and inode (on Unix), so links compare equal.
    #[cfg(unix)]
    Inode(u64, u64),
    /// A file that does not exist yet (or a platform without inodes): its canonical path.
    Path(PathBuf),
}

impl FileIdentity {
    /// The identity of `path`, which need not exist yet.
    pub fn of(path: &Path) -> FileIdentity {
        #[cfg(unix)]
        if let Ok(meta) = std::fs::metadata(path) {
            use std::os::unix::fs::MetadataExt;
            return FileIdentity::Inode(meta.dev(), meta.ino());
        }
        if let Ok(canonical) = path.canonicalize() {
            return FileIdentity::Path(canonical);
        }
        // Not there yet: its folder is, or the output cannot be created anyway.
        let folder = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let folder = folder
            .canonicalize()
            .unwrap_or_else(|_| folder.to_path_buf());
        FileIdentity::Path(
            path.file_name()
                .map_or(folder.clone(), |name| folder.join(name)),
        )
    }
}
