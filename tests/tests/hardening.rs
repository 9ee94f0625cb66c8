//! The reproductions of issue 20 through the real binary: nothing `adr check` accepts may
//! abort or stall a run, every command means a rule the same way, outputs never destroy
//! inputs, and slow notification targets never hold the event path.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::time::{Duration, Instant};

use adr_tests::{adr, workspace};

/// Writes `text` as `name` in `dir`; returns the path as text.
fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> String {
    let path = dir.path().join(name);
    std::fs::write(&path, text).expect("write");
    path.display().to_string()
}

const INPUT: &str = "input market {\n    time = ts\n    key = symbol\n    fields = close\n}\n";

/// A rule file with one detector line and an ensemble using it.
fn rules_with(detector: &str) -> String {
    format!("{INPUT}{detector}\nensemble e {{\n    vote = at_least(1, d)\n}}\n")
}

#[test]
fn what_a_run_would_refuse_or_die_on_is_refused_by_check() {
    let cases = [
        ("window past the bound", "detector d = statistical.zscore(window = 100000000000, threshold = 4) on close", "must be >= 2 and <= 10000000"),
        ("mad window past the bound", "detector d = statistical.mad(window = 1000000000000) on close", "<= 10000000"),
        ("negative unsigned", "detector d = statistical.zscore(ddof = -5) on close", "`ddof` must be >= 0"),
        ("negative count", "detector d = realtime.spot(depth = -1) on close", "`depth` must be >= 0"),
        ("min_points -1", "detector d = statistical.iqr(min_points = -1) on close", "`min_points` must be >= 0"),
        ("seed -1", "detector d = realtime.half_space_trees(seed = -1) on close", "`seed` must be >= 0"),
        ("train on first past i64", "detector d = statistical.zscore(window = 5) on close train on first 9223372036854775808", "at most 9223372036854775807"),
        ("train on first past u64", "detector d = statistical.zscore(window = 5) on close train on first 99999999999999999999", "at most 9223372036854775807"),
        ("refit every 0s", "detector d = statistical.zscore(window = 5) on close refit every 0s", "`refit every` must be more than zero"),
        ("half-space trees at both maxima", "detector d = realtime.half_space_trees(trees = 1000, height = 20) on close", "cannot be created: trees × 2^(height+1)"),
        ("random cut forest too large", "detector d = realtime.random_cut_forest(trees = 10000, size = 100000) on close", "cannot be created: trees × size"),
    ];
    let dir = tempfile::tempdir().unwrap();
    for (name, detector, want) in cases {
        let path = write(&dir, "r.adr", &rules_with(detector));
        let check = adr(&["check", &path], None);
        assert_eq!(check.code, 1, "{name}: {}", check.stderr);
        assert!(check.stderr.contains(want), "{name}: {}", check.stderr);
        // and the same refusal at run time: nothing starts
        let run = adr(
            &[
                "run",
                &path,
                "--no-notify",
                "--input",
                "examples/market.csv",
            ],
            None,
        );
        assert_eq!(run.code, 1, "{name}: {}", run.stderr);
        assert!(run.stdout.is_empty(), "{name}: {}", run.stdout);
    }
}

#[test]
fn rule_level_mistakes_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("clip bounds reversed", format!("{INPUT}feature c = clip(close, 5, 1)\ndetector d = statistical.zscore(window = 5) on c\nensemble e {{\n    vote = at_least(1, d)\n}}\n"), "lower bound 5 is above its upper bound 1"),
        ("hold past i64", format!("{}alert e {{\n    when severity >= low for 99999999999999999999 events\n}}\n", rules_with("detector d = statistical.zscore(window = 5) on close")), "at most 9223372036854775807 events"),
        ("lag past the bound", format!("{INPUT}feature c = lag(close, 100000000000)\ndetector d = statistical.zscore(window = 5) on c\nensemble e {{\n    vote = at_least(1, d)\n}}\n"), "a count from 1 to 10000000"),
    ];
    for (name, text, want) in cases {
        let path = write(&dir, "r.adr", &text);
        let check = adr(&["check", &path], None);
        assert_eq!(check.code, 1, "{name}: {}", check.stderr);
        assert!(check.stderr.contains(want), "{name}: {}", check.stderr);
    }
    let path = write(
        &dir,
        "r.adr",
        &rules_with("detector d = statistical.zscore(window = 5) on close"),
    );
    let run = adr(
        &[
            "run",
            &path,
            "--batch-rows",
            "0",
            "--input",
            "examples/market.csv",
        ],
        None,
    );
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("--batch-rows"), "{}", run.stderr);
}

#[test]
fn includes_are_only_regular_files_of_bounded_size() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("pipe.adr");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status();
    let mut cases = vec![
        ("a device", "/dev/zero".to_owned(), "not a regular file"),
        ("a folder", dir.path().display().to_string(), "folder"),
    ];
    if made.is_ok_and(|s| s.success()) {
        cases.push(("a FIFO", fifo.display().to_string(), "not a regular file"));
    }
    let big = write(&dir, "big.adr", &"// padding\n".repeat(500_000));
    cases.push(("a 5 MB file", big, "larger than 4 MiB"));
    for (name, target, want) in cases {
        let path = write(&dir, "r.adr", &format!("include \"{target}\"\n"));
        let started = Instant::now();
        let check = adr(&["check", &path], None);
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{name}: took {:?}",
            started.elapsed()
        );
        assert_eq!(check.code, 1, "{name}: {}", check.stderr);
        assert!(check.stderr.contains(want), "{name}: {}", check.stderr);
        // named directly as the rule file, the same
        let direct = adr(&["check", &target], None);
        assert_ne!(direct.code, 0, "{name}: {}", direct.stderr);
    }
}

#[test]
fn an_output_on_an_input_or_another_output_is_refused_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let market = std::fs::read_to_string(workspace().join("examples/market.csv")).unwrap();
    let data = write(&dir, "same.csv", &market);
    let rules = workspace()
        .join("rules/market_stress.adr")
        .display()
        .to_string();
    let dotted = dir.path().join(".").join("same.csv").display().to_string();
    let other = dir.path().join("ao.csv").display().to_string();
    let cases: [(&str, Vec<&str>); 5] = [
        (
            "--output is the input",
            vec!["run", &rules, "--input", &data, "--output", &data],
        ),
        (
            "--alerts is the input",
            vec!["run", &rules, "--input", &data, "--alerts", &dotted],
        ),
        (
            "--output is a rule file",
            vec!["run", &rules, "--input", &data, "--output", &rules],
        ),
        (
            "--output and --alerts share a file",
            vec![
                "run", &rules, "--input", &data, "--output", &other, "--alerts", &other,
            ],
        ),
        (
            "adr detect --output is the input",
            vec![
                "detect",
                "statistical.zscore",
                "--column",
                "close",
                "--input",
                &data,
                "--output",
                &data,
            ],
        ),
    ];
    for (name, args) in cases {
        let run = adr(&args, None);
        assert_eq!(run.code, 1, "{name}: {}", run.stderr);
        assert!(
            run.stderr.contains("the same file"),
            "{name}: {}",
            run.stderr
        );
        assert_eq!(
            std::fs::read_to_string(&data).unwrap(),
            market,
            "{name}: the input survives"
        );
        assert!(!Path::new(&other).exists(), "{name}: nothing created");
    }
    let rules_text = std::fs::read_to_string(&rules).unwrap();
    assert!(
        rules_text.contains("ensemble market_stress"),
        "the rule file survives"
    );
}

#[test]
fn input_mistakes_get_one_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let rules = write(&dir, "r.adr", "input m {\n    time = ts\n    key = k\n    fields = v\n}\ndetector d = statistical.zscore(window = 5) on v\nensemble e {\n    vote = at_least(1, d)\n}\n");
    let long_line = format!("ts,k,v\n1,a,{}\n", "1".repeat(2 << 20));
    let cases: [(&str, String, &str); 4] = [
        (
            "duplicate column",
            "ts,k,v,v\n1,a,1,2\n".into(),
            "both named `v`",
        ),
        (
            "a line past 1 MiB",
            long_line,
            "line 2 is longer than 1 MiB",
        ),
        (
            "a folder as input",
            dir.path().display().to_string(),
            "Is a directory",
        ),
        (
            "ISO time out of range",
            "ts,k,v\n2300-01-01T00:00:00Z,a,1\n".into(),
            "outside the years 1677 to 2262",
        ),
    ];
    for (name, text, want) in cases {
        let input = if name == "a folder as input" {
            text
        } else {
            write(&dir, "in.csv", &text)
        };
        let run = adr(&["run", &rules, "--no-notify", "--input", &input], None);
        assert_eq!(run.code, 1, "{name}: {}", run.stderr);
        assert!(run.stderr.contains(want), "{name}: {}", run.stderr);
        assert!(
            run.stderr.len() < 2000,
            "{name}: the message is short: {} bytes",
            run.stderr.len()
        );
        assert_eq!(
            run.stderr.matches(want).count(),
            1,
            "{name}: said once: {}",
            run.stderr
        );
    }
    // the out-of-order message names a flag `adr run` has
    let unsorted = write(&dir, "in.csv", "ts,k,v\n100,a,1\n50,a,2\n");
    let run = adr(&["run", &rules, "--no-notify", "--input", &unsorted], None);
    assert!(run.stderr.contains("--allow-unsorted"), "{}", run.stderr);
    let allowed = adr(
        &[
            "run",
            &rules,
            "--no-notify",
            "--allow-unsorted",
            "--input",
            &unsorted,
        ],
        None,
    );
    assert_eq!(allowed.code, 0, "{}", allowed.stderr);
    let detect = adr(
        &[
            "detect",
            "statistical.zscore",
            "--column",
            "v",
            "--allow-unsorted",
            "--input",
            &unsorted,
        ],
        None,
    );
    assert_eq!(detect.code, 0, "{}", detect.stderr);
}

#[test]
fn fractional_epoch_seconds_are_exact_and_scores_have_no_negative_zero() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::from("ts,v\n");
    for i in 0..20 {
        let v = if i == 10 {
            "-0".to_owned()
        } else {
            (i % 3).to_string()
        };
        text.push_str(&format!("{}.75,{v}\n", 1_735_689_600 + i));
    }
    let input = write(&dir, "in.csv", &text);
    let rules = write(
        &dir,
        "r.adr",
        "input m {\n    time = ts\n    fields = v\n}\ndetector d = statistical.zscore(window = 5) on v\nensemble e {\n    vote = at_least(1, d)\n}\n",
    );
    let scored = dir.path().join("scored.csv").display().to_string();
    let run = adr(
        &["run", &rules, "-q", "--input", &input, "--output", &scored],
        None,
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let out = std::fs::read_to_string(&scored).unwrap();
    assert!(out.contains("\n2025-01-01T00:00:00.75Z,"), "{out}");
    assert!(out.contains("\n2025-01-01T00:00:19.75Z,"), "{out}");
    assert!(!out.contains("-0.0"), "{out}");
}

/// A local server that accepts connections and answers each as `answer` does; ends with
/// the test process.
fn server(answer: fn(&mut std::net::TcpStream)) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(10_000) {
            let Ok(mut stream) = stream else { break };
            std::thread::spawn(move || {
                let mut buf = [0u8; 8192];
                let _ = stream.read(&mut buf);
                answer(&mut stream);
            });
        }
    });
    format!("http://{addr}/hook")
}

#[test]
fn webhooks_that_fail_never_hold_the_run_and_lose_no_alert() {
    fn never(_: &mut std::net::TcpStream) {
        std::thread::sleep(Duration::from_secs(60));
    }
    fn error_500(s: &mut std::net::TcpStream) {
        let _ = s.write_all(b"HTTP/1.1 500 Oops\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
    }
    // slower than any local target, within the 250 ms a try may take when the run ends
    fn slow(s: &mut std::net::TcpStream) {
        std::thread::sleep(Duration::from_millis(100));
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
    }
    fn hang_up(s: &mut std::net::TcpStream) {
        let _ = s.shutdown(std::net::Shutdown::Both);
    }
    let dir = tempfile::tempdir().unwrap();
    // A sensitive rule: alerts all through the example market.
    let rules = |target: &str| {
        format!(
            "input market {{\n    time = ts\n    key = symbol\n    fields = close\n}}\n\
             feature r = log_return(close)\n\
             detector d = statistical.zscore(window = 30, threshold = 2.5) on r\n\
             ensemble e {{\n    vote = at_least(1, d)\n}}\n\
             alert e {{\n    when severity >= low\n    notify {target}\n}}\n"
        )
    };
    let run = |target: &str| {
        let path = write(&dir, "r.adr", &rules(target));
        let started = Instant::now();
        let out = adr(
            &[
                "run",
                &path,
                "-q",
                "--json",
                "--input",
                "examples/market.csv",
            ],
            None,
        );
        (out, started.elapsed())
    };
    let (baseline, base_time) = run("log");
    assert_eq!(baseline.code, 0, "{}", baseline.stderr);
    let alerts = baseline.stdout.lines().count();
    assert!(alerts >= 20, "{alerts} alerts");
    for (name, answer) in [
        ("never answers", never as fn(&mut std::net::TcpStream)),
        ("answers 500", error_500),
        ("answers slowly", slow),
        ("closes the connection", hang_up),
    ] {
        let url = server(answer);
        let (out, took) = run(&format!("webhook(\"{url}\")"));
        assert_eq!(out.code, 0, "{name}: {}", out.stderr);
        assert_eq!(
            out.stdout.lines().count(),
            alerts,
            "{name}: every alert is in the output"
        );
        // The run itself is as fast as with `log`; only finishing may wait, and then at
        // most the 5 s grace period (a slow target that answers is worth waiting for).
        assert!(
            took < base_time + Duration::from_secs(6),
            "{name}: {took:?} against {base_time:?}"
        );
        let summary: serde_json::Value = serde_json::from_str(out.stderr.lines().last().unwrap())
            .unwrap_or_else(|e| panic!("{name}: {e}: {}", out.stderr));
        let d = &summary["deliveries"][0];
        let settled = ["delivered", "failed", "dropped"]
            .iter()
            .map(|k| d[k].as_u64().unwrap())
            .sum::<u64>();
        assert_eq!(
            settled, alerts as u64,
            "{name}: every delivery accounted for: {d}"
        );
        match name {
            "never answers" => {
                assert_eq!(d["delivered"], 0, "{d}");
                assert!(
                    took < base_time + Duration::from_secs(2),
                    "{name}: {took:?} against {base_time:?}"
                );
            }
            "answers 500" => {
                // (retries and backoff are the outbox's unit tests: this run is over
                // before a first backoff ends)
                assert!(
                    d["failed"].as_u64().unwrap() > 0 && d["circuit_opened"].as_u64().unwrap() >= 1,
                    "{d}"
                );
                assert!(d["first_error"].as_str().unwrap().contains("500"), "{d}");
            }
            "answers slowly" => assert!(d["delivered"].as_u64().unwrap() > 0, "{d}"),
            _ => assert!(d["first_error"].is_string(), "{d}"),
        }
    }
}

#[test]
fn a_state_budget_refuses_what_does_not_fit_and_caps_the_keys() {
    let dir = tempfile::tempdir().unwrap();
    let rules = workspace()
        .join("rules/market_stress.adr")
        .display()
        .to_string();
    // adr check shows the estimate, and refuses past the budget
    let check = adr(&["check", &rules], None);
    assert!(check.stderr.contains("state about"), "{}", check.stderr);
    let check = adr(&["check", &rules, "--max-state", "4KB"], None);
    assert_eq!(check.code, 1, "{}", check.stderr);
    assert!(check.stderr.contains("error[E0801]"), "{}", check.stderr);
    let run = adr(
        &[
            "run",
            &rules,
            "--max-state",
            "4KB",
            "--input",
            "examples/market.csv",
        ],
        None,
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("more than the budget"),
        "{}",
        run.stderr
    );
    // a budget that fits some keys holds that many: the rest are evicted, counted
    let path = write(
        &dir,
        "r.adr",
        "input m {\n    time = ts\n    key = k\n    fields = v\n}\n\
         detector d = statistical.zscore(window = 60) on v\n\
         ensemble e {\n    vote = at_least(1, d)\n}\n",
    );
    let mut text = String::from("ts,k,v\n");
    for i in 0..20_000 {
        text.push_str(&format!("{i},key{},{}\n", i % 500, (i * 7919) % 13));
    }
    let input = write(&dir, "in.csv", &text);
    let run = adr(
        &[
            "run",
            &path,
            "-q",
            "--json",
            "--max-state",
            "100KB",
            "--batch-rows",
            "1000",
            "--input",
            &input,
        ],
        None,
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let summary: serde_json::Value =
        serde_json::from_str(run.stderr.lines().last().unwrap()).unwrap();
    let per_key = summary["state"]["per_key"].as_u64().unwrap();
    assert!(per_key > 1000 && per_key < 100_000, "{summary}");
    assert!(summary["evicted_keys"].as_u64().unwrap() > 0, "{summary}");
}

#[test]
fn weights_vote_by_their_ratios_and_must_be_positive_and_finite() {
    let dir = tempfile::tempdir().unwrap();
    let rules = |weights: &str| {
        format!(
            "input market {{\n    time = ts\n    key = symbol\n    fields = close\n}}\n\
             feature r = log_return(close)\n\
             detector a = statistical.zscore(window = 60, threshold = 3) on r\n\
             detector b = statistical.mad(window = 60, threshold = 3.5) on r\n\
             ensemble e {{\n    vote = weighted({weights}) >= 0.5\n}}\n"
        )
    };
    let anomalies = |weights: &str| -> (i32, String, usize) {
        let path = write(&dir, "w.adr", &rules(weights));
        let out = dir.path().join("scored.csv");
        let run = adr(
            &[
                "run",
                &path,
                "-q",
                "--input",
                "examples/market.csv",
                "--output",
                &out.display().to_string(),
            ],
            None,
        );
        let text = std::fs::read_to_string(&out).unwrap_or_default();
        let n = text
            .lines()
            .filter(|l| l.split(',').rev().nth(1) == Some("anomaly"))
            .count();
        std::fs::remove_file(&out).ok();
        (run.code, run.stderr, n)
    };
    let (code, err, ones) = anomalies("a: 1, b: 1");
    assert_eq!(code, 0, "{err}");
    assert!(ones > 0);
    let (code, err, huge) = anomalies("a: 1e308, b: 1e308");
    assert_eq!((code, huge), (0, ones), "{err}");
    for (weights, want) in [
        ("a: 1e309, b: 1", "must be a finite number"),
        ("a: 0, b: 0", "must be a positive finite number"),
        ("a: -1, b: 1", "must be a positive finite number"),
    ] {
        let path = write(&dir, "w.adr", &rules(weights));
        let check = adr(&["check", &path], None);
        assert_eq!(check.code, 1, "{weights}: {}", check.stderr);
        assert!(check.stderr.contains(want), "{weights}: {}", check.stderr);
    }
}

/// `train on 1d` with `train = 100`: the detector trains on at most its 100 events (its
/// documented meaning), and the engine withholds nothing more.
#[test]
fn a_training_span_never_trains_past_the_detectors_own_count() {
    let b = adr_tests::built();
    let plugins = adr_tests::plugin_dir(&[&b.statistical, &b.ml]);
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        &dir,
        "r.adr",
        "input market {\n    time = ts\n    key = symbol\n    fields = close\n}\n\
         feature r = log_return(close)\n\
         detector f = ml.isolation_forest(train = 100) on r train on 1d\n\
         ensemble e {\n    vote = at_least(1, f)\n}\n",
    );
    let scored = dir.path().join("scored.csv");
    let out = std::process::Command::new(&b.adr)
        .args(["run", &path, "-q", "--input"])
        .arg(workspace().join("examples/market.csv"))
        .arg("--output")
        .arg(&scored)
        .arg("--plugins")
        .arg(plugins.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&scored).unwrap();
    let header: Vec<&str> = text.lines().next().unwrap().split(',').collect();
    let verdict = header.iter().position(|h| *h == "f.verdict").unwrap();
    let undetermined = text
        .lines()
        .skip(1)
        .filter(|l| l.split(',').nth(verdict) == Some("undetermined"))
        .count();
    // 100 training events, and the first row (no return yet)
    assert_eq!(
        undetermined, 101,
        "a day of 1,440 rows would be withheld otherwise"
    );
}
