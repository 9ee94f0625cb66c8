//! `adr run`, `adr test` and `adr explain` end to end, including every kind of bad input.

use std::io::{Read, Write};
use std::path::Path;

use adr_tests::{adr, workspace};

/// Writes `text` as `name` in a fresh folder; returns the folder (kept alive) and path.
fn file(name: &str, text: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join(name);
    std::fs::write(&path, text).expect("write");
    (dir, path.display().to_string())
}

fn example_rules() -> Vec<String> {
    let mut files: Vec<String> = std::fs::read_dir(workspace().join("rules"))
        .expect("rules/")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "adr"))
        .map(|p| format!("rules/{}", p.file_name().unwrap().to_string_lossy()))
        .collect();
    files.sort();
    files
}

#[test]
fn every_rule_file_checks_clean_and_its_tests_pass() {
    let files = example_rules();
    assert!(files.len() >= 4, "{files:?}");
    let args: Vec<&str> = files.iter().map(String::as_str).collect();
    let check = adr(&[&["check"][..], &args].concat(), None);
    assert_eq!(check.code, 0, "{}", check.stderr);
    assert_eq!(
        check.stderr.matches("0 errors, 0 warnings").count(),
        files.len(),
        "{}",
        check.stderr
    );
    let test = adr(&[&["test"][..], &args].concat(), None);
    assert_eq!(test.code, 0, "{}{}", test.stdout, test.stderr);
    assert!(
        test.stdout
            .contains(&format!("{} passed, 0 failed", files.len())),
        "{}",
        test.stdout
    );
}

const RULES: &str = r#"
input market {
    time   = ts
    key    = symbol
    fields = close
}
detector jump = statistical.zscore(window = 5, threshold = 3) on close
detector wide = statistical.mad(window = 5, threshold = 3) on close
ensemble move {
    vote = any(jump, wide)
    severity {
        high when jump and wide
        low  otherwise
    }
}
alert move {
    when     severity >= high
    cooldown 1h per key
}
"#;

/// Two symbols, interleaved; A jumps at minute 8, B at minute 9.
fn market() -> String {
    let mut text = String::from("ts,symbol,close\n");
    for m in 0..12 {
        for (symbol, base) in [("A", 100.0), ("B", 50.0)] {
            let wiggle = [
                0.0, 0.3, -0.2, 0.1, -0.3, 0.2, 0.0, -0.1, 0.25, -0.15, 0.05, 0.1,
            ][m];
            let jump = (symbol == "A" && m == 8) || (symbol == "B" && m == 9);
            let close = if jump { base * 1.2 } else { base + wiggle };
            text.push_str(&format!("2025-01-01T00:{m:02}:00Z,{symbol},{close}\n"));
        }
    }
    text
}

#[test]
fn run_writes_alerts_per_key_with_member_scores_and_a_summary() {
    let (_d, rules) = file("r.adr", RULES);
    let run = adr(&["run", &rules, "--no-notify"], Some(&market()));
    assert_eq!(run.code, 0, "{}", run.stderr);
    let alerts: Vec<serde_json::Value> = run
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let keys: Vec<(&str, &str)> = alerts
        .iter()
        .map(|a| (a["key"].as_str().unwrap(), a["time"].as_str().unwrap()))
        .collect();
    assert_eq!(
        keys,
        [("A", "2025-01-01T00:08:00Z"), ("B", "2025-01-01T00:09:00Z")],
        "{}",
        run.stdout
    );
    assert_eq!(alerts[0]["severity"], "high");
    assert_eq!(alerts[0]["members"][0]["name"], "jump");
    assert_eq!(alerts[0]["members"][0]["verdict"], "anomaly");
    assert!(run.stderr.contains("24 rows, 2 keys"), "{}", run.stderr);
    assert!(
        run.stderr
            .contains("alert move: 2 fired, 0 suppressed by cooldown"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("alerts by severity: 2 high"),
        "{}",
        run.stderr
    );
}

#[test]
fn json_lines_and_gzip_give_the_same_alerts_as_csv() {
    let (dir, rules) = file("r.adr", RULES);
    let csv = market();
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let jsonl: String = lines
        .map(|l| {
            let cells: Vec<&str> = l.split(',').collect();
            format!(
                "{{\"{}\": \"{}\", \"{}\": \"{}\", \"{}\": {}}}\n",
                header[0], cells[0], header[1], cells[1], header[2], cells[2]
            )
        })
        .collect();
    let json_path = dir.path().join("m.jsonl");
    std::fs::write(&json_path, &jsonl).unwrap();
    let gz_path = dir.path().join("m.csv.gz");
    let mut gz = flate2::write::GzEncoder::new(
        std::fs::File::create(&gz_path).unwrap(),
        flate2::Compression::fast(),
    );
    gz.write_all(csv.as_bytes()).unwrap();
    gz.finish().unwrap();
    let from_csv = adr(&["run", &rules, "--no-notify"], Some(&csv));
    for input in [&json_path, &gz_path] {
        let other = adr(
            &[
                "run",
                &rules,
                "--no-notify",
                "--input",
                &input.display().to_string(),
            ],
            None,
        );
        assert_eq!(other.code, 0, "{}", other.stderr);
        assert_eq!(other.stdout, from_csv.stdout, "{}", input.display());
    }
}

#[test]
fn the_scored_table_has_every_stage() {
    let (dir, rules) = file("r.adr", RULES);
    let out = dir.path().join("scored.csv");
    let run = adr(
        &[
            "run",
            &rules,
            "--no-notify",
            "--output",
            &out.display().to_string(),
        ],
        Some(&market()),
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let table = std::fs::read_to_string(&out).unwrap();
    let mut lines = table.lines();
    assert_eq!(
        lines.next().unwrap(),
        "time,key,close,jump.raw,jump.score,jump.verdict,wide.raw,wide.score,wide.verdict,move.score,move.verdict,move.severity"
    );
    assert_eq!(lines.clone().count(), 24);
    let a8 = lines
        .find(|l| l.starts_with("2025-01-01T00:08:00Z,A,"))
        .unwrap();
    assert!(a8.ends_with(",anomaly,high"), "{a8}");
}

#[test]
fn a_failing_expectation_says_what_was_expected_and_what_came() {
    let (dir, _) = file("m.csv", &market());
    let rules = format!(
        "{RULES}\ntest \"B jumps first\" {{\n    given market from \"m.csv\"\n    expect move severity high at \"2025-01-01T00:08:00Z\" key \"B\"\n    expect move alerts at \"2025-01-01T00:08:00Z\" key \"A\"\n    expect move fires at \"2025-01-01T09:00:00Z\"\n}}\n"
    );
    let path = dir.path().join("r.adr");
    std::fs::write(&path, rules).unwrap();
    let run = adr(&["test", &path.display().to_string()], None);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("FAIL B jumps first"), "{}", run.stdout);
    assert!(
        run.stdout
            .contains("expected: expect move severity high at \"2025-01-01T00:08:00Z\" key \"B\""),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("got:      key B: normal (score "),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("jump "),
        "member scores are listed: {}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("got:      no event at 2025-01-01T09:00:00Z"),
        "{}",
        run.stdout
    );
    assert!(
        !run.stdout.contains("expect move alerts"),
        "the alert expectation held: {}",
        run.stdout
    );
    assert!(
        run.stdout.contains("1 test: 0 passed, 1 failed"),
        "{}",
        run.stdout
    );
    let json = adr(&["test", "--json", &path.display().to_string()], None);
    let doc: serde_json::Value = serde_json::from_str(&json.stdout).expect("JSON");
    assert_eq!(
        (doc["passed"].as_u64(), doc["failed"].as_u64()),
        (Some(0), Some(1))
    );
    assert_eq!(doc["tests"][0]["checks"][1]["passed"], true);
}

#[test]
fn explain_shows_scores_votes_arm_and_alert_state() {
    let (_d, rules) = file("r.adr", RULES);
    let run = adr(
        &[
            "explain",
            &rules,
            "--at",
            "2025-01-01T00:08:00Z",
            "--key",
            "A",
        ],
        Some(&market()),
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    for want in [
        "at 2025-01-01T00:08:00Z, key A (row 17)",
        "jump           statistical.zscore",
        "any(jump, wide): 2 of 2 members say anomaly",
        "severity high by `high when jump and wide`",
        "when severity >= high for 1 event: holding since 2025-01-01T00:08:00Z (1 event); FIRED at this event; cooldown until 2025-01-01T01:08:00Z",
    ] {
        assert!(run.stdout.contains(want), "missing `{want}` in\n{}", run.stdout);
    }
    let json = adr(
        &["explain", &rules, "--json", "--at", "2025-01-01T00:09:00Z"],
        Some(&market()),
    );
    let doc: serde_json::Value = serde_json::from_str(&json.stdout).expect("JSON");
    assert_eq!(doc.as_array().map(Vec::len), Some(2), "both keys at 00:09");
    let none = adr(
        &["explain", &rules, "--at", "2030-01-01T00:00:00Z"],
        Some(&market()),
    );
    assert_eq!(none.code, 1);
    assert!(
        none.stderr.contains("no event at 2030-01-01T00:00:00Z"),
        "{}",
        none.stderr
    );
}

#[test]
fn bad_input_gets_a_clear_error_and_loses_nothing() {
    let (_d, rules) = file("r.adr", RULES);
    let cases: [(&str, String, &str); 4] = [
        (
            "unsorted within a key",
            "ts,symbol,close\n2025-01-01T00:01:00Z,A,1\n2025-01-01T00:00:00Z,B,1\n2025-01-01T00:00:30Z,A,1\n".into(),
            "row 3: timestamp 2025-01-01T00:00:30Z of key `A` is earlier than that key's previous 2025-01-01T00:01:00Z",
        ),
        ("missing key column", "ts,sym,close\n2025-01-01T00:00:00Z,A,1\n".into(), "column `symbol` is not in the header"),
        ("not a number", "ts,symbol,close\n2025-01-01T00:00:00Z,A,abc\n".into(), "row 1 (line 2), column `close`: `abc` is not a number"),
        ("empty", String::new(), "the input is empty"),
    ];
    for (name, input, want) in cases {
        let run = adr(&["run", &rules, "--no-notify"], Some(&input));
        assert_eq!(run.code, 1, "{name}: {}", run.stderr);
        assert!(run.stderr.contains(want), "{name}: {}", run.stderr);
    }
    // Time going back across keys is fine; within a key it can be allowed and counted.
    let allowed = adr(
        &["run", &rules, "--no-notify", "--allow-unsorted"],
        Some("ts,symbol,close\n2025-01-01T00:01:00Z,A,1\n2025-01-01T00:00:30Z,A,1\n"),
    );
    assert_eq!(allowed.code, 0, "{}", allowed.stderr);
    assert!(
        allowed
            .stderr
            .contains("1 rows earlier than their key's previous"),
        "{}",
        allowed.stderr
    );
    // Missing and non-finite values are undetermined, counted, and never alert.
    let holes = adr(
        &["run", &rules, "--no-notify"],
        Some("ts,symbol,close\n2025-01-01T00:00:00Z,A,\n2025-01-01T00:01:00Z,A,NaN\n2025-01-01T00:02:00Z,A,inf\n"),
    );
    assert_eq!(
        (holes.code, holes.stdout.as_str()),
        (0, ""),
        "{}",
        holes.stderr
    );
    assert!(
        holes.stderr.contains("1 missing values") && holes.stderr.contains("2 non-finite values"),
        "{}",
        holes.stderr
    );
    // Header only: a summary of nothing.
    let header = adr(&["run", &rules, "--no-notify"], Some("ts,symbol,close\n"));
    assert_eq!(header.code, 0, "{}", header.stderr);
    assert!(
        header.stderr.contains("0 rows, 0 keys"),
        "{}",
        header.stderr
    );
}

#[test]
fn rules_with_errors_do_not_run() {
    let (_d, rules) = file(
        "r.adr",
        &RULES.replace("statistical.mad", "statistical.madd"),
    );
    let run = adr(&["run", &rules], Some(&market()));
    assert_eq!(run.code, 1);
    assert!(
        run.stderr
            .contains("error[E0302]: family `statistical` has no detector `madd`"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("the rules have 1 error; see `adr check`"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_panicking_detector_costs_its_own_verdicts_not_the_run() {
    let rules = RULES.replace(
        "ensemble move {\n    vote = any(jump, wide)",
        "detector broken = faulty.panics(after = 3) on close\nensemble move {\n    vote = any(jump, wide, broken)",
    );
    let (_d, rules) = file("r.adr", &rules);
    let run = adr(&["run", &rules, "--no-notify"], Some(&market()));
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains("detector `broken` failed for key `A`"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("deliberate panic after 3 points"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("detector failures"), "{}", run.stderr);
    // the other members still vote: both jumps still alert
    assert_eq!(run.stdout.lines().count(), 2, "{}", run.stdout);
}

/// Accepts HTTP requests on 127.0.0.1 and returns their bodies.
fn webhook_server(expected: usize) -> (String, std::thread::JoinHandle<Vec<String>>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let handle = std::thread::spawn(move || {
        let mut bodies = Vec::new();
        for _ in 0..expected {
            let (mut stream, _) = listener.accept().expect("accept");
            stream
                .set_read_timeout(Some(std::time::Duration::from_secs(5)))
                .unwrap();
            let mut data = Vec::new();
            let mut buf = [0u8; 4096];
            loop {
                let n = stream.read(&mut buf).unwrap_or(0);
                data.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&data).into_owned();
                if let Some(split) = text.find("\r\n\r\n") {
                    let length: usize = text
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse().unwrap())
                        })
                        .unwrap_or(0);
                    if data.len() >= split + 4 + length {
                        bodies.push(text[split + 4..split + 4 + length].to_owned());
                        break;
                    }
                }
                if n == 0 {
                    break;
                }
            }
            stream
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                .unwrap();
        }
        bodies
    });
    (url, handle)
}

#[test]
fn alerts_reach_log_file_and_webhook_targets_and_failures_are_counted() {
    let (url, server) = webhook_server(2);
    let dir = tempfile::tempdir().unwrap();
    let sink = dir.path().join("alerts.jsonl");
    let rules = RULES.replace(
        "    cooldown 1h per key\n}",
        &format!(
            "    cooldown 1h per key\n    notify log, file(\"{}\"), webhook(\"{url}\")\n}}",
            sink.display()
        ),
    );
    let path = dir.path().join("r.adr");
    std::fs::write(&path, rules).unwrap();
    let run = adr(&["run", &path.display().to_string()], Some(&market()));
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("ALERT high move key=A at 2025-01-01T00:08:00Z"),
        "{}",
        run.stderr
    );
    let bodies = server.join().unwrap();
    assert_eq!(bodies.len(), 2);
    assert!(bodies[0].contains("\"key\":\"A\""), "{}", bodies[0]);
    assert_eq!(std::fs::read_to_string(&sink).unwrap().lines().count(), 2);

    // A dead webhook: deliveries fail and are reported, the alerts are still written.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/hook", l.local_addr().unwrap())
    };
    let rules = RULES.replace(
        "    cooldown 1h per key\n}",
        &format!("    cooldown 1h per key\n    notify webhook(\"{dead}\")\n}}"),
    );
    std::fs::write(&path, rules).unwrap();
    let run = adr(&["run", &path.display().to_string()], Some(&market()));
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout.lines().count(), 2);
    // Off the event path: each delivery failed or, once the circuit opened or the run
    // ended, was dropped; both are counted.
    let line = run
        .stderr
        .lines()
        .find(|l| l.contains(&format!("webhook({dead}): 0 delivered")))
        .unwrap_or_else(|| panic!("{}", run.stderr));
    let count = |what: &str| -> u64 {
        line.split(", ")
            .find_map(|part| {
                part.strip_suffix(what)?
                    .trim()
                    .rsplit(' ')
                    .next()?
                    .parse()
                    .ok()
            })
            .unwrap_or_else(|| panic!("no `{what}` in {line}"))
    };
    assert_eq!(count(" failed") + count(" dropped"), 2, "{line}");
}

#[test]
fn cooldowns_suppress_visibly() {
    // One key jumping twice within the hour: the second firing is suppressed and counted.
    let mut text = String::from("ts,symbol,close\n");
    for m in 0..30 {
        let close = if m == 10 || m == 20 {
            130.0
        } else {
            100.0 + [0.0, 0.3, -0.2, 0.1, -0.3][m % 5]
        };
        text.push_str(&format!("2025-01-01T00:{m:02}:00Z,A,{close}\n"));
    }
    let (_d, rules) = file("r.adr", RULES);
    let run = adr(&["run", &rules, "--no-notify"], Some(&text));
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout.lines().count(), 1, "{}", run.stdout);
    assert!(
        run.stderr
            .contains("alert move: 1 fired, 1 suppressed by cooldown"),
        "{}",
        run.stderr
    );
}

#[test]
fn rule_fixtures_are_reproducible() {
    let Some(python) = std::env::var_os("ADR_REFERENCE_PYTHON") else {
        adr_tests::skip(
            "rule_fixtures_are_reproducible: set ADR_REFERENCE_PYTHON to regenerate rules/fixtures",
        );
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let script = workspace().join("rules/fixtures/generate.py");
    let copy = dir.path().join("generate.py");
    std::fs::copy(&script, &copy).unwrap();
    let status = std::process::Command::new(python)
        .arg(&copy)
        .status()
        .expect("python runs");
    assert!(status.success());
    for name in ["tweets.csv", "trades.csv", "shift.csv"] {
        let want = std::fs::read(workspace().join("rules/fixtures").join(name)).unwrap();
        let got = std::fs::read(Path::new(dir.path()).join(name)).unwrap();
        assert!(
            want == got,
            "rules/fixtures/{name} differs from generate.py's output"
        );
    }
}
