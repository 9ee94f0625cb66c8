//! The Rust types a parameter can have, and the trait of a parameter struct.

use super::{Bound, ParamError, ParamKind, ParamSpec, ParamValue, Resolved};

/// The largest count a [`Window`] may hold: 10 million points.
///
/// A window grows with the points it holds, so a larger count costs nothing until the
/// data arrives; but a stream runs for ever, and a rule that asks for more points than a
/// key's state can afford must be refused when it is checked, not when memory runs out
/// days later. At 16 bytes a point (time and value) this is 160 MB per key and detector.
pub const MAX_WINDOW_COUNT: usize = 10_000_000;

/// A Rust type a parameter can have.
pub trait ParamType: Sized {
    /// Its kind in the schema.
    const KIND: ParamKind;
    /// The allowed words, for [`ParamKind::Choice`].
    fn choices() -> &'static [&'static str] {
        &[]
    }
    /// The range every value of the type must fall in, stated in the schema even where a
    /// declaration gives none: an unsigned count is never negative. A declared bound only
    /// narrows it.
    fn range() -> (Option<Bound>, Option<Bound>) {
        (None, None)
    }
    /// Its value for the schema.
    fn to_value(&self) -> ParamValue;
    /// Converts a checked value; `None` if the value is of another kind.
    fn from_value(value: &ParamValue) -> Option<Self>;
}

impl ParamType for f64 {
    const KIND: ParamKind = ParamKind::Float;
    fn to_value(&self) -> ParamValue {
        ParamValue::Float(*self)
    }
    fn from_value(value: &ParamValue) -> Option<Self> {
        value.as_f64()
    }
}

impl ParamType for bool {
    const KIND: ParamKind = ParamKind::Bool;
    fn to_value(&self) -> ParamValue {
        ParamValue::Bool(*self)
    }
    fn from_value(value: &ParamValue) -> Option<Self> {
        match value {
            ParamValue::Bool(v) => Some(*v),
            _ => None,
        }
    }
}

macro_rules! int_param_type {
    ($($t:ty),*) => {$(
        impl ParamType for $t {
            const KIND: ParamKind = ParamKind::Int;
            fn range() -> (Option<Bound>, Option<Bound>) {
                // A parameter value is an i64: the type's range within it.
                let lo = (<$t>::MIN as i128).max(i64::MIN as i128);
                let hi = (<$t>::MAX as i128).min(i64::MAX as i128);
                let bound = |v: i128| Some(Bound { value: v as f64, inclusive: true });
                (
                    (lo > i64::MIN as i128).then(|| bound(lo)).flatten(),
                    (hi < i64::MAX as i128).then(|| bound(hi)).flatten(),
                )
            }
            fn to_value(&self) -> ParamValue {
                ParamValue::Int(*self as i64)
            }
            fn from_value(value: &ParamValue) -> Option<Self> {
                match value {
                    ParamValue::Int(v) => <$t>::try_from(*v).ok(),
                    _ => None,
                }
            }
        }
    )*};
}
int_param_type!(i64, u32, usize);

/// A duration parameter.
impl ParamType for std::time::Duration {
    const KIND: ParamKind = ParamKind::Duration;
    fn to_value(&self) -> ParamValue {
        ParamValue::Duration(self.as_nanos().min(i64::MAX as u128) as i64)
    }
    fn from_value(value: &ParamValue) -> Option<Self> {
        match value {
            ParamValue::Duration(ns) if *ns >= 0 => {
                Some(std::time::Duration::from_nanos(*ns as u64))
            }
            _ => None,
        }
    }
}

/// Which points a rolling detector compares a point with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Window {
    /// Every point of the batch being scored, at once (`window = batch` or `0`).
    Batch,
    /// The last `n` points.
    Count(usize),
    /// The points of the last span of event time, in nanoseconds (`window = 5m`).
    Time(i64),
}

impl ParamType for Window {
    const KIND: ParamKind = ParamKind::Window;
    fn range() -> (Option<Bound>, Option<Bound>) {
        let most = Bound {
            value: MAX_WINDOW_COUNT as f64,
            inclusive: true,
        };
        (None, Some(most))
    }
    fn to_value(&self) -> ParamValue {
        match *self {
            Window::Batch => ParamValue::Text("batch".into()),
            Window::Count(n) => ParamValue::Int(n as i64),
            Window::Time(ns) => ParamValue::Duration(ns),
        }
    }
    fn from_value(value: &ParamValue) -> Option<Self> {
        match value {
            ParamValue::Text(t) if t == "batch" => Some(Window::Batch),
            ParamValue::Int(0) => Some(Window::Batch),
            ParamValue::Int(n) if *n > 0 => Some(Window::Count(*n as usize)),
            ParamValue::Duration(ns) if *ns > 0 => Some(Window::Time(*ns)),
            _ => None,
        }
    }
}

/// A detector's parameter struct; implemented by [`params!`](crate::params!).
pub trait DetectorParams: Sized + Clone + Send + 'static {
    /// Every parameter's spec, in declaration order.
    fn schema() -> Vec<ParamSpec>;
    /// Builds the struct from values checked against [`schema`](Self::schema).
    ///
    /// # Errors
    ///
    /// A [`ParamError`] if a value does not convert.
    fn from_resolved(resolved: &Resolved) -> Result<Self, ParamError>;

    /// Checks `given` (name, value) pairs and builds the struct; reports every problem.
    ///
    /// # Errors
    ///
    /// Every [`ParamError`] found.
    fn from_pairs(given: &[(String, ParamValue)]) -> Result<Self, Vec<ParamError>> {
        let resolved = Resolved::resolve(&Self::schema(), given)?;
        Self::from_resolved(&resolved).map_err(|e| vec![e])
    }
}
