//! Change points on the Turing Change Point Dataset (van den Burg & Williams 2020): its
//! series and annotations, and its two metrics, F1 with a margin and segment covering,
//! as TCPDBench (and `../shared/tools/ts_eval.py cpd`) compute them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::series::Series;

/// Steps within which a predicted change point matches an annotated one.
pub const MARGIN: usize = 5;

/// Why the dataset could not be read.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct CpdError {
    /// The file.
    pub path: PathBuf,
    /// What is wrong.
    pub message: String,
}

/// One series with its annotators' change points.
#[derive(Debug, Clone)]
pub struct CpdSeries {
    /// The series' name (`nile`).
    pub name: String,
    /// Its values: `value` (the first dimension) and `v1`..`vd`; time is the row index in
    /// seconds.
    pub series: Series,
    /// Rows.
    pub len: usize,
    /// Each annotator's change points (sorted, without repeats).
    pub annotators: Vec<Vec<usize>>,
}

/// Reads every series named in `dir/annotations.json`; with `standardise`, each dimension
/// is scaled to mean 0 and deviation 1 (NaN left out), as the reference runs do.
///
/// # Errors
///
/// An unreadable or malformed file.
pub fn load(dir: &Path, standardise: bool) -> Result<Vec<CpdSeries>, CpdError> {
    let fail = |path: &Path, message: String| CpdError {
        path: path.to_owned(),
        message,
    };
    let labels = dir.join("annotations.json");
    let text = std::fs::read_to_string(&labels).map_err(|e| fail(&labels, e.to_string()))?;
    let annotations: BTreeMap<String, BTreeMap<String, Vec<usize>>> =
        serde_json::from_str(&text).map_err(|e| fail(&labels, e.to_string()))?;
    let mut out = Vec::new();
    for (name, by_annotator) in annotations {
        let path = dir.join(format!("{name}.json"));
        if !path.exists() {
            continue;
        }
        let text = std::fs::read_to_string(&path).map_err(|e| fail(&path, e.to_string()))?;
        let doc: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| fail(&path, e.to_string()))?;
        let dims = doc["series"]
            .as_array()
            .ok_or_else(|| fail(&path, "no `series` list".into()))?;
        let mut columns = Vec::new();
        for (j, dim) in dims.iter().enumerate() {
            let raw = dim["raw"]
                .as_array()
                .ok_or_else(|| fail(&path, format!("series {j} has no `raw` values")))?;
            let mut values: Vec<f64> = raw.iter().map(|v| v.as_f64().unwrap_or(f64::NAN)).collect();
            if standardise {
                scale(&mut values);
            }
            columns.push((format!("v{}", j + 1), values));
        }
        let len = columns.first().map_or(0, |c| c.1.len());
        if columns.iter().any(|c| c.1.len() != len) {
            return Err(fail(&path, "dimensions of different lengths".into()));
        }
        if let Some(first) = columns.first().cloned() {
            columns.insert(0, ("value".into(), first.1));
        }
        let annotators = by_annotator
            .into_values()
            .map(|mut a| {
                a.sort_unstable();
                a.dedup();
                a
            })
            .collect();
        out.push(CpdSeries {
            name,
            series: Series {
                timestamps: (0..len as i64).map(|i| i * 1_000_000_000).collect(),
                columns,
            },
            len,
            annotators,
        });
    }
    Ok(out)
}

fn scale(values: &mut [f64]) {
    let finite: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    if finite.is_empty() {
        return;
    }
    let n = finite.len() as f64;
    let mean = finite.iter().sum::<f64>() / n;
    let sd = (finite.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n).sqrt();
    for v in values.iter_mut() {
        *v = (*v - mean) / (sd + 1e-12);
    }
}

/// Annotated points matched by a prediction within [`MARGIN`], each prediction used once,
/// annotated points taken in ascending order, each to its nearest unused prediction.
fn true_positives(truth: &[usize], predictions: &[usize]) -> usize {
    let mut left: Vec<usize> = predictions.to_vec();
    let mut hits = 0;
    for &t in truth {
        let nearest = left
            .iter()
            .enumerate()
            .filter(|(_, &x)| t.abs_diff(x) <= MARGIN)
            .min_by_key(|(_, &x)| (t.abs_diff(x), x));
        if let Some((k, _)) = nearest {
            left.remove(k);
            hits += 1;
        }
    }
    hits
}

/// Predictions as the metrics take them: inside `1..n−1`, sorted, without repeats.
pub fn clean(predictions: &[usize], n: usize) -> Vec<usize> {
    let mut p: Vec<usize> = predictions
        .iter()
        .copied()
        .filter(|&x| x > 0 && x + 1 < n)
        .collect();
    p.sort_unstable();
    p.dedup();
    p
}

fn with_zero(points: &[usize]) -> Vec<usize> {
    let mut p = points.to_vec();
    p.push(0);
    p.sort_unstable();
    p.dedup();
    p
}

/// F1 with margin 5: precision against the union of the annotators' points, recall
/// averaged over annotators, 0 counted as a change point on both sides.
pub fn f1(annotators: &[Vec<usize>], predictions: &[usize]) -> f64 {
    let pred = with_zero(predictions);
    let annotators: Vec<Vec<usize>> = annotators.iter().map(|a| with_zero(a)).collect();
    let mut every: Vec<usize> = annotators.iter().flatten().copied().collect();
    every.sort_unstable();
    every.dedup();
    let precision = true_positives(&every, &pred) as f64 / pred.len() as f64;
    let recall = annotators
        .iter()
        .map(|a| true_positives(a, &pred) as f64 / a.len() as f64)
        .sum::<f64>()
        / annotators.len() as f64;
    if precision + recall == 0.0 {
        0.0
    } else {
        2.0 * precision * recall / (precision + recall)
    }
}

fn segments(points: &[usize], n: usize) -> Vec<(usize, usize)> {
    let mut bounds: Vec<usize> = points.iter().copied().filter(|&c| c > 0 && c < n).collect();
    bounds.push(0);
    bounds.push(n);
    bounds.sort_unstable();
    bounds.dedup();
    bounds.windows(2).map(|w| (w[0], w[1])).collect()
}

/// Covering: per annotator, the length-weighted mean over its segments of the best Jaccard
/// overlap with a predicted segment; averaged over annotators.
pub fn covering(annotators: &[Vec<usize>], predictions: &[usize], n: usize) -> f64 {
    let predicted = segments(predictions, n);
    annotators
        .iter()
        .map(|a| {
            segments(a, n)
                .iter()
                .map(|&(a0, a1)| {
                    let best = predicted
                        .iter()
                        .filter_map(|&(p0, p1)| {
                            let inter = a1.min(p1).saturating_sub(a0.max(p0));
                            (inter > 0).then(|| inter as f64 / (a1.max(p1) - a0.min(p0)) as f64)
                        })
                        .fold(0.0, f64::max);
                    (a1 - a0) as f64 * best
                })
                .sum::<f64>()
                / n as f64
        })
        .sum::<f64>()
        / annotators.len() as f64
}

/// Change points from per-row verdicts: each row that is an anomaly after one that is not
/// starts a change, reported `lag` rows after it began.
pub fn change_points(anomalous: &[bool], lag: usize) -> Vec<usize> {
    (0..anomalous.len())
        .filter(|&i| anomalous[i] && (i == 0 || !anomalous[i - 1]))
        .filter_map(|i| i.checked_sub(lag))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_on_a_worked_example() {
        let annotators = vec![vec![10, 50], vec![12], vec![]];
        let pred = [11, 30];
        // predictions {0, 11, 30}; union {0, 10, 12, 50}: 0 and 11 (to 10) match → P = 2/3
        // recall: {0,10,50} 2/3, {0,12} 2/2, {0} 1/1 → 8/9
        let want = 2.0 * (2.0 / 3.0) * (8.0 / 9.0) / (2.0 / 3.0 + 8.0 / 9.0);
        assert!((f1(&annotators, &pred) - want).abs() < 1e-12);
        // covering with n = 100, no annotated points: one segment, best overlap (30, 100)
        let c = covering(&[vec![]], &pred, 100);
        assert!((c - 0.7).abs() < 1e-12, "{c}");
        assert_eq!(
            change_points(&[false, true, true, false, true], 1),
            vec![0, 3]
        );
        assert_eq!(clean(&[0, 5, 5, 99, 3], 100), vec![3, 5]);
    }
}
