//! Checkpoints through the embedding API (issue 22's restarts): an engine stopped and
//! restored from its checkpoint goes on exactly as one never stopped (every judgement to
//! the bit, the alerts fired once and never twice, cooldowns kept); a checkpoint from
//! other rules, or bytes that are no checkpoint, are refused and the engine runs on cold,
//! never panicking.

use std::sync::mpsc::Receiver;
use std::sync::Arc;

use adr_engine::embed::{BatchResult, ChannelSink, Engine, EngineBuilder, Events};
use adr_engine::evaluator::CheckpointError;
use adr_engine::io::timestamp::TimeFormat;
use adr_engine::plugins::{Registry, SearchPath};
use adr_tests::{built, plugin_dir, workspace};

/// Statistical and realtime detectors, a feature with memory, an alert held for two
/// events with a cooldown per symbol.
const RULES: &str = "
input market {
    time   = ts
    key    = symbol
    fields = open, high, low, close, volume
}
feature returns = log_return(close)
feature calm    = ewma(returns, 0.1)
detector jump   = statistical.zscore(window = 60, threshold = 4) on returns
detector robust = statistical.mad(window = 60, threshold = 6) on returns
detector drift  = realtime.cusum(h = 8) on calm
detector burst  = statistical.mad(window = 60, threshold = 8, side = upper) on volume
ensemble stress {
    vote = at_least(2, jump, robust, drift, burst)
    severity {
        high   when jump and burst
        medium otherwise
    }
}
alert stress {
    when     severity >= medium for 2 events
    cooldown 45m per key
    group by symbol
    notify   log
}
";

struct Fixture {
    registry: Arc<Registry>,
    rules: std::path::PathBuf,
    _dir: tempfile::TempDir,
    _plugins: tempfile::TempDir,
}

fn fixture(rules: &str) -> Fixture {
    let plugins = plugin_dir(&[&built().statistical, &built().realtime]);
    let registry =
        Arc::new(Registry::load(&SearchPath::explicit([plugins.path().to_path_buf()])).unwrap());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rules.adr");
    std::fs::write(&path, rules).unwrap();
    Fixture {
        registry,
        rules: path,
        _dir: dir,
        _plugins: plugins,
    }
}

fn engine(f: &Fixture) -> (Engine, Receiver<BatchResult>) {
    let (sink, results) = ChannelSink::new(100_000);
    let engine = EngineBuilder::new([&f.rules])
        .registry(Arc::clone(&f.registry))
        .watch_plugins(false)
        .sink(Box::new(sink))
        .build()
        .expect("the rules build");
    (engine, results)
}

/// The example market for two symbols, interleaved: (time, symbol, values).
fn market() -> Vec<(i64, String, [f64; 5])> {
    let text = std::fs::read_to_string(workspace().join("examples/market.csv")).unwrap();
    let mut rows = Vec::new();
    for line in text.lines().skip(1) {
        let cols: Vec<&str> = line.split(',').collect();
        let time = TimeFormat::detect(cols[0]).unwrap().parse(cols[0]).unwrap();
        let v: Vec<f64> = cols[2..7].iter().map(|c| c.parse().unwrap()).collect();
        let v = [v[0], v[1], v[2], v[3], v[4]];
        rows.push((time, "BTC-USD".to_owned(), v));
        rows.push((time, "ETH-USD".to_owned(), v.map(|x| x / 30.0)));
    }
    rows
}

fn push(engine: &mut Engine, rows: &[(i64, String, [f64; 5])]) {
    for chunk in rows.chunks(333) {
        let mut events = Events::new(&["open", "high", "low", "close", "volume"], 1);
        for (t, key, v) in chunk {
            events.push(*t, &[key.as_str()], v).unwrap();
        }
        engine.push_batch(&events).unwrap();
    }
}

/// Each event's judgements and the alerts, as comparable text (times and keys, not row
/// numbers, which count from each engine's start).
fn said(results: &Receiver<BatchResult>) -> (Vec<String>, Vec<String>) {
    let mut events = Vec::new();
    let mut alerts = Vec::new();
    for batch in results.try_iter() {
        for e in batch.events {
            events.push(format!("{} {} {:?}", e.time, e.key, e.judgements));
        }
        for a in batch.alerts {
            alerts.push(format!(
                "{} {} {} {} {}",
                a["alert"], a["key"], a["time"], a["severity"], a["score"]
            ));
        }
    }
    (events, alerts)
}

#[test]
fn a_restored_engine_goes_on_exactly_as_one_never_stopped() {
    let f = fixture(RULES);
    let rows = market();
    // Cut just after the crash's alert: the rest is inside its cooldown.
    let crash = TimeFormat::detect("2025-01-15T10:33:00Z")
        .unwrap()
        .parse("2025-01-15T10:33:00Z")
        .unwrap();
    let cut = rows.iter().position(|r| r.0 >= crash).unwrap();

    let (mut whole, whole_results) = engine(&f);
    push(&mut whole, &rows[..cut]);
    let (_, before) = said(&whole_results);
    assert!(!before.is_empty(), "the crash fires before the cut");
    push(&mut whole, &rows[cut..]);
    let (want_events, want_alerts) = said(&whole_results);

    let (mut first, _first_results) = engine(&f);
    push(&mut first, &rows[..cut]);
    let checkpoint = first.checkpoint();
    first.finish().unwrap();

    let (mut restored, results) = engine(&f);
    let report = restored.restore(&checkpoint).unwrap();
    assert_eq!(report.keys, 2);
    assert_eq!(report.cold_detectors, 0, "every detector saves its state");
    push(&mut restored, &rows[cut..]);
    let (events, alerts) = said(&results);
    assert_eq!(events.len(), want_events.len());
    for (got, want) in events.iter().zip(&want_events) {
        assert_eq!(got, want);
    }
    assert_eq!(alerts, want_alerts, "fired once, never twice");

    // Without the checkpoint the same events are judged otherwise: it carried state.
    let (mut cold, cold_results) = engine(&f);
    push(&mut cold, &rows[cut..]);
    let (cold_events, _) = said(&cold_results);
    assert_ne!(cold_events, want_events);

    // A checkpoint is restored before any event, not into a running engine.
    assert!(matches!(
        restored.restore(&checkpoint),
        Err(CheckpointError::NotFresh(2))
    ));
}

#[test]
fn checkpoints_of_other_rules_or_damaged_are_refused_and_the_engine_runs_on_cold() {
    let f = fixture(RULES);
    let rows = market();
    let (mut first, _r) = engine(&f);
    push(&mut first, &rows[..2000]);
    let checkpoint = first.checkpoint();

    let other = fixture(&RULES.replace("threshold = 4", "threshold = 5"));
    let (mut changed, _r) = engine(&other);
    let err = changed.restore(&checkpoint).unwrap_err();
    assert!(matches!(err, CheckpointError::RulesChanged(_)), "{err}");
    assert!(err.to_string().contains("detectors"), "{err}");
    push(&mut changed, &rows[2000..2400]);

    let (mut cold, cold_results) = engine(&f);
    push(&mut cold, &rows[2000..2400]);
    let (want, _) = said(&cold_results);

    // Every cut and many flipped bytes: an error or a restore, never a panic; after an
    // error the engine is as fresh as one that never restored.
    let step = (checkpoint.len() / 150).max(1);
    let mut damaged: Vec<Vec<u8>> = (0..checkpoint.len())
        .step_by(step)
        .map(|n| checkpoint[..n].to_vec())
        .collect();
    for at in (0..checkpoint.len()).step_by(step) {
        let mut bytes = checkpoint.clone();
        bytes[at] ^= 0xff;
        damaged.push(bytes);
    }
    damaged.push(vec![0xff; 64]);
    let mut huge = checkpoint[..8].to_vec();
    huge.extend_from_slice(&u64::MAX.to_le_bytes());
    damaged.push(huge);
    let mut refused = 0;
    for bytes in &damaged {
        let (mut e, results) = engine(&f);
        if e.restore(bytes).is_err() {
            refused += 1;
            push(&mut e, &rows[2000..2400]);
            let (events, _) = said(&results);
            assert_eq!(events, want, "cold after a refused checkpoint");
        }
    }
    assert!(
        refused >= damaged.len() / 2,
        "{refused} of {}",
        damaged.len()
    );
}
