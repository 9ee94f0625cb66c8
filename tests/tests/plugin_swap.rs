//! Plugin hot swap: new builds of a plugin dropped into the plugin folder while events
//! stream take over its detectors, with their state where the build can read it.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use adr_engine::embed::{Engine, EngineBuilder, Events};
use adr_engine::plugins::{Registry, SearchPath};
use adr_engine::run::{BatchView, Sink};
use adr_tests::{build_versioned_plugin, built, plugin_dir};

/// The raw score of detector `n` for each event of key `S0`, in order.
struct Counts(Arc<Mutex<Vec<f64>>>);

impl Sink for Counts {
    fn batch(&mut self, view: &BatchView<'_>) -> std::io::Result<()> {
        let n = view
            .plan
            .detectors
            .iter()
            .position(|d| d.name == "n")
            .expect("`n` runs");
        let s0 = (0..view.key_names.len() as u32).find(|&k| view.key_names.name(k) == "S0");
        let mut counts = self.0.lock().unwrap();
        for i in 0..view.chunk.len {
            if Some(view.keys[i]) == s0 {
                counts.push(view.outcome.detectors[n].raw[i]);
            }
        }
        Ok(())
    }
}

struct Stream {
    t: i64,
    events: Events,
}

impl Stream {
    /// 50 events for each of two keys.
    fn push(&mut self, engine: &mut Engine) {
        self.events.clear();
        for i in 0..100 {
            self.t += 1_000_000_000;
            let key = if i % 2 == 0 { "S0" } else { "S1" };
            let close = 100.0 + (self.t / 1_000_000_000 % 7) as f64;
            self.events.push(self.t, &[key], &[close]).unwrap();
        }
        engine.push_batch(&self.events).expect("evaluates");
    }

    fn until_generation(&mut self, engine: &mut Engine, generation: u64) {
        let started = Instant::now();
        while engine.reload_status().generation < generation {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "the new build was not swapped in; status {:#?}",
                engine.reload_status()
            );
            self.push(engine);
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// Puts a build into the plugin folder the way a deployment does: written elsewhere,
/// renamed in.
fn deploy(version: &str, plugins: &std::path::Path) {
    let staging = tempfile::tempdir().unwrap();
    let name = format!("libversioned_{version}.so");
    let built = build_versioned_plugin(version, staging.path(), &name);
    // The same file system, so the rename is atomic: copy beside, then rename.
    let beside = plugins.join(format!(".{name}.partial"));
    std::fs::copy(built, &beside).unwrap();
    std::fs::rename(beside, plugins.join(name)).unwrap();
}

#[test]
fn new_plugin_builds_take_over_a_running_stream() {
    let plugins = plugin_dir(&[&built().statistical]);
    build_versioned_plugin("1.0.0", plugins.path(), "libversioned_1.so");
    let rules = tempfile::tempdir().unwrap();
    let file = rules.path().join("count.adr");
    std::fs::write(
        &file,
        "input market {\n    time = ts\n    key = symbol\n    fields = close\n}\n\
         detector n = versioned.count() on close\n\
         detector z = statistical.zscore(window = 20) on close\n\
         ensemble e {\n    vote = any(n, z)\n}\n",
    )
    .unwrap();
    let search = SearchPath::explicit([plugins.path().to_path_buf()]);
    let registry = Arc::new(Registry::load(&search).expect("plugins load"));
    let counts = Arc::new(Mutex::new(Vec::new()));
    let mut engine = EngineBuilder::new([&file])
        .plugins(search)
        .registry(registry)
        .watch(true)
        .debounce(Duration::from_millis(50))
        .sink(Box::new(Counts(Arc::clone(&counts))))
        .build()
        .expect("engine");
    let mut stream = Stream {
        t: 1_700_000_000_000_000_000,
        events: Events::new(&["close"], 1),
    };
    for _ in 0..3 {
        stream.push(&mut engine);
    }
    assert_eq!(
        counts.lock().unwrap().last(),
        Some(&(1e6 + 150.0)),
        "build 1 counted 150 events of S0"
    );
    let mapped = engine.reload_status().libraries_mapped;
    assert_eq!(mapped, 2, "statistical and build 1");

    // Build 2 reads build 1's state: the count goes on.
    deploy("2.0.0", plugins.path());
    stream.until_generation(&mut engine, 1);
    let status = engine.reload_status();
    let swap = status.last_swap.clone().expect("a swap");
    assert_eq!(swap.moved, vec!["detector `n`".to_owned()], "{swap:?}");
    assert!(swap.kept.contains(&"detector `z`".to_owned()), "{swap:?}");
    assert_eq!(status.libraries_mapped, mapped + 1, "build 1 stays mapped");
    let before = {
        let c = counts.lock().unwrap();
        let first_v2 = c.iter().position(|&x| x >= 2e6).expect("build 2 scored");
        assert_eq!(
            c[first_v2] - 2e6,
            c[first_v2 - 1] - 1e6 + 1.0,
            "the count carried over"
        );
        c.len()
    };

    // Build 3 writes another state format: it starts from scratch, and says so.
    deploy("3.0.0", plugins.path());
    stream.until_generation(&mut engine, 2);
    let swap = engine.reload_status().last_swap.expect("a swap");
    assert_eq!(swap.reinitialised.len(), 1, "{swap:?}");
    assert!(
        swap.reinitialised[0].starts_with("detector `n`"),
        "{swap:?}"
    );
    stream.push(&mut engine);
    {
        let c = counts.lock().unwrap();
        let first_v3 = c[before..]
            .iter()
            .position(|&x| x >= 3e6)
            .expect("build 3 scored")
            + before;
        assert_eq!(c[first_v3], 3e6 + 1.0, "a fresh count");
    }
    assert_eq!(engine.reload_status().libraries_mapped, mapped + 2);
    assert_eq!(engine.reload_status().failures, 0);
    let summary = engine.finish().unwrap();
    assert_eq!(summary.reloads.generation, 2);
}
