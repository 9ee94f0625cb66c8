//! `adr eval`: detectors scored on labelled benchmark data under the benchmark's protocol.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use adr_benchmark::odds::{self, Protocol};
use adr_engine::plugins::Registry;
use adr_sdk::ParamValue;
use anyhow::Context;
use clap::{Args, Subcommand, ValueEnum};

/// `adr eval RULES --data DIR --labels FILE`, or one of the benchmark subcommands.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub(crate) struct EvalArgs {
    #[command(subcommand)]
    command: Option<EvalCommand>,
    #[command(flatten)]
    labelled: super::eval_labelled::LabelledArgs,
}

/// What to evaluate.
#[derive(Debug, Subcommand)]
pub(crate) enum EvalCommand {
    /// One detector on the ODDS outlier-detection sets, split by split as PyOD's benchmark
    /// (or ADBench) does, with ROC-AUC and average precision next to PyOD's re-run here.
    #[command(after_help = "Examples:\n  \
        adr eval odds ml.lof --data ../shared/data/odds\n  \
        adr eval odds ml.isolation_forest --seeds 5 --out target/odds-iforest\n  \
        adr eval odds ml.ecod --param ecdf=batch --datasets cardio,wbc --json\n\n\
        With --out, each split's test scores go to OUT/<set>/split_<seed>.csv (OUT/seed_<s>/... \
        with --seeds), the layout `odds_eval.py score OUT` reads.")]
    Odds(OddsArgs),
    /// A rule file on the Numenta Anomaly Benchmark: each of its 58 series run from a cold
    /// start, scored with NAB's three profiles at their optimised thresholds.
    #[command(after_help = "Examples:\n  \
        adr eval nab rules/nab.adr\n  \
        adr eval nab rules/nab.adr --out target/nab-results --json\n\n\
        The rules read one field, `value`; the data file's `timestamp` is the event time. \
        The score of a row is the ensemble's normalised score (undetermined rows score 0). \
        With --out, OUT/<category>/<name>.csv holds timestamp,value,anomaly_score, the \
        layout `nab_score.py OUT` reads.")]
    Nab(super::eval_series::NabArgs),
    /// A rule file on the Turing Change Point Dataset: each series run from a cold start,
    /// the ensemble's anomalies taken as change points, scored with F1 (margin 5) and
    /// covering against five annotators.
    #[command(after_help = "Examples:\n  \
        adr eval tcpd rules/tcpd.adr --lag 4\n  \
        adr eval tcpd rules/tcpd.adr --lag 4 --out target/tcpd.json --json\n\n\
        The rules read `value` (the first dimension) or v1..vd; each dimension is \
        standardised over the series first, as ts_eval.py's reference runs do. A change \
        starts at each row whose verdict is anomaly after one that is not, minus --lag. \
        With --out, the change points go to a JSON file `ts_eval.py cpd` reads.")]
    Tcpd(super::eval_series::TcpdArgs),
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ProtocolArg {
    /// PyOD's benchmark: 10 splits 60/40, standardised with the training rows.
    Pyod,
    /// ADBench's unsupervised setting: 3 splits 70/30, min-max scaled.
    Adbench,
}

#[derive(Debug, Args)]
pub(crate) struct OddsArgs {
    /// The detector, as family.name (see `adr plugins`).
    detector: String,
    /// Detector parameter NAME=VALUE (repeatable); `train` is set by each split.
    #[arg(long, short, value_name = "NAME=VALUE", value_parser = crate::parse_key_value)]
    param: Vec<(String, String)>,
    /// The ODDS folder; default: $ODDS_DIR, else ../shared/data/odds.
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
    /// The protocol, whose splits and scaling are used.
    #[arg(long, value_enum, default_value_t = ProtocolArg::Pyod)]
    protocol: ProtocolArg,
    /// Only these sets (comma-separated); default: every set with splits.
    #[arg(long, value_delimiter = ',', value_name = "NAME,...")]
    datasets: Vec<String>,
    /// Runs with seeds 0..N (the detector's `seed` parameter), averaged: for randomised
    /// detectors.
    #[arg(long, default_value_t = 1, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    seeds: u64,
    /// Write each split's test scores under this folder.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Machine-readable output: one JSON document on stdout.
    #[arg(long)]
    json: bool,
}

pub(crate) fn eval(
    registry: &std::sync::Arc<Registry>,
    args: EvalArgs,
    quiet: bool,
) -> anyhow::Result<ExitCode> {
    match args.command {
        None => super::eval_labelled::labelled(registry, args.labelled, quiet),
        Some(EvalCommand::Odds(args)) => eval_odds(registry, args, quiet),
        Some(EvalCommand::Nab(args)) => super::eval_series::nab(registry, args, quiet),
        Some(EvalCommand::Tcpd(args)) => super::eval_series::tcpd(registry, args, quiet),
    }
}

/// One set's result: means over its splits and seeds.
struct SetResult {
    name: String,
    roc: f64,
    ap: f64,
    runs: usize,
    reference: Option<f64>,
}

fn eval_odds(registry: &Registry, args: OddsArgs, quiet: bool) -> anyhow::Result<ExitCode> {
    // A set named twice would count twice in every mean.
    let mut seen = std::collections::HashSet::new();
    if let Some(twice) = args.datasets.iter().find(|d| !seen.insert(d.trim())) {
        anyhow::bail!("--datasets names `{twice}` more than once");
    }
    let dir = args
        .data
        .clone()
        .or_else(|| std::env::var_os("ODDS_DIR").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("../shared/data/odds"));
    anyhow::ensure!(
        dir.join("splits").is_dir(),
        "{} is not an ODDS folder (no splits/ in it); give it with --data or $ODDS_DIR",
        dir.display()
    );
    let protocol = match args.protocol {
        ProtocolArg::Pyod => Protocol::Pyod,
        ProtocolArg::Adbench => Protocol::Adbench,
    };
    let (_, info) = registry.find(&args.detector)?;
    let params = adr_engine::detect::parse_params(info, &args.param).map_err(|errors| {
        let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
        anyhow::anyhow!("{}: {}", args.detector, lines.join("; "))
    })?;
    anyhow::ensure!(
        info.params.iter().any(|p| p.name == "train"),
        "{} does not train (it has no `train` parameter): adr eval odds fits a detector on \
         each split's training rows",
        args.detector
    );
    let seeded = info.params.iter().any(|p| p.name == "seed");
    anyhow::ensure!(
        args.seeds == 1 || seeded,
        "{} has no `seed` parameter; --seeds needs a randomised detector",
        args.detector
    );
    let names = if args.datasets.is_empty() {
        odds::set_names(&dir)?
    } else {
        args.datasets.clone()
    };
    let method = odds::pyod_method(&args.detector);
    let reference = odds::reference(&dir, "roc", protocol)?;
    let bar = progress(names.len() as u64, "sets", quiet);
    let mut results = Vec::new();
    for name in &names {
        if let Some(bar) = &bar {
            bar.set_message(name.clone());
        }
        let splits = odds::load_splits(&dir, name, protocol)?;
        if splits.is_empty() {
            if let Some(bar) = &bar {
                bar.inc(1);
            }
            continue;
        }
        let set = odds::load_set(&dir, name)?;
        let (mut roc, mut ap, mut runs) = (0.0, 0.0, 0);
        for seed in 0..args.seeds {
            let mut params = params.clone();
            if args.seeds > 1 {
                params.retain(|(n, _)| n != "seed");
                params.push(("seed".into(), ParamValue::Int(seed as i64)));
            }
            for split in &splits {
                let scores =
                    odds::score_split(registry, &args.detector, &params, &set, split, protocol)?;
                if let Some(out) = &args.out {
                    let folder = match args.seeds {
                        1 => out.join(name),
                        _ => out.join(format!("seed_{seed}")).join(name),
                    };
                    let path = folder.join(format!("split_{}.csv", split.seed));
                    odds::write_scores(&path, &scores)
                        .with_context(|| format!("cannot write {}", path.display()))?;
                }
                let (r, a) = odds::split_metrics(&set, split, &scores);
                roc += r;
                ap += a;
                runs += 1;
            }
        }
        results.push(SetResult {
            name: name.clone(),
            roc: roc / runs as f64,
            ap: ap / runs as f64,
            runs,
            reference: method.and_then(|m| reference.get(name)?.get(m).copied()),
        });
        if let Some(bar) = &bar {
            bar.inc(1);
        }
    }
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    anyhow::ensure!(
        !results.is_empty(),
        "no set has {} splits among {}",
        protocol.as_str(),
        names.join(", ")
    );
    report(&args, protocol, method, &results)?;
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn progress(items: u64, what: &str, quiet: bool) -> Option<indicatif::ProgressBar> {
    if quiet || !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::new(items);
    bar.set_style(
        indicatif::ProgressStyle::with_template(&format!(
            "{{spinner}} {{pos}}/{{len}} {what} [{{wide_bar}}] {{msg}}"
        ))
        .expect("valid template"),
    );
    Some(bar)
}

fn report(
    args: &OddsArgs,
    protocol: Protocol,
    method: Option<&str>,
    results: &[SetResult],
) -> anyhow::Result<()> {
    let mean =
        |f: &dyn Fn(&SetResult) -> f64| results.iter().map(f).sum::<f64>() / results.len() as f64;
    let compared: Vec<&SetResult> = results.iter().filter(|r| r.reference.is_some()).collect();
    let mut out = std::io::stdout().lock();
    if args.json {
        let doc = serde_json::json!({
            "detector": args.detector,
            "protocol": protocol.as_str(),
            "seeds": args.seeds,
            "reference_method": method,
            "sets": results.iter().map(|r| serde_json::json!({
                "name": r.name, "roc_auc": r.roc, "ap": r.ap, "runs": r.runs,
                "reference_roc_auc": r.reference,
            })).collect::<Vec<_>>(),
            "mean_roc_auc": mean(&|r| r.roc),
            "mean_ap": mean(&|r| r.ap),
        });
        serde_json::to_writer_pretty(&mut out, &doc)?;
        writeln!(out)?;
        return Ok(());
    }
    let against = method.map_or(String::new(), |m| format!("  {m} here   diff"));
    writeln!(
        out,
        "{} on ODDS ({} protocol)",
        args.detector,
        protocol.as_str()
    )?;
    writeln!(
        out,
        "{:<12} {:>7} {:>7} {:>5}{against}",
        "set", "ROC-AUC", "AP", "runs"
    )?;
    for r in results {
        let versus = r.reference.map_or(String::new(), |want| {
            format!("  {want:>10.4} {:+.4}", r.roc - want)
        });
        writeln!(
            out,
            "{:<12} {:>7.4} {:>7.4} {:>5}{versus}",
            r.name, r.roc, r.ap, r.runs
        )?;
    }
    writeln!(
        out,
        "{:<12} {:>7.4} {:>7.4}",
        "mean",
        mean(&|r| r.roc),
        mean(&|r| r.ap)
    )?;
    if !compared.is_empty() {
        let below = compared
            .iter()
            .map(|r| r.reference.unwrap_or(0.0) - r.roc)
            .fold(f64::NEG_INFINITY, f64::max);
        let average = compared
            .iter()
            .map(|r| r.roc - r.reference.unwrap_or(0.0))
            .sum::<f64>()
            / compared.len() as f64;
        writeln!(
            out,
            "against PyOD on {} sets: mean difference {average:+.4}, worst {:+.4}",
            compared.len(),
            -below
        )?;
    }
    Ok(())
}
