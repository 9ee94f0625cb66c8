//! Bad input to every `ml.*` detector, through the plugin boundary: each case gets a clear
//! error or a stated behaviour, and the detector keeps working afterwards.

use adr_engine::plugins::{Registry, SearchPath};
use adr_sdk::host::DetectorHandle;
use adr_sdk::score::ScoreColumns;
use adr_sdk::{Column, Event, Frame, ParamValue, Verdict};
use adr_tests::{built, plugin_dir};

const DETECTORS: [&str; 8] = [
    "copod",
    "ecod",
    "hbos",
    "isolation_forest",
    "knn",
    "lof",
    "one_class_svm",
    "pca",
];

fn registry() -> Registry {
    let plugins = plugin_dir(&[&built().ml]);
    Registry::load(&SearchPath::explicit([plugins.path().to_path_buf()])).unwrap()
}

fn create(registry: &Registry, detector: &str, train: i64, inputs: usize) -> DetectorHandle {
    let names: Vec<String> = (0..inputs).map(|c| format!("x{c}")).collect();
    let params = [("train".to_owned(), ParamValue::Int(train))];
    registry
        .create(&format!("ml.{detector}"), &params, &names)
        .unwrap_or_else(|e| panic!("ml.{detector}: {e}"))
}

/// Scores columns (`columns[c][i]`) in one frame.
fn score(handle: &mut DetectorHandle, columns: &[Vec<f64>]) -> Result<ScoreColumns, String> {
    let names: Vec<String> = (0..columns.len()).map(|c| format!("x{c}")).collect();
    let cols: Vec<Column<'_>> = names
        .iter()
        .zip(columns)
        .map(|(n, c)| Column::f64(n, c))
        .collect();
    let n = columns.first().map_or(0, Vec::len);
    let ts: Vec<i64> = (0..n as i64).collect();
    let frame = Frame::new(&ts, &cols).map_err(|e| e.to_string())?;
    let mut out = ScoreColumns::with_len(n);
    handle
        .score(&frame, &mut out.as_mut())
        .map_err(|e| e.to_string())?;
    Ok(out)
}

/// `n` rows on 2 inputs: a spread of values, the last row far away on both.
fn rows(n: usize) -> Vec<Vec<f64>> {
    let mut a: Vec<f64> = (0..n).map(|i| ((i * 37) % 17) as f64 / 4.0).collect();
    let mut b: Vec<f64> = (0..n).map(|i| ((i * 11) % 13) as f64 / 3.0).collect();
    (a[n - 1], b[n - 1]) = (40.0, 40.0);
    vec![a, b]
}

#[test]
fn no_inputs_and_too_few_training_rows_are_refused_when_built() {
    let registry = registry();
    for detector in DETECTORS {
        let err = registry
            .create(&format!("ml.{detector}"), &[], &[])
            .unwrap_err();
        assert!(err.to_string().contains("input"), "ml.{detector}: {err}");
    }
    for detector in ["knn", "lof"] {
        let params = [("train".to_owned(), ParamValue::Int(3))];
        let err = registry
            .create(&format!("ml.{detector}"), &params, &["x".into()])
            .unwrap_err();
        assert!(
            err.to_string().contains("train must be more than k"),
            "{err}"
        );
    }
}

#[test]
fn nan_rows_are_neither_judged_nor_trained_on() {
    let registry = registry();
    for detector in DETECTORS {
        let mut handle = create(&registry, detector, 40, 2);
        let mut columns = rows(60);
        // Rows 3 and 45 have a NaN and an infinity: 41 rows pass before the model fits.
        columns[0][3] = f64::NAN;
        columns[1][45] = f64::INFINITY;
        let out = score(&mut handle, &columns).unwrap();
        let undetermined: Vec<usize> = (0..60)
            .filter(|&i| out.verdict[i] == Verdict::Undetermined)
            .collect();
        let mut want: Vec<usize> = (0..41).collect();
        want.push(45);
        assert_eq!(undetermined, want, "ml.{detector}");
        assert!(out.raw[41..]
            .iter()
            .enumerate()
            .all(|(k, s)| k + 41 == 45 || s.is_finite()));
        // The far row is past the alarm threshold.
        let last = out.normalised[59];
        assert!(last > 0.5, "ml.{detector}: the far row scores {last}");
    }
}

#[test]
fn constant_and_duplicate_training_rows_score_finitely() {
    let registry = registry();
    for detector in DETECTORS {
        // Input 0 is constant, input 1 repeats three values: many duplicate rows.
        let mut handle = create(&registry, detector, 30, 2);
        let a = vec![2.0; 40];
        let b: Vec<f64> = (0..40).map(|i| (i % 3) as f64).collect();
        let out = score(&mut handle, &[a, b]).unwrap();
        for i in 30..40 {
            assert!(
                out.raw[i].is_finite(),
                "ml.{detector} row {i}: {}",
                out.raw[i]
            );
        }
    }
    // PCA on rows with no variance at all has nothing to measure: the rows after the
    // training are undetermined (PyOD's scores are NaN), and the run goes on.
    let mut pca = create(&registry, "pca", 10, 2);
    let out = score(&mut pca, &[vec![1.0; 12], vec![3.0; 12]]).unwrap();
    assert!(
        out.verdict
            .iter()
            .all(|v| *v == adr_sdk::Verdict::Undetermined),
        "{:?}",
        out.verdict
    );
}

#[test]
fn a_frame_or_event_of_the_wrong_width_is_an_error_and_loses_nothing() {
    let registry = registry();
    for detector in DETECTORS {
        let mut handle = create(&registry, detector, 40, 2);
        score(&mut handle, &rows(60)).unwrap();
        let err = score(&mut handle, &rows(60)[..1]).unwrap_err();
        assert!(err.contains("input columns"), "ml.{detector}: {err}");
        let err = handle
            .update(&Event::new(100, &[1.0, 2.0, 3.0]))
            .unwrap_err();
        assert!(err.to_string().contains("3 values"), "ml.{detector}: {err}");
        // Still fitted and scoring.
        let s = handle.update(&Event::new(101, &[1.0, 2.0])).unwrap();
        assert!(s.raw.is_finite(), "ml.{detector}");
    }
}

#[test]
fn a_damaged_or_foreign_state_is_refused_and_the_model_is_kept() {
    let registry = registry();
    for detector in DETECTORS {
        let mut handle = create(&registry, detector, 40, 2);
        score(&mut handle, &rows(60)).unwrap();
        let before = handle.update(&Event::new(100, &[1.0, 2.0])).unwrap();
        let state = handle.save().unwrap().expect("a state");
        // Cut short, one byte changed in the header, and another detector's state.
        let cut = &state[..state.len() / 2];
        let mut flipped = state.clone();
        flipped[8] ^= 0xff;
        let other = if detector == "hbos" { "knn" } else { "hbos" };
        let mut foreign = create(&registry, other, 40, 2);
        score(&mut foreign, &rows(60)).unwrap();
        let foreign = foreign.save().unwrap().unwrap();
        for bad in [cut, &flipped[..], &foreign[..], &[][..]] {
            assert!(
                handle.restore(bad).is_err(),
                "ml.{detector} took a bad state"
            );
        }
        let after = handle.update(&Event::new(101, &[1.0, 2.0])).unwrap();
        assert_eq!(before.raw, after.raw, "ml.{detector} changed");
        // Its own state restores into a fresh detector, which scores the same.
        let mut fresh = create(&registry, detector, 40, 2);
        fresh.restore(&state).unwrap();
        let again = fresh.update(&Event::new(102, &[1.0, 2.0])).unwrap();
        assert_eq!(again.raw, before.raw, "ml.{detector} after restore");
    }
}

#[test]
fn metrics_and_standardising_work_through_the_boundary() {
    let registry = registry();
    let names = ["x0".to_owned(), "x1".to_owned()];
    let scaled = |detector: &str, extra: Vec<(String, ParamValue)>| {
        let mut params = vec![
            ("train".to_owned(), ParamValue::Int(40)),
            ("standardise".to_owned(), ParamValue::Bool(true)),
        ];
        params.extend(extra);
        let mut handle = registry
            .create(&format!("ml.{detector}"), &params, &names)
            .unwrap();
        // Distinct rows, and the same with the second input in other units: once
        // standardised, the same scores.
        let plain: Vec<Vec<f64>> = vec![
            (0..60).map(|i| (i as f64 * 0.731).sin()).collect(),
            (0..60).map(|i| (i as f64 * 1.37).cos() * 3.0).collect(),
        ];
        let mut wide = plain.clone();
        wide[1].iter_mut().for_each(|x| *x = *x * 1000.0 + 7.0);
        let a = score(&mut handle, &wide).unwrap();
        let mut handle = registry
            .create(&format!("ml.{detector}"), &params, &names)
            .unwrap();
        let b = score(&mut handle, &plain).unwrap();
        (a.raw[40..].to_vec(), b.raw[40..].to_vec())
    };
    for metric in ["euclidean", "manhattan", "chebyshev"] {
        for detector in ["knn", "lof"] {
            let m = vec![("metric".to_owned(), ParamValue::Text(metric.into()))];
            let (a, b) = scaled(detector, m);
            for (x, y) in a.iter().zip(&b) {
                assert!(
                    (x - y).abs() <= 1e-9 * y.abs().max(1.0),
                    "ml.{detector} {metric}"
                );
            }
        }
    }
}
