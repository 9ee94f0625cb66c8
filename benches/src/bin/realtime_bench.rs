//! The Rust side of `benches/peers/compare_realtime.py`: times adr's realtime detectors
//! through the plugin boundary on the peer harness's `series_<n>` input, with the peers'
//! settings, and prints one JSON object per case.
//!
//!     realtime_bench [CASE N]...     e.g. realtime_bench half_space_trees 100000 bocpd 100000
//!
//! Cases and how they are timed (median of 3 to 15 runs, after a warm-up run):
//! - `half_space_trees`: 10 trees, height 8, window 250, on the series scaled to [0, 1] by
//!   its minimum and maximum outside the timing (River's `limits`), one `update` per event;
//! - `random_cut_forest`: 20 trees of 256 points, one `update` per event (as `rrcf`'s
//!   loop), and `random_cut_forest_batch`: the same events in one batch (trees in parallel);
//! - `cusum`, `page_hinkley`, `ewma`: one batch call over the series;
//! - `bocpd`: one `update` per event (the series standardised outside the timing),
//!   `bocpd_truncated`: the same with at most 20 run lengths, `bocpd_runs_<M>`: with at
//!   most M (the truncation sweep, e.g. `bocpd_runs_8`); each with `_batch` after it
//!   (`bocpd_batch`, `bocpd_truncated_batch`, `bocpd_runs_8_batch`): one batch call;
//! - `spot`: one `update` per event after the calibration's 1 000 events (untimed), and
//!   `spot_batch`: the events after the calibration in one batch call;
//! - `kmeans`: River's defaults (5 centres, halflife 0.5), one `update` per event.

use std::time::Instant;

use adr_benches::{realtime_plugin, series};
use adr_engine::plugins::Registry;
use adr_sdk::host::DetectorHandle;
use adr_sdk::score::ScoreColumns;
use adr_sdk::{Column, Event, Frame, ParamValue};

fn settings(case: &str) -> (&'static str, Vec<(&'static str, ParamValue)>) {
    use ParamValue::{Int, Text};
    match case {
        "half_space_trees" => (
            "half_space_trees",
            vec![
                ("trees", Int(10)),
                ("height", Int(8)),
                ("window", Int(250)),
                ("limits", Text("unit".into())),
            ],
        ),
        "random_cut_forest" | "random_cut_forest_batch" => (
            "random_cut_forest",
            vec![("trees", Int(20)), ("size", Int(256))],
        ),
        "cusum" => ("cusum", vec![]),
        "page_hinkley" => ("page_hinkley", vec![]),
        "ewma" => ("ewma", vec![]),
        "bocpd" | "bocpd_batch" => ("bocpd", vec![]),
        "bocpd_truncated" | "bocpd_truncated_batch" => ("bocpd", vec![("max_runs", Int(20))]),
        runs if runs.starts_with("bocpd_runs_") => {
            let max_runs = runs["bocpd_runs_".len()..]
                .trim_end_matches("_batch")
                .parse()
                .unwrap_or_else(|_| panic!("{runs}: bocpd_runs_ takes a number of runs"));
            ("bocpd", vec![("max_runs", Int(max_runs))])
        }
        "spot" | "spot_batch" => ("spot", vec![("init", Int(1000))]),
        // rules/nab.adr's settings
        "subsequence_knn" => (
            "subsequence_knn",
            vec![("length", Int(20)), ("k", Int(3)), ("memory", Int(750))],
        ),
        "likelihood" => ("likelihood", vec![("hold", Int(100))]),
        "range_break" => ("range_break", vec![]),
        // River's defaults (5 centres, halflife 0.5)
        "kmeans" => ("kmeans", vec![]),
        other => panic!("unknown case {other}"),
    }
}

fn build(registry: &Registry, case: &str) -> DetectorHandle {
    let (name, params) = settings(case);
    let params: Vec<(String, ParamValue)> =
        params.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
    registry
        .create(&format!("realtime.{name}"), &params, &["x".to_owned()])
        .expect("detector builds")
}

fn prepared(case: &str, values: &[f64]) -> Vec<f64> {
    let (lo, hi) = values
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &x| {
            (a.min(x), b.max(x))
        });
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let sd = (values.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n).sqrt();
    match case {
        "half_space_trees" => values.iter().map(|x| (x - lo) / (hi - lo)).collect(),
        bocpd if bocpd.starts_with("bocpd") => values.iter().map(|x| (x - mean) / sd).collect(),
        _ => values.to_vec(),
    }
}

/// Seconds of one run of `case` over `values` (the timed part only).
fn run_once(registry: &Registry, case: &str, values: &[f64]) -> f64 {
    let mut handle = build(registry, case);
    let skip = if case.starts_with("spot") {
        1000.min(values.len())
    } else {
        0
    };
    for (i, x) in values[..skip].iter().enumerate() {
        handle
            .update(&Event::new(i as i64, std::slice::from_ref(x)))
            .expect("update");
    }
    let values = &values[skip..];
    let ts: Vec<i64> = (0..values.len() as i64).collect();
    let batch = matches!(case, "cusum" | "page_hinkley" | "ewma") || case.ends_with("_batch");
    if batch {
        let cols = [Column::f64("x", values)];
        let frame = Frame::new(&ts, &cols).expect("frame");
        let mut out = ScoreColumns::with_len(values.len());
        let t = Instant::now();
        handle.score(&frame, &mut out.as_mut()).expect("scores");
        let s = t.elapsed().as_secs_f64();
        assert!(
            out.raw.iter().any(|r| r.is_finite()),
            "{case}: some events scored"
        );
        s
    } else {
        let t = Instant::now();
        let mut finite = 0usize;
        for (i, x) in values.iter().enumerate() {
            let s = handle
                .update(&Event::new(i as i64, std::slice::from_ref(x)))
                .expect("update");
            finite += s.raw.is_finite() as usize;
        }
        let s = t.elapsed().as_secs_f64();
        assert!(finite > 0, "{case}: some events scored");
        s
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let cases: Vec<(String, usize)> = if args.is_empty() {
        [
            "half_space_trees",
            "random_cut_forest",
            "random_cut_forest_batch",
            "cusum",
            "page_hinkley",
            "ewma",
            "bocpd",
            "spot",
            "subsequence_knn",
            "likelihood",
            "range_break",
            "kmeans",
        ]
        .iter()
        .map(|c| ((*c).to_owned(), 10_000))
        .collect()
    } else {
        args.chunks(2)
            .map(|p| {
                (
                    p[0].clone(),
                    p.get(1).and_then(|n| n.parse().ok()).expect("CASE N pairs"),
                )
            })
            .collect()
    };
    let registry = realtime_plugin();
    let threads = rayon::current_num_threads();
    for (case, n) in cases {
        let (values, source) = series(n);
        let values = prepared(&case, &values);
        run_once(&registry, &case, &values[..values.len().min(2000)]);
        let mut times = Vec::new();
        let started = Instant::now();
        while times.len() < 3 || (times.len() < 15 && started.elapsed().as_secs_f64() < 2.0) {
            times.push(run_once(&registry, &case, &values));
            if times.len() == 1 && times[0] > 10.0 {
                break;
            }
        }
        times.sort_by(f64::total_cmp);
        let seconds = times[times.len() / 2];
        let events = if case == "spot" {
            n.saturating_sub(1000)
        } else {
            n
        };
        println!(
            "{}",
            serde_json::json!({
                "case": case, "n": n, "seconds": seconds, "runs": times.len(),
                "events_per_s": events as f64 / seconds, "threads": threads, "input": source,
            })
        );
    }
}
