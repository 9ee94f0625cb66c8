//! Realtime detectors through the plugin boundary: every detector over one series in one
//! batch and one event at a time, at 10 000 and 100 000 events (the forests, BOCPD and the
//! subsequence kNN) or 100 000 and 1 000 000 (the charts and the thresholds). `benches/peers/compare_realtime.py` puts
//! the same detectors next to River and rrcf on identical data.
//!
//! Needs the release plugin: `cargo build --release -p adr-plugin-realtime`.

// criterion's macros define undocumented public functions.
#![allow(missing_docs)]

use adr_benches::{realtime_plugin, series};
use adr_engine::plugins::Registry;
use adr_sdk::host::DetectorHandle;
use adr_sdk::{score::ScoreColumns, Column, Event, Frame, ParamValue};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

fn build(registry: &Registry, name: &str) -> DetectorHandle {
    let params: Vec<(String, ParamValue)> = match name {
        "half_space_trees" => vec![("limits".into(), ParamValue::Text("unit".into()))],
        _ => Vec::new(),
    };
    registry
        .create(&format!("realtime.{name}"), &params, &["x".to_owned()])
        .expect("detector builds")
}

fn detectors(c: &mut Criterion) {
    let registry = realtime_plugin();
    let cases: [(&str, [usize; 2]); 13] = [
        ("ewma", [100_000, 1_000_000]),
        ("cusum", [100_000, 1_000_000]),
        ("page_hinkley", [100_000, 1_000_000]),
        ("adwin", [100_000, 1_000_000]),
        ("spot", [100_000, 1_000_000]),
        ("quantile", [100_000, 1_000_000]),
        ("likelihood", [100_000, 1_000_000]),
        ("range_break", [100_000, 1_000_000]),
        ("kmeans", [100_000, 1_000_000]),
        ("bocpd", [10_000, 100_000]),
        ("half_space_trees", [10_000, 100_000]),
        ("random_cut_forest", [10_000, 100_000]),
        ("subsequence_knn", [10_000, 100_000]),
    ];
    for (name, sizes) in cases {
        let mut group = c.benchmark_group(format!("realtime/{name}"));
        group.sample_size(10);
        for n in sizes {
            let (raw, _) = series(n);
            // unit range for the half-space trees, unit scale for BOCPD's priors
            let (lo, hi) = raw
                .iter()
                .fold((f64::MAX, f64::MIN), |(a, b), &x| (a.min(x), b.max(x)));
            let values: Vec<f64> = raw.iter().map(|x| (x - lo) / (hi - lo)).collect();
            let ts: Vec<i64> = (0..n as i64).collect();
            group.throughput(Throughput::Elements(n as u64));
            let mut out = ScoreColumns::with_len(n);
            group.bench_with_input(BenchmarkId::new("batch", n), &n, |b, _| {
                b.iter(|| {
                    let mut d = build(&registry, name);
                    let cols = [Column::f64("x", &values)];
                    d.score(&Frame::new(&ts, &cols).unwrap(), &mut out.as_mut())
                        .unwrap();
                })
            });
            group.bench_with_input(BenchmarkId::new("events", n), &n, |b, _| {
                b.iter(|| {
                    let mut d = build(&registry, name);
                    for (i, x) in values.iter().enumerate() {
                        d.update(&Event::new(i as i64, std::slice::from_ref(x)))
                            .unwrap();
                    }
                })
            });
        }
        group.finish();
    }
}

criterion_group!(benches, detectors);
criterion_main!(benches);
