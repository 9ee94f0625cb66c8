//! A reload keeps a detector's state when its definition computes the same numbers,
//! however its values are written: `threshold = 4` and `threshold = 4.0` are one value
//! (issue 21; decision 0009 says reformatting keeps state).

use adr_engine::plugins::{Registry, SearchPath};
use adr_engine::rules::identity::Identities;
use adr_engine::rules::plan::Plan;
use adr_engine::rules::source;
use adr_tests::{built, plugin_dir};

fn identities(registry: &Registry, text: &str) -> Identities {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.adr");
    std::fs::write(&path, text).unwrap();
    let loaded = source::load(&[path]).unwrap();
    let (plan, _) = Plan::build(&loaded, registry).unwrap();
    Identities::of(&plan)
}

#[test]
fn a_value_written_another_way_is_the_same_definition() {
    let plugins = plugin_dir(&[&built().statistical, &built().realtime]);
    let registry = Registry::load(&SearchPath::explicit([plugins.path().to_path_buf()])).unwrap();
    let rules = |threshold: &str, window: &str, q: &str| {
        format!(
            "const LOOKBACK = 1000\n\
             input m {{\n    time = ts\n    key = k\n    fields = v\n}}\n\
             detector jump = statistical.zscore(window = {window}, threshold = {threshold}) on v \
             threshold realtime.quantile(q = {q})\n\
             ensemble e {{\n    vote = at_least(1, jump)\n}}\n"
        )
    };
    let base = identities(&registry, &rules("4", "LOOKBACK", "0.01"));
    for (name, text) in [
        ("4.0 for 4", rules("4.0", "LOOKBACK", "0.01")),
        ("400% for 4", rules("400%", "LOOKBACK", "0.01")),
        (
            "the constant's value written out",
            rules("4", "1000", "0.01"),
        ),
        ("1% for 0.01", rules("4", "LOOKBACK", "1%")),
    ] {
        assert_eq!(
            identities(&registry, &text).detectors,
            base.detectors,
            "{name}"
        );
    }
    let changed = identities(&registry, &rules("4.5", "LOOKBACK", "0.01"));
    assert_ne!(
        changed.detectors, base.detectors,
        "a new value is a new definition"
    );
    // a window of 0 is `batch`
    let zero = identities(&registry, &rules("4", "0", "0.01"));
    let batch = identities(&registry, &rules("4", "batch", "0.01"));
    assert_eq!(zero.detectors, batch.detectors);
}
