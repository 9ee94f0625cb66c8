//! Events as requests bring them, read into columns for the engine.
//!
//! A request's events are read where the request is handled (the async workers, or a
//! blocking thread for a large body), not on the engine thread, which then only
//! evaluates. They are read with the columns the rules in force read; the request keeps
//! its events as they came ([`Source`]), so that the engine can read them again if a
//! reload changed those columns before their turn came.

use axum::body::Bytes;
use serde_json::{Map, Value};

use adr_engine::embed::Events;
use adr_engine::io::{Chunk, EventInput, EventSpec, InputFormat};

use crate::runner::IngestError;

/// Events as a request brought them.
#[derive(Debug, Clone)]
pub enum Source {
    /// A body of CSV with a header, or JSON lines.
    Body {
        /// The body.
        bytes: Bytes,
        /// Its format.
        format: InputFormat,
    },
    /// Event objects (a WebSocket frame's).
    Objects(Vec<Map<String, Value>>),
}

impl Source {
    /// Roughly how much reading it is, in bytes: where a request's events are read
    /// depends on it.
    pub fn weight(&self) -> usize {
        match self {
            Source::Body { bytes, .. } => bytes.len(),
            Source::Objects(objects) => objects.len().saturating_mul(100),
        }
    }
}

/// Bodies (or frames) heavier than this are read on a blocking thread: reading them
/// takes long enough to stall the other requests of an async worker.
pub const READ_INLINE_UP_TO: usize = 256 * 1024;

/// Reads `source`'s events with the columns of `spec`: at most `max_rows`, each with a
/// key that is UTF-8 text and not empty.
///
/// # Errors
///
/// [`IngestError::Input`] naming the first bad row, or [`IngestError::TooMany`].
pub fn read(source: &Source, spec: &EventSpec, max_rows: usize) -> Result<Events, IngestError> {
    let input = |e: adr_engine::io::InputError| IngestError::Input(e.to_string());
    let events = match source {
        Source::Body {
            bytes,
            format: InputFormat::JsonLines,
        } => Events::from_json_lines(bytes, spec).map_err(input)?,
        Source::Body {
            bytes,
            format: InputFormat::Csv,
        } => read_csv(bytes, spec, max_rows)?,
        Source::Objects(objects) => {
            if objects.len() > max_rows {
                return Err(IngestError::TooMany { limit: max_rows });
            }
            let numbered = objects.iter().enumerate().map(|(i, o)| (i as u64 + 1, o));
            Events::from_json_objects(numbered, spec).map_err(input)?
        }
    };
    if events.len() > max_rows {
        return Err(IngestError::TooMany { limit: max_rows });
    }
    for i in 0..events.len() {
        for (part, column) in events.key(i).iter().zip(&spec.keys) {
            refuse_empty_key(part, column, i as u64 + 1)?;
        }
    }
    Ok(events)
}

/// The service refuses what a file run takes as the empty key: an event without its key
/// would merge with every other such event.
fn refuse_empty_key(part: &str, column: &str, row: u64) -> Result<(), IngestError> {
    if part.trim().is_empty() {
        return Err(IngestError::Input(format!(
            "row {row}: key column `{column}` is empty or missing"
        )));
    }
    Ok(())
}

/// CSV with a header, through the reader `adr run` reads files with.
fn read_csv(bytes: &[u8], spec: &EventSpec, max_rows: usize) -> Result<Events, IngestError> {
    let mut input = EventInput::from_bytes(bytes.to_vec(), InputFormat::Csv, spec)
        .map_err(|e| IngestError::Input(e.to_string()))?;
    let names: Vec<&str> = spec.fields.iter().map(String::as_str).collect();
    let mut events = Events::new(&names, spec.keys.len());
    let mut chunk = Chunk::default();
    let mut values = vec![0.0; spec.fields.len()];
    loop {
        let n = input
            .read_chunk(&mut chunk)
            .map_err(|e| IngestError::Input(e.to_string()))?;
        if n == 0 {
            return Ok(events);
        }
        if events.len() + n > max_rows {
            return Err(IngestError::TooMany { limit: max_rows });
        }
        let mut key: Vec<&str> = Vec::with_capacity(spec.keys.len());
        for i in 0..n {
            let row = chunk.first_row + i as u64;
            key.clear();
            for (part, column) in input.key_parts(&chunk, i).zip(&spec.keys) {
                // Two keys that are not text would both read as replacement characters
                // and merge: refuse them instead.
                let part = std::str::from_utf8(part).map_err(|_| {
                    IngestError::Input(format!(
                        "row {row}: key column `{column}` is not UTF-8 text"
                    ))
                })?;
                refuse_empty_key(part, column, row)?;
                key.push(part);
            }
            for (v, column) in values.iter_mut().zip(&chunk.columns) {
                *v = column[i];
            }
            events
                .push(chunk.timestamps[i], &key, &values)
                .map_err(|e| IngestError::Input(e.to_string()))?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> EventSpec {
        EventSpec {
            keys: vec!["symbol".into()],
            fields: vec!["close".into()],
            ..EventSpec::default()
        }
    }

    fn body(text: &str, format: InputFormat) -> Source {
        Source::Body {
            bytes: Bytes::copy_from_slice(text.as_bytes()),
            format,
        }
    }

    #[test]
    fn every_form_reads_the_same_events() {
        let csv = body("ts,symbol,close\n1,A,1.5\n2,B,\n", InputFormat::Csv);
        let lines = body(
            "{\"ts\": 1, \"symbol\": \"A\", \"close\": 1.5}\n{\"ts\": 2, \"symbol\": \"B\"}\n",
            InputFormat::JsonLines,
        );
        let objects = Source::Objects(vec![
            serde_json::from_str(r#"{"ts": 1, "symbol": "A", "close": 1.5}"#).unwrap(),
            serde_json::from_str(r#"{"ts": 2, "symbol": "B", "close": null}"#).unwrap(),
        ]);
        for source in [csv, lines, objects] {
            let events = read(&source, &spec(), 10).unwrap();
            assert_eq!(events.timestamps(), &[1_000_000_000, 2_000_000_000]);
            assert_eq!(events.key(1), &["B".to_owned()]);
            assert_eq!(events.column(0)[0], 1.5);
            assert!(events.column(0)[1].is_nan(), "{source:?}");
        }
    }

    #[test]
    fn empty_keys_and_too_many_rows_are_refused_in_every_form() {
        let cases = [
            body("ts,symbol,close\n1, ,1\n", InputFormat::Csv),
            body("{\"ts\": 1, \"close\": 1}\n", InputFormat::JsonLines),
            Source::Objects(vec![
                serde_json::from_str(r#"{"ts": 1, "symbol": null}"#).unwrap()
            ]),
        ];
        for source in cases {
            let err = read(&source, &spec(), 10).unwrap_err();
            assert!(
                err.to_string()
                    .contains("row 1: key column `symbol` is empty"),
                "{err}"
            );
        }
        let many = "{\"ts\": 1, \"symbol\": \"A\", \"close\": 1}\n".repeat(3);
        for source in [
            body(&many, InputFormat::JsonLines),
            body(
                &format!("ts,symbol,close\n{}", "1,A,1\n".repeat(3)),
                InputFormat::Csv,
            ),
            Source::Objects(vec![Map::new(); 3]),
        ] {
            assert!(matches!(
                read(&source, &spec(), 2),
                Err(IngestError::TooMany { limit: 2 })
            ));
        }
    }
}
