//! The `threshold` clause: a detector's raw scores judged by another detector (here SPOT's
//! extreme-value threshold), per key, and checked like any detector call.

use std::sync::Arc;

use adr_benchmark::series::{score_series, Series};
use adr_engine::plugins::{Registry, SearchPath};
use adr_engine::rules::plan::Plan;
use adr_engine::rules::{check_files, source};
use adr_sdk::{score::ScoreColumns, Column, Frame, ParamValue, Verdict};
use adr_tests::{built, plugin_dir};

fn registry() -> (tempfile::TempDir, Arc<Registry>) {
    let b = built();
    let dir = plugin_dir(&[&b.statistical, &b.realtime]);
    let registry = Registry::load(&SearchPath::explicit([dir.path().to_path_buf()])).unwrap();
    (dir, Arc::new(registry))
}

fn rules(text: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.adr");
    std::fs::write(&path, text).unwrap();
    (dir, path)
}

const RULES: &str = "
input s {
    time   = t
    fields = value
}
detector z = statistical.zscore(window = 200) on value threshold realtime.spot(init = 500, q = 0.001)
ensemble e {
    vote = any(z)
}
";

/// Seeded noise (a sum of uniforms) with a spike every 1000 points.
fn values(n: usize) -> Vec<f64> {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut uniform = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    (0..n)
        .map(|i| {
            let x: f64 = (0..4).map(|_| uniform() - 0.5).sum();
            if i % 1000 == 999 {
                x + 6.0
            } else {
                x
            }
        })
        .collect()
}

#[test]
fn the_threshold_judges_the_detector_s_raw_scores() {
    let (_plugins, registry) = registry();
    let (_dir, path) = rules(RULES);
    let loaded = source::load(&[path]).unwrap();
    let (plan, _) = Plan::build(&loaded, &registry).expect("rules check clean");
    let n = 20_000;
    let xs = values(n);
    let ts: Vec<i64> = (0..n as i64).collect();
    let series = Series {
        timestamps: ts.clone(),
        columns: vec![("value".into(), xs.clone())],
    };
    let judged = score_series(&plan, &registry, 0, &series).unwrap();

    // the same two detectors by hand: the z-scores, then SPOT over them
    let mut z = registry
        .create(
            "statistical.zscore",
            &[("window".into(), ParamValue::Int(200))],
            &["value".into()],
        )
        .unwrap();
    let cols = [Column::f64("value", &xs)];
    let mut zs = ScoreColumns::with_len(n);
    z.score(&Frame::new(&ts, &cols).unwrap(), &mut zs.as_mut())
        .unwrap();
    let mut spot = registry
        .create(
            "realtime.spot",
            &[
                ("init".into(), ParamValue::Int(500)),
                ("q".into(), ParamValue::Float(0.001)),
            ],
            &["score".into()],
        )
        .unwrap();
    let cols = [Column::f64("score", &zs.raw)];
    let mut want = ScoreColumns::with_len(n);
    spot.score(&Frame::new(&ts, &cols).unwrap(), &mut want.as_mut())
        .unwrap();
    assert_eq!(judged.verdicts, want.verdict);
    // the spikes are caught, and calm points alarm at about the rate q
    let alarms: Vec<usize> = (0..n)
        .filter(|&i| judged.verdicts[i] == Verdict::Anomaly)
        .collect();
    let spikes = alarms.iter().filter(|&&i| i % 1000 == 999).count();
    assert!(spikes >= 18, "{spikes} of 20 spikes: {alarms:?}");
    assert!(
        alarms.len() - spikes < 60,
        "{} false alarms",
        alarms.len() - spikes
    );
    // a threshold replaces the verdict, not the detector's own score scale: the ensemble's
    // score is SPOT's normalised score
    for i in (0..n).step_by(97) {
        if want.verdict[i] != Verdict::Undetermined {
            assert_eq!(
                judged.scores[i].to_bits(),
                want.normalised[i].to_bits(),
                "row {i}"
            );
        }
    }
}

#[test]
fn every_realtime_detector_the_docs_name_is_exported() {
    let (_plugins, registry) = registry();
    for name in [
        "ewma",
        "cusum",
        "page_hinkley",
        "adwin",
        "bocpd",
        "spot",
        "quantile",
        "likelihood",
        "range_break",
        "half_space_trees",
        "random_cut_forest",
        "subsequence_knn",
        "kmeans",
    ] {
        assert!(
            registry.find(&format!("realtime.{name}")).is_ok(),
            "realtime.{name} is not exported"
        );
    }
    // and the quantile threshold works as a clause
    let (_dir, path) = rules(&RULES.replace(
        "realtime.spot(init = 500, q = 0.001)",
        "realtime.quantile(q = 0.01)",
    ));
    let (_loaded, diagnostics) = check_files(&[path], &registry).unwrap();
    assert!(diagnostics.is_empty(), "{diagnostics:?}");
}

#[test]
fn a_threshold_s_call_is_checked_like_a_detector_s() {
    let (_plugins, registry) = registry();
    for (text, code, needle) in [
        (
            RULES.replace("realtime.spot(init = 500", "realtime.spot(inti = 500"),
            "E0303",
            "has no parameter `inti`",
        ),
        (
            RULES.replace("realtime.spot(", "realtime.spott("),
            "E0302",
            "has no detector `spott`",
        ),
        (RULES.replace("q = 0.001", "q = 2"), "E0304", "q"),
    ] {
        let (_dir, path) = rules(&text);
        let (_loaded, diagnostics) = check_files(&[path], &registry).unwrap();
        let found: Vec<String> = diagnostics
            .iter()
            .map(|d| format!("{} {}", d.code.id(), d.message))
            .collect();
        assert!(
            found
                .iter()
                .any(|d| d.starts_with(code) && d.contains(needle)),
            "{code} {needle}: {found:?}"
        );
    }
}
