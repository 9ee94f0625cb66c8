//! One pass of `statistical.zscore` (window 500) over 200 000 points through the plugin
//! boundary, per event (`stream`) or in one batch (`batch`), for instruction counts that
//! do not depend on the machine's noise:
//!
//!     cargo build --release -p adr-plugin-statistical -p adr-benches
//!     RAYON_NUM_THREADS=1 valgrind --tool=callgrind ./target/release/zscore_pass batch
//!
//! then `callgrind_annotate --inclusive=yes` on the output: `Rolling<T>::run` (batch) or
//! the plugin's `update` (stream) is the detector's cost.

use adr_benches::{detector, series, statistical_plugin};
use adr_sdk::{score::ScoreColumns, Column, Event, Frame};

fn main() {
    let mode = std::env::args().nth(1).unwrap_or_else(|| "batch".into());
    let n = 200_000;
    let (values, _) = series(n);
    let ts: Vec<i64> = (0..n as i64).collect();
    let registry = statistical_plugin();
    let mut d = detector(&registry, "zscore", 500);
    let last = if mode == "stream" {
        let mut last = 0.0;
        for (t, x) in ts.iter().zip(&values) {
            last = d
                .update(&Event::new(*t, std::slice::from_ref(x)))
                .unwrap()
                .normalised;
        }
        last
    } else {
        let cols = [Column::f64("x", &values)];
        let frame = Frame::new(&ts, &cols).unwrap();
        let mut out = ScoreColumns::with_len(n);
        d.score(&frame, &mut out.as_mut()).unwrap();
        out.normalised[n - 1]
    };
    println!("{last}");
}
