//! Events as a service pushes them: times, keys, and named value columns; read from
//! JSON objects straight into columns.

use serde_json::{Map, Value};

use super::EngineError;
use crate::io::csv_input::{read_value, TimeCells, TIME_NAMES};
use crate::io::{EventSpec, InputError};

/// Events to push: times, keys, and named value columns.
#[derive(Debug, Clone, Default)]
pub struct Events {
    names: Vec<String>,
    key_width: usize,
    timestamps: Vec<i64>,
    key_parts: Vec<String>,
    columns: Vec<Vec<f64>>,
}

impl Events {
    /// An empty batch with value columns `names` and keys of `key_width` parts (one per
    /// key column of the rules; 0 without keys).
    pub fn new(names: &[&str], key_width: usize) -> Self {
        Events {
            names: names.iter().map(|n| (*n).to_owned()).collect(),
            key_width,
            columns: vec![Vec::new(); names.len()],
            ..Events::default()
        }
    }

    /// Adds an event at `time` (ns since the epoch) of key `key` with `values` (one per
    /// column, NaN for missing).
    ///
    /// # Errors
    ///
    /// [`EngineError::EventShape`] for the wrong number of values or key parts.
    pub fn push(&mut self, time: i64, key: &[&str], values: &[f64]) -> Result<(), EngineError> {
        if values.len() != self.names.len() {
            return Err(EngineError::EventShape {
                what: "values",
                got: values.len(),
                want: self.names.len(),
            });
        }
        if key.len() != self.key_width {
            return Err(EngineError::EventShape {
                what: "key parts",
                got: key.len(),
                want: self.key_width,
            });
        }
        self.timestamps.push(time);
        self.key_parts.extend(key.iter().map(|k| (*k).to_owned()));
        for (column, &v) in self.columns.iter_mut().zip(values) {
            column.push(v);
        }
        Ok(())
    }

    /// Events in the batch.
    pub fn len(&self) -> usize {
        self.timestamps.len()
    }

    /// Whether the batch is empty.
    pub fn is_empty(&self) -> bool {
        self.timestamps.is_empty()
    }

    /// Empties the batch, keeping its columns.
    pub fn clear(&mut self) {
        self.timestamps.clear();
        self.key_parts.clear();
        self.columns.iter_mut().for_each(Vec::clear);
    }

    /// The value columns' names.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The events' times, ns.
    pub fn timestamps(&self) -> &[i64] {
        &self.timestamps
    }

    /// Column `i`'s values.
    pub fn column(&self, i: usize) -> &[f64] {
        &self.columns[i]
    }

    /// Event `i`'s key parts.
    pub fn key(&self, i: usize) -> &[String] {
        &self.key_parts[i * self.key_width..(i + 1) * self.key_width]
    }

    /// Appends `other`'s events after this batch's.
    ///
    /// # Errors
    ///
    /// [`EngineError::EventShape`] when `other` has other value columns or key parts.
    pub fn append(&mut self, other: &Events) -> Result<(), EngineError> {
        if other.names != self.names {
            return Err(EngineError::EventShape {
                what: "value columns",
                got: other.names.len(),
                want: self.names.len(),
            });
        }
        if other.key_width != self.key_width {
            return Err(EngineError::EventShape {
                what: "key parts",
                got: other.key_width,
                want: self.key_width,
            });
        }
        self.timestamps.extend_from_slice(&other.timestamps);
        self.key_parts.extend_from_slice(&other.key_parts);
        for (column, more) in self.columns.iter_mut().zip(&other.columns) {
            column.extend_from_slice(more);
        }
        Ok(())
    }

    /// The events in JSON lines (one object per line, blank lines skipped), with the
    /// columns `spec` names, read as [`from_json_objects`](Self::from_json_objects) reads
    /// objects; errors name the JSON line.
    ///
    /// # Errors
    ///
    /// [`InputError::Malformed`] for a line that is not one JSON object, or as
    /// [`from_json_objects`](Self::from_json_objects).
    pub fn from_json_lines(body: &[u8], spec: &EventSpec) -> Result<Events, InputError> {
        let mut reader = JsonReader::new(spec);
        for (i, line) in body.split(|&b| b == b'\n').enumerate() {
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let line_no = i as u64 + 1;
            let object: Map<String, Value> =
                serde_json::from_slice(line).map_err(|e| InputError::Malformed {
                    line: line_no,
                    message: format!(
                        "{}: each line must be one JSON object",
                        without_position(&e)
                    ),
                })?;
            reader.push(&object, line_no)?;
        }
        Ok(reader.events)
    }

    /// The events in `objects` (each with the number of its line, or its place in a
    /// list, for errors), read as the JSON lines of a file are (`adr run`):
    /// - the time is the field `spec.time` names, else the first object's first field
    ///   named `timestamp`, `time`, `ts`, `date` or `datetime` (any case), else the
    ///   object's place (0, 1, …); ISO-8601 text or epoch seconds/milliseconds, as text
    ///   or a number, in the format the first object's has;
    /// - values are numbers or numeric text (`NaN`, `inf` too); missing, `null` or empty
    ///   is a missing value (NaN);
    /// - key parts are text (a number is its JSON text); missing or `null` is empty.
    ///
    /// # Errors
    ///
    /// [`InputError::BadTimestamp`] or [`InputError::NotANumber`] naming the object, its
    /// line and the field.
    pub fn from_json_objects<'a>(
        objects: impl IntoIterator<Item = (u64, &'a Map<String, Value>)>,
        spec: &EventSpec,
    ) -> Result<Events, InputError> {
        let mut reader = JsonReader::new(spec);
        for (line, object) in objects {
            reader.push(object, line)?;
        }
        Ok(reader.events)
    }
}

/// A serde_json error's message without its " at line L column C" (a JSON line's
/// position is its line's, and a column within it says little more).
fn without_position(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match text.rsplit_once(" at line ") {
        Some((message, _)) => format!("{message} (column {})", e.column()),
        None => text,
    }
}

/// Reads JSON objects into [`Events`] one by one.
struct JsonReader<'s> {
    spec: &'s EventSpec,
    /// The time field: `spec.time`, or found in the first object.
    time: Option<String>,
    times: TimeCells,
    events: Events,
    values: Vec<f64>,
    key: Vec<String>,
}

impl<'s> JsonReader<'s> {
    fn new(spec: &'s EventSpec) -> Self {
        let names: Vec<&str> = spec.fields.iter().map(String::as_str).collect();
        JsonReader {
            spec,
            time: spec.time.clone(),
            times: TimeCells::default(),
            events: Events::new(&names, spec.keys.len()),
            values: vec![0.0; names.len()],
            key: Vec::with_capacity(spec.keys.len()),
        }
    }

    fn push(&mut self, object: &Map<String, Value>, line: u64) -> Result<(), InputError> {
        let row = self.events.len() as u64 + 1;
        if row == 1 && self.time.is_none() {
            self.time = object
                .keys()
                .find(|k| TIME_NAMES.contains(&k.to_ascii_lowercase().as_str()))
                .cloned();
        }
        let time = match &self.time {
            Some(field) => {
                let text = cell(object.get(field));
                self.times.read(&text, field, row, line)?
            }
            None => row as i64 - 1,
        };
        for (v, field) in self.values.iter_mut().zip(&self.spec.fields) {
            *v = match object.get(field) {
                // A JSON number is the f64 its text reads as (serde_json parses to the
                // nearest, as Rust's parser does): no text and back.
                Some(Value::Number(n)) => n.as_f64().unwrap_or(f64::NAN),
                other => read_value(cell(other).as_bytes(), field, row, line)?,
            };
        }
        self.key.clear();
        for field in &self.spec.keys {
            self.key.push(cell(object.get(field)).into_owned());
        }
        let parts: Vec<&str> = self.key.iter().map(String::as_str).collect();
        self.events
            .push(time, &parts, &self.values)
            .map_err(|e| InputError::Malformed {
                line,
                message: e.to_string(),
            })
    }
}

/// A field's text as a CSV cell would hold it: a string as it is, `null` or missing
/// empty, anything else its JSON text.
fn cell(value: Option<&Value>) -> std::borrow::Cow<'_, str> {
    match value {
        None | Some(Value::Null) => "".into(),
        Some(Value::String(s)) => s.as_str().into(),
        Some(other) => other.to_string().into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::{Chunk, EventInput, InputFormat};

    fn spec() -> EventSpec {
        EventSpec {
            keys: vec!["symbol".into()],
            fields: vec!["close".into(), "volume".into()],
            ..EventSpec::default()
        }
    }

    /// The events as the file reader (JSON lines turned into CSV) reads them.
    fn through_csv(text: &str, spec: &EventSpec) -> Result<Events, String> {
        let mut input =
            EventInput::from_bytes(text.as_bytes().to_vec(), InputFormat::JsonLines, spec)
                .map_err(|e| e.to_string())?;
        let names: Vec<&str> = spec.fields.iter().map(String::as_str).collect();
        let mut events = Events::new(&names, spec.keys.len());
        let mut chunk = Chunk::default();
        loop {
            let n = input.read_chunk(&mut chunk).map_err(|e| e.to_string())?;
            if n == 0 {
                return Ok(events);
            }
            for i in 0..n {
                let key: Vec<String> = input
                    .key_parts(&chunk, i)
                    .map(|p| String::from_utf8_lossy(p).into_owned())
                    .collect();
                let key: Vec<&str> = key.iter().map(String::as_str).collect();
                let values: Vec<f64> = chunk.columns.iter().map(|c| c[i]).collect();
                events.push(chunk.timestamps[i], &key, &values).unwrap();
            }
        }
    }

    fn same(a: &Events, b: &Events) -> bool {
        let bits = |e: &Events| -> Vec<Vec<u64>> {
            (0..e.names().len())
                .map(|c| {
                    e.column(c)
                        .iter()
                        .map(|v| if v.is_nan() { 0 } else { v.to_bits() })
                        .collect()
                })
                .collect()
        };
        a.timestamps() == b.timestamps() && a.key_parts == b.key_parts && bits(a) == bits(b)
    }

    #[test]
    fn json_read_directly_equals_json_read_through_csv() {
        let cases = [
            "{\"ts\": \"2025-01-01T00:00:00Z\", \"symbol\": \"BTC\", \"close\": 1.5, \"volume\": 2}\n\n{\"ts\": \"2025-01-01T00:01:00Z\", \"symbol\": \"ETH\", \"close\": null}\n",
            "{\"timestamp\": 1735689600, \"symbol\": 7, \"close\": \"2.5\", \"volume\": \"NaN\"}\n{\"timestamp\": 1735689660.5, \"close\": \"inf\", \"volume\": \"\"}",
            "{\"symbol\": \"A\", \"close\": 1, \"volume\": 1}\n{\"symbol\": \"A\", \"close\": 2, \"volume\": 1}\n",
            "{\"Time\": 1735689600000, \"symbol\": \"A,B\", \"close\": -0.0, \"volume\": 1e300}\n",
            "{\"ts\": 1, \"symbol\": \"A\", \"close\": 9007199254740993, \"volume\": -18446744073709551615}\n{\"ts\": 2, \"symbol\": \"A\", \"close\": 0.30000000000000004, \"volume\": 5e-324}\n",
            "{\"ts\": 1, \"symbol\": \"A\", \"close\": 1}\n{\"ts\": 2, \"symbol\": \"A\", \"close\": \"x\"}\n",
            "{\"ts\": 1, \"symbol\": \"A\", \"close\": 1}\n\n\n{\"ts\": 2, \"symbol\": \"A\", \"close\": [1]}\n",
            "{\"ts\": \"yesterday\", \"symbol\": \"A\", \"close\": 1}\n",
            "{\"ts\": \"2025-01-01T00:00:00Z\", \"symbol\": \"A\", \"close\": 1}\n{\"ts\": 5, \"symbol\": \"A\", \"close\": 1}\n",
            "",
        ];
        for text in cases {
            let direct =
                Events::from_json_lines(text.as_bytes(), &spec()).map_err(|e| e.to_string());
            let csv = through_csv(text, &spec());
            match (&direct, &csv) {
                (Ok(d), Ok(c)) => assert!(same(d, c), "{text}: {d:?} vs {c:?}"),
                (Err(d), Err(c)) => assert_eq!(d, c, "{text}"),
                // An empty body is no header to the CSV reader, and no events here.
                (Ok(d), Err(_)) if text.is_empty() => assert!(d.is_empty()),
                _ => panic!("{text}: {direct:?} vs {csv:?}"),
            }
        }
    }

    #[test]
    fn a_line_that_is_no_object_is_named() {
        for (text, line) in [
            (
                "{\"ts\": 1, \"symbol\": \"A\", \"close\": 1}\nnot json\n",
                2,
            ),
            ("\n\n[1, 2]\n", 3),
            ("{\"ts\": 1, \"symbol\": \n", 1),
        ] {
            let err = Events::from_json_lines(text.as_bytes(), &spec()).unwrap_err();
            assert!(
                matches!(err, InputError::Malformed { line: l, .. } if l == line),
                "{text}: {err}"
            );
            assert!(err.to_string().contains("one JSON object"), "{err}");
        }
    }

    #[test]
    fn batches_append_only_when_alike() {
        let mut a =
            Events::from_json_lines(b"{\"ts\": 1, \"symbol\": \"A\", \"close\": 1}", &spec())
                .unwrap();
        let b = Events::from_json_lines(b"{\"ts\": 2, \"symbol\": \"B\", \"close\": 2}", &spec())
            .unwrap();
        a.append(&b).unwrap();
        assert_eq!((a.len(), a.key(1)), (2, &["B".to_owned()][..]));
        let other = Events::new(&["close"], 1);
        assert!(a.append(&other).is_err());
    }
}
