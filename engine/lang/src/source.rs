//! Rule files and the files they include, read once each.

use std::path::{Path, PathBuf};

use super::ast::{FileId, Item, RuleFile, Span};
use super::codes::Code;
use super::diagnostic::Diagnostic;
use super::parse::parse_items;

/// The text of every rule file read, by [`FileId`].
#[derive(Debug, Default, Clone)]
pub struct Sources {
    files: Vec<(String, PathBuf, String)>,
}

impl Sources {
    /// Adds a file's text; `name` is how messages show it.
    pub fn add(&mut self, name: String, path: PathBuf, text: String) -> FileId {
        self.files.push((name, path, text));
        self.files.len() - 1
    }

    /// `(name, text)` of every file, by id.
    pub fn files(&self) -> impl Iterator<Item = (&str, &str)> {
        self.files.iter().map(|(n, _, t)| (n.as_str(), t.as_str()))
    }

    /// The path of every file, by id.
    pub fn paths(&self) -> impl Iterator<Item = &Path> {
        self.files.iter().map(|(_, p, _)| p.as_path())
    }

    /// How messages show file `id`.
    pub fn name(&self, id: FileId) -> &str {
        &self.files[id].0
    }

    /// The path of file `id`.
    pub fn path(&self, id: FileId) -> &Path {
        &self.files[id].1
    }

    /// Line and column (from 1, columns in characters) of byte `offset` in file `id`.
    pub fn line_col(&self, id: FileId, offset: usize) -> (usize, usize) {
        let text = &self.files[id].2;
        let mut offset = offset.min(text.len());
        while !text.is_char_boundary(offset) {
            offset -= 1;
        }
        let before = &text[..offset];
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        (line, column)
    }

    fn find(&self, path: &Path) -> Option<FileId> {
        self.files.iter().position(|(_, p, _)| p == path)
    }
}

/// Why a rule file named on the command line cannot be read at all.
#[derive(Debug, thiserror::Error)]
#[error("cannot read rule file {path}: {source}")]
pub struct ReadError {
    /// The file.
    pub path: String,
    /// Why.
    pub source: std::io::Error,
}

/// Rule files and everything they include, parsed.
#[derive(Debug, Default)]
pub struct Loaded {
    /// The text of every file.
    pub sources: Sources,
    /// Every file that parsed, roots and includes, each once.
    pub files: Vec<RuleFile>,
    /// Syntax errors, missing includes and include cycles.
    pub diagnostics: Vec<Diagnostic>,
}

/// Reads `roots` and, recursively, the files they include (paths relative to the including
/// file); each file once, however often it is included.
///
/// # Errors
///
/// A [`ReadError`] if a root file cannot be read; problems inside files are diagnostics.
pub fn load(roots: &[PathBuf]) -> Result<Loaded, ReadError> {
    let mut loaded = Loaded::default();
    for root in roots {
        let text = read_rule_text(root).map_err(|source| ReadError {
            path: root.display().to_string(),
            source,
        })?;
        let key = normalise(root);
        if loaded.sources.find(&key).is_none() {
            let id = loaded.sources.add(root.display().to_string(), key, text);
            visit(&mut loaded, id, &mut vec![id]);
        }
    }
    Ok(loaded)
}

fn visit(loaded: &mut Loaded, id: FileId, stack: &mut Vec<FileId>) {
    let text = loaded.sources.files[id].2.clone();
    let items = match parse_items(id, &text) {
        Ok(items) => items,
        Err(e) => {
            let offset = offset_of(&text, e.line, e.column);
            let span = Span {
                file: id,
                start: offset,
                end: (offset + 1).min(text.len().max(offset)),
            };
            loaded.diagnostics.push(
                Diagnostic::new(Code::Syntax, span, format!("syntax error: {}", e.message))
                    .label(e.message),
            );
            return;
        }
    };
    let dir = loaded
        .sources
        .path(id)
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let display_dir = Path::new(loaded.sources.name(id))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    for item in &items {
        let Item::Include(rel, span) = item else {
            continue;
        };
        let path = normalise(&dir.join(rel));
        if let Some(existing) = loaded.sources.find(&path) {
            if let Some(pos) = stack.iter().position(|&f| f == existing) {
                let chain: Vec<&str> = stack[pos..]
                    .iter()
                    .map(|&f| loaded.sources.name(f))
                    .collect();
                loaded.diagnostics.push(
                    Diagnostic::new(
                        Code::IncludeCycle,
                        *span,
                        format!("including `{rel}` makes a cycle"),
                    )
                    .label("this include leads back here")
                    .note(format!(
                        "cycle: {} -> {}",
                        chain.join(" -> "),
                        loaded.sources.name(existing)
                    )),
                );
            }
            continue;
        }
        match read_rule_text(&path) {
            Ok(text) => {
                let name = normalise(&display_dir.join(rel)).display().to_string();
                let child = loaded.sources.add(name, path, text);
                stack.push(child);
                visit(loaded, child, stack);
                stack.pop();
            }
            Err(e) => loaded.diagnostics.push(
                Diagnostic::new(
                    Code::IncludeMissing,
                    *span,
                    format!("cannot read included file `{rel}`"),
                )
                .label(e.to_string())
                .note(format!("looked for {}", path.display())),
            ),
        }
    }
    loaded.files.push(RuleFile {
        id,
        path: loaded.sources.path(id).to_path_buf(),
        items,
    });
}

/// The largest rule file read: 4 MiB, a thousand times the largest example. A rule set
/// arrives from many authors; `include "/dev/zero"` must not read until memory runs out.
pub const MAX_RULE_FILE_BYTES: u64 = 4 << 20;

/// Reads a rule file: only a regular file (a FIFO would block, a device never end), at
/// most [`MAX_RULE_FILE_BYTES`] (also if it grows while read).
///
/// # Errors
///
/// Any I/O error, or `InvalidInput` naming what is wrong with the file.
pub fn read_rule_text(path: &Path) -> std::io::Result<String> {
    use std::io::Read;
    let invalid = |why: String| std::io::Error::new(std::io::ErrorKind::InvalidInput, why);
    let meta = std::fs::metadata(path)?;
    if meta.is_dir() {
        return Err(invalid("it is a folder, not a rule file".into()));
    }
    if !meta.is_file() {
        return Err(invalid(
            "it is not a regular file (a device, FIFO or socket): rules are read only from files"
                .into(),
        ));
    }
    let too_large = || {
        invalid(format!(
            "it is larger than {} MiB, the most a rule file may be",
            MAX_RULE_FILE_BYTES >> 20
        ))
    };
    if meta.len() > MAX_RULE_FILE_BYTES {
        return Err(too_large());
    }
    let mut text = String::new();
    std::fs::File::open(path)?
        .take(MAX_RULE_FILE_BYTES + 1)
        .read_to_string(&mut text)?;
    if text.len() as u64 > MAX_RULE_FILE_BYTES {
        return Err(too_large());
    }
    Ok(text)
}

/// `a/./b/../c` → `a/c`, without touching the file system (so a missing file still has a
/// stable name).
fn normalise(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir if out.file_name().is_some() => {
                out.pop();
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

fn offset_of(text: &str, line: usize, column: usize) -> usize {
    let line_start: usize = text
        .split_inclusive('\n')
        .take(line - 1)
        .map(str::len)
        .sum();
    let rest = &text[line_start..];
    line_start
        + rest
            .char_indices()
            .nth(column - 1)
            .map_or(rest.len(), |(i, _)| i)
}
