//! The `adr` command end to end: real binary, real plugins, files on disk.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use adr_tests::{adr, built, plugin_dir, Run};

fn detect_text(csv: &str, extra: &[&str]) -> Run {
    let mut args = vec![
        "detect",
        "statistical.zscore",
        "--column",
        "value",
        "--param",
        "window=3",
    ];
    args.extend_from_slice(extra);
    adr(&args, Some(csv))
}

#[test]
fn every_command_has_help() {
    for args in [
        &["--help"][..],
        &["plugins", "--help"],
        &["detect", "--help"],
        &["check", "--help"],
        &["run", "--help"],
        &["test", "--help"],
        &["explain", "--help"],
    ] {
        let run = adr(args, None);
        assert_eq!(run.code, 0, "{args:?}: {}", run.stderr);
        assert!(run.stdout.contains("Usage:"), "{args:?}: {}", run.stdout);
    }
    assert!(adr(&["detect", "--help"], None)
        .stdout
        .contains("--param <NAME=VALUE>"));
}

#[test]
fn plugins_lists_detectors_and_params_for_people_and_programs() {
    let run = adr(&["plugins"], None);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("statistical.dixon_q"), "{}", run.stdout);
    let run = adr(&["plugins", "--json"], None);
    let doc: serde_json::Value = serde_json::from_str(&run.stdout).expect("valid JSON");
    let stat = doc["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["family"] == "statistical")
        .unwrap();
    let zscore = stat["detectors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == "zscore")
        .unwrap();
    let window = zscore["params"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "window")
        .unwrap();
    assert_eq!(window["default"], "500");
    assert_eq!(window["range"], ">= 2 and <= 10000000");
    assert!(!window["doc"].as_str().unwrap().is_empty());
}

#[test]
fn the_shipped_example_finds_the_crash() {
    let run = adr(
        &[
            "detect",
            "statistical.zscore",
            "-c",
            "close",
            "-p",
            "window=60",
            "-p",
            "threshold=4",
            "-i",
            "examples/market.csv",
            "--anomalies-only",
        ],
        None,
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout
            .lines()
            .any(|l| l.starts_with("2025-01-15T10:30:00Z") && l.ends_with("anomaly")),
        "{}",
        run.stdout
    );
    assert!(
        run.stderr
            .contains("scored 4320 rows with statistical.zscore"),
        "{}",
        run.stderr
    );
}

#[test]
fn json_lines_are_valid_json_with_time_values_and_scores() {
    let csv = "ts,value\n2024-01-01T00:00:00Z,1\n2024-01-01T00:01:00Z,2\n2024-01-01T00:02:00Z,1\n2024-01-01T00:03:00Z,50\n";
    let run = detect_text(csv, &["--json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let rows: Vec<serde_json::Value> = run
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    assert_eq!(rows.len(), 4);
    assert_eq!(rows[3]["time"], "2024-01-01T00:03:00Z");
    assert_eq!(rows[3]["values"]["value"], 50.0);
    assert_eq!(rows[3]["verdict"], "anomaly");
    assert_eq!(rows[0]["score"], serde_json::Value::Null);
}

#[test]
fn bad_input_gets_a_clear_message_and_a_failing_exit_code() {
    let cases = [
        ("empty file", "", "the input is empty: expected a header row"),
        ("missing column", "ts,price\n1,2\n", "column `value` is not in the header; columns: ts, price"),
        ("non-numeric cell", "ts,value\n1,2\n2,x2\n", "row 2 (line 3), column `value`: `x2` is not a number"),
        ("unsorted timestamps", "ts,value\n10,1\n5,2\n", "row 2 (line 3): timestamp 1970-01-01T00:00:05Z is earlier than the previous row's 1970-01-01T00:00:10Z"),
        ("bad timestamp", "ts,value\n10,1\nsoon,2\n", "row 2 (line 3), column `ts`: `soon` is not a timestamp"),
        ("ragged row", "ts,value\n10,1\n11,2,3\n", "line 3: the row has 3 fields, the header has 2"),
    ];
    for (name, csv, want) in cases {
        let run = detect_text(csv, &[]);
        assert_eq!(run.code, 1, "{name}: {}", run.stderr);
        assert!(run.stderr.contains(want), "{name}: {}", run.stderr);
        assert!(!run.stderr.contains("panicked"), "{name}: {}", run.stderr);
    }
}

#[test]
fn odd_but_valid_input_is_scored_and_reported() {
    let run = detect_text("ts,value\n", &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains("the input has a header but no rows"),
        "{}",
        run.stderr
    );
    assert_eq!(run.stdout, "ts,value,score,normalised,verdict\n");

    let run = detect_text("ts,value\n1,1\n2,\n3,NaN\n4,inf\n5,2\n6,1\n7,2\n7,3\n", &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("1 missing values, 2 NaN/inf values, 1 rows repeat the previous timestamp"),
        "{}",
        run.stderr
    );
    let verdicts: Vec<&str> = run
        .stdout
        .lines()
        .skip(1)
        .map(|l| l.rsplit(',').next().unwrap())
        .collect();
    assert_eq!(
        verdicts[1..4],
        ["undetermined"; 3],
        "missing and non-finite values are not judged"
    );
    assert_eq!(verdicts.len(), 8, "no row is dropped");

    let run = detect_text("ts,value\n10,1\n5,2\n", &["--unsorted", "allow"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("1 rows go back in time (scored in file order)"),
        "{}",
        run.stderr
    );
}

#[test]
fn invalid_params_are_all_reported_with_names_and_ranges() {
    let run = adr(
        &[
            "detect",
            "statistical.zscore",
            "-c",
            "value",
            "-p",
            "windw=3",
            "-p",
            "threshold=-1",
            "-p",
            "side=up",
            "-p",
            "robust=maybe",
        ],
        Some("ts,value\n1,1\n"),
    );
    assert_eq!(run.code, 1);
    for want in [
        "unknown parameter `windw` (did you mean `window`?)",
        "parameter `threshold` must be > 0, got -1",
        "parameter `side` must be one of both, upper, lower, got `up`",
        "parameter `robust` expects true or false, got `maybe`",
    ] {
        assert!(run.stderr.contains(want), "{want}: {}", run.stderr);
    }
    let run = adr(
        &["detect", "statistical.zscroe", "-c", "value"],
        Some("v\n1\n"),
    );
    assert!(
        run.stderr
            .contains("family `statistical` has no detector `zscroe` (did you mean `zscore`?)"),
        "{}",
        run.stderr
    );
    let run = adr(
        &[
            "detect",
            "statistical.zscore",
            "-c",
            "value",
            "-p",
            "window=5m",
        ],
        Some("value\n1\n"),
    );
    assert!(
        run.stderr
            .contains("parameter `window` is a duration, which needs a time column"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_panicking_detector_fails_the_run_with_its_message() {
    let run = adr(
        &["detect", "faulty.panics", "-c", "value"],
        Some("value\n1\n2\n3\n4\n"),
    );
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("detector `faulty.panics` failed: panicked: detector `panics` panicked: deliberate panic after 2 points"), "{}", run.stderr);
}

#[test]
fn duration_windows_and_whole_batches_work_from_the_command_line() {
    let csv = "time,value\n2024-01-01 00:00:00,1\n2024-01-01 00:00:30,2\n2024-01-01 00:01:00,1\n2024-01-01 00:01:30,2\n2024-01-01 00:02:00,40\n";
    let run = adr(
        &[
            "detect",
            "statistical.zscore",
            "-c",
            "value",
            "-p",
            "window=2m",
            "--anomalies-only",
        ],
        Some(csv),
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.contains("2024-01-01 00:02:00,40"),
        "{}",
        run.stdout
    );
    let run = adr(
        &[
            "detect",
            "statistical.grubbs",
            "-c",
            "value",
            "-p",
            "window=batch",
            "--anomalies-only",
        ],
        Some(csv),
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.contains("2024-01-01 00:02:00,40"),
        "{}",
        run.stdout
    );
}

/// Peak resident memory of a running process, polled until it exits.
fn peak_rss_kib(child: &mut std::process::Child) -> u64 {
    let status = Path::new("/proc")
        .join(child.id().to_string())
        .join("status");
    let mut peak = 0;
    loop {
        if let Ok(text) = std::fs::read_to_string(&status) {
            if let Some(line) = text.lines().find(|l| l.starts_with("VmHWM:")) {
                peak = peak.max(
                    line.split_whitespace()
                        .nth(1)
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(0),
                );
            }
        }
        if child.try_wait().expect("wait").is_some() {
            return peak;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
#[cfg(target_os = "linux")]
fn ten_million_rows_stream_in_constant_memory() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("big.csv");
    {
        let mut w =
            std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(&input).unwrap());
        writeln!(w, "ts,value").unwrap();
        for i in 0..10_000_000u64 {
            writeln!(w, "{},{}.{}", 1_600_000_000 + i, (i * 7919) % 1000, i % 10).unwrap();
        }
    }
    let b = built();
    let plugins = plugin_dir(&[&b.statistical]);
    let mut child = Command::new(&b.adr)
        .args([
            "detect",
            "statistical.zscore",
            "-c",
            "value",
            "-p",
            "window=500",
            "--output",
            "/dev/null",
            "--plugins",
        ])
        .arg(plugins.path())
        .arg("--input")
        .arg(&input)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let peak = peak_rss_kib(&mut child);
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("scored 10000000 rows"), "{stderr}");
    assert!(
        peak > 0 && peak < 100 * 1024,
        "peak RSS {peak} KiB for a 10 M-row file"
    );
}

#[test]
fn check_exits_by_errors_and_speaks_json() {
    let run = adr(&["check", "rules/price_spikes.adr"], None);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains("0 errors, 0 warnings"),
        "{}",
        run.stderr
    );

    let run = adr(&["check", "tests/diagnostics/unknown_detector.adr"], None);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("error[E0302]: family `statistical` has no detector `zscroe`"),
        "{}",
        run.stderr
    );

    let run = adr(
        &["check", "--json", "tests/diagnostics/unknown_detector.adr"],
        None,
    );
    assert_eq!(run.code, 1);
    let doc: serde_json::Value = serde_json::from_str(&run.stdout).expect("JSON");
    let d = &doc[0];
    assert_eq!(d["code"], "E0302");
    assert_eq!(d["level"], "error");
    assert_eq!(d["location"]["line"], 7);
    assert_eq!(d["help"], "did you mean `zscore`?");

    let run = adr(&["check", "no/such/file.adr"], None);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr
            .contains("cannot read rule file no/such/file.adr"),
        "{}",
        run.stderr
    );
}
