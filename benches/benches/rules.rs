//! The rule language: checking a 5,000-line rule file, and the per-event cost of the
//! ensemble/severity/alert layer (detectors excluded: their scores are given).
//!
//! Needs the release plugin: `cargo build --release -p adr-plugin-statistical`.

// criterion's macros define undocumented public functions.
#![allow(missing_docs)]

use adr_benches::{statistical_plugin, workspace};
use adr_engine::evaluator::{judge, AlertBook, Judgement, Step};
use adr_engine::rules::plan::{Member, Plan};
use adr_engine::rules::source;
use adr_sdk::Verdict;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

/// A rule file of about `lines` lines: features, detectors, ensembles with severities,
/// alerts, in the proportions of a real one.
fn big_rule_file(lines: usize) -> String {
    let mut text = String::from("input market {\n    time = ts\n    key = symbol\n    fields = open, high, low, close, volume\n}\n");
    let mut i = 0;
    while text.lines().count() < lines {
        text += &format!("\n// block {i}\nconst W{i} = {}\n", 50 + i % 400);
        text += &format!("feature r{i} = log_return(close) * {}\n", 1 + i % 3);
        text += &format!("feature g{i} = (high - low) / mean(close, W{i})\n");
        text +=
            &format!("detector z{i} = statistical.zscore(window = W{i}, threshold = 4) on r{i}\n");
        text += &format!(
            "detector m{i} = statistical.mad(window = 1h, threshold = 6, side = upper) on g{i}\n"
        );
        text +=
            &format!("detector t{i} = statistical.tukey(window = W{i}, fence = outer) on volume\n");
        text += &format!(
            "ensemble e{i} {{\n    vote = weighted(z{i}: 2, m{i}: 1, t{i}: 1) >= 0.5\n    severity {{\n        critical when z{i} and m{i} and t{i}\n        high     when score >= 0.8\n        medium   otherwise\n    }}\n}}\n"
        );
        text += &format!("alert e{i} {{\n    when severity >= high for 2 events\n    cooldown 10m per key\n    notify log\n}}\n");
        i += 1;
    }
    text
}

fn check(c: &mut Criterion) {
    let registry = statistical_plugin();
    let dir = std::env::temp_dir().join("adr-bench-rules");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("big.adr");
    let text = big_rule_file(5_000);
    std::fs::write(&path, &text).unwrap();
    let (_, diagnostics) =
        adr_engine::rules::check_files(std::slice::from_ref(&path), &registry).unwrap();
    assert!(
        diagnostics.is_empty(),
        "the generated file checks clean: {:?}",
        diagnostics.first()
    );
    let mut group = c.benchmark_group("rules/check");
    group.throughput(Throughput::Elements(text.lines().count() as u64));
    group.bench_function("5000_lines", |b| {
        b.iter(|| adr_engine::rules::check_files(std::slice::from_ref(&path), &registry).unwrap())
    });
    group.finish();
}

/// The layer of `benches/rules/throughput.adr` (at_least(2) of 3, three severity arms, an
/// alert held for 2 events with a cooldown) over given member scores.
fn layer(c: &mut Criterion) {
    let registry = statistical_plugin();
    let loaded = source::load(&[workspace().join("benches/rules/throughput.adr")]).unwrap();
    let (plan, _) = Plan::build(&loaded, &registry).unwrap();
    const N: usize = 100_000;
    let mut seed = 1u64;
    let mut uniform = move || {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (seed >> 11) as f64 / (1u64 << 53) as f64
    };
    // Scores as the detectors give them: mostly normal, some anomalies, some undetermined.
    let members: Vec<Vec<(f64, Verdict)>> = (0..plan.detectors.len())
        .map(|_| {
            (0..N)
                .map(|_| {
                    let u = uniform();
                    if u < 0.01 {
                        (f64::NAN, Verdict::Undetermined)
                    } else {
                        let n = u * u;
                        (
                            n,
                            if n >= 0.5 {
                                Verdict::Anomaly
                            } else {
                                Verdict::Normal
                            },
                        )
                    }
                })
                .collect()
        })
        .collect();
    let keys: Vec<u32> = (0..N as u32).map(|i| i % 10).collect();
    let mut group = c.benchmark_group("rules/layer");
    group.throughput(Throughput::Elements(N as u64));
    group.bench_function("ensemble_severity_alert_per_event", |b| {
        b.iter(|| {
            let mut book = AlertBook::new(&plan.alerts, &plan.input.keys);
            for k in 0..10 {
                book.add_key(&[&format!("SYM{k}")]);
            }
            let (mut gathered, mut scratch) = (Vec::new(), Vec::new());
            let mut judgements = vec![Judgement::UNDETERMINED; plan.ensembles.len()];
            let mut fired = 0u64;
            for i in 0..N {
                for (e, ensemble) in plan.ensembles.iter().enumerate() {
                    gathered.clear();
                    for m in &ensemble.members {
                        gathered.push(match *m {
                            Member::Detector(d) => members[d][i],
                            Member::Ensemble(x) => (judgements[x].score, judgements[x].verdict),
                        });
                    }
                    judgements[e] = judge(ensemble, &gathered, &mut scratch);
                }
                for (a, alert) in plan.alerts.iter().enumerate() {
                    if let Step::Fired(_) = book.step(
                        a,
                        keys[i],
                        i as i64 * 60_000_000_000,
                        &judgements[alert.ensemble],
                        i as u64,
                    ) {
                        fired += 1;
                    }
                }
            }
            fired
        })
    });
    group.finish();
}

criterion_group!(benches, check, layer);
criterion_main!(benches);
