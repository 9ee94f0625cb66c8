//! The realtime change detectors against River (`tests/reference/realtime.py`, version
//! pinned beside it) on real NAB series, through the real plugin loader: Page-Hinkley and
//! ADWIN must raise their alarms on exactly the rows where River raises its drift flag.
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
    "realKnownCause/machine_temperature_system_failure.csv",
    "realAWSCloudwatch/ec2_cpu_utilization_825cc2.csv",
    "artificialWithAnomaly/art_daily_jumpsup.csv",
];

/// (case name in the reference output, detector, parameters)
type Case = (&'static str, &'static str, Vec<(&'static str, ParamValue)>);

fn cases() -> Vec<Case> {
    use ParamValue::{Float, Int};
    vec![
        ("page_hinkley", "page_hinkley", vec![]),
        (
            "page_hinkley threshold=5 delta=0.05",
            "page_hinkley",
            vec![("threshold", Float(5.0)), ("delta", Float(0.05))],
        ),
        (
            "page_hinkley threshold=4 delta=0 alpha=1 min_instances=1",
            "page_hinkley",
            vec![
                ("threshold", Float(4.0)),
                ("delta", Float(0.0)),
                ("alpha", Float(1.0)),
                ("min_points", Int(1)),
            ],
        ),
        ("adwin", "adwin", vec![]),
        (
            "adwin delta=0.05 clock=8",
            "adwin",
            vec![("delta", Float(0.05)), ("clock", Int(8))],
        ),
    ]
}

fn values(path: &std::path::Path) -> Vec<f64> {
    let options = CsvOptions {
        columns: vec!["value".into()],
        unsorted: UnsortedPolicy::Allow,
        ..Default::default()
    };
    let mut input = CsvInput::open(std::fs::File::open(path).unwrap(), &options).unwrap();
    let (mut values, mut chunk) = (Vec::new(), Chunk::default());
    while input.read_chunk(&mut chunk).unwrap() > 0 {
        values.extend_from_slice(&chunk.columns[0]);
    }
    values
}

#[test]
fn page_hinkley_and_adwin_alarm_where_river_does_on_nab() {
    let Some(data) = shared_data("realtime reference comparison") else {
        return;
    };
    let Some(python) = reference_python("realtime reference comparison") else {
        return;
    };
    // Small even integers: Page-Hinkley's sums tie with its threshold of 4, where alarming
    // at `≥` instead of River's `>` moved every later alarm one row earlier.
    let ties = tempfile::tempdir().unwrap();
    let integers = ties.path().join("integers.csv");
    let mut text = String::from("timestamp,value\n");
    for i in 0..600u64 {
        text.push_str(&format!("{i},{}\n", (i * 7919) % 5 * 2));
    }
    std::fs::write(&integers, text).unwrap();
    let files: Vec<PathBuf> = SERIES
        .iter()
        .map(|s| data.join("nab/data").join(s))
        .chain([integers])
        .chain(
            hostile_series(3000, 7)
                .into_iter()
                .map(|(name, values)| write_series(ties.path(), name, &values)),
        )
        .collect();
    let script = workspace().join("tests/reference/realtime.py");
    let args: Vec<&std::path::Path> = std::iter::once(script.as_path())
        .chain(files.iter().map(PathBuf::as_path))
        .collect();
    let reference = python_json(&python, &args);
    eprintln!("reference versions: {}", reference["versions"]);
    let dir = plugin_dir(&[&built().realtime]);
    let registry = Registry::load(&SearchPath::explicit([dir.path().to_path_buf()])).unwrap();
    let mut total = 0;
    for file in &files {
        let xs = values(file);
        let ts: Vec<i64> = (0..xs.len() as i64).collect();
        for (case, detector, params) in cases() {
            let params: Vec<(String, ParamValue)> =
                params.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
            let mut handle = registry
                .create(&format!("realtime.{detector}"), &params, &["value".into()])
                .unwrap();
            let cols = [Column::f64("value", &xs)];
            let frame = Frame::new(&ts, &cols).unwrap();
            let mut scores = ScoreColumns::with_len(xs.len());
            handle.score(&frame, &mut scores.as_mut()).unwrap();
            let ours: Vec<u64> = (0..xs.len())
                .filter(|&i| scores.get(i).verdict == Verdict::Anomaly)
                .map(|i| i as u64)
                .collect();
            let theirs: Vec<u64> = reference["series"][file.to_str().unwrap()][case]
                .as_array()
                .unwrap_or_else(|| panic!("{case} missing"))
                .iter()
                .map(|v| v.as_u64().unwrap())
                .collect();
            assert_eq!(ours, theirs, "{case} on {}", file.display());
            total += ours.len();
        }
    }
    eprintln!("{total} alarms, each on the row River raises it");
    assert!(total > 20, "the cases should raise alarms ({total})");
}

#[test]
fn subsequence_knn_with_one_neighbour_is_stumpys_left_matrix_profile() {
    const LENGTH: usize = 20;
    const ROWS: usize = 4000;
    let Some(data) = shared_data("subsequence_knn against stumpy") else {
        return;
    };
    let Some(python) = reference_python("subsequence_knn against stumpy") else {
        return;
    };
    let files: Vec<PathBuf> = SERIES[..2]
        .iter()
        .map(|s| data.join("nab/data").join(s))
        .collect();
    let script = workspace().join("tests/reference/matrix_profile.py");
    let (length, rows) = (LENGTH.to_string(), ROWS.to_string());
    let mut args: Vec<&std::ffi::OsStr> = vec![script.as_os_str(), length.as_ref(), rows.as_ref()];
    args.extend(files.iter().map(|f| f.as_os_str()));
    let reference = python_json(&python, &args);
    eprintln!("reference versions: {}", reference["versions"]);
    let dir = plugin_dir(&[&built().realtime]);
    let registry = Registry::load(&SearchPath::explicit([dir.path().to_path_buf()])).unwrap();
    let mut compared = 0;
    for file in &files {
        let xs: Vec<f64> = values(file).into_iter().take(ROWS).collect();
        let ts: Vec<i64> = (0..xs.len() as i64).collect();
        let params = [
            ("length".to_owned(), ParamValue::Int(LENGTH as i64)),
            ("k".to_owned(), ParamValue::Int(1)),
            ("memory".to_owned(), ParamValue::Int(ROWS as i64)),
        ];
        let mut handle = registry
            .create("realtime.subsequence_knn", &params, &["value".into()])
            .unwrap();
        let cols = [Column::f64("value", &xs)];
        let mut scores = ScoreColumns::with_len(xs.len());
        handle
            .score(&Frame::new(&ts, &cols).unwrap(), &mut scores.as_mut())
            .unwrap();
        let theirs = reference["series"][file.to_str().unwrap()]
            .as_array()
            .expect("a profile");
        assert_eq!(theirs.len(), xs.len() - LENGTH + 1);
        let mut undetermined = 0;
        for (start, want) in theirs.iter().enumerate() {
            let ours = scores.get(start + LENGTH - 1).raw;
            match want.as_f64() {
                None => assert!(ours.is_nan(), "window {start}: {ours}, stumpy none"),
                Some(_) if ours.is_nan() => undetermined += 1,
                Some(want) => {
                    assert!(
                        (ours - want).abs() <= 1e-9 * want.max(1.0),
                        "window {start} of {}: {ours} vs stumpy {want}",
                        file.display()
                    );
                    compared += 1;
                }
            }
        }
        // the first judged window has no mean distance to normalise by yet
        assert_eq!(undetermined, 1, "{}", file.display());
    }
    eprintln!("{compared} windows equal to stumpy's left matrix profile");
    assert!(compared > 7000);
}

#[test]
fn kmeans_moves_its_centres_as_rivers_does() {
    const ROWS: usize = 5000;
    let Some(data) = shared_data("kmeans against River") else {
        return;
    };
    let Some(python) = reference_python("kmeans against River") else {
        return;
    };
    // machine temperature, CPU utilisation and a synthetic series: values that are not
    // integers, so that no two centres are exactly as near (River sums in another order)
    let files: Vec<PathBuf> = SERIES[1..]
        .iter()
        .map(|s| data.join("nab/data").join(s))
        .collect();
    let script = workspace().join("tests/reference/kmeans.py");
    let rows = ROWS.to_string();
    let mut args: Vec<&std::ffi::OsStr> = vec![script.as_os_str(), rows.as_ref()];
    args.extend(files.iter().map(|f| f.as_os_str()));
    let reference = python_json(&python, &args);
    eprintln!("reference versions: {}", reference["versions"]);
    let dir = plugin_dir(&[&built().realtime]);
    let registry = Registry::load(&SearchPath::explicit([dir.path().to_path_buf()])).unwrap();
    use ParamValue::{Float, Int};
    let cases = [
        ("defaults", 5, vec![]),
        (
            "k=3 halflife=0.1 p=1",
            3,
            vec![("k", Int(3)), ("halflife", Float(0.1)), ("p", Float(1.0))],
        ),
        (
            "k=4 halflife=0.3 p=3",
            4,
            vec![("k", Int(4)), ("halflife", Float(0.3)), ("p", Float(3.0))],
        ),
    ];
    let mut compared = 0;
    for file in &files {
        let xs: Vec<f64> = values(file).into_iter().take(ROWS).collect();
        let (level, change): (Vec<f64>, Vec<f64>) =
            xs.windows(2).map(|w| (w[1], w[1] - w[0])).unzip();
        let ts: Vec<i64> = (0..level.len() as i64).collect();
        let cols = [Column::f64("v", &level), Column::f64("d", &change)];
        for (case, k, params) in &cases {
            let params: Vec<(String, ParamValue)> = params
                .iter()
                .map(|(n, v)| ((*n).to_owned(), v.clone()))
                .collect();
            let mut handle = registry
                .create("realtime.kmeans", &params, &["v".into(), "d".into()])
                .unwrap();
            let mut scores = ScoreColumns::with_len(level.len());
            handle
                .score(&Frame::new(&ts, &cols).unwrap(), &mut scores.as_mut())
                .unwrap();
            let theirs = reference["series"][file.to_str().unwrap()][case]
                .as_array()
                .unwrap_or_else(|| panic!("{case} missing"));
            assert_eq!(theirs.len(), level.len() - k, "{case}");
            for row in 0..*k {
                assert!(scores.get(row).raw.is_nan(), "{case}: seeding row {row}");
            }
            let mut undetermined = 0;
            for (i, want) in theirs.iter().enumerate() {
                let want = want.as_f64().unwrap();
                let ours = scores.get(k + i).raw;
                if ours.is_nan() {
                    undetermined += 1;
                    continue;
                }
                assert!(
                    (ours - want).abs() <= 1e-9 * want.max(1.0),
                    "{case}, row {} of {}: {ours} vs River {want}",
                    k + i,
                    file.display()
                );
                compared += 1;
            }
            // the first judged row has no mean distance to normalise by yet
            assert!(undetermined <= 1, "{case}: {undetermined} undetermined");
        }
    }
    eprintln!("{compared} distances equal to River's");
    assert!(compared > 35_000);
}
