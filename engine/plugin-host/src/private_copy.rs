//! The file the dynamic linker maps: a private copy of a plugin, which nobody else writes.
//!
//! A library is mapped from its file page by page, on first touch. Mapping a plugin
//! straight from its folder lets anyone who writes that folder crash the engine: `cp`
//! over the loaded file truncates it in place, and the next touch of a page past the new
//! end kills the process with SIGBUS (or runs half-written code). So the engine reads a
//! plugin's bytes once, checks them, writes them to a file in a fresh private folder,
//! verifies that copy against the bytes' SHA-256, maps it, and removes it: the mapping
//! keeps the file's contents alive, and no path leads to them any more. What is written
//! into a plugin folder afterwards is a new file to consider, never a change under code
//! that runs.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

/// The SHA-256 of a plugin file's contents: two files with one digest are one build.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Digest([u8; 32]);

impl Digest {
    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        Digest(Sha256::digest(bytes).into())
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({self})")
    }
}

/// A copy of a plugin's bytes in a private folder; dropping it removes the folder.
#[derive(Debug)]
pub(super) struct PrivateCopy {
    /// Held for its `Drop`, which removes the folder and the copy.
    _folder: tempfile::TempDir,
    file: PathBuf,
}

impl PrivateCopy {
    /// Writes `bytes` under `name` in a new folder that only this user can enter, and
    /// checks that the file holds exactly the bytes of `digest`.
    ///
    /// # Errors
    ///
    /// The folder or file cannot be written, or the copy reads back different.
    pub(super) fn write(bytes: &[u8], digest: Digest, name: &str) -> io::Result<Self> {
        // A fresh folder with a random name that only its owner can write (the temporary
        // folder's sticky bit keeps others from renaming it), and here enter.
        let folder = tempfile::Builder::new().prefix("adr-plugin-").tempdir()?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(folder.path(), std::fs::Permissions::from_mode(0o700))?;
        }
        let file = folder.path().join(name);
        std::fs::write(&file, bytes)?;
        let written = Digest::of(&std::fs::read(&file)?);
        if written != digest {
            return Err(io::Error::other(format!(
                "the copy at {} reads back as {written}, not {digest}",
                file.display()
            )));
        }
        Ok(PrivateCopy {
            _folder: folder,
            file,
        })
    }

    /// The copy.
    pub(super) fn path(&self) -> &Path {
        &self.file
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_copy_holds_the_bytes_and_goes_away() {
        let bytes = b"\x7fELF and the rest";
        let digest = Digest::of(bytes);
        let copy = PrivateCopy::write(bytes, digest, "libx.so").unwrap();
        assert_eq!(std::fs::read(copy.path()).unwrap(), bytes);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let folder = copy.path().parent().unwrap();
            let mode = std::fs::metadata(folder).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "only the owner may enter the folder");
        }
        let folder = copy.path().parent().unwrap().to_path_buf();
        drop(copy);
        assert!(!folder.exists());
    }

    #[test]
    fn digests_print_as_hex() {
        let d = Digest::of(b"abc");
        assert_eq!(
            d.to_string(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
