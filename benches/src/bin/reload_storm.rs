//! Hot reload under load: how long a swap pauses the event path, and how many events per
//! second the engine keeps while its rule file is rewritten over and over.
//!
//! ```text
//! cargo build --release -p adr-plugin-statistical -p adr-benches
//! ./target/release/reload_storm [swaps]
//! ```
//!
//! The rule set has 50 ensembles of two detectors each (100 detectors, 10 keys), with an
//! alert per ensemble. First a steady run: batches of 1,000 events, no reloads. Then the
//! storm: the same batches while another thread rewrites the rule file every 10 ms (one
//! ensemble's threshold changes each time), watched with a 5 ms debounce, until `swaps`
//! swaps (default 100) have happened. Prints the swap pauses of the event path (p50, p99,
//! max), and the storm's events/s against the steady run's.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use adr_benches::statistical_plugin;
use adr_engine::embed::{Engine, EngineBuilder, Events};

const ENSEMBLES: usize = 50;
const KEYS: usize = 10;
const BATCH: usize = 1_000;

fn rules(generation: usize) -> String {
    let mut text = String::from(
        "input market {\n    time = ts\n    key = symbol\n    fields = close, volume\n}\n\
         feature r = log_return(close)\n",
    );
    for e in 0..ENSEMBLES {
        // One ensemble changes per generation; the others keep their state.
        let threshold = if e == generation % ENSEMBLES {
            4.0 + (generation % 7) as f64 * 0.25
        } else {
            4.0
        };
        text += &format!(
            "detector price{e} = statistical.zscore(window = {}, threshold = {threshold:?}) on r\n\
             detector volume{e} = statistical.zscore(window = {}, threshold = 5) on volume\n\
             ensemble stress{e} {{\n    vote = any(price{e}, volume{e})\n}}\n\
             alert stress{e} {{\n    when severity >= medium for 2 events\n    cooldown 5m\n}}\n",
            50 + e,
            30 + e
        );
    }
    text
}

struct Market {
    seed: u64,
    t: i64,
    price: [f64; KEYS],
    events: Events,
}

impl Market {
    fn next(&mut self) -> &Events {
        self.events.clear();
        for i in 0..BATCH {
            let k = i % KEYS;
            if k == 0 {
                self.t += 1_000_000_000;
            }
            self.seed = self
                .seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let u = (self.seed >> 11) as f64 / (1u64 << 53) as f64;
            self.price[k] *= 1.0 + (u - 0.5) * 0.002;
            let key = format!("S{k}");
            self.events
                .push(self.t, &[key.as_str()], &[self.price[k], 10.0 + 5.0 * u])
                .expect("shape");
        }
        &self.events
    }
}

fn market() -> Market {
    Market {
        seed: 1,
        t: 1_700_000_000_000_000_000,
        price: [100.0; KEYS],
        events: Events::new(&["close", "volume"], 1),
    }
}

fn engine(file: &std::path::Path, watch: bool) -> Engine {
    EngineBuilder::new([file])
        .registry(Arc::new(statistical_plugin()))
        .watch_plugins(false)
        .watch(watch)
        .debounce(Duration::from_millis(5))
        .build()
        .expect("engine")
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i] as f64 / 1e6
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let swaps: u64 = std::env::args().nth(1).map_or(Ok(100), |a| a.parse())?;
    let dir = std::env::temp_dir().join(format!("adr-reload-storm-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let file = dir.join("storm.adr");
    std::fs::write(&file, rules(0))?;

    // The storm first, to know how many batches it took; then the steady run on as many.
    let mut storm = engine(&file, true);
    let mut input = market();
    for _ in 0..20 {
        storm.push_batch(input.next())?;
    }
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (stop, file) = (Arc::clone(&stop), file.clone());
        std::thread::spawn(move || {
            let mut generation = 1;
            while !stop.load(Ordering::Relaxed) {
                let tmp = file.with_extension("tmp");
                if std::fs::write(&tmp, rules(generation)).is_ok() {
                    let _ = std::fs::rename(&tmp, &file);
                }
                generation += 1;
                std::thread::sleep(Duration::from_millis(10));
            }
        })
    };
    let started = Instant::now();
    let mut batches = 0usize;
    while storm.reload_status().generation < swaps {
        storm.push_batch(input.next())?;
        batches += 1;
    }
    let storm_seconds = started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    writer.join().map_err(|_| "the writer thread panicked")?;
    let status = storm.reload_status();
    storm.finish()?;

    std::fs::write(&file, rules(0))?;
    let mut steady = engine(&file, false);
    let mut input = market();
    for _ in 0..20 {
        steady.push_batch(input.next())?;
    }
    let started = Instant::now();
    for _ in 0..batches {
        steady.push_batch(input.next())?;
    }
    let steady_seconds = started.elapsed().as_secs_f64();
    steady.finish()?;
    let _ = std::fs::remove_dir_all(&dir);

    let mut pauses = status.recent_swaps_ns.clone();
    pauses.sort_unstable();
    let events = (batches * BATCH) as f64;
    let (storm_rate, steady_rate) = (events / storm_seconds, events / steady_seconds);
    println!(
        "{ENSEMBLES} ensembles, {} detectors, {KEYS} keys; {} swaps, {} refused",
        2 * ENSEMBLES,
        status.successes,
        status.failures
    );
    println!(
        "swap pause of the event path over the last {} swaps: p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
        pauses.len(),
        percentile(&pauses, 0.5),
        percentile(&pauses, 0.99),
        status.longest_swap_ns as f64 / 1e6
    );
    println!(
        "{} events: steady {steady_rate:.0} events/s, during the storm {storm_rate:.0} events/s ({:.1} %)",
        batches * BATCH,
        100.0 * storm_rate / steady_rate
    );
    Ok(())
}
