//! Embedding the engine in a service: build it from a rule file and a plugin folder, push
//! events, receive alerts through a channel, edit the rules while events flow, read the
//! reload status, and stop with everything flushed. This is the code path of `adr run`.
//!
//! ```text
//! cargo build -p adr-plugin-statistical
//! cargo run -p adr-engine --example embed [PLUGIN_DIR]
//! ```
//!
//! PLUGIN_DIR defaults to the folder above this example's binary (`target/debug`), where
//! cargo puts the plugin. The events are `examples/market.csv` (three days of BTC-USD
//! bars with a flash crash), pushed in batches of 100 as a feed handler would.

use std::path::PathBuf;
use std::time::Duration;

use adr_engine::embed::{ChannelSink, EngineBuilder, Events};
use adr_engine::io::timestamp::TimeFormat;
use adr_engine::plugins::SearchPath;
use adr_sdk::Verdict;
use anyhow::Context;

const RULES: &str = "\
input market {
    time   = ts
    key    = symbol
    fields = close, volume
}
feature returns = log_return(close)
detector jump  = statistical.zscore(window = 60, threshold = THRESHOLD) on returns
detector burst = statistical.mad(window = 60, threshold = 8, side = upper) on volume
ensemble stress {
    vote = any(jump, burst)
    severity {
        high   when jump and burst
        medium otherwise
    }
}
alert stress {
    when severity >= high for 1 events
    cooldown 15m per key
}
";

fn main() -> anyhow::Result<()> {
    let plugins = match std::env::args().nth(1) {
        Some(dir) => PathBuf::from(dir),
        None => std::env::current_exe()?
            .parent()
            .and_then(|examples| examples.parent())
            .context("no folder above the example binary")?
            .to_path_buf(),
    };
    // The example is built from engine/runtime, two folders below the workspace.
    let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let rules_dir = std::env::temp_dir().join(format!("adr-embed-{}", std::process::id()));
    std::fs::create_dir_all(&rules_dir)?;
    let rules = rules_dir.join("stress.adr");
    std::fs::write(&rules, RULES.replace("THRESHOLD", "6"))?;

    // Results go to another thread; up to 64 batches in flight, then the engine waits.
    let (results, received) = ChannelSink::new(64);
    let mut engine = EngineBuilder::new([&rules])
        .plugins(SearchPath::explicit([plugins]))
        .watch(true)
        .debounce(Duration::from_millis(50))
        .sink(Box::new(results))
        .build()?;
    let consumer = std::thread::spawn(move || {
        let mut anomalous = 0;
        for batch in received {
            for event in &batch.events {
                anomalous += event
                    .judgements
                    .iter()
                    .filter(|j| j.verdict == Verdict::Anomaly)
                    .count();
            }
            for alert in &batch.alerts {
                println!("alert: {alert}");
            }
        }
        anomalous
    });

    let mut csv = csv::Reader::from_path(workspace.join("examples/market.csv"))?;
    let mut events = Events::new(&["close", "volume"], 1);
    let mut edited = false;
    for (i, record) in csv.records().enumerate() {
        let record = record?;
        let time = TimeFormat::detect(&record[0])
            .and_then(|f| f.parse(&record[0]).ok())
            .with_context(|| format!("row {}: bad time {}", i + 1, &record[0]))?;
        let close: f64 = record[5].parse()?;
        let volume: f64 = record[6].parse()?;
        events.push(time, &[&record[1]], &[close, volume])?;
        if events.len() == 100 {
            engine.push_batch(&events)?;
            events.clear();
            if edited {
                // A live feed: a batch every 10 ms, while the reload is prepared.
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        // A quarter of the way in, an operator tightens the threshold; the watch sees the edit,
        // the engine swaps the rules between two batches, `burst` keeps its window.
        if i == 1_000 {
            // Saved as editors and deployment tools do: written beside, renamed over.
            let tmp = rules.with_extension("adr.tmp");
            std::fs::write(&tmp, RULES.replace("THRESHOLD", "4"))?;
            std::fs::rename(&tmp, &rules)?;
            edited = true;
        }
    }
    engine.push_batch(&events)?;
    let reload = engine.reload_status();
    let summary = engine.finish()?;
    // `finish` dropped the sink: the channel closes and the consumer ends.
    let anomalous = consumer
        .join()
        .map_err(|_| anyhow::anyhow!("the consumer thread panicked"))?;
    eprintln!("the consumer saw {anomalous} anomalous judgements");
    let swap = reload.last_swap.unwrap_or_default();
    eprintln!(
        "reloads: {} applied, {} refused; the last kept [{}] and started [{}] fresh",
        reload.successes,
        reload.failures,
        swap.kept.join(", "),
        swap.fresh.join(", ")
    );
    eprint!("{}", summary.render());
    std::fs::remove_dir_all(&rules_dir)?;
    Ok(())
}
