//! The `.adr` rule language.
//!
//! The pipeline is parse → check → plan → evaluate, each stage its own type (see
//! `docs/decisions/0006-rule-language.md`). This first stage is the grammar
//! (`grammar/adr.pest`) and its parser: [`syntax::parse`] accepts a file or says where and
//! why it does not.

pub mod syntax;
