//! Reading market data and writing scores.

pub mod csv_input;
mod csv_rows;
pub mod distinct;
pub mod events;
pub mod line_limit;
mod market;
pub mod output;

/// Timestamps in every common format (the rule language reads them too).
pub use adr_lang::timestamp;

pub use csv_input::{Chunk, CsvInput, CsvOptions, InputError, InputStats, UnsortedPolicy};
pub use distinct::{ensure_distinct, NamedPath, OverlapError};
pub use events::{open_path, EventInput, EventSpec, InputFormat};
pub use output::{OutputFormat, ScoreWriter};
