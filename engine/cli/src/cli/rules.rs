//! `adr run`, `adr test` and `adr explain`: rule files over data.

use std::fs::File;
use std::io::{BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use adr_engine::embed::EngineBuilder;
use adr_engine::evaluator::Evaluator;
use adr_engine::io::timestamp::TimeFormat;
use adr_engine::io::{
    ensure_distinct, open_path, EventInput, EventSpec, InputFormat, NamedPath, UnsortedPolicy,
};
use adr_engine::plugins::{Registry, SearchPath};
use adr_engine::rules::diagnostic::{render, Level};
use adr_engine::rules::plan::Plan;
use adr_engine::rules::source;
use adr_engine::run::{self, event_spec, notify::Notifier, sinks};
use adr_market::Feed;
use anyhow::{bail, Context};
use clap::{Args, ValueEnum};

/// Input format of `--input`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum Format {
    /// From the file name: `.jsonl`/`.ndjson` (optionally `.gz`) are JSON lines, else CSV.
    Auto,
    /// CSV with a header row.
    Csv,
    /// One JSON object per line.
    Jsonl,
    /// Binance WebSocket messages, one a line (a recorded `trade`, `aggTrade`, `kline` or
    /// `bookTicker` stream, plain or combined): columns `ts`, `symbol`, then the kind's
    /// fields (`price`, `qty`, `side`, `notional`; `open` … `volume`, `quote_volume`,
    /// `trades`; `bid`, `bid_qty`, `ask`, `ask_qty`, `mid`, `spread`).
    BinanceWs,
    /// Binance's bulk `trades` CSV (data.binance.vision): `ts`, `symbol`, `price`, `qty`,
    /// `side` (+1 a taker buy, −1 a sell), `notional`.
    BinanceTrades,
    /// Binance's bulk `aggTrades` CSV, read as `binance-trades`.
    BinanceAggtrades,
    /// Binance's bulk `klines` CSV: `ts`, `symbol`, `open` … `volume`, `quote_volume`,
    /// `trades`.
    BinanceKlines,
}

#[derive(Debug, Args)]
pub(crate) struct InputArgs {
    /// Events: CSV or JSON lines, optionally .gz; `-` reads standard input (a stream).
    #[arg(long, short, default_value = "-", value_name = "FILE")]
    input: String,
    /// Input format.
    #[arg(long, value_enum, default_value_t = Format::Auto)]
    format: Format,
    /// The market of a Binance bulk file (its lines do not name it); by default the
    /// start of the file's name (`BTCUSDT-trades-2024-01-01.csv`: BTCUSDT).
    #[arg(long, value_name = "SYMBOL")]
    symbol: Option<String>,
    /// Accept events earlier than their key's previous one (counted) instead of stopping.
    #[arg(long)]
    allow_unsorted: bool,
    /// Forget a key (all its state) after this long without an event, in event time
    /// (`1h`, `30m`); it starts cold if it comes back.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    evict_idle: Option<i64>,
    /// Hold at most this many keys: past it the least recently seen are forgotten.
    #[arg(long, value_name = "N")]
    max_keys: Option<std::num::NonZeroUsize>,
    /// Score in event-time order, waiting this long (`30s`, `5m`) for late events; an
    /// event later than that is counted and not scored.
    #[arg(long, value_name = "DURATION", value_parser = parse_lateness)]
    lateness: Option<i64>,
    /// Events per batch (default: 65,536 from a file; 1 from standard input, so a live
    /// stream is answered event by event). Keys are evicted between batches.
    #[arg(long, value_name = "N")]
    batch_rows: Option<std::num::NonZeroUsize>,
    /// Bound all keys' state to this much memory (`512MB`, `2GiB`): rules whose one key
    /// does not fit are refused (at start and at reload), and at most budget / per-key
    /// estimate keys are held, the least recently seen forgotten first.
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    max_state: Option<u64>,
    /// With --lateness: events held at most; past it the oldest are scored early.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 1_000_000,
        requires = "lateness"
    )]
    max_held: usize,
}

/// `spec` with the batch size `input` asks for (unless a detector needs one batch).
fn batched(mut spec: EventSpec, input: &InputArgs) -> EventSpec {
    if spec.chunk_rows == 0 {
        spec.chunk_rows = match input.batch_rows {
            Some(n) => n.get(),
            // A live stream: each event as it comes.
            None if input.input == "-" => 1,
            None => 0,
        };
    }
    spec
}

fn eviction(input: &InputArgs) -> adr_engine::evaluator::Eviction {
    adr_engine::evaluator::Eviction {
        idle: input.evict_idle,
        max_keys: input.max_keys.map(std::num::NonZeroUsize::get),
    }
}

pub(crate) fn parse_size(text: &str) -> Result<u64, String> {
    adr_engine::budget::parse_size(text)
        .ok_or_else(|| format!("`{text}` is not a size such as 512MB, 2GiB or 1048576 (bytes)"))
}

fn parse_lateness(text: &str) -> Result<i64, String> {
    adr_sdk::params::parse_duration(text)
        .filter(|&ns| ns >= 0)
        .ok_or_else(|| format!("`{text}` is not a duration such as 0s, 30s, 5m or 1h"))
}

fn parse_duration(text: &str) -> Result<i64, String> {
    adr_sdk::params::parse_duration(text)
        .filter(|&ns| ns > 0)
        .ok_or_else(|| format!("`{text}` is not a duration such as 30s, 5m, 1h or 7d"))
}

#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    /// Rule files (their includes are read too).
    #[arg(required = true, value_name = "RULES")]
    rules: Vec<PathBuf>,
    #[command(flatten)]
    input: InputArgs,
    /// Where to write fired alerts as JSON lines; `-` is standard output.
    #[arg(long, default_value = "-", value_name = "FILE")]
    alerts: String,
    /// Also write every event with its features, scores, votes and severities (CSV).
    #[arg(long, short, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Do not deliver alerts to the rules' notify targets (log, file, webhook).
    #[arg(long)]
    no_notify: bool,
    /// Print the summary as one JSON object (on standard error) instead of text.
    #[arg(long)]
    json: bool,
    /// Reload the rules when a rule file, an include or a plugin folder changes (and on
    /// SIGHUP), without losing an event; a bad edit is reported and the running rules stay.
    #[arg(long)]
    watch: bool,
    /// How long file events must be quiet before a reload, in milliseconds.
    #[arg(long, default_value_t = 200, value_name = "MS")]
    debounce_ms: u64,
}

impl RunArgs {
    /// Whether the run watches its files (and so runs for long).
    pub(crate) fn watching(&self) -> bool {
        self.watch
    }
}

#[derive(Debug, Args)]
pub(crate) struct TestArgs {
    /// Rule files whose test blocks to run; each file is its own rule set.
    #[arg(required = true, value_name = "RULES")]
    rules: Vec<PathBuf>,
    /// Machine-readable results: one JSON document on standard output.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct ExplainArgs {
    /// Rule files.
    #[arg(required = true, value_name = "RULES")]
    rules: Vec<PathBuf>,
    #[command(flatten)]
    input: InputArgs,
    /// The event's time (ISO-8601 or epoch seconds/milliseconds).
    #[arg(long, value_name = "TIMESTAMP")]
    at: String,
    /// The event's key as alerts print it (several key columns joined with `/`, a `/` or
    /// `\` inside a value escaped with `\`); default: every key at that time.
    #[arg(long, value_name = "KEY")]
    key: Option<String>,
    /// Machine-readable output: a JSON array of explanations.
    #[arg(long)]
    json: bool,
}

/// Loads, checks and plans rule files; prints diagnostics (errors always, warnings unless
/// quiet) and fails on errors.
fn plan(files: &[PathBuf], registry: &Registry, quiet: bool) -> anyhow::Result<Plan> {
    Ok(plan_with_sources(files, registry, quiet)?.0)
}

/// [`plan`], and the sources it was planned from.
pub(crate) fn plan_with_sources(
    files: &[PathBuf],
    registry: &Registry,
    quiet: bool,
) -> anyhow::Result<(Plan, source::Loaded)> {
    let loaded = source::load(files)?;
    match Plan::build(&loaded, registry) {
        Ok((plan, warnings)) => {
            if !quiet && !warnings.is_empty() {
                eprint!("{}", render(&warnings, &loaded.sources));
            }
            Ok((plan, loaded))
        }
        Err(adr_engine::rules::plan::PlanError::Invalid(diagnostics)) => {
            eprint!("{}", render(&diagnostics, &loaded.sources));
            let errors = diagnostics
                .iter()
                .filter(|d| d.level == Level::Error)
                .count();
            bail!(
                "the rules have {errors} error{}; see `adr check`",
                if errors == 1 { "" } else { "s" }
            )
        }
        Err(e) => Err(e.into()),
    }
}

fn open_input(args: &InputArgs, spec: &EventSpec) -> anyhow::Result<(EventInput, Option<u64>)> {
    let source =
        open_path(&args.input).with_context(|| format!("cannot open input {}", args.input))?;
    let format = match args.format {
        Format::Auto => Ok(InputFormat::from_path(&args.input)),
        Format::Csv => Ok(InputFormat::Csv),
        Format::Jsonl => Ok(InputFormat::JsonLines),
        Format::BinanceWs => Err(Feed::BinanceWs),
        Format::BinanceTrades => Err(Feed::BinanceTrades),
        Format::BinanceAggtrades => Err(Feed::BinanceAggTrades),
        Format::BinanceKlines => Err(Feed::BinanceKlines),
    };
    // Progress is by bytes read; a compressed file's length is not comparable.
    let size = (args.input != "-" && !args.input.ends_with(".gz"))
        .then(|| std::fs::metadata(&args.input).ok().map(|m| m.len()))
        .flatten();
    let input = match format {
        Ok(format) => EventInput::open(source, format, spec),
        Err(feed) => {
            let symbol = match (&args.symbol, feed.names_symbols()) {
                (Some(symbol), _) => symbol.clone(),
                (None, true) => String::new(),
                (None, false) => adr_market::symbol_of_file(&args.input)
                    .with_context(|| {
                        format!(
                            "the lines of {} do not name their market, nor does its name (SYMBOL-…): pass --symbol",
                            args.input
                        )
                    })?
                    .to_owned(),
            };
            EventInput::open_feed(source, feed, &symbol, spec)
        }
    }
    .with_context(|| format!("cannot read input {}", args.input))?;
    Ok((input, size))
}

/// A progress bar over `size` bytes on a terminal, labelled with what is being done;
/// `None` when quiet, piped, or the size is unknown.
pub(crate) fn progress_bar(
    size: Option<u64>,
    quiet: bool,
    doing: &str,
) -> Option<indicatif::ProgressBar> {
    let len = size.filter(|_| !quiet && std::io::stderr().is_terminal())?;
    let bar = indicatif::ProgressBar::new(len);
    bar.set_style(
        indicatif::ProgressStyle::with_template(&format!(
            "{{spinner}} {doing} {{bytes}}/{{total_bytes}} [{{wide_bar}}] {{bytes_per_sec}}, {{eta}} left"
        ))
        .expect("valid template"),
    );
    Some(bar)
}

pub(crate) fn run(
    search: &SearchPath,
    registry: &Arc<Registry>,
    args: RunArgs,
    quiet: bool,
) -> anyhow::Result<ExitCode> {
    if args.watch && args.output.is_some() {
        bail!("--output cannot be combined with --watch: the scored table's columns follow the rules, which a reload changes (write alerts, or run without --watch)");
    }
    let (plan, loaded) = plan_with_sources(&args.rules, registry, quiet)?;
    // Before any output is created: creating one truncates it.
    let mut inputs = vec![NamedPath::new("--input", Path::new(&args.input.input))];
    inputs.extend(
        loaded
            .sources
            .paths()
            .map(|p| NamedPath::new("rule file", p)),
    );
    let mut outputs = vec![NamedPath::new("--alerts", Path::new(&args.alerts))];
    outputs.extend(
        args.output
            .as_deref()
            .map(|p| NamedPath::new("--output", p)),
    );
    ensure_distinct(&inputs, &outputs)?;
    let alerts_out: Box<dyn Write + Send> = if args.alerts == "-" {
        Box::new(BufWriter::new(std::io::stdout()))
    } else {
        Box::new(BufWriter::new(
            File::create(&args.alerts).with_context(|| format!("cannot create {}", args.alerts))?,
        ))
    };
    let scored = match &args.output {
        Some(path) => Some(sinks::ScoredWriter::new(
            BufWriter::with_capacity(
                1 << 20,
                File::create(path).with_context(|| format!("cannot create {}", path.display()))?,
            ),
            &plan,
        )),
        None => None,
    };
    let mut builder = EngineBuilder::new(args.rules.iter().cloned())
        .plugins(search.clone())
        .registry(Arc::clone(registry))
        .plan(plan, loaded)
        .watch(args.watch)
        .debounce(Duration::from_millis(args.debounce_ms))
        .unsorted(if args.input.allow_unsorted {
            UnsortedPolicy::Allow
        } else {
            UnsortedPolicy::Reject
        })
        .eviction(eviction(&args.input))
        .sink(Box::new(sinks::AlertWriter::new(alerts_out)));
    if let Some(lateness) = args.input.lateness {
        builder = builder.lateness(lateness, args.input.max_held);
    }
    if let Some(budget) = args.input.max_state {
        builder = builder.max_state(budget);
    }
    if let Some(scored) = scored {
        builder = builder.sink(Box::new(scored));
    }
    if !args.no_notify {
        builder = builder.sink(Box::new(Notifier::new(move |line| {
            if !quiet {
                eprintln!("{line}");
            }
        })));
    }
    let mut engine = builder.build()?;
    let spec = batched(event_spec(engine.evaluator()), &args.input);
    let (mut input, size) = open_input(&args.input, &spec)?;
    if args.watch {
        let handle = engine.status_handle();
        let mut signals = signal_hook::iterator::Signals::new([signal_hook::consts::SIGHUP])
            .context("cannot listen for SIGHUP")?;
        std::thread::Builder::new()
            .name("adr-sighup".into())
            .spawn(move || {
                for _ in signals.forever() {
                    tracing::info!("SIGHUP: reloading the rules");
                    handle.request_reload();
                }
            })
            .context("cannot start the SIGHUP thread")?;
        if !quiet {
            eprintln!(
                "watching {} (and their includes and the plugin folders); SIGHUP reloads too",
                args.rules
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
    }
    let bar = progress_bar(size, quiet, "evaluating");
    let result = engine.run_input(&mut input, |bytes, engine| {
        if let Some(bar) = &bar {
            bar.set_position(bytes);
        }
        for failure in engine.take_failures() {
            tracing::warn!(
                "detector `{}` failed for key `{}`: {}; its verdicts for that key in this batch are undetermined",
                failure.detector,
                failure.key,
                failure.message
            );
        }
    });
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    result?;
    let summary = engine.finish()?;
    for line in &summary.problems {
        tracing::warn!("{line}");
    }
    if args.json {
        eprintln!("{}", serde_json::to_string(&summary)?);
    } else if !quiet {
        eprint!("{}", summary.render());
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn test(
    registry: &Arc<Registry>,
    args: TestArgs,
    quiet: bool,
) -> anyhow::Result<ExitCode> {
    // Each file named is its own rule set, with its includes.
    let mut results = Vec::new();
    for file in &args.rules {
        let plan = plan(std::slice::from_ref(file), registry, quiet || args.json)?;
        results.extend(run::testing::run_tests(&plan, registry));
    }
    let failed = results.iter().filter(|r| !r.passed).count();
    if args.json {
        let doc = serde_json::json!({
            "passed": results.len() - failed,
            "failed": failed,
            "tests": results,
        });
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else {
        let mut out = std::io::stdout().lock();
        for r in &results {
            writeln!(
                out,
                "{} {}  ({})",
                if r.passed { "ok  " } else { "FAIL" },
                r.name,
                r.place
            )?;
            if let Some(e) = &r.error {
                writeln!(out, "      cannot run: {e}")?;
            }
            for c in r.checks.iter().filter(|c| !c.passed) {
                writeln!(out, "      expected: {}  ({})", c.expectation, c.place)?;
                writeln!(out, "      got:      {}", c.got)?;
            }
        }
        writeln!(
            out,
            "\n{} test{}: {} passed, {failed} failed",
            results.len(),
            if results.len() == 1 { "" } else { "s" },
            results.len() - failed
        )?;
    }
    Ok(if failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

pub(crate) fn explain(
    registry: &Arc<Registry>,
    args: ExplainArgs,
    quiet: bool,
) -> anyhow::Result<ExitCode> {
    let at = TimeFormat::detect(&args.at)
        .and_then(|f| f.parse(&args.at).ok())
        .with_context(|| format!("`{}` is not a timestamp (write ISO-8601 such as 2025-01-15T10:30:00Z, or epoch seconds)", args.at))?;
    let plan = plan(&args.rules, registry, quiet)?;
    let mut evaluator = Evaluator::new(plan, Arc::clone(registry))?;
    if args.input.allow_unsorted {
        evaluator.set_unsorted(UnsortedPolicy::Allow);
    }
    // the run's eviction, so that a key adr run forgot is cold here too
    evaluator.set_eviction(eviction(&args.input));
    evaluator.set_state_budget(args.input.max_state)?;
    if !quiet && !args.json {
        eprintln!("state: {}", evaluator.state_estimate());
    }
    let spec = batched(event_spec(&evaluator), &args.input);
    let (mut input, _) = open_input(&args.input, &spec)?;
    // the run's event-time order, when it had one
    let mut reorder = args
        .input
        .lateness
        .map(|lateness| run::reorder::Reorder::new(lateness, args.input.max_held));
    let run::explain::Explained {
        events: found,
        dropped_late,
    } = run::explain::explain(
        &mut evaluator,
        &mut input,
        at,
        args.key.as_deref(),
        reorder.as_mut(),
    )?;
    for dropped in &dropped_late {
        eprintln!(
            "the event at {} for key `{}` (row {}) was not scored: it came after the watermark {} (the latest event time less --lateness), so `adr run` counts it as late and drops it",
            dropped.time, dropped.key, dropped.row, dropped.watermark
        );
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&found)?);
    } else {
        let mut out = std::io::stdout().lock();
        for (i, e) in found.iter().enumerate() {
            if i > 0 {
                writeln!(out)?;
            }
            write!(out, "{}", e.render())?;
        }
    }
    if found.is_empty() && !dropped_late.is_empty() {
        return Ok(ExitCode::FAILURE);
    }
    if found.is_empty() {
        let keys = evaluator.keys();
        let known: Vec<&str> = (0..keys.len().min(10))
            .map(|k| keys.name(k as u32))
            .collect();
        eprintln!(
            "no event at {}{} in the input{}",
            adr_engine::io::timestamp::format_rfc3339(at),
            args.key
                .as_ref()
                .map(|k| format!(" for key `{k}`"))
                .unwrap_or_default(),
            if args.key.is_some() && !known.is_empty() {
                format!(" (keys: {})", known.join(", "))
            } else {
                String::new()
            }
        );
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}
