//! The ODDS outlier-detection benchmark (`../shared/data/odds/README.md`): its sets, the
//! fixed train/test splits of PyOD's and ADBench's protocols, scoring one detector on them
//! through the plugin boundary, and the reference tables to compare with.
//!
//! Per split: scale every column with the training rows (PyOD: mean and population
//! deviation, a zero deviation counting as 1; ADBench: min and max, a zero range counting
//! as 1), give the detector the training rows as its first `train` events, then the test
//! rows in one batch, and keep the test rows' raw scores.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use adr_sdk::score::ScoreColumns;
use adr_sdk::{Column, Frame, ParamValue};

use super::metrics::{average_precision, roc_auc};
use adr_engine::plugins::Registry;

/// Why an evaluation stopped.
#[derive(Debug, thiserror::Error)]
pub enum OddsError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A file is not what the benchmark's README describes.
    #[error("{path}: {why}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
    /// The detector refused its parameters or failed on a split.
    #[error("{detector} on {set} split {split}: {source}")]
    Detector {
        /// The detector.
        detector: String,
        /// The set.
        set: String,
        /// The split's seed.
        split: u64,
        /// Its error.
        source: adr_sdk::DetectorError,
    },
}

/// A benchmark protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// PyOD's benchmark: 10 splits 60/40, standardised.
    Pyod,
    /// ADBench's unsupervised setting: 3 splits 70/30, min-max scaled.
    Adbench,
}

impl Protocol {
    /// Its name in file names: `pyod`, `adbench`.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Pyod => "pyod",
            Protocol::Adbench => "adbench",
        }
    }
}

/// One data set: rows and labels.
#[derive(Debug, Clone)]
pub struct OddsSet {
    /// Its name (the file name without `.csv`).
    pub name: String,
    /// Row-major values.
    pub x: Vec<f64>,
    /// Values per row.
    pub d: usize,
    /// `true` for an outlier.
    pub labels: Vec<bool>,
}

/// One split: the rows of the CSV to train on and to score, in the order scores are
/// expected.
#[derive(Debug, Clone)]
pub struct Split {
    /// Its seed (the `split_<seed>.csv` of its score file).
    pub seed: u64,
    /// Training rows.
    pub train: Vec<usize>,
    /// Test rows.
    pub test: Vec<usize>,
}

fn read(path: &Path) -> Result<String, OddsError> {
    let failed = |source| OddsError::Read {
        path: path.to_path_buf(),
        source,
    };
    let mut text = String::new();
    if path.extension().is_some_and(|e| e == "gz") {
        let file = std::fs::File::open(path).map_err(failed)?;
        flate2::read::GzDecoder::new(file)
            .read_to_string(&mut text)
            .map_err(failed)?;
    } else {
        text = std::fs::read_to_string(path).map_err(failed)?;
    }
    Ok(text)
}

/// The names of the sets in `dir` (`<name>.csv` or `<name>.csv.gz`), sorted.
///
/// # Errors
///
/// A folder that cannot be listed.
pub fn set_names(dir: &Path) -> Result<Vec<String>, OddsError> {
    let entries = std::fs::read_dir(dir).map_err(|source| OddsError::Read {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut names: Vec<String> = entries
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            let stem = name.strip_suffix(".csv.gz").or(name.strip_suffix(".csv"))?;
            Some(stem.to_owned())
        })
        .collect();
    names.sort();
    names.dedup();
    Ok(names)
}

/// Loads set `name` from `dir`.
///
/// # Errors
///
/// A missing or malformed file.
pub fn load_set(dir: &Path, name: &str) -> Result<OddsSet, OddsError> {
    let plain = dir.join(format!("{name}.csv"));
    let path = if plain.exists() {
        plain
    } else {
        dir.join(format!("{name}.csv.gz"))
    };
    let text = read(&path)?;
    let bad = |why: String| OddsError::Format {
        path: path.clone(),
        why,
    };
    let mut lines = text.lines();
    let header = lines.next().ok_or_else(|| bad("no header".into()))?;
    let d = header.split(',').count() - 1;
    if d == 0 {
        return Err(bad("no value columns before `label`".into()));
    }
    let (mut x, mut labels) = (Vec::new(), Vec::new());
    // The first cell that is no finite number, and how many there are.
    let mut non_finite: Option<(usize, usize, String)> = None;
    let mut non_finite_cells = 0usize;
    for (i, line) in lines.enumerate() {
        let mut cells = line.split(',');
        for c in 0..d {
            let cell = cells.next().unwrap_or("");
            let value = cell.trim().parse::<f64>().map_err(|_| {
                bad(format!(
                    "row {}: column {c} is `{cell}`, not a number",
                    i + 1
                ))
            })?;
            if !value.is_finite() {
                non_finite_cells += 1;
                non_finite.get_or_insert_with(|| (i + 1, c, cell.trim().to_owned()));
            }
            x.push(value);
        }
        let label = cells.next().unwrap_or("").trim();
        labels.push(match label {
            "1" | "1.0" => true,
            "0" | "0.0" => false,
            _ => return Err(bad(format!("row {}: label `{label}`", i + 1))),
        });
    }
    if let Some((row, column, cell)) = non_finite {
        // Every detector would leave such rows unscored, or fail on them.
        return Err(bad(format!(
            "row {row}: column {column} is `{cell}`, not a finite number ({non_finite_cells} such cell{} in the set); the benchmark's rows have no missing values: fill or drop them first",
            if non_finite_cells == 1 { "" } else { "s" }
        )));
    }
    Ok(OddsSet {
        name: name.to_owned(),
        x,
        d,
        labels,
    })
}

/// The splits of set `name` under `protocol`; empty where the protocol has none.
///
/// # Errors
///
/// A missing or malformed `splits/<name>.json`.
pub fn load_splits(dir: &Path, name: &str, protocol: Protocol) -> Result<Vec<Split>, OddsError> {
    let path = dir.join("splits").join(format!("{name}.json"));
    let json: serde_json::Value =
        serde_json::from_str(&read(&path)?).map_err(|e| OddsError::Format {
            path: path.clone(),
            why: e.to_string(),
        })?;
    let list = match protocol {
        Protocol::Pyod => &json["splits"],
        Protocol::Adbench => &json["adbench"]["splits"],
    };
    let bad = || OddsError::Format {
        path: path.clone(),
        why: format!("no {} splits list", protocol.as_str()),
    };
    let rows = |v: &serde_json::Value| -> Option<Vec<usize>> {
        v.as_array()?
            .iter()
            .map(|i| i.as_u64().map(|i| i as usize))
            .collect()
    };
    list.as_array()
        .ok_or_else(bad)?
        .iter()
        .map(|s| {
            Some(Split {
                seed: s["seed"].as_u64()?,
                train: rows(&s["train"])?,
                test: rows(&s["test"])?,
            })
        })
        .collect::<Option<Vec<_>>>()
        .ok_or_else(bad)
}

/// Columns of the training rows then the test rows, scaled with the training rows.
pub fn scaled_columns(set: &OddsSet, split: &Split, protocol: Protocol) -> Vec<Vec<f64>> {
    let d = set.d;
    let value = |r: usize, c: usize| set.x[r * d + c];
    let n = split.train.len() as f64;
    (0..d)
        .map(|c| {
            let (offset, scale) = match protocol {
                Protocol::Pyod => {
                    let mean = split.train.iter().map(|&r| value(r, c)).sum::<f64>() / n;
                    let var = split
                        .train
                        .iter()
                        .map(|&r| (value(r, c) - mean) * (value(r, c) - mean))
                        .sum::<f64>()
                        / n;
                    let std = var.sqrt();
                    (mean, if std == 0.0 { 1.0 } else { std })
                }
                Protocol::Adbench => {
                    let (lo, hi) = split
                        .train
                        .iter()
                        .map(|&r| value(r, c))
                        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), x| {
                            (lo.min(x), hi.max(x))
                        });
                    (lo, if hi > lo { hi - lo } else { 1.0 })
                }
            };
            split
                .train
                .iter()
                .chain(&split.test)
                .map(|&r| (value(r, c) - offset) / scale)
                .collect()
        })
        .collect()
}

/// The test rows' raw scores of `detector` (with `params`; `train` is set to the split's
/// training rows) on one split.
///
/// # Errors
///
/// The detector's, or a test row left unscored.
pub fn score_split(
    registry: &Registry,
    detector: &str,
    params: &[(String, ParamValue)],
    set: &OddsSet,
    split: &Split,
    protocol: Protocol,
) -> Result<Vec<f64>, OddsError> {
    let failed = |source| OddsError::Detector {
        detector: detector.to_owned(),
        set: set.name.clone(),
        split: split.seed,
        source,
    };
    let columns = scaled_columns(set, split, protocol);
    let names: Vec<String> = (0..set.d).map(|c| format!("x{c}")).collect();
    let mut params: Vec<(String, ParamValue)> = params
        .iter()
        .filter(|(n, _)| n != "train")
        .cloned()
        .collect();
    params.push(("train".into(), ParamValue::Int(split.train.len() as i64)));
    let mut handle = registry.create(detector, &params, &names).map_err(failed)?;
    let frame_columns: Vec<Column<'_>> = names
        .iter()
        .zip(&columns)
        .map(|(n, c)| Column::f64(n, c))
        .collect();
    let rows = split.train.len() + split.test.len();
    let timestamps: Vec<i64> = (0..rows as i64).collect();
    let frame = Frame::new(&timestamps, &frame_columns).expect("columns of equal length");
    let mut out = ScoreColumns::with_len(rows);
    handle.score(&frame, &mut out.as_mut()).map_err(failed)?;
    let scores = out.raw[split.train.len()..].to_vec();
    if let Some(i) = scores.iter().position(|s| !s.is_finite()) {
        return Err(failed(adr_sdk::DetectorError::invalid_input(format!(
            "test row {i} has no score (the detector did not train on the {} training rows?)",
            split.train.len()
        ))));
    }
    Ok(scores)
}

/// ROC-AUC and average precision of a split's test scores.
pub fn split_metrics(set: &OddsSet, split: &Split, scores: &[f64]) -> (f64, f64) {
    let labels: Vec<bool> = split.test.iter().map(|&r| set.labels[r]).collect();
    (
        roc_auc(scores, &labels).unwrap_or(f64::NAN),
        average_precision(scores, &labels).unwrap_or(f64::NAN),
    )
}

/// A reference table (`reference/roc_<protocol>.csv`): set → method → value.
pub type Table = BTreeMap<String, BTreeMap<String, f64>>;

/// Reads `reference/<metric>_<protocol>.csv` (`metric`: `roc` or `ap`); empty if absent.
///
/// # Errors
///
/// A malformed file.
pub fn reference(dir: &Path, metric: &str, protocol: Protocol) -> Result<Table, OddsError> {
    let path = dir
        .join("reference")
        .join(format!("{metric}_{}.csv", protocol.as_str()));
    if !path.exists() {
        return Ok(Table::new());
    }
    let text = read(&path)?;
    let mut lines = text.lines();
    let methods: Vec<&str> = lines.next().unwrap_or("").split(',').skip(1).collect();
    Ok(lines
        .filter_map(|line| {
            let mut cells = line.split(',');
            let name = cells.next()?.to_owned();
            let values = methods
                .iter()
                .zip(cells)
                .filter_map(|(m, c)| Some(((*m).to_owned(), c.trim().parse().ok()?)))
                .collect();
            Some((name, values))
        })
        .collect())
}

/// The reference tables' column for an adr detector, where PyOD has one.
pub fn pyod_method(detector: &str) -> Option<&'static str> {
    Some(match detector.rsplit('.').next()? {
        "isolation_forest" => "IForest",
        "lof" => "LOF",
        "one_class_svm" => "OCSVM",
        "hbos" => "HBOS",
        "knn" => "KNN",
        "ecod" => "ECOD",
        "copod" => "COPOD",
        "pca" => "PCA",
        _ => return None,
    })
}

/// Writes one split's scores as `odds_eval.py score` reads them: a `score` header, one
/// score a line, in test order.
///
/// # Errors
///
/// The file's.
pub fn write_scores(path: &Path, scores: &[f64]) -> std::io::Result<()> {
    use std::io::Write;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    writeln!(out, "score")?;
    for s in scores {
        // Rust's shortest round-trip form: Python reads back the same double.
        writeln!(out, "{s:?}")?;
    }
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scaling_follows_each_protocol() {
        let set = OddsSet {
            name: "t".into(),
            x: vec![1.0, 5.0, 3.0, 5.0, 5.0, 5.0, 9.0, 7.0],
            d: 2,
            labels: vec![false, false, false, true],
        };
        let split = Split {
            seed: 0,
            train: vec![0, 1, 2],
            test: vec![3],
        };
        // Column 0: mean 3, population std √(8/3); column 1 constant: std counts as 1.
        let z = scaled_columns(&set, &split, Protocol::Pyod);
        let s = (8.0f64 / 3.0).sqrt();
        assert_eq!(z[0], vec![-2.0 / s, 0.0, 2.0 / s, 6.0 / s]);
        assert_eq!(z[1], vec![0.0, 0.0, 0.0, 2.0]);
        let m = scaled_columns(&set, &split, Protocol::Adbench);
        assert_eq!(m[0], vec![0.0, 0.5, 1.0, 2.0]);
        assert_eq!(m[1], vec![0.0, 0.0, 0.0, 2.0]);
    }

    #[test]
    fn score_files_read_back_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("set/split_3.csv");
        let scores = [0.1 + 0.2, 1e-300, -2.5];
        write_scores(&path, &scores).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let back: Vec<f64> = text.lines().skip(1).map(|l| l.parse().unwrap()).collect();
        assert_eq!(text.lines().next(), Some("score"));
        assert_eq!(back, scores);
    }
}
