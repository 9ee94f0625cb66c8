//! One detector over one CSV stream: the pipeline behind `adr detect`.

use std::io::{Read, Write};
use std::time::Instant;

use adr_sdk::{
    params::Resolved, score::ScoreColumns, Column, DetectorError, DetectorInfo, Frame, ParamError,
    ParamKind, ParamValue, Verdict,
};

use crate::io::{Chunk, CsvInput, CsvOptions, InputError, InputStats, OutputFormat, ScoreWriter};
use crate::plugins::{LookupError, Registry};

/// What to run.
#[derive(Debug, Clone, Default)]
pub struct DetectRequest {
    /// `family.detector`.
    pub detector: String,
    /// `(name, text)` parameters, as given on the command line.
    pub params: Vec<(String, String)>,
    /// Which columns to read and how.
    pub csv: CsvOptions,
    /// How to write scores.
    pub format: OutputFormat,
    /// Write only the rows judged anomalous.
    pub anomalies_only: bool,
}

/// What a run did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct DetectSummary {
    /// `family.detector`.
    pub detector: String,
    /// Rows scored.
    pub rows: u64,
    /// Rows judged anomalous.
    pub anomalies: u64,
    /// Rows the detector could not judge (warm-up, missing or non-finite values).
    pub undetermined: u64,
    /// What the input held besides clean rows.
    pub input: InputStats,
    /// Wall time of the run.
    pub seconds: f64,
}

/// Why a run failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DetectError {
    /// The detector name does not resolve.
    #[error(transparent)]
    Lookup(#[from] LookupError),
    /// Parameters do not fit the detector's schema (every problem, one per line).
    #[error("invalid parameters for `{detector}`:\n  {}", errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n  "))]
    Params {
        /// `family.detector`.
        detector: String,
        /// Every problem.
        errors: Vec<ParamError>,
    },
    /// A duration window needs timestamps the input lacks.
    #[error("parameter `{param}` is a duration, which needs a time column; name it with --time")]
    NeedsTime {
        /// The parameter.
        param: String,
    },
    /// The input is unreadable.
    #[error(transparent)]
    Input(#[from] InputError),
    /// The detector failed (including a panic inside it).
    #[error("detector `{detector}` failed: {source}")]
    Detector {
        /// `family.detector`.
        detector: String,
        /// What it reported.
        source: DetectorError,
    },
    /// Writing the output failed.
    #[error("writing the output failed: {0}")]
    Output(#[from] std::io::Error),
}

/// Parses command-line parameter text against a detector's schema, reporting every problem.
///
/// # Errors
///
/// Every [`ParamError`]: unknown names (with a suggestion), duplicates, unparsable text,
/// wrong types and values out of range.
pub fn parse_params(
    info: &DetectorInfo,
    given: &[(String, String)],
) -> Result<Vec<(String, ParamValue)>, Vec<ParamError>> {
    // Text becomes a value of the type its parameter expects; the schema check (unknown
    // names with suggestions, duplicates, ranges) is the SDK's, shared with the plugins.
    let mut errors = Vec::new();
    let values: Vec<(String, ParamValue)> = given
        .iter()
        .filter_map(
            |(name, text)| match info.params.iter().find(|p| &p.name == name) {
                None => Some((name.clone(), ParamValue::Text(text.clone()))),
                Some(spec) => match spec.parse(text) {
                    Ok(v) => Some((name.clone(), v)),
                    Err(e) => {
                        errors.push(e);
                        None
                    }
                },
            },
        )
        .collect();
    if let Err(mut more) = Resolved::resolve(&info.params, &values) {
        errors.append(&mut more);
    }
    if errors.is_empty() {
        Ok(values)
    } else {
        Err(errors)
    }
}

/// Scores `input` with one detector and writes every row with its score to `output`.
/// `progress` is called with the bytes read after each chunk.
///
/// Detectors that stream are fed chunk by chunk (constant memory); a detector in
/// whole-batch mode gets the whole series in one call.
///
/// # Errors
///
/// A [`DetectError`]; what was written before the error stays written.
pub fn run<R: Read, W: Write>(
    registry: &Registry,
    request: &DetectRequest,
    input: R,
    output: W,
    mut progress: impl FnMut(u64),
) -> Result<DetectSummary, DetectError> {
    let started = Instant::now();
    let (_, info) = registry.find(&request.detector)?;
    let params = parse_params(info, &request.params).map_err(|errors| DetectError::Params {
        detector: request.detector.clone(),
        errors,
    })?;
    let mut input = CsvInput::open(input, &request.csv)?;
    if input.time_column().is_none() {
        let duration = params.iter().find(|(n, v)| {
            matches!(v, ParamValue::Duration(_))
                && info.params.iter().any(|p| {
                    &p.name == n && matches!(p.kind, ParamKind::Window | ParamKind::Duration)
                })
        });
        if let Some((param, _)) = duration {
            return Err(DetectError::NeedsTime {
                param: param.clone(),
            });
        }
    }
    let failed = |source| DetectError::Detector {
        detector: request.detector.clone(),
        source,
    };
    let mut detector = registry
        .create(&request.detector, &params, &request.csv.columns)
        .map_err(failed)?;
    let mut writer = ScoreWriter::new(
        output,
        request.format,
        input.headers(),
        input.time_column().is_some(),
        &request.csv.columns,
        request.anomalies_only,
    )?;

    let mut summary = DetectSummary {
        detector: request.detector.clone(),
        ..DetectSummary::default()
    };
    let mut scores = ScoreColumns::default();
    let mut chunk = Chunk::default();
    let whole = detector.needs_whole_series();
    let mut all = Chunk::default();
    loop {
        let n = input.read_chunk(&mut chunk)?;
        progress(input.bytes_read());
        if whole && n > 0 {
            append(&mut all, &chunk);
            continue;
        }
        let batch = if whole { &all } else { &chunk };
        if batch.len > 0 {
            let columns: Vec<Column<'_>> = request
                .csv
                .columns
                .iter()
                .zip(&batch.columns)
                .map(|(name, values)| Column::f64(name, values))
                .collect();
            let frame =
                Frame::new(&batch.timestamps, &columns).expect("columns have the chunk's length");
            scores.resize(batch.len);
            detector
                .score(&frame, &mut scores.as_mut())
                .map_err(failed)?;
            for v in &scores.verdict {
                match v {
                    Verdict::Anomaly => summary.anomalies += 1,
                    Verdict::Undetermined => summary.undetermined += 1,
                    Verdict::Normal => {}
                }
            }
            writer.write(batch, &scores)?;
        }
        if n == 0 {
            break;
        }
    }
    writer.finish()?;
    summary.input = input.stats();
    summary.rows = summary.input.rows;
    summary.seconds = started.elapsed().as_secs_f64();
    Ok(summary)
}

/// Appends `chunk` to `all` (whole-batch mode keeps every row).
fn append(all: &mut Chunk, chunk: &Chunk) {
    if all.len == 0 {
        all.first_row = chunk.first_row;
        all.columns.resize_with(chunk.columns.len(), Vec::new);
    }
    all.timestamps.extend_from_slice(&chunk.timestamps);
    for (a, c) in all.columns.iter_mut().zip(&chunk.columns) {
        a.extend_from_slice(c);
    }
    all.records
        .extend(chunk.records[..chunk.len].iter().cloned());
    all.len += chunk.len;
}
