//! `adr run` throughput: a 3-detector ensemble keyed by symbol over 10 M rows
//! (`benches/rules/throughput.adr`), through the same pipeline as the command (CSV
//! reading, keys, features, detectors through the plugin boundary, ensembles, alerts).
//!
//! ```text
//! cargo build --release -p adr-plugin-statistical -p adr-benches
//! RAYON_NUM_THREADS=1 ./target/release/rules_throughput [rows]
//! ```
//!
//! Writes the input once to `target/rules-throughput-<rows>.csv` (10 symbols, one-minute
//! bars, interleaved) and prints rows per second.

use std::io::{BufWriter, Write};
use std::sync::Arc;
use std::time::Instant;

use adr_benches::{statistical_plugin, workspace};
use adr_engine::embed::EngineBuilder;
use adr_engine::io::{open_path, EventInput, InputFormat};
use adr_engine::run::event_spec;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let rows: usize = std::env::args()
        .nth(1)
        .map_or(Ok(10_000_000), |a| a.parse())?;
    let path = workspace().join(format!("target/rules-throughput-{rows}.csv"));
    if !path.exists() {
        eprintln!("writing {} ...", path.display());
        let mut w = BufWriter::with_capacity(1 << 20, std::fs::File::create(&path)?);
        writeln!(w, "ts,symbol,close,volume")?;
        let symbols = 10;
        let mut price = vec![100.0f64; symbols];
        let mut seed = 42u64;
        let mut uniform = move || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 11) as f64 / (1u64 << 53) as f64
        };
        for i in 0..rows {
            let s = i % symbols;
            let minute = (i / symbols) as i64;
            price[s] *= 1.0 + (uniform() - 0.5) * 0.002 + if uniform() < 1e-4 { 0.05 } else { 0.0 };
            let volume = 10.0 + 5.0 * uniform() + if uniform() < 1e-4 { 200.0 } else { 0.0 };
            writeln!(
                w,
                "{},SYM{s},{:.4},{:.3}",
                1_700_000_000 + minute * 60,
                price[s],
                volume
            )?;
        }
        w.flush()?;
    }
    let registry = Arc::new(statistical_plugin());
    let mut engine = EngineBuilder::new([workspace().join("benches/rules/throughput.adr")])
        .registry(Arc::clone(&registry))
        .watch_plugins(false)
        .build()?;
    let spec = event_spec(engine.evaluator());
    let mut input = EventInput::open(
        open_path(&path.display().to_string())?,
        InputFormat::Csv,
        &spec,
    )?;
    let started = Instant::now();
    engine.run_input(&mut input, |_, _| {})?;
    let summary = engine.finish()?;
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "{} rows, {} keys, {} alerts in {seconds:.2} s: {:.0} rows/s ({} rayon threads)",
        summary.rows,
        summary.keys,
        summary.alerts.iter().map(|a| a.fired).sum::<u64>(),
        summary.rows as f64 / seconds,
        rayon::current_num_threads()
    );
    Ok(())
}
