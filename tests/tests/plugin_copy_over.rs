//! Whatever is written into a plugin folder, a running engine stays up and scores every
//! event once (issue 21): a build copied over the loaded file in place (the same build
//! and another, watched and not, half-written for a while), and the newest build removed
//! (its detectors fall back to the newest build left).

use std::ffi::OsStr;
use std::path::Path;
use std::time::Duration;

use adr_tests::live::LiveRun;
use adr_tests::{build_versioned_plugin, built, plugin_dir};

const RULES: &str = "input market {\n    time = ts\n    key = symbol\n    fields = close\n}\n\
    const LOOKBACK = 20\n\
    detector n = versioned.count() on close\n\
    detector z = statistical.zscore(window = LOOKBACK) on close\n\
    ensemble e {\n    vote = any(n, z)\n}\n";

fn start(plugins: &Path, rules: &Path, watch: bool) -> LiveRun {
    let mut args: Vec<&OsStr> = vec![
        "run".as_ref(),
        rules.as_os_str(),
        "--input".as_ref(),
        "-".as_ref(),
        "--json".as_ref(),
        "--plugins".as_ref(),
        plugins.as_os_str(),
    ];
    if watch {
        args.extend::<[&OsStr; 3]>(["--watch".as_ref(), "--debounce-ms".as_ref(), "50".as_ref()]);
    }
    let mut run = LiveRun::start(&built().adr, &args);
    run.write_rows(100);
    if watch {
        run.wait_for_while("watching", |_| {});
    }
    // Both plugins mapped, each from a private copy and none from the plugin folder.
    let started = std::time::Instant::now();
    loop {
        let mapped = run.mapped_files();
        let copies = mapped.iter().filter(|f| f.contains("/adr-plugin-")).count();
        let folder = plugins.display().to_string();
        assert!(
            !mapped.iter().any(|f| f.starts_with(&folder)),
            "a library is mapped from the plugin folder: {mapped:#?}"
        );
        if copies >= 2 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the plugins were not mapped: {mapped:#?}\n{}",
            run.log.join("\n")
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    run
}

/// Copies `from` over `to` the way `cp` does: the same file, truncated and rewritten in
/// place; the first half first, then (after `pause`, while events flow) the whole.
fn copy_in_place(from: &Path, to: &Path, run: &mut LiveRun, pause: Duration) {
    use std::io::Write;
    let bytes = std::fs::read(from).unwrap();
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(to)
        .unwrap();
    file.write_all(&bytes[..bytes.len() / 2]).unwrap();
    file.flush().unwrap();
    run.stream_for(pause);
    file.write_all(&bytes[bytes.len() / 2..]).unwrap();
    drop(file);
}

#[test]
fn a_build_copied_over_the_loaded_file_leaves_the_run_standing() {
    let staging = tempfile::tempdir().unwrap();
    let v1 = build_versioned_plugin("1.0.0", staging.path(), "v1.so");
    let v2 = build_versioned_plugin("2.0.0", staging.path(), "v2.so");
    let statistical = &built().statistical;
    let statistical_name = statistical.file_name().unwrap();
    for watch in [false, true] {
        for (what, from, over) in [
            ("the same build", statistical.as_path(), statistical_name),
            ("another build", v2.as_path(), OsStr::new("libversioned.so")),
        ] {
            let case = format!("{what}, {}", if watch { "watched" } else { "not watched" });
            let plugins = plugin_dir(&[statistical]);
            std::fs::copy(&v1, plugins.path().join("libversioned.so")).unwrap();
            let dir = tempfile::tempdir().unwrap();
            let rules = dir.path().join("r.adr");
            std::fs::write(&rules, RULES).unwrap();
            let mut run = start(plugins.path(), &rules, watch);
            run.stream_for(Duration::from_millis(200));
            copy_in_place(
                from,
                &plugins.path().join(over),
                &mut run,
                Duration::from_millis(400),
            );
            run.stream_for(Duration::from_millis(800));
            if watch && what == "another build" {
                run.wait_for("moved to the new plugin build with its state");
            }
            run.write_rows(10);
            let rows = run.rows;
            let ended = run.finish();
            let log = ended.log.join("\n");
            assert!(ended.status.success(), "{case}: {:?}\n{log}", ended.status);
            let summary = ended
                .summary
                .unwrap_or_else(|| panic!("{case}: no summary\n{log}"));
            assert_eq!(
                summary["rows"], rows,
                "{case}: every event scored once\n{log}"
            );
            assert_eq!(summary["reloads"]["failures"], 0, "{case}\n{log}");
            if watch {
                let mapped = summary["reloads"]["libraries_mapped"].as_u64().unwrap();
                let expected = if what == "the same build" { 2 } else { 3 };
                assert_eq!(
                    mapped, expected,
                    "{case}: a copy of a loaded build maps nothing new\n{log}"
                );
            }
        }
    }
}

#[test]
fn removing_the_newest_build_falls_back_to_the_newest_left() {
    let plugins = plugin_dir(&[&built().statistical]);
    build_versioned_plugin("1.0.0", plugins.path(), "libversioned_1.so");
    let staging = tempfile::tempdir().unwrap();
    let v2 = build_versioned_plugin("2.0.0", staging.path(), "v2.so");
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("r.adr");
    std::fs::write(&rules, RULES).unwrap();
    let mut run = start(plugins.path(), &rules, true);

    // A newer build beside the first supersedes it...
    std::thread::sleep(Duration::from_millis(20)); // a later modification time
    let beside = plugins.path().join(".libversioned_2.so.partial");
    std::fs::copy(&v2, &beside).unwrap();
    std::fs::rename(&beside, plugins.path().join("libversioned_2.so")).unwrap();
    run.wait_for("is superseded by");
    run.wait_for("moved to the new plugin build with its state");

    // ...and removing it brings the first back, with the state.
    std::fs::remove_file(plugins.path().join("libversioned_2.so")).unwrap();
    let line = run.wait_for("is gone; family versioned now runs from");
    assert!(line.contains("libversioned_1.so"), "{line}");
    run.wait_for("moved to the new plugin build with its state");

    // A rule edit after it still finds the family.
    std::fs::write(&rules, RULES.replace("LOOKBACK = 20", "LOOKBACK = 30")).unwrap();
    run.wait_for("rules reloaded");
    run.write_rows(10);
    let rows = run.rows;
    let ended = run.finish();
    let log = ended.log.join("\n");
    assert!(ended.status.success(), "{log}");
    assert!(!log.contains("no loaded plugin has the family"), "{log}");
    assert!(!log.contains("never used"), "{log}");
    let summary = ended.summary.expect("summary");
    assert_eq!(summary["rows"], rows, "{log}");
    assert_eq!(summary["reloads"]["failures"], 0, "{log}");
    assert_eq!(
        summary["reloads"]["libraries_mapped"], 3,
        "falling back maps nothing new: {log}"
    );
}

#[test]
fn a_refused_detector_does_not_call_its_constants_unused() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("r.adr");
    std::fs::write(&rules, RULES).unwrap();
    // The versioned plugin is missing: its detector is refused, and only that is said.
    let run = adr_tests::adr(&["check", rules.to_str().unwrap()], None);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let all = format!("{}{}", run.stdout, run.stderr);
    assert!(
        all.contains("no loaded plugin has the family `versioned`"),
        "{all}"
    );
    assert!(!all.contains("never used"), "{all}");
    let unknown_param = RULES.replace("zscore(window = LOOKBACK)", "zscore(windw = LOOKBACK)");
    std::fs::write(&rules, unknown_param).unwrap();
    let run = adr_tests::adr(&["check", rules.to_str().unwrap()], None);
    let all = format!("{}{}", run.stdout, run.stderr);
    assert!(all.contains("has no parameter `windw`"), "{all}");
    assert!(!all.contains("constant `LOOKBACK` is never used"), "{all}");
}
