//! The adr detection engine: loads detector plugins, reads market data, scores it.
//!
//! The `adr` binary is a thin layer over this library; a service that embeds the engine
//! uses the same pieces:
//!
//! - [`plugins`]: find and load plugin libraries ([`plugins::Registry`]), skipping broken
//!   ones with one readable line each;
//! - [`io`]: streaming CSV input in constant memory, timestamps in every common format,
//!   CSV and JSON-lines output;
//! - [`detect`]: one detector over one file, the thin end-to-end path of `adr detect`;
//! - [`rules`]: the `.adr` language: parse → check → [plan](rules::plan::Plan) →
//!   [evaluate](rules::eval::Evaluator);
//! - [`run`]: the pieces behind `adr run`, `adr test` and `adr explain`, with sinks for
//!   alerts, scored tables and notifications;
//! - [`embed`]: the [`Engine`](embed::Engine) a service embeds and `adr run` runs: push
//!   events, results to sinks, status, reloads;
//! - [`eval`]: metrics, and detectors scored on benchmark data under its published protocol
//!   (`adr eval`);
//! - [`reload`]: preparing reloaded rules and plugins off the event path, and watching
//!   their files.
//!
//! Key decision: the engine never links a detector family statically. Every family,
//! including the ones shipped here, goes through the same stable-ABI boundary as a
//! third-party plugin, so the boundary is exercised by every test and every run.

pub mod detect;
pub mod embed;
pub mod eval;
pub mod io;
pub mod plugins;
pub mod reload;
pub mod rules;
pub mod run;
