//! Market data in: what exchanges send (trades, klines, best bid/ask, depth updates),
//! read into one shape whose named fields (`price`, `qty`, `side`, `symbol`, `exchange`,
//! `open` … `volume`, `bid`, `ask`) one rule file reads whatever the exchange.
//!
//! Formats read so far ([`binance`]): Binance's bulk CSV files (`trades`, `aggTrades`,
//! `klines` from data.binance.vision), its REST klines (arrays), and its WebSocket
//! messages (`trade`, `aggTrade`, `kline`, `bookTicker`, `depthUpdate`, plain or wrapped
//! in a combined stream's `{"stream", "data"}`).
//!
//! Values are checked as they are read: a price or size that is not a positive finite
//! number, a time that is not one, a message of an unknown kind: each is an error that
//! names what is wrong, never a panic and never a silent zero.

pub mod binance;
mod event;

use binance::BulkFile;

/// A feed format read line by line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Feed {
    /// Binance WebSocket messages, one a line (recorded streams).
    BinanceWs,
    /// Binance's bulk `trades` CSV.
    BinanceTrades,
    /// Binance's bulk `aggTrades` CSV.
    BinanceAggTrades,
    /// Binance's bulk `klines` CSV.
    BinanceKlines,
}

impl Feed {
    /// Whether the lines name their market (a bulk file's market is in its name).
    pub fn names_symbols(self) -> bool {
        self == Feed::BinanceWs
    }

    /// The event of `line`, `None` for a blank or header line; `symbol` is the market of
    /// a format whose lines do not name it.
    ///
    /// # Errors
    ///
    /// A [`MarketError`] naming what is wrong.
    pub fn read_line(self, symbol: &str, line: &str) -> Result<Option<MarketEvent>, MarketError> {
        match self {
            Feed::BinanceWs if line.trim().is_empty() => Ok(None),
            Feed::BinanceWs => binance::ws_message(line).map(Some),
            Feed::BinanceTrades => binance::csv_line(BulkFile::Trades, symbol, line),
            Feed::BinanceAggTrades => binance::csv_line(BulkFile::AggTrades, symbol, line),
            Feed::BinanceKlines => binance::csv_line(BulkFile::Klines, symbol, line),
        }
    }
}

/// The market a bulk file is of, from its name as data.binance.vision writes it
/// (`BTCUSDT-trades-2024-01-01.csv`, `BTCUSDT-1m-2024-01.zip` → `BTCUSDT`).
pub fn symbol_of_file(path: &str) -> Option<&str> {
    let name = path.rsplit(['/', '\\']).next()?;
    let symbol = name.split('-').next()?;
    (!symbol.is_empty() && symbol.chars().all(|c| c.is_ascii_alphanumeric()) && symbol != name)
        .then_some(symbol)
}

pub use event::{Book, BookTicker, DepthUpdate, Kline, MarketEvent, Side, Trade};

/// Why a message or a line was not read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum MarketError {
    /// Not JSON, or not the shape of any message of the format.
    #[error("not a message of this format: {0}")]
    Malformed(String),
    /// A kind of message the format has but this reader does not take.
    #[error(
        "`{0}` messages are not read (trade, aggTrade, kline, bookTicker and depthUpdate are)"
    )]
    UnknownKind(String),
    /// A field is missing.
    #[error("field `{0}` is missing")]
    Missing(&'static str),
    /// A field's value is not what it must be.
    #[error("field `{field}`: `{value}` {why}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// Its text (the first 40 characters).
        value: String,
        /// What it must be.
        why: &'static str,
    },
}

impl MarketError {
    pub(crate) fn invalid(field: &'static str, value: &str, why: &'static str) -> MarketError {
        MarketError::Invalid {
            field,
            value: value.chars().take(40).collect(),
            why,
        }
    }
}

/// A time in an exchange's message, in seconds, milliseconds or microseconds since the
/// epoch (told apart by size: Binance's spot files moved from milliseconds to
/// microseconds in 2025), as nanoseconds.
///
/// # Errors
///
/// [`MarketError::Invalid`] for a negative time or one past the year 2262.
pub fn epoch_ns(field: &'static str, value: i64) -> Result<i64, MarketError> {
    let ns = match value {
        v if v < 0 => None,
        v if v < 100_000_000_000 => v.checked_mul(1_000_000_000),
        v if v < 100_000_000_000_000 => v.checked_mul(1_000_000),
        v if v < 100_000_000_000_000_000 => v.checked_mul(1_000),
        v => Some(v),
    };
    ns.ok_or_else(|| MarketError::invalid(field, &value.to_string(), "is not a time since 1970"))
}
