//! Event input for rules: CSV or JSON lines, plain or gzip-compressed, from a file or
//! standard input, read in chunks with each row's key columns at hand.
//!
//! JSON lines are turned into CSV rows as they are read (one object per line; numbers,
//! numeric strings, `null` for missing), so both formats share one parser, one set of
//! policies (`docs/decisions/0003`) and the same error messages.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use super::csv_input::{Chunk, CsvInput, CsvOptions, InputError, InputStats, UnsortedPolicy};
use super::csv_rows::{CsvRows, CsvStream};
use super::line_limit::{LineLimit, MAX_LINE_BYTES};

/// The format of an event stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum InputFormat {
    /// CSV with a header row.
    #[default]
    Csv,
    /// One JSON object per line.
    JsonLines,
}

impl InputFormat {
    /// The format a path's extension names (`.jsonl`, `.ndjson`, optionally `.gz`);
    /// CSV otherwise.
    pub fn from_path(path: &str) -> InputFormat {
        let stem = path.strip_suffix(".gz").unwrap_or(path);
        if stem.ends_with(".jsonl") || stem.ends_with(".ndjson") {
            InputFormat::JsonLines
        } else {
            InputFormat::Csv
        }
    }
}

/// Opens `path` (`-` for standard input), decompressing `.gz` files.
///
/// # Errors
///
/// The file cannot be opened.
pub fn open_path(path: &str) -> std::io::Result<Box<dyn Read + Send>> {
    let limited = |r: Box<dyn Read + Send>| -> Box<dyn Read + Send> {
        Box::new(LineLimit::new(r, MAX_LINE_BYTES))
    };
    if path == "-" {
        return Ok(limited(Box::new(std::io::stdin())));
    }
    let file = File::open(Path::new(path))?;
    Ok(limited(if path.ends_with(".gz") {
        Box::new(flate2::read::MultiGzDecoder::new(BufReader::with_capacity(
            1 << 20,
            file,
        )))
    } else {
        Box::new(file)
    }))
}

/// Which columns to read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventSpec {
    /// The timestamp column; `None`: the CSV reader's default names.
    pub time: Option<String>,
    /// Key columns.
    pub keys: Vec<String>,
    /// Value columns.
    pub fields: Vec<String>,
    /// Rows per chunk (0: the reader's default).
    pub chunk_rows: usize,
}

/// A stream of events being read.
pub struct EventInput {
    csv: CsvInput<Box<dyn Read + Send>>,
    key_indices: Vec<usize>,
    /// For JSON lines: where the objects' lines are, to name them in errors.
    json_lines: Option<JsonLineMap>,
}

/// The JSON line of each object read, kept as the points where the line stops being the
/// object's number (blank lines skipped), so that errors name the JSON line, not the line of
/// the CSV it was turned into (which has a header).
#[derive(Debug, Clone, Default)]
struct JsonLineMap(std::sync::Arc<std::sync::Mutex<Vec<(u64, u64)>>>);

impl JsonLineMap {
    /// Records that object `row` (from 1) is on line `line`.
    fn record(&self, row: u64, line: u64) {
        let mut shifts = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let offset = shifts.last().map_or(0, |&(_, o)| o);
        if line - row != offset {
            shifts.push((row, line - row));
        }
    }

    /// The JSON line of object `row`.
    fn line_of(&self, row: u64) -> u64 {
        let shifts = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let at = shifts.partition_point(|&(r, _)| r <= row);
        row + at.checked_sub(1).map_or(0, |i| shifts[i].1)
    }

    /// `error` with its CSV line (and row) numbers turned into the JSON line's.
    fn translate(&self, error: InputError) -> InputError {
        match error {
            InputError::NotANumber {
                row, column, text, ..
            } => InputError::NotANumber {
                row,
                line: self.line_of(row),
                column,
                text,
            },
            InputError::BadTimestamp {
                row,
                column,
                text,
                why,
                ..
            } => InputError::BadTimestamp {
                row,
                line: self.line_of(row),
                column,
                text,
                why,
            },
            InputError::Unsorted {
                row,
                time,
                previous,
                ..
            } => InputError::Unsorted {
                row,
                line: self.line_of(row),
                time,
                previous,
            },
            InputError::Malformed { line, message } => InputError::Malformed {
                line: self.line_of(line.saturating_sub(1)),
                message,
            },
            other => other,
        }
    }
}

impl std::fmt::Debug for EventInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventInput")
            .field("headers", &self.headers())
            .finish_non_exhaustive()
    }
}

impl EventInput {
    /// Opens a stream and finds its columns. Timestamps may go back across keys; each
    /// key's order is the evaluator's to check.
    ///
    /// # Errors
    ///
    /// An [`InputError`] for a missing header or column.
    pub fn open(
        source: Box<dyn Read + Send>,
        format: InputFormat,
        spec: &EventSpec,
    ) -> Result<Self, InputError> {
        Self::open_buffered(source, format, spec, super::csv_input::READ_BUFFER)
    }

    /// Opens a recorded exchange feed (`adr_market`'s formats): each line read into its
    /// named fields (`ts`, `symbol`, then the fields of its kind); `symbol` names the
    /// market of a feed whose lines do not (a bulk file's).
    ///
    /// # Errors
    ///
    /// As [`open`](Self::open).
    pub fn open_feed(
        source: Box<dyn Read + Send>,
        feed: adr_market::Feed,
        symbol: &str,
        spec: &EventSpec,
    ) -> Result<Self, InputError> {
        let converted =
            CsvStream::new(super::market::FeedToCsv::new(source, feed, symbol, 1 << 16));
        Self::open_buffered(
            Box::new(converted),
            InputFormat::Csv,
            spec,
            super::csv_input::READ_BUFFER,
        )
    }

    /// Events in `body`, all in memory (a service's request): read with buffers no
    /// larger than the body, so a small request costs what it carries.
    ///
    /// # Errors
    ///
    /// As [`open`](Self::open).
    pub fn from_bytes(
        body: Vec<u8>,
        format: InputFormat,
        spec: &EventSpec,
    ) -> Result<Self, InputError> {
        let buffer = body.len().clamp(4096, super::csv_input::READ_BUFFER);
        Self::open_buffered(Box::new(std::io::Cursor::new(body)), format, spec, buffer)
    }

    fn open_buffered(
        source: Box<dyn Read + Send>,
        format: InputFormat,
        spec: &EventSpec,
        buffer: usize,
    ) -> Result<Self, InputError> {
        let json_lines = (format == InputFormat::JsonLines).then(JsonLineMap::default);
        let source: Box<dyn Read + Send> = match &json_lines {
            None => source,
            Some(map) => Box::new(CsvStream::new(JsonToCsv::new(
                source,
                spec,
                map.clone(),
                buffer,
            ))),
        };
        let csv = CsvInput::open_buffered(
            source,
            &CsvOptions {
                time: spec.time.clone(),
                columns: spec.fields.clone(),
                unsorted: UnsortedPolicy::Allow,
                chunk_rows: spec.chunk_rows,
            },
            buffer,
        )?;
        let headers = csv.headers();
        let key_indices = spec
            .keys
            .iter()
            .map(|k| super::csv_input::column_index(headers, k))
            .collect::<Result<_, _>>()?;
        Ok(EventInput {
            csv,
            key_indices,
            json_lines,
        })
    }

    /// Fills `chunk` with the next rows; 0 at the end.
    ///
    /// # Errors
    ///
    /// An [`InputError`] naming the first bad row.
    pub fn read_chunk(&mut self, chunk: &mut Chunk) -> Result<usize, InputError> {
        self.csv
            .read_chunk(chunk)
            .map_err(|e| match &self.json_lines {
                Some(map) => map.translate(e),
                None => e,
            })
    }

    /// The key cells of row `i` of `chunk`.
    pub fn key_parts<'c>(
        &self,
        chunk: &'c Chunk,
        i: usize,
    ) -> impl Iterator<Item = &'c [u8]> + use<'c, '_> {
        let record = &chunk.records[i];
        self.key_indices
            .iter()
            .map(move |&k| record.get(k).unwrap_or(b""))
    }

    /// The header's column names.
    pub fn headers(&self) -> &[String] {
        self.csv.headers()
    }

    /// The columns that can be read as values: the header without the time and key
    /// columns (for JSON lines, the fields asked for when the stream was opened).
    pub fn value_columns(&self) -> Vec<String> {
        let time = self.time_column();
        self.headers()
            .iter()
            .enumerate()
            .filter(|(i, h)| Some(h.as_str()) != time && !self.key_indices.contains(i))
            .map(|(_, h)| h.clone())
            .collect()
    }

    /// Reads `fields` as the value columns from the next chunk on (a reload may read
    /// other fields).
    ///
    /// # Errors
    ///
    /// [`InputError::MissingColumn`] for a column the stream lacks; the fields read stay.
    pub fn set_fields(&mut self, fields: &[String]) -> Result<(), InputError> {
        self.csv.set_columns(fields)
    }

    /// The timestamp column, if any.
    pub fn time_column(&self) -> Option<&str> {
        self.csv.time_column()
    }

    /// Bytes read so far (of the decompressed stream), for progress.
    pub fn bytes_read(&self) -> u64 {
        self.csv.bytes_read()
    }

    /// What was counted so far.
    pub fn stats(&self) -> InputStats {
        self.csv.stats()
    }
}

/// Reads JSON lines and yields CSV text: a header of the requested columns and the other
/// scalar keys of the first object, then a row per object.
struct JsonToCsv<R: Read> {
    lines: BufReader<R>,
    /// Objects converted so far, and where each came from.
    objects: u64,
    map: JsonLineMap,
    columns: Vec<String>,
    /// The time column when the spec names none: the first default name the first
    /// object has.
    find_time: bool,
    line: String,
    line_no: u64,
    started: bool,
}

impl<R: Read> std::fmt::Debug for JsonToCsv<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JsonToCsv")
            .field("line_no", &self.line_no)
            .finish()
    }
}

impl<R: Read> JsonToCsv<R> {
    fn new(source: R, spec: &EventSpec, map: JsonLineMap, buffer: usize) -> Self {
        let mut columns: Vec<String> = spec.time.iter().cloned().collect();
        columns.extend(spec.keys.iter().cloned());
        columns.extend(spec.fields.iter().cloned());
        JsonToCsv {
            lines: BufReader::with_capacity(buffer, source),
            objects: 0,
            map,
            find_time: spec.time.is_none(),
            columns,
            line: String::new(),
            line_no: 0,
            started: false,
        }
    }
}

impl<R: Read> CsvRows for JsonToCsv<R> {
    /// Converts the next non-blank line; false at the end.
    fn next_row(&mut self, out: &mut Vec<u8>) -> std::io::Result<bool> {
        loop {
            self.line.clear();
            if self.lines.read_line(&mut self.line)? == 0 {
                return Ok(false);
            }
            self.line_no += 1;
            if !self.line.trim().is_empty() {
                break;
            }
        }
        let object: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&self.line)
            .map_err(|e| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!(
                    "JSON line {}: {e} (each line must be one JSON object)",
                    self.line_no
                ),
            )
        })?;
        if !self.started {
            self.started = true;
            if self.find_time {
                if let Some(name) = object.keys().find(|k| {
                    super::csv_input::TIME_NAMES.contains(&k.to_ascii_lowercase().as_str())
                }) {
                    self.columns.insert(0, name.clone());
                }
            }
            // Every other scalar the first object carries is a column too, as every
            // column of a CSV header is: a reload may read a field the first rules did
            // not (the keys of later objects are not known before they come).
            for (name, value) in &object {
                let scalar = !matches!(
                    value,
                    serde_json::Value::Object(_) | serde_json::Value::Array(_)
                );
                if scalar && !self.columns.contains(name) {
                    self.columns.push(name.clone());
                }
            }
            let mut header = csv::Writer::from_writer(&mut *out);
            header.write_record(&self.columns)?;
            header.flush()?;
        }
        self.objects += 1;
        self.map.record(self.objects, self.line_no);
        let mut row = csv::Writer::from_writer(&mut *out);
        for c in &self.columns {
            let cell = match object.get(c) {
                None | Some(serde_json::Value::Null) => String::new(),
                Some(serde_json::Value::String(s)) => s.clone(),
                Some(other) => other.to_string(),
            };
            row.write_field(cell)?;
        }
        row.write_record(None::<&[u8]>)?;
        row.flush()?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &'static str, format: InputFormat) -> Result<(Chunk, Vec<String>), InputError> {
        let spec = EventSpec {
            keys: vec!["symbol".into()],
            fields: vec!["close".into()],
            ..Default::default()
        };
        let mut input = EventInput::open(Box::new(text.as_bytes()), format, &spec)?;
        let mut chunk = Chunk::default();
        input.read_chunk(&mut chunk)?;
        let keys = (0..chunk.len)
            .map(|i| {
                input
                    .key_parts(&chunk, i)
                    .map(|p| String::from_utf8_lossy(p).into_owned())
                    .collect::<Vec<_>>()
                    .join("/")
            })
            .collect();
        Ok((chunk, keys))
    }

    #[test]
    fn json_lines_read_like_csv() {
        let json = "{\"ts\": \"2025-01-01T00:00:00Z\", \"symbol\": \"BTC\", \"close\": 1.5}\n\n{\"ts\": \"2025-01-01T00:01:00Z\", \"symbol\": \"ETH\", \"close\": null}\n";
        let csv = "ts,symbol,close\n2025-01-01T00:00:00Z,BTC,1.5\n2025-01-01T00:01:00Z,ETH,\n";
        let (j, jk) = read(json, InputFormat::JsonLines).unwrap();
        let (c, ck) = read(csv, InputFormat::Csv).unwrap();
        assert_eq!((j.len, &j.timestamps), (2, &c.timestamps));
        assert_eq!(j.columns[0][0], 1.5);
        assert!(j.columns[0][1].is_nan() && c.columns[0][1].is_nan());
        assert_eq!(
            (jk, ck),
            (
                vec!["BTC".to_owned(), "ETH".into()],
                vec!["BTC".to_owned(), "ETH".into()]
            )
        );
    }

    #[test]
    fn bad_json_and_missing_keys_are_named() {
        let err = read(
            "{\"ts\": 1, \"symbol\": \"A\", \"close\": 1}\nnot json\n",
            InputFormat::JsonLines,
        )
        .unwrap_err();
        assert!(err.to_string().contains("JSON line 2"), "{err}");
        let err = read("ts,symbl,close\n1,A,2\n", InputFormat::Csv).unwrap_err();
        assert_eq!(err.to_string(), "column `symbol` is not in the header (did you mean `symbl`?); columns: ts, symbl, close");
    }

    #[test]
    fn json_errors_name_the_json_line_and_object() {
        let cases = [
            (
                "bad value on line 2",
                "{\"ts\": 1, \"symbol\": \"A\", \"close\": 1}\n{\"ts\": 2, \"symbol\": \"A\", \"close\": \"x\"}\n",
                "row 2 (line 2), column `close`: `x` is not a number",
            ),
            (
                "after blank lines",
                "{\"ts\": 1, \"symbol\": \"A\", \"close\": 1}\n\n\n{\"ts\": 2, \"symbol\": \"A\", \"close\": \"x\"}\n",
                "row 2 (line 4), column `close`: `x` is not a number",
            ),
            (
                "fractional epoch in JSON",
                "{\"ts\": 1735689600, \"symbol\": \"A\", \"close\": 1}\n{\"ts\": 1735689660.5, \"symbol\": \"A\", \"close\": \"y\"}\n",
                "row 2 (line 2), column `close`: `y` is not a number",
            ),
        ];
        for (name, text, want) in cases {
            let err = read(text, InputFormat::JsonLines).unwrap_err();
            assert_eq!(err.to_string(), want, "{name}");
        }
        let (chunk, _) = read(
            "{\"ts\": 1735689600, \"symbol\": \"A\", \"close\": 1}\n{\"ts\": 1735689660.5, \"symbol\": \"A\", \"close\": 2}\n",
            InputFormat::JsonLines,
        )
        .unwrap();
        assert_eq!(chunk.timestamps[1], 1_735_689_660_500_000_000);
    }

    #[test]
    fn formats_follow_extensions() {
        assert_eq!(InputFormat::from_path("a.jsonl.gz"), InputFormat::JsonLines);
        assert_eq!(InputFormat::from_path("a.ndjson"), InputFormat::JsonLines);
        assert_eq!(InputFormat::from_path("a.csv.gz"), InputFormat::Csv);
    }
}
