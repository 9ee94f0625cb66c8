//! Binance: WebSocket messages, REST klines and the bulk CSV files of data.binance.vision.
//!
//! Binance writes prices and sizes as decimal strings (`"0.00123000"`), times as epoch
//! milliseconds (microseconds in the spot bulk files from 2025), and a trade's side as
//! `m`/`is_buyer_maker`: true when the buyer was the maker, so the taker sold.

use serde_json::{Map, Value};

use crate::{epoch_ns, BookTicker, DepthUpdate, Kline, MarketError, MarketEvent, Side, Trade};

/// A WebSocket message: `trade`, `aggTrade`, `kline`, `depthUpdate` or a book ticker,
/// alone or wrapped as a combined stream sends it (`{"stream": …, "data": …}`).
///
/// # Errors
///
/// A [`MarketError`] naming what is wrong.
pub fn ws_message(text: &str) -> Result<MarketEvent, MarketError> {
    let value: Value =
        serde_json::from_str(text).map_err(|e| MarketError::Malformed(e.to_string()))?;
    let Value::Object(mut object) = value else {
        return Err(MarketError::Malformed("a message is a JSON object".into()));
    };
    if object.contains_key("stream") {
        return match object.remove("data") {
            Some(Value::Object(data)) => message(&data),
            _ => Err(MarketError::Missing("data")),
        };
    }
    message(&object)
}

fn message(m: &Map<String, Value>) -> Result<MarketEvent, MarketError> {
    match m.get("e").and_then(Value::as_str) {
        Some("trade") => Ok(MarketEvent::Trade(Trade {
            time: time(m, "T")?,
            symbol: text(m, "s")?,
            id: Some(count(m, "t")?),
            price: positive(m, "p")?,
            qty: positive(m, "q")?,
            side: taker(m, "m")?,
        })),
        Some("aggTrade") => Ok(MarketEvent::Trade(Trade {
            time: time(m, "T")?,
            symbol: text(m, "s")?,
            id: Some(count(m, "f")?),
            price: positive(m, "p")?,
            qty: positive(m, "q")?,
            side: taker(m, "m")?,
        })),
        Some("kline") => {
            let k = match m.get("k") {
                Some(Value::Object(k)) => k,
                _ => return Err(MarketError::Missing("k")),
            };
            candle(Kline {
                open_time: time(k, "t")?,
                symbol: text(m, "s")?,
                open: positive(k, "o")?,
                high: positive(k, "h")?,
                low: positive(k, "l")?,
                close: positive(k, "c")?,
                volume: non_negative(k, "v")?,
                quote_volume: Some(non_negative(k, "q")?),
                trades: Some(count(k, "n")?),
                closed: flag(k, "x")?,
            })
            .map(MarketEvent::Kline)
        }
        Some("depthUpdate") => {
            let first_update_id = count(m, "U")?;
            let last_update_id = count(m, "u")?;
            if last_update_id < first_update_id {
                return Err(MarketError::invalid(
                    "u",
                    &last_update_id.to_string(),
                    "is below the first update id `U`",
                ));
            }
            Ok(MarketEvent::Depth(DepthUpdate {
                time: time(m, "E")?,
                symbol: text(m, "s")?,
                first_update_id,
                last_update_id,
                bids: levels(m, "b")?,
                asks: levels(m, "a")?,
            }))
        }
        Some(other) => Err(MarketError::UnknownKind(other.to_owned())),
        // A book ticker carries no event type.
        None if ["u", "s", "b", "B", "a", "A"]
            .iter()
            .all(|k| m.contains_key(*k)) =>
        {
            let bid = positive(m, "b")?;
            let ask = positive(m, "a")?;
            if ask < bid {
                return Err(MarketError::invalid(
                    "a",
                    &ask.to_string(),
                    "is below the bid: the book is crossed",
                ));
            }
            Ok(MarketEvent::BookTicker(BookTicker {
                time: m.get("E").map(|_| time(m, "E")).transpose()?,
                symbol: text(m, "s")?,
                update_id: count(m, "u")?,
                bid,
                bid_qty: non_negative(m, "B")?,
                ask,
                ask_qty: non_negative(m, "A")?,
            }))
        }
        None => Err(MarketError::Malformed(
            "no event type `e`, and not a book ticker".into(),
        )),
    }
}

/// REST `GET /api/v3/klines` (or `/fapi/v1/klines`): an array of candles, each an array
/// of open time, open, high, low, close, volume, close time, quote volume, trades, …
///
/// # Errors
///
/// A [`MarketError`] naming the candle and what is wrong.
pub fn rest_klines(symbol: &str, text: &str) -> Result<Vec<Kline>, MarketError> {
    let value: Value =
        serde_json::from_str(text).map_err(|e| MarketError::Malformed(e.to_string()))?;
    let Value::Array(rows) = value else {
        return Err(MarketError::Malformed(
            "klines are a JSON array of arrays".into(),
        ));
    };
    rows.iter()
        .map(|row| {
            let cells: Vec<String> = match row {
                Value::Array(cells) => cells
                    .iter()
                    .map(|c| match c {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    })
                    .collect(),
                _ => return Err(MarketError::Malformed("a kline is an array".into())),
            };
            let cells: Vec<&str> = cells.iter().map(String::as_str).collect();
            kline_cells(symbol, &cells)
        })
        .collect()
}

/// Which bulk file a CSV line is from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BulkFile {
    /// `trades`: id, price, qty, quote qty, time, is buyer maker, is best match.
    Trades,
    /// `aggTrades`: aggregate id, price, qty, first id, last id, time, is buyer maker,
    /// is best match.
    AggTrades,
    /// `klines`: open time, open, high, low, close, volume, close time, quote volume,
    /// trades, taker buy volume, taker buy quote volume, ignore.
    Klines,
}

/// One line of a bulk CSV file of `symbol`; `None` for a header line (newer files have
/// one, older ones do not) or a blank one.
///
/// # Errors
///
/// A [`MarketError`] naming the field and what is wrong.
pub fn csv_line(
    file: BulkFile,
    symbol: &str,
    line: &str,
) -> Result<Option<MarketEvent>, MarketError> {
    let line = line.trim();
    let cells: Vec<&str> = line.split(',').map(str::trim).collect();
    // A header names columns: no digit anywhere.
    if line.is_empty() || !line.chars().any(|c| c.is_ascii_digit()) {
        return Ok(None);
    }
    let want = match file {
        BulkFile::Trades => 6,
        BulkFile::AggTrades => 7,
        BulkFile::Klines => 9,
    };
    if cells.len() < want {
        return Err(MarketError::Malformed(format!(
            "{} fields; a line of this file has at least {want}",
            cells.len()
        )));
    }
    let event = match file {
        BulkFile::Trades => MarketEvent::Trade(Trade {
            time: time_text("time", cells[4])?,
            symbol: symbol.to_owned(),
            id: Some(count_text("id", cells[0])?),
            price: positive_text("price", cells[1])?,
            qty: positive_text("qty", cells[2])?,
            side: taker_text("is_buyer_maker", cells[5])?,
        }),
        BulkFile::AggTrades => MarketEvent::Trade(Trade {
            time: time_text("transact_time", cells[5])?,
            symbol: symbol.to_owned(),
            id: Some(count_text("first_trade_id", cells[3])?),
            price: positive_text("price", cells[1])?,
            qty: positive_text("quantity", cells[2])?,
            side: taker_text("is_buyer_maker", cells[6])?,
        }),
        BulkFile::Klines => MarketEvent::Kline(kline_cells(symbol, &cells)?),
    };
    Ok(Some(event))
}

/// A candle from its cells as REST and the bulk files order them.
fn kline_cells(symbol: &str, cells: &[&str]) -> Result<Kline, MarketError> {
    if cells.len() < 9 {
        return Err(MarketError::Malformed(format!(
            "a kline has 12 fields (at least 9 read), not {}",
            cells.len()
        )));
    }
    candle(Kline {
        open_time: time_text("open_time", cells[0])?,
        symbol: symbol.to_owned(),
        open: positive_text("open", cells[1])?,
        high: positive_text("high", cells[2])?,
        low: positive_text("low", cells[3])?,
        close: positive_text("close", cells[4])?,
        volume: non_negative_text("volume", cells[5])?,
        quote_volume: Some(non_negative_text("quote_volume", cells[7])?),
        trades: Some(count_text("count", cells[8])?),
        closed: true,
    })
}

/// `c`, if its high and low bound its open and close.
fn candle(c: Kline) -> Result<Kline, MarketError> {
    if c.high < c.low || c.open > c.high || c.open < c.low || c.close > c.high || c.close < c.low {
        return Err(MarketError::invalid(
            "high",
            &format!(
                "{} (low {}, open {}, close {})",
                c.high, c.low, c.open, c.close
            ),
            "does not bound the candle: high ≥ open, close ≥ low",
        ));
    }
    Ok(c)
}

fn field<'m>(m: &'m Map<String, Value>, name: &'static str) -> Result<&'m Value, MarketError> {
    m.get(name).ok_or(MarketError::Missing(name))
}

/// A string or number field's text.
fn cell(m: &Map<String, Value>, name: &'static str) -> Result<String, MarketError> {
    Ok(match field(m, name)? {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        other => {
            return Err(MarketError::invalid(
                name,
                &other.to_string(),
                "is not a number",
            ))
        }
    })
}

fn text(m: &Map<String, Value>, name: &'static str) -> Result<String, MarketError> {
    match field(m, name)? {
        Value::String(s) if !s.trim().is_empty() => Ok(s.clone()),
        other => Err(MarketError::invalid(
            name,
            &other.to_string(),
            "is not a symbol",
        )),
    }
}

fn positive(m: &Map<String, Value>, name: &'static str) -> Result<f64, MarketError> {
    positive_text(name, &cell(m, name)?)
}

fn non_negative(m: &Map<String, Value>, name: &'static str) -> Result<f64, MarketError> {
    non_negative_text(name, &cell(m, name)?)
}

fn count(m: &Map<String, Value>, name: &'static str) -> Result<u64, MarketError> {
    count_text(name, &cell(m, name)?)
}

fn time(m: &Map<String, Value>, name: &'static str) -> Result<i64, MarketError> {
    time_text(name, &cell(m, name)?)
}

/// A book side's levels: `[["price", "size"], …]`, a size of 0 removing the level.
fn levels(m: &Map<String, Value>, name: &'static str) -> Result<crate::Book, MarketError> {
    let Value::Array(rows) = field(m, name)? else {
        return Err(MarketError::invalid(
            name,
            "",
            "is not a list of [price, size]",
        ));
    };
    rows.iter()
        .map(|row| match row.as_array().map(Vec::as_slice) {
            Some([price, size, ..]) => {
                let text = |v: &Value| match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                Ok((
                    positive_text(name, &text(price))?,
                    non_negative_text(name, &text(size))?,
                ))
            }
            _ => Err(MarketError::invalid(
                name,
                &row.to_string(),
                "is not a [price, size] level",
            )),
        })
        .collect()
}

fn flag(m: &Map<String, Value>, name: &'static str) -> Result<bool, MarketError> {
    match field(m, name)? {
        Value::Bool(b) => Ok(*b),
        other => Err(MarketError::invalid(
            name,
            &other.to_string(),
            "is not true or false",
        )),
    }
}

fn taker(m: &Map<String, Value>, name: &'static str) -> Result<Side, MarketError> {
    Ok(if flag(m, name)? {
        Side::Sell
    } else {
        Side::Buy
    })
}

fn number_text(name: &'static str, text: &str) -> Result<f64, MarketError> {
    text.trim()
        .parse::<f64>()
        .ok()
        .filter(|x| x.is_finite())
        .ok_or_else(|| MarketError::invalid(name, text, "is not a finite number"))
}

fn positive_text(name: &'static str, text: &str) -> Result<f64, MarketError> {
    let x = number_text(name, text)?;
    if x > 0.0 {
        Ok(x)
    } else {
        Err(MarketError::invalid(name, text, "must be above 0"))
    }
}

fn non_negative_text(name: &'static str, text: &str) -> Result<f64, MarketError> {
    let x = number_text(name, text)?;
    if x >= 0.0 {
        Ok(x)
    } else {
        Err(MarketError::invalid(name, text, "must not be negative"))
    }
}

fn count_text(name: &'static str, text: &str) -> Result<u64, MarketError> {
    text.trim()
        .parse::<u64>()
        .map_err(|_| MarketError::invalid(name, text, "is not a whole number ≥ 0"))
}

fn time_text(name: &'static str, text: &str) -> Result<i64, MarketError> {
    let value = text
        .trim()
        .parse::<i64>()
        .map_err(|_| MarketError::invalid(name, text, "is not an epoch time"))?;
    epoch_ns(name, value)
}

fn taker_text(name: &'static str, text: &str) -> Result<Side, MarketError> {
    match text.trim().to_ascii_lowercase().as_str() {
        "true" => Ok(Side::Sell),
        "false" => Ok(Side::Buy),
        _ => Err(MarketError::invalid(name, text, "is not true or false")),
    }
}

#[cfg(test)]
mod tests;
