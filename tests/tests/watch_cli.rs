//! `adr run --watch` on a live stream from standard input: an edit of the rule file, a
//! SIGHUP and a bad edit, each seen while the process runs.

use std::ffi::OsStr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use adr_tests::live::LiveRun;
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

/// `adr run FILE --input - --watch --json` on a live stream, CSV or JSON lines.
fn watching(file: &Path, plugins: &Path, jsonl: bool) -> LiveRun {
    let mut args: Vec<&OsStr> = vec![
        "run".as_ref(),
        file.as_os_str(),
        "--input".as_ref(),
        "-".as_ref(),
        "--watch".as_ref(),
        "--debounce-ms".as_ref(),
        "50".as_ref(),
        "--json".as_ref(),
        "--plugins".as_ref(),
        plugins.as_os_str(),
    ];
    if jsonl {
        args.extend::<[&OsStr; 2]>(["--format".as_ref(), "jsonl".as_ref()]);
        LiveRun::start_jsonl(&built().adr, &args)
    } else {
        LiveRun::start(&built().adr, &args)
    }
}

#[test]
fn a_watching_run_reloads_on_edits_and_sighup_and_refuses_bad_edits() {
    let plugins = plugin_dir(&[&built().statistical]);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("watch.adr");
    std::fs::write(&file, rules(4.0)).unwrap();
    let mut run = watching(&file, plugins.path(), false);
    run.write_rows(50);
    run.wait_for_while("watching", |_| {});

    // An edit: prepared in the background, applied at the next event.
    save(&file, &rules(5.0));
    let line = run.wait_for("rules reloaded");
    assert!(line.contains("1 kept, 2 fresh, 0 dropped"), "{line}");
    run.wait_for_while("detector `spike`: new or changed", |_| {});

    // SIGHUP reloads even when nothing changed.
    let pid = run.id().to_string();
    assert!(Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .unwrap()
        .success());
    run.wait_for_while("SIGHUP", |_| {});
    let line = run.wait_for("rules reloaded");
    assert!(line.contains("0 fresh"), "{line}");

    // A bad edit: refused with its diagnostic, the stream goes on.
    save(&file, &rules(5.0).replace("zscore", "zscroe"));
    let line = run.wait_for_while("reload refused", |_| {});
    assert!(line.contains("the running rules stay"), "{line}");
    run.wait_for_while("did you mean `zscore`?", |_| {});
    run.write_rows(10);
    let rows = run.rows;
    let ended = run.finish();
    assert!(ended.status.success(), "{}", ended.log.join("\n"));
    let summary = ended.summary.expect("JSON summary");
    assert_eq!(summary["rows"], rows, "{summary}");
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

#[test]
fn the_watch_survives_its_folder_removed_recreated_and_swapped() {
    let plugins = plugin_dir(&[&built().statistical]);
    let root = tempfile::tempdir().unwrap();
    let folder = root.path().join("d");
    std::fs::create_dir(&folder).unwrap();
    let file = folder.join("r.adr");
    std::fs::write(&file, rules(4.0)).unwrap();
    let mut run = watching(&file, plugins.path(), false);
    run.write_rows(30);
    run.wait_for_while("watching", |_| {});
    let mut generation = 0;
    let mut edited = |run: &mut LiveRun, what: &str| {
        let line = run.wait_for("rules reloaded");
        generation += 1;
        assert!(line.contains("1 kept, 2 fresh"), "{what}: {line}");
    };

    // Removed and created again: the new folder is watched, later edits are seen.
    std::fs::remove_dir_all(&folder).unwrap();
    run.stream_for(Duration::from_millis(300));
    std::fs::create_dir(&folder).unwrap();
    std::fs::write(&file, rules(5.0)).unwrap();
    edited(&mut run, "the file in the re-created folder");
    std::fs::write(&file, rules(6.0)).unwrap();
    edited(&mut run, "an edit after the folder came back");

    // Swapped by renames: the folder now at the path is watched, not the one moved away.
    let next = root.path().join("d.new");
    std::fs::create_dir(&next).unwrap();
    std::fs::write(next.join("r.adr"), rules(7.0)).unwrap();
    std::fs::rename(&folder, root.path().join("d.old")).unwrap();
    std::fs::rename(&next, &folder).unwrap();
    edited(&mut run, "the swapped-in folder");
    std::fs::write(&file, rules(8.0)).unwrap();
    edited(&mut run, "an edit in the swapped-in folder");
    std::fs::write(root.path().join("d.old/r.adr"), rules(9.0)).unwrap();
    run.stream_for(Duration::from_millis(500));

    let rows = run.rows;
    let ended = run.finish();
    let log = ended.log.join("\n");
    assert!(ended.status.success(), "{log}");
    let summary = ended.summary.expect("JSON summary");
    assert_eq!(summary["rows"], rows, "{log}");
    assert_eq!(
        summary["reloads"]["generation"], generation,
        "the folder moved away is no longer followed: {log}"
    );
}

#[test]
fn a_reload_may_read_another_field_of_a_json_lines_stream() {
    let plugins = plugin_dir(&[&built().statistical]);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("r.adr");
    std::fs::write(&file, rules(4.0)).unwrap();
    let mut run = watching(&file, plugins.path(), true);
    run.write_rows(30);
    run.wait_for_while("watching", |_| {});
    let with_volume = rules(4.0)
        .replace("fields = close", "fields = close, volume")
        .replace("vote = any(spike)", "vote = any(spike, busy)")
        .replace(
            "ensemble move",
            "detector busy = statistical.zscore(window = 20) on volume\nensemble move",
        );
    save(&file, &with_volume);
    let line = run.wait_for("rules reloaded");
    assert!(line.contains("fresh"), "{line}");
    // A field no object carried is refused, truthfully.
    save(&file, &with_volume.replace("volume", "turnover"));
    // (checked against the stream where the swap would happen: at the next event)
    let line = run.wait_for("reload refused");
    assert!(line.contains("the running rules stay"), "{line}");
    assert!(
        line.contains("`turnover`, which the stream does not carry"),
        "{line}"
    );
    run.write_rows(10);
    let rows = run.rows;
    let ended = run.finish();
    let log = ended.log.join("\n");
    assert!(ended.status.success(), "{log}");
    let summary = ended.summary.expect("summary");
    assert_eq!(summary["rows"], rows, "{log}");
    assert_eq!(summary["reloads"]["generation"], 1, "{log}");
}
