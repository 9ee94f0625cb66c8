//! `exp` and `ln` written for loops that the compiler vectorises: no branches (only
//! selects), no tables, no calls, so a loop over a slice becomes SIMD code. With them,
//! sums and extrema in [`LANES`] interleaved parts, in a fixed order.
//!
//! Why not libm: a call per element stops vectorisation, and detectors spend most of their
//! time in such loops (BOCPD's `exp` and `ln` per run length, the RBF kernel's `exp` per
//! pair of rows). No maintained crate offers accurate f64 SIMD `ln` on stable Rust
//! (`wide`'s reduces with an f32-precision ln 2; SLEEF's port needs nightly), so these
//! follow fdlibm's reductions.
//!
//! A loop vectorises where the compiler may use the CPU's vector registers: compile the
//! function that holds it for them (`#[target_feature(enable = "avx2")]` behind
//! `is_x86_feature_detected!`), or build for a CPU that has them.
//!
//! Only IEEE additions, multiplications, divisions and bit operations are used, without
//! fused multiply-adds, so the results are the same bits with and without SIMD and on
//! every x86-64 or other CPU. On the ranges the tests sample, both are within 1 ulp of
//! glibc's `exp` and `log` (which are themselves within 1 ulp of the exact value).

/// ln 2 in two parts: `LN2_HI` has its low 32 bits zero, so `k · LN2_HI` is exact for
/// |k| < 2²⁰ (fdlibm's split).
const LN2_HI: f64 = 0.693_147_180_369_123_8;
const LN2_LO: f64 = 1.908_214_929_270_587_7e-10;
/// 1.5 · 2⁵²: adding it rounds a number of magnitude below 2⁵¹ to an integer, which then
/// sits in the low bits of the sum's mantissa.
const ROUNDER: f64 = 6_755_399_441_055_744.0;
/// 2⁵² + 1023: subtracting it from the float whose low mantissa bits hold a biased
/// exponent e gives e − 1023.
const EXPONENT_BIAS: f64 = 4_503_599_627_370_496.0 + 1023.0;
const EXPONENT_AS_MANTISSA: u64 = 0x4330_0000_0000_0000;
const MANTISSA: u64 = 0x000f_ffff_ffff_ffff;
/// The bits of √½: reduced arguments of the logarithm lie in [√½, √2).
const SQRT_HALF_BITS: u64 = 0x3fe6_a09e_667f_3bcd;
const ONE_BITS: u64 = 0x3ff0_0000_0000_0000;

/// 1/2!, 1/3!, …, 1/13!.
const INVERSE_FACTORIALS: [f64; 12] = [
    1.0 / 2.0,
    1.0 / 6.0,
    1.0 / 24.0,
    1.0 / 120.0,
    1.0 / 720.0,
    1.0 / 5_040.0,
    1.0 / 40_320.0,
    1.0 / 362_880.0,
    1.0 / 3_628_800.0,
    1.0 / 39_916_800.0,
    1.0 / 479_001_600.0,
    1.0 / 6_227_020_800.0,
];

/// eˣ. Below −708 the result is 0 (results that would be subnormal are flushed), above
/// 709 it is +∞; NaN stays NaN.
#[inline(always)]
pub fn exp(x: f64) -> f64 {
    let clamped = x.clamp(-708.0, 709.0);
    // x = k·ln 2 + r, |r| ≤ ½ ln 2
    let shifted = clamped * std::f64::consts::LOG2_E + ROUNDER;
    let k = shifted - ROUNDER;
    let r = (clamped - k * LN2_HI) - k * LN2_LO;
    // eʳ − 1 − r by its Taylor series to r¹³ (the first term left out is below 2⁻⁵⁵ of 1),
    // in Estrin's scheme: a point's latency is what limits BOCPD, and this has a quarter
    // of Horner's
    let c = &INVERSE_FACTORIALS;
    let r2 = r * r;
    let r4 = r2 * r2;
    let r8 = r4 * r4;
    let p0 = c[0] + r * c[1];
    let p1 = c[2] + r * c[3];
    let p2 = c[4] + r * c[5];
    let p3 = c[6] + r * c[7];
    let p4 = c[8] + r * c[9];
    let p5 = c[10] + r * c[11];
    let (q0, q1, q2) = (p0 + r2 * p1, p2 + r2 * p3, p4 + r2 * p5);
    let series = (q0 + r4 * q1) + r8 * q2;
    let tail = r2 * series;
    let er = 1.0 + (r + tail);
    // 2ᵏ from k's bits in the low mantissa of `shifted` (−1022 ≤ k ≤ 1023 after the clamp)
    let two_k = f64::from_bits(shifted.to_bits().wrapping_add(1023) << 52);
    let y = er * two_k;
    if x < -708.0 {
        0.0
    } else if x > 709.0 {
        f64::INFINITY
    } else {
        y
    }
}

/// ln y for y in the normal floats, [`f64::MIN_POSITIVE`, `f64::MAX`]: callers clamp to
/// them (0, subnormals, infinities and NaN are not checked for, to keep the selects out
/// of the loop).
#[inline(always)]
pub fn ln(y: f64) -> f64 {
    // y = 2ᵏ·m with m in [√½, √2): shift the bits so that [√½, √2) starts an exponent
    let bits = y.to_bits().wrapping_add(ONE_BITS - SQRT_HALF_BITS);
    let k = f64::from_bits(EXPONENT_AS_MANTISSA | (bits >> 52)) - EXPONENT_BIAS;
    let m = f64::from_bits((bits & MANTISSA) + SQRT_HALF_BITS);
    let f = m - 1.0;
    let s = f / (m + 1.0);
    // ln m = f − (f²/2 − s(f²/2 + R(s²))), R from fdlibm's minimax fit (error below 2⁻⁵⁸)
    let z = s * s;
    let w = z * z;
    let odd = z
        * (0.666_666_666_666_673_5
            + w * (0.285_714_287_436_623_9
                + w * (0.181_835_721_616_180_5 + w * 0.147_981_986_051_165_86)));
    let even = w
        * (0.399_999_999_994_094_2 + w * (0.222_221_984_321_497_84 + w * 0.153_138_376_992_093_73));
    let half_f2 = 0.5 * f * f;
    k * LN2_HI + ((f - (half_f2 - s * (half_f2 + (odd + even)))) + k * LN2_LO)
}

/// Partial results kept by [`max`], [`min`] and [`sum`]: a whole AVX2 register of f64.
pub const LANES: usize = 4;

/// The largest of `values` (−∞ for none), in [`LANES`] interleaved partial maxima.
#[inline(always)]
pub fn max(values: &[f64]) -> f64 {
    max_by(values, |v| v)
}

#[inline(always)]
fn max_by(values: &[f64], key: impl Fn(f64) -> f64) -> f64 {
    let mut lanes = [f64::NEG_INFINITY; LANES];
    let chunks = values.chunks_exact(LANES);
    for (lane, &v) in lanes.iter_mut().zip(chunks.remainder()) {
        let v = key(v);
        *lane = if v > *lane { v } else { *lane };
    }
    for chunk in chunks {
        for (lane, &v) in lanes.iter_mut().zip(chunk) {
            let v = key(v);
            *lane = if v > *lane { v } else { *lane };
        }
    }
    lanes
        .into_iter()
        .fold(f64::NEG_INFINITY, |a, b| if b > a { b } else { a })
}

/// The smallest of `values` (+∞ for none), in [`LANES`] interleaved partial minima.
#[inline(always)]
pub fn min(values: &[f64]) -> f64 {
    -max_by(values, |v| -v)
}

/// The sum of `values` in [`LANES`] interleaved partial sums: a fixed order, so the same
/// bits however it is compiled.
#[inline(always)]
pub fn sum(values: &[f64]) -> f64 {
    let mut lanes = [0.0; LANES];
    let chunks = values.chunks_exact(LANES);
    for (lane, &v) in lanes.iter_mut().zip(chunks.remainder()) {
        *lane += v;
    }
    for chunk in chunks {
        for (lane, &v) in lanes.iter_mut().zip(chunk) {
            *lane += v;
        }
    }
    pairwise_sum(lanes)
}

/// The sum of the first `n` of `values`, which is whole registers long (a multiple of
/// [`LANES`], at least `n`): the rest are read and count for nothing, so the loop has no
/// scalar tail (whose partial stores a vector load cannot take from the store buffer,
/// a stall on a short loop's critical path). A fixed order, as [`sum`]'s.
#[inline(always)]
pub fn sum_first(values: &[f64], n: usize) -> f64 {
    pairwise_sum(fold_first(values, n, 0.0, |a, v| a + v))
}

/// The largest of the first `n` of `values` (−∞ for none), which is whole registers long,
/// as for [`sum_first`].
#[inline(always)]
pub fn max_first(values: &[f64], n: usize) -> f64 {
    let lanes = fold_first(
        values,
        n,
        f64::NEG_INFINITY,
        |a, v| if v > a { v } else { a },
    );
    lanes
        .into_iter()
        .fold(f64::NEG_INFINITY, |a, b| if b > a { b } else { a })
}

/// The smallest of the first `n` of `values` (+∞ for none), which is whole registers
/// long, as for [`sum_first`].
#[inline(always)]
pub fn min_first(values: &[f64], n: usize) -> f64 {
    let lanes = fold_first(values, n, f64::INFINITY, |a, v| if v < a { v } else { a });
    lanes
        .into_iter()
        .fold(f64::INFINITY, |a, b| if b < a { b } else { a })
}

/// Folds the first `n` of `values` into [`LANES`] partial results, element `i` into lane
/// `i % LANES`; the elements past `n` are replaced by `identity` (a select, not a branch).
#[inline(always)]
fn fold_first(
    values: &[f64],
    n: usize,
    identity: f64,
    op: impl Fn(f64, f64) -> f64,
) -> [f64; LANES] {
    debug_assert!(values.len().is_multiple_of(LANES) && n <= values.len());
    let mut lanes = [identity; LANES];
    for (c, chunk) in values.chunks_exact(LANES).enumerate() {
        for (l, (lane, &v)) in lanes.iter_mut().zip(chunk).enumerate() {
            let v = if c * LANES + l < n { v } else { identity };
            *lane = op(*lane, v);
        }
    }
    lanes
}

/// Lane i with lane i + width/2, halving the width to one.
#[inline(always)]
fn pairwise_sum(mut lanes: [f64; LANES]) -> f64 {
    let mut width = LANES;
    while width > 1 {
        width /= 2;
        for i in 0..width {
            lanes[i] += lanes[i + width];
        }
    }
    lanes[0]
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    /// Distance in units in the last place between two finite f64 of one sign.
    fn ulps(a: f64, b: f64) -> f64 {
        if a == b {
            return 0.0;
        }
        let spacing = f64::from_bits(b.abs().to_bits() + 1) - b.abs();
        (a - b).abs() / spacing
    }

    /// Asserts `ours` is within 1 ulp of `std` at every one of `values`.
    fn within_one_ulp(
        values: impl Iterator<Item = f64>,
        ours: fn(f64) -> f64,
        std: fn(f64) -> f64,
    ) {
        let (ulp, at) = values
            .map(|x| (ulps(ours(x), std(x)), x))
            .fold((0.0, f64::NAN), |a, b| if b.0 > a.0 { b } else { a });
        assert!(ulp <= 1.0, "{ulp} ulp at {at}");
    }

    /// 200 000 values of either sign with magnitudes spread over 1e-20 to 1.
    fn near_zero() -> impl Iterator<Item = f64> {
        let mut g = rand_pcg::Pcg64::seed_from_u64(7);
        (0..200_000).map(move |_| g.gen_range(-1.0..1.0) * 10f64.powf(g.gen_range(-20.0..0.0)))
    }

    /// 200 000 draws of `draw`.
    fn draws(draw: impl FnMut(&mut rand_pcg::Pcg64) -> f64) -> impl Iterator<Item = f64> {
        let mut g = rand_pcg::Pcg64::seed_from_u64(7);
        let mut draw = draw;
        (0..200_000).map(move |_| draw(&mut g))
    }

    #[test]
    fn exp_is_within_one_ulp() {
        within_one_ulp(draws(|g| g.gen_range(-708.0..709.0)), exp, f64::exp);
        within_one_ulp(near_zero(), exp, f64::exp);
        // the reduction's edges, where r is ±½ ln 2
        let edges = (-1000..1000).map(|k| (k as f64 + 0.5) * std::f64::consts::LN_2);
        within_one_ulp(
            edges.filter(|x| (-708.0..=709.0).contains(x)),
            exp,
            f64::exp,
        );
    }

    #[test]
    fn exp_edges() {
        assert_eq!(exp(0.0), 1.0);
        assert_eq!(exp(-0.0), 1.0);
        assert_eq!(exp(f64::NEG_INFINITY), 0.0);
        assert_eq!(exp(-708.5), 0.0);
        assert_eq!(exp(f64::INFINITY), f64::INFINITY);
        assert!(exp(f64::NAN).is_nan());
        assert!(ulps(exp(-708.0), (-708.0f64).exp()) <= 1.0);
        assert!(ulps(exp(709.0), 709.0f64.exp()) <= 1.0);
    }

    #[test]
    fn ln_is_within_one_ulp() {
        // the whole normal range, log-uniformly
        within_one_ulp(
            draws(|g| 2f64.powf(g.gen_range(-1022.0..1024.0))),
            ln,
            f64::ln,
        );
        // near 1, where ln is near 0 and cancellation would show
        within_one_ulp(near_zero().map(|u| 1.0 + u * 0.5), ln, f64::ln);
        // around the reduction's edges (y near √½·2ᵏ) and powers of two, and the ends
        let edges = (-1022..1024).flat_map(|k| {
            let at = std::f64::consts::FRAC_1_SQRT_2 * 2f64.powi(k);
            [at * (1.0 - 1e-15), at, at * (1.0 + 1e-15), 2f64.powi(k)]
        });
        let ends = [f64::MIN_POSITIVE, f64::MAX, 1.0, 2.0, 0.5];
        within_one_ulp(
            edges
                .chain(ends)
                .filter(|y| (f64::MIN_POSITIVE..=f64::MAX).contains(y)),
            ln,
            f64::ln,
        );
        assert_eq!(ln(1.0), 0.0);
    }

    #[test]
    fn reductions() {
        assert_eq!(max(&[]), f64::NEG_INFINITY);
        assert_eq!(min(&[]), f64::INFINITY);
        assert_eq!(sum(&[]), 0.0);
        for n in 1..12 {
            let v: Vec<f64> = (0..n).map(|i| ((i * 7) % 5) as f64 - 2.0).collect();
            assert_eq!(max(&v), v.iter().copied().fold(f64::NEG_INFINITY, f64::max));
            assert_eq!(min(&v), v.iter().copied().fold(f64::INFINITY, f64::min));
            assert_eq!(sum(&v), v.iter().sum::<f64>());
        }
        for n in 0..=12 {
            // whole registers, with what is past `n` far outside the first n's range
            let v: Vec<f64> = (0..12)
                .map(|i| {
                    if i < n {
                        ((i * 7) % 5) as f64 - 2.0
                    } else {
                        1e300 * (i % 2) as f64 - 5e299
                    }
                })
                .collect();
            let first = &v[..n];
            assert_eq!(
                max_first(&v, n),
                first.iter().copied().fold(f64::NEG_INFINITY, f64::max)
            );
            assert_eq!(
                min_first(&v, n),
                first.iter().copied().fold(f64::INFINITY, f64::min)
            );
            assert_eq!(sum_first(&v, n), first.iter().sum::<f64>());
        }
    }
}
