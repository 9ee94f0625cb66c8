//! `adr eval nab` and `adr eval tcpd`: a rule file over benchmark series, each from a
//! cold start, scored with the benchmark's own metrics.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use adr_benchmark::series::{pick_ensemble, score_series, SeriesScores};
use adr_benchmark::{cpd, nab};
use adr_engine::plugins::Registry;
use adr_engine::rules::plan::Plan;
use adr_sdk::Verdict;
use anyhow::Context;
use clap::Args;
use rayon::prelude::*;

#[derive(Debug, Args)]
pub(crate) struct NabArgs {
    /// The rule file.
    rules: PathBuf,
    /// NAB's folder (data/, labels/, config/); default: $NAB_DIR, else ../shared/data/nab.
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
    /// The ensemble whose score is the anomaly score; default: the last one in the file.
    #[arg(long, value_name = "NAME")]
    ensemble: Option<String>,
    /// One threshold for every profile instead of each profile's optimised one (a
    /// normalised score, 0 to 1).
    #[arg(long, value_name = "T", value_parser = parse_threshold)]
    threshold: Option<f64>,
    /// Write NAB-layout result files under this folder.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Machine-readable output: one JSON document on stdout.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct TcpdArgs {
    /// The rule file.
    rules: PathBuf,
    /// The TCPD folder; default: $TCPD_DIR, else ../shared/data/timeseries/tcpd.
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
    /// The ensemble whose anomalies are change points; default: the last one in the file.
    #[arg(long, value_name = "NAME")]
    ensemble: Option<String>,
    /// Rows between a change and its report (bocpd reports on the `confirm`-th row of a
    /// segment: lag = confirm − 1).
    #[arg(long, default_value_t = 0, value_name = "N")]
    lag: usize,
    /// Feed the raw series instead of each dimension standardised.
    #[arg(long)]
    raw: bool,
    /// Write the change points as JSON (`{"series": [indices]}`) to this file.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Machine-readable output: one JSON document on stdout.
    #[arg(long)]
    json: bool,
}

fn folder(given: &Option<PathBuf>, var: &str, default: &str) -> PathBuf {
    given
        .clone()
        .or_else(|| std::env::var_os(var).map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(default))
}

pub(crate) fn nab(
    registry: &Arc<Registry>,
    args: NabArgs,
    quiet: bool,
) -> anyhow::Result<ExitCode> {
    let dir = folder(&args.data, "NAB_DIR", "../shared/data/nab");
    anyhow::ensure!(
        dir.join("labels/combined_windows.json").is_file(),
        "{} is not NAB's folder (no labels/combined_windows.json); give it with --data or $NAB_DIR",
        dir.display()
    );
    let started = std::time::Instant::now();
    let (plan, _) =
        super::rules::plan_with_sources(std::slice::from_ref(&args.rules), registry, quiet)?;
    let ensemble = pick_ensemble(&plan, args.ensemble.as_deref())?;
    let corpus = nab::Corpus::load(&dir.join("data"), &dir.join("labels/combined_windows.json"))?;
    let profiles = nab::load_profiles(&dir.join("config/profiles.json"))?;
    let scores: Vec<Vec<f64>> = score_corpus(&plan, registry, ensemble, &corpus, quiet)?
        .into_iter()
        .map(|judged| {
            judged
                .scores
                .iter()
                .map(|s| if s.is_nan() { 0.0 } else { *s })
                .collect()
        })
        .collect();
    if let Some(out) = &args.out {
        nab::write_results(out, &corpus, &scores)
            .with_context(|| format!("cannot write results under {}", out.display()))?;
    }
    let results = nab::evaluate(&corpus, &scores, &profiles, args.threshold);
    let seconds = started.elapsed().as_secs_f64();
    let rows: usize = corpus.files.iter().map(nab::NabFile::len).sum();
    let mut out = std::io::stdout().lock();
    if args.json {
        let doc = serde_json::json!({
            "rules": args.rules, "ensemble": plan.ensembles[ensemble].name,
            "files": corpus.files.len(), "rows": rows, "seconds": seconds,
            "threshold": if args.threshold.is_some() { "given" } else { "optimised" },
            "profiles": results,
        });
        serde_json::to_writer_pretty(&mut out, &doc)?;
        writeln!(out)?;
        return Ok(ExitCode::SUCCESS);
    }
    writeln!(
        out,
        "NAB: {} on {} files ({rows} rows) in {seconds:.2} s; ensemble {}, thresholds {}",
        args.rules.display(),
        corpus.files.len(),
        plan.ensembles[ensemble].name,
        if args.threshold.is_some() {
            "given"
        } else {
            "optimised per profile"
        }
    )?;
    writeln!(
        out,
        "{:<20} {:>7} {:>10} {:>9} {:>8}",
        "profile", "score", "threshold", "windows", "FP rows"
    )?;
    for r in &results {
        writeln!(
            out,
            "{:<20} {:>7.2} {:>10} {:>4}/{:<4} {:>8}",
            r.profile,
            r.score,
            r.threshold
                .map_or("never".to_owned(), |t| format!("{t:.6}")),
            r.windows_detected,
            r.windows,
            r.false_positive_rows
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Every file of `corpus` scored from a cold start, in parallel, with a progress bar.
pub(crate) fn score_corpus(
    plan: &Plan,
    registry: &Arc<Registry>,
    ensemble: usize,
    corpus: &nab::Corpus,
    quiet: bool,
) -> anyhow::Result<Vec<SeriesScores>> {
    let bar = super::eval::progress(corpus.files.len() as u64, "series", quiet);
    let judged = corpus
        .files
        .par_iter()
        .map(|file| {
            let judged = score_series(plan, registry, ensemble, &file.series)
                .with_context(|| file.name.clone())?;
            if let Some(bar) = &bar {
                bar.inc(1);
            }
            Ok(judged)
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    Ok(judged)
}

pub(crate) fn tcpd(
    registry: &Arc<Registry>,
    args: TcpdArgs,
    quiet: bool,
) -> anyhow::Result<ExitCode> {
    let dir = folder(&args.data, "TCPD_DIR", "../shared/data/timeseries/tcpd");
    anyhow::ensure!(
        dir.join("annotations.json").is_file(),
        "{} is not the TCPD folder (no annotations.json); give it with --data or $TCPD_DIR",
        dir.display()
    );
    let (plan, _) =
        super::rules::plan_with_sources(std::slice::from_ref(&args.rules), registry, quiet)?;
    let ensemble = pick_ensemble(&plan, args.ensemble.as_deref())?;
    let data = cpd::load(&dir, !args.raw)?;
    let mut results = Vec::new();
    let mut predictions = serde_json::Map::new();
    for s in &data {
        let judged =
            score_series(&plan, registry, ensemble, &s.series).with_context(|| s.name.clone())?;
        let anomalous: Vec<bool> = judged
            .verdicts
            .iter()
            .map(|v| *v == Verdict::Anomaly)
            .collect();
        let points = cpd::clean(&cpd::change_points(&anomalous, args.lag), s.len);
        let f1 = cpd::f1(&s.annotators, &points);
        let cover = cpd::covering(&s.annotators, &points, s.len);
        predictions.insert(s.name.clone(), serde_json::json!(points));
        results.push((s.name.clone(), f1, cover, points));
    }
    anyhow::ensure!(!results.is_empty(), "no series in {}", dir.display());
    if let Some(path) = &args.out {
        std::fs::write(path, serde_json::to_string_pretty(&predictions)?)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    let n = results.len() as f64;
    let f1 = results.iter().map(|r| r.1).sum::<f64>() / n;
    let cover = results.iter().map(|r| r.2).sum::<f64>() / n;
    let mut out = std::io::stdout().lock();
    if args.json {
        let doc = serde_json::json!({
            "rules": args.rules, "ensemble": plan.ensembles[ensemble].name, "lag": args.lag,
            "series": results.iter().map(|(name, f1, cover, points)| serde_json::json!({
                "name": name, "f1": f1, "cover": cover, "change_points": points,
            })).collect::<Vec<_>>(),
            "f1": f1, "cover": cover,
        });
        serde_json::to_writer_pretty(&mut out, &doc)?;
        writeln!(out)?;
        return Ok(ExitCode::SUCCESS);
    }
    writeln!(
        out,
        "TCPD: {} on {} series, lag {}",
        args.rules.display(),
        results.len(),
        args.lag
    )?;
    writeln!(
        out,
        "{:<22} {:>6} {:>6}  change points",
        "series", "F1", "cover"
    )?;
    for (name, f1, cover, points) in &results {
        writeln!(out, "{name:<22} {f1:>6.3} {cover:>6.3}  {points:?}")?;
    }
    writeln!(out, "{:<22} {f1:>6.3} {cover:>6.3}", "mean")?;
    Ok(ExitCode::SUCCESS)
}

/// A threshold on normalised scores: a number from 0 to 1 (NaN and ±inf would compare
/// false with every score and report "threshold NaN").
pub(crate) fn parse_threshold(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(t) if (0.0..=1.0).contains(&t) => Ok(t),
        _ => Err(format!(
            "`{text}` is not a threshold: a normalised score from 0 to 1"
        )),
    }
}
