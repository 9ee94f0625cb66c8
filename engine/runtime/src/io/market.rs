//! Exchange feeds as event input: each line of a recorded feed (Binance's WebSocket
//! messages, or its bulk trade and kline files) read by `adr_market` into its named fields
//! and turned into CSV rows as they are read, so the feeds share the CSV reader's
//! policies and messages, as JSON lines do.
//!
//! The columns are `ts` (the event's time), `symbol`, then the fields of the first event's
//! kind (a trade's `price`, `qty`, `side`, `notional`; a candle's `open` … `trades`; a
//! book ticker's `bid` … `spread`). One input holds one kind: a line of another kind is an
//! error naming it, as is a line that is not a message of the feed.

use std::io::{BufRead, BufReader, Read};

use adr_market::{Feed, MarketEvent};

use super::csv_rows::CsvRows;
use super::timestamp::format_rfc3339;

/// Reads a feed's lines and yields CSV text.
pub(super) struct FeedToCsv<R: Read> {
    lines: BufReader<R>,
    feed: Feed,
    symbol: String,
    kind: Option<&'static str>,
    line: String,
    line_no: u64,
}

impl<R: Read> FeedToCsv<R> {
    pub(super) fn new(source: R, feed: Feed, symbol: &str, buffer: usize) -> Self {
        FeedToCsv {
            lines: BufReader::with_capacity(buffer, source),
            feed,
            symbol: symbol.to_owned(),
            kind: None,
            line: String::new(),
            line_no: 0,
        }
    }

    fn bad(&self, why: impl std::fmt::Display) -> std::io::Error {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("line {}: {why}", self.line_no),
        )
    }
}

impl<R: Read> CsvRows for FeedToCsv<R> {
    /// Converts the next line holding an event; false at the end.
    fn next_row(&mut self, out: &mut Vec<u8>) -> std::io::Result<bool> {
        let event = loop {
            self.line.clear();
            if self.lines.read_line(&mut self.line)? == 0 {
                return Ok(false);
            }
            self.line_no += 1;
            match self.feed.read_line(&self.symbol, &self.line) {
                Ok(Some(event)) => break event,
                Ok(None) => {}
                Err(e) => return Err(self.bad(e)),
            }
        };
        let Some(time) = event.time() else {
            return Err(self.bad(format!(
                "a {} without an event time cannot be placed in time (record the stream with its event times)",
                event.kind()
            )));
        };
        if matches!(event, MarketEvent::Depth(_)) {
            return Err(self.bad(
                "depth updates change an order book, which event input does not keep yet: read trades, klines or book tickers",
            ));
        }
        let mut row = csv::Writer::from_writer(&mut *out);
        match self.kind {
            None => {
                self.kind = Some(event.kind());
                let mut header = vec!["ts", "symbol"];
                header.extend(event.field_names());
                row.write_record(&header)?;
            }
            Some(kind) if kind != event.kind() => {
                drop(row);
                return Err(self.bad(format!(
                    "a {} in an input of {kind}s: read one kind of message per input",
                    event.kind()
                )));
            }
            Some(_) => {}
        }
        row.write_field(format_rfc3339(time))?;
        row.write_field(event.symbol())?;
        for (_, value) in event.fields() {
            if value.is_nan() {
                row.write_field("")?;
            } else {
                row.write_field(value.to_string())?;
            }
        }
        row.write_record(None::<&[u8]>)?;
        row.flush()?;
        Ok(true)
    }
}
