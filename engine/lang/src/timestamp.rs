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

    /// Nanoseconds since the epoch, or why `text` is not a timestamp of this column.
    ///
    /// ISO-8601 text is read in any column (it cannot be mistaken for anything else), and
    /// a seconds column also takes seconds with a fraction; epoch numbers are never read
    /// in an ISO column or in another unit than the column's, which would silently move
    /// an event by a factor of a thousand.
    ///
    /// # Errors
    ///
    /// [`TimeError::OutOfRange`] for a time outside the years 1677 to 2262 (what
    /// nanoseconds in an `i64` can hold), [`TimeError::WrongFormat`] otherwise.
    pub fn parse(self, text: &str) -> Result<i64, TimeError> {
        let text = text.trim();
        let scaled = |scale: i64| -> Result<i64, TimeError> {
            let v = text
                .parse::<i64>()
                .map_err(|_| TimeError::WrongFormat(self))?;
            v.checked_mul(scale).ok_or(TimeError::OutOfRange)
        };
        let iso = || match parse_iso(text) {
            Some(Ok(ns)) => Ok(ns),
            Some(Err(e)) => Err(e),
            None => Err(TimeError::WrongFormat(self)),
        };
        match self {
            TimeFormat::Iso => iso(),
            _ if looks_iso(text) => iso(),
            TimeFormat::Seconds if text.parse::<i64>().is_err() => parse_fractional_seconds(text),
            TimeFormat::Seconds => scaled(1_000_000_000),
            TimeFormat::Millis => scaled(1_000_000),
            TimeFormat::Micros => scaled(1_000),
            TimeFormat::Nanos => scaled(1),
            TimeFormat::FractionalSeconds => parse_fractional_seconds(text),
        }
    }

    /// How people call this format, for messages.
    pub fn describe(self) -> &'static str {
        match self {
            TimeFormat::Iso => "ISO-8601 text",
            TimeFormat::Seconds | TimeFormat::FractionalSeconds => "epoch seconds",
            TimeFormat::Millis => "epoch milliseconds",
            TimeFormat::Micros => "epoch microseconds",
            TimeFormat::Nanos => "epoch nanoseconds",
        }
    }
}

/// Why a cell is not a timestamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TimeError {
    /// A valid time that nanoseconds since 1970 in an `i64` cannot hold.
    #[error("is outside the years 1677 to 2262 that timestamps can hold")]
    OutOfRange,
    /// Not in the column's format.
    #[error("is not a timestamp in the column's format ({}, from its first row)", .0.describe())]
    WrongFormat(TimeFormat),
}

/// Whether `text` starts as a date does (`2025-01-15`), not as a number.
fn looks_iso(text: &str) -> bool {
    let b = text.as_bytes();
    b.len() >= 10 && b[4] == b'-' && b[..4].iter().all(u8::is_ascii_digit)
}

/// Seconds with a fraction, to the nanosecond without going through binary floating
/// point (`1735689600.75` is exactly 750 ms past the second, not 750000128 ns).
fn parse_fractional_seconds(text: &str) -> Result<i64, TimeError> {
    let wrong = TimeError::WrongFormat(TimeFormat::FractionalSeconds);
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let exact = digits.split_once('.').filter(|(whole, fraction)| {
        !(whole.is_empty() && fraction.is_empty())
            && whole.bytes().all(|c| c.is_ascii_digit())
            && fraction.bytes().all(|c| c.is_ascii_digit())
    });
    let Some((whole, fraction)) = exact else {
        // Exponent notation: binary floating point is all it carries anyway.
        let s: f64 = text.parse().map_err(|_| wrong)?;
        let ns = (s * 1e9).round();
        if !ns.is_finite() {
            return Err(wrong);
        }
        return if ns.abs() < 9.2e18 {
            Ok(ns as i64)
        } else {
            Err(TimeError::OutOfRange)
        };
    };
    let whole: i128 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| TimeError::OutOfRange)?
    };
    let mut nanos: i128 = 0;
    for (i, c) in fraction.bytes().enumerate() {
        let d = i128::from(c - b'0');
        match i {
            0..=8 => nanos += d * 10i128.pow(8 - i as u32),
            // Round half up on the tenth digit; later ones cannot change the result
            // except through a tie, which half-up breaks consistently.
            9 => {
                nanos += i128::from(d >= 5);
                break;
            }
            _ => unreachable!(),
        }
    }
    let total = whole
        .checked_mul(1_000_000_000)
        .and_then(|w| w.checked_add(nanos))
        .ok_or(TimeError::OutOfRange)?;
    let total = if negative { -total } else { total };
    i64::try_from(total).map_err(|_| TimeError::OutOfRange)
}

fn has_offset(text: &str) -> bool {
    text.ends_with(['Z', 'z']) || text.get(10..).is_some_and(|t| t.contains(['+', '-']))
}

/// `None` if `text` is no ISO-8601 time, `Some(Err)` if it is one out of range.
fn parse_iso(text: &str) -> Option<Result<i64, TimeError>> {
    let ts: Timestamp = if has_offset(text) {
        text.parse().ok()?
    } else {
        let dt: DateTime = text.parse().ok()?;
        Offset::UTC.to_timestamp(dt).ok()?
    };
    Some(i64::try_from(ts.as_nanosecond()).map_err(|_| TimeError::OutOfRange))
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
            assert_eq!(format.parse(text), Ok(want), "{name}");
        }
    }

    #[test]
    fn garbage_is_not_a_timestamp() {
        assert_eq!(TimeFormat::detect("yesterday"), None);
        let wrong = |f| Err(TimeError::WrongFormat(f));
        assert_eq!(
            TimeFormat::Iso.parse("2014-13-01 00:00:00"),
            wrong(TimeFormat::Iso)
        );
        assert_eq!(
            TimeFormat::Seconds.parse("12.5.1"),
            wrong(TimeFormat::FractionalSeconds)
        );
        assert_eq!(TimeFormat::Iso.parse("1735689600"), wrong(TimeFormat::Iso));
        assert_eq!(
            TimeFormat::Millis.parse("1735689600.5"),
            wrong(TimeFormat::Millis)
        );
    }

    #[test]
    fn fractional_seconds_are_exact_to_the_nanosecond() {
        let cases = [
            ("three quarters", "1735689600.75", 1_735_689_600_750_000_000),
            (
                "nine digits",
                "1735689600.123456789",
                1_735_689_600_123_456_789,
            ),
            (
                "tenth digit rounds",
                "1735689600.0000000015",
                1_735_689_600_000_000_002,
            ),
            ("no whole part", ".5", 500_000_000),
            ("negative", "-1.25", -1_250_000_000),
            ("exponent", "1.5e3", 1_500_000_000_000),
        ];
        for (name, text, want) in cases {
            assert_eq!(
                TimeFormat::FractionalSeconds.parse(text),
                Ok(want),
                "{name}"
            );
            // A seconds column (integer first row) takes a fraction later on.
            assert_eq!(
                TimeFormat::Seconds.parse(text),
                Ok(want),
                "{name} in a seconds column"
            );
        }
    }

    #[test]
    fn valid_times_past_what_nanoseconds_hold_are_out_of_range() {
        for (name, format, text) in [
            ("ISO before 1677", TimeFormat::Iso, "1500-01-01T00:00:00Z"),
            ("ISO after 2262", TimeFormat::Iso, "2300-01-01 00:00:00"),
            (
                "ISO in an epoch column",
                TimeFormat::Seconds,
                "2300-01-01T00:00:00Z",
            ),
            ("seconds", TimeFormat::Seconds, "99999999999"),
            (
                "fractional seconds",
                TimeFormat::FractionalSeconds,
                "99999999999.5",
            ),
        ] {
            assert_eq!(format.parse(text), Err(TimeError::OutOfRange), "{name}");
        }
        assert_eq!(
            TimeFormat::detect("2300-01-01T00:00:00Z"),
            Some(TimeFormat::Iso)
        );
        // An ISO row in an epoch column is read as what it is.
        assert_eq!(
            TimeFormat::Seconds.parse("1970-01-01T00:00:01Z"),
            Ok(1_000_000_000)
        );
    }

    #[test]
    fn formats_back_as_rfc3339() {
        assert_eq!(
            format_rfc3339(1_396_310_700_000_000_000),
            "2014-04-01T00:05:00Z"
        );
    }
}
