//! Reading market data and writing scores.

pub mod csv_input;
pub mod output;
pub mod timestamp;

pub use csv_input::{Chunk, CsvInput, CsvOptions, InputError, InputStats, UnsortedPolicy};
pub use output::{OutputFormat, ScoreWriter};
