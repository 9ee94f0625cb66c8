//! `adr run --watch` on a live stream from standard input: an edit of the rule file, a
//! SIGHUP and a bad edit, each seen while the process runs.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::Duration;

use adr_tests::{built, plugin_dir};

fn rules(threshold: f64) -> String {
    format!(
        "input market {{\n    time = ts\n    key = symbol\n    fields = close\n}}\n\
         feature r = log_return(close)\n\
         detector spike = statistical.zscore(window = 20, threshold = {threshold:?}) on r\n\
         ensemble move {{\n    vote = any(spike)\n}}\n\
         alert move {{\n    when severity >= medium for 1 events\n}}\n"
    )
}

/// Saves `text` the way editors do: written beside, renamed over (a write in place can be
/// read half-done; `tests/reload.rs` covers that case).
fn save(file: &std::path::Path, text: &str) {
    let tmp = file.with_extension("adr.tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, file).unwrap();
}

/// Waits for a line of standard error containing `text`; returns it. `poke` runs every
/// 50 ms meanwhile (a reload is applied at the next event: the test keeps them coming).
fn wait_for(
    lines: &Receiver<String>,
    text: &str,
    log: &mut Vec<String>,
    mut poke: impl FnMut(),
) -> String {
    let started = std::time::Instant::now();
    loop {
        match lines.recv_timeout(Duration::from_millis(50)) {
            Ok(line) => {
                log.push(line.clone());
                if line.contains(text) {
                    return line;
                }
            }
            Err(_) if started.elapsed() < Duration::from_secs(30) => poke(),
            Err(e) => panic!("no `{text}` on stderr ({e}); it said:\n{}", log.join("\n")),
        }
    }
}

#[test]
fn a_watching_run_reloads_on_edits_and_sighup_and_refuses_bad_edits() {
    let plugins = plugin_dir(&[&built().statistical]);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("watch.adr");
    std::fs::write(&file, rules(4.0)).unwrap();
    let mut child = Command::new(&built().adr)
        .arg("run")
        .arg(&file)
        .args(["--input", "-", "--watch", "--debounce-ms", "50", "--json"])
        .arg("--plugins")
        .arg(plugins.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("adr runs");
    let (tx, lines) = channel();
    let stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut log = Vec::new();
    let stdin = std::cell::RefCell::new(child.stdin.take().unwrap());
    let (rows, t) = (
        std::cell::Cell::new(0u64),
        std::cell::Cell::new(1_700_000_000i64),
    );
    let write_rows = |n: usize| {
        let mut stdin = stdin.borrow_mut();
        for i in 0..n {
            t.set(t.get() + 60);
            let close = 100.0 + (i % 5) as f64 * 0.1;
            writeln!(stdin, "{},BTC,{close}", t.get()).unwrap();
        }
        stdin.flush().unwrap();
        rows.set(rows.get() + n as u64);
    };
    writeln!(stdin.borrow_mut(), "ts,symbol,close").unwrap();
    write_rows(50);
    wait_for(&lines, "watching", &mut log, || {});

    // An edit: prepared in the background, applied at the next event.
    save(&file, &rules(5.0));
    let line = wait_for(&lines, "rules reloaded", &mut log, || write_rows(1));
    assert!(line.contains("1 kept, 2 fresh, 0 dropped"), "{line}");
    wait_for(&lines, "detector `spike`: new or changed", &mut log, || {});

    // SIGHUP reloads even when nothing changed.
    let pid = child.id().to_string();
    assert!(Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .unwrap()
        .success());
    wait_for(&lines, "SIGHUP", &mut log, || {});
    let line = wait_for(&lines, "rules reloaded", &mut log, || write_rows(1));
    assert!(line.contains("0 fresh"), "{line}");

    // A bad edit: refused with its diagnostic, the stream goes on.
    save(&file, &rules(5.0).replace("zscore", "zscroe"));
    let line = wait_for(&lines, "reload refused", &mut log, || {});
    assert!(line.contains("the running rules stay"), "{line}");
    wait_for(&lines, "did you mean `zscore`?", &mut log, || {});
    write_rows(10);
    drop(stdin);
    let status = child.wait().unwrap();
    reader.join().unwrap();
    for line in lines.try_iter() {
        log.push(line);
    }
    assert!(status.success(), "{}", log.join("\n"));
    let summary: serde_json::Value =
        serde_json::from_str(log.last().unwrap()).expect("JSON summary");
    assert_eq!(summary["rows"], rows.get(), "{summary}");
    assert_eq!(summary["reloads"]["generation"], 2, "{summary}");
    assert_eq!(summary["reloads"]["failures"], 1, "{summary}");
    assert!(
        summary["reloads"]["last_error"]
            .as_str()
            .unwrap()
            .contains("E0"),
        "{summary}"
    );
}

#[test]
fn watch_and_a_scored_table_do_not_mix() {
    let run = adr_tests::adr(
        &[
            "run",
            "rules/market_stress.adr",
            "--input",
            "examples/market.csv",
            "--watch",
            "--output",
            "/dev/null",
        ],
        None,
    );
    assert_eq!(run.code, 1);
    assert!(
        run.stderr
            .contains("--output cannot be combined with --watch"),
        "{}",
        run.stderr
    );
}
