//! The pest parser generated from `grammar/adr.pest`, and syntax errors people can read.

use pest::Parser as _;

mod generated {
    // pest generates one undocumented `Rule` variant per grammar rule.
    #![allow(missing_docs)]

    /// The parser generated from the grammar.
    #[derive(Debug, pest_derive::Parser)]
    #[grammar = "../../../grammar/adr.pest"]
    pub struct AdrParser;
}

pub use generated::{AdrParser, Rule};

/// Where a rule file stops making sense.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{line}:{column}: {message}")]
pub struct SyntaxError {
    /// Line, from 1.
    pub line: usize,
    /// Column, from 1 (characters).
    pub column: usize,
    /// What was expected there.
    pub message: String,
}

/// Parses a whole rule file.
///
/// # Errors
///
/// The first [`SyntaxError`], at the position where no rule of the grammar applies.
pub fn parse(source: &str) -> Result<pest::iterators::Pairs<'_, Rule>, SyntaxError> {
    AdrParser::parse(Rule::file, source).map_err(|e| {
        let (line, column) = match e.line_col {
            pest::error::LineColLocation::Pos(p) | pest::error::LineColLocation::Span(p, _) => p,
        };
        let message = match &e.variant {
            pest::error::ErrorVariant::ParsingError { positives, .. } if !positives.is_empty() => {
                let mut names: Vec<String> = positives.iter().map(describe).collect();
                names.sort();
                names.dedup();
                format!("expected {}", names.join(", "))
            }
            pest::error::ErrorVariant::ParsingError { .. } => "unexpected input".to_owned(),
            pest::error::ErrorVariant::CustomError { message } => message.clone(),
        };
        SyntaxError {
            line,
            column,
            message,
        }
    })
}

/// What a grammar rule is called in messages.
fn describe(rule: &Rule) -> String {
    match rule {
        Rule::EOI => "end of file".into(),
        Rule::kw_on => "`on` and the detector's input".into(),
        Rule::input_key => "an input setting (time, key, fields) or `}`".into(),
        Rule::file => {
            "an item (include, const, input, feature, detector, ensemble, alert, test)".into()
        }
        Rule::ident => "a name".into(),
        Rule::string | Rule::string_body => "a string".into(),
        Rule::value | Rule::signed | Rule::number | Rule::integer => "a number".into(),
        Rule::duration => "a duration such as 5m".into(),
        Rule::level => "a severity (critical, high, medium, low, info)".into(),
        Rule::expr | Rule::call_arg => "an expression".into(),
        Rule::include
        | Rule::constant
        | Rule::input
        | Rule::feature
        | Rule::detector
        | Rule::ensemble
        | Rule::alert
        | Rule::test => {
            "an item (include, const, input, feature, detector, ensemble, alert, test)".into()
        }
        other => format!("{other:?}").replace('_', " "),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FULL: &str = r#"
// rules/btc_market.adr
include "common.adr"
const THRESHOLD = 3.5
const WINDOW = 1h

input market {
    time   = ts
    key    = exchange, symbol
    fields = open, high, low, close, volume
}

feature returns = pct_change(close)
feature range   = (high - low) / close
feature fast    = ewma(returns, 0.2) * -1 + abs(clip(range, 0, 2%))

detector spike  = statistical.zscore(window = 500, threshold = THRESHOLD) on returns
detector volume = statistical.mad(window = 1h, threshold = 6, side = upper) on volume
detector forest = ml.isolation_forest(trees = 200, contamination = 2%)
                    on [returns, range, volume] train on first 10000 refit every 1d
detector crash  = crypto.flash_crash(drop = 10%, within = 5m) on close

ensemble market_anomaly {
    vote     = weighted(spike: 1, volume: 1, forest: 2) >= 0.5
    severity {
        critical when crash
        high     when score >= 0.9 and not volume
        medium   when (score >= 0.7 or votes >= 2)
        low      otherwise
    }
}

ensemble quorum { vote = at_least(2, spike, volume, forest) }
ensemble loud { vote = max(spike, volume) >= 0.8 }
ensemble nested { vote = any(market_anomaly, quorum) }

/* alerts */
alert market_anomaly {
    when     severity >= medium for 3 events
    cooldown 10m per key
    group by symbol
    notify   log, webhook("http://127.0.0.1:9000/hook")
}

test "a 12% drop in 3 minutes is critical" {
    given market from "fixtures/crash.csv"
    expect market_anomaly severity critical at "2025-01-15T10:30:00Z" key "BTC-USD"
    expect quorum not fires at "2025-01-15T09:00:00Z"
}
"#;

    #[test]
    fn the_design_example_parses() {
        parse(FULL).unwrap_or_else(|e| panic!("{e}"));
    }

    #[test]
    fn every_literal_kind_parses() {
        let src = "const A = 500\nconst B = 2.5e-3\nconst C = 2%\nconst D = 500ms\nconst E = true\nconst F = \"x \\\"y\\\"\"\n";
        parse(src).unwrap_or_else(|e| panic!("{e}"));
    }

    #[test]
    fn syntax_errors_say_where_and_what_was_expected() {
        let cases = [
            (
                "missing brace",
                "input market {\n    time = ts\n",
                3,
                1,
                "expected",
            ),
            (
                "unterminated string",
                "include \"common.adr\n",
                1,
                9,
                "expected a string",
            ),
            ("bad literal", "const X = 12abc\n", 1, 11, "expected"),
            (
                "unknown item",
                "detecter x = statistical.zscore() on y\n",
                1,
                1,
                "expected an item",
            ),
            (
                "missing on",
                "detector x = statistical.zscore(window = 5)\n",
                2,
                1,
                "expected `on` and the detector's input",
            ),
            (
                "bad severity",
                "ensemble e { vote = any(a)\n severity { urgent when a } }\n",
                2,
                13,
                "expected",
            ),
        ];
        for (name, src, line, column, want) in cases {
            let err = parse(src).err().unwrap_or_else(|| panic!("{name}: parsed"));
            assert_eq!((err.line, err.column), (line, column), "{name}: {err}");
            assert!(err.message.contains(want), "{name}: {err}");
        }
    }

    #[test]
    fn keywords_do_not_swallow_longer_names() {
        let src = "ensemble e {\n vote = any(nothing, order)\n severity { high when nothing or order  low otherwise }\n}\n";
        parse(src).unwrap_or_else(|e| panic!("{e}"));
    }
}
