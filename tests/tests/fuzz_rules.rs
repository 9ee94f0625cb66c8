//! A grammar-aware fuzzer for the rule checker: random token soups and random splices of
//! real rule files, checked and rendered; none may panic.
//!
//! Runs for 3 seconds in the test suite; `ADR_FUZZ_SECONDS=300` runs it longer. Inputs
//! that ever broke the checker are kept in `tests/fuzz/` and replayed first, every run.

use std::time::{Duration, Instant};

use adr_engine::plugins::{Registry, SearchPath};
use adr_engine::rules::{check_files, diagnostic};
use adr_tests::{built, plugin_dir, workspace};

const TOKENS: &[&str] = &[
    "input",
    "feature",
    "detector",
    "ensemble",
    "alert",
    "test",
    "include",
    "const",
    "{",
    "}",
    "(",
    ")",
    "[",
    "]",
    "=",
    ",",
    ":",
    ".",
    ">=",
    "<",
    "==",
    "+",
    "-",
    "*",
    "/",
    "%",
    "on",
    "train",
    "first",
    "refit",
    "every",
    "vote",
    "any",
    "all",
    "majority",
    "at_least",
    "weighted",
    "mean",
    "max",
    "median",
    "severity",
    "when",
    "otherwise",
    "and",
    "or",
    "not",
    "score",
    "votes",
    "critical",
    "high",
    "medium",
    "low",
    "info",
    "cooldown",
    "per",
    "key",
    "group",
    "by",
    "notify",
    "log",
    "file",
    "webhook",
    "given",
    "from",
    "expect",
    "fires",
    "at",
    "time",
    "fields",
    "statistical",
    "zscore",
    "mad",
    "window",
    "threshold",
    "side",
    "upper",
    "close",
    "volume",
    "ts",
    "symbol",
    "market",
    "spike",
    "e",
    "pct_change",
    "ewma",
    "lag",
    "clip",
    "0",
    "1",
    "500",
    "0.5",
    "2%",
    "5m",
    "1d",
    "-3",
    "1e309",
    "99999999999999999999",
    "true",
    "\"x\"",
    "\"fixtures/tiny.csv\"",
    "\"2025-01-15T10:30:00Z\"",
    "\"unterminated",
    "//c\n",
    "/*",
    "*/",
    "\n",
    " ",
    "é",
    "\u{1F4C8}",
];

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn soup(rng: &mut Rng) -> String {
    let n = rng.below(80);
    (0..n)
        .map(|_| TOKENS[rng.below(TOKENS.len())])
        .collect::<Vec<_>>()
        .join(" ")
}

fn splice(rng: &mut Rng, sources: &[String]) -> String {
    let a = &sources[rng.below(sources.len())];
    let b = &sources[rng.below(sources.len())];
    let cut = |s: &str, at: usize| {
        s.char_indices()
            .map(|(i, _)| i)
            .nth(at % s.chars().count().max(1))
            .unwrap_or(0)
    };
    let (i, j) = (cut(a, rng.below(4096)), cut(b, rng.below(4096)));
    format!("{}{}{}", &a[..i], TOKENS[rng.below(TOKENS.len())], &b[j..])
}

#[test]
fn random_rules_never_panic_the_checker() {
    let dir = plugin_dir(&[&built().statistical]);
    let registry = Registry::load(&SearchPath::explicit([dir.path().to_path_buf()])).unwrap();
    let scratch = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(scratch.path().join("fixtures")).unwrap();
    std::fs::write(scratch.path().join("fixtures/tiny.csv"), "ts,close\n1,2\n").unwrap();
    let path = scratch.path().join("fuzz.adr");
    let run = |text: &str| {
        std::fs::write(&path, text).unwrap();
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let (loaded, diagnostics) =
                check_files(std::slice::from_ref(&path), &registry).unwrap();
            diagnostic::render(&diagnostics, &loaded.sources);
            diagnostic::to_json(&diagnostics, &loaded.sources);
        }))
        .is_ok()
    };

    let mut corpus: Vec<String> = Vec::new();
    for folder in ["tests/fuzz", "tests/diagnostics", "rules"] {
        let mut files: Vec<_> = std::fs::read_dir(workspace().join(folder))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        for f in files
            .into_iter()
            .filter(|p| p.extension().is_some_and(|e| e == "adr"))
        {
            let text = std::fs::read_to_string(&f).unwrap();
            assert!(run(&text), "{} panics the checker", f.display());
            corpus.push(text);
        }
    }

    let seconds: u64 = std::env::var("ADR_FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let seed = std::env::var("ADR_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_261_124);
    let mut rng = Rng(seed);
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut runs = 0u64;
    while Instant::now() < deadline {
        let text = if rng.below(2) == 0 {
            soup(&mut rng)
        } else {
            splice(&mut rng, &corpus)
        };
        if !run(&text) {
            let keep = workspace().join(format!("tests/fuzz/found-{seed}-{runs}.adr"));
            std::fs::write(&keep, &text).unwrap();
            panic!(
                "the checker panicked; the input is saved as {}:\n{text}",
                keep.display()
            );
        }
        runs += 1;
    }
    eprintln!("fuzz: {runs} inputs in {seconds} s, seed {seed}");
}
