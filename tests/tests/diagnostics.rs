//! Golden files of `adr check`: each `tests/diagnostics/<case>.adr` is checked against the
//! statistical plugin (loaded through the real loader) and its rendered diagnostics must
//! equal `<case>.stderr` exactly. `ADR_BLESS=1` rewrites the golden files.
//!
//! Also: no input makes the checker panic, over every truncation and every single-character
//! deletion of every case.

use std::path::{Path, PathBuf};

use adr_engine::plugins::{Registry, SearchPath};
use adr_engine::rules::{check_files, diagnostic::render};
use adr_tests::{built, plugin_dir, workspace};

fn cases() -> Vec<PathBuf> {
    let mut cases: Vec<PathBuf> = std::fs::read_dir(workspace().join("tests/diagnostics"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "adr"))
        .map(|p| Path::new("tests/diagnostics").join(p.file_name().unwrap()))
        .collect();
    cases.sort();
    cases
}

fn registry() -> (tempfile::TempDir, Registry) {
    let dir = plugin_dir(&[&built().statistical]);
    let registry = Registry::load(&SearchPath::explicit([dir.path().to_path_buf()])).unwrap();
    (dir, registry)
}

#[test]
fn rendered_diagnostics_match_the_golden_files() {
    // Relative paths keep file names in the output stable wherever the repository lives.
    std::env::set_current_dir(workspace()).unwrap();
    let (_dir, registry) = registry();
    let bless = std::env::var("ADR_BLESS").is_ok_and(|v| v == "1");
    let cases = cases();
    assert!(cases.len() >= 30, "only {} golden cases", cases.len());
    let mut failures = Vec::new();
    for case in &cases {
        let (loaded, diagnostics) = check_files(std::slice::from_ref(case), &registry).unwrap();
        let rendered = render(&diagnostics, &loaded.sources);
        let golden = case.with_extension("stderr");
        if bless {
            std::fs::write(&golden, &rendered).unwrap();
            continue;
        }
        let want = std::fs::read_to_string(&golden).unwrap_or_default();
        if rendered != want {
            failures.push(format!(
                "{}:\n--- want\n{want}\n--- got\n{rendered}",
                case.display()
            ));
        }
        let clean = case.file_stem().is_some_and(|s| s == "clean");
        assert_eq!(
            diagnostics.is_empty(),
            clean,
            "{}: only clean.adr is clean",
            case.display()
        );
    }
    assert!(
        failures.is_empty(),
        "{} golden files differ (ADR_BLESS=1 rewrites them):\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn mangled_rules_never_panic_the_checker() {
    let (_dir, registry) = registry();
    let scratch = tempfile::tempdir().unwrap();
    let mut checked = 0;
    for case in cases() {
        let text = std::fs::read_to_string(workspace().join(&case)).unwrap();
        let boundaries: Vec<usize> = text
            .char_indices()
            .map(|(i, _)| i)
            .chain([text.len()])
            .collect();
        let mut variants: Vec<String> = boundaries.iter().map(|&i| text[..i].to_owned()).collect();
        for w in boundaries.windows(2) {
            variants.push(format!("{}{}", &text[..w[0]], &text[w[1]..]));
        }
        for variant in variants {
            let path = scratch.path().join("mangled.adr");
            std::fs::write(&path, &variant).unwrap();
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                let (loaded, diagnostics) =
                    check_files(std::slice::from_ref(&path), &registry).unwrap();
                render(&diagnostics, &loaded.sources);
                adr_engine::rules::diagnostic::to_json(&diagnostics, &loaded.sources);
            }));
            assert!(
                result.is_ok(),
                "{} mangled to:\n{variant}\npanicked the checker",
                case.display()
            );
            checked += 1;
        }
    }
    assert!(checked > 10_000, "{checked} variants");
}
