//! Generates `examples/market.csv`: three days of one-minute BTC-USD-like bars with two
//! injected events, so the README's first command has something real to find.
//!
//! - a flash crash: −12 % over three minutes from 2025-01-15T10:30:00Z, half recovered
//!   within the next twenty minutes;
//! - a volume spike: 25× the usual volume at 2025-01-16T14:05:00Z, the price barely moving.
//!
//! Deterministic (a fixed-seed SplitMix64), so the committed file can be regenerated and
//! checked: `cargo run -p adr-engine --example gen_market > examples/market.csv`.

use std::fmt::Write as _;

/// The first bar: 2025-01-14T00:00:00Z.
const START: i64 = 1_736_812_800;
/// Bars: three days of minutes.
const BARS: i64 = 3 * 24 * 60;
/// The crash's first minute.
pub(crate) const CRASH_AT: i64 = 1_736_937_000; // 2025-01-15T10:30:00Z
/// The volume spike's minute.
pub(crate) const SPIKE_AT: i64 = 1_737_036_300; // 2025-01-16T14:05:00Z

struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A standard normal draw (Box–Muller).
    fn normal(&mut self) -> f64 {
        let (u, v) = (self.next().max(1e-300), self.next());
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }
}

/// The CSV text of the example market: `ts,symbol,open,high,low,close,volume`.
pub(crate) fn generate() -> String {
    let mut rng = SplitMix(20_250_115);
    let mut out = String::from("ts,symbol,open,high,low,close,volume\n");
    let mut price = 97_000.0_f64;
    for i in 0..BARS {
        let t = START + 60 * i;
        let open = price;
        // a random walk with 0.05 % volatility per minute
        let mut ret = 0.0005 * rng.normal();
        let minutes_into_crash = (t - CRASH_AT) / 60;
        if (0..3).contains(&minutes_into_crash) {
            ret = (0.88f64).ln() / 3.0 + 0.0005 * rng.normal();
        } else if (3..23).contains(&minutes_into_crash) {
            ret = (1.0f64 / 0.94).ln() / 20.0 + 0.0005 * rng.normal();
        }
        price = open * ret.exp();
        let wick = 0.0003 * open * rng.next();
        let high = open.max(price) + wick;
        let low = open.min(price) - 0.0003 * open * rng.next();
        // volume: a daily cycle, lognormal noise, and the events
        let hour = ((t / 3600) % 24) as f64;
        let mut volume = 12.0
            * (1.0 + 0.4 * (std::f64::consts::TAU * (hour - 14.0) / 24.0).cos())
            * (0.3 * rng.normal()).exp();
        if (0..6).contains(&minutes_into_crash) {
            volume *= 8.0;
        }
        if t == SPIKE_AT {
            volume *= 25.0;
        }
        let ts = format_time(t);
        let _ = writeln!(
            out,
            "{ts},BTC-USD,{open:.2},{high:.2},{low:.2},{price:.2},{volume:.4}"
        );
    }
    out
}

/// `YYYY-MM-DDTHH:MM:SSZ` for epoch seconds (days from the civil-from-days algorithm).
fn format_time(t: i64) -> String {
    let (days, secs) = (t.div_euclid(86_400), t.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

#[allow(dead_code)] // unused where a test includes this file as a module
fn main() {
    print!("{}", generate());
}
