//! `ml.*` detectors in rule files: a multivariate HBOS trains on the first events of each
//! key, is undetermined meanwhile, then flags the example market's flash crash.

use std::process::Command;

use adr_tests::{built, plugin_dir, workspace};

const RULES: &str = "\
input market {
    time   = ts
    key    = symbol
    fields = close, volume
}
feature returns = log_return(close)
detector shape = ml.hbos(train = 1000, contamination = 1%) on [returns, volume]
ensemble odd {
    vote = any(shape)
}
";

/// Runs `rules` over the example market with the statistical and ML plugins: the scored
/// table's header and rows.
fn run_rules(rules: &str) -> (Vec<String>, Vec<Vec<String>>) {
    let plugins = plugin_dir(&[&built().statistical, &built().ml]);
    let dir = tempfile::tempdir().unwrap();
    let (path, scored) = (dir.path().join("ml.adr"), dir.path().join("scored.csv"));
    std::fs::write(&path, rules).unwrap();
    let out = Command::new(&built().adr)
        .arg("run")
        .arg(&path)
        .args(["--no-notify", "-q", "--input"])
        .arg(workspace().join("examples/market.csv"))
        .arg("--output")
        .arg(&scored)
        .arg("--plugins")
        .arg(plugins.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let table = std::fs::read_to_string(&scored).unwrap();
    let mut lines = table.lines();
    let split = |l: &str| l.split(',').map(str::to_owned).collect::<Vec<_>>();
    let header = split(lines.next().unwrap());
    (header, lines.map(split).collect())
}

#[test]
fn hbos_in_a_rule_trains_then_flags_the_crash() {
    let (header, rows) = run_rules(RULES);
    let verdict = header.iter().position(|h| *h == "shape.verdict").unwrap();
    // The first return is NaN (no previous close), so training takes rows 2..=1001.
    assert!(
        rows[..1001].iter().all(|r| r[verdict] == "undetermined"),
        "training rows are undetermined"
    );
    assert_ne!(rows[1001][verdict], "undetermined", "judged once trained");
    let crash = rows
        .iter()
        .find(|r| r[0] == "2025-01-15T10:30:00Z")
        .expect("the crash row");
    assert_eq!(crash[verdict], "anomaly", "{crash:?}");
    let anomalies = rows.iter().filter(|r| r[verdict] == "anomaly").count();
    assert!(
        anomalies < rows.len() / 20,
        "{anomalies} anomalies of {} rows at 1% contamination",
        rows.len()
    );
}

/// `train on first N` and `train on <span>` in a rule are what an `ml.*` detector trains
/// on: its verdicts start right after, without a `train` parameter.
#[test]
fn a_rules_training_clause_is_the_detectors_training_set() {
    for (clause, judged_from) in [("train on first 500", 501), ("train on 2h", 121)] {
        let text = RULES.replace(
            "ml.hbos(train = 1000, contamination = 1%) on [returns, volume]",
            &format!("ml.hbos(contamination = 1%) on [returns, volume] {clause}"),
        );
        let (header, rows) = run_rules(&text);
        let (symbol, verdict) = (
            header.iter().position(|h| *h == "key").unwrap(),
            header.iter().position(|h| *h == "shape.verdict").unwrap(),
        );
        let first = &rows[0][symbol];
        let key: Vec<&Vec<String>> = rows.iter().filter(|r| &r[symbol] == first).collect();
        let judged = key
            .iter()
            .position(|r| r[verdict] != "undetermined")
            .unwrap();
        // `train on first 500`: event 1 has no return; events 2..=501 train, and 502
        // (index 501) is judged. `train on 2h`, on one-minute bars: the first return is at
        // 00:01, so 00:01..=02:00 train and 02:01 (index 121) is judged.
        assert_eq!(judged, judged_from, "{clause}: {:?}", key[judged]);
    }
}
