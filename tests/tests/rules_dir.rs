//! Every rule file shipped in `rules/` checks clean against the shipped plugins.

use adr_engine::plugins::{Registry, SearchPath};
use adr_engine::rules::{check_files, diagnostic::render};
use adr_tests::{built, plugin_dir, workspace};

#[test]
fn every_shipped_rule_file_checks_clean() {
    let b = built();
    let dir = plugin_dir(&[&b.statistical, &b.ml, &b.realtime]);
    let registry = Registry::load(&SearchPath::explicit([dir.path().to_path_buf()])).unwrap();
    let mut files: Vec<_> = std::fs::read_dir(workspace().join("rules"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "adr"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "rules/ has no .adr file");
    for file in files {
        let (loaded, diagnostics) = check_files(std::slice::from_ref(&file), &registry).unwrap();
        assert!(
            diagnostics.is_empty(),
            "{}:\n{}",
            file.display(),
            render(&diagnostics, &loaded.sources)
        );
    }
}
