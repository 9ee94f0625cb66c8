//! The machine-learning detectors against PyOD on the ODDS benchmark, through the plugin
//! boundary, under PyOD's protocol (`../shared/data/odds/README.md`): for each of the 10
//! splits of a set, standardise every column with the 60 % training rows' mean and
//! population deviation (a zero deviation counts as 1), train on those rows, score the
//! 40 % test rows, ROC-AUC on them; the mean over the splits must be within 0.001 of the
//! PyOD 3.6.7 re-run in `reference/roc_pyod.csv`, or better, on every set with such splits
//! (21). Neighbour methods can differ where several training rows lie at the same
//! distance (breastw's integer features): adr breaks such ties by row index, scikit-learn
//! by its tree's order.

use std::path::Path;

use adr_benchmark::odds::{self, Protocol};
use adr_engine::plugins::{Registry, SearchPath};
use adr_sdk::ParamValue;
use adr_tests::{built, plugin_dir, shared_data};

/// Mean ROC-AUC of `ml.<detector>` over the PyOD splits of `name` and over `runs` (each
/// run's parameters besides `train`), through `adr eval odds`'s library; the set is read
/// once.
fn mean_roc(
    registry: &Registry,
    dir: &Path,
    name: &str,
    detector: &str,
    runs: &[Vec<(String, ParamValue)>],
) -> f64 {
    let set = odds::load_set(dir, name).unwrap();
    let splits = odds::load_splits(dir, name, Protocol::Pyod).unwrap();
    assert_eq!(splits.len(), 10, "{name}");
    let detector = format!("ml.{detector}");
    let mut total = 0.0;
    for params in runs {
        for split in &splits {
            let scores =
                odds::score_split(registry, &detector, params, &set, split, Protocol::Pyod)
                    .unwrap();
            total += odds::split_metrics(&set, split, &scores).0;
        }
    }
    total / (splits.len() * runs.len()) as f64
}

/// The ODDS folder and a registry with the ML plugin, or `None` without the shared data.
fn setup(test: &str) -> Option<(std::path::PathBuf, Registry)> {
    let odds = shared_data(test)?.join("odds");
    let plugins = plugin_dir(&[&built().ml]);
    let registry = Registry::load(&SearchPath::explicit([plugins.path().to_path_buf()])).unwrap();
    // The registry keeps the libraries mapped; the folder may go.
    drop(plugins);
    Some((odds, registry))
}

/// The sets with PyOD splits and the reference value of `method` on each.
fn sets(dir: &Path, method: &str) -> Vec<(String, f64)> {
    odds::reference(dir, "roc", Protocol::Pyod)
        .unwrap()
        .into_iter()
        .filter_map(|(name, methods)| {
            let want = *methods.get(method)?;
            let splits = odds::load_splits(dir, &name, Protocol::Pyod).unwrap();
            (!splits.is_empty()).then_some((name, want))
        })
        .collect()
}

/// `ml.<detector>` with `params` against the reference column `method` on every set with
/// PyOD splits: the table, and how far below PyOD the worst set and the average are.
fn against_pyod(
    odds: &Path,
    registry: &Registry,
    detector: &str,
    method: &str,
    params: &[(String, ParamValue)],
) -> (String, f64, f64) {
    let mut report = Vec::new();
    let (mut worst, mut below_on_average) = (f64::NEG_INFINITY, 0.0);
    let sets = sets(odds, method);
    for (name, want) in &sets {
        let got = mean_roc(registry, odds, name, detector, &[params.to_vec()]);
        worst = worst.max(want - got);
        below_on_average += (want - got) / sets.len() as f64;
        report.push(format!(
            "{name:12} adr {got:.4}  PyOD {want:.4}  diff {:+.4}",
            got - want
        ));
    }
    // The 17 sets of PyOD's benchmark and the 4 of the 7 others small enough for its
    // splits (breastw, mammography, thyroid, wine).
    assert_eq!(report.len(), 21, "every set with PyOD splits");
    (report.join("\n"), worst, below_on_average)
}

/// Checks `ml.<detector>` (with `params`) against the reference column `method` on every
/// set with PyOD splits: within 0.001 on each, or better; prints the table.
fn matches_pyod(test: &str, detector: &str, method: &str, params: &[(String, ParamValue)]) {
    let Some((odds, registry)) = setup(test) else {
        return;
    };
    let (report, worst, _) = against_pyod(&odds, &registry, detector, method, params);
    eprintln!("ml.{detector} {params:?} against PyOD {method}:\n{report}");
    assert!(worst <= 0.001, "{worst:.4} below PyOD on a set:\n{report}");
}

#[test]
fn hbos_matches_pyod_on_the_odds_sets() {
    matches_pyod("hbos_matches_pyod_on_the_odds_sets", "hbos", "HBOS", &[]);
}

#[test]
fn knn_matches_pyod_on_the_odds_sets() {
    matches_pyod("knn_matches_pyod_on_the_odds_sets", "knn", "KNN", &[]);
}

#[test]
fn lof_matches_pyod_on_the_odds_sets() {
    matches_pyod("lof_matches_pyod_on_the_odds_sets", "lof", "LOF", &[]);
}

#[test]
fn one_class_svm_matches_pyod_on_the_odds_sets() {
    matches_pyod(
        "one_class_svm_matches_pyod_on_the_odds_sets",
        "one_class_svm",
        "OCSVM",
        &[],
    );
}

/// The linear-time one-class SVM (a sample of 10 000 training rows solved exactly, the
/// decision function projected onto 256 centres) within 0.02 of the exact one (PyOD's) on
/// every set.
#[test]
fn the_approximate_one_class_svm_is_close_to_the_exact_one() {
    let Some((odds, registry)) = setup("the_approximate_one_class_svm_is_close_to_the_exact_one")
    else {
        return;
    };
    let params = [("approximate".to_owned(), ParamValue::Bool(true))];
    let (report, worst, _) = against_pyod(&odds, &registry, "one_class_svm", "OCSVM", &params);
    eprintln!("ml.one_class_svm (approximate) against PyOD OCSVM:\n{report}");
    assert!(
        worst <= 0.02,
        "{worst:.4} below the exact one on a set:\n{report}"
    );
}

/// ECOD and COPOD as PyOD runs them (`ecdf = batch`: the test rows scored in one call,
/// their distributions over the training and test rows together) must match PyOD; the
/// streaming form (`ecdf = train`, each event on its own) differs by design, and is held
/// to within 0.005 of PyOD on average over the sets.
fn ecdf_matches_pyod(test: &str, detector: &str, method: &str) {
    let batch = [("ecdf".to_owned(), ParamValue::Text("batch".into()))];
    matches_pyod(test, detector, method, &batch);
    let Some((odds, registry)) = setup(test) else {
        return;
    };
    let (report, _, below) = against_pyod(&odds, &registry, detector, method, &[]);
    eprintln!("ml.{detector} (ecdf = train) against PyOD {method}:\n{report}");
    assert!(
        below <= 0.005,
        "{below:.4} below PyOD on average:\n{report}"
    );
}

#[test]
fn ecod_matches_pyod_on_the_odds_sets() {
    ecdf_matches_pyod("ecod_matches_pyod_on_the_odds_sets", "ecod", "ECOD");
}

#[test]
fn copod_matches_pyod_on_the_odds_sets() {
    ecdf_matches_pyod("copod_matches_pyod_on_the_odds_sets", "copod", "COPOD");
}

/// Isolation Forest is randomised: its own random numbers grow other trees than
/// scikit-learn's, so the bar is on the mean over 5 seeds: within 0.01 of PyOD on average
/// over the sets and 0.03 on each, or better.
///
/// Known shortfall, reported and held from getting worse: optdigits is 0.048 below.
/// Single runs there spread from 0.60 to 0.75 (scikit-learn's own, seeds 0..4 on the
/// first splits), the reference is 10 runs, and no difference in the algorithm has been
/// found yet; see `plugins/ml/README.md`.
const IFOREST_SHORT: [(&str, f64); 1] = [("optdigits", 0.06)];
#[test]
fn isolation_forest_matches_pyod_on_the_odds_sets() {
    let Some((odds, registry)) = setup("isolation_forest_matches_pyod_on_the_odds_sets") else {
        return;
    };
    let mut report = Vec::new();
    let (mut below_on_average, mut worst) = (0.0, 0.0f64);
    let sets = sets(&odds, "IForest");
    for (name, want) in &sets {
        let seeds: Vec<Vec<(String, ParamValue)>> = (0..5)
            .map(|seed| vec![("seed".to_owned(), ParamValue::Int(seed))])
            .collect();
        let got = mean_roc(&registry, &odds, name, "isolation_forest", &seeds);
        below_on_average += (want - got) / sets.len() as f64;
        match IFOREST_SHORT.iter().find(|(n, _)| n == name) {
            Some((_, bound)) => assert!(want - got <= *bound, "{name} got worse: {got:.4}"),
            None => worst = worst.max(want - got),
        }
        report.push(format!(
            "{name:12} adr {got:.4}  PyOD {want:.4}  diff {:+.4}",
            got - want
        ));
    }
    eprintln!(
        "ml.isolation_forest (mean of 5 seeds) against PyOD IForest:\n{}",
        report.join("\n")
    );
    assert_eq!(report.len(), 21, "every set with PyOD splits");
    assert!(
        below_on_average <= 0.01,
        "{below_on_average:.4} below PyOD on average:\n{}",
        report.join("\n")
    );
    assert!(
        worst <= 0.03,
        "{worst:.4} below PyOD on a set:\n{}",
        report.join("\n")
    );
}

/// Runs the built `adr` with the ML and statistical plugins.
fn adr_with_ml(args: &[&str]) -> (i32, String, String) {
    let b = built();
    let plugins = plugin_dir(&[&b.ml, &b.statistical]);
    let out = std::process::Command::new(&b.adr)
        .args(args)
        .arg("--plugins")
        .arg(plugins.path())
        .output()
        .expect("adr runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn adr_eval_odds_writes_the_scorers_layout_and_matches_the_reference() {
    let Some(data) =
        shared_data("adr_eval_odds_writes_the_scorers_layout_and_matches_the_reference")
    else {
        return;
    };
    let dir = data.join("odds");
    let out = tempfile::tempdir().unwrap();
    let (code, stdout, stderr) = adr_with_ml(&[
        "eval",
        "odds",
        "ml.hbos",
        "--data",
        dir.to_str().unwrap(),
        "--datasets",
        "wbc,vertebral",
        "--out",
        out.path().to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(code, 0, "{stderr}");
    let doc: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let sets = doc["sets"].as_array().unwrap();
    assert_eq!(sets.len(), 2);
    for set in sets {
        let (got, want) = (
            set["roc_auc"].as_f64().unwrap(),
            set["reference_roc_auc"].as_f64().unwrap(),
        );
        assert!((got - want).abs() < 0.001, "{set}");
        assert_eq!(set["runs"], 10);
    }
    // One file per split, a `score` header and one score per test row, in test order.
    let splits = odds::load_splits(&dir, "wbc", Protocol::Pyod).unwrap();
    for split in &splits {
        let text =
            std::fs::read_to_string(out.path().join(format!("wbc/split_{}.csv", split.seed)))
                .unwrap();
        let mut lines = text.lines();
        assert_eq!(lines.next(), Some("score"));
        assert_eq!(
            lines.filter(|l| l.parse::<f64>().is_ok()).count(),
            split.test.len()
        );
    }
    // The readable table says how it compares.
    let (code, stdout, _) = adr_with_ml(&[
        "eval",
        "odds",
        "ml.hbos",
        "--data",
        dir.to_str().unwrap(),
        "--datasets",
        "wbc",
    ]);
    assert_eq!(code, 0);
    assert!(stdout.contains("against PyOD on 1 sets"), "{stdout}");
}

#[test]
fn adr_eval_odds_refuses_what_it_cannot_run() {
    let fake = tempfile::tempdir().unwrap();
    std::fs::create_dir(fake.path().join("splits")).unwrap();
    let fake = fake.path().to_str().unwrap();
    let cases: [(&[&str], &str); 5] = [
        (
            &["eval", "odds", "ml.hbos", "--data", "/no/such/odds"],
            "is not an ODDS folder",
        ),
        (
            &["eval", "odds", "ml.hbos", "--data", fake, "--seeds", "3"],
            "has no `seed` parameter",
        ),
        (
            &[
                "eval", "odds", "ml.hbos", "--data", fake, "--param", "n_bins=1",
            ],
            "n_bins",
        ),
        (
            &["eval", "odds", "ml.nope", "--data", fake],
            "has no detector `nope`",
        ),
        (
            &["eval", "odds", "statistical.zscore", "--data", fake],
            "does not train",
        ),
    ];
    for (args, want) in cases {
        let (code, _, stderr) = adr_with_ml(args);
        assert_eq!(code, 1, "{args:?}");
        assert!(stderr.contains(want), "{args:?}: {stderr}");
    }
}
