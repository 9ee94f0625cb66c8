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
use std::sync::mpsc::{channel, Sender};
use std::time::Duration;

use adr_engine::embed::{EngineBuilder, Events};
use adr_engine::io::timestamp::TimeFormat;
use adr_engine::plugins::SearchPath;
use adr_engine::run::{sinks::alert_json, BatchView, Sink};
use anyhow::Context;

/// Sends each fired alert, as its JSON document, to another thread.
struct AlertChannel(Sender<serde_json::Value>);

impl Sink for AlertChannel {
    fn batch(&mut self, view: &BatchView<'_>) -> std::io::Result<()> {
        for fired in &view.outcome.fired {
            let row = (fired.row - view.chunk.first_row) as usize;
            let doc = alert_json(
                view.plan,
                view.outcome,
                row,
                fired,
                view.key_names.name(fired.key),
            );
            // A receiver that hung up wants no more alerts; that is not an engine error.
            let _ = self.0.send(doc);
        }
        Ok(())
    }
}

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
    let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let rules_dir = std::env::temp_dir().join(format!("adr-embed-{}", std::process::id()));
    std::fs::create_dir_all(&rules_dir)?;
    let rules = rules_dir.join("stress.adr");
    std::fs::write(&rules, RULES.replace("THRESHOLD", "6"))?;

    let (alerts, received) = channel();
    let mut engine = EngineBuilder::new([&rules])
        .plugins(SearchPath::explicit([plugins]))
        .watch(true)
        .debounce(Duration::from_millis(50))
        .sink(Box::new(AlertChannel(alerts)))
        .build()?;
    let printer = std::thread::spawn(move || {
        for alert in received {
            println!("alert: {alert}");
        }
    });

    let mut csv = csv::Reader::from_path(workspace.join("examples/market.csv"))?;
    let mut events = Events::new(&["close", "volume"], 1);
    let mut edited = false;
    for (i, record) in csv.records().enumerate() {
        let record = record?;
        let time = TimeFormat::detect(&record[0])
            .and_then(|f| f.parse(&record[0]))
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
        // Halfway through, an operator tightens the threshold; the watch sees the edit,
        // the engine swaps the rules between two batches, `burst` keeps its window.
        if i == 2_000 {
            std::fs::write(&rules, RULES.replace("THRESHOLD", "4"))?;
            edited = true;
        }
    }
    engine.push_batch(&events)?;
    let reload = engine.reload_status();
    let summary = engine.finish()?;
    printer
        .join()
        .map_err(|_| anyhow::anyhow!("the printer thread panicked"))?;
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
