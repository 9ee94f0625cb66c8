//! Columnar input borrowed from the engine: a batch ([`Frame`]) or one event ([`Event`]).
//!
//! Timestamps are `i64` nanoseconds since the Unix epoch (UTC). A detector reads the
//! columns the rule bound to it, in the order the rule named them; names are there for
//! messages and for detectors that look columns up by role.

use abi_stable::{
    std_types::{RSlice, RStr, RString, RVec},
    StableAbi,
};

/// Why a frame could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// A column's length differs from the timestamps'.
    #[error("column `{name}` has {found} rows, the timestamps have {expected}")]
    LengthMismatch {
        /// The column.
        name: String,
        /// Rows in the timestamps.
        expected: usize,
        /// Rows in the column.
        found: usize,
    },
    /// A categorical code points past the dictionary.
    #[error("column `{name}` has code {code} at row {row}, but its dictionary holds {len} labels")]
    CodeOutOfRange {
        /// The column.
        name: String,
        /// The offending row.
        row: usize,
        /// The offending code.
        code: u32,
        /// Labels in the dictionary.
        len: usize,
    },
}

/// Labels of a categorical column (exchange, side, account...), owned by the engine.
#[derive(Debug, Default)]
pub struct Dictionary {
    labels: RVec<RString>,
    views: Vec<RStr<'static>>,
}

impl Dictionary {
    /// A dictionary of `labels`; code `i` means `labels[i]`.
    pub fn new<I: IntoIterator<Item = S>, S: Into<String>>(labels: I) -> Self {
        let labels: RVec<RString> = labels
            .into_iter()
            .map(|s| RString::from(s.into()))
            .collect();
        // SAFETY: the views point into the `RString` heap buffers, which never move or
        // change while `labels` is alive, and `views` never outlives `labels` (both are
        // private fields of `self`, and views are only handed out borrowed from `self`).
        let views = labels
            .iter()
            .map(|s| unsafe { std::mem::transmute::<RStr<'_>, RStr<'static>>(s.as_rstr()) })
            .collect();
        Dictionary { labels, views }
    }

    /// Number of labels.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there are no labels.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    fn views(&self) -> &[RStr<'_>] {
        &self.views
    }
}

impl Clone for Dictionary {
    // Not derived: the views must point into the clone's own strings.
    fn clone(&self) -> Self {
        Dictionary::new(self.labels.iter().map(|s| s.as_str()))
    }
}

#[repr(C, u8)]
#[derive(Debug, Clone, Copy, StableAbi)]
enum ColumnData<'a> {
    F64(RSlice<'a, f64>),
    Categorical {
        codes: RSlice<'a, u32>,
        dictionary: RSlice<'a, RStr<'a>>,
    },
}

/// One named column of a [`Frame`]: numbers, or categorical codes with their labels.
#[repr(C)]
#[derive(Debug, Clone, Copy, StableAbi)]
pub struct Column<'a> {
    name: RStr<'a>,
    data: ColumnData<'a>,
}

impl<'a> Column<'a> {
    /// A numeric column. Missing values are `NaN`.
    pub fn f64(name: &'a str, values: &'a [f64]) -> Self {
        Column {
            name: name.into(),
            data: ColumnData::F64(values.into()),
        }
    }

    /// A categorical column: `codes[i]` indexes `dictionary`.
    ///
    /// # Errors
    ///
    /// [`FrameError::CodeOutOfRange`] if a code points past the dictionary.
    pub fn categorical(
        name: &'a str,
        codes: &'a [u32],
        dictionary: &'a Dictionary,
    ) -> Result<Self, FrameError> {
        let len = dictionary.len();
        if let Some((row, &code)) = codes.iter().enumerate().find(|(_, &c)| c as usize >= len) {
            return Err(FrameError::CodeOutOfRange {
                name: name.to_owned(),
                row,
                code,
                len,
            });
        }
        Ok(Column {
            name: name.into(),
            data: ColumnData::Categorical {
                codes: codes.into(),
                dictionary: dictionary.views().into(),
            },
        })
    }

    /// The column's name (the field or feature the rule bound).
    pub fn name(&self) -> &'a str {
        self.name.as_str()
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        match self.data {
            ColumnData::F64(v) => v.len(),
            ColumnData::Categorical { codes, .. } => codes.len(),
        }
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The values of a numeric column, `None` for a categorical one.
    pub fn as_f64(&self) -> Option<&'a [f64]> {
        match self.data {
            ColumnData::F64(v) => Some(v.as_slice()),
            ColumnData::Categorical { .. } => None,
        }
    }

    /// The label of row `i` of a categorical column, `None` for a numeric column.
    ///
    /// # Panics
    ///
    /// If `i` is out of bounds.
    pub fn label(&self, i: usize) -> Option<&'a str> {
        match self.data {
            ColumnData::F64(_) => None,
            ColumnData::Categorical { codes, dictionary } => {
                Some(dictionary[codes[i] as usize].as_str())
            }
        }
    }

    /// The codes of a categorical column (stable within one dictionary).
    pub fn codes(&self) -> Option<&'a [u32]> {
        match self.data {
            ColumnData::F64(_) => None,
            ColumnData::Categorical { codes, .. } => Some(codes.as_slice()),
        }
    }
}

/// A batch of points: timestamps and the input columns, borrowed without copying.
#[repr(C)]
#[derive(Debug, Clone, Copy, StableAbi)]
pub struct Frame<'a> {
    timestamps: RSlice<'a, i64>,
    columns: RSlice<'a, Column<'a>>,
}

impl<'a> Frame<'a> {
    /// A frame over `timestamps` (ns since the epoch) and `columns` of the same length.
    ///
    /// # Errors
    ///
    /// [`FrameError::LengthMismatch`] if a column's length differs from the timestamps'.
    pub fn new(timestamps: &'a [i64], columns: &'a [Column<'a>]) -> Result<Self, FrameError> {
        for c in columns {
            if c.len() != timestamps.len() {
                return Err(FrameError::LengthMismatch {
                    name: c.name().to_owned(),
                    expected: timestamps.len(),
                    found: c.len(),
                });
            }
        }
        Ok(Frame {
            timestamps: timestamps.into(),
            columns: columns.into(),
        })
    }

    /// Number of points.
    pub fn len(&self) -> usize {
        self.timestamps.len()
    }

    /// Whether there are no points.
    pub fn is_empty(&self) -> bool {
        self.timestamps.is_empty()
    }

    /// Timestamps, nanoseconds since the Unix epoch, non-decreasing.
    pub fn timestamps(&self) -> &'a [i64] {
        self.timestamps.as_slice()
    }

    /// The input columns, in the order the rule bound them.
    pub fn columns(&self) -> &'a [Column<'a>] {
        self.columns.as_slice()
    }

    /// The values of numeric input `i`.
    ///
    /// # Errors
    ///
    /// An [`InvalidInput`](crate::ErrorKind::InvalidInput) error if there is no input `i`
    /// or it is not numeric.
    pub fn f64(&self, i: usize) -> Result<&'a [f64], crate::DetectorError> {
        let column = self.columns.as_slice().get(i).ok_or_else(|| {
            crate::DetectorError::invalid_input(format!(
                "expected at least {} input columns, got {}",
                i + 1,
                self.columns.len()
            ))
        })?;
        column.as_f64().ok_or_else(|| {
            crate::DetectorError::invalid_input(format!("input `{}` is not numeric", column.name()))
        })
    }
}

/// One streaming event: a timestamp and the numeric (and categorical) inputs of one row.
#[repr(C)]
#[derive(Debug, Clone, Copy, StableAbi)]
pub struct Event<'a> {
    timestamp: i64,
    values: RSlice<'a, f64>,
    labels: RSlice<'a, RStr<'a>>,
}

impl<'a> Event<'a> {
    /// An event with numeric inputs only, in the order the rule bound them.
    pub fn new(timestamp: i64, values: &'a [f64]) -> Self {
        Event {
            timestamp,
            values: values.into(),
            labels: RSlice::EMPTY,
        }
    }

    /// Timestamp, nanoseconds since the Unix epoch.
    pub fn timestamp(&self) -> i64 {
        self.timestamp
    }

    /// The numeric inputs.
    pub fn values(&self) -> &'a [f64] {
        self.values.as_slice()
    }

    /// Numeric input `i`.
    ///
    /// # Errors
    ///
    /// An [`InvalidInput`](crate::ErrorKind::InvalidInput) error if there is no input `i`.
    pub fn value(&self, i: usize) -> Result<f64, crate::DetectorError> {
        self.values.as_slice().get(i).copied().ok_or_else(|| {
            crate::DetectorError::invalid_input(format!(
                "expected at least {} input values, got {}",
                i + 1,
                self.values.len()
            ))
        })
    }

    /// The categorical inputs' labels, in the order the rule bound them.
    pub fn labels(&self) -> impl Iterator<Item = &'a str> + 'a {
        self.labels.as_slice().iter().map(|s| s.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_rejects_a_column_of_another_length() {
        let ts = [1, 2, 3];
        let v = [1.0, 2.0];
        let cols = [Column::f64("close", &v)];
        let err = Frame::new(&ts, &cols).unwrap_err();
        assert_eq!(
            err.to_string(),
            "column `close` has 2 rows, the timestamps have 3"
        );
    }

    #[test]
    fn categorical_columns_resolve_labels_and_reject_bad_codes() {
        let dict = Dictionary::new(["buy", "sell"]);
        let codes = [0, 1, 1];
        let col = Column::categorical("side", &codes, &dict).unwrap();
        assert_eq!(col.label(1), Some("sell"));
        assert_eq!(col.as_f64(), None);
        let bad = [0, 2];
        let err = Column::categorical("side", &bad, &dict).unwrap_err();
        assert!(
            matches!(
                err,
                FrameError::CodeOutOfRange {
                    row: 1,
                    code: 2,
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn frame_reports_missing_and_non_numeric_inputs() {
        let ts = [1];
        let dict = Dictionary::new(["a"]);
        let codes = [0];
        let cols = [Column::categorical("side", &codes, &dict).unwrap()];
        let frame = Frame::new(&ts, &cols).unwrap();
        assert_eq!(
            frame.f64(0).unwrap_err().message(),
            "input `side` is not numeric"
        );
        assert_eq!(
            frame.f64(1).unwrap_err().message(),
            "expected at least 2 input columns, got 1"
        );
    }
}
