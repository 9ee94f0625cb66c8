//! `adr eval nab` and `adr eval tcpd` against the reference scorers in `../shared/tools`
//! (NAB's `nab_score.py`, TCPD's `ts_eval.py cpd`) on the same output, and the shipped
//! rule files' figures on the real benchmarks.
//!
//! Needs `../shared` and a Python with numpy in `ADR_REFERENCE_PYTHON` (CI sets both).

use std::process::Command;

use adr_tests::{built, plugin_dir, python_json, reference_python, shared_data, workspace};

fn adr_eval(args: &[&str]) -> serde_json::Value {
    let b = built();
    let plugins = plugin_dir(&[&b.statistical, &b.realtime]);
    let out = Command::new(&b.adr)
        .args(args)
        .arg("--json")
        .arg("--plugins")
        .arg(plugins.path())
        .current_dir(workspace())
        .output()
        .expect("adr runs");
    assert!(
        out.status.success(),
        "adr {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON on stdout")
}

#[test]
fn nab_scores_agree_with_nab_score_py_and_rules_nab_adr_holds_its_figure() {
    let (Some(_), Some(python)) = (shared_data("nab_eval"), reference_python("nab_eval")) else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let results = dir.path().join("results");
    let ours = adr_eval(&[
        "eval",
        "nab",
        "rules/nab.adr",
        "--out",
        results.to_str().unwrap(),
    ]);
    let theirs = python_json(
        &python,
        &[
            "../shared/tools/nab_score.py",
            results.to_str().unwrap(),
            "--json",
        ],
    );
    let profiles = ours["profiles"].as_array().expect("profiles");
    assert_eq!(profiles.len(), 3);
    for p in profiles {
        let name = p["profile"].as_str().unwrap();
        let (a, b) = (
            p["score"].as_f64().unwrap(),
            theirs["profiles"][name]["score"].as_f64().unwrap(),
        );
        assert!((a - b).abs() < 0.01, "{name}: adr {a}, nab_score.py {b}");
        assert_eq!(
            p["windows_detected"], theirs["profiles"][name]["windows_detected"],
            "{name}"
        );
        assert_eq!(
            p["false_positive_rows"], theirs["profiles"][name]["false_positive_rows"],
            "{name}"
        );
    }
    let standard = profiles
        .iter()
        .find(|p| p["profile"] == "standard")
        .unwrap();
    let score = standard["score"].as_f64().unwrap();
    eprintln!("rules/nab.adr: NAB standard {score:.2}");
    // The bar is 60 (ahead of KNN CAD, 58.0) and its aim 70 (HTM, 70.1) on the
    // standard profile; the shipped rule scores 70.58 (rules/nab.adr,
    // docs/realtime-evaluation.md), so the aim is what it must keep.
    assert!(score >= 70.0, "NAB standard {score}");
}

#[test]
fn tcpd_metrics_agree_with_ts_eval_py_and_bocpd_beats_pelt() {
    let (Some(_), Some(python)) = (shared_data("tcpd_eval"), reference_python("tcpd_eval")) else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let points = dir.path().join("cps.json");
    let ours = adr_eval(&[
        "eval",
        "tcpd",
        "rules/tcpd.adr",
        "--lag",
        "4",
        "--out",
        points.to_str().unwrap(),
    ]);
    let theirs = python_json(
        &python,
        &[
            "../shared/tools/ts_eval.py",
            "cpd",
            points.to_str().unwrap(),
            "--json",
        ],
    );
    let (f1, cover) = (
        ours["f1"].as_f64().unwrap(),
        ours["cover"].as_f64().unwrap(),
    );
    let summary = &theirs["predictions"]["summary"];
    let find = |key: &str| {
        summary[key]
            .as_f64()
            .unwrap_or_else(|| panic!("no {key} in {summary}"))
    };
    assert!(
        (f1 - find("f1")).abs() < 0.001,
        "F1: adr {f1}, ts_eval {}",
        find("f1")
    );
    assert!(
        (cover - find("cover")).abs() < 0.001,
        "cover: adr {cover}, ts_eval {}",
        find("cover")
    );
    assert_eq!(ours["series"].as_array().unwrap().len(), 32);
    eprintln!("rules/tcpd.adr: F1 {f1:.3}, cover {cover:.3} (ruptures Pelt l2: 0.728, 0.649)");
    assert!(f1 > 0.728 && cover > 0.649, "BOCPD F1 {f1}, cover {cover}");
}
