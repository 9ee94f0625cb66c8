//! The example rule files in `rules/`, run by `adr run` on real labelled data from
//! `../shared/data`, scored against the labels. The bars are the figures measured when the
//! rules were written (see rules/README.md); a change that loses detections fails here.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use adr_engine::io::timestamp::TimeFormat;
use adr_tests::{built, plugin_dir, shared_data, workspace};

/// A fired alert: time (ns) and key.
struct Alert {
    ts: i64,
    key: String,
}

fn time(text: &str) -> i64 {
    TimeFormat::detect(text)
        .and_then(|f| f.parse(text).ok())
        .unwrap_or_else(|| panic!("`{text}` is a time"))
}

/// Runs `adr run RULES --input INPUT` and returns the alerts it wrote.
fn run(rules: &str, input: &Path) -> Vec<Alert> {
    let b = built();
    let plugins = plugin_dir(&[&b.statistical]);
    let out = Command::new(&b.adr)
        .args(["run", "--no-notify", "--json", rules, "--input"])
        .arg(input)
        .arg("--plugins")
        .arg(plugins.path())
        .current_dir(workspace())
        .output()
        .expect("adr runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "adr run {rules} {}: {stderr}",
        input.display()
    );
    let summary: serde_json::Value =
        serde_json::from_str(stderr.lines().last().expect("a summary line")).expect("JSON summary");
    assert_eq!(summary["detector_failures"], 0, "{summary}");
    String::from_utf8(out.stdout)
        .expect("UTF-8")
        .lines()
        .map(|l| {
            let doc: serde_json::Value = serde_json::from_str(l).expect("an alert is JSON");
            Alert {
                ts: time(doc["time"].as_str().expect("time")),
                key: doc["key"].as_str().expect("key").to_owned(),
            }
        })
        .collect()
}

/// Concatenates gzip CSV files into one CSV (one header), adding a `symbol` column first
/// when `symbols` names one per file, and keeping each file's first `columns` columns.
fn concatenate(files: &[PathBuf], symbols: Option<&[String]>, columns: usize, out: &Path) {
    let mut w = std::io::BufWriter::new(std::fs::File::create(out).expect("temp file"));
    for (i, f) in files.iter().enumerate() {
        let reader = BufReader::new(flate2::read::MultiGzDecoder::new(
            std::fs::File::open(f).expect("data file"),
        ));
        for (j, line) in reader.lines().enumerate() {
            let line = line.expect("a line");
            let line = line.split(',').take(columns).collect::<Vec<_>>().join(",");
            if j == 0 && i > 0 {
                continue;
            }
            match (symbols, j) {
                (Some(_), 0) => writeln!(w, "symbol,{line}"),
                (Some(s), _) => writeln!(w, "{},{line}", s[i]),
                (None, _) => writeln!(w, "{line}"),
            }
            .expect("write");
        }
    }
}

const DAY: f64 = 86_400e9;

#[test]
fn price_spikes_fire_more_often_during_the_usdc_depeg() {
    let Some(data) = shared_data("price_spikes_fire_more_often_during_the_usdc_depeg") else {
        return;
    };
    let klines = data.join("crypto/klines");
    let alerts = run(
        "rules/price_spikes.adr",
        &klines.join("kraken_BTCUSDC_1m_2023-03-01_2023-03-21.csv.gz"),
    );
    // events.csv: the depeg window, derived from the Binance.US prices
    let (start, end) = (time("2023-03-11T04:13:00Z"), time("2023-03-14T12:51:00Z"));
    let (first, last) = (time("2023-03-01T00:00:00Z"), time("2023-03-22T00:00:00Z"));
    let inside = alerts
        .iter()
        .filter(|a| (start..=end).contains(&a.ts))
        .count();
    let outside = alerts.len() - inside;
    let rate_in = inside as f64 / ((end - start) as f64 / DAY);
    let rate_out = outside as f64 / ((last - first - (end - start)) as f64 / DAY);
    eprintln!("price_spikes on Kraken BTC/USDC: {inside} alerts in the depeg ({rate_in:.2}/day), {outside} outside ({rate_out:.2}/day)");
    assert!(inside >= 5, "{inside} alerts in the depeg window");
    assert!(
        rate_in >= 3.0 * rate_out,
        "{rate_in:.2}/day in the depeg vs {rate_out:.2}/day outside"
    );
}

#[test]
fn volume_bursts_find_most_labelled_windows_of_nab_tweets() {
    let Some(data) = shared_data("volume_bursts_find_most_labelled_windows_of_nab_tweets") else {
        return;
    };
    let nab = data.join("nab");
    let windows: HashMap<String, Vec<(String, String)>> = serde_json::from_str(
        &std::fs::read_to_string(nab.join("labels/combined_windows.json")).expect("labels"),
    )
    .expect("labels are JSON");
    let (mut hit, mut total, mut alerts_in, mut alerts_all) = (0, 0, 0, 0);
    let mut names: Vec<&String> = windows
        .keys()
        .filter(|k| k.starts_with("realTweets/"))
        .collect();
    names.sort();
    assert_eq!(names.len(), 10, "NAB has ten realTweets series");
    for name in names {
        let alerts = run("rules/volume_bursts.adr", &nab.join("data").join(name));
        let spans: Vec<(i64, i64)> = windows[name]
            .iter()
            .map(|(a, b)| (time(a), time(b)))
            .collect();
        total += spans.len();
        hit += spans
            .iter()
            .filter(|(a, b)| alerts.iter().any(|x| (*a..=*b).contains(&x.ts)))
            .count();
        alerts_all += alerts.len();
        alerts_in += alerts
            .iter()
            .filter(|x| spans.iter().any(|(a, b)| (*a..=*b).contains(&x.ts)))
            .count();
    }
    eprintln!("volume_bursts on NAB realTweets: {hit}/{total} windows hit, {alerts_in}/{alerts_all} alerts inside a window");
    assert!(hit >= 28, "{hit}/{total} labelled windows have an alert");
    assert!(
        alerts_in as f64 >= 0.12 * alerts_all as f64,
        "{alerts_in}/{alerts_all} alerts in windows"
    );
}

#[test]
fn market_stress_runs_per_market_over_four_kline_series() {
    let Some(data) = shared_data("market_stress_runs_per_market_over_four_kline_series") else {
        return;
    };
    let names = [
        "binanceus_BTCUSDC",
        "binanceus_BTCUSDT",
        "binanceus_BTCUSD",
        "kraken_BTCUSDC",
    ];
    let files: Vec<PathBuf> = names
        .iter()
        .map(|n| data.join(format!("crypto/klines/{n}_1m_2023-03-01_2023-03-21.csv.gz")))
        .collect();
    let symbols: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
    let dir = tempfile::tempdir().expect("temp dir");
    let combined = dir.path().join("klines.csv");
    // The kraken file has one more column (trades); a CSV has one header, so keep the six
    // columns all four share.
    concatenate(&files, Some(&symbols), 6, &combined);
    let alerts = run("rules/market_stress.adr", &combined);
    let mut per_key: HashMap<&str, usize> = HashMap::new();
    for a in &alerts {
        *per_key.entry(a.key.as_str()).or_default() += 1;
    }
    eprintln!("market_stress over four markets: {per_key:?}");
    // The markets are run one after the other in one stream: each key keeps its own state,
    // and time going back between keys is not an error.
    assert!(
        per_key.len() >= 3,
        "alerts for {} of 4 markets",
        per_key.len()
    );
}

#[test]
fn pump_watch_catches_pumps_in_raw_binance_trades() {
    let Some(data) = shared_data("pump_watch_catches_pumps_in_raw_binance_trades") else {
        return;
    };
    let pumps_dir = data.join("crypto/pumpdump");
    let table = std::fs::read_to_string(pumps_dir.join("pumps.csv")).expect("pumps.csv");
    let mut files = Vec::new();
    let mut pumps = Vec::new();
    for line in table.lines().skip(1) {
        let cells: Vec<&str> = line.split(',').collect();
        files.push(pumps_dir.join(cells[0]));
        pumps.push((format!("{}/{}", cells[1], cells[2]), time(cells[3])));
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let combined = dir.path().join("trades.csv");
    concatenate(&files, None, usize::MAX, &combined);
    let alerts = run("rules/pump_watch.adr", &combined);
    let minute = 60_000_000_000;
    let mut matched = vec![false; alerts.len()];
    let mut found = 0;
    for (symbol, at) in &pumps {
        let mut hit = false;
        for (i, a) in alerts.iter().enumerate() {
            if &a.key == symbol && (at - 2 * minute..=at + 10 * minute).contains(&a.ts) {
                matched[i] = true;
                hit = true;
            }
        }
        found += usize::from(hit);
    }
    let outside = matched.iter().filter(|m| !**m).count();
    eprintln!("pump_watch on {} pumps: {found} found within [-2, +10] minutes, {outside} alerts elsewhere", pumps.len());
    assert_eq!(pumps.len(), 29);
    assert!(found >= 14, "{found}/29 pumps found");
    assert!(
        outside <= 22,
        "{outside} alerts away from the announced pumps"
    );
}
