//! `adr eval` refuses what it cannot score instead of printing NaN (issue 21): no runs, a
//! set named twice, thresholds that are no scores.

use adr_tests::adr;

#[test]
fn eval_refuses_what_it_cannot_score() {
    let cases: [(&str, Vec<&str>, &str); 5] = [
        (
            "no seeds",
            vec!["eval", "odds", "statistical.zscore", "--seeds", "0"],
            "0 is not in 1..",
        ),
        (
            "a set named twice",
            vec![
                "eval",
                "odds",
                "statistical.zscore",
                "--datasets",
                "wbc,wbc",
            ],
            "names `wbc` more than once",
        ),
        (
            "NaN threshold, NAB",
            vec!["eval", "nab", "rules/nab.adr", "--threshold", "nan"],
            "is not a threshold",
        ),
        (
            "infinite threshold, NAB",
            vec!["eval", "nab", "rules/nab.adr", "--threshold", "inf"],
            "is not a threshold",
        ),
        (
            "threshold past 1, labelled",
            vec![
                "eval",
                "rules/nab.adr",
                "--data",
                "x",
                "--labels",
                "y",
                "--threshold",
                "1.5",
            ],
            "is not a threshold",
        ),
    ];
    for (name, args, want) in cases {
        let run = adr(&args, None);
        assert_ne!(run.code, 0, "{name}: {}", run.stderr);
        assert!(run.stderr.contains(want), "{name}: {}", run.stderr);
        assert!(!run.stdout.contains("NaN"), "{name}: {}", run.stdout);
    }
}
