//! [`Side`]: the choice, shared by many detectors, of which deviations count.

crate::param_choice! {
    /// Which deviations from a centre count as anomalous (`side = both | upper | lower`).
    pub enum Side {
        /// Both tails: spikes and drops, rises and falls.
        Both = "both",
        /// Only values above the centre (spikes, pumps, upward shifts).
        Upper = "upper",
        /// Only values below the centre (drops, crashes, downward shifts).
        Lower = "lower",
    }
}

impl Side {
    /// The raw score of a signed deviation: its size on the tails that count, else 0.
    #[inline]
    pub fn apply(self, signed: f64) -> f64 {
        match self {
            Side::Both => signed.abs(),
            Side::Upper => signed.max(0.0),
            Side::Lower => (-signed).max(0.0),
        }
    }

    /// The larger of an upward and a downward statistic (both ≥ 0), as far as they count.
    #[inline]
    pub fn pick(self, up: f64, down: f64) -> f64 {
        match self {
            Side::Both => up.max(down),
            Side::Upper => up,
            Side::Lower => down,
        }
    }
}

/// The signed deviation `(x − centre) / scale` that [`Side::apply`] scores; a zero scale
/// gives 0 for `x = centre` and ±inf otherwise (a constant window makes any move
/// infinitely unusual, and no move none).
#[inline]
pub fn standardise(x: f64, centre: f64, scale: f64) -> f64 {
    let d = x - centre;
    if scale > 0.0 {
        d / scale
    } else if d == 0.0 {
        0.0
    } else {
        d.signum() * f64::INFINITY
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_zero_scale_gives_zero_or_infinity() {
        assert_eq!(standardise(3.0, 1.0, 2.0), 1.0);
        assert_eq!(standardise(1.0, 1.0, 0.0), 0.0);
        assert_eq!(standardise(0.5, 1.0, 0.0), f64::NEG_INFINITY);
        assert_eq!(standardise(2.0, 1.0, 0.0), f64::INFINITY);
    }

    #[test]
    fn each_side_keeps_its_tail() {
        assert_eq!(Side::Both.apply(-2.0), 2.0);
        assert_eq!(Side::Upper.apply(-2.0), 0.0);
        assert_eq!(Side::Lower.apply(-2.0), 2.0);
        assert_eq!(Side::Upper.pick(1.0, 3.0), 1.0);
        assert_eq!(Side::Both.pick(1.0, 3.0), 3.0);
    }
}
