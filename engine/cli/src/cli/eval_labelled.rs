//! `adr eval RULES --data DIR --labels FILE`: a rule file over any labelled series, each
//! from a cold start, with point, range and NAB metrics.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use adr_benchmark::labelled::{self, Judged, PointMetrics, RangeMetrics};
use adr_benchmark::nab::{self, Layout};
use adr_benchmark::ranges::{Bias, Cardinality, RangeOptions};
use adr_benchmark::series::pick_ensemble;
use adr_engine::plugins::Registry;
use adr_sdk::Verdict;
use anyhow::Context;
use clap::{Args, ValueEnum};

#[derive(Debug, Clone, Copy, ValueEnum)]
enum BiasArg {
    /// Every row of a range alike.
    Flat,
    /// Early rows worth most.
    Front,
    /// The middle worth most.
    Middle,
    /// Late rows worth most.
    Back,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum CardinalityArg {
    /// No penalty for meeting a range with several.
    One,
    /// Divided by the number of ranges met.
    Reciprocal,
}

#[derive(Debug, Args)]
pub(crate) struct LabelledArgs {
    /// The rule file.
    #[arg(required = true)]
    rules: Option<PathBuf>,
    /// The folder the labels' file names are relative to.
    #[arg(long, value_name = "DIR", required = true)]
    data: Option<PathBuf>,
    /// Labelled windows, NAB's layout: {"file.csv": [[start, end], ...]}; an entry may be
    /// one time (a window of one row). Edges are data timestamps or any times in between.
    #[arg(long, value_name = "FILE", required = true)]
    labels: Option<PathBuf>,
    /// The ensemble whose verdicts and scores are judged; default: the last in the file.
    #[arg(long, value_name = "NAME")]
    ensemble: Option<String>,
    /// Range recall's weight of existence against overlap (Tatbul et al.'s α).
    #[arg(long, default_value_t = 0.0, value_name = "A")]
    alpha: f64,
    /// Range metrics' positional bias (δ).
    #[arg(long, value_enum, default_value_t = BiasArg::Flat)]
    bias: BiasArg,
    /// Range metrics' cardinality penalty (γ).
    #[arg(long, value_enum, default_value_t = CardinalityArg::One)]
    cardinality: CardinalityArg,
    /// NAB profiles file (NAB's config/profiles.json layout); default: NAB's three.
    #[arg(long, value_name = "FILE")]
    profiles: Option<PathBuf>,
    /// One NAB threshold for every profile instead of each profile's optimised one (a
    /// normalised score, 0 to 1).
    #[arg(long, value_name = "T", value_parser = super::eval_series::parse_threshold)]
    threshold: Option<f64>,
    /// Also print each file's point and range metrics.
    #[arg(long)]
    per_file: bool,
    /// Write every row's judgement as CSV (file,row,timestamp,score,anomalous,label).
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Machine-readable output: one JSON document on stdout.
    #[arg(long)]
    json: bool,
}

pub(crate) fn labelled(
    registry: &Arc<Registry>,
    args: LabelledArgs,
    quiet: bool,
) -> anyhow::Result<ExitCode> {
    let (Some(rules), Some(data), Some(labels)) = (&args.rules, &args.data, &args.labels) else {
        anyhow::bail!("adr eval needs RULES, --data DIR and --labels FILE (or a subcommand)");
    };
    anyhow::ensure!(
        (0.0..=1.0).contains(&args.alpha),
        "--alpha must lie in [0, 1], not {}",
        args.alpha
    );
    let started = std::time::Instant::now();
    let (plan, _) = super::rules::plan_with_sources(std::slice::from_ref(rules), registry, quiet)?;
    let ensemble = pick_ensemble(&plan, args.ensemble.as_deref())?;
    let layout = Layout {
        time: plan.input.time.clone(),
        fields: plan.input.fields.clone(),
    };
    anyhow::ensure!(
        plan.input.keys.is_empty(),
        "{} reads keyed input ({}); adr eval runs each labelled file as one series, so give \
         it rules without `key =`",
        rules.display(),
        plan.input.keys.join(", ")
    );
    let corpus = nab::Corpus::load_with(data, labels, &layout)?;
    let profiles = match &args.profiles {
        Some(path) => nab::load_profiles(path)?,
        None => nab::nab_profiles(),
    };
    let judged: Vec<Judged> =
        super::eval_series::score_corpus(&plan, registry, ensemble, &corpus, quiet)?
            .into_iter()
            .map(|j| Judged {
                anomalous: j.verdicts.iter().map(|v| *v == Verdict::Anomaly).collect(),
                scores: j.scores,
            })
            .collect();
    let options = RangeOptions {
        alpha: args.alpha,
        bias: match args.bias {
            BiasArg::Flat => Bias::Flat,
            BiasArg::Front => Bias::Front,
            BiasArg::Middle => Bias::Middle,
            BiasArg::Back => Bias::Back,
        },
        cardinality: match args.cardinality {
            CardinalityArg::One => Cardinality::One,
            CardinalityArg::Reciprocal => Cardinality::Reciprocal,
        },
    };
    if let Some(path) = &args.out {
        write_rows(path, &corpus, &judged)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    let report = labelled::report(&corpus, &judged, &options, &profiles, args.threshold);
    let seconds = started.elapsed().as_secs_f64();
    let mut out = std::io::stdout().lock();
    if args.json {
        let doc = serde_json::json!({
            "rules": rules, "ensemble": plan.ensembles[ensemble].name,
            "files": corpus.files.len(), "seconds": seconds, "report": report,
        });
        serde_json::to_writer_pretty(&mut out, &doc)?;
        writeln!(out)?;
        return Ok(ExitCode::SUCCESS);
    }
    let p = &report.point;
    writeln!(
        out,
        "{}: {} files, {} rows ({:.1} % in {} windows); ensemble {}; {seconds:.2} s",
        rules.display(),
        corpus.files.len(),
        p.rows,
        100.0 * p.positives as f64 / p.rows.max(1) as f64,
        corpus.windows,
        plan.ensembles[ensemble].name,
    )?;
    let f = |x: Option<f64>| x.map_or("   -".to_owned(), |x| format!("{x:.3}"));
    writeln!(
        out,
        "{:<8} {:>9} {:>7} {:>6} {:>8} {:>7}  counts",
        "metric", "precision", "recall", "F1", "ROC-AUC", "PR-AUC"
    )?;
    let point_line = |name: &str, m: &PointMetrics| {
        format!(
            "{name:<8} {:>9.3} {:>7} {:>6} {:>8} {:>7}  {} of {} rows flagged, {} in a window",
            m.precision,
            f(m.recall),
            f(m.f1),
            f(m.roc_auc),
            f(m.pr_auc),
            m.flagged,
            m.rows,
            m.true_positives
        )
    };
    let range_line = |name: &str, m: &RangeMetrics| {
        format!(
            "{name:<8} {:>9.3} {:>7} {:>6} {:>8} {:>7}  {} alarm runs, {} windows",
            m.precision,
            f(m.recall),
            f(m.f1),
            "",
            "",
            m.predicted_ranges,
            m.real_ranges
        )
    };
    writeln!(out, "{}", point_line("point", p))?;
    writeln!(out, "{}", range_line("range", &report.range))?;
    if p.undetermined > 0 {
        writeln!(
            out,
            "(ROC-AUC and PR-AUC over the {} rows with a score; {} undetermined rows, counted as normal above, are left out of them)",
            p.rows - p.undetermined,
            p.undetermined
        )?;
    }
    writeln!(
        out,
        "(range: alpha {}, bias {}, cardinality {})",
        options.alpha,
        name(args.bias),
        name(args.cardinality)
    )?;
    for r in &report.nab {
        writeln!(
            out,
            "NAB {:<20} {:>6.2}  threshold {}, {}/{} windows, {} FP rows",
            r.profile,
            r.score,
            r.threshold
                .map_or("never".to_owned(), |t| format!("{t:.6}")),
            r.windows_detected,
            r.windows,
            r.false_positive_rows
        )?;
    }
    if args.per_file {
        for file in &report.files {
            writeln!(out, "\n{}", file.name)?;
            writeln!(out, "{}", point_line("  point", &file.point))?;
            writeln!(out, "{}", range_line("  range", &file.range))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A value's name on the command line.
fn name(value: impl ValueEnum) -> String {
    value
        .to_possible_value()
        .map_or_else(String::new, |v| v.get_name().to_owned())
}

/// Every row: its file, position, time as written, score (empty when undetermined),
/// verdict and label.
fn write_rows(
    path: &std::path::Path,
    corpus: &nab::Corpus,
    judged: &[Judged],
) -> anyhow::Result<()> {
    let mut out = csv::Writer::from_path(path)?;
    out.write_record(["file", "row", "timestamp", "score", "anomalous", "label"])?;
    for (file, j) in corpus.files.iter().zip(judged) {
        let labels = file.labels();
        for (i, stamp) in file.stamps.iter().enumerate() {
            let score = j.scores[i];
            let score = if score.is_nan() {
                String::new()
            } else {
                score.to_string()
            };
            let flag = |b: bool| if b { "1" } else { "0" };
            out.write_record([
                file.name.as_str(),
                &i.to_string(),
                stamp,
                &score,
                flag(j.anomalous[i]),
                flag(labels[i]),
            ])?;
        }
    }
    out.flush()?;
    Ok(())
}
