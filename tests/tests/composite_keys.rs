//! Keys of several columns are tuples: values holding the separator never merge two keys,
//! their alerts, cooldowns or output (issue 21: (`a`, `b/c`) and (`a/b`, `c`) both printed
//! `a/b/c` and shared one cooldown).

use adr_tests::adr;

#[test]
fn keys_whose_values_hold_slashes_stay_apart() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("r.adr");
    std::fs::write(
        &rules,
        "input market {\n    time = ts\n    key = ex, sym\n    fields = close\n}\n\
         detector spike = statistical.zscore(window = 10, threshold = 3) on close\n\
         ensemble move {\n    vote = any(spike)\n}\n\
         alert move {\n    when severity >= low for 1 events\n    cooldown 1h per key\n}\n",
    )
    .unwrap();
    let mut csv = String::from("ts,ex,sym,close\n");
    for i in 0..30 {
        let close = if i == 25 {
            1000.0
        } else {
            100.0 + (i % 3) as f64
        };
        for (ex, sym) in [("a", "b/c"), ("a/b", "c")] {
            csv.push_str(&format!("{},{ex},{sym},{close}\n", 1_700_000_000 + i * 60));
        }
    }
    let data = dir.path().join("data.csv");
    std::fs::write(&data, csv).unwrap();
    let scored = dir.path().join("scored.csv");
    let run = adr(
        &[
            "run",
            rules.to_str().unwrap(),
            "--input",
            data.to_str().unwrap(),
            "--alerts",
            "-",
            "--output",
            scored.to_str().unwrap(),
            "--json",
        ],
        None,
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let alerts: Vec<serde_json::Value> = run
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(alerts.len(), 2, "each key fires its own alert: {alerts:#?}");
    let keys: Vec<&str> = alerts.iter().map(|a| a["key"].as_str().unwrap()).collect();
    assert_eq!(keys, [r"a/b\/c", r"a\/b/c"], "{alerts:#?}");
    assert_eq!(
        alerts[0]["keys"],
        serde_json::json!({"ex": "a", "sym": "b/c"})
    );
    assert_eq!(
        alerts[1]["keys"],
        serde_json::json!({"ex": "a/b", "sym": "c"})
    );
    assert!(alerts.iter().all(|a| a["suppressed"] == 0), "{alerts:#?}");
    let table = std::fs::read_to_string(&scored).unwrap();
    let mut reader = csv_keys(&table);
    reader.sort();
    reader.dedup();
    assert_eq!(
        reader,
        [r"a/b\/c", r"a\/b/c"],
        "the scored table tells them apart"
    );
    let summary: serde_json::Value =
        serde_json::from_str(run.stderr.lines().last().unwrap()).unwrap();
    assert_eq!(summary["keys"], 2, "{summary}");
}

/// The `key` column of a scored table.
fn csv_keys(table: &str) -> Vec<String> {
    let mut lines = table.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let at = header.iter().position(|h| *h == "key").unwrap();
    lines
        .map(|l| l.split(',').nth(at).unwrap().to_owned())
        .collect()
}
