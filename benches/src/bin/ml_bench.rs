//! The Rust side of `benches/peers/compare_ml.py`: times adr's ML detectors through the
//! plugin boundary on the peer harness's `blobs_<n>` input (n × 8), with the peers'
//! settings and timing split, and prints one JSON object per case.
//!
//!     ml_bench [CASE N]...     e.g. ml_bench isolation_forest 100000 lof 10000
//!
//! Without arguments: every case at 10 000 rows. `fit_s` is the call that takes the n rows
//! as training events (the model fits on the last one, its training scores included, as
//! the peers' `fit` computes them); `score_s` scores the same n rows again, as the peers
//! score them. Each figure is the median of 3 to 15 runs (about 2 s in all; 1 run when a
//! run takes over 10 s), after an untimed warm-up on the first 2 000 rows.
//!
//! `one_class_svm_approximate`: the one-class SVM's linear-time variant, the same settings.
//! `isolation_forest_one_row`: a forest fitted on the n rows, then `update` with one event
//! at a time through the plugin boundary: p50 and p99 of 1 000 calls after 20 warm-up calls.
//! `isolation_forest_memory`: the peak resident memory the fit adds beyond the input
//! (Linux: `/proc/self/clear_refs` resets the peak, `VmHWM` reads it).

use std::time::Instant;

use adr_benches::{blobs, release_plugins};
use adr_engine::plugins::Registry;
use adr_sdk::host::DetectorHandle;
use adr_sdk::score::ScoreColumns;
use adr_sdk::{Column, Event, Frame, ParamValue};

const D: usize = 8;

/// The peers' settings per case (`../shared/tools/peers/README.md`).
fn settings(case: &str) -> (&'static str, Vec<(&'static str, ParamValue)>) {
    let text = |s: &str| ParamValue::Text(s.into());
    match case {
        "isolation_forest" | "isolation_forest_one_row" | "isolation_forest_memory" => (
            "isolation_forest",
            vec![
                ("trees", ParamValue::Int(100)),
                ("max_samples", ParamValue::Int(256)),
            ],
        ),
        "lof" => ("lof", vec![("k", ParamValue::Int(20))]),
        "one_class_svm" => (
            "one_class_svm",
            vec![
                ("kernel", text("rbf")),
                ("nu", ParamValue::Float(0.01)),
                ("gamma", text("scale")),
            ],
        ),
        "one_class_svm_approximate" => (
            "one_class_svm",
            vec![
                ("kernel", text("rbf")),
                ("nu", ParamValue::Float(0.01)),
                ("gamma", text("scale")),
                ("approximate", ParamValue::Bool(true)),
            ],
        ),
        "knn" => (
            "knn",
            vec![("k", ParamValue::Int(5)), ("method", text("largest"))],
        ),
        "hbos" => ("hbos", vec![("n_bins", ParamValue::Int(10))]),
        "ecod" => ("ecod", vec![]),
        "copod" => ("copod", vec![]),
        other => panic!("unknown case {other}"),
    }
}

/// Column-major copies of the first `n` rows, as a frame carries them.
fn columns(rows: &[f64], n: usize) -> Vec<Vec<f64>> {
    (0..D)
        .map(|c| rows[..n * D].iter().skip(c).step_by(D).copied().collect())
        .collect()
}

struct Input {
    names: Vec<String>,
    columns: Vec<Vec<f64>>,
    timestamps: Vec<i64>,
}

impl Input {
    fn new(rows: &[f64], n: usize) -> Input {
        Input {
            names: (0..D).map(|c| format!("x{c}")).collect(),
            columns: columns(rows, n),
            timestamps: (0..n as i64).collect(),
        }
    }

    fn len(&self) -> usize {
        self.timestamps.len()
    }

    fn score(&self, handle: &mut DetectorHandle, out: &mut ScoreColumns) {
        let cols: Vec<Column<'_>> = self
            .names
            .iter()
            .zip(&self.columns)
            .map(|(n, c)| Column::f64(n, c))
            .collect();
        let frame = Frame::new(&self.timestamps, &cols).expect("frame");
        handle.score(&frame, &mut out.as_mut()).expect("scores");
    }
}

fn detector(registry: &Registry, case: &str, input: &Input) -> DetectorHandle {
    let (name, params) = settings(case);
    let mut params: Vec<(String, ParamValue)> =
        params.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
    params.push(("train".into(), ParamValue::Int(input.len() as i64)));
    registry
        .create(&format!("ml.{name}"), &params, &input.names)
        .expect("detector builds")
}

/// Median seconds of (fit, score) and the runs: 3 to 15, about 2 s, 1 over 10 s.
fn fit_and_score(registry: &Registry, case: &str, input: &Input) -> (f64, f64, usize) {
    let mut out = ScoreColumns::with_len(input.len());
    let (mut fits, mut scores) = (Vec::new(), Vec::new());
    let started = Instant::now();
    loop {
        let mut handle = detector(registry, case, input);
        let t = Instant::now();
        input.score(&mut handle, &mut out);
        fits.push(t.elapsed().as_secs_f64());
        let t = Instant::now();
        input.score(&mut handle, &mut out);
        scores.push(t.elapsed().as_secs_f64());
        assert!(
            out.raw.iter().all(|s| s.is_finite()),
            "{case}: every row scored"
        );
        let spent = started.elapsed().as_secs_f64();
        if fits.len() >= 15 || (fits.len() >= 3 && spent > 2.0) || (fits.len() == 1 && spent > 10.0)
        {
            break;
        }
    }
    let median = |xs: &mut Vec<f64>| {
        xs.sort_by(f64::total_cmp);
        xs[xs.len() / 2]
    };
    let runs = fits.len();
    (median(&mut fits), median(&mut scores), runs)
}

/// p50 and p99 seconds of one `update` call on a fitted forest.
fn one_row(registry: &Registry, input: &Input, rows: &[f64]) -> (f64, f64) {
    let mut handle = detector(registry, "isolation_forest_one_row", input);
    input.score(&mut handle, &mut ScoreColumns::with_len(input.len()));
    let mut times = Vec::with_capacity(1000);
    for i in 0..1020 {
        let row = &rows[(i % input.len()) * D..][..D];
        let t = Instant::now();
        let s = handle.update(&Event::new(i as i64, row)).expect("scores");
        let elapsed = t.elapsed().as_secs_f64();
        assert!(s.raw.is_finite());
        if i >= 20 {
            times.push(elapsed);
        }
    }
    times.sort_by(f64::total_cmp);
    (times[499], times[989])
}

/// KiB from a `/proc/self/status` line.
fn status_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Peak resident memory the fit adds beyond what was resident before it, in MiB.
fn fit_memory(registry: &Registry, input: &Input) -> Option<f64> {
    let mut out = ScoreColumns::with_len(input.len());
    let mut handle = detector(registry, "isolation_forest_memory", input);
    std::fs::write("/proc/self/clear_refs", "5").ok()?;
    let before = status_kib("VmRSS:")?;
    input.score(&mut handle, &mut out);
    let peak = status_kib("VmHWM:")?;
    Some(peak.saturating_sub(before) as f64 / 1024.0)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let cases: Vec<(String, usize)> = if args.is_empty() {
        [
            "isolation_forest",
            "isolation_forest_one_row",
            "lof",
            "one_class_svm",
            "hbos",
            "ecod",
            "copod",
            "knn",
        ]
        .iter()
        .map(|c| ((*c).to_owned(), 10_000))
        .collect()
    } else {
        args.chunks(2)
            .map(|p| {
                (
                    p[0].clone(),
                    p.get(1).map_or(10_000, |n| n.parse().expect("N")),
                )
            })
            .collect()
    };
    let registry = release_plugins();
    let threads = rayon::current_num_threads();
    for (case, n) in cases {
        let (rows, source) = blobs(n);
        let warm = Input::new(&rows, 2000);
        let input = Input::new(&rows, n);
        let (name, params) = settings(&case);
        let params: serde_json::Map<String, serde_json::Value> = params
            .iter()
            .map(|(k, v)| ((*k).to_owned(), serde_json::Value::String(v.to_string())))
            .collect();
        let mut line = serde_json::json!({
            "case": case, "detector": format!("ml.{name}"), "n": n, "d": D,
            "params": params, "threads": threads, "input": source,
        });
        match case.as_str() {
            "isolation_forest_one_row" => {
                let (p50, p99) = one_row(&registry, &input, &rows);
                line["p50_s"] = p50.into();
                line["p99_s"] = p99.into();
            }
            "isolation_forest_memory" => {
                let input_mib = (n * D * 8) as f64 / (1 << 20) as f64;
                line["input_mib"] = input_mib.into();
                line["fit_peak_beyond_mib"] = fit_memory(&registry, &input).into();
            }
            _ => {
                fit_and_score(&registry, &case, &warm);
                let (fit, score, runs) = fit_and_score(&registry, &case, &input);
                line["fit_s"] = fit.into();
                line["score_s"] = score.into();
                line["total_s"] = (fit + score).into();
                line["repeats"] = runs.into();
            }
        }
        println!("{line}");
    }
}
