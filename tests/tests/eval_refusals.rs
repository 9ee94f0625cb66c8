//! `adr eval` refuses what it cannot score instead of printing NaN (issue 21): no runs, a
//! set named twice, thresholds that are no scores.

use adr_tests::{adr, built, plugin_dir};

#[test]
fn eval_refuses_what_it_cannot_score() {
    let cases: [(&str, Vec<&str>, &str); 5] = [
        (
            "no seeds",
            vec!["eval", "odds", "statistical.zscore", "--seeds", "0"],
            "0 is not in 1..",
        ),
        (
            "a set named twice",
            vec![
                "eval",
                "odds",
                "statistical.zscore",
                "--datasets",
                "wbc,wbc",
            ],
            "names `wbc` more than once",
        ),
        (
            "NaN threshold, NAB",
            vec!["eval", "nab", "rules/nab.adr", "--threshold", "nan"],
            "is not a threshold",
        ),
        (
            "infinite threshold, NAB",
            vec!["eval", "nab", "rules/nab.adr", "--threshold", "inf"],
            "is not a threshold",
        ),
        (
            "threshold past 1, labelled",
            vec![
                "eval",
                "rules/nab.adr",
                "--data",
                "x",
                "--labels",
                "y",
                "--threshold",
                "1.5",
            ],
            "is not a threshold",
        ),
    ];
    for (name, args, want) in cases {
        let run = adr(&args, None);
        assert_ne!(run.code, 0, "{name}: {}", run.stderr);
        assert!(run.stderr.contains(want), "{name}: {}", run.stderr);
        assert!(!run.stdout.contains("NaN"), "{name}: {}", run.stdout);
    }
}

#[test]
fn a_set_with_non_finite_values_is_refused_with_where() {
    let dir = tempfile::tempdir().unwrap();
    let mut csv = String::from("x0,x1,label\n");
    for i in 0..20 {
        let x1 = match i {
            3 => "nan".to_owned(),
            7 => "inf".to_owned(),
            _ => format!("{}", i % 4),
        };
        csv.push_str(&format!("{i},{x1},{}\n", u8::from(i == 5)));
    }
    std::fs::write(dir.path().join("holes.csv"), csv).unwrap();
    std::fs::create_dir(dir.path().join("splits")).unwrap();
    let split = serde_json::json!({
        "splits": [{"seed": 0, "train": (0..12).collect::<Vec<_>>(), "test": (12..20).collect::<Vec<_>>()}],
        "adbench": {"splits": []},
    });
    std::fs::write(dir.path().join("splits/holes.json"), split.to_string()).unwrap();
    let plugins = plugin_dir(&[&built().ml]);
    let out = std::process::Command::new(&built().adr)
        .args(["--plugins", plugins.path().to_str().unwrap()])
        .args(["eval", "odds", "ml.isolation_forest", "--data"])
        .arg(dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("row 4: column 1 is `nan`, not a finite number (2 such cells in the set)"),
        "{stderr}"
    );
    assert!(!stderr.contains("has no score"), "{stderr}");
}

#[test]
fn labels_naming_one_file_twice_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut csv = String::from("timestamp,value\n");
    for i in 0..10 {
        csv.push_str(&format!("2025-01-01 00:{i:02}:00,{i}\n"));
    }
    std::fs::write(dir.path().join("norm.csv"), csv).unwrap();
    let labels = dir.path().join("labels.json");
    std::fs::write(&labels, r#"{"norm.csv": [], "./norm.csv": []}"#).unwrap();
    let run = adr(
        &[
            "eval",
            "rules/nab.adr",
            "--data",
            dir.path().to_str().unwrap(),
            "--labels",
            labels.to_str().unwrap(),
        ],
        None,
    );
    assert_ne!(run.code, 0, "{}", run.stdout);
    assert!(
        run.stderr
            .contains("`./norm.csv` and `norm.csv` are one file; name each file once"),
        "{}",
        run.stderr
    );
}
