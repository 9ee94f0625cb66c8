//! The Rust side of `benches/peers/statistical.sh`: times adr's statistical detectors on
//! the peer harness's exact input and prints one JSON object per case.
//!
//! Cases (window 500, as the peers' `rolling_zscore_*` cases):
//! - `zscore_batch`, `mad_batch`: one batch call through the plugin boundary on all points;
//! - `zscore_stream`: one `update` call through the plugin boundary per event;
//! - `zscore_batch_rlib`: the same detector called directly, without the boundary.

use adr_benches::{detector, median_seconds, series, statistical_plugin};
use adr_plugin_statistical::{ZScore, ZScoreParams};
use adr_sdk::{score::ScoreColumns, Column, Detector, Event, Frame, Window};

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .map_or(1_000_000, |s| s.parse().expect("n"));
    let (values, source) = series(n);
    let ts: Vec<i64> = (0..n as i64).collect();
    let registry = statistical_plugin();
    let cols = [Column::f64("x", &values)];
    let frame = Frame::new(&ts, &cols).unwrap();
    let mut out = ScoreColumns::with_len(n);
    let report = |case: &str, (seconds, repeats): (f64, usize)| {
        let line = serde_json::json!({
            "case": case, "n": n, "seconds": seconds, "points_per_s": n as f64 / seconds,
            "repeats": repeats, "threads": rayon_threads(), "input": source,
        });
        println!("{line}");
    };

    for name in ["zscore", "mad"] {
        let timing = median_seconds(|| {
            let mut d = detector(&registry, name, 500);
            d.score(&frame, &mut out.as_mut()).unwrap();
        });
        report(&format!("{name}_batch"), timing);
    }
    let timing = median_seconds(|| {
        let params = ZScoreParams {
            window: Window::Count(500),
            ..ZScoreParams::default()
        };
        let mut d = ZScore::new(params, &["x".into()]).unwrap();
        d.score(&frame, &mut out.as_mut()).unwrap();
    });
    report("zscore_batch_rlib", timing);
    let timing = median_seconds(|| {
        let mut d = detector(&registry, "zscore", 500);
        let mut anomalies = 0usize;
        for (t, x) in ts.iter().zip(&values) {
            let s = d.update(&Event::new(*t, std::slice::from_ref(x))).unwrap();
            anomalies += usize::from(s.verdict == adr_sdk::Verdict::Anomaly);
        }
        std::hint::black_box(anomalies);
    });
    report("zscore_stream", timing);
}

/// Threads the plugin's batch scoring may use (`RAYON_NUM_THREADS`, else every core).
fn rayon_threads() -> usize {
    std::env::var("RAYON_NUM_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}
