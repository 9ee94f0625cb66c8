//! Hot reload through the embedding API: a million events stream through the engine while
//! its rule files are rewritten a hundred times (valid and invalid edits alternating,
//! written in place, by atomic rename, by deleting and re-creating the file, and by a
//! Kubernetes-style `..data` symlink swap), seen by the file watch alone.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use adr_engine::embed::{Engine, EngineBuilder, Events};
use adr_engine::plugins::{Registry, SearchPath};
use adr_engine::reload::ReloadStatus;
use adr_engine::run::{BatchView, Sink};
use adr_sdk::ParamValue;
use adr_tests::{built, plugin_dir};

const BATCH: usize = 1_000;
const SYMBOLS: usize = 10;

/// What the engine said about each event, in the order it said it.
#[derive(Debug, Default)]
struct Record {
    /// (row, key, `spike` raw score bits, `spike` normalised bits, feature `r` bits).
    events: Vec<(u64, u32, u64, u64, u64)>,
}

struct Recorder(Arc<Mutex<Record>>);

impl Sink for Recorder {
    fn batch(&mut self, view: &BatchView<'_>) -> std::io::Result<()> {
        let spike = view
            .plan
            .detectors
            .iter()
            .position(|d| d.name == "spike")
            .expect("every applied rule set has `spike`");
        let r = view
            .plan
            .features
            .iter()
            .position(|f| f.name == "r")
            .expect("and `r`");
        let scores = &view.outcome.detectors[spike];
        let mut record = self.0.lock().unwrap();
        for i in 0..view.chunk.len {
            record.events.push((
                view.chunk.first_row + i as u64,
                view.keys[i],
                scores.raw[i].to_bits(),
                scores.normalised[i].to_bits(),
                view.outcome.features[r][i].to_bits(),
            ));
        }
        Ok(())
    }
}

/// Ten symbols' one-second bars, interleaved; a volume burst now and then.
struct Market {
    seed: u64,
    t: i64,
    price: [f64; SYMBOLS],
}

impl Market {
    fn new() -> Self {
        Market {
            seed: 7,
            t: 1_700_000_000_000_000_000,
            price: [100.0; SYMBOLS],
        }
    }

    fn uniform(&mut self) -> f64 {
        self.seed = self
            .seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.seed >> 11) as f64 / (1u64 << 53) as f64
    }

    fn batch(&mut self, events: &mut Events) {
        events.clear();
        for i in 0..BATCH {
            let s = i % SYMBOLS;
            if s == 0 {
                self.t += 1_000_000_000;
            }
            let step = (self.uniform() - 0.5) * 0.002;
            self.price[s] *= 1.0 + step;
            let burst = if self.uniform() < 1e-3 { 50.0 } else { 0.0 };
            let volume = 10.0 + 5.0 * self.uniform() + burst;
            let key = format!("S{s}");
            events
                .push(self.t, &[key.as_str()], &[self.price[s], volume])
                .expect("shape");
        }
    }
}

fn common(threshold: f64) -> String {
    format!(
        "// edited by the reload test\n\
         input market {{\n    time = ts\n    key = symbol\n    fields = close, volume\n}}\n\
         feature r = log_return(close)\n\
         detector spike = statistical.zscore(window = 200, threshold = 4) on r\n\
         detector burst = statistical.mad(window = 100, threshold = {threshold:?}, side = upper) on volume\n\
         ensemble stress {{\n    vote = any(spike, burst)\n}}\n"
    )
}

fn alerts(hold: u64) -> String {
    format!(
        "alert stress {{\n    when severity >= medium for {hold} events\n    cooldown 10m\n}}\n"
    )
}

/// The ways the test breaks `common.adr`: each must be reported and never applied.
const BROKEN_COMMON: [(&str, &str); 6] = [
    (
        "syntax error",
        "detector burst = statistical.mad(window = 100 on volume\n",
    ),
    (
        "unknown detector",
        "detector burst = statistical.mdd(window = 100) on volume\n",
    ),
    (
        "parameter out of range",
        "detector burst = statistical.mad(window = 1) on volume\n",
    ),
    ("key column changed", "KEY"),
    // one extra zero: this aborted the whole watching process (a 1.6 TB allocation)
    (
        "a window past what state can afford",
        "detector burst = statistical.mad(window = 1000000000000) on volume\n",
    ),
    (
        "an unsigned parameter below zero",
        "detector burst = statistical.mad(window = 100, min_points = -1) on volume\n",
    ),
];

fn broken_common(variant: usize, threshold: f64) -> String {
    let (_, line) = BROKEN_COMMON[variant];
    let good = common(threshold);
    if line == "KEY" {
        return good.replace("key = symbol", "key = exchange");
    }
    good.lines()
        .map(|l| {
            if l.starts_with("detector burst") {
                line.trim_end().to_owned()
            } else {
                l.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The rule files: `common.adr`, a plain file, and `cm/alerts.adr`, a symlink into a
/// `..data` folder swapped the way a Kubernetes ConfigMap volume is.
struct Files {
    dir: PathBuf,
    configmap_version: u32,
}

impl Files {
    /// A fresh folder holding `common.adr` and the ConfigMap-style `cm/alerts.adr`.
    fn written(common: &str, alerts: &str) -> (tempfile::TempDir, Files) {
        let dir = tempfile::tempdir().unwrap();
        let mut files = Files {
            dir: dir.path().to_path_buf(),
            configmap_version: 0,
        };
        files.in_place(common);
        files.configmap(alerts);
        (dir, files)
    }

    fn common(&self) -> PathBuf {
        self.dir.join("common.adr")
    }

    fn alerts(&self) -> PathBuf {
        self.dir.join("cm/alerts.adr")
    }

    fn in_place(&self, text: &str) {
        std::fs::write(self.common(), text).unwrap();
    }

    fn atomic_rename(&self, text: &str) {
        let tmp = self.dir.join(".common.adr.swp");
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, self.common()).unwrap();
    }

    fn configmap(&mut self, text: &str) {
        let cm = self.dir.join("cm");
        let old = cm.join(format!("..v{}", self.configmap_version));
        self.configmap_version += 1;
        let new = cm.join(format!("..v{}", self.configmap_version));
        std::fs::create_dir_all(&new).unwrap();
        std::fs::write(new.join("alerts.adr"), text).unwrap();
        let tmp = cm.join("..data_tmp");
        std::os::unix::fs::symlink(new.file_name().unwrap(), &tmp).unwrap();
        std::fs::rename(&tmp, cm.join("..data")).unwrap();
        if !cm.join("alerts.adr").exists() {
            std::os::unix::fs::symlink("..data/alerts.adr", cm.join("alerts.adr")).unwrap();
        }
        let _ = std::fs::remove_dir_all(old);
    }
}

fn burst_threshold(engine: &Engine) -> f64 {
    let burst = engine
        .plan()
        .detectors
        .iter()
        .find(|d| d.name == "burst")
        .unwrap();
    match burst.params.iter().find(|(n, _)| n == "threshold") {
        Some((_, ParamValue::Float(t))) => *t,
        other => panic!("unexpected threshold {other:?}"),
    }
}

fn hold(engine: &Engine) -> adr_engine::rules::ast::Hold {
    engine.plan().alerts[0].hold
}

struct Stream {
    market: Market,
    events: Events,
    batches: usize,
}

impl Stream {
    fn new() -> Self {
        Stream {
            market: Market::new(),
            events: Events::new(&["close", "volume"], 1),
            batches: 0,
        }
    }

    fn push(&mut self, engine: &mut Engine) {
        self.market.batch(&mut self.events);
        engine.push_batch(&self.events).expect("a batch evaluates");
        self.batches += 1;
    }

    /// Streams until the engine's reload status satisfies `seen`.
    fn until(&mut self, engine: &mut Engine, what: &str, seen: impl Fn(&ReloadStatus) -> bool) {
        let started = Instant::now();
        loop {
            self.push(engine);
            if seen(&engine.reload_status()) {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "{what} was not seen within 30 s; status: {:#?}",
                engine.reload_status()
            );
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

fn registry() -> (tempfile::TempDir, Arc<Registry>) {
    let plugins = plugin_dir(&[&built().statistical]);
    let registry = Registry::load(&SearchPath::explicit([plugins.path().to_path_buf()]))
        .expect("plugins load");
    (plugins, Arc::new(registry))
}

fn start(files: &Files, registry: &Arc<Registry>, watch: bool) -> (Engine, Arc<Mutex<Record>>) {
    let record = Arc::new(Mutex::new(Record::default()));
    let engine = EngineBuilder::new([files.common(), files.alerts()])
        .registry(Arc::clone(registry))
        .watch_plugins(false)
        .watch(watch)
        .debounce(Duration::from_millis(30))
        .sink(Box::new(Recorder(Arc::clone(&record))))
        .build()
        .expect("the first rules build");
    (engine, record)
}

#[test]
fn a_million_events_through_a_hundred_rewrites_lose_nothing() {
    let (_plugins, registry) = registry();
    let (mut threshold, mut hold_events) = (3.0, 2u64);
    let (_dir, mut files) = Files::written(&common(threshold), &alerts(hold_events));
    let first_common = common(threshold);
    let first_alerts = alerts(hold_events);

    let (mut engine, record) = start(&files, &registry, true);
    let mut stream = Stream::new();
    for _ in 0..10 {
        stream.push(&mut engine);
    }
    let (mut valid, mut refused) = (0u64, 0u64);
    for edit in 0..100 {
        let pair = edit / 2;
        let status = engine.reload_status();
        if edit % 2 == 0 {
            // A valid edit, written one of four ways.
            let how = pair % 4;
            if how == 3 {
                hold_events = hold_events % 3 + 1;
                // The invalid edit before may have broken common.adr only if the next
                // valid one rewrites it; a symlink swap follows a broken alerts file.
                files.configmap(&alerts(hold_events));
            } else {
                let before = threshold;
                threshold = 3.0 + ((pair % 7) as f64) * 0.5 + if edit == 0 { 0.25 } else { 0.0 };
                let text = common(threshold);
                match how {
                    0 => files.in_place(&text),
                    1 => files.atomic_rename(&text),
                    _ => {
                        std::fs::remove_file(files.common()).unwrap();
                        let failures = status.failures;
                        stream.until(&mut engine, "the deletion of common.adr", |s| {
                            s.failures > failures
                        });
                        assert_eq!(
                            burst_threshold(&engine),
                            before,
                            "a deleted file changes nothing"
                        );
                        refused += 1;
                        files.in_place(&text);
                    }
                }
            }
            let generation = status.generation;
            stream.until(&mut engine, &format!("valid edit {edit}"), |s| {
                s.generation > generation
            });
            valid += 1;
            assert_eq!(burst_threshold(&engine), threshold, "edit {edit} applied");
            assert_eq!(
                hold(&engine),
                adr_engine::rules::ast::Hold::Events(hold_events),
                "edit {edit} applied"
            );
            let swap = engine.reload_status().last_swap.expect("a swap report");
            for kept in ["detector `spike`", "feature `r`"] {
                assert!(
                    swap.kept.iter().any(|k| k == kept),
                    "edit {edit}: {kept} keeps its state; report {swap:?}"
                );
            }
        } else {
            // An invalid edit of the file the next valid edit rewrites.
            let next_how = (pair + 1) % 4;
            let what = if next_how == 3 {
                files.configmap(
                    "alert stress {\n    when severity >= catastrophic for 2 events\n}\n",
                );
                "an unknown severity"
            } else {
                let variant = (pair / 4 + pair) % BROKEN_COMMON.len();
                files.in_place(&broken_common(variant, threshold));
                BROKEN_COMMON[variant].0
            };
            let failures = status.failures;
            stream.until(&mut engine, &format!("invalid edit {edit} ({what})"), |s| {
                s.failures > failures
            });
            refused += 1;
            let now = engine.reload_status();
            assert_eq!(
                now.generation, status.generation,
                "edit {edit} ({what}) is never applied"
            );
            assert!(now.last_error.is_some(), "edit {edit} ({what}) is reported");
            assert_eq!(
                burst_threshold(&engine),
                threshold,
                "edit {edit} ({what}) is not applied"
            );
            assert_eq!(
                hold(&engine),
                adr_engine::rules::ast::Hold::Events(hold_events),
                "edit {edit} ({what}) is not applied"
            );
        }
    }
    while stream.batches * BATCH < 1_000_000 {
        stream.push(&mut engine);
    }
    let status = engine.reload_status();
    assert_eq!(status.generation, valid, "every valid edit applied once");
    assert!(
        status.failures >= refused,
        "every invalid edit reported: {} failures for {refused} refusals",
        status.failures
    );
    let summary = engine.finish().expect("finishes");
    let events = (stream.batches * BATCH) as u64;
    eprintln!(
        "{events} events, {valid} edits applied, {refused} refused ({} failures reported), longest swap pause {:.3} ms",
        status.failures,
        status.longest_swap_ns as f64 / 1e6
    );
    assert_eq!(summary.rows, events);

    // Every event scored exactly once, in order; per key in order.
    let record = std::mem::take(&mut *record.lock().unwrap());
    assert_eq!(
        record.events.len() as u64,
        events,
        "every event scored exactly once"
    );
    let mut last_row_of_key: HashMap<u32, u64> = HashMap::new();
    for (i, e) in record.events.iter().enumerate() {
        assert_eq!(e.0, i as u64 + 1, "rows come out once each, in order");
        let last = last_row_of_key.insert(e.1, e.0).unwrap_or(0);
        assert!(e.0 > last, "per-key order kept");
    }

    // The unchanged detector and feature: identical to a run without reloads.
    let reference_dir = tempfile::tempdir().unwrap();
    let reference_files = Files {
        dir: reference_dir.path().to_path_buf(),
        configmap_version: 0,
    };
    std::fs::write(reference_files.common(), first_common).unwrap();
    std::fs::create_dir_all(reference_dir.path().join("cm")).unwrap();
    std::fs::write(reference_files.alerts(), first_alerts).unwrap();
    let (mut reference, reference_record) = start(&reference_files, &registry, false);
    let mut replay = Stream::new();
    while replay.batches < stream.batches {
        replay.push(&mut reference);
    }
    reference.finish().expect("finishes");
    let reference_record = reference_record.lock().unwrap();
    let differing = record
        .events
        .iter()
        .zip(&reference_record.events)
        .position(|(a, b)| a != b);
    assert_eq!(
        differing, None,
        "`spike` and `r` score every event as without reloads"
    );
    assert!(events >= 1_000_000);
}

#[test]
fn a_manual_reload_applies_at_once_and_reports_what_it_kept() {
    let (_plugins, registry) = registry();
    let (_dir, files) = Files::written(&common(3.0), &alerts(2));
    let (mut engine, _record) = start(&files, &registry, false);
    let mut stream = Stream::new();
    stream.push(&mut engine);
    // Nothing changed: a manual reload keeps everything.
    let report = engine.reload_now().expect("reloads");
    assert!(report.all_kept(), "{report:?}");
    assert_eq!(report.keys, SYMBOLS);
    files.in_place(&common(5.0).replace("any(spike, burst)", "all(spike, burst)"));
    let report = engine.reload_now().expect("reloads");
    assert!(
        report.fresh.contains(&"detector `burst`".to_owned()),
        "{report:?}"
    );
    assert!(
        report
            .fresh
            .iter()
            .any(|f| f.starts_with("alert `stress` (hold only: its cooldown carries over)")),
        "{report:?}"
    );
    assert!(
        report.kept.contains(&"detector `spike`".to_owned()),
        "{report:?}"
    );
    // An edit that drops a detector and adds one.
    files.in_place(
        &common(5.0)
            .replace("detector burst", "detector volume_jump")
            .replace("mad(window = 100", "zscore(window = 50")
            .replace("any(spike, burst)", "any(spike, volume_jump)"),
    );
    let report = engine.reload_now().expect("reloads");
    assert!(
        report.dropped.contains(&"detector `burst`".to_owned()),
        "{report:?}"
    );
    assert!(
        report.fresh.contains(&"detector `volume_jump`".to_owned()),
        "{report:?}"
    );
    stream.push(&mut engine);
    // A bad edit: refused with the diagnostics, the running rules stay.
    files.in_place("detector = oops\n");
    let why = engine.reload_now().expect_err("refused");
    assert!(why.contains("error"), "{why}");
    assert!(engine
        .plan()
        .detectors
        .iter()
        .any(|d| d.name == "volume_jump"));
    let status = engine.reload_status();
    assert_eq!((status.generation, status.failures), (3, 1));
    assert!(status
        .last_error
        .as_deref()
        .is_some_and(|e| e.contains("error")));
    // A whole-series detector cannot join a running stream.
    files.in_place(&common(5.0).replace("zscore(window = 200", "zscore(window = batch"));
    let why = engine.reload_now().expect_err("refused");
    assert!(why.contains("needs the whole series"), "{why}");
    assert_eq!(engine.reload_status().generation, 3);
    stream.push(&mut engine);
    let summary = engine.finish().unwrap();
    assert_eq!(summary.rows, 3 * BATCH as u64);
    assert_eq!(summary.reloads.generation, 3);
}

#[test]
fn pushed_events_missing_a_field_are_refused_whole() {
    let (_plugins, registry) = registry();
    let (_dir, files) = Files::written(&common(3.0), &alerts(2));
    let (mut engine, record) = start(&files, &registry, false);
    let mut events = Events::new(&["close"], 1);
    events.push(1, &["S0"], &[1.0]).unwrap();
    let err = engine.push_batch(&events).unwrap_err().to_string();
    assert_eq!(
        err,
        "the rules read field `volume`, which the events do not carry (they have: close)"
    );
    assert!(
        record.lock().unwrap().events.is_empty(),
        "nothing of it was evaluated"
    );
    let err = events
        .push(2, &["S0", "extra"], &[1.0])
        .unwrap_err()
        .to_string();
    assert_eq!(err, "an event has 2 key parts, its batch 1");
    // A reload that reads a field the stream does not carry is refused.
    files
        .in_place(&common(3.0).replace("fields = close, volume", "fields = close, volume, trades"));
    let why = engine.reload_now().unwrap_err();
    assert!(
        why.contains("field `trades`, which the stream does not carry"),
        "{why}"
    );
    engine
        .push(10, &["S0"], &[("close", 1.0), ("volume", 2.0)])
        .expect("a single event");
    assert_eq!(record.lock().unwrap().events.len(), 1);
}

#[test]
fn panicking_detectors_during_reloads_are_reported_and_the_engine_goes_on() {
    let plugins = plugin_dir(&[&built().statistical, &built().faulty]);
    let registry = Arc::new(
        Registry::load(&SearchPath::explicit([plugins.path().to_path_buf()])).expect("plugins"),
    );
    let with = |params: &str| {
        common(3.0).replace(
            "ensemble stress {\n    vote = any(spike, burst)",
            &format!(
                "detector broken = faulty.panics({params}) on close\n\
                 ensemble stress {{\n    vote = any(spike, burst, broken)"
            ),
        )
    };
    let (_dir, files) = Files::written(&with("after = 1000000"), &alerts(2));
    let (mut engine, record) = start(&files, &registry, false);
    let mut stream = Stream::new();
    stream.push(&mut engine);

    // A detector that panics while being built: the reload is refused, nothing changes.
    files.in_place(&with("after = 1000000, in_new = true"));
    let why = engine.reload_now().expect_err("refused");
    assert!(why.contains("deliberate panic while being built"), "{why}");
    assert_eq!(engine.reload_status().generation, 0);
    stream.push(&mut engine);
    assert!(engine.take_failures().is_empty());

    // One that panics while scoring right after the swap: the swap completes, the panic
    // costs that detector's verdicts for the batch, every event is still scored.
    files.in_place(&with("after = 5"));
    let report = engine.reload_now().expect("swapped");
    assert!(
        report.fresh.contains(&"detector `broken`".to_owned()),
        "{report:?}"
    );
    stream.push(&mut engine);
    let failures = engine.take_failures();
    assert_eq!(failures.len(), SYMBOLS, "one failure per key: {failures:?}");
    assert!(
        failures[0]
            .message
            .contains("deliberate panic after 5 points"),
        "{failures:?}"
    );
    stream.push(&mut engine);
    let summary = engine.finish().unwrap();
    assert_eq!(summary.rows, 4 * BATCH as u64);
    assert_eq!(record.lock().unwrap().events.len(), 4 * BATCH);
}

#[test]
fn an_engine_refuses_to_start_on_missing_or_invalid_rules() {
    let (_plugins, registry) = registry();
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nowhere.adr");
    let err = EngineBuilder::new([&missing])
        .registry(Arc::clone(&registry))
        .build()
        .unwrap_err();
    assert!(
        matches!(err, adr_engine::embed::EngineError::Read(_)),
        "{err}"
    );
    assert!(err.to_string().contains("nowhere.adr"), "{err}");
    let bad = dir.path().join("bad.adr");
    std::fs::write(&bad, common(3.0).replace("zscore", "zscroe")).unwrap();
    let err = EngineBuilder::new([&bad])
        .registry(registry)
        .build()
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("the rules have errors:"), "{err}");
    assert!(err.contains("did you mean `zscore`?"), "{err}");
}
