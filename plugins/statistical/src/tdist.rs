//! Upper quantiles of Student's t, accurate to the last few bits: the critical values of
//! Grubbs' and Rosner's tests come from here.

use statrs::distribution::{Continuous, ContinuousCDF, StudentsT};

/// The `t` with `P(T > t) = q` for `df` degrees of freedom.
///
/// statrs inverts the regularised incomplete beta function to a few ulps short of full
/// precision; two Newton steps on the survival function (computed directly, not as
/// `1 − cdf`, so tiny `q` keep their digits) bring it to within rounding of the exact value.
pub(crate) fn upper_quantile(q: f64, df: f64) -> f64 {
    let dist = StudentsT::new(0.0, 1.0, df).expect("df > 0");
    let mut t = dist.inverse_cdf(1.0 - q);
    for _ in 0..3 {
        let step = (dist.sf(t) - q) / dist.pdf(t);
        if !step.is_finite() {
            break;
        }
        t += step;
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_scipy() {
        // scipy.stats.t.isf(q, df), scipy 1.17
        let cases = [
            (0.025, 1.0, 12.706204736174705),
            (0.025, 10.0, 2.2281388519862753),
            (0.05 / 200.0, 98.0, 3.600812169635367),
            (1e-6, 5.0, 24.771029720515948),
        ];
        for (q, df, want) in cases {
            let got = upper_quantile(q, df);
            assert!(
                ((got - want) / want).abs() < 1e-12,
                "q={q} df={df}: {got} vs {want}"
            );
        }
    }
}
