//! The generalised Pareto distribution of excesses over a threshold, fitted by maximum
//! likelihood with Grimshaw's (1993) reduction to one equation, as SPOT does.

/// A fitted GPD: shape γ and scale σ of the excesses `y > 0`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Gpd {
    pub(crate) shape: f64,
    pub(crate) scale: f64,
}

impl Gpd {
    /// P(Y > y) for an excess y ≥ 0.
    pub(crate) fn survival(&self, y: f64) -> f64 {
        if self.shape == 0.0 {
            (-y / self.scale).exp()
        } else {
            let base = 1.0 + self.shape * y / self.scale;
            if base <= 0.0 {
                0.0
            } else {
                base.powf(-1.0 / self.shape)
            }
        }
    }

    /// The excess exceeded with probability `p` (0 < p ≤ 1).
    pub(crate) fn quantile(&self, p: f64) -> f64 {
        if self.shape == 0.0 {
            -self.scale * p.ln()
        } else {
            self.scale / self.shape * (p.powf(-self.shape) - 1.0)
        }
    }

    fn log_likelihood(&self, y: &[f64]) -> f64 {
        let n = y.len() as f64;
        if self.scale <= 0.0 || !self.scale.is_finite() {
            return f64::NEG_INFINITY;
        }
        if self.shape == 0.0 {
            return -n * self.scale.ln() - y.iter().sum::<f64>() / self.scale;
        }
        let mut sum = 0.0;
        for &v in y {
            let base = 1.0 + self.shape * v / self.scale;
            if base <= 0.0 {
                return f64::NEG_INFINITY;
            }
            sum += base.ln();
        }
        -n * self.scale.ln() - (1.0 + 1.0 / self.shape) * sum
    }

    /// The maximum-likelihood fit to excesses `y` (all > 0; at least one).
    ///
    /// Grimshaw: at a stationary point of the likelihood, x = γ/σ solves
    /// u(x)·v(x) = 1 with u = mean 1/(1 + x·y) and v = 1 + mean ln(1 + x·y), and then
    /// γ = v(x) − 1, σ = γ/x. Roots are bracketed on a grid and refined by bisection; the exponential (γ = 0, σ = mean) is always a candidate, and
    /// the candidate of highest likelihood wins.
    ///
    /// With `near` (the previous fit, for a refit after a few more peaks) a root is looked
    /// for first in a bracket of ±30 % around its x, refined the same way; the full scan
    /// runs only when that bracket holds no root.
    pub(crate) fn fit(y: &[f64], near: Option<Gpd>) -> Gpd {
        let n = y.len() as f64;
        let (mut lo, mut hi, mut sum) = (f64::INFINITY, 0.0f64, 0.0);
        for &v in y {
            lo = lo.min(v);
            hi = hi.max(v);
            sum += v;
        }
        let mean = sum / n;
        let mut best = Gpd {
            shape: 0.0,
            scale: mean.max(f64::MIN_POSITIVE),
        };
        if y.len() < 2 || hi <= lo || mean <= 0.0 {
            return best;
        }
        let w = |x: f64| {
            let (mut u, mut v) = (0.0, 0.0);
            for &yi in y {
                let s = 1.0 + x * yi;
                u += 1.0 / s;
                v += s.ln();
            }
            (u / n) * (1.0 + v / n) - 1.0
        };
        // x = γ/σ lies in (−1/max, 0) for γ < 0 and in (0, ∞) for γ > 0 (x = 0 is the
        // trivial root). Each side is scanned on a geometric grid, so both a root close to
        // 0 and one close to the pole −1/max are bracketed.
        const GRID: usize = 24;
        let negative = (0..=GRID).map(|k| -(1.0 - 1e-9f64.powf(k as f64 / GRID as f64)) / hi);
        let positive = (0..=GRID).map(|k| 1e-6 * 1e12f64.powf(k as f64 / GRID as f64) / mean);
        let mut best_ll = best.log_likelihood(y);
        let candidate = |root: f64| {
            let shape = y.iter().map(|&yi| (1.0 + root * yi).ln()).sum::<f64>() / n;
            Gpd {
                shape,
                scale: shape / root,
            }
        };
        if let Some(x0) = near.filter(|g| g.shape != 0.0).map(|g| g.shape / g.scale) {
            let (a, b) = (x0 * 0.7, (x0 * 1.3).max(-(1.0 - 1e-9) / hi));
            let (a, b) = if a < b { (a, b) } else { (b, a) };
            let (wa, wb) = (w(a), w(b));
            if wa.is_finite() && wb.is_finite() && (wa <= 0.0) != (wb <= 0.0) {
                let found = candidate(illinois(&w, (a, wa), (b, wb)));
                if found.log_likelihood(y) > best_ll {
                    return found;
                }
                return best;
            }
        }
        for side in [negative.collect::<Vec<_>>(), positive.collect::<Vec<_>>()] {
            let mut prev: Option<(f64, f64)> = None;
            for &x in &side {
                let wx = w(x);
                if let Some((px, pw)) = prev {
                    if pw.is_finite() && wx.is_finite() && (pw <= 0.0) != (wx <= 0.0) {
                        let found = candidate(illinois(&w, (px, pw), (x, wx)));
                        let ll = found.log_likelihood(y);
                        if ll > best_ll {
                            best_ll = ll;
                            best = found;
                        }
                    }
                }
                prev = Some((x, wx));
            }
        }
        best
    }
}

/// The root of `f` in a bracket `(a, f(a))`, `(b, f(b))` of opposite signs, by regula
/// falsi with the Illinois modification (superlinear; a few evaluations per root).
fn illinois(
    f: &impl Fn(f64) -> f64,
    (mut a, mut fa): (f64, f64),
    (mut b, mut fb): (f64, f64),
) -> f64 {
    let mut side = 0;
    for _ in 0..100 {
        let c = (a * fb - b * fa) / (fb - fa);
        if !c.is_finite() || (b - a).abs() <= 1e-12 * c.abs().max(1e-300) {
            return if c.is_finite() { c } else { 0.5 * (a + b) };
        }
        let fc = f(c);
        if fc == 0.0 {
            return c;
        }
        if (fc < 0.0) == (fb < 0.0) {
            b = c;
            fb = fc;
            if side == -1 {
                fa *= 0.5;
            }
            side = -1;
        } else {
            a = c;
            fa = fc;
            if side == 1 {
                fb *= 0.5;
            }
            side = 1;
        }
    }
    0.5 * (a + b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    fn sample(shape: f64, scale: f64, n: usize) -> Vec<f64> {
        let mut rng = rand_pcg::Pcg64::seed_from_u64(3);
        let g = Gpd { shape, scale };
        (0..n)
            .map(|_| g.quantile(rng.gen::<f64>().max(1e-300)))
            .collect()
    }

    #[test]
    fn recovers_the_parameters_of_a_large_sample() {
        for (shape, scale) in [(0.3, 2.0), (-0.2, 1.0), (0.0, 1.5)] {
            let fit = Gpd::fit(&sample(shape, scale, 20_000), None);
            assert!((fit.shape - shape).abs() < 0.03, "{shape}: {fit:?}");
            assert!((fit.scale / scale - 1.0).abs() < 0.04, "{scale}: {fit:?}");
        }
    }

    #[test]
    fn the_fit_is_a_stationary_point_of_the_likelihood() {
        let y = sample(0.25, 1.0, 500);
        let fit = Gpd::fit(&y, None);
        let ll = fit.log_likelihood(&y);
        for (ds, dg) in [(1e-3, 0.0), (-1e-3, 0.0), (0.0, 1e-3), (0.0, -1e-3)] {
            let near = Gpd {
                shape: fit.shape + dg,
                scale: fit.scale * (1.0 + ds),
            };
            assert!(near.log_likelihood(&y) <= ll + 1e-9);
        }
    }

    #[test]
    fn a_warm_start_finds_the_same_fit() {
        let y = sample(0.2, 1.5, 3000);
        let cold = Gpd::fit(&y, None);
        let warm = Gpd::fit(
            &y,
            Some(Gpd {
                shape: 0.17,
                scale: 1.4,
            }),
        );
        assert!((cold.shape - warm.shape).abs() < 1e-9 && (cold.scale - warm.scale).abs() < 1e-9);
    }

    #[test]
    fn quantile_inverts_survival() {
        for g in [
            Gpd {
                shape: 0.4,
                scale: 2.0,
            },
            Gpd {
                shape: -0.3,
                scale: 1.0,
            },
            Gpd {
                shape: 0.0,
                scale: 3.0,
            },
        ] {
            for p in [0.5, 1e-2, 1e-4] {
                assert!(
                    (g.survival(g.quantile(p)) / p - 1.0).abs() < 1e-9,
                    "{g:?} {p}"
                );
            }
        }
    }
}
