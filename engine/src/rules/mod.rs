//! The `.adr` rule language.
//!
//! The pipeline is parse → check → plan → evaluate, each stage its own type (see
//! `docs/decisions/0006-rule-language.md`). This first stage is the grammar
//! (`grammar/adr.pest`) and its parser ([`syntax`], [`parse`] into the [`ast`]), the loading
//! of files and their includes ([`source`]), and the checker ([`check`]) whose
//! [`diagnostic`]s carry stable [`codes`]. [`check_files`] runs the stages `adr check` runs.

pub mod ast;
pub mod budget;
pub mod check;
pub mod codes;
pub mod diagnostic;
pub mod eval;
pub mod features;
pub mod identity;
pub mod parse;
pub mod plan;
pub mod severity;
pub mod source;
pub mod syntax;

/// Loads rule files (and their includes) and checks them against the loaded plugins.
///
/// # Errors
///
/// A [`source::ReadError`] if a file named in `paths` cannot be read; every problem inside
/// the files is a diagnostic.
pub fn check_files(
    paths: &[std::path::PathBuf],
    registry: &crate::plugins::Registry,
) -> Result<(source::Loaded, Vec<diagnostic::Diagnostic>), source::ReadError> {
    let loaded = source::load(paths)?;
    let diagnostics = check::check(&loaded, registry);
    Ok((loaded, diagnostics))
}
