//! Streaming CSV input in chunks of rows, in constant memory whatever the file size.
//!
//! Policies, decided here once for every command:
//! - a header row is required; columns are found by name;
//! - an empty cell is a missing value (`NaN`, scored as undetermined and counted);
//!   `NaN`, `inf` and `-inf` are read as such (also undetermined); any other text in a
//!   value column is an error naming the row, the column and the text;
//! - timestamps must not decrease: by default the first row earlier than the row before it
//!   is an error naming both times; `--allow-unsorted` scores in file order and counts such
//!   rows instead. Repeated timestamps are allowed and counted (NAB repeats some at
//!   daylight-saving changes).

use std::io::Read;

use adr_sdk::params::suggest;
use csv::ByteRecord;

use super::timestamp::{format_rfc3339, TimeFormat};

/// What to do with a timestamp earlier than the one before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UnsortedPolicy {
    /// Stop with an error naming the first offending row.
    #[default]
    Reject,
    /// Score in file order and count the rows that go back in time.
    Allow,
}

/// Which columns to read.
#[derive(Debug, Clone, Default)]
pub struct CsvOptions {
    /// The timestamp column; `None`: the first column named `timestamp`, `time`, `ts`,
    /// `date` or `datetime` (any case), if there is one.
    pub time: Option<String>,
    /// The value columns, in order.
    pub columns: Vec<String>,
    /// See [`UnsortedPolicy`].
    pub unsorted: UnsortedPolicy,
    /// Rows per chunk (default 65,536).
    pub chunk_rows: usize,
}

/// Why the input cannot be read. Rows are data rows counted from 1; lines count the header.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InputError {
    /// No header row at all.
    #[error("the input is empty: expected a header row naming the columns")]
    Empty,
    /// A requested column is not in the header.
    #[error("column `{name}` is not in the header{}; columns: {}", suggestion.as_ref().map(|s| format!(" (did you mean `{s}`?)")).unwrap_or_default(), available.join(", "))]
    MissingColumn {
        /// The column asked for.
        name: String,
        /// A near miss.
        suggestion: Option<String>,
        /// The header's columns.
        available: Vec<String>,
    },
    /// A value cell is not a number.
    #[error("row {row} (line {line}), column `{column}`: `{text}` is not a number")]
    NotANumber {
        /// Data row, from 1.
        row: u64,
        /// File line, from 1.
        line: u64,
        /// The column.
        column: String,
        /// The cell.
        text: String,
    },
    /// A timestamp cell cannot be read.
    #[error("row {row} (line {line}), column `{column}`: `{text}` {why}")]
    BadTimestamp {
        /// Data row, from 1.
        row: u64,
        /// File line, from 1.
        line: u64,
        /// The column.
        column: String,
        /// The cell (its first 80 characters).
        text: String,
        /// What is wrong with it.
        why: String,
    },
    /// Two header columns have the same name (after trimming spaces): which one a rule
    /// means is ambiguous.
    #[error("columns {first} and {second} of the header are both named `{name}`: rename one (a column is found by its name)")]
    DuplicateColumn {
        /// The name.
        name: String,
        /// Its first position, from 1.
        first: usize,
        /// Its second position, from 1.
        second: usize,
    },
    /// A timestamp goes back in time.
    #[error("row {row} (line {line}): timestamp {time} is earlier than the previous row's {previous}; timestamps must not decrease (sort the file, or pass --allow-unsorted to score in file order)")]
    Unsorted {
        /// Data row, from 1.
        row: u64,
        /// File line, from 1.
        line: u64,
        /// This row's time.
        time: String,
        /// The previous row's time.
        previous: String,
    },
    /// The CSV itself is malformed (for example a row with a different number of fields).
    #[error("line {line}: {message}")]
    Malformed {
        /// File line, from 1.
        line: u64,
        /// What is wrong.
        message: String,
    },
    /// Reading failed.
    #[error("reading the input failed: {0}")]
    Io(#[from] std::io::Error),
}

/// Counts of what the input held besides clean rows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct InputStats {
    /// Data rows read.
    pub rows: u64,
    /// Empty value cells.
    pub missing: u64,
    /// `NaN` / `inf` value cells.
    pub non_finite: u64,
    /// Rows whose timestamp equals the previous row's.
    pub repeated_timestamps: u64,
    /// Rows whose timestamp is earlier than the previous row's (with `--allow-unsorted`).
    pub unsorted_rows: u64,
}

/// A chunk of rows: timestamps, value columns and the raw records (for passing through).
#[derive(Debug, Default)]
pub struct Chunk {
    /// Nanoseconds since the epoch; the row index when there is no time column.
    pub timestamps: Vec<i64>,
    /// One vector per value column.
    pub columns: Vec<Vec<f64>>,
    /// The rows as read, reused between chunks.
    pub records: Vec<ByteRecord>,
    /// Rows in the chunk.
    pub len: usize,
    /// Data row number (from 1) of the chunk's first row.
    pub first_row: u64,
}

/// A CSV file read chunk by chunk.
#[derive(Debug)]
pub struct CsvInput<R: Read> {
    reader: csv::Reader<R>,
    headers: Vec<String>,
    time_index: Option<usize>,
    times: TimeCells,
    value_indices: Vec<usize>,
    unsorted: UnsortedPolicy,
    chunk_rows: usize,
    last_time: Option<i64>,
    stats: InputStats,
}

/// The read buffer of a stream: large reads keep a file's throughput up.
pub const READ_BUFFER: usize = 1 << 20;

/// The column names taken for event time when none is given (case-insensitive), in order.
pub const TIME_NAMES: [&str; 5] = ["timestamp", "time", "ts", "date", "datetime"];

impl<R: Read> CsvInput<R> {
    /// Reads the header and finds the columns.
    ///
    /// # Errors
    ///
    /// [`InputError::Empty`] without a header, [`InputError::MissingColumn`] for a column
    /// the header lacks, or a read error.
    pub fn open(source: R, options: &CsvOptions) -> Result<Self, InputError> {
        Self::open_buffered(source, options, READ_BUFFER)
    }

    /// [`open`](Self::open) with a read buffer of `buffer` bytes: a small input (a
    /// service's request) need not pay for zeroing the megabyte a file stream reads with.
    ///
    /// # Errors
    ///
    /// As [`open`](Self::open).
    pub fn open_buffered(
        source: R,
        options: &CsvOptions,
        buffer: usize,
    ) -> Result<Self, InputError> {
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(true)
            .buffer_capacity(buffer.max(1024))
            .from_reader(source);
        let headers: Vec<String> = match reader.headers() {
            Ok(h) => h.iter().map(|s| s.trim().to_owned()).collect(),
            Err(e) => return Err(malformed(e)),
        };
        if headers.is_empty() || headers.iter().all(String::is_empty) {
            return Err(InputError::Empty);
        }
        for (second, name) in headers.iter().enumerate() {
            if let Some(first) = headers[..second].iter().position(|h| h == name) {
                return Err(InputError::DuplicateColumn {
                    name: excerpt(name),
                    first: first + 1,
                    second: second + 1,
                });
            }
        }
        let find = |name: &str| column_index(&headers, name);
        let time_index = match &options.time {
            Some(name) => Some(find(name)?),
            None => headers
                .iter()
                .position(|h| TIME_NAMES.contains(&h.to_ascii_lowercase().as_str())),
        };
        let value_indices = options
            .columns
            .iter()
            .map(|c| find(c))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(CsvInput {
            reader,
            headers,
            time_index,
            times: TimeCells::default(),
            value_indices,
            unsorted: options.unsorted,
            chunk_rows: if options.chunk_rows == 0 {
                65_536
            } else {
                options.chunk_rows
            },
            last_time: None,
            stats: InputStats::default(),
        })
    }

    /// Reads `columns` as the value columns from the next chunk on.
    ///
    /// # Errors
    ///
    /// [`InputError::MissingColumn`] for a column the header lacks; the columns read stay.
    pub fn set_columns(&mut self, columns: &[String]) -> Result<(), InputError> {
        self.value_indices = columns
            .iter()
            .map(|name| column_index(&self.headers, name))
            .collect::<Result<_, _>>()?;
        Ok(())
    }

    /// The header's column names.
    pub fn headers(&self) -> &[String] {
        &self.headers
    }

    /// The name of the timestamp column, if there is one.
    pub fn time_column(&self) -> Option<&str> {
        self.time_index.map(|i| self.headers[i].as_str())
    }

    /// Bytes consumed so far, for progress.
    pub fn bytes_read(&self) -> u64 {
        self.reader.position().byte()
    }

    /// What was counted so far.
    pub fn stats(&self) -> InputStats {
        self.stats
    }

    /// Fills `chunk` with the next rows; returns how many (0 at the end).
    ///
    /// # Errors
    ///
    /// An [`InputError`] naming the first bad row.
    pub fn read_chunk(&mut self, chunk: &mut Chunk) -> Result<usize, InputError> {
        chunk.timestamps.clear();
        chunk
            .columns
            .resize_with(self.value_indices.len(), Vec::new);
        chunk.columns.iter_mut().for_each(Vec::clear);
        chunk.first_row = self.stats.rows + 1;
        let mut n = 0;
        while n < self.chunk_rows {
            if chunk.records.len() == n {
                chunk.records.push(ByteRecord::new());
            }
            let record = &mut chunk.records[n];
            if !self.reader.read_byte_record(record).map_err(malformed)? {
                break;
            }
            self.stats.rows += 1;
            let row = self.stats.rows;
            let line = record.position().map_or(row + 1, |p| p.line());
            let time = match self.time_index {
                Some(i) => {
                    let text = std::str::from_utf8(&record[i]).unwrap_or("");
                    self.times.read(text, &self.headers[i], row, line)?
                }
                None => row as i64 - 1,
            };
            if let Some(previous) = self.last_time {
                if time == previous {
                    self.stats.repeated_timestamps += 1;
                } else if time < previous {
                    if self.unsorted == UnsortedPolicy::Reject {
                        return Err(InputError::Unsorted {
                            row,
                            line,
                            time: format_rfc3339(time),
                            previous: format_rfc3339(previous),
                        });
                    }
                    self.stats.unsorted_rows += 1;
                }
            }
            self.last_time = Some(time);
            chunk.timestamps.push(time);
            for (column, &i) in chunk.columns.iter_mut().zip(&self.value_indices) {
                let cell = record.get(i).unwrap_or(b"");
                let value = read_value(cell, &self.headers[i], row, line)?;
                if value.is_nan() && cell.iter().all(u8::is_ascii_whitespace) {
                    self.stats.missing += 1;
                } else if !value.is_finite() {
                    self.stats.non_finite += 1;
                }
                column.push(value);
            }
            n += 1;
        }
        chunk.len = n;
        Ok(n)
    }
}

/// The position of column `name` in `headers`, or an error naming the columns there are.
pub(crate) fn column_index(headers: &[String], name: &str) -> Result<usize, InputError> {
    headers
        .iter()
        .position(|h| h == name)
        .ok_or_else(|| InputError::MissingColumn {
            name: name.to_owned(),
            suggestion: suggest(name, headers.iter().map(String::as_str)),
            available: headers.to_vec(),
        })
}

/// A value cell: a number, `NaN`/`inf`, or empty (missing, `NaN`).
fn parse_value(cell: &[u8]) -> Option<f64> {
    let text = std::str::from_utf8(cell).ok()?.trim();
    if text.is_empty() {
        return Some(f64::NAN);
    }
    text.parse::<f64>().ok()
}

/// Value cell `cell` of `column` in data row `row` (file line `line`), or the error
/// naming them.
pub(crate) fn read_value(
    cell: &[u8],
    column: &str,
    row: u64,
    line: u64,
) -> Result<f64, InputError> {
    parse_value(cell).ok_or_else(|| InputError::NotANumber {
        row,
        line,
        column: column.to_owned(),
        text: excerpt(&String::from_utf8_lossy(cell)),
    })
}

/// Reads a stream's timestamp cells: the first one fixes the format (ISO-8601 or epoch
/// seconds/milliseconds), which every later one must have.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct TimeCells {
    format: Option<TimeFormat>,
}

impl TimeCells {
    /// The time in `text`, the cell of `column` in data row `row` (file line `line`), ns.
    pub(crate) fn read(
        &mut self,
        text: &str,
        column: &str,
        row: u64,
        line: u64,
    ) -> Result<i64, InputError> {
        let format = match self.format {
            Some(f) => f,
            None => *self.format.insert(TimeFormat::detect(text).ok_or_else(|| {
                bad_time(
                    column,
                    row,
                    line,
                    text,
                    "is not a timestamp (expected ISO-8601 such as 2024-01-15T10:30:00Z, \
                     or epoch seconds/milliseconds)"
                        .into(),
                )
            })?),
        };
        format
            .parse(text)
            .map_err(|why| bad_time(column, row, line, text, why.to_string()))
    }
}

fn bad_time(column: &str, row: u64, line: u64, text: &str, why: String) -> InputError {
    InputError::BadTimestamp {
        row,
        line,
        column: column.to_owned(),
        text: excerpt(text),
        why,
    }
}

/// The first 80 characters of a cell, for a message: a megabyte-long cell must not be
/// echoed whole.
fn excerpt(text: &str) -> String {
    const SHOWN: usize = 80;
    match text.char_indices().nth(SHOWN) {
        Some((end, _)) => format!("{}… ({} bytes)", &text[..end], text.len()),
        None => text.to_owned(),
    }
}

fn malformed(e: csv::Error) -> InputError {
    let line = e.position().map_or(0, |p| p.line());
    match e.into_kind() {
        csv::ErrorKind::Io(io) => InputError::Io(io),
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => InputError::Malformed {
            line,
            message: format!("the row has {len} fields, the header has {expected_len}"),
        },
        csv::ErrorKind::Utf8 { err, .. } => InputError::Malformed {
            line,
            message: format!("invalid UTF-8: {err}"),
        },
        other => InputError::Malformed {
            line,
            message: format!("{other:?}"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open<'a>(text: &'a str, columns: &[&str]) -> Result<CsvInput<&'a [u8]>, InputError> {
        let options = CsvOptions {
            columns: columns.iter().map(|s| (*s).to_owned()).collect(),
            ..Default::default()
        };
        CsvInput::open(text.as_bytes(), &options)
    }

    fn read_all(text: &str, columns: &[&str]) -> Result<(Chunk, InputStats), InputError> {
        let mut input = open(text, columns)?;
        let mut chunk = Chunk::default();
        input.read_chunk(&mut chunk)?;
        Ok((chunk, input.stats()))
    }

    #[test]
    fn reads_times_values_and_counts_what_is_odd() {
        let text = "timestamp,value\n2024-01-01 00:00:00,1.5\n2024-01-01 00:01:00,\n2024-01-01 00:01:00,NaN\n";
        let (chunk, stats) = read_all(text, &["value"]).unwrap();
        assert_eq!(chunk.len, 3);
        assert_eq!(chunk.timestamps[1] - chunk.timestamps[0], 60_000_000_000);
        assert_eq!(chunk.columns[0][0], 1.5);
        assert!(chunk.columns[0][1].is_nan());
        assert_eq!(
            stats,
            InputStats {
                rows: 3,
                missing: 1,
                non_finite: 1,
                repeated_timestamps: 1,
                unsorted_rows: 0
            }
        );
    }

    #[test]
    fn every_bad_input_gets_a_message_naming_where() {
        let long = format!("ts,value\n1,{}\n", "9x".repeat(100));
        let long_want = format!(
            "row 1 (line 2), column `value`: `{}… (200 bytes)` is not a number",
            "9x".repeat(40)
        );
        let cases: [(&str, &str, &str); 11] = [
            ("empty", "", "the input is empty: expected a header row naming the columns"),
            ("missing column", "ts,valeu\n1,2\n", "column `value` is not in the header (did you mean `valeu`?); columns: ts, valeu"),
            ("not a number", "ts,value\n1,2\n2,abc\n", "row 2 (line 3), column `value`: `abc` is not a number"),
            ("bad first timestamp", "ts,value\nlater,2\n", "row 1 (line 2), column `ts`: `later` is not a timestamp (expected ISO-8601 such as 2024-01-15T10:30:00Z, or epoch seconds/milliseconds)"),
            ("bad timestamp", "ts,value\n2024-01-01T00:00:00Z,1\nlater,2\n", "row 2 (line 3), column `ts`: `later` is not a timestamp in the column's format (ISO-8601 text, from its first row)"),
            ("epoch in an ISO column", "ts,value\n2024-01-01T00:00:00Z,1\n1735689600,2\n", "row 2 (line 3), column `ts`: `1735689600` is not a timestamp in the column's format (ISO-8601 text, from its first row)"),
            ("time out of range", "ts,value\n2300-01-01T00:00:00Z,1\n", "row 1 (line 2), column `ts`: `2300-01-01T00:00:00Z` is outside the years 1677 to 2262 that timestamps can hold"),
            ("duplicate column", "ts,v, v\n1,2,3\n", "columns 2 and 3 of the header are both named `v`: rename one (a column is found by its name)"),
            ("long cell", long.as_str(), long_want.as_str()),
            ("unsorted", "ts,value\n100,1\n50,2\n", "row 2 (line 3): timestamp 1970-01-01T00:00:50Z is earlier than the previous row's 1970-01-01T00:01:40Z; timestamps must not decrease (sort the file, or pass --allow-unsorted to score in file order)"),
            ("ragged", "ts,value\n1,2\n2,3,4\n", "line 3: the row has 3 fields, the header has 2"),
        ];
        for (name, text, want) in cases {
            let column = if name == "duplicate column" {
                "v"
            } else {
                "value"
            };
            let err = read_all(text, &[column]).unwrap_err();
            assert_eq!(err.to_string(), want, "{name}");
        }
    }

    #[test]
    fn unsorted_rows_can_be_allowed_and_counted() {
        let options = CsvOptions {
            columns: vec!["value".into()],
            unsorted: UnsortedPolicy::Allow,
            ..Default::default()
        };
        let mut input = CsvInput::open("ts,value\n100,1\n50,2\n".as_bytes(), &options).unwrap();
        let mut chunk = Chunk::default();
        assert_eq!(input.read_chunk(&mut chunk).unwrap(), 2);
        assert_eq!(input.stats().unsorted_rows, 1);
    }

    #[test]
    fn header_only_reads_no_rows() {
        let (chunk, stats) = read_all("ts,value\n", &["value"]).unwrap();
        assert_eq!((chunk.len, stats.rows), (0, 0));
    }

    #[test]
    fn without_a_time_column_rows_are_numbered() {
        let (chunk, _) = read_all("price\n1\n2\n", &["price"]).unwrap();
        assert_eq!(chunk.timestamps, [0, 1]);
    }

    #[test]
    fn chunks_continue_where_the_last_ended() {
        let options = CsvOptions {
            columns: vec!["v".into()],
            chunk_rows: 2,
            ..Default::default()
        };
        let mut input = CsvInput::open("v\n1\n2\n3\n".as_bytes(), &options).unwrap();
        let mut chunk = Chunk::default();
        assert_eq!(input.read_chunk(&mut chunk).unwrap(), 2);
        assert_eq!(input.read_chunk(&mut chunk).unwrap(), 1);
        assert_eq!((chunk.first_row, chunk.columns[0][0]), (3, 3.0));
        assert_eq!(input.read_chunk(&mut chunk).unwrap(), 0);
    }
}
