//! Bounded memory for streams of ever new keys: idle keys are evicted (and start cold if
//! they come back), and past a cap the least recently seen go, through the evaluator and
//! `adr run`.

use std::sync::Arc;

use adr_engine::evaluator::{Evaluator, Eviction, Outcome, Rows};
use adr_engine::plugins::{Registry, SearchPath};
use adr_engine::rules::plan::Plan;
use adr_engine::rules::source;
use adr_sdk::Verdict;
use adr_tests::{built, plugin_dir};

const RULES: &str = "
input trades {
    time   = ts
    key    = account
    fields = amount
}
detector big = statistical.zscore(window = 3, min_points = 3) on amount
ensemble unusual {
    vote = any(big)
}
";

fn evaluator() -> (tempfile::TempDir, tempfile::TempDir, Evaluator) {
    let plugins = plugin_dir(&[&built().statistical]);
    let registry = Registry::load(&SearchPath::explicit([plugins.path().to_path_buf()])).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.adr");
    std::fs::write(&path, RULES).unwrap();
    let loaded = source::load(&[path]).unwrap();
    let (plan, _) = Plan::build(&loaded, &registry).unwrap();
    let evaluator = Evaluator::new(plan, Arc::new(registry)).unwrap();
    (plugins, dir, evaluator)
}

/// Feeds `(time s, key, value)` rows as one batch; the verdict of each row.
fn feed(e: &mut Evaluator, rows: &[(i64, String, f64)]) -> Vec<Verdict> {
    let keys: Vec<_> = rows
        .iter()
        .map(|(_, k, _)| e.key([k.as_bytes()]).unwrap())
        .collect();
    let ts: Vec<i64> = rows.iter().map(|r| r.0 * 1_000_000_000).collect();
    let values: Vec<f64> = rows.iter().map(|r| r.2).collect();
    let fields = [values.as_slice()];
    let mut out = Outcome::default();
    e.process(
        &Rows {
            timestamps: &ts,
            keys: &keys,
            fields: &fields,
            first_row: 1,
        },
        &mut out,
    )
    .unwrap();
    out.ensembles[0].iter().map(|j| j.verdict).collect()
}

#[test]
fn a_key_seen_once_is_evicted_when_idle_and_starts_cold_when_it_returns() {
    let (_p, _d, mut e) = evaluator();
    e.set_eviction(Eviction {
        idle: Some(3_600_000_000_000),
        max_keys: None,
    });
    let once = |t: i64, k: &str, v: f64| (t, k.to_owned(), v);
    // `a` warms up (3 points) and then judges; `b` keeps the stream going
    feed(
        &mut e,
        &[once(0, "a", 1.0), once(1, "a", 2.0), once(2, "a", 3.0)],
    );
    assert_eq!(feed(&mut e, &[once(3, "a", 2.0)]), [Verdict::Normal]);
    for quarter in 0..4 {
        feed(&mut e, &[once(900 * quarter + 10, "b", 1.0)]);
    }
    assert_eq!(e.evicted(), 0, "a was seen less than an hour ago");
    feed(&mut e, &[once(7_300, "b", 1.0)]);
    assert_eq!(e.evicted(), 1);
    assert_eq!(e.keys().live(), 1);
    // back: a fresh detector, warming up again
    assert_eq!(
        feed(&mut e, &[once(7_301, "a", 2.0)]),
        [Verdict::Undetermined]
    );
    assert_eq!(e.keys().created(), 3);
    // its slot was reused: no state grew for it
    assert_eq!(e.keys().len(), 2);
}

#[test]
fn a_million_distinct_keys_hold_only_the_cap() {
    let (_p, _d, mut e) = evaluator();
    let cap = 10_000;
    e.set_eviction(Eviction {
        idle: None,
        max_keys: Some(cap),
    });
    let batch = 8_192;
    let n = 1_000_000;
    for start in (0..n).step_by(batch) {
        let rows: Vec<(i64, String, f64)> = (start..(start + batch).min(n))
            .map(|i| (i as i64, format!("k{i}"), 1.0))
            .collect();
        let verdicts = feed(&mut e, &rows);
        assert!(verdicts.iter().all(|v| *v == Verdict::Undetermined));
        // slots (per-key state) never exceed the cap plus one batch of new keys
        assert!(e.keys().len() <= cap + batch, "{} slots", e.keys().len());
    }
    assert_eq!(e.keys().created(), n as u64);
    assert!(e.keys().live() <= cap);
    assert_eq!(e.evicted(), n as u64 - e.keys().live() as u64);
}

#[test]
fn without_eviction_nothing_is_forgotten() {
    let (_p, _d, mut e) = evaluator();
    let rows: Vec<(i64, String, f64)> = (0..5_000).map(|i| (i, format!("k{i}"), 1.0)).collect();
    feed(&mut e, &rows);
    assert_eq!((e.keys().live(), e.evicted()), (5_000, 0));
}

#[test]
fn adr_run_takes_the_policy_and_reports_evictions() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("r.adr");
    std::fs::write(&rules, RULES).unwrap();
    let csv: String = std::iter::once("ts,account,amount\n".to_owned())
        .chain((0..50).map(|i| format!("{i},acct{},{}\n", i % 10, i % 7)))
        .collect();
    let rules = rules.to_str().unwrap();
    let run = adr_tests::adr(&["run", rules, "--max-keys", "4", "--json"], Some(&csv));
    assert_eq!(run.code, 0, "{}", run.stderr);
    // alerts go to standard output, the summary (JSON with --json) to standard error
    let last = run.stderr.lines().last().unwrap_or_default();
    let summary: serde_json::Value =
        serde_json::from_str(last).unwrap_or_else(|e| panic!("{e}: {}", run.stderr));
    assert!(summary["evicted_keys"].as_u64().unwrap() > 0, "{summary}");
    let bad = adr_tests::adr(&["run", rules, "--evict-idle", "soon"], Some(&csv));
    assert_ne!(bad.code, 0);
    assert!(bad.stderr.contains("not a duration"), "{}", bad.stderr);
}

#[test]
fn alert_groups_of_evicted_keys_go_once_their_cooldown_is_over() {
    let plugins = plugin_dir(&[&built().statistical]);
    let registry = Registry::load(&SearchPath::explicit([plugins.path().to_path_buf()])).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.adr");
    let rules = format!(
        "{RULES}
alert unusual {{
    when     severity >= low
    cooldown 1h per key
    notify   log
}}
"
    );
    std::fs::write(&path, rules).unwrap();
    let (plan, _) = Plan::build(&source::load(&[path]).unwrap(), &registry).unwrap();
    let mut e = Evaluator::new(plan, Arc::new(registry)).unwrap();
    let cap = 1_000;
    e.set_eviction(Eviction {
        idle: None,
        max_keys: Some(cap),
    });
    // every key: three calm points and a jump (an alert), one second apart
    let keys = 50_000;
    let rows: Vec<(i64, String, f64)> = (0..keys * 4)
        .map(|i| {
            (
                i as i64,
                format!("k{}", i / 4),
                [1.0, 2.0, 3.0, 50.0][i % 4],
            )
        })
        .collect();
    let mut jumps = 0;
    for batch in rows.chunks(4_096) {
        jumps += feed(&mut e, batch)
            .iter()
            .filter(|v| **v == Verdict::Anomaly)
            .count();
        // a group outlives its keys only while its cooldown (an hour: 900 keys) runs
        let groups = e.alerts().groups(0);
        assert!(groups <= cap + 4_096 + 900, "{groups} groups");
    }
    assert_eq!(jumps, keys);
    assert_eq!(e.alerts().fired(0), keys as u64);
}

#[test]
fn adr_explain_replays_the_run_s_eviction() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("r.adr");
    std::fs::write(&rules, RULES).unwrap();
    // `a` warms up, `b` goes on for two hours, `a` comes back
    let mut csv = String::from("ts,account,amount\n0,a,1\n1,a,2\n2,a,3\n3,a,2\n");
    for t in (10..7_300).step_by(900) {
        csv.push_str(&format!("{t},b,1\n"));
    }
    csv.push_str("7300,b,1\n7301,a,2\n");
    let rules = rules.to_str().unwrap();
    let verdict = |extra: &[&str]| {
        let mut args = vec!["explain", rules, "--at", "7301", "--key", "a", "--json"];
        args.extend_from_slice(extra);
        let run = adr_tests::adr(&args, Some(&csv));
        assert_eq!(run.code, 0, "{}", run.stderr);
        let doc: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
        doc[0]["detectors"][0]["verdict"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    // forgotten after an hour idle: cold again, as in adr run's scored table
    assert_eq!(verdict(&["--evict-idle", "1h"]), "undetermined");
    assert_eq!(verdict(&[]), "normal");
    let scored = dir.path().join("scored.csv");
    let run = adr_tests::adr(
        &[
            "run",
            rules,
            "--evict-idle",
            "1h",
            "-q",
            "--no-notify",
            "-o",
        ]
        .into_iter()
        .chain([scored.to_str().unwrap()])
        .collect::<Vec<_>>(),
        Some(&csv),
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let table = std::fs::read_to_string(&scored).unwrap();
    let last = table.lines().last().unwrap();
    assert!(last.contains("undetermined"), "{table}");
}
