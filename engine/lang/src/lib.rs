//! The `.adr` rule language, alone: what an editor plugin, a linter or the engine needs
//! to read rule files.
//!
//! The pipeline is parse → check → plan → evaluate, each stage its own type (see
//! `docs/decisions/0006-rule-language.md`); this crate holds the first three: the grammar
//! (`grammar/adr.pest`) and its parser ([`syntax`], [`parse`] into the [`ast`]), the loading
//! of files and their includes ([`source`]), the checker ([`check`]) whose
//! [`diagnostic`]s carry stable [`codes`], the [`plan`] with its compiled [`features`],
//! and the [`identity`] of each definition (what a reload compares). [`check_files`] runs
//! the stages `adr check` runs. The checker asks the loaded plugins
//! (`adr_plugin_host::Registry`) about detectors; the evaluation is `adr-engine`'s.

pub mod ast;
pub mod check;
pub mod codes;
pub mod diagnostic;
pub mod features;
pub mod identity;
pub mod parse;
pub mod plan;
pub mod severity;
pub mod source;
pub mod syntax;
pub mod timestamp;

/// Loads rule files (and their includes) and checks them against the loaded plugins.
///
/// # Errors
///
/// A [`source::ReadError`] if a file named in `paths` cannot be read; every problem inside
/// the files is a diagnostic.
pub fn check_files(
    paths: &[std::path::PathBuf],
    registry: &adr_plugin_host::Registry,
) -> Result<(source::Loaded, Vec<diagnostic::Diagnostic>), source::ReadError> {
    let loaded = source::load(paths)?;
    let diagnostics = check::check(&loaded, registry);
    Ok((loaded, diagnostics))
}
