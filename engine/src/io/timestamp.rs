//! Timestamps as users write them: ISO-8601 / RFC 3339 text or epoch numbers.
//!
//! Everything becomes `i64` nanoseconds since the Unix epoch, UTC. Text without an offset
//! (`2014-04-01 00:05:00`, as in NAB) is read as UTC. Epoch numbers are read in the unit
//! their size implies, decided once per column from its first value: below 10¹¹ seconds
//! (until year 5138), below 10¹⁴ milliseconds, below 10¹⁷ microseconds, else nanoseconds;
//! a number with a fraction is seconds.

use jiff::{civil::DateTime, tz::Offset, Timestamp};

/// How a timestamp column is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeFormat {
    /// ISO-8601 / RFC 3339 text, with or without an offset.
    Iso,
    /// Integer epoch seconds.
    Seconds,
    /// Integer epoch milliseconds.
    Millis,
    /// Integer epoch microseconds.
    Micros,
    /// Integer epoch nanoseconds.
    Nanos,
    /// Epoch seconds with a fraction.
    FractionalSeconds,
}

impl TimeFormat {
    /// The format of a column whose first value is `text`; `None` if it is no timestamp.
    pub fn detect(text: &str) -> Option<TimeFormat> {
        let text = text.trim();
        if let Ok(v) = text.parse::<i64>() {
            let a = v.unsigned_abs();
            return Some(if a < 100_000_000_000 {
                TimeFormat::Seconds
            } else if a < 100_000_000_000_000 {
                TimeFormat::Millis
            } else if a < 100_000_000_000_000_000 {
                TimeFormat::Micros
            } else {
                TimeFormat::Nanos
            });
        }
        if text.parse::<f64>().is_ok_and(f64::is_finite) {
            return Some(TimeFormat::FractionalSeconds);
        }
        parse_iso(text).map(|_| TimeFormat::Iso)
    }

    /// Nanoseconds since the epoch, or `None` if `text` is not in this format.
    pub fn parse(self, text: &str) -> Option<i64> {
        let text = text.trim();
        let scaled = |scale: i64| text.parse::<i64>().ok()?.checked_mul(scale);
        match self {
            TimeFormat::Iso => parse_iso(text),
            TimeFormat::Seconds => scaled(1_000_000_000),
            TimeFormat::Millis => scaled(1_000_000),
            TimeFormat::Micros => scaled(1_000),
            TimeFormat::Nanos => scaled(1),
            TimeFormat::FractionalSeconds => {
                let s: f64 = text.parse().ok()?;
                let ns = (s * 1e9).round();
                (ns.is_finite() && ns.abs() < 9.2e18).then_some(ns as i64)
            }
        }
    }
}

fn has_offset(text: &str) -> bool {
    text.ends_with(['Z', 'z']) || text.get(10..).is_some_and(|t| t.contains(['+', '-']))
}

fn parse_iso(text: &str) -> Option<i64> {
    if has_offset(text) {
        let ts: Timestamp = text.parse().ok()?;
        return i64::try_from(ts.as_nanosecond()).ok();
    }
    let dt: DateTime = text.parse().ok()?;
    let ts = Offset::UTC.to_timestamp(dt).ok()?;
    i64::try_from(ts.as_nanosecond()).ok()
}

/// RFC 3339 text of nanoseconds since the epoch, UTC: `2014-04-01T00:05:00Z`.
pub fn format_rfc3339(ns: i64) -> String {
    match Timestamp::from_nanosecond(i128::from(ns)) {
        Ok(ts) => ts.to_string(),
        Err(_) => ns.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_supported_format_reads_the_same_instant() {
        let want = 1_396_310_700_000_000_000; // 2014-04-01T00:05:00Z
        let cases = [
            ("NAB style, no offset", "2014-04-01 00:05:00"),
            ("ISO with T", "2014-04-01T00:05:00"),
            ("RFC 3339 Z", "2014-04-01T00:05:00Z"),
            ("offset", "2014-04-01T02:05:00+02:00"),
            ("fraction", "2014-04-01 00:05:00.000000"),
            ("epoch s", "1396310700"),
            ("epoch ms", "1396310700000"),
            ("epoch us", "1396310700000000"),
            ("epoch ns", "1396310700000000000"),
            ("epoch s with fraction", "1396310700.0"),
        ];
        for (name, text) in cases {
            let format = TimeFormat::detect(text).unwrap_or_else(|| panic!("{name}: not detected"));
            assert_eq!(format.parse(text), Some(want), "{name}");
        }
    }

    #[test]
    fn garbage_is_not_a_timestamp() {
        assert_eq!(TimeFormat::detect("yesterday"), None);
        assert_eq!(TimeFormat::Iso.parse("2014-13-01 00:00:00"), None);
        assert_eq!(TimeFormat::Seconds.parse("12.5.1"), None);
    }

    #[test]
    fn formats_back_as_rfc3339() {
        assert_eq!(
            format_rfc3339(1_396_310_700_000_000_000),
            "2014-04-01T00:05:00Z"
        );
    }
}
