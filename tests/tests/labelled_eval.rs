//! `adr eval RULES --data DIR --labels FILE`: its range metrics against the `prts`
//! package, its point metrics against scikit-learn, its NAB block against `adr eval nab`
//! (itself tested against `nab_score.py`), and its refusals of bad labels and data.
//!
//! The comparisons need `../shared/data` and `ADR_REFERENCE_PYTHON`
//! (`tests/reference/labelled.py`); they skip with a note where either is missing.

use adr_benchmark::ranges::{runs, Bias, Cardinality, RangeOptions, RangeTally};
use adr_tests::{adr, python_json, reference_python, shared_data};

/// A xorshift stream: enough randomness for flags, no dependency.
struct Flags(u64);

impl Flags {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }

    /// `n` flags in runs: each row starts or ends a run with probability `switch`.
    fn series(&mut self, n: usize, switch: f64) -> Vec<bool> {
        let mut on = false;
        let mut out: Vec<bool> = (0..n)
            .map(|_| {
                if self.next() < switch {
                    on = !on;
                }
                on
            })
            .collect();
        out[n / 2] = true; // prts needs one of each
        out[0] = false;
        out
    }
}

#[test]
fn range_metrics_are_prts_on_random_series() {
    let Some(python) = reference_python("range metrics against prts") else {
        return;
    };
    let mut rng = Flags(0x9e37_79b9_7f4a_7c15);
    let mut cases = Vec::new();
    let mut ours = Vec::new();
    for k in 0..240 {
        let n = 20 + k % 7 * 30;
        let real = rng.series(n, 0.08);
        let pred = rng.series(n, [0.02, 0.1, 0.4][k % 3]);
        let bias = [Bias::Flat, Bias::Front, Bias::Middle, Bias::Back][k % 4];
        let cardinality = [Cardinality::One, Cardinality::Reciprocal][k / 4 % 2];
        // prts applies alpha to precision too; the paper (and adr) does not: compare
        // precision at alpha 0 only
        let alpha = [0.0, 0.0, 0.3, 1.0][k / 8 % 4];
        let options = RangeOptions {
            alpha,
            bias,
            cardinality,
        };
        let names = |v: serde_json::Value| v.as_str().unwrap().to_owned();
        cases.push(serde_json::json!({
            "real": real.iter().map(|&b| u8::from(b)).collect::<Vec<_>>(),
            "pred": pred.iter().map(|&b| u8::from(b)).collect::<Vec<_>>(),
            "alpha": alpha,
            "bias": names(serde_json::to_value(bias).unwrap()),
            "cardinality": names(serde_json::to_value(cardinality).unwrap()),
        }));
        ours.push((alpha, RangeTally::of(&runs(&real), &runs(&pred), &options)));
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cases.json");
    std::fs::write(&path, serde_json::to_string(&cases).unwrap()).unwrap();
    let theirs = python_json(
        &python,
        &[
            std::path::Path::new("tests/reference/labelled.py"),
            std::path::Path::new("cases"),
            &path,
        ],
    );
    eprintln!("reference versions: {}", theirs["versions"]);
    let theirs = theirs["cases"].as_array().unwrap();
    let mut precisions = 0;
    for (k, ((alpha, tally), t)) in ours.iter().zip(theirs).enumerate() {
        let recall = t["recall"].as_f64().unwrap();
        assert!(
            (tally.recall().unwrap() - recall).abs() < 1e-12,
            "case {k}: recall {:?} vs prts {recall} ({})",
            tally.recall(),
            cases[k]
        );
        if *alpha == 0.0 {
            let precision = t["precision"].as_f64().unwrap();
            assert!(
                (tally.precision() - precision).abs() < 1e-12,
                "case {k}: precision {} vs prts {precision}",
                tally.precision()
            );
            precisions += 1;
        }
    }
    assert!(precisions >= 100);
}

fn nab_args(out: &str) -> Vec<String> {
    [
        "eval",
        "rules/nab.adr",
        "--data",
        "../shared/data/nab/data",
        "--labels",
        "../shared/data/nab/labels/combined_windows.json",
        "--bias",
        "front",
        "--out",
        out,
        "--json",
        "-q",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect()
}

#[test]
fn adr_eval_on_nab_agrees_with_scikit_learn_prts_and_adr_eval_nab() {
    let Some(_) = shared_data("adr eval on labelled NAB") else {
        return;
    };
    let Some(python) = reference_python("adr eval on labelled NAB") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let rows = dir.path().join("rows.csv");
    let args = nab_args(rows.to_str().unwrap());
    let run = adr(&args.iter().map(String::as_str).collect::<Vec<_>>(), None);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let ours: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let report = &ours["report"];
    let theirs = python_json(
        &python,
        &[
            "tests/reference/labelled.py",
            "rows",
            rows.to_str().unwrap(),
            "0",
            "front",
            "one",
        ],
    );
    for metric in ["precision", "recall", "f1", "roc_auc", "pr_auc"] {
        let (a, b) = (
            report["point"][metric].as_f64().unwrap(),
            theirs["point"][metric].as_f64().unwrap(),
        );
        assert!(
            (a - b).abs() < 1e-9,
            "point {metric}: adr {a}, scikit-learn {b}"
        );
    }
    let files = theirs["files"].as_object().unwrap();
    let mut compared = 0;
    for file in report["files"].as_array().unwrap() {
        let Some(t) = files.get(file["name"].as_str().unwrap()) else {
            continue;
        };
        for metric in ["precision", "recall"] {
            let (a, b) = (
                file["range"][metric].as_f64().unwrap(),
                t[metric].as_f64().unwrap(),
            );
            assert!(
                (a - b).abs() < 1e-12,
                "{} range {metric}: adr {a}, prts {b}",
                file["name"]
            );
        }
        compared += 1;
    }
    assert!(compared >= 20, "{compared} files with windows and alarms");
    // the NAB block is `adr eval nab`'s
    let nab = adr(&["eval", "nab", "rules/nab.adr", "--json", "-q"], None);
    assert_eq!(nab.code, 0, "{}", nab.stderr);
    let nab: serde_json::Value = serde_json::from_str(&nab.stdout).unwrap();
    assert_eq!(report["nab"], nab["profiles"]);
}

/// A one-file labelled folder: `data.csv` with `rows` and the labels `labels`.
fn folder(rows: &str, labels: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("data.csv"), rows).unwrap();
    std::fs::write(dir.path().join("labels.json"), labels).unwrap();
    std::fs::write(
        dir.path().join("rules.adr"),
        "input s { time = ts  fields = x }\n\
         detector z = statistical.zscore(window = 5, min_points = 3) on x\n\
         ensemble e { vote = any(z) }\n",
    )
    .unwrap();
    dir
}

fn eval_in(dir: &tempfile::TempDir, extra: &[&str]) -> adr_tests::Run {
    let p = |name: &str| dir.path().join(name).to_str().unwrap().to_owned();
    let (rules, data, labels) = (p("rules.adr"), p(""), p("labels.json"));
    let mut args = vec!["eval", &rules, "--data", &data, "--labels", &labels, "-q"];
    args.extend_from_slice(extra);
    adr(&args, None)
}

#[test]
fn windows_may_be_any_times_or_single_points_and_counts_are_exact() {
    let rows: String = std::iter::once("ts,x\n".to_owned())
        .chain((0..40).map(|i| {
            let x = if i == 30 { 50.0 } else { (i % 3) as f64 };
            format!("{},{x}\n", 1000 + 10 * i)
        }))
        .collect();
    // a window between data times (rows 28..=31) and one single time (row 5)
    let dir = folder(&rows, r#"{"data.csv": [[1275, 1311], 1050]}"#);
    let run = eval_in(&dir, &["--json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let doc: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let point = &doc["report"]["point"];
    assert_eq!(point["rows"], 40);
    assert_eq!(point["positives"], 5);
    let range = &doc["report"]["range"];
    assert_eq!(range["real_ranges"], 2);
    // the spike at row 30 is caught: one of the two windows, a quarter of its rows
    assert!(point["true_positives"].as_u64().unwrap() >= 1, "{point}");
    let recall = range["recall"].as_f64().unwrap();
    assert!(recall > 0.0 && recall <= 0.5, "{range}");
    // people read the table
    let table = eval_in(&dir, &[]);
    assert_eq!(table.code, 0, "{}", table.stderr);
    for word in ["point", "range", "NAB standard", "ROC-AUC"] {
        assert!(
            table.stdout.contains(word),
            "{word} missing:\n{}",
            table.stdout
        );
    }
}

#[test]
fn bad_labels_and_data_are_refused_with_the_reason() {
    let rows = "ts,x\n10,1\n20,2\n30,3\n";
    for (labels, want) in [
        (r#"{"missing.csv": []}"#, "missing.csv"),
        (r#"{"data.csv": [[500, 600]]}"#, "holds no row"),
        (r#"{"data.csv": [[20, 30], [10, 20]]}"#, "overlap"),
        (r#"{"data.csv": [[30, 10]]}"#, "ends before it starts"),
        (r#"{"data.csv": [["x", "y", "z"]]}"#, "not [start, end]"),
        (r#"{"data.csv": [["soon", 30]]}"#, "is no time"),
        (r#"["data.csv"]"#, "expected"),
        ("{}", "names no file"),
    ] {
        let dir = folder(rows, labels);
        let run = eval_in(&dir, &[]);
        assert_ne!(run.code, 0, "{labels} was accepted");
        assert!(run.stderr.contains(want), "{labels}: {}", run.stderr);
    }
    let dir = folder("ts,y\n10,1\n", r#"{"data.csv": []}"#);
    let run = eval_in(&dir, &[]);
    assert_ne!(run.code, 0);
    assert!(run.stderr.contains("no `x` column"), "{}", run.stderr);
    let dir = folder(rows, r#"{"data.csv": []}"#);
    let run = eval_in(&dir, &["--alpha", "2"]);
    assert_ne!(run.code, 0);
    assert!(run.stderr.contains("--alpha"), "{}", run.stderr);
}
