//! Definition identities: which edits keep a definition's state across a reload.

use adr_engine::plugins::{Registry, SearchPath};
use adr_engine::rules::identity::Identities;
use adr_engine::rules::plan::Plan;
use adr_engine::rules::source;
use adr_tests::{built, plugin_dir};

const BASE: &str = "\
const W = 100
input market {
    time = ts
    key = symbol
    fields = close, volume
}
feature r = log_return(close)
feature big = abs(r) * 100
detector spike = statistical.zscore(window = W, threshold = 4) on big
detector burst = statistical.mad(window = 50, threshold = 6) on volume
ensemble stress {
    vote = any(spike, burst)
    severity {
        high when spike and burst
        medium otherwise
    }
}
alert stress {
    when severity >= medium for 2 events
    cooldown 10m
}
";

fn identities(registry: &Registry, text: &str) -> Identities {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rules.adr");
    std::fs::write(&file, text).unwrap();
    let loaded = source::load(&[file]).unwrap();
    let (plan, _) = Plan::build(&loaded, registry).unwrap_or_else(|e| panic!("{e}:\n{text}"));
    Identities::of(&plan)
}

/// An edit: what it is, its replacements, and whether spike, burst, the alert's hold and
/// its cooldown keep their identity.
type Case = (
    &'static str,
    &'static [(&'static str, &'static str)],
    bool,
    bool,
    bool,
    bool,
);

const CASES: [Case; 9] = [
    (
        "comments and spacing",
        &[("feature r =", "// returns\nfeature   r =")],
        true,
        true,
        true,
        true,
    ),
    (
        "a renamed feature",
        &[
            ("feature big", "feature large"),
            ("on big", "on large"),
            ("* 100\n", "* 100\n"),
        ],
        true,
        true,
        true,
        true,
    ),
    (
        "a constant with the same value",
        &[
            ("const W = 100", "const W = 100\nconst V = 100"),
            ("window = W", "window = V"),
        ],
        true,
        true,
        true,
        true,
    ),
    (
        "reordered parameters",
        &[("window = W, threshold = 4", "threshold = 4, window = W")],
        true,
        true,
        true,
        true,
    ),
    (
        "a parameter",
        &[("threshold = 6", "threshold = 7")],
        true,
        false,
        false,
        true,
    ),
    (
        "a feature the detector reads",
        &[("* 100", "* 10")],
        false,
        true,
        false,
        true,
    ),
    (
        "a constant's value",
        &[("const W = 100", "const W = 200")],
        false,
        true,
        false,
        true,
    ),
    (
        "the vote",
        &[("any(spike, burst)", "all(spike, burst)")],
        true,
        true,
        false,
        true,
    ),
    (
        "the cooldown",
        &[("cooldown 10m", "cooldown 5m")],
        true,
        true,
        true,
        false,
    ),
];

#[test]
fn only_edits_that_change_the_numbers_change_an_identity() {
    let plugins = plugin_dir(&[&built().statistical]);
    let registry = Registry::load(&SearchPath::explicit([plugins.path().to_path_buf()])).unwrap();
    let base = identities(&registry, BASE);
    for (what, edits, spike, burst, hold, cooldown) in CASES {
        let mut text = BASE.to_owned();
        for (from, to) in edits {
            assert!(text.contains(from), "{what}: `{from}` not in the rules");
            text = text.replacen(from, to, 1);
        }
        let edited = identities(&registry, &text);
        assert_eq!(
            edited.detectors[0] == base.detectors[0],
            spike,
            "{what}: spike"
        );
        assert_eq!(
            edited.detectors[1] == base.detectors[1],
            burst,
            "{what}: burst"
        );
        assert_eq!(
            edited.alert_holds[0] == base.alert_holds[0],
            hold,
            "{what}: alert hold"
        );
        assert_eq!(
            edited.alert_cooldowns[0] == base.alert_cooldowns[0],
            cooldown,
            "{what}: alert cooldown"
        );
    }
}
