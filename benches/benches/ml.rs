//! ML detectors through the plugin boundary on the peers' `blobs_10000` (10 000 × 8):
//! train on every row then score them all (the peers' fit + score), and the latency of
//! one `update` on a fitted Isolation Forest. The peer comparison at 100 k and 1 M rows
//! is `benches/peers/compare_ml.py`.
//!
//! Needs the release plugin: `cargo build --release -p adr-plugin-ml`.

// criterion's macros define undocumented public functions.
#![allow(missing_docs)]

use adr_benches::{blobs, release_plugins};
use adr_sdk::{score::ScoreColumns, Column, Event, Frame, ParamValue};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

const N: usize = 10_000;
const D: usize = 8;

fn fit_and_score(c: &mut Criterion) {
    let (rows, _) = blobs(N);
    let columns: Vec<Vec<f64>> = (0..D)
        .map(|j| rows.iter().skip(j).step_by(D).copied().collect())
        .collect();
    let names: Vec<String> = (0..D).map(|j| format!("x{j}")).collect();
    let ts: Vec<i64> = (0..N as i64).collect();
    let cols: Vec<Column<'_>> = names
        .iter()
        .zip(&columns)
        .map(|(n, c)| Column::f64(n, c))
        .collect();
    let frame = Frame::new(&ts, &cols).unwrap();
    let registry = release_plugins();
    let mut group = c.benchmark_group("ml/fit_and_score");
    group
        .throughput(Throughput::Elements(N as u64))
        .sample_size(10);
    let text = |s: &str| ParamValue::Text(s.into());
    let cases: [(&str, Vec<(String, ParamValue)>); 8] = [
        ("isolation_forest", vec![]),
        ("lof", vec![("k".into(), ParamValue::Int(20))]),
        (
            "one_class_svm",
            vec![
                ("nu".into(), ParamValue::Float(0.01)),
                ("gamma".into(), text("scale")),
            ],
        ),
        ("hbos", vec![]),
        ("ecod", vec![]),
        ("copod", vec![]),
        ("knn", vec![]),
        ("pca", vec![]),
    ];
    let mut out = ScoreColumns::with_len(N);
    for (name, params) in cases {
        let mut params = params;
        params.push(("train".into(), ParamValue::Int(N as i64)));
        group.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter(|| {
                let mut d = registry
                    .create(&format!("ml.{name}"), &params, &names)
                    .unwrap();
                d.score(&frame, &mut out.as_mut()).unwrap();
                d.score(&frame, &mut out.as_mut()).unwrap();
            })
        });
    }
    group.finish();

    let params = [("train".to_owned(), ParamValue::Int(N as i64))];
    let mut forest = registry
        .create("ml.isolation_forest", &params, &names)
        .unwrap();
    forest.score(&frame, &mut out.as_mut()).unwrap();
    let mut i = 0;
    c.bench_function("ml/isolation_forest/one_event", |b| {
        b.iter(|| {
            i = (i + 1) % N;
            forest
                .update(&Event::new(i as i64, &rows[i * D..(i + 1) * D]))
                .unwrap()
        })
    });
}

criterion_group!(benches, fit_and_score);
criterion_main!(benches);
