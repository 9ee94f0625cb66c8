//! The adr detection engine: rules evaluated over streams of events, with hot reload, and
//! the embedding API a service builds on.
//!
//! The `adr` command (`adr-cli`) and a service are layers over this crate; it is one of
//! the host side's crates, each with one job:
//!
//! - `adr-plugin-host`, re-exported as [`plugins`]: find and load plugin libraries
//!   ([`plugins::Registry`]), skipping broken ones with one readable line each;
//! - `adr-lang`, re-exported as [`rules`]: the `.adr` language: parse → check →
//!   [plan](rules::plan::Plan), with diagnostics and identities;
//! - this crate: [`evaluator`] (a plan evaluated over batches of events, state per key),
//!   [`budget`] (state estimates), [`describe`] (the plugins as JSON), [`io`] (streaming CSV and JSON-lines input in constant
//!   memory, output), [`detect`] (one detector over one file, `adr detect`), [`run`] (the
//!   pieces behind `adr run`, `adr test` and `adr explain`, with sinks for alerts, scored
//!   tables and notifications), [`embed`] (the [`Engine`](embed::Engine) a service embeds
//!   and `adr run` runs: push events, results to sinks, status, reloads) and [`reload`]
//!   (preparing reloaded rules and plugins off the event path, and watching their files);
//! - `adr-benchmark`: detectors and rule files scored on benchmark data under their
//!   published protocols (`adr eval`).
//!
//! Key decision: the engine never links a detector family statically. Every family,
//! including the ones shipped here, goes through the same stable-ABI boundary as a
//! third-party plugin, so the boundary is exercised by every test and every run.

pub use adr_lang as rules;
pub use adr_plugin_host as plugins;

pub mod budget;
pub mod describe;
pub mod detect;
pub mod embed;
pub mod evaluator;
pub mod io;
pub mod reload;
pub mod run;
