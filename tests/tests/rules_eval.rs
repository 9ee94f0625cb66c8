//! The embedding API (load → plan → evaluate), and the promise that results do not depend
//! on how events are cut into batches: a file, a stream of single events and an
//! explanation see the same scores, bit for bit.

use adr_engine::evaluator::{Evaluator, Outcome};
use adr_engine::io::{open_path, EventInput, InputFormat};
use adr_engine::plugins::{Registry, SearchPath};
use adr_engine::rules::plan::Plan;
use adr_engine::rules::source;
use adr_engine::run::{event_spec, read_batch, Batch};
use adr_tests::{built, plugin_dir, workspace};

/// Every score, verdict and judgement of every event, and every alert, as text.
fn evaluate(rules: &str, chunk_rows: usize) -> Vec<String> {
    let plugins = plugin_dir(&[&built().statistical]);
    let registry =
        Registry::load(&SearchPath::explicit([plugins.path().to_path_buf()])).expect("plugins");
    let loaded = source::load(&[workspace().join(rules)]).expect("rules");
    let (plan, _warnings) = Plan::build(&loaded, &registry).expect("rules check clean");
    let mut evaluator = Evaluator::new(plan, registry.into()).expect("detectors build");
    let mut spec = event_spec(&evaluator);
    spec.chunk_rows = chunk_rows;
    let path = workspace()
        .join("examples/market.csv")
        .display()
        .to_string();
    let mut input =
        EventInput::open(open_path(&path).unwrap(), InputFormat::Csv, &spec).expect("input");
    let (mut batch, mut outcome) = (Batch::default(), Outcome::default());
    let (mut seen, mut alerts) = (Vec::new(), Vec::new());
    while read_batch(&mut input, &mut evaluator, &mut batch).expect("reads") > 0 {
        let mut fields = Vec::new();
        evaluator
            .process(&batch.rows(&mut fields), &mut outcome)
            .expect("evaluates");
        for i in 0..outcome.len {
            let mut line = format!("{}", batch.chunk.timestamps[i]);
            for f in &outcome.features {
                line += &format!(" {:x}", f[i].to_bits());
            }
            for d in &outcome.detectors {
                line += &format!(
                    " {:x}/{:x}/{:?}",
                    d.raw[i].to_bits(),
                    d.normalised[i].to_bits(),
                    d.verdict[i]
                );
            }
            for e in &outcome.ensembles {
                let j = e[i];
                line += &format!(
                    " {:x}/{:?}/{}/{:?}/{:?}",
                    j.score.to_bits(),
                    j.verdict,
                    j.votes,
                    j.severity,
                    j.arm
                );
            }
            seen.push(line);
        }
        alerts.extend(outcome.fired.iter().map(|f| format!("{f:?}")));
    }
    seen.extend(alerts);
    seen
}

#[test]
fn batches_of_any_size_give_identical_results() {
    for rules in ["rules/market_stress.adr", "rules/price_spikes.adr"] {
        let whole = evaluate(rules, 100_000);
        assert!(
            whole.len() > 4320,
            "{rules}: every row and at least one alert"
        );
        for size in [1, 7, 1000] {
            let got = evaluate(rules, size);
            let first_difference = whole.iter().zip(&got).position(|(a, b)| a != b);
            assert!(
                got.len() == whole.len() && first_difference.is_none(),
                "{rules}: batches of {size} differ at line {first_difference:?}"
            );
        }
    }
}
