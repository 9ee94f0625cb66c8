//! The shipped example data is exactly what its generator writes.

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
