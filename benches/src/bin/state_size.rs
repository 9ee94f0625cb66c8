//! Each detector's state estimate against the memory its state takes, measured: for three
//! settings of every detector, builds as many keys' detectors as make about 200 MB of
//! estimate (at most 20 000), feeds each enough events to fill its windows, buffers and
//! trees, and divides the growth of the process's resident memory by the keys.
//!
//!     cargo build --release && ./target/release/state_size [FAMILY.DETECTOR ...]
//!
//! Prints one JSON object per case: the detector's `estimate`, what the engine's budget
//! counts for it (`budgeted`: an eighth more for the allocator) and the `measured` bytes
//! per key, and estimate / measured. The budgeted figure must not be below the measured
//! one (`docs/state-budget.md`). Run alone: the measure is the whole process's memory.

use adr_benches::{release_plugins, series};
use adr_engine::plugins::Registry;
use adr_sdk::score::ScoreColumns;
use adr_sdk::{Column, Frame, ParamValue};

/// (detector, parameters, inputs, events to fill it)
type Case = (&'static str, Vec<(&'static str, ParamValue)>, usize, usize);

fn cases() -> Vec<Case> {
    use ParamValue::{Bool, Int, Text};
    vec![
        ("statistical.zscore", vec![("window", Int(60))], 1, 200),
        ("statistical.zscore", vec![("window", Int(500))], 1, 1000),
        (
            "statistical.zscore",
            vec![("window", Int(5000)), ("robust", Bool(true))],
            1,
            6000,
        ),
        ("statistical.mad", vec![("window", Int(60))], 1, 200),
        ("statistical.mad", vec![("window", Int(1000))], 1, 2000),
        ("statistical.mad", vec![("window", Int(10000))], 1, 12000),
        ("statistical.grubbs", vec![("window", Int(30))], 1, 100),
        ("statistical.grubbs", vec![("window", Int(100))], 1, 200),
        ("statistical.grubbs", vec![("window", Int(1000))], 1, 1100),
        ("realtime.ewma", vec![], 1, 100),
        ("realtime.bocpd", vec![("max_runs", Int(8))], 1, 200),
        ("realtime.bocpd", vec![], 1, 3000),
        ("realtime.bocpd", vec![("max_runs", Int(5000))], 1, 8000),
        ("realtime.spot", vec![("init", Int(100))], 1, 2000),
        (
            "realtime.spot",
            vec![("init", Int(1000)), ("depth", Int(50))],
            1,
            5000,
        ),
        (
            "realtime.spot",
            vec![("init", Int(5000)), ("side", Text("both".into()))],
            1,
            20000,
        ),
        (
            "realtime.half_space_trees",
            vec![("trees", Int(5)), ("height", Int(6)), ("window", Int(50))],
            1,
            200,
        ),
        ("realtime.half_space_trees", vec![], 1, 600),
        (
            "realtime.half_space_trees",
            vec![("trees", Int(25)), ("height", Int(10))],
            2,
            600,
        ),
        (
            "realtime.random_cut_forest",
            vec![("trees", Int(5)), ("size", Int(64))],
            1,
            100,
        ),
        ("realtime.random_cut_forest", vec![], 1, 300),
        (
            "realtime.random_cut_forest",
            vec![("trees", Int(40)), ("size", Int(512)), ("shingle", Int(4))],
            1,
            600,
        ),
        (
            "realtime.subsequence_knn",
            vec![("length", Int(10)), ("memory", Int(100))],
            1,
            300,
        ),
        ("realtime.subsequence_knn", vec![], 1, 1200),
        (
            "realtime.subsequence_knn",
            vec![("length", Int(50)), ("memory", Int(5000))],
            1,
            6000,
        ),
        ("realtime.quantile", vec![("window", Int(100))], 1, 200),
        ("realtime.quantile", vec![], 1, 1200),
        ("realtime.quantile", vec![("window", Int(20000))], 1, 21000),
        (
            "ml.isolation_forest",
            vec![("train", Int(256)), ("trees", Int(20))],
            2,
            300,
        ),
        ("ml.isolation_forest", vec![], 3, 1100),
        (
            "ml.isolation_forest",
            vec![
                ("train", Int(5000)),
                ("trees", Int(200)),
                ("max_samples", Int(512)),
            ],
            4,
            5100,
        ),
        ("ml.lof", vec![("train", Int(100)), ("k", Int(10))], 2, 150),
        ("ml.lof", vec![], 3, 1100),
        ("ml.lof", vec![("train", Int(5000))], 4, 5100),
        ("ml.hbos", vec![("train", Int(100))], 2, 150),
        ("ml.hbos", vec![], 3, 1100),
        (
            "ml.hbos",
            vec![("train", Int(5000)), ("n_bins", Int(50))],
            8,
            5100,
        ),
        ("ml.pca", vec![("train", Int(100))], 2, 150),
        ("ml.pca", vec![], 4, 1100),
        ("ml.pca", vec![("train", Int(5000))], 16, 5100),
        ("ml.one_class_svm", vec![("train", Int(100))], 2, 150),
        (
            "ml.one_class_svm",
            vec![("train", Int(500)), ("cache_mb", Int(1))],
            3,
            600,
        ),
        (
            "ml.one_class_svm",
            vec![("train", Int(2000)), ("approximate", Bool(true))],
            4,
            2100,
        ),
        ("ml.ecod", vec![("train", Int(100))], 2, 150),
        ("ml.ecod", vec![], 3, 1100),
        ("ml.ecod", vec![("train", Int(5000))], 8, 5100),
        ("realtime.kmeans", vec![("k", Int(5))], 2, 100),
        (
            "realtime.likelihood",
            vec![("long", Int(100)), ("min_points", Int(50))],
            1,
            200,
        ),
        ("realtime.likelihood", vec![], 1, 9000),
        ("realtime.range_break", vec![("memory", Int(1000))], 1, 2000),
        ("realtime.adwin", vec![], 1, 5000),
        ("realtime.cusum", vec![], 1, 100),
        ("realtime.page_hinkley", vec![], 1, 100),
    ]
}

/// The process's resident memory, in bytes.
fn resident() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("/proc/self/statm");
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .expect("resident pages");
    pages * 4096
}

fn measure(
    registry: &Registry,
    (name, params, inputs, events): &Case,
    values: &[f64],
) -> serde_json::Value {
    let params: Vec<(String, ParamValue)> = params
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect();
    let names: Vec<String> = (0..*inputs).map(|i| format!("x{i}")).collect();
    let probe = registry
        .create(name, &params, &names)
        .expect("the case's detector builds");
    let estimate = probe.state_bytes();
    drop(probe);
    let per_key_guess = estimate.unwrap_or(64 << 10).max(1);
    let keys = ((200u64 << 20) / per_key_guess).clamp(20, 20_000) as usize;
    // One frame per key, each from another offset of the series so keys differ.
    let ts: Vec<i64> = (0..*events as i64).map(|i| i * 1_000_000_000).collect();
    let before = resident();
    let mut held = Vec::with_capacity(keys);
    for k in 0..keys {
        let mut handle = registry.create(name, &params, &names).expect("builds");
        let columns: Vec<Vec<f64>> = (0..*inputs)
            .map(|c| {
                (0..*events)
                    .map(|i| values[(k * 7919 + c * 104_729 + i) % values.len()])
                    .collect()
            })
            .collect();
        let cols: Vec<Column<'_>> = names
            .iter()
            .zip(&columns)
            .map(|(n, v)| Column::f64(n, v))
            .collect();
        let frame = Frame::new(&ts, &cols).expect("frame");
        let mut scores = ScoreColumns::with_len(*events);
        handle.score(&frame, &mut scores.as_mut()).expect("scores");
        held.push(handle);
    }
    let measured = resident().saturating_sub(before) / keys as u64;
    drop(held);
    let case = params
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ");
    serde_json::json!({
        "detector": name,
        "params": case,
        "inputs": inputs,
        "keys": keys,
        "estimate": estimate,
        "budgeted": estimate.map(adr_engine::budget::with_allocator),
        "measured": measured,
        "ratio": estimate.map(|e| e as f64 / measured.max(1) as f64),
    })
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // Each case in a process of its own: memory freed by one case stays resident for the
    // allocator to reuse, and would hide the next case's growth.
    if let [flag, index] = &args[..] {
        if flag == "--case" {
            let case = &cases()[index.parse::<usize>().expect("a case index")];
            let registry = release_plugins();
            let (values, _) = series(100_000);
            println!("{}", measure(&registry, case, &values));
            return;
        }
    }
    let me = std::env::current_exe().expect("this program's path");
    for (i, case) in cases().iter().enumerate() {
        if !args.is_empty() && !args.iter().any(|o| o == case.0) {
            continue;
        }
        let out = std::process::Command::new(&me)
            .args(["--case", &i.to_string()])
            .output()
            .expect("the case runs");
        assert!(
            out.status.success(),
            "{}: {}",
            case.0,
            String::from_utf8_lossy(&out.stderr)
        );
        print!("{}", String::from_utf8_lossy(&out.stdout));
    }
}
