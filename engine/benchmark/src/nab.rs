//! The Numenta Anomaly Benchmark: its corpus, its scoring rules (Lavin & Ahmad 2015) and
//! the layout of its result folders.
//!
//! The scorer follows NAB's protocol as `../shared/tools/nab_score.py` implements it
//! (agreement is tested): a probation of min(⌊0.15·n⌋, 750) rows, one threshold per
//! profile for the whole corpus, the scaled sigmoid σ(x) = 2/(1 + e^(5x)) − 1 weighting a
//! window's earliest detection and each false positive by its distance past the previous
//! window, and the optimiser that tries every distinct score.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use adr_engine::io::csv_input::TIME_NAMES;
use adr_engine::io::timestamp::TimeFormat;

use super::series::Series;

/// Past this many window widths a false positive costs the full weight.
const SIGMA_CLAMP: f64 = 3.0;

/// NAB's scaled sigmoid, from +1 (far before) to −1 (past [`SIGMA_CLAMP`]).
fn sigma(x: f64) -> f64 {
    if x > SIGMA_CLAMP {
        -1.0
    } else {
        2.0 / (1.0 + (5.0 * x).exp()) - 1.0
    }
}

/// Rows at the start of an `n`-row file that are never scored.
pub fn probation(n: usize) -> usize {
    ((0.15 * n as f64).floor() as usize).min(750)
}

/// Why the corpus or a profile could not be read.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct NabError {
    /// The file.
    pub path: PathBuf,
    /// What is wrong.
    pub message: String,
}

fn fail(path: &Path, message: impl Into<String>) -> NabError {
    NabError {
        path: path.to_owned(),
        message: message.into(),
    }
}

/// One labelled series and, per row, its scoring weights.
#[derive(Debug, Clone)]
pub struct NabFile {
    /// `category/name.csv`.
    pub name: String,
    /// The timestamps as written in the data file (result files repeat them).
    pub stamps: Vec<String>,
    /// The values and times.
    pub series: Series,
    /// Rows never scored.
    pub probation: usize,
    /// Windows as inclusive row ranges.
    pub spans: Vec<(usize, usize)>,
    /// Per row: the window holding it.
    window: Vec<Option<usize>>,
    /// Per row: σ(position)/σ(−1) inside a window (times A_tp), σ(distance) outside
    /// (times A_fp).
    unit: Vec<f64>,
}

/// An application profile: the weights of a true positive, a false positive and a miss.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Profile {
    /// `standard`, `reward_low_FP_rate`, `reward_low_FN_rate`.
    pub name: String,
    /// A_tp.
    pub tp: f64,
    /// A_fp.
    pub fp: f64,
    /// A_fn.
    pub fn_: f64,
}

/// NAB's corpus: the files of a windows file, in name order.
#[derive(Debug, Clone)]
pub struct Corpus {
    /// The files.
    pub files: Vec<NabFile>,
    /// Windows in the labels.
    pub windows: usize,
    /// Windows with at least one row past probation.
    pub scored_windows: usize,
}

impl Corpus {
    /// Reads `data/<name>` for every file named in the windows file `labels`, with NAB's
    /// columns (`timestamp`, `value`).
    ///
    /// # Errors
    ///
    /// An unreadable file, a timestamp that does not parse, or a window edge that is no
    /// data timestamp.
    pub fn load(data: &Path, labels: &Path) -> Result<Corpus, NabError> {
        Corpus::load_with(data, labels, &Layout::nab())
    }

    /// Reads `data/<name>` for every file named in `labels` (NAB's windows layout:
    /// `{"name": [[start, end], ...]}`, an entry may also be one time, a window of one
    /// row), with `layout`'s columns.
    ///
    /// An edge that is a data timestamp names its first row, as NAB's do; any other time
    /// takes the rows from the first at or after the start to the last at or before the
    /// end, which needs the file sorted by time.
    ///
    /// # Errors
    ///
    /// An unreadable file, a missing column, a timestamp that does not parse, a window
    /// that holds no row or overlaps the one before.
    pub fn load_with(data: &Path, labels: &Path, layout: &Layout) -> Result<Corpus, NabError> {
        let text = std::fs::read_to_string(labels).map_err(|e| fail(labels, e.to_string()))?;
        let windows: BTreeMap<String, Vec<serde_json::Value>> = serde_json::from_str(&text)
            .map_err(|e| {
                fail(
                    labels,
                    format!("{e} (expected {{\"file.csv\": [[start, end], ...]}})"),
                )
            })?;
        if windows.is_empty() {
            return Err(fail(labels, "names no file"));
        }
        // `norm.csv` and `./norm.csv` are one file: scored twice, it would count twice.
        let mut seen: Vec<(adr_engine::plugins::FileIdentity, &str)> = Vec::new();
        for name in windows.keys() {
            let identity = adr_engine::plugins::FileIdentity::of(&data.join(name));
            if let Some((_, first)) = seen.iter().find(|(id, _)| *id == identity) {
                return Err(fail(
                    labels,
                    format!("`{first}` and `{name}` are one file; name each file once"),
                ));
            }
            seen.push((identity, name));
        }
        let files = windows
            .iter()
            .map(|(name, spans)| NabFile::load(name, &data.join(name), spans, layout))
            .collect::<Result<Vec<_>, _>>()?;
        let windows = files.iter().map(|f| f.spans.len()).sum();
        let scored_windows = files
            .iter()
            .map(|f| f.spans.iter().filter(|(_, hi)| *hi >= f.probation).count())
            .sum();
        Ok(Corpus {
            files,
            windows,
            scored_windows,
        })
    }
}

/// The columns a labelled file is read with.
#[derive(Debug, Clone, PartialEq)]
pub struct Layout {
    /// The event-time column; `None`: the first of the CSV reader's default names.
    pub time: Option<String>,
    /// The value columns, in the order a rule's input lists them.
    pub fields: Vec<String>,
}

impl Layout {
    /// NAB's files: `timestamp` and `value`.
    pub fn nab() -> Layout {
        Layout {
            time: Some("timestamp".into()),
            fields: vec!["value".into()],
        }
    }
}

/// A label entry's text: a string, or a number as written.
fn edge_text(value: &serde_json::Value) -> Option<String> {
    match value {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

impl NabFile {
    fn load(
        name: &str,
        path: &Path,
        windows: &[serde_json::Value],
        layout: &Layout,
    ) -> Result<NabFile, NabError> {
        let mut reader = csv::Reader::from_path(path).map_err(|e| fail(path, e.to_string()))?;
        let header = reader
            .headers()
            .map_err(|e| fail(path, e.to_string()))?
            .clone();
        let col = |want: &str| {
            header.iter().position(|h| h.trim() == want).ok_or_else(|| {
                fail(
                    path,
                    format!(
                        "no `{want}` column (it has {})",
                        header.iter().collect::<Vec<_>>().join(", ")
                    ),
                )
            })
        };
        let tc = match &layout.time {
            Some(time) => col(time)?,
            None => header
                .iter()
                .position(|h| TIME_NAMES.contains(&h.trim().to_ascii_lowercase().as_str()))
                .ok_or_else(|| {
                    fail(
                        path,
                        format!("no time column (one of {})", TIME_NAMES.join(", ")),
                    )
                })?,
        };
        let vcs = layout
            .fields
            .iter()
            .map(|f| col(f))
            .collect::<Result<Vec<_>, _>>()?;
        let (mut stamps, mut series) = (Vec::new(), Series::default());
        let mut values = vec![Vec::new(); vcs.len()];
        let mut format = None;
        for (k, record) in reader.records().enumerate() {
            let record = record.map_err(|e| fail(path, e.to_string()))?;
            let stamp = record.get(tc).unwrap_or("").trim().to_owned();
            let f = *format.get_or_insert_with(|| TimeFormat::detect(&stamp));
            let t = f
                .and_then(|f| f.parse(&stamp).ok())
                .ok_or_else(|| fail(path, format!("line {}: timestamp {stamp:?}", k + 2)))?;
            for (column, &vc) in values.iter_mut().zip(&vcs) {
                let value = record.get(vc).unwrap_or("").trim();
                column.push(value.parse::<f64>().unwrap_or(f64::NAN));
            }
            series.timestamps.push(t);
            stamps.push(stamp);
        }
        let n = stamps.len();
        if n == 0 {
            return Err(fail(path, "no data rows"));
        }
        let format = format.flatten().unwrap_or(TimeFormat::Iso);
        series.columns = layout.fields.iter().cloned().zip(values).collect();
        // A few files repeat a timestamp (clock changes); an edge names its first row.
        let mut row_of = HashMap::new();
        for (i, &t) in series.timestamps.iter().enumerate() {
            row_of.entry(t).or_insert(i);
        }
        let sorted = series.timestamps.windows(2).all(|w| w[0] <= w[1]);
        let times = &series.timestamps;
        let mut spans: Vec<(usize, usize)> = Vec::new();
        for (k, entry) in windows.iter().enumerate() {
            let texts: Option<Vec<String>> = match entry {
                serde_json::Value::Array(items) => items.iter().map(edge_text).collect(),
                other => edge_text(other).map(|t| vec![t.clone(), t]),
            };
            let (lo, hi) = match texts.as_deref() {
                Some([lo, hi]) | Some([lo @ hi]) => (lo.clone(), hi.clone()),
                _ => {
                    return Err(fail(
                        path,
                        format!("window {k} is not [start, end] or one time: {entry}"),
                    ))
                }
            };
            let time = |text: &String| {
                format
                    .parse(text)
                    .or_else(|_| TimeFormat::Iso.parse(text))
                    .map_err(|_| fail(path, format!("window {k}: {text:?} is no time")))
            };
            let (t0, t1) = (time(&lo)?, time(&hi)?);
            let (a, b) = match (row_of.get(&t0), row_of.get(&t1)) {
                (Some(&a), Some(&b)) => (a, b),
                _ if sorted => {
                    let a = times.partition_point(|&t| t < t0);
                    let b = times.partition_point(|&t| t <= t1);
                    if b <= a {
                        return Err(fail(path, format!("window {k} [{lo}, {hi}] holds no row")));
                    }
                    (a, b - 1)
                }
                _ => {
                    return Err(fail(
                        path,
                        format!(
                            "window {k} edge {lo} or {hi} is not a data timestamp (other times \
                             need the file sorted by time)"
                        ),
                    ))
                }
            };
            if b < a {
                return Err(fail(path, format!("window {k} ends before it starts")));
            }
            spans.push((a, b));
        }
        // Labels need not be in order, but windows are targets and must not share rows.
        spans.sort_unstable();
        if let Some(w) = spans.windows(2).find(|w| w[1].0 <= w[0].1) {
            return Err(fail(
                path,
                format!(
                    "windows over rows {}..={} and {}..={} overlap",
                    w[0].0, w[0].1, w[1].0, w[1].1
                ),
            ));
        }
        let mut window = vec![None; n];
        let mut unit = vec![-1.0; n];
        let first = sigma(-1.0);
        for (k, &(lo, hi)) in spans.iter().enumerate() {
            let width = (hi - lo + 1) as f64;
            for i in lo..=hi {
                window[i] = Some(k);
                unit[i] = sigma(-((hi - i + 1) as f64) / width) / first;
            }
            let stop = spans.get(k + 1).map_or(n, |s| s.0);
            let widths = (hi - lo).max(1) as f64;
            for (i, u) in unit.iter_mut().enumerate().take(stop).skip(hi + 1) {
                *u = sigma((i - hi) as f64 / widths);
            }
        }
        Ok(NabFile {
            name: name.to_owned(),
            stamps,
            series,
            probation: probation(n),
            spans,
            window,
            unit,
        })
    }

    /// Per row: whether it lies in a labelled window.
    pub fn labels(&self) -> Vec<bool> {
        self.window.iter().map(Option::is_some).collect()
    }

    /// Rows.
    pub fn len(&self) -> usize {
        self.stamps.len()
    }

    /// Whether the file has no rows (never: loading refuses it).
    pub fn is_empty(&self) -> bool {
        self.stamps.is_empty()
    }

    /// Raw score at `threshold` (`None`: never fire): (raw, windows detected, false
    /// positive rows).
    pub fn score(
        &self,
        scores: &[f64],
        profile: &Profile,
        threshold: Option<f64>,
    ) -> (f64, usize, usize) {
        let fires = |i: usize| threshold.is_some_and(|t| scores[i] >= t);
        let mut raw = 0.0;
        let mut fps = 0;
        for i in self.probation..self.len() {
            if self.window[i].is_none() && fires(i) {
                raw += profile.fp * self.unit[i];
                fps += 1;
            }
        }
        let mut detected = 0;
        for &(lo, hi) in &self.spans {
            if hi < self.probation {
                continue;
            }
            match (lo.max(self.probation)..=hi).find(|&i| fires(i)) {
                Some(i) => {
                    raw += profile.tp * self.unit[i];
                    detected += 1;
                }
                None => raw -= profile.fn_,
            }
        }
        (raw, detected, fps)
    }
}

/// NAB's three application profiles with their published weights (`config/profiles.json`
/// of NAB v1.1), for labelled data that comes without a profiles file.
pub fn nab_profiles() -> Vec<Profile> {
    [
        ("reward_low_FN_rate", 1.0, 0.11, 2.0),
        ("reward_low_FP_rate", 1.0, 0.22, 1.0),
        ("standard", 1.0, 0.11, 1.0),
    ]
    .into_iter()
    .map(|(name, tp, fp, fn_)| Profile {
        name: name.into(),
        tp,
        fp,
        fn_,
    })
    .collect()
}

/// Reads NAB's `profiles.json`.
///
/// # Errors
///
/// An unreadable or malformed file.
pub fn load_profiles(path: &Path) -> Result<Vec<Profile>, NabError> {
    let text = std::fs::read_to_string(path).map_err(|e| fail(path, e.to_string()))?;
    let raw: BTreeMap<String, serde_json::Value> =
        serde_json::from_str(&text).map_err(|e| fail(path, e.to_string()))?;
    raw.into_iter()
        .map(|(name, spec)| {
            let cost = spec.get("CostMatrix").unwrap_or(&spec);
            let weight = |key: &str| {
                cost.get(key)
                    .and_then(serde_json::Value::as_f64)
                    .ok_or_else(|| fail(path, format!("profile {name}: no {key}")))
            };
            Ok(Profile {
                tp: weight("tpWeight")?,
                fp: weight("fpWeight")?,
                fn_: weight("fnWeight")?,
                name,
            })
        })
        .collect()
}

/// The threshold (`None`: never fire) with the highest corpus raw score, and that score.
///
/// Every scored row of the corpus is sorted by score, highest first; lowering the
/// threshold past a row adds its false-positive cost, or raises its window's payoff to the
/// row's value when that is better than the window's current one (−A_fn before any
/// detection). The running total after each run of equal scores is the raw score at that
/// threshold; on a tie the higher threshold wins.
pub fn optimise_threshold(
    corpus: &Corpus,
    scores: &[Vec<f64>],
    profile: &Profile,
) -> (Option<f64>, f64) {
    // (score, global window or usize::MAX, unit)
    let mut rows: Vec<(f64, usize, f64)> = Vec::new();
    let mut offset = 0;
    for (file, s) in corpus.files.iter().zip(scores) {
        let p = file.probation;
        for ((&score, window), &unit) in s[p..].iter().zip(&file.window[p..]).zip(&file.unit[p..]) {
            rows.push((score, window.map_or(usize::MAX, |k| k + offset), unit));
        }
        offset += file.spans.len();
    }
    rows.sort_by(|a, b| b.0.total_cmp(&a.0));
    let start = -profile.fn_ * corpus.scored_windows as f64;
    let mut payoff = vec![-profile.fn_; offset];
    let (mut total, mut best) = (start, (None, start));
    for (k, &(score, window, unit)) in rows.iter().enumerate() {
        if window == usize::MAX {
            total += profile.fp * unit;
        } else {
            let value = profile.tp * unit;
            if value > payoff[window] {
                total += value - payoff[window];
                payoff[window] = value;
            }
        }
        let run_ends = rows.get(k + 1).is_none_or(|next| next.0 != score);
        if run_ends && total > best.1 {
            best = (Some(score), total);
        }
    }
    best
}

/// 100·(raw − null)/(perfect − null): the null detector scores 0, a perfect one 100.
pub fn normalise(raw: f64, corpus: &Corpus, profile: &Profile) -> f64 {
    let null = -profile.fn_ * corpus.scored_windows as f64;
    let perfect = profile.tp * corpus.windows as f64;
    100.0 * (raw - null) / (perfect - null)
}

/// One profile's result.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ProfileResult {
    /// The profile.
    pub profile: String,
    /// The normalised NAB score.
    pub score: f64,
    /// The raw score.
    pub raw: f64,
    /// The threshold used; `None` means never fire.
    pub threshold: Option<f64>,
    /// Windows with a detection.
    pub windows_detected: usize,
    /// Windows in all.
    pub windows: usize,
    /// Detections outside every window.
    pub false_positive_rows: usize,
}

/// Scores every profile with its optimised threshold (or `threshold` for all).
pub fn evaluate(
    corpus: &Corpus,
    scores: &[Vec<f64>],
    profiles: &[Profile],
    threshold: Option<f64>,
) -> Vec<ProfileResult> {
    profiles
        .iter()
        .map(|p| {
            let t = match threshold {
                Some(t) => Some(t),
                None => optimise_threshold(corpus, scores, p).0,
            };
            let (mut raw, mut detected, mut fps) = (0.0, 0, 0);
            for (file, s) in corpus.files.iter().zip(scores) {
                let (r, d, f) = file.score(s, p, t);
                raw += r;
                detected += d;
                fps += f;
            }
            ProfileResult {
                profile: p.name.clone(),
                score: normalise(raw, corpus, p),
                raw,
                threshold: t,
                windows_detected: detected,
                windows: corpus.windows,
                false_positive_rows: fps,
            }
        })
        .collect()
}

/// Writes `dir/<category>/<name>.csv` per file (`timestamp,value,anomaly_score`), the
/// layout `nab_score.py` reads; undetermined rows score 0.
///
/// # Errors
///
/// A file that cannot be written.
pub fn write_results(dir: &Path, corpus: &Corpus, scores: &[Vec<f64>]) -> std::io::Result<()> {
    use std::io::Write;
    for (file, s) in corpus.files.iter().zip(scores) {
        let path = dir.join(&file.name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let mut out = std::io::BufWriter::new(std::fs::File::create(&path)?);
        writeln!(out, "timestamp,value,anomaly_score")?;
        let values = &file.series.columns[0].1;
        for i in 0..file.len() {
            writeln!(out, "{},{},{}", file.stamps[i], values[i], s[i])?;
        }
        out.flush()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sigma_runs_from_one_to_minus_one() {
        assert!((sigma(0.0)).abs() < 1e-15);
        assert!((sigma(-1.0) - 0.986_614_298_151_430_3).abs() < 1e-12);
        assert_eq!(sigma(3.5), -1.0);
        assert_eq!(probation(1000), 150);
        assert_eq!(probation(22_000), 750);
    }
}
