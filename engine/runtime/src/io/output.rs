//! Writing scored rows: CSV (the input's columns plus three score columns) or JSON lines.

use std::io::Write;

use adr_sdk::{score::ScoreColumns, Verdict};

use super::{csv_input::Chunk, timestamp::format_rfc3339};

/// How scores are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OutputFormat {
    /// The input's columns and `score`, `normalised`, `verdict`; missing numbers are empty.
    #[default]
    Csv,
    /// One JSON object per row: `row`, `time` (RFC 3339, when there is a time column),
    /// `values` (the value columns by name), `score`, `normalised` (null when
    /// undetermined or infinite) and `verdict`.
    JsonLines,
}

/// Where rows go: a CSV writer, or a buffered stream of JSON lines.
#[derive(Debug)]
enum Sink<W: Write> {
    // Boxed: the CSV writer carries its state inline and is much larger than a BufWriter.
    Csv(Box<csv::Writer<W>>),
    Json(std::io::BufWriter<W>),
}

/// Writes scored chunks.
#[derive(Debug)]
pub struct ScoreWriter<W: Write> {
    sink: Sink<W>,
    score_names: [String; 3],
    json_keys: Vec<String>,
    has_time: bool,
    anomalies_only: bool,
    line: String,
}

impl<W: Write> ScoreWriter<W> {
    /// A writer for rows with `headers`; in CSV it writes the header row at once.
    ///
    /// # Errors
    ///
    /// A write error.
    pub fn new(
        out: W,
        format: OutputFormat,
        headers: &[String],
        has_time: bool,
        value_columns: &[String],
        anomalies_only: bool,
    ) -> std::io::Result<Self> {
        // Keep the input's columns intact: rename ours if a name is taken.
        let score_names = ["score", "normalised", "verdict"].map(|n| {
            if headers.iter().any(|h| h == n) {
                format!("adr_{n}")
            } else {
                n.to_owned()
            }
        });
        let sink = match format {
            OutputFormat::Csv => {
                let mut csv = csv::WriterBuilder::new()
                    .buffer_capacity(1 << 20)
                    .from_writer(out);
                csv.write_record(headers.iter().chain(score_names.iter()))?;
                Sink::Csv(Box::new(csv))
            }
            OutputFormat::JsonLines => Sink::Json(std::io::BufWriter::with_capacity(1 << 20, out)),
        };
        let json_keys = value_columns
            .iter()
            .map(|c| serde_json::to_string(c).expect("a string serialises"))
            .collect();
        Ok(ScoreWriter {
            sink,
            score_names,
            json_keys,
            has_time,
            anomalies_only,
            line: String::new(),
        })
    }

    /// Writes the chunk's rows with their scores.
    ///
    /// # Errors
    ///
    /// A write error.
    pub fn write(&mut self, chunk: &Chunk, scores: &ScoreColumns) -> std::io::Result<()> {
        let mut raw_buf = ryu::Buffer::new();
        let mut norm_buf = ryu::Buffer::new();
        for i in 0..chunk.len {
            let verdict = scores.verdict[i];
            if self.anomalies_only && verdict != Verdict::Anomaly {
                continue;
            }
            match &mut self.sink {
                Sink::Csv(csv) => {
                    let raw = format_number(&mut raw_buf, scores.raw[i]);
                    let norm = format_number(&mut norm_buf, scores.normalised[i]);
                    let extra: [&[u8]; 3] =
                        [raw.as_bytes(), norm.as_bytes(), verdict.as_str().as_bytes()];
                    csv.write_record(chunk.records[i].iter().chain(extra))?;
                }
                Sink::Json(_) => self.write_json(chunk, scores, i)?,
            }
        }
        Ok(())
    }

    fn write_json(
        &mut self,
        chunk: &Chunk,
        scores: &ScoreColumns,
        i: usize,
    ) -> std::io::Result<()> {
        use std::fmt::Write as _;
        let mut buf = ryu::Buffer::new();
        let line = &mut self.line;
        line.clear();
        let _ = write!(line, "{{\"row\":{}", chunk.first_row + i as u64);
        if self.has_time {
            let _ = write!(
                line,
                ",\"time\":\"{}\"",
                format_rfc3339(chunk.timestamps[i])
            );
        }
        line.push_str(",\"values\":{");
        for (k, (key, column)) in self.json_keys.iter().zip(&chunk.columns).enumerate() {
            let sep = if k == 0 { "" } else { "," };
            let _ = write!(line, "{sep}{key}:{}", json_number(&mut buf, column[i]));
        }
        line.push('}');
        let _ = write!(line, ",\"score\":{}", json_number(&mut buf, scores.raw[i]));
        let _ = write!(
            line,
            ",\"normalised\":{}",
            json_number(&mut buf, scores.normalised[i])
        );
        let _ = writeln!(line, ",\"verdict\":\"{}\"}}", scores.verdict[i].as_str());
        match &mut self.sink {
            Sink::Json(out) => out.write_all(line.as_bytes()),
            Sink::Csv(_) => unreachable!("JSON rows go to a JSON sink"),
        }
    }

    /// The names of the three score columns in CSV output.
    pub fn score_names(&self) -> &[String; 3] {
        &self.score_names
    }

    /// Flushes everything written.
    ///
    /// # Errors
    ///
    /// A write error.
    pub fn finish(self) -> std::io::Result<()> {
        match self.sink {
            Sink::Csv(mut csv) => csv.flush(),
            Sink::Json(mut out) => out.flush(),
        }
    }
}

/// A CSV cell for `x`: empty for NaN, `inf`/`-inf`, else the shortest text that reads
/// back as `x`; a negative zero is written `0.0` (a score or value of zero has no sign).
pub(crate) fn format_number(buf: &mut ryu::Buffer, x: f64) -> &str {
    if x.is_nan() {
        ""
    } else if x.is_infinite() {
        if x > 0.0 {
            "inf"
        } else {
            "-inf"
        }
    } else {
        buf.format_finite(x + 0.0)
    }
}

fn json_number(buf: &mut ryu::Buffer, x: f64) -> &str {
    if x.is_finite() {
        buf.format_finite(x + 0.0)
    } else {
        "null"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::{CsvInput, CsvOptions};

    fn scored(format: OutputFormat, anomalies_only: bool) -> String {
        let text = "ts,score\n2024-01-01T00:00:00Z,1\n2024-01-01T00:01:00Z,\n";
        let options = CsvOptions {
            columns: vec!["score".into()],
            ..Default::default()
        };
        let mut input = CsvInput::open(text.as_bytes(), &options).unwrap();
        let mut chunk = Chunk::default();
        input.read_chunk(&mut chunk).unwrap();
        let mut scores = ScoreColumns::with_len(2);
        scores
            .as_mut()
            .set(0, adr_sdk::Score::from_ratio(f64::INFINITY, 3.0));
        let mut out = Vec::new();
        let mut w = ScoreWriter::new(
            &mut out,
            format,
            input.headers(),
            true,
            &["score".into()],
            anomalies_only,
        )
        .unwrap();
        w.write(&chunk, &scores).unwrap();
        w.finish().unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn csv_keeps_input_columns_and_renames_clashing_score_columns() {
        assert_eq!(
            scored(OutputFormat::Csv, false),
            "ts,score,adr_score,normalised,verdict\n2024-01-01T00:00:00Z,1,inf,1.0,anomaly\n2024-01-01T00:01:00Z,,,,undetermined\n"
        );
    }

    #[test]
    fn json_lines_use_null_for_missing_numbers() {
        assert_eq!(
            scored(OutputFormat::JsonLines, false),
            "{\"row\":1,\"time\":\"2024-01-01T00:00:00Z\",\"values\":{\"score\":1.0},\"score\":null,\"normalised\":1.0,\"verdict\":\"anomaly\"}\n\
             {\"row\":2,\"time\":\"2024-01-01T00:01:00Z\",\"values\":{\"score\":null},\"score\":null,\"normalised\":null,\"verdict\":\"undetermined\"}\n"
        );
    }

    #[test]
    fn anomalies_only_drops_the_rest() {
        assert_eq!(scored(OutputFormat::Csv, true).lines().count(), 2);
    }
}
