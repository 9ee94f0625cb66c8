//! Rule files uploaded through the API (`PUT` and `DELETE /api/v1/rules/{name}`).
//!
//! Uploads live in the data folder's `rules/`, one `NAME.adr` each, and run beside the
//! configured rule files through an index the service writes there (`.uploads.adr`,
//! including each upload). A change is tried first on a copy of the folder (`.staging/`):
//! the uploads with the change applied, checked whole with the configured rules, as
//! `adr check` checks them. Only a rule set that checks clean, and whose includes all stay
//! inside the folder, reaches the real files; the engine then reloads as `--watch` does,
//! and if it refuses the new rules (a changed key or time column) the files are put back.
//! Every step runs on the engine thread, between two batches, so uploads are serialised
//! with each other and with the events.

use std::path::{Path, PathBuf};

use adr_engine::embed::Engine;
use adr_engine::evaluator::SwapReport;
use adr_engine::rules::diagnostic::{self, Level};
use adr_engine::run::notify::Allowed;

/// The index of the uploads, written by the service.
const INDEX: &str = ".uploads.adr";
/// Where a change is tried.
const STAGING: &str = ".staging";
/// Names that cannot be uploads: `rules/status` is a route of its own.
const RESERVED: [&str; 1] = ["status"];
/// The longest upload name.
const MAX_NAME: usize = 64;

/// A change to the uploads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Adds or replaces `name` with `text`.
    Put {
        /// The upload's name.
        name: String,
        /// Its rules.
        text: String,
    },
    /// Removes `name`.
    Delete {
        /// The upload's name.
        name: String,
    },
}

impl Change {
    /// The upload it changes.
    pub fn name(&self) -> &str {
        match self {
            Change::Put { name, .. } | Change::Delete { name } => name,
        }
    }
}

/// Why a change was refused; nothing on disk or in the engine changed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UploadError {
    /// The name cannot be an upload's.
    #[error("{0}")]
    BadName(String),
    /// No upload has that name.
    #[error("no uploaded rule file is named `{0}`")]
    NotFound(String),
    /// The rules do not check; `diagnostics` as `adr check --json` gives them.
    #[error("the rules do not check: {errors} error(s)")]
    Invalid {
        /// How many errors.
        errors: usize,
        /// Every diagnostic.
        diagnostics: serde_json::Value,
    },
    /// An alert notifies a target the service may not deliver to.
    #[error("{0}")]
    Notify(String),
    /// An include reaches outside the uploads folder.
    #[error("{0}")]
    Outside(String),
    /// The rules check, but the running engine cannot swap them in (a changed key or time
    /// column): they need a restart.
    #[error("the running engine refused the new rules: {0}")]
    Refused(String),
    /// The files could not be written.
    #[error("cannot write the uploads folder: {0}")]
    Io(#[from] std::io::Error),
}

/// What a change did.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Applied {
    /// The upload.
    pub name: String,
    /// Whether it now exists.
    pub present: bool,
    /// Whether it existed before.
    pub replaced: bool,
    /// Its version in the store's history (from 1), once recorded.
    pub version: Option<u64>,
    /// The SHA-256 of its text, when it exists.
    pub sha256: Option<String>,
    /// The rule generation now running.
    pub generation: u64,
    /// What the swap kept, started fresh and dropped.
    pub swap: SwapReport,
}

/// The uploads folder.
#[derive(Debug, Clone)]
pub struct Uploads {
    dir: PathBuf,
    /// The configured rule files, which uploads run beside.
    configured: Vec<PathBuf>,
}

/// Whether `name` may name an upload; why not.
///
/// # Errors
///
/// [`UploadError::BadName`] saying what a name may be.
pub fn check_name(name: &str) -> Result<(), UploadError> {
    let fits = !name.is_empty()
        && name.len() <= MAX_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        && name.as_bytes()[0].is_ascii_alphanumeric();
    if !fits {
        return Err(UploadError::BadName(format!(
            "`{}` cannot name a rule file: use 1 to {MAX_NAME} letters, digits, `_` or `-`, starting with a letter or digit",
            name.escape_debug()
        )));
    }
    if RESERVED.contains(&name) {
        return Err(UploadError::BadName(format!(
            "`{name}` is reserved (GET /api/v1/rules/{name} is a route of its own)"
        )));
    }
    Ok(())
}

/// Writes `text` to `path` whole or not at all: a reader (the watch, a reload) never sees
/// half a file.
fn write_whole(path: &Path, text: &str) -> std::io::Result<()> {
    let partial = path.with_extension("adr.partial");
    std::fs::write(&partial, text)?;
    std::fs::rename(&partial, path)
}

/// The SHA-256 of a rule file's text, in hex.
pub fn sha256(text: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The index's text for `names`.
fn index_text(names: &[String]) -> String {
    let mut text = String::from(
        "// Written by `adr serve`: the rule files uploaded through the API. Do not edit.\n",
    );
    for name in names {
        text.push_str(&format!("include \"{name}.adr\"\n"));
    }
    text
}

impl Uploads {
    /// The uploads folder `dir` (created if needed, with its index), run beside
    /// `configured`.
    ///
    /// # Errors
    ///
    /// The folder or its index cannot be written.
    pub fn open(dir: &Path, configured: &[PathBuf]) -> std::io::Result<Uploads> {
        std::fs::create_dir_all(dir)?;
        let uploads = Uploads {
            dir: dir.to_path_buf(),
            configured: configured.to_vec(),
        };
        // The files are the truth; the index follows them (a crash between writing an
        // upload and its index, or a file put there by hand).
        let index = index_text(&uploads.names()?);
        if std::fs::read_to_string(uploads.index()).ok().as_deref() != Some(index.as_str()) {
            write_whole(&uploads.index(), &index)?;
        }
        Ok(uploads)
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn index(&self) -> PathBuf {
        self.dir.join(INDEX)
    }

    /// The rule files the engine runs: the configured ones and the uploads' index.
    pub fn roots(&self) -> Vec<PathBuf> {
        let mut roots = self.configured.clone();
        roots.push(self.index());
        roots
    }

    /// The configured rule files.
    pub fn configured(&self) -> &[PathBuf] {
        &self.configured
    }

    /// The uploads' names, sorted.
    ///
    /// # Errors
    ///
    /// The folder cannot be listed.
    pub fn names(&self) -> std::io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(&self.dir)? {
            let entry = entry?;
            let name = entry.file_name();
            let Some(name) = name.to_str().and_then(|n| n.strip_suffix(".adr")) else {
                continue;
            };
            if check_name(name).is_ok() && entry.file_type()?.is_file() {
                names.push(name.to_owned());
            }
        }
        names.sort();
        Ok(names)
    }

    /// The text of upload `name`, if there is one.
    ///
    /// # Errors
    ///
    /// A bad name, or the file cannot be read.
    pub fn text(&self, name: &str) -> Result<Option<String>, UploadError> {
        check_name(name)?;
        match adr_engine::rules::source::read_rule_text(&self.dir.join(format!("{name}.adr"))) {
            Ok(text) => Ok(Some(text)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Applies `change`: tried on a copy and checked, then written and swapped into
    /// `engine`.
    ///
    /// # Errors
    ///
    /// An [`UploadError`]; the files and the running rules are then as they were.
    pub fn apply(
        &self,
        engine: &mut Engine,
        change: &Change,
        allowed: &Allowed,
    ) -> Result<Applied, UploadError> {
        let name = change.name();
        check_name(name)?;
        let previous = self.text(name)?;
        if matches!(change, Change::Delete { .. }) && previous.is_none() {
            return Err(UploadError::NotFound(name.to_owned()));
        }
        let staging = self.dir.join(STAGING);
        let tried = self.try_on_copy(&staging, engine, change, allowed);
        let _ = std::fs::remove_dir_all(&staging);
        tried?;
        let old_index = std::fs::read_to_string(self.index()).unwrap_or_default();
        let path = self.dir.join(format!("{name}.adr"));
        match change {
            Change::Put { text, .. } => write_whole(&path, text)?,
            Change::Delete { .. } => std::fs::remove_file(&path)?,
        }
        write_whole(&self.index(), &index_text(&self.names()?))?;
        match engine.reload_now() {
            Ok(swap) => Ok(Applied {
                name: name.to_owned(),
                present: matches!(change, Change::Put { .. }),
                replaced: previous.is_some(),
                version: None,
                sha256: match change {
                    Change::Put { text, .. } => Some(sha256(text)),
                    Change::Delete { .. } => None,
                },
                generation: engine.reload_status().generation,
                swap,
            }),
            Err(why) => {
                // Put back what ran, so the folder keeps describing the running rules.
                match &previous {
                    Some(text) => write_whole(&path, text)?,
                    None => std::fs::remove_file(&path)?,
                }
                write_whole(&self.index(), &old_index)?;
                Err(UploadError::Refused(why))
            }
        }
    }

    /// Writes the uploads with `change` applied into `staging` and checks them with the
    /// configured rules.
    fn try_on_copy(
        &self,
        staging: &Path,
        engine: &Engine,
        change: &Change,
        allowed: &Allowed,
    ) -> Result<(), UploadError> {
        let _ = std::fs::remove_dir_all(staging);
        std::fs::create_dir_all(staging)?;
        let mut names = Vec::new();
        for name in self.names()? {
            if name != change.name() {
                std::fs::copy(
                    self.dir.join(format!("{name}.adr")),
                    staging.join(format!("{name}.adr")),
                )?;
                names.push(name);
            }
        }
        if let Change::Put { name, text } = change {
            std::fs::write(staging.join(format!("{name}.adr")), text)?;
            names.push(name.clone());
            names.sort();
        }
        let index = staging.join(INDEX);
        std::fs::write(&index, index_text(&names))?;
        confined(staging, &index)?;
        let mut roots = self.configured.clone();
        roots.push(index);
        let registry = engine.evaluator().registry();
        let (loaded, diagnostics) = adr_engine::rules::check_files(&roots, registry)
            .map_err(|e| UploadError::Io(std::io::Error::other(e.to_string())))?;
        let errors = diagnostics
            .iter()
            .filter(|d| d.level == Level::Error)
            .count();
        if errors > 0 {
            let mut documents = diagnostic::to_json(&diagnostics, &loaded.sources);
            name_as_uploaded(&mut documents, staging);
            return Err(UploadError::Invalid {
                errors,
                diagnostics: documents,
            });
        }
        if let Ok((plan, _)) = adr_engine::rules::plan::Plan::build(&loaded, registry) {
            let refused = allowed.refusals(&plan);
            if !refused.is_empty() {
                return Err(UploadError::Notify(refused.join("; ")));
            }
        }
        Ok(())
    }
}

/// Refuses an include that reaches outside `folder`: uploads include each other by name
/// (`include "common.adr"`), never a path (`../`, absolute) nor a link leading out.
fn confined(folder: &Path, index: &Path) -> Result<(), UploadError> {
    let loaded = adr_engine::rules::source::load(&[index.to_path_buf()])
        .map_err(|e| UploadError::Io(std::io::Error::other(e.to_string())))?;
    for file in &loaded.files {
        for item in &file.items {
            let adr_engine::rules::ast::Item::Include(target, _) = item else {
                continue;
            };
            let mut parts = Path::new(target).components();
            let plain = matches!(
                (parts.next(), parts.next()),
                (Some(std::path::Component::Normal(_)), None)
            );
            if !plain {
                let from = file.path.strip_prefix(folder).unwrap_or(&file.path);
                return Err(UploadError::Outside(format!(
                    "{} includes \"{}\": uploaded rule files include only each other, by name (include \"common.adr\")",
                    from.display(),
                    target.escape_debug()
                )));
            }
        }
    }
    let inside = folder.canonicalize()?;
    for path in loaded.sources.paths() {
        if !path.canonicalize()?.starts_with(&inside) {
            return Err(UploadError::Outside(format!(
                "{} leads outside the uploads folder (a link?): uploaded rule files include only each other",
                path.strip_prefix(folder).unwrap_or(path).display()
            )));
        }
    }
    Ok(())
}

/// Names the staged files in `value` (the diagnostics) as the uploads they are: the
/// staging folder's path, which is the server's business, goes from every text.
fn name_as_uploaded(value: &mut serde_json::Value, staging: &Path) {
    let prefix = format!("{}/", staging.display());
    match value {
        serde_json::Value::String(text) if text.contains(&prefix) => {
            *text = text.replace(&prefix, "");
        }
        serde_json::Value::Array(items) => {
            for item in items {
                name_as_uploaded(item, staging);
            }
        }
        serde_json::Value::Object(fields) => {
            for field in fields.values_mut() {
                name_as_uploaded(field, staging);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_plain_and_bounded() {
        for good in ["pumps", "btc-1m", "A_b-9", &"x".repeat(64)] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "../x",
            ".hidden",
            "-dash",
            "a/b",
            "a b",
            "é",
            "status",
            &"x".repeat(65),
            "x.adr",
        ] {
            assert!(
                matches!(check_name(bad), Err(UploadError::BadName(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn the_index_follows_the_files_at_open() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("b.adr"), "").unwrap();
        std::fs::write(dir.path().join("a.adr"), "").unwrap();
        std::fs::write(dir.path().join("not a name.adr"), "").unwrap();
        let uploads = Uploads::open(dir.path(), &[]).unwrap();
        assert_eq!(uploads.names().unwrap(), ["a", "b"]);
        let index = std::fs::read_to_string(dir.path().join(INDEX)).unwrap();
        assert!(
            index.ends_with("include \"a.adr\"\ninclude \"b.adr\"\n"),
            "{index}"
        );
    }

    #[test]
    fn includes_stay_in_the_folder() {
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("up");
        std::fs::create_dir(&folder).unwrap();
        std::fs::write(dir.path().join("secret.adr"), "").unwrap();
        std::fs::write(folder.join("a.adr"), "include \"../secret.adr\"\n").unwrap();
        std::fs::write(folder.join(INDEX), index_text(&["a".into()])).unwrap();
        let err = confined(&folder, &folder.join(INDEX)).unwrap_err();
        assert!(matches!(err, UploadError::Outside(_)), "{err}");
        for sneaky in ["/etc/passwd", "./b.adr", "sub/b.adr", ".."] {
            std::fs::write(folder.join("a.adr"), format!("include \"{sneaky}\"\n")).unwrap();
            assert!(
                matches!(
                    confined(&folder, &folder.join(INDEX)),
                    Err(UploadError::Outside(_))
                ),
                "{sneaky}"
            );
        }
        std::fs::write(folder.join("a.adr"), "include \"b.adr\"\n").unwrap();
        std::fs::write(folder.join("b.adr"), "").unwrap();
        confined(&folder, &folder.join(INDEX)).unwrap();
        #[cfg(unix)]
        {
            std::fs::remove_file(folder.join("b.adr")).unwrap();
            std::os::unix::fs::symlink(dir.path().join("secret.adr"), folder.join("b.adr"))
                .unwrap();
            assert!(matches!(
                confined(&folder, &folder.join(INDEX)),
                Err(UploadError::Outside(_))
            ));
        }
    }
}
