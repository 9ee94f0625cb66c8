//! The shipped examples: the data is exactly what its generator writes, and the embedding
//! example runs, alerts and reloads.

#[path = "../../examples/gen_market.rs"]
mod gen_market;

#[test]
fn examples_market_csv_is_reproducible() {
    let committed =
        std::fs::read_to_string(adr_tests::workspace().join("examples/market.csv")).unwrap();
    assert!(
        committed == gen_market::generate(),
        "examples/market.csv differs from its generator; regenerate it with \
         `cargo run -p adr-engine --example gen_market > examples/market.csv`"
    );
    assert_eq!(gen_market::CRASH_AT % 60, 0);
    assert_eq!(gen_market::SPIKE_AT % 60, 0);
}

#[test]
fn the_embedding_example_alerts_and_reloads_while_streaming() {
    let plugins = adr_tests::plugin_dir(&[&adr_tests::built().statistical]);
    let out = std::process::Command::new(adr_tests::example("embed"))
        .arg(plugins.path())
        .output()
        .expect("the example runs");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains(r#"alert: {"alert":"stress""#), "{stdout}");
    assert!(stderr.contains("reloads: 1 applied, 0 refused"), "{stderr}");
    assert!(
        stderr.contains("kept [detector `burst`, feature `returns`]"),
        "{stderr}"
    );
    assert!(stderr.contains("4320 rows, 1 key"), "{stderr}");
    // What came through the channel is what the engine counted.
    let number_after = |prefix: &str| -> u64 {
        let at = stderr
            .find(prefix)
            .unwrap_or_else(|| panic!("no `{prefix}`: {stderr}"));
        stderr[at + prefix.len()..]
            .split_whitespace()
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no number after `{prefix}`: {stderr}"))
    };
    assert_eq!(
        number_after("the consumer saw "),
        number_after("ensemble stress: "),
        "{stderr}"
    );
}
