//! `adr`: the command-line front of the adr detection engine.

use std::fs::File;
use std::io::{BufWriter, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use adr_engine::{
    detect::{self, DetectRequest, DetectSummary},
    io::{CsvOptions, OutputFormat, UnsortedPolicy},
    plugins::{Registry, SearchPath},
};
use anyhow::Context;
use clap::{Args, Parser, Subcommand, ValueEnum};

mod cli {
    pub(crate) mod eval;
    pub(crate) mod eval_labelled;
    pub(crate) mod eval_series;
    pub(crate) mod rules;
    pub(crate) mod serve;
}

/// Anomaly detection for market data, with detectors loaded as plugins.
#[derive(Debug, Parser)]
#[command(name = "adr", version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    #[command(flatten)]
    global: Global,
}

#[derive(Debug, Args)]
struct Global {
    /// Folder to load plugins from (repeatable); default: $ADR_PLUGIN_PATH, else the
    /// `plugins` folder next to the adr binary and adr plugins beside it.
    #[arg(long = "plugins", value_name = "DIR", global = true)]
    plugins: Vec<PathBuf>,
    /// Print only errors (no progress, no summary, no skipped-plugin warnings).
    #[arg(long, short, global = true)]
    quiet: bool,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// List the loaded plugins, their detectors and parameters.
    Plugins(PluginsArgs),
    /// Score a CSV file with one detector and write every row with its score.
    #[command(after_help = "Examples:\n  \
        adr detect statistical.zscore --column close --param window=60 --input examples/market.csv\n  \
        adr detect statistical.mad --column volume --param window=1h --json --anomalies-only --input trades.csv\n  \
        cat prices.csv | adr detect statistical.grubbs --column price --param window=batch > scored.csv")]
    Detect(DetectArgs),
    /// Check rule files (each with its includes): syntax, names, parameters, features, votes,
    /// severities, alerts, tests.
    #[command(
        after_help = "Exit status: 0 when there is no error (warnings allowed), 1 otherwise."
    )]
    Check(CheckArgs),
    /// Run rule files over events: alerts as JSON lines, optionally every scored event.
    #[command(after_help = "Examples:\n  \
        adr run rules/price_spikes.adr --input examples/market.csv\n  \
        adr run rules/price_spikes.adr --input trades.jsonl.gz --output scored.csv --alerts alerts.jsonl\n  \
        tail -f live.csv | adr run rules/price_spikes.adr --no-notify")]
    Run(cli::rules::RunArgs),
    /// Run the test blocks of rule files and report each expectation.
    #[command(after_help = "Exit status: 0 when every test passes, 1 otherwise.")]
    Test(cli::rules::TestArgs),
    /// Explain what the rules said at one event: scores, votes, severity arm, alert state.
    #[command(after_help = "Example:\n  \
        adr explain rules/price_spikes.adr --input examples/market.csv --at 2025-01-15T10:30:00Z --key BTCUSDT")]
    Explain(cli::rules::ExplainArgs),
    /// Score a rule file on labelled series (point, range and NAB metrics), or detectors
    /// and rules under a benchmark's own protocol (odds, nab, tcpd).
    #[command(after_help = "Examples:\n  \
        adr eval rules/nab.adr --data ../shared/data/nab/data --labels ../shared/data/nab/labels/combined_windows.json\n  \
        adr eval rules/nab.adr --data DIR --labels windows.json --bias front --per-file --json\n  \
        adr eval nab rules/nab.adr\n\n\
        Labels are NAB's windows layout, {\"file.csv\": [[start, end], ...]}, file names relative \
        to --data. A row is positive when it lies in a window; a run of anomalous verdicts is \
        one predicted range. Undetermined rows (a warm-up) count as normal for the verdicts' \
        figures and are left out of ROC-AUC and PR-AUC.")]
    Eval(cli::eval::EvalArgs),
    /// Serve the engine over HTTP: events in, alerts stored and queried, metrics.
    #[command(after_help = "Examples:\n  \
        adr serve --new-token me                    # an API token for the calls that change something\n  \
        adr serve                                   # rules/market_stress.adr on 127.0.0.1:8000, store in adr-data/\n  \
        adr serve --config config.yaml --port 9000\n  \
        API_PORT=9000 adr serve --print-config\n\n\
        Configuration: config.yaml (the seed's sections), then environment variables (API_HOST, \
        API_PORT, LOG_FORMAT, ADR_DATA_DIR, ADR_RULES, ...), then flags. SIGTERM or Ctrl-C \
        drains the requests in flight and stops.")]
    Serve(cli::serve::ServeArgs),
}

#[derive(Debug, Args)]
struct CheckArgs {
    /// Rule files (their includes are read too).
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
    /// Machine-readable output: a JSON array of diagnostics on stdout.
    #[arg(long)]
    json: bool,
    /// Refuse rules whose state for one key would take more than this (`64MB`, `1GiB`);
    /// each rule set's estimate is shown either way.
    #[arg(long, value_name = "SIZE", value_parser = cli::rules::parse_size)]
    max_state: Option<u64>,
}

#[derive(Debug, Args)]
struct PluginsArgs {
    /// Machine-readable output: one JSON document.
    #[arg(long)]
    json: bool,
    /// Also print each detector's formula, normalisation and NaN policy.
    #[arg(long)]
    doc: bool,
}

#[derive(Debug, Args)]
struct DetectArgs {
    /// The detector, as family.name (see `adr plugins`).
    detector: String,
    /// Input column to score (repeat for detectors that take several).
    #[arg(long, short, required = true, value_name = "COLUMN")]
    column: Vec<String>,
    /// Detector parameter NAME=VALUE (repeatable), e.g. window=500, window=5m, threshold=3.5.
    #[arg(long, short, value_name = "NAME=VALUE", value_parser = parse_key_value)]
    param: Vec<(String, String)>,
    /// CSV file with a header row; `-` reads standard input.
    #[arg(long, short, default_value = "-", value_name = "FILE")]
    input: String,
    /// Where to write the scored rows; `-` is standard output.
    #[arg(long, short, default_value = "-", value_name = "FILE")]
    output: String,
    /// Timestamp column (ISO-8601 or epoch s/ms/us/ns); default: a column named
    /// timestamp, time, ts, date or datetime, if any.
    #[arg(long, value_name = "COLUMN")]
    time: Option<String>,
    /// Write JSON lines instead of CSV.
    #[arg(long)]
    json: bool,
    /// Write only the rows judged anomalous.
    #[arg(long)]
    anomalies_only: bool,
    /// Score rows whose timestamp goes back in time where they come (counted) instead of
    /// stopping at the first one (as `adr run --allow-unsorted`).
    #[arg(long)]
    allow_unsorted: bool,
    /// What to do when a timestamp goes back in time (`allow` is `--allow-unsorted`).
    #[arg(long, value_enum, default_value_t = Unsorted::Reject, hide = true)]
    unsorted: Unsorted,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Unsorted {
    /// Stop with an error naming the first offending row.
    Reject,
    /// Score in file order and count the rows that go back.
    Allow,
}

/// An error and its causes, `: `-separated, leaving out a cause whose text the message
/// before it already carries (many errors name their cause in their own message and also
/// report it as their source; `{:#}` would print it twice).
fn error_chain(error: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in error.chain() {
        let part = cause.to_string();
        if !text.contains(&part) {
            if !text.is_empty() {
                text.push_str(": ");
            }
            text.push_str(&part);
        }
    }
    text
}

pub(crate) fn parse_key_value(text: &str) -> Result<(String, String), String> {
    let (k, v) = text
        .split_once('=')
        .ok_or_else(|| format!("expected NAME=VALUE, got `{text}`"))?;
    Ok((k.trim().to_owned(), v.trim().to_owned()))
}

/// The log filter: `ADR_LOG` if set, else `default`.
pub(crate) fn log_filter(default: &str) -> tracing_subscriber::EnvFilter {
    tracing_subscriber::EnvFilter::try_from_env("ADR_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // A watching engine runs for long: say what each reload did, with the time.
    let watching = matches!(&cli.command, Command::Run(args) if args.watching());
    let default_filter = match (cli.global.quiet, watching) {
        (true, _) => "error",
        (false, true) => "warn,adr=info,adr_engine=info",
        (false, false) => "warn",
    };
    // The service sets its logs up from its configuration (text or JSON).
    if !matches!(&cli.command, Command::Serve(_)) {
        let logs = tracing_subscriber::fmt()
            .with_env_filter(log_filter(default_filter))
            .with_writer(std::io::stderr)
            .with_target(false)
            .with_ansi(std::io::stderr().is_terminal());
        if watching {
            logs.init();
        } else {
            logs.without_time().init();
        }
    }
    match run(cli) {
        Ok(code) => code,
        // A reader that stops early (`adr detect ... | head`) is not an error.
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", error_chain(&e));
            ExitCode::FAILURE
        }
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            || cause.to_string().contains("Broken pipe")
    })
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    // The service loads its plugins itself, from its configuration.
    if let Command::Serve(args) = &cli.command {
        return cli::serve::serve(args, &cli.global.plugins, cli.global.quiet);
    }
    let search = SearchPath::from_env(&cli.global.plugins);
    let registry = Arc::new(Registry::load(&search)?);
    for skipped in registry.skipped() {
        tracing::warn!("skipped plugin {skipped}");
    }
    match cli.command {
        Command::Plugins(args) => plugins(&registry, &search, &args).map(|()| ExitCode::SUCCESS),
        Command::Detect(args) => {
            detect(&registry, args, cli.global.quiet).map(|()| ExitCode::SUCCESS)
        }
        Command::Check(args) => check(&registry, &args),
        Command::Run(args) => cli::rules::run(&search, &registry, args, cli.global.quiet),
        Command::Test(args) => cli::rules::test(&registry, args, cli.global.quiet),
        Command::Explain(args) => cli::rules::explain(&registry, args, cli.global.quiet),
        Command::Eval(args) => cli::eval::eval(&registry, args, cli.global.quiet),
        Command::Serve(_) => unreachable!("served above"),
    }
}

fn check(registry: &Registry, args: &CheckArgs) -> anyhow::Result<ExitCode> {
    // Each file named is its own rule set (with its includes), as `adr test` runs them.
    let mut errors = 0;
    let mut documents = Vec::new();
    for file in &args.files {
        let (loaded, mut diagnostics) =
            adr_engine::rules::check_files(std::slice::from_ref(file), registry)?;
        let clean = !diagnostics
            .iter()
            .any(|d| d.level == adr_engine::rules::diagnostic::Level::Error);
        if clean {
            if let Some(budget_problem) = state_of(file, &loaded, registry, args)? {
                diagnostics.push(budget_problem);
            }
        }
        errors += diagnostics
            .iter()
            .filter(|d| d.level == adr_engine::rules::diagnostic::Level::Error)
            .count();
        if args.json {
            match adr_engine::rules::diagnostic::to_json(&diagnostics, &loaded.sources) {
                serde_json::Value::Array(items) => documents.extend(items),
                other => documents.push(other),
            }
        } else {
            eprint!(
                "{}",
                adr_engine::rules::diagnostic::render(&diagnostics, &loaded.sources)
            );
        }
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&documents)?);
    }
    // The rendered summary already says how many errors there are.
    Ok(if errors > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// Shows the estimate of one key's state for a rule set that checked clean; a diagnostic
/// when it does not fit `--max-state`.
fn state_of(
    file: &Path,
    loaded: &adr_engine::rules::source::Loaded,
    registry: &Registry,
    args: &CheckArgs,
) -> anyhow::Result<Option<adr_engine::rules::diagnostic::Diagnostic>> {
    use adr_engine::rules::{ast::Span, codes::Code, diagnostic::Diagnostic};
    let (plan, _) = adr_engine::rules::plan::Plan::build(loaded, registry)?;
    let estimate = adr_engine::budget::estimate(&plan, registry)?;
    if !args.json {
        eprintln!("{}: state {estimate}", file.display());
    }
    let Some(budget) = args.max_state else {
        return Ok(None);
    };
    Ok(estimate.keys_within(budget).err().map(|e| {
        let span = Span {
            file: 0,
            start: 0,
            end: 0,
        };
        Diagnostic::new(Code::StateBudget, span, e.to_string())
            .label("this rule set")
            .note("shrink the windows, trees or training sets, or raise --max-state")
    }))
}

fn plugins(registry: &Registry, search: &SearchPath, args: &PluginsArgs) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    if args.json {
        let doc = adr_engine::describe::plugins_json(registry, search);
        serde_json::to_writer_pretty(&mut out, &doc)?;
        writeln!(out)?;
        if registry.plugins().is_empty() {
            anyhow::bail!("no plugins found in {}", search.describe());
        }
        return Ok(());
    }
    if registry.plugins().is_empty() {
        writeln!(out, "no plugins found in {}", search.describe())?;
        writeln!(out, "build them with `cargo build --release`, or point --plugins / ADR_PLUGIN_PATH at their folder")?;
        anyhow::bail!("no plugins found");
    }
    for p in registry.plugins() {
        writeln!(
            out,
            "{} {} (ABI {})  {}",
            p.plugin.family(),
            p.plugin.plugin_version(),
            p.plugin.abi_version(),
            p.path.display()
        )?;
        for d in &p.detectors {
            writeln!(
                out,
                "  {}.{}  {}  [input: {}]",
                p.plugin.family(),
                d.name,
                d.summary,
                d.inputs
            )?;
            for s in &d.params {
                let range = s.range_text();
                let choices = if s.choices.is_empty() {
                    String::new()
                } else {
                    format!(" one of {}", s.choices.join("|"))
                };
                let range = if range.is_empty() {
                    String::new()
                } else {
                    format!(" {range}")
                };
                writeln!(
                    out,
                    "      {:<14} {:<8} = {:<8}{range}{choices}",
                    s.name,
                    s.kind.as_str(),
                    s.default.to_string()
                )?;
                writeln!(out, "          {}", s.doc)?;
            }
            if args.doc && !d.doc.is_empty() {
                writeln!(out, "      {}", d.doc)?;
            }
        }
    }
    Ok(())
}

fn detect(registry: &Registry, args: DetectArgs, quiet: bool) -> anyhow::Result<()> {
    let (input, size): (Box<dyn Read>, Option<u64>) = if args.input == "-" {
        (Box::new(std::io::stdin().lock()), None)
    } else {
        let file =
            File::open(&args.input).with_context(|| format!("cannot open input {}", args.input))?;
        let size = file.metadata().ok().map(|m| m.len());
        (Box::new(file), size)
    };
    let input = adr_engine::io::line_limit::LineLimit::new(
        input,
        adr_engine::io::line_limit::MAX_LINE_BYTES,
    );
    adr_engine::io::ensure_distinct(
        &[adr_engine::io::NamedPath::new(
            "--input",
            Path::new(&args.input),
        )],
        &[adr_engine::io::NamedPath::new(
            "--output",
            Path::new(&args.output),
        )],
    )?;
    let output: Box<dyn Write> = if args.output == "-" {
        Box::new(BufWriter::with_capacity(1 << 20, std::io::stdout().lock()))
    } else {
        let file = File::create(&args.output)
            .with_context(|| format!("cannot create output {}", args.output))?;
        Box::new(BufWriter::with_capacity(1 << 20, file))
    };
    let request = DetectRequest {
        detector: args.detector,
        params: args.param,
        csv: CsvOptions {
            time: args.time,
            columns: args.column,
            unsorted: match (args.allow_unsorted, args.unsorted) {
                (false, Unsorted::Reject) => UnsortedPolicy::Reject,
                _ => UnsortedPolicy::Allow,
            },
            chunk_rows: 0,
        },
        format: if args.json {
            OutputFormat::JsonLines
        } else {
            OutputFormat::Csv
        },
        anomalies_only: args.anomalies_only,
    };
    let bar = cli::rules::progress_bar(size, quiet, "scoring");
    let result = detect::run(registry, &request, input, output, |bytes| {
        if let Some(bar) = &bar {
            bar.set_position(bytes);
        }
    });
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    let summary = result?;
    if !quiet {
        eprintln!("{}", describe(&summary));
    }
    Ok(())
}

fn describe(s: &DetectSummary) -> String {
    let rate = if s.seconds > 0.0 {
        s.rows as f64 / s.seconds
    } else {
        0.0
    };
    let mut text = format!(
        "adr: scored {} rows with {} in {:.2} s ({:.0} rows/s): {} anomalies, {} undetermined",
        s.rows, s.detector, s.seconds, rate, s.anomalies, s.undetermined
    );
    let i = &s.input;
    let notes: Vec<String> = [
        (i.missing, "missing values"),
        (i.non_finite, "NaN/inf values"),
        (i.repeated_timestamps, "rows repeat the previous timestamp"),
        (
            i.unsorted_rows,
            "rows go back in time (scored in file order)",
        ),
    ]
    .into_iter()
    .filter(|(n, _)| *n > 0)
    .map(|(n, what)| format!("{n} {what}"))
    .collect();
    if !notes.is_empty() {
        text.push_str(&format!(" ({})", notes.join(", ")));
    }
    if s.rows == 0 {
        text.push_str("; the input has a header but no rows");
    }
    text
}
