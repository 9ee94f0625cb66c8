//! Typed detector parameters with a schema the engine can read.
//!
//! A detector declares its parameters once with [`params!`](crate::params!): a struct
//! whose fields carry a type, a default, an optional range and a doc line. From that one
//! declaration the SDK derives the schema the engine shows (`adr plugins`) and checks rules
//! against, and the conversion from checked values into the struct, so a detector can
//! never be built from unchecked values (parse, don't validate).
//!
//! ```
//! adr_sdk::params! {
//!     /// Parameters of a rolling detector.
//!     pub struct RollingParams {
//!         /// Points in the rolling window; `batch` (or 0) scores each batch as a whole.
//!         window: adr_sdk::Window = adr_sdk::Window::Count(500), min >= 2;
//!         /// Score at or above which a point is an anomaly.
//!         threshold: f64 = 3.0, min > 0.0;
//!     }
//! }
//! ```

use std::fmt;

mod macros;
mod resolve;
mod side;
mod types;

pub use resolve::{suggest, ParamError, Resolved};
pub use side::{standardise, Side};
pub use types::{DetectorParams, ParamType, Window, MAX_WINDOW_COUNT};

/// A parameter value as written in a rule or on the command line.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ParamValue {
    /// An integer: `500`.
    Int(i64),
    /// A number: `3.5`, `2%` (= 0.02).
    Float(f64),
    /// `true` or `false`.
    Bool(bool),
    /// A word or string: `upper`, `"batch"`.
    Text(String),
    /// A duration in nanoseconds: `500ms`, `5m`, `1h`, `1d`.
    Duration(i64),
}

impl fmt::Display for ParamValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParamValue::Int(v) => write!(f, "{v}"),
            ParamValue::Float(v) => write!(f, "{v:?}"),
            ParamValue::Bool(v) => write!(f, "{v}"),
            ParamValue::Text(v) => f.write_str(v),
            ParamValue::Duration(ns) => f.write_str(&format_duration(*ns)),
        }
    }
}

impl ParamValue {
    fn describe(&self) -> String {
        match self {
            ParamValue::Int(v) => format!("the integer {v}"),
            ParamValue::Float(v) => format!("the number {v:?}"),
            ParamValue::Bool(v) => format!("the boolean {v}"),
            ParamValue::Text(v) => format!("the text `{v}`"),
            ParamValue::Duration(ns) => format!("the duration {}", format_duration(*ns)),
        }
    }

    fn as_f64(&self) -> Option<f64> {
        match *self {
            ParamValue::Int(v) => Some(v as f64),
            ParamValue::Float(v) => Some(v),
            _ => None,
        }
    }
}

/// The type of a parameter, as the schema states it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
#[repr(u8)]
pub enum ParamKind {
    /// A whole number.
    Int = 1,
    /// A real number (integers are accepted).
    Float = 2,
    /// `true` or `false`.
    Bool = 3,
    /// One word out of a fixed set ([`ParamSpec::choices`]).
    Choice = 4,
    /// A window: a count of points, a duration, or `batch` (also `0`) for whole batches.
    Window = 5,
    /// A duration.
    Duration = 6,
    /// A number, or one of a few words (`gamma = scale` or `gamma = 0.1`).
    FloatOrChoice = 7,
}

impl ParamKind {
    /// Decodes a kind sent across the plugin boundary.
    pub fn from_code(code: u8) -> Option<ParamKind> {
        Some(match code {
            1 => ParamKind::Int,
            2 => ParamKind::Float,
            3 => ParamKind::Bool,
            4 => ParamKind::Choice,
            5 => ParamKind::Window,
            6 => ParamKind::Duration,
            7 => ParamKind::FloatOrChoice,
            _ => return None,
        })
    }

    /// The name shown in schemas: `int`, `float`, `bool`, `choice`, `window`, `duration`.
    pub fn as_str(self) -> &'static str {
        match self {
            ParamKind::Int => "int",
            ParamKind::Float => "float",
            ParamKind::Bool => "bool",
            ParamKind::Choice => "choice",
            ParamKind::Window => "window",
            ParamKind::Duration => "duration",
            ParamKind::FloatOrChoice => "float or choice",
        }
    }

    fn expectation(self) -> &'static str {
        match self {
            ParamKind::Int => "an integer",
            ParamKind::Float => "a number",
            ParamKind::Bool => "true or false",
            ParamKind::Choice => "one of its choices",
            ParamKind::Window => "a count, a duration such as 5m, or `batch`",
            ParamKind::Duration => "a duration such as 500ms, 5m or 1h",
            ParamKind::FloatOrChoice => "a number or one of its choices",
        }
    }
}

impl fmt::Display for ParamKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One end of a parameter's allowed range.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bound {
    /// The limit.
    pub value: f64,
    /// Whether the limit itself is allowed.
    pub inclusive: bool,
}

/// A parameter's name, type, default, range and documentation.
#[derive(Debug, Clone, PartialEq)]
pub struct ParamSpec {
    /// The name used in rules: `window`.
    pub name: String,
    /// The type.
    pub kind: ParamKind,
    /// The value used when a rule leaves the parameter out.
    pub default: ParamValue,
    /// Lower limit (for windows: of the count).
    pub min: Option<Bound>,
    /// Upper limit (for windows: of the count).
    pub max: Option<Bound>,
    /// The allowed words of a [`ParamKind::Choice`].
    pub choices: Vec<String>,
    /// One or more sentences for `adr plugins` and editors.
    pub doc: String,
}

impl ParamSpec {
    /// The spec of a parameter of Rust type `T`.
    pub fn new<T: ParamType>(name: &str, doc: &str, default: &T) -> Self {
        let doc = doc.lines().map(str::trim).collect::<Vec<_>>().join(" ");
        let (min, max) = T::range();
        ParamSpec {
            name: name.to_owned(),
            kind: T::KIND,
            default: default.to_value(),
            min,
            max,
            choices: T::choices().iter().map(|s| (*s).to_owned()).collect(),
            doc: doc.trim().to_owned(),
        }
    }

    /// Sets the lower limit; a limit the type already implies stays where it is stricter.
    pub fn min(mut self, bound: Bound) -> Self {
        self.min = Some(match self.min {
            Some(m) if m.value > bound.value || (m.value == bound.value && !m.inclusive) => m,
            _ => bound,
        });
        self
    }

    /// Sets the upper limit; a limit the type already implies stays where it is stricter.
    pub fn max(mut self, bound: Bound) -> Self {
        self.max = Some(match self.max {
            Some(m) if m.value < bound.value || (m.value == bound.value && !m.inclusive) => m,
            _ => bound,
        });
        self
    }

    /// The allowed range as people write it: `≥ 2`, `> 0 and < 1`; empty when unbounded.
    pub fn range_text(&self) -> String {
        let lo = self
            .min
            .map(|b| format!("{} {}", if b.inclusive { ">=" } else { ">" }, b.value));
        let hi = self
            .max
            .map(|b| format!("{} {}", if b.inclusive { "<=" } else { "<" }, b.value));
        match (lo, hi) {
            (Some(l), Some(h)) => format!("{l} and {h}"),
            (Some(l), None) => l,
            (None, Some(h)) => h,
            (None, None) => String::new(),
        }
    }

    /// Checks `value` against this spec and returns it in canonical form (an integer
    /// given for a float becomes a float, `0` or `batch` for a window becomes `batch`).
    ///
    /// # Errors
    ///
    /// [`ParamError::WrongType`], [`ParamError::NotAChoice`] or [`ParamError::OutOfRange`].
    pub fn check(&self, value: &ParamValue) -> Result<ParamValue, ParamError> {
        let wrong = || ParamError::WrongType {
            name: self.name.clone(),
            expected: self.expectation(),
            found: value.describe(),
        };
        let canonical = match (self.kind, value) {
            (ParamKind::Int, ParamValue::Int(v)) => ParamValue::Int(*v),
            (ParamKind::Int, ParamValue::Float(v)) if v.fract() == 0.0 && v.abs() < 9e15 => {
                ParamValue::Int(*v as i64)
            }
            (ParamKind::Float | ParamKind::FloatOrChoice, ParamValue::Int(v)) => {
                ParamValue::Float(*v as f64)
            }
            (ParamKind::Float | ParamKind::FloatOrChoice, ParamValue::Float(v))
                if v.is_finite() =>
            {
                ParamValue::Float(*v)
            }
            (ParamKind::Bool, ParamValue::Bool(v)) => ParamValue::Bool(*v),
            (ParamKind::FloatOrChoice, ParamValue::Text(v))
                if !self.choices.iter().any(|c| c == v) =>
            {
                return Err(wrong());
            }
            (ParamKind::Choice | ParamKind::FloatOrChoice, ParamValue::Text(v)) => {
                if !self.choices.iter().any(|c| c == v) {
                    return Err(ParamError::NotAChoice {
                        name: self.name.clone(),
                        value: v.clone(),
                        choices: self.choices.clone(),
                    });
                }
                ParamValue::Text(v.clone())
            }
            (ParamKind::Window, ParamValue::Int(0)) => ParamValue::Text("batch".into()),
            (ParamKind::Window, ParamValue::Text(v)) if v == "batch" => ParamValue::Text(v.clone()),
            (ParamKind::Window, ParamValue::Int(v)) if *v > 0 => ParamValue::Int(*v),
            (ParamKind::Window | ParamKind::Duration, ParamValue::Duration(ns)) if *ns > 0 => {
                ParamValue::Duration(*ns)
            }
            _ => return Err(wrong()),
        };
        if let Some(x) = canonical.as_f64() {
            let below = self
                .min
                .is_some_and(|b| x < b.value || (!b.inclusive && x == b.value));
            let above = self
                .max
                .is_some_and(|b| x > b.value || (!b.inclusive && x == b.value));
            if below || above {
                return Err(ParamError::OutOfRange {
                    name: self.name.clone(),
                    value: value.to_string(),
                    allowed: self.range_text(),
                });
            }
        }
        Ok(canonical)
    }

    /// Parses `text` as written on the command line (`500`, `3.5`, `2%`, `true`, `upper`,
    /// `5m`, `batch`) for this parameter's kind, then [checks](Self::check) it.
    ///
    /// # Errors
    ///
    /// [`ParamError::Unparsable`] or any error of [`check`](Self::check).
    pub fn parse(&self, text: &str) -> Result<ParamValue, ParamError> {
        let text = text.trim();
        let unparsable = || ParamError::Unparsable {
            name: self.name.clone(),
            text: text.to_owned(),
            expected: self.expectation(),
        };
        let value = match self.kind {
            ParamKind::Bool => match text {
                "true" => ParamValue::Bool(true),
                "false" => ParamValue::Bool(false),
                _ => return Err(unparsable()),
            },
            ParamKind::Choice => ParamValue::Text(text.to_owned()),
            ParamKind::Int | ParamKind::Float => parse_number(text).ok_or_else(unparsable)?,
            ParamKind::Window => {
                if text == "batch" {
                    ParamValue::Text(text.to_owned())
                } else if let Ok(n) = text.parse::<i64>() {
                    ParamValue::Int(n)
                } else {
                    ParamValue::Duration(parse_duration(text).ok_or_else(unparsable)?)
                }
            }
            ParamKind::Duration => {
                ParamValue::Duration(parse_duration(text).ok_or_else(unparsable)?)
            }
            ParamKind::FloatOrChoice => {
                parse_number(text).unwrap_or_else(|| ParamValue::Text(text.to_owned()))
            }
        };
        self.check(&value)
    }

    fn expectation(&self) -> String {
        match self.kind {
            ParamKind::Choice => format!("one of {}", self.choices.join(", ")),
            ParamKind::FloatOrChoice => format!("a number or one of {}", self.choices.join(", ")),
            k => k.expectation().to_owned(),
        }
    }
}

fn parse_number(text: &str) -> Option<ParamValue> {
    if let Some(pct) = text.strip_suffix('%') {
        return pct
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite())
            .map(|v| ParamValue::Float(v / 100.0));
    }
    if let Ok(v) = text.parse::<i64>() {
        return Some(ParamValue::Int(v));
    }
    text.parse::<f64>()
        .ok()
        .filter(|v| v.is_finite())
        .map(ParamValue::Float)
}

/// Parses a duration literal: a number and a unit out of `ns`, `us`, `ms`, `s`, `m`,
/// `h`, `d`, `w` (`500ms`, `1.5h`). Returns nanoseconds; `None` if malformed or negative.
pub fn parse_duration(text: &str) -> Option<i64> {
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().ok()?;
    let scale = match unit.trim() {
        "ns" => 1.0,
        "us" | "µs" => 1e3,
        "ms" => 1e6,
        "s" => 1e9,
        "m" => 60e9,
        "h" => 3600e9,
        "d" => 86_400e9,
        "w" => 604_800e9,
        _ => return None,
    };
    let ns = number * scale;
    (ns.is_finite() && ns >= 0.0 && ns < i64::MAX as f64).then_some(ns.round() as i64)
}

/// Writes nanoseconds in the largest unit that divides them: `5m`, `1500ms`.
pub fn format_duration(ns: i64) -> String {
    const UNITS: [(&str, i64); 7] = [
        ("w", 604_800_000_000_000),
        ("d", 86_400_000_000_000),
        ("h", 3_600_000_000_000),
        ("m", 60_000_000_000),
        ("s", 1_000_000_000),
        ("ms", 1_000_000),
        ("us", 1_000),
    ];
    for (unit, size) in UNITS {
        if ns != 0 && ns % size == 0 {
            return format!("{}{unit}", ns / size);
        }
    }
    format!("{ns}ns")
}

#[cfg(test)]
mod tests {
    use super::*;

    crate::param_choice! {
        /// Test choice.
        enum Side { Both = "both", Upper = "upper" }
    }

    crate::params! {
        /// Test params.
        struct TestParams {
            /// Points in the window.
            window: Window = Window::Count(500), min >= 2;
            /// Alarm threshold.
            threshold: f64 = 3.0, min > 0.0;
            /// Significance.
            alpha: f64 = 0.05, min > 0.0, max < 1.0;
            /// Robust or not.
            robust: bool = false;
            /// Tail.
            side: Side = Side::Both;
        }
    }

    fn pairs(list: &[(&str, ParamValue)]) -> Vec<(String, ParamValue)> {
        list.iter()
            .map(|(n, v)| ((*n).to_owned(), v.clone()))
            .collect()
    }

    #[test]
    fn schema_carries_names_defaults_ranges_and_docs() {
        let schema = TestParams::schema();
        let names: Vec<_> = schema.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["window", "threshold", "alpha", "robust", "side"]);
        assert_eq!(schema[0].kind, ParamKind::Window);
        assert_eq!(schema[0].default, ParamValue::Int(500));
        assert_eq!(schema[0].doc, "Points in the window.");
        assert_eq!(schema[2].range_text(), "> 0 and < 1");
        assert_eq!(schema[4].choices, ["both", "upper"]);
    }

    #[test]
    fn a_number_or_a_word_takes_either() {
        let spec = ParamSpec {
            name: "gamma".into(),
            kind: ParamKind::FloatOrChoice,
            default: ParamValue::Text("scale".into()),
            min: Some(Bound {
                value: 0.0,
                inclusive: false,
            }),
            max: None,
            choices: vec!["scale".into(), "auto".into()],
            doc: String::new(),
        };
        assert_eq!(spec.parse("auto"), Ok(ParamValue::Text("auto".into())));
        assert_eq!(spec.parse("2"), Ok(ParamValue::Float(2.0)));
        assert_eq!(spec.check(&ParamValue::Int(1)), Ok(ParamValue::Float(1.0)));
        let errors = [
            (
                spec.parse("wide"),
                "parameter `gamma` expects a number or one of scale, auto, got the text `wide`",
            ),
            (spec.parse("-1"), "parameter `gamma` must be > 0, got -1"),
            (
                spec.check(&ParamValue::Bool(true)),
                "parameter `gamma` expects a number or one of scale, auto, got the boolean true",
            ),
        ];
        for (got, want) in errors {
            assert_eq!(got.unwrap_err().to_string(), want);
        }
    }

    #[test]
    fn defaults_fill_what_is_not_given() {
        let p = TestParams::from_pairs(&pairs(&[("threshold", ParamValue::Int(4))])).unwrap();
        assert_eq!(
            p,
            TestParams {
                threshold: 4.0,
                ..TestParams::default()
            }
        );
    }

    #[test]
    fn every_error_variant_names_the_parameter() {
        type Case = (&'static str, Vec<(String, ParamValue)>, &'static str);
        let cases: [Case; 6] = [
            (
                "unknown with suggestion",
                pairs(&[("windw", ParamValue::Int(5))]),
                "unknown parameter `windw` (did you mean `window`?); known: window, threshold, alpha, robust, side",
            ),
            (
                "duplicate",
                pairs(&[("alpha", ParamValue::Float(0.1)), ("alpha", ParamValue::Float(0.2))]),
                "parameter `alpha` is given more than once",
            ),
            (
                "wrong type",
                pairs(&[("robust", ParamValue::Int(1))]),
                "parameter `robust` expects true or false, got the integer 1",
            ),
            (
                "out of range",
                pairs(&[("window", ParamValue::Int(1))]),
                "parameter `window` must be >= 2 and <= 10000000, got 1",
            ),
            (
                "exclusive bound",
                pairs(&[("alpha", ParamValue::Float(1.0))]),
                "parameter `alpha` must be > 0 and < 1, got 1.0",
            ),
            (
                "not a choice",
                pairs(&[("side", ParamValue::Text("left".into()))]),
                "parameter `side` must be one of both, upper, got `left`",
            ),
        ];
        for (name, given, want) in cases {
            let errors = TestParams::from_pairs(&given).unwrap_err();
            assert_eq!(errors.len(), 1, "{name}: {errors:?}");
            assert_eq!(errors[0].to_string(), want, "{name}");
        }
    }

    crate::params! {
        /// Unsigned params.
        struct Counts {
            /// A count with no declared range.
            depth: usize = 0;
            /// A u32 with a declared minimum.
            seed: u32 = 1, min >= 1;
            /// A count with a declared maximum below the type's.
            ddof: usize = 1, max <= 1;
        }
    }

    #[test]
    fn integer_types_state_their_range_in_the_schema() {
        let schema = Counts::schema();
        assert_eq!(schema[0].range_text(), ">= 0");
        assert_eq!(schema[1].range_text(), ">= 1 and <= 4294967295");
        assert_eq!(schema[2].range_text(), ">= 0 and <= 1");
        let cases = [
            (
                "negative count",
                ("depth", ParamValue::Int(-1)),
                "parameter `depth` must be >= 0, got -1",
            ),
            (
                "past u32",
                ("seed", ParamValue::Int(1 << 40)),
                "parameter `seed` must be >= 1 and <= 4294967295, got 1099511627776",
            ),
            (
                "negative ddof",
                ("ddof", ParamValue::Int(-5)),
                "parameter `ddof` must be >= 0 and <= 1, got -5",
            ),
        ];
        for (name, (param, value), want) in cases {
            let errors = Counts::from_pairs(&pairs(&[(param, value)])).unwrap_err();
            assert_eq!(errors[0].to_string(), want, "{name}");
        }
        // a window's count is bounded, its durations and `batch` are not counts
        let window = &TestParams::schema()[0];
        assert!(window
            .check(&ParamValue::Int(MAX_WINDOW_COUNT as i64 + 1))
            .is_err());
        assert!(window.check(&ParamValue::Duration(i64::MAX)).is_ok());
        assert!(window.check(&ParamValue::Text("batch".into())).is_ok());
    }

    #[test]
    fn all_problems_are_reported_at_once() {
        let given = pairs(&[
            ("windw", ParamValue::Int(5)),
            ("alpha", ParamValue::Float(2.0)),
        ]);
        assert_eq!(TestParams::from_pairs(&given).unwrap_err().len(), 2);
    }

    #[test]
    fn command_line_text_parses_per_kind() {
        let schema = TestParams::schema();
        let cases = [
            ("window count", 0, "250", Ok(ParamValue::Int(250))),
            (
                "window batch",
                0,
                "batch",
                Ok(ParamValue::Text("batch".into())),
            ),
            (
                "window zero is batch",
                0,
                "0",
                Ok(ParamValue::Text("batch".into())),
            ),
            (
                "window duration",
                0,
                "5m",
                Ok(ParamValue::Duration(300_000_000_000)),
            ),
            ("float from int", 1, "4", Ok(ParamValue::Float(4.0))),
            ("percentage", 2, "5%", Ok(ParamValue::Float(0.05))),
            ("bool", 3, "true", Ok(ParamValue::Bool(true))),
            ("choice", 4, "upper", Ok(ParamValue::Text("upper".into()))),
        ];
        for (name, i, text, want) in cases {
            assert_eq!(schema[i].parse(text), want, "{name}");
        }
        let err = schema[1].parse("abc").unwrap_err();
        assert_eq!(
            err.to_string(),
            "parameter `threshold` expects a number, got `abc`"
        );
        let err = schema[0].parse("5 parsecs").unwrap_err();
        assert!(matches!(err, ParamError::Unparsable { .. }), "{err}");
    }

    #[test]
    fn durations_parse_and_format() {
        for (text, ns) in [
            ("500ms", 500_000_000),
            ("5m", 300_000_000_000),
            ("1.5h", 5_400_000_000_000),
            ("1d", 86_400_000_000_000),
        ] {
            assert_eq!(parse_duration(text), Some(ns), "{text}");
        }
        assert_eq!(parse_duration("5"), None);
        assert_eq!(parse_duration("-5s"), None);
        assert_eq!(format_duration(300_000_000_000), "5m");
        assert_eq!(format_duration(1_500_000_000), "1500ms");
    }

    #[test]
    fn suggestions_only_for_near_misses() {
        assert_eq!(suggest("zscroe", ["zscore", "mad"]), Some("zscore".into()));
        assert_eq!(suggest("xyz", ["zscore", "mad"]), None);
    }
}
