//! Upper quantiles of Student's t, accurate to the last few bits: the critical values of
//! Grubbs' and Rosner's tests come from here.

use statrs::distribution::{Continuous, ContinuousCDF, StudentsT};

/// The `t` with `P(T > t) = q` for `df` degrees of freedom; `+inf` for `q ≤ 0`.
///
/// Newton steps on `ln P(T > t)` against `ln t` (in the tails `P(T > t)` falls as a power
/// of `t`, so that function is nearly a straight line and the steps converge from any
/// start), from statrs' inverse of the lower tail (no `1 − q` cancellation) or, where `q`
/// is too small for it, from the tail's power law. The survival function is computed
/// directly, so `q` down to 1e-300 keeps its digits: the critical values of Grubbs' and
/// Rosner's tests are exact across the whole range of `alpha` (checked against scipy).
pub(crate) fn upper_quantile(q: f64, df: f64) -> f64 {
    if q <= 0.0 {
        return f64::INFINITY;
    }
    if q >= 0.5 {
        // Only the upper half is ever asked for; the median and below need no tail care.
        let dist = StudentsT::new(0.0, 1.0, df).expect("df > 0");
        return dist.inverse_cdf(1.0 - q);
    }
    let dist = StudentsT::new(0.0, 1.0, df).expect("df > 0");
    // statrs' inverse panics inside its incomplete beta for tiny `q`: it is only a start.
    let lower = if q > 1e-12 {
        -dist.inverse_cdf(q)
    } else {
        f64::NAN
    };
    let mut t = if lower.is_finite() && lower > 0.0 {
        lower
    } else {
        tail_start(q, df)
    };
    let target = q.ln();
    let tail = Tail::new(df);
    for _ in 0..200 {
        let (ln_sf, ln_pdf) = tail.ln_sf_pdf(&dist, t);
        if ln_sf == f64::NEG_INFINITY && t > 1.0 {
            // past where the tail underflows: far too far out
            t = t.sqrt();
            continue;
        }
        // d ln sf / d ln t = −t·pdf/sf
        let step = (ln_sf - target) * (ln_sf - ln_pdf).exp() / t;
        if !step.is_finite() {
            break;
        }
        t *= step.exp();
        if step.abs() < 1e-15 {
            break;
        }
    }
    t
}

/// Student's tail far out, where `t²` leaves f64: `pdf ≈ K·t^(−ν−1)` and
/// `P(T > t) ≈ K/ν · t^(−ν)`, exact to f64 once `t > 1e100` (the next term is `O(ν/t²)`).
#[derive(Debug, Clone, Copy)]
struct Tail {
    df: f64,
    /// `ln K`, `K = Γ((ν+1)/2) / (√(νπ) Γ(ν/2)) · ν^((ν+1)/2)`.
    ln_k: f64,
}

impl Tail {
    fn new(df: f64) -> Tail {
        use statrs::function::gamma::ln_gamma;
        let ln_k = ln_gamma((df + 1.0) / 2.0)
            - ln_gamma(df / 2.0)
            - 0.5 * (df * std::f64::consts::PI).ln()
            + (df + 1.0) / 2.0 * df.ln();
        Tail { df, ln_k }
    }

    /// `ln P(T > t)` and `ln pdf(t)`, for `t > 0`.
    fn ln_sf_pdf(&self, dist: &StudentsT, t: f64) -> (f64, f64) {
        if t > 1e100 {
            let ln_t = t.ln();
            let ln_pdf = self.ln_k - (self.df + 1.0) * ln_t;
            (ln_pdf + ln_t - self.df.ln(), ln_pdf)
        } else {
            (dist.sf(t).ln(), dist.ln_pdf(t))
        }
    }

    /// Where the power law puts the quantile of `q`.
    fn power_law_quantile(&self, q: f64) -> f64 {
        ((self.ln_k - self.df.ln() - q.ln()) / self.df).exp()
    }
}

/// A start below the quantile: the nearer of where the tail's power law puts it,
/// `P(T > t) ≈ K/ν · t^(−ν)` with `K = Γ((ν+1)/2) / (√(νπ) Γ(ν/2)) · ν^((ν+1)/2)` (right for
/// few degrees of freedom), and where the normal tail does, `√(−2 ln q)` (right for many;
/// Student's tail is heavier, so this is below).
fn tail_start(q: f64, df: f64) -> f64 {
    let power_law = Tail::new(df).power_law_quantile(q);
    power_law.min((-2.0 * q.ln()).sqrt()).max(1.0)
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
            // the tails, where `1 − q` is 1 in f64
            (1e-10, 98.0, 7.099503498785881),
            (1e-16, 98.0, 9.8994915921098),
            (1e-100, 98.0, 99.92603035304012),
            (5e-303, 98.0, 11643.252137776359),
            (1e-300, 1.0, 3.183098861837907e+299),
            (1e-17, 3.0, 479527.5720444198),
            (1e-300, 2.0, 7.071067811865475e+149),
            (1e-200, 50000.0, 30.344066914185902),
            (0.25, 10.0, 0.6998120613124317),
        ];
        for (q, df, want) in cases {
            let got = upper_quantile(q, df);
            assert!(
                ((got - want) / want).abs() < 1e-11,
                "q={q} df={df}: {got} vs {want}"
            );
        }
    }
}
