//! The statistical detectors against an independent numpy/scipy implementation of the
//! textbook formulas (`tests/reference/statistical.py`, versions pinned beside it), on
//! real NAB series, through the real plugin loader: raw scores within 1e-9 relative
//! (plus 1e-12 absolute, for scores that are zero up to rounding) and identical verdicts.
//!
//! Needs `../shared/data` and a Python with the pinned packages in `ADR_REFERENCE_PYTHON`
//! (`.ci/run` sets both up); skips with a note where either is missing, fails instead
//! under `ADR_REQUIRE_SHARED_DATA=1`.

use std::path::PathBuf;

use adr_engine::io::{Chunk, CsvInput, CsvOptions, UnsortedPolicy};
use adr_engine::plugins::{Registry, SearchPath};
use adr_sdk::{score::ScoreColumns, Column, Frame, ParamValue, Verdict};
use adr_tests::{
    built, hostile_series, plugin_dir, python_json, reference_python, shared_data, workspace,
    write_series,
};

const SERIES: [&str; 4] = [
    "realKnownCause/nyc_taxi.csv",
    "artificialWithAnomaly/art_daily_jumpsup.csv",
    "realAWSCloudwatch/ec2_cpu_utilization_825cc2.csv",
    "realTweets/Twitter_volume_AAPL.csv",
];

/// Case name in the reference output → detector, parameters, rows scored.
/// (case, detector, params, rows)
type Case = (
    &'static str,
    &'static str,
    Vec<(&'static str, ParamValue)>,
    Option<usize>,
);

fn cases() -> Vec<Case> {
    use ParamValue::{Bool, Int, Text};
    let batch = || Text("batch".into());
    vec![
        (
            "zscore window=500",
            "zscore",
            vec![("window", Int(500))],
            None,
        ),
        (
            "zscore window=500 robust=true",
            "zscore",
            vec![("window", Int(500)), ("robust", Bool(true))],
            None,
        ),
        (
            "zscore window=batch",
            "zscore",
            vec![("window", batch())],
            None,
        ),
        ("mad window=500", "mad", vec![("window", Int(500))], None),
        ("iqr window=500", "iqr", vec![("window", Int(500))], None),
        (
            "tukey window=500 fence=outer",
            "tukey",
            vec![("window", Int(500)), ("fence", Text("outer".into()))],
            None,
        ),
        (
            "grubbs window=batch",
            "grubbs",
            vec![("window", batch())],
            None,
        ),
        (
            "grubbs window=100 (first 3000 rows)",
            "grubbs",
            vec![("window", Int(100))],
            Some(3000),
        ),
        (
            "esd window=batch max_outliers=10",
            "esd",
            vec![("window", batch()), ("max_outliers", Int(10))],
            None,
        ),
        (
            "esd window=100 max_outliers=10 (first 3000 rows)",
            "esd",
            vec![("window", Int(100)), ("max_outliers", Int(10))],
            Some(3000),
        ),
        (
            "dixon_q window=10 (first 3000 rows)",
            "dixon_q",
            vec![("window", Int(10))],
            Some(3000),
        ),
    ]
}

fn read_series(path: &std::path::Path) -> (Vec<i64>, Vec<f64>) {
    let options = CsvOptions {
        columns: vec!["value".into()],
        unsorted: UnsortedPolicy::Allow,
        ..Default::default()
    };
    let mut input = CsvInput::open(std::fs::File::open(path).unwrap(), &options).unwrap();
    let (mut ts, mut values, mut chunk) = (Vec::new(), Vec::new(), Chunk::default());
    while input.read_chunk(&mut chunk).unwrap() > 0 {
        ts.extend_from_slice(&chunk.timestamps);
        values.extend_from_slice(&chunk.columns[0]);
    }
    (ts, values)
}

#[test]
fn statistical_detectors_match_numpy_and_scipy_on_nab() {
    let Some(data) = shared_data("statistical reference comparison") else {
        return;
    };
    let Some(python) = reference_python("statistical reference comparison") else {
        return;
    };
    // Real series, and seeded series of the shapes that break detectors at the edges
    // (1e100, 1e-140, integer ties, constant runs, a ramp, Cauchy tails): the same
    // comparison on both, so the edges are held to the reference too.
    let generated = tempfile::tempdir().unwrap();
    let files: Vec<PathBuf> = SERIES
        .iter()
        .map(|s| data.join("nab/data").join(s))
        .chain(
            hostile_series(2000, 20)
                .into_iter()
                .map(|(name, values)| write_series(generated.path(), name, &values)),
        )
        .collect();
    let script = workspace().join("tests/reference/statistical.py");
    let args: Vec<&std::path::Path> = std::iter::once(script.as_path())
        .chain(files.iter().map(PathBuf::as_path))
        .collect();
    let reference = python_json(&python, &args);
    eprintln!("reference versions: {}", reference["versions"]);

    let dir = plugin_dir(&[&built().statistical]);
    let registry = Registry::load(&SearchPath::explicit([dir.path().to_path_buf()])).unwrap();
    let mut failures = Vec::new();
    for file in &files {
        let (ts, values) = read_series(file);
        let series = &reference["series"][file.to_str().unwrap()];
        for (case, detector, params, rows) in cases() {
            let n = rows.unwrap_or(values.len()).min(values.len());
            let params: Vec<(String, ParamValue)> =
                params.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
            let mut handle = registry
                .create(
                    &format!("statistical.{detector}"),
                    &params,
                    &["value".into()],
                )
                .unwrap();
            let cols = [Column::f64("value", &values[..n])];
            let frame = Frame::new(&ts[..n], &cols).unwrap();
            let mut ours = ScoreColumns::with_len(n);
            handle.score(&frame, &mut ours.as_mut()).unwrap();

            let want_raw = series[case]["raw"]
                .as_array()
                .unwrap_or_else(|| panic!("{case} missing"));
            let want_verdict = series[case]["verdict"].as_array();
            assert_eq!(want_raw.len(), n, "{case}");
            let (mut worst, mut compared, mut flagged) = (0.0f64, 0, 0);
            for i in 0..n {
                let got = ours.get(i);
                let want = match &want_raw[i] {
                    serde_json::Value::Null => None,
                    serde_json::Value::String(s) if s == "inf" => Some(f64::INFINITY),
                    v => Some(v.as_f64().unwrap()),
                };
                let where_ = format!("{case} on {} row {}", file.display(), i + 1);
                match want {
                    None if got.verdict == Verdict::Undetermined => continue,
                    None => failures.push(format!("{where_}: reference undetermined, adr {got:?}")),
                    Some(w) if w.is_infinite() => {
                        if got.raw != w {
                            failures.push(format!("{where_}: want inf, got {}", got.raw));
                        }
                    }
                    Some(w) => {
                        let err = (got.raw - w).abs();
                        if err.is_nan() || err > 1e-9 * w.abs() + 1e-12 {
                            failures.push(format!("{where_}: want {w}, got {}", got.raw));
                        }
                        if w != 0.0 {
                            worst = worst.max(err / w.abs());
                        }
                    }
                }
                compared += 1;
                if let Some(verdicts) = want_verdict {
                    let want_anomaly = verdicts[i].as_bool().unwrap_or(false);
                    flagged += usize::from(want_anomaly);
                    if want_anomaly != (got.verdict == Verdict::Anomaly) {
                        failures.push(format!(
                            "{where_}: reference verdict anomaly={want_anomaly}, adr {:?}",
                            got.verdict
                        ));
                    }
                }
            }
            eprintln!(
                "{:<52} {:<48} {compared:>6} rows, max rel err {worst:.1e}{}",
                case,
                file.file_name().unwrap().to_string_lossy(),
                if want_verdict.is_some() {
                    format!(", {flagged} flagged")
                } else {
                    String::new()
                }
            );
        }
    }
    assert!(
        failures.is_empty(),
        "{} mismatches, first ones:\n{}",
        failures.len(),
        failures[..failures.len().min(20)].join("\n")
    );
}
