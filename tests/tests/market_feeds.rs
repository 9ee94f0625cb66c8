//! Recorded exchange feeds as `adr run` input (issue 23): Binance's bulk trade files and
//! WebSocket messages read into named fields, so one rule file runs on either; bad lines
//! are errors that name the line and the field.

use adr_tests::adr;

/// Trades of a quiet market with one jump at trade 250.
fn trades_csv() -> String {
    let mut text = String::new();
    for i in 0..300u64 {
        let price = if i == 250 {
            43_500.0
        } else {
            43_000.0 + ((i * 7) % 11) as f64
        };
        let buyer_maker = if i % 3 == 0 { "True" } else { "False" };
        text.push_str(&format!(
            "{},{price},0.01,{},{},{buyer_maker},True\n",
            1000 + i,
            price * 0.01,
            1_704_067_200_000 + i * 1000
        ));
    }
    text
}

const RULES: &str = "\
input trades {
    time   = ts
    key    = symbol
    fields = price, side
}
detector jump = statistical.zscore(window = 100, threshold = 6) on price
ensemble moves {
    vote = any(jump)
}
";

fn write(dir: &std::path::Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

/// The scored rows: (key, verdict of `moves`).
fn verdicts(csv: &str) -> Vec<(String, String)> {
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let key = header.iter().position(|h| *h == "key").unwrap();
    let verdict = header
        .iter()
        .position(|h| *h == "moves.verdict")
        .unwrap_or_else(|| panic!("{header:?}"));
    lines
        .map(|l| {
            let cells: Vec<&str> = l.split(',').collect();
            (cells[key].to_owned(), cells[verdict].to_owned())
        })
        .collect()
}

#[test]
fn a_bulk_trade_file_and_a_recorded_stream_run_through_the_same_rules() {
    let dir = tempfile::tempdir().unwrap();
    let rules = write(dir.path(), "moves.adr", RULES);
    let file = write(dir.path(), "BTCUSDT-trades-2024-01-01.csv", &trades_csv());
    let out = dir.path().join("scored.csv");
    let run = adr(
        &[
            "run",
            &rules,
            "--input",
            &file,
            "--format",
            "binance-trades",
            "--output",
            out.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let scored = verdicts(&std::fs::read_to_string(&out).unwrap());
    assert_eq!(scored.len(), 300);
    assert!(scored.iter().all(|(k, _)| k == "BTCUSDT"));
    let anomalies: Vec<usize> = scored
        .iter()
        .enumerate()
        .filter(|(_, (_, v))| v == "anomaly")
        .map(|(i, _)| i)
        .collect();
    assert_eq!(anomalies, [250], "the jump, and nothing else");

    // The same trades as WebSocket messages of a combined stream, two markets interleaved.
    let mut stream = String::new();
    for line in trades_csv().lines() {
        let cells: Vec<&str> = line.split(',').collect();
        for symbol in ["BTCUSDT", "ETHUSDT"] {
            stream.push_str(&format!(
                "{{\"stream\":\"{}@trade\",\"data\":{{\"e\":\"trade\",\"E\":{t},\"s\":\"{symbol}\",\"t\":{},\"p\":\"{}\",\"q\":\"{}\",\"T\":{t},\"m\":{},\"M\":true}}}}\n",
                symbol.to_lowercase(),
                cells[0],
                cells[1],
                cells[2],
                cells[5].to_lowercase(),
                t = cells[4],
            ));
        }
    }
    let recorded = write(dir.path(), "stream.jsonl", &stream);
    let out = dir.path().join("scored-ws.csv");
    let run = adr(
        &[
            "run",
            &rules,
            "--input",
            &recorded,
            "--format",
            "binance-ws",
            "--output",
            out.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let scored = verdicts(&std::fs::read_to_string(&out).unwrap());
    assert_eq!(scored.len(), 600);
    for symbol in ["BTCUSDT", "ETHUSDT"] {
        let mine: Vec<&String> = scored
            .iter()
            .filter(|(k, _)| k == symbol)
            .map(|(_, v)| v)
            .collect();
        assert_eq!(mine.len(), 300);
        assert_eq!(
            mine.iter().filter(|v| **v == "anomaly").count(),
            1,
            "{symbol}"
        );
        assert_eq!(mine[250], "anomaly", "{symbol}");
    }
}

#[test]
fn bad_lines_are_errors_that_name_the_line_and_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let rules = write(dir.path(), "moves.adr", RULES);
    let good = trades_csv();
    let mut lines: Vec<String> = good.lines().map(str::to_owned).collect();
    lines[4] = lines[4].replacen(",43", ",-43", 1);
    let bad = write(
        dir.path(),
        "BTCUSDT-trades-bad.csv",
        &(lines.join("\n") + "\n"),
    );
    let run = adr(
        &["run", &rules, "--input", &bad, "--format", "binance-trades"],
        None,
    );
    assert_ne!(run.code, 0);
    assert!(
        run.stderr.contains("line 5")
            && run.stderr.contains("`price`")
            && run.stderr.contains("must be above 0"),
        "{}",
        run.stderr
    );

    let mixed = "{\"e\":\"trade\",\"E\":1,\"s\":\"X\",\"t\":1,\"p\":\"1\",\"q\":\"1\",\"T\":1704067200000,\"m\":false,\"M\":true}\n\
                 {\"e\":\"kline\",\"E\":1,\"s\":\"X\",\"k\":{\"t\":1704067200000,\"o\":\"1\",\"h\":\"1\",\"l\":\"1\",\"c\":\"1\",\"v\":\"1\",\"q\":\"1\",\"n\":1,\"x\":true}}\n";
    let run = adr(&["run", &rules, "--format", "binance-ws"], Some(mixed));
    assert_ne!(run.code, 0);
    assert!(
        run.stderr.contains("line 2") && run.stderr.contains("one kind"),
        "{}",
        run.stderr
    );

    // A bulk file on standard input names no market.
    let run = adr(&["run", &rules, "--format", "binance-trades"], Some(&good));
    assert_ne!(run.code, 0);
    assert!(run.stderr.contains("--symbol"), "{}", run.stderr);
    let run = adr(
        &[
            "run",
            &rules,
            "--format",
            "binance-trades",
            "--symbol",
            "BTCUSDT",
        ],
        Some(&good),
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
}
