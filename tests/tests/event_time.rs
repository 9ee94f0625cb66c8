//! Event time with an allowed lateness (`adr run --lateness`, `EngineBuilder::lateness`):
//! a shuffled stream within the lateness is scored exactly as the sorted one, events
//! later than it are counted and not scored, and the buffer is bounded.

use std::sync::{Arc, Mutex};

use adr_engine::embed::{Engine, EngineBuilder, Events};
use adr_engine::plugins::{Registry, SearchPath};
use adr_engine::run::{BatchView, Sink};
use adr_tests::{adr, built, plugin_dir};

/// Two keys, a window by duration and one by count.
const RULES: &str = "\
input s {
    time   = ts
    key    = account
    fields = amount
}
feature recent = mean(amount, 30s)
feature drift  = amount - recent
detector spike = statistical.zscore(window = 50, min_points = 5) on drift
ensemble e {
    vote = any(spike)
}
";

/// `(ts, account, amount)` rows as CSV.
fn csv(rows: &[(i64, usize, f64)]) -> String {
    std::iter::once("ts,account,amount\n".to_owned())
        .chain(rows.iter().map(|(t, k, v)| format!("{t},acct{k},{v}\n")))
        .collect()
}

/// 3,000 events a second apart over two keys, with a spike now and then.
fn sorted() -> Vec<(i64, usize, f64)> {
    (0..3000)
        .map(|i| {
            let v = ((i * 37) % 11) as f64 + if i % 500 == 250 { 40.0 } else { 0.0 };
            (1_700_000_000 + i as i64, i % 2, v)
        })
        .collect()
}

struct Dir {
    dir: tempfile::TempDir,
}

impl Dir {
    fn new() -> Dir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("r.adr"), RULES).unwrap();
        Dir { dir }
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).to_str().unwrap().to_owned()
    }

    /// `adr run` on `rows` with `extra` flags: (exit code, scored CSV, JSON summary,
    /// standard error).
    fn run(
        &self,
        rows: &[(i64, usize, f64)],
        extra: &[&str],
    ) -> (i32, String, serde_json::Value, String) {
        let input = self.path("in.csv");
        std::fs::write(&input, csv(rows)).unwrap();
        let (rules, out) = (self.path("r.adr"), self.path("scored.csv"));
        let mut args = vec![
            "run",
            &rules,
            "--input",
            &input,
            "--output",
            &out,
            "--json",
            "--no-notify",
        ];
        args.extend_from_slice(extra);
        let run = adr(&args, None);
        let summary = run
            .stderr
            .lines()
            .last()
            .and_then(|l| serde_json::from_str(l).ok())
            .unwrap_or(serde_json::Value::Null);
        let scored = std::fs::read_to_string(&out).unwrap_or_default();
        (run.code, scored, summary, run.stderr)
    }
}

#[test]
fn a_shuffled_stream_within_the_lateness_is_scored_as_the_sorted_one() {
    let d = Dir::new();
    let rows = sorted();
    let (code, want, _, err) = d.run(&rows, &[]);
    assert_eq!(code, 0, "{err}");
    // reverse every block of 9 events: each arrives up to 8 s out of place
    let mut shuffled = rows.clone();
    shuffled.chunks_mut(9).for_each(<[_]>::reverse);
    let (code, _, _, err) = d.run(&shuffled, &[]);
    assert_ne!(code, 0, "going back in time is refused without a lateness");
    assert!(err.contains("earlier than"), "{err}");
    let (code, got, summary, err) = d.run(&shuffled, &["--lateness", "10s"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(got, want, "the scored rows differ from the sorted run's");
    let r = &summary["reorder"];
    assert_eq!(r["late"], 0, "{summary}");
    assert!(r["reordered"].as_u64().unwrap() > 2000, "{summary}");
    assert!(r["peak_held"].as_u64().unwrap() <= 20, "{summary}");
    assert_eq!(summary["rows"], rows.len());
    assert!(want.lines().filter(|l| l.contains("anomaly")).count() >= 3);
}

#[test]
fn adr_explain_with_a_lateness_sees_what_the_sorted_stream_shows() {
    let d = Dir::new();
    let rows = sorted();
    let mut shuffled = rows.clone();
    shuffled.chunks_mut(9).for_each(<[_]>::reverse);
    let explain = |rows: &[(i64, usize, f64)], extra: &[&str]| {
        let input = d.path("explain.csv");
        std::fs::write(&input, csv(rows)).unwrap();
        let rules = d.path("r.adr");
        // the spike at event 1750, on acct0
        let mut args = vec![
            "explain",
            &rules,
            "--input",
            &input,
            "--at",
            "1700001750",
            "--key",
            "acct0",
            "--json",
        ];
        args.extend_from_slice(extra);
        let run = adr(&args, None);
        assert_eq!(run.code, 0, "{}", run.stderr);
        let doc: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
        doc[0]["detectors"].clone()
    };
    let want = explain(&rows, &[]);
    assert_eq!(want[0]["verdict"], "anomaly", "{want}");
    assert_eq!(explain(&shuffled, &["--lateness", "10s"]), want);
}

#[test]
fn events_later_than_the_lateness_are_counted_reported_and_not_scored() {
    let d = Dir::new();
    let mut rows = sorted();
    // three stragglers an hour late, among the rest
    for at in [1000, 1500, 2000] {
        rows.insert(at, (1_700_000_000 + at as i64 - 3600, 1, 5.0));
    }
    let (code, scored, summary, err) = d.run(&rows, &["--lateness", "30s"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(summary["reorder"]["late"], 3, "{summary}");
    assert_eq!(summary["rows"], rows.len() - 3);
    assert_eq!(
        scored.lines().count(),
        rows.len() - 3 + 1,
        "header and the placed rows"
    );
    // in the log, times as everywhere else, not nanoseconds
    assert!(
        err.contains("event at 2023-11-14T21:30:00Z for key `acct1` came after the watermark 2023-11-14T22:29:29Z"),
        "{err}"
    );
    assert!(!err.contains("1699997"), "{err}");
    // the person's summary says it too
    let input = d.path("in.csv");
    let text = adr(
        &[
            "run",
            &d.path("r.adr"),
            "--input",
            &input,
            "--lateness",
            "30s",
            "--no-notify",
        ],
        None,
    );
    assert!(
        text.stderr.contains("3 too late (not scored)"),
        "{}",
        text.stderr
    );
    // and `adr explain` says why the first straggler has no explanation
    let rules = d.path("r.adr");
    let at = (1_700_000_000i64 + 1000 - 3600).to_string();
    for json in [false, true] {
        let mut args = vec![
            "explain",
            &rules,
            "--input",
            &input,
            "--lateness",
            "30s",
            "--at",
            &at,
            "--key",
            "acct1",
        ];
        if json {
            args.push("--json");
        }
        let explained = adr(&args, None);
        assert_eq!(explained.code, 1, "{}", explained.stderr);
        assert!(
            explained.stderr.contains(
                "the event at 2023-11-14T21:30:00Z for key `acct1` (row 1001) was not scored: it came after the watermark 2023-11-14T22:29:29Z"
            ),
            "{}",
            explained.stderr
        );
        assert!(
            !explained.stderr.contains("no event at"),
            "{}",
            explained.stderr
        );
    }
}

#[test]
fn the_buffer_is_bounded_and_every_event_is_scored() {
    let d = Dir::new();
    let mut rows = sorted();
    rows.chunks_mut(9).for_each(<[_]>::reverse);
    let (code, _, summary, err) = d.run(&rows, &["--lateness", "1d", "--max-held", "100"]);
    assert_eq!(code, 0, "{err}");
    let r = &summary["reorder"];
    assert!(r["peak_held"].as_u64().unwrap() <= 101, "{summary}");
    assert!(r["released_early"].as_u64().unwrap() > 0, "{summary}");
    assert_eq!(summary["rows"], rows.len(), "{summary}");
    let bad = adr(
        &["run", &d.path("r.adr"), "--lateness", "soon"],
        Some("ts,account,amount\n"),
    );
    assert_ne!(bad.code, 0);
    assert!(bad.stderr.contains("not a duration"), "{}", bad.stderr);
}

/// The times of every event the engine scored, in order.
struct Times(Arc<Mutex<Vec<i64>>>);

impl Sink for Times {
    fn batch(&mut self, view: &BatchView<'_>) -> std::io::Result<()> {
        self.0
            .lock()
            .unwrap()
            .extend_from_slice(&view.chunk.timestamps[..view.chunk.len]);
        Ok(())
    }
}

/// An engine on `d`'s rules with `lateness_ns` and the pushed `columns`, and the times
/// it scores; the plugin folder must outlive it.
fn embedded(
    d: &Dir,
    lateness_ns: i64,
    columns: &[&str],
) -> (Engine, Arc<Mutex<Vec<i64>>>, tempfile::TempDir) {
    let plugins = plugin_dir(&[&built().statistical]);
    let search = SearchPath::explicit([plugins.path().to_path_buf()]);
    let times = Arc::new(Mutex::new(Vec::new()));
    let engine = EngineBuilder::new([d.path("r.adr")])
        .plugins(search.clone())
        .registry(Arc::new(Registry::load(&search).unwrap()))
        .lateness(lateness_ns, 1000)
        .columns(columns)
        .sink(Box::new(Times(Arc::clone(&times))))
        .build()
        .unwrap();
    (engine, times, plugins)
}

#[test]
fn an_embedded_engine_scores_pushed_events_in_event_time() {
    let d = Dir::new();
    let (mut engine, times, _plugins) = embedded(&d, 5_000_000_000, &["amount"]);
    let s = 1_000_000_000;
    let mut events = Events::new(&["amount"], 1);
    for t in [10, 12, 11, 16, 13, 30, 2, 29] {
        events.push(t * s, &["a"], &[1.0]).unwrap();
    }
    engine.push_batch(&events).unwrap();
    // watermark 25 s: 10..=16 are out, in order; 2 s was late; 29 and 30 wait
    assert_eq!(*times.lock().unwrap(), [10, 11, 12, 13, 16].map(|t| t * s));
    let summary = engine.finish().unwrap();
    assert_eq!(
        *times.lock().unwrap(),
        [10, 11, 12, 13, 16, 29, 30].map(|t| t * s)
    );
    let r = summary.reorder.unwrap();
    assert_eq!((r.late, r.reordered), (1, 3));
}

#[test]
fn a_reload_that_reads_other_fields_scores_the_held_events_first() {
    let d = Dir::new();
    let (mut engine, times, _plugins) = embedded(&d, 60_000_000_000, &["amount", "fee"]);
    let s = 1_000_000_000;
    let mut events = Events::new(&["amount", "fee"], 1);
    for t in [1, 3, 2] {
        events.push(t * s, &["a"], &[1.0, 0.1]).unwrap();
    }
    engine.push_batch(&events).unwrap();
    assert!(times.lock().unwrap().is_empty(), "all within the lateness");
    std::fs::write(
        d.path("r.adr"),
        RULES.replace("fields = amount", "fields = amount, fee"),
    )
    .unwrap();
    engine.reload_now().expect("the reload applies");
    // the held events were scored, in order, by the rules they were read for
    assert_eq!(*times.lock().unwrap(), [1, 2, 3].map(|t| t * s));
    let summary = engine.finish().unwrap();
    assert_eq!(summary.reorder.unwrap().released_early, 3);
}

#[test]
fn a_batch_refused_for_going_back_in_time_changes_no_key_and_can_be_pushed_again() {
    let d = Dir::new();
    let plugins = plugin_dir(&[&built().statistical]);
    let search = SearchPath::explicit([plugins.path().to_path_buf()]);
    let times = Arc::new(Mutex::new(Vec::new()));
    let mut engine = EngineBuilder::new([d.path("r.adr")])
        .plugins(search.clone())
        .registry(Arc::new(Registry::load(&search).unwrap()))
        .sink(Box::new(Times(Arc::clone(&times))))
        .build()
        .unwrap();
    let s = 1_000_000_000;
    let batch = |rows: &[(i64, &str)]| {
        let mut events = Events::new(&["amount"], 1);
        for &(t, key) in rows {
            events.push(t * s, &[key], &[1.0]).unwrap();
        }
        events
    };
    engine.push_batch(&batch(&[(5, "a"), (7, "b")])).unwrap();
    // `a` goes forward, then `a` again and `b` go back: refused whole.
    let err = engine
        .push_batch(&batch(&[(20, "a"), (30, "a"), (6, "b")]))
        .unwrap_err();
    assert!(
        err.to_string().contains("earlier than that key's previous"),
        "{err}"
    );
    // Nothing of it was taken: `a` is still at 5 s, so 10 s is no step back.
    engine.push_batch(&batch(&[(10, "a"), (8, "b")])).unwrap();
    assert_eq!(*times.lock().unwrap(), [5, 7, 10, 8].map(|t| t * s));
}
