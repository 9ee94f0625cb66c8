//! Statistical detectors: batch scoring through the plugin boundary against calling the
//! rlib directly, at batch sizes from 1,000 to 1,000,000 points (1 M points per
//! iteration in every case, so the figures compare the cost of the boundary per batch),
//! and per-event streaming through the boundary. Window 500, as the peers' cases.
//!
//! Needs the release plugin: `cargo build --release -p adr-plugin-statistical`.

// criterion's macros define undocumented public functions.
#![allow(missing_docs)]

use adr_benches::{detector, series, statistical_plugin};
use adr_plugin_statistical::{Mad, MadParams, ZScore, ZScoreParams};
use adr_sdk::{score::ScoreColumns, Column, Detector, Event, Frame, Window};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

const N: usize = 1_000_000;

/// A detector called directly, without the plugin boundary.
type Direct = Box<dyn FnMut(&Frame<'_>, &mut ScoreColumns)>;

fn batches(c: &mut Criterion) {
    let (values, _) = series(N);
    let ts: Vec<i64> = (0..N as i64).collect();
    let registry = statistical_plugin();
    let mut group = c.benchmark_group("statistical/batch");
    group
        .throughput(Throughput::Elements(N as u64))
        .sample_size(10);
    for name in ["zscore", "mad"] {
        for batch in [1_000, 10_000, 1_000_000] {
            let mut out = ScoreColumns::with_len(batch);
            group.bench_with_input(
                BenchmarkId::new(format!("{name}/ffi"), batch),
                &batch,
                |b, &batch| {
                    b.iter(|| {
                        let mut d = detector(&registry, name, 500);
                        for (t, v) in ts.chunks(batch).zip(values.chunks(batch)) {
                            let cols = [Column::f64("x", v)];
                            d.score(&Frame::new(t, &cols).unwrap(), &mut out.as_mut())
                                .unwrap();
                        }
                    })
                },
            );
            group.bench_with_input(
                BenchmarkId::new(format!("{name}/rlib"), batch),
                &batch,
                |b, &batch| {
                    b.iter(|| {
                        let mut d: Direct = if name == "zscore" {
                            let p = ZScoreParams {
                                window: Window::Count(500),
                                ..ZScoreParams::default()
                            };
                            let mut z = ZScore::new(p, &["x".into()]).unwrap();
                            Box::new(move |f, o| z.score(f, &mut o.as_mut()).unwrap())
                        } else {
                            let p = MadParams {
                                window: Window::Count(500),
                                ..MadParams::default()
                            };
                            let mut m = Mad::new(p, &["x".into()]).unwrap();
                            Box::new(move |f, o| m.score(f, &mut o.as_mut()).unwrap())
                        };
                        for (t, v) in ts.chunks(batch).zip(values.chunks(batch)) {
                            let cols = [Column::f64("x", v)];
                            d(&Frame::new(t, &cols).unwrap(), &mut out);
                        }
                    })
                },
            );
        }
    }
    group.finish();
}

fn stream(c: &mut Criterion) {
    let n = 100_000;
    let (values, _) = series(n);
    let registry = statistical_plugin();
    let mut group = c.benchmark_group("statistical/stream");
    group
        .throughput(Throughput::Elements(n as u64))
        .sample_size(20);
    group.bench_function("zscore/ffi", |b| {
        b.iter(|| {
            let mut d = detector(&registry, "zscore", 500);
            for (t, x) in values.iter().enumerate() {
                std::hint::black_box(
                    d.update(&Event::new(t as i64, std::slice::from_ref(x)))
                        .unwrap(),
                );
            }
        })
    });
    group.bench_function("zscore/rlib", |b| {
        b.iter(|| {
            let p = ZScoreParams {
                window: Window::Count(500),
                ..ZScoreParams::default()
            };
            let mut d = ZScore::new(p, &["x".into()]).unwrap();
            for (t, x) in values.iter().enumerate() {
                std::hint::black_box(
                    d.update(&Event::new(t as i64, std::slice::from_ref(x)))
                        .unwrap(),
                );
            }
        })
    });
    group.finish();
}

criterion_group!(benches, batches, stream);
criterion_main!(benches);
