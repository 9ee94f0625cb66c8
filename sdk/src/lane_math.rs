//! `exp` and `ln` written for loops that the compiler vectorises: no branches (only
//! selects), no tables, no calls, so a loop over a slice becomes SIMD code. With them,
//! sums and extrema in [`LANES`] interleaved parts, in a fixed order; and the same
//! functions over explicit registers of four lanes ([`Quad`]), for kernels that
//! [`dispatch`] runs with the widest registers the CPU has.
//!
//! Why not libm: a call per element stops vectorisation, and detectors spend most of their
//! time in such loops (BOCPD's `exp` and `ln` per run length, the RBF kernel's `exp` per
//! pair of rows). No maintained crate offers accurate f64 SIMD `ln` on stable Rust
//! (`wide`'s reduces with an f32-precision ln 2; SLEEF's port needs nightly), so these
//! follow fdlibm's reductions.
//!
//! A loop vectorises where the compiler may use the CPU's vector registers: compile the
//! function that holds it for them (`#[target_feature(enable = "avx2")]` behind
//! `is_x86_feature_detected!`), or build for a CPU that has them. Where the compiler's
//! choices are not enough (a short loop, a chain of operations that several registers
//! should interleave), write the kernel once over [`Quad`] and run it with [`dispatch`].
//!
//! Only IEEE additions, multiplications, divisions and bit operations are used, without
//! fused multiply-adds, so the results are the same bits with and without SIMD and on
//! every x86-64 or other CPU. On the ranges the tests sample, both are within 1 ulp of
//! glibc's `exp` and `log` (which are themselves within 1 ulp of the exact value).

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::{
    __m256d, _mm256_add_epi64, _mm256_add_pd, _mm256_and_pd, _mm256_blendv_pd, _mm256_castpd_si256,
    _mm256_castsi256_pd, _mm256_cmp_pd, _mm256_div_pd, _mm256_i64gather_pd, _mm256_loadu_pd,
    _mm256_max_pd, _mm256_min_pd, _mm256_movemask_pd, _mm256_mul_pd, _mm256_or_pd,
    _mm256_set1_epi64x, _mm256_set1_pd, _mm256_slli_epi64, _mm256_srli_epi64, _mm256_storeu_pd,
    _mm256_sub_pd, _CMP_EQ_OQ, _CMP_GE_OQ, _CMP_GT_OQ, _CMP_LT_OQ,
};

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
    exp_lanes(x)
}

/// [`exp`] lane by lane: the same operations, so the same bits in every lane.
#[inline(always)]
pub fn exp_lanes<V: Lanes>(x: V) -> V {
    let c = V::splat;
    // clamped to [−708, 709], NaN kept (each `max`/`min` returns its second operand for it)
    let clamped = c(709.0).min(c(-708.0).max(x));
    // x = k·ln 2 + r, |r| ≤ ½ ln 2
    let shifted = clamped.mul(c(std::f64::consts::LOG2_E)).add(c(ROUNDER));
    let k = shifted.sub(c(ROUNDER));
    let r = clamped.sub(k.mul(c(LN2_HI))).sub(k.mul(c(LN2_LO)));
    // eʳ − 1 − r by its Taylor series to r¹³ (the first term left out is below 2⁻⁵⁵ of 1),
    // in Estrin's scheme: a point's latency is what limits BOCPD, and this has a quarter
    // of Horner's
    let f = &INVERSE_FACTORIALS;
    let r2 = r.mul(r);
    let r4 = r2.mul(r2);
    let r8 = r4.mul(r4);
    let pair = |i: usize| c(f[i]).add(r.mul(c(f[i + 1])));
    let (p0, p1, p2, p3, p4, p5) = (pair(0), pair(2), pair(4), pair(6), pair(8), pair(10));
    let (q0, q1, q2) = (p0.add(r2.mul(p1)), p2.add(r2.mul(p3)), p4.add(r2.mul(p5)));
    let series = q0.add(r4.mul(q1)).add(r8.mul(q2));
    let tail = r2.mul(series);
    let er = c(1.0).add(r.add(tail));
    // 2ᵏ from k's bits in the low mantissa of `shifted` (−1022 ≤ k ≤ 1023 after the clamp)
    let two_k = shifted.bits_add(1023).bits_shl::<52>();
    let y = er.mul(two_k);
    let y = x.select_lt(c(-708.0), c(0.0), y);
    x.select_gt(c(709.0), c(f64::INFINITY), y)
}

/// ln y for y in the normal floats, [`f64::MIN_POSITIVE`, `f64::MAX`]: callers clamp to
/// them (0, subnormals, infinities and NaN are not checked for, to keep the selects out
/// of the loop).
#[inline(always)]
pub fn ln(y: f64) -> f64 {
    ln_lanes(y)
}

/// [`ln`] lane by lane: the same operations, so the same bits in every lane.
#[inline(always)]
pub fn ln_lanes<V: Lanes>(y: V) -> V {
    let c = V::splat;
    // y = 2ᵏ·m with m in [√½, √2): shift the bits so that [√½, √2) starts an exponent
    let bits = y.bits_add(ONE_BITS - SQRT_HALF_BITS);
    let k = bits
        .bits_shr::<52>()
        .bits_or(EXPONENT_AS_MANTISSA)
        .sub(c(EXPONENT_BIAS));
    let m = bits.bits_and(MANTISSA).bits_add(SQRT_HALF_BITS);
    let f = m.sub(c(1.0));
    let s = f.div(m.add(c(1.0)));
    // ln m = f − (f²/2 − s(f²/2 + R(s²))), R from fdlibm's minimax fit (error below 2⁻⁵⁸)
    let z = s.mul(s);
    let w = z.mul(z);
    let odd = z.mul(
        c(0.666_666_666_666_673_5).add(
            w.mul(
                c(0.285_714_287_436_623_9)
                    .add(w.mul(c(0.181_835_721_616_180_5).add(w.mul(c(0.147_981_986_051_165_86))))),
            ),
        ),
    );
    let even = w.mul(
        c(0.399_999_999_994_094_2)
            .add(w.mul(c(0.222_221_984_321_497_84).add(w.mul(c(0.153_138_376_992_093_73))))),
    );
    let half_f2 = c(0.5).mul(f.mul(f));
    let fraction = f.sub(half_f2.sub(s.mul(half_f2.add(odd.add(even)))));
    k.mul(c(LN2_HI)).add(fraction.add(k.mul(c(LN2_LO))))
}

/// f64 lanes and the operations [`exp_lanes`] and [`ln_lanes`] are made of, each the IEEE
/// operation lane by lane, so every implementation gives the same bits: one lane (`f64`),
/// and four ([`Quad`]).
///
/// `min` and `max` are x86's: `a.min(b)` is `if a < b { a } else { b }`, so a NaN in
/// either gives `b`. Bit operations act on each lane's IEEE representation.
pub trait Lanes: Copy {
    /// Lanes in one value.
    const WIDTH: usize;
    /// Every lane `x`.
    fn splat(x: f64) -> Self;
    /// The first [`WIDTH`](Self::WIDTH) of `values`.
    ///
    /// # Panics
    ///
    /// If `values` is shorter.
    fn load(values: &[f64]) -> Self;
    /// Writes the lanes to the first [`WIDTH`](Self::WIDTH) of `out`.
    ///
    /// # Panics
    ///
    /// If `out` is shorter.
    fn store(self, out: &mut [f64]);
    /// `self + other`.
    fn add(self, other: Self) -> Self;
    /// `self − other`.
    fn sub(self, other: Self) -> Self;
    /// `self · other`.
    fn mul(self, other: Self) -> Self;
    /// `self / other`.
    fn div(self, other: Self) -> Self;
    /// `if self < other { self } else { other }`.
    fn min(self, other: Self) -> Self;
    /// `if self > other { self } else { other }`.
    fn max(self, other: Self) -> Self;
    /// `if self < other { then } else { otherwise }`, lane by lane.
    fn select_lt(self, other: Self, then: Self, otherwise: Self) -> Self;
    /// `if self > other { then } else { otherwise }`, lane by lane.
    fn select_gt(self, other: Self, then: Self, otherwise: Self) -> Self;
    /// `if self == other { then } else { otherwise }`, lane by lane.
    fn select_eq(self, other: Self, then: Self, otherwise: Self) -> Self;
    /// Whether some lane is `≥ bound`.
    fn any_ge(self, bound: f64) -> bool;
    /// The bits plus `k` (wrapping).
    fn bits_add(self, k: u64) -> Self;
    /// The bits and `k`.
    fn bits_and(self, k: u64) -> Self;
    /// The bits or `k`.
    fn bits_or(self, k: u64) -> Self;
    /// The bits shifted left by `N`.
    fn bits_shl<const N: i32>(self) -> Self;
    /// The bits shifted right by `N` (zeros shifted in).
    fn bits_shr<const N: i32>(self) -> Self;
    /// `table[bits & mask]`, lane by lane.
    ///
    /// # Panics
    ///
    /// If `table` has `mask` entries or fewer.
    fn gather(self, table: &[f64], mask: u64) -> Self;
}

/// Four lanes: a whole AVX2 register, or its portable stand-in (`[f64; 4]`), which
/// [`dispatch`] hands a [`Kernel`].
pub trait Quad: Lanes {
    /// The lanes, in order.
    fn to_array(self) -> [f64; LANES];
}

impl Lanes for f64 {
    const WIDTH: usize = 1;
    #[inline(always)]
    fn splat(x: f64) -> Self {
        x
    }
    #[inline(always)]
    fn load(values: &[f64]) -> Self {
        values[0]
    }
    #[inline(always)]
    fn store(self, out: &mut [f64]) {
        out[0] = self;
    }
    #[inline(always)]
    fn add(self, other: Self) -> Self {
        self + other
    }
    #[inline(always)]
    fn sub(self, other: Self) -> Self {
        self - other
    }
    #[inline(always)]
    fn mul(self, other: Self) -> Self {
        self * other
    }
    #[inline(always)]
    fn div(self, other: Self) -> Self {
        self / other
    }
    #[inline(always)]
    fn min(self, other: Self) -> Self {
        if self < other {
            self
        } else {
            other
        }
    }
    #[inline(always)]
    fn max(self, other: Self) -> Self {
        if self > other {
            self
        } else {
            other
        }
    }
    #[inline(always)]
    fn select_lt(self, other: Self, then: Self, otherwise: Self) -> Self {
        if self < other {
            then
        } else {
            otherwise
        }
    }
    #[inline(always)]
    fn select_gt(self, other: Self, then: Self, otherwise: Self) -> Self {
        if self > other {
            then
        } else {
            otherwise
        }
    }
    #[inline(always)]
    fn select_eq(self, other: Self, then: Self, otherwise: Self) -> Self {
        if self == other {
            then
        } else {
            otherwise
        }
    }
    #[inline(always)]
    fn any_ge(self, bound: f64) -> bool {
        self >= bound
    }
    #[inline(always)]
    fn bits_add(self, k: u64) -> Self {
        f64::from_bits(self.to_bits().wrapping_add(k))
    }
    #[inline(always)]
    fn bits_and(self, k: u64) -> Self {
        f64::from_bits(self.to_bits() & k)
    }
    #[inline(always)]
    fn bits_or(self, k: u64) -> Self {
        f64::from_bits(self.to_bits() | k)
    }
    #[inline(always)]
    fn bits_shl<const N: i32>(self) -> Self {
        f64::from_bits(self.to_bits() << N)
    }
    #[inline(always)]
    fn bits_shr<const N: i32>(self) -> Self {
        f64::from_bits(self.to_bits() >> N)
    }
    #[inline(always)]
    fn gather(self, table: &[f64], mask: u64) -> Self {
        table[(self.to_bits() & mask) as usize]
    }
}

/// The portable four lanes: each operation is [`f64`]'s, lane by lane.
impl Lanes for [f64; LANES] {
    const WIDTH: usize = LANES;
    #[inline(always)]
    fn splat(x: f64) -> Self {
        [x; LANES]
    }
    #[inline(always)]
    fn load(values: &[f64]) -> Self {
        values[..LANES].try_into().expect("four values")
    }
    #[inline(always)]
    fn store(self, out: &mut [f64]) {
        out[..LANES].copy_from_slice(&self);
    }
    #[inline(always)]
    fn add(self, other: Self) -> Self {
        std::array::from_fn(|l| self[l].add(other[l]))
    }
    #[inline(always)]
    fn sub(self, other: Self) -> Self {
        std::array::from_fn(|l| self[l].sub(other[l]))
    }
    #[inline(always)]
    fn mul(self, other: Self) -> Self {
        std::array::from_fn(|l| self[l].mul(other[l]))
    }
    #[inline(always)]
    fn div(self, other: Self) -> Self {
        std::array::from_fn(|l| self[l].div(other[l]))
    }
    #[inline(always)]
    fn min(self, other: Self) -> Self {
        std::array::from_fn(|l| Lanes::min(self[l], other[l]))
    }
    #[inline(always)]
    fn max(self, other: Self) -> Self {
        std::array::from_fn(|l| Lanes::max(self[l], other[l]))
    }
    #[inline(always)]
    fn select_lt(self, other: Self, then: Self, otherwise: Self) -> Self {
        std::array::from_fn(|l| self[l].select_lt(other[l], then[l], otherwise[l]))
    }
    #[inline(always)]
    fn select_gt(self, other: Self, then: Self, otherwise: Self) -> Self {
        std::array::from_fn(|l| self[l].select_gt(other[l], then[l], otherwise[l]))
    }
    #[inline(always)]
    fn select_eq(self, other: Self, then: Self, otherwise: Self) -> Self {
        std::array::from_fn(|l| self[l].select_eq(other[l], then[l], otherwise[l]))
    }
    #[inline(always)]
    fn any_ge(self, bound: f64) -> bool {
        self.iter().fold(false, |any, &x| any | (x >= bound))
    }
    #[inline(always)]
    fn bits_add(self, k: u64) -> Self {
        self.map(|x| x.bits_add(k))
    }
    #[inline(always)]
    fn bits_and(self, k: u64) -> Self {
        self.map(|x| x.bits_and(k))
    }
    #[inline(always)]
    fn bits_or(self, k: u64) -> Self {
        self.map(|x| x.bits_or(k))
    }
    #[inline(always)]
    fn bits_shl<const N: i32>(self) -> Self {
        self.map(|x| x.bits_shl::<N>())
    }
    #[inline(always)]
    fn bits_shr<const N: i32>(self) -> Self {
        self.map(|x| x.bits_shr::<N>())
    }
    #[inline(always)]
    fn gather(self, table: &[f64], mask: u64) -> Self {
        self.map(|x| x.gather(table, mask))
    }
}

impl Quad for [f64; LANES] {
    #[inline(always)]
    fn to_array(self) -> [f64; LANES] {
        self
    }
}

/// Four lanes in an AVX2 register. Only [`dispatch`] makes them, and only on a CPU with
/// AVX2, so the intrinsics below (which need it) are sound.
#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy)]
struct Avx2(__m256d);

// SAFETY (every `unsafe` block below): an `Avx2` exists only inside the functions that
// `dispatch` calls after checking that the CPU has AVX2; `splat` and `load` make the
// first one from a `Kernel` run there.
#[cfg(target_arch = "x86_64")]
impl Lanes for Avx2 {
    const WIDTH: usize = LANES;
    #[inline(always)]
    fn splat(x: f64) -> Self {
        Avx2(unsafe { _mm256_set1_pd(x) })
    }
    #[inline(always)]
    fn load(values: &[f64]) -> Self {
        let values = &values[..LANES];
        Avx2(unsafe { _mm256_loadu_pd(values.as_ptr()) })
    }
    #[inline(always)]
    fn store(self, out: &mut [f64]) {
        let out = &mut out[..LANES];
        unsafe { _mm256_storeu_pd(out.as_mut_ptr(), self.0) }
    }
    #[inline(always)]
    fn add(self, other: Self) -> Self {
        Avx2(unsafe { _mm256_add_pd(self.0, other.0) })
    }
    #[inline(always)]
    fn sub(self, other: Self) -> Self {
        Avx2(unsafe { _mm256_sub_pd(self.0, other.0) })
    }
    #[inline(always)]
    fn mul(self, other: Self) -> Self {
        Avx2(unsafe { _mm256_mul_pd(self.0, other.0) })
    }
    #[inline(always)]
    fn div(self, other: Self) -> Self {
        Avx2(unsafe { _mm256_div_pd(self.0, other.0) })
    }
    #[inline(always)]
    fn min(self, other: Self) -> Self {
        // vminpd: the second operand unless the first is smaller
        Avx2(unsafe { _mm256_min_pd(self.0, other.0) })
    }
    #[inline(always)]
    fn max(self, other: Self) -> Self {
        Avx2(unsafe { _mm256_max_pd(self.0, other.0) })
    }
    #[inline(always)]
    fn select_lt(self, other: Self, then: Self, otherwise: Self) -> Self {
        Avx2(unsafe {
            let lt = _mm256_cmp_pd::<_CMP_LT_OQ>(self.0, other.0);
            _mm256_blendv_pd(otherwise.0, then.0, lt)
        })
    }
    #[inline(always)]
    fn select_gt(self, other: Self, then: Self, otherwise: Self) -> Self {
        Avx2(unsafe {
            let gt = _mm256_cmp_pd::<_CMP_GT_OQ>(self.0, other.0);
            _mm256_blendv_pd(otherwise.0, then.0, gt)
        })
    }
    #[inline(always)]
    fn select_eq(self, other: Self, then: Self, otherwise: Self) -> Self {
        Avx2(unsafe {
            let eq = _mm256_cmp_pd::<_CMP_EQ_OQ>(self.0, other.0);
            _mm256_blendv_pd(otherwise.0, then.0, eq)
        })
    }
    #[inline(always)]
    fn any_ge(self, bound: f64) -> bool {
        unsafe {
            _mm256_movemask_pd(_mm256_cmp_pd::<_CMP_GE_OQ>(self.0, _mm256_set1_pd(bound))) != 0
        }
    }
    #[inline(always)]
    fn bits_add(self, k: u64) -> Self {
        Avx2(unsafe {
            let sum = _mm256_add_epi64(_mm256_castpd_si256(self.0), _mm256_set1_epi64x(k as i64));
            _mm256_castsi256_pd(sum)
        })
    }
    #[inline(always)]
    fn bits_and(self, k: u64) -> Self {
        Avx2(unsafe { _mm256_and_pd(self.0, _mm256_castsi256_pd(_mm256_set1_epi64x(k as i64))) })
    }
    #[inline(always)]
    fn bits_or(self, k: u64) -> Self {
        Avx2(unsafe { _mm256_or_pd(self.0, _mm256_castsi256_pd(_mm256_set1_epi64x(k as i64))) })
    }
    #[inline(always)]
    fn bits_shl<const N: i32>(self) -> Self {
        Avx2(unsafe { _mm256_castsi256_pd(_mm256_slli_epi64::<N>(_mm256_castpd_si256(self.0))) })
    }
    #[inline(always)]
    fn bits_shr<const N: i32>(self) -> Self {
        Avx2(unsafe { _mm256_castsi256_pd(_mm256_srli_epi64::<N>(_mm256_castpd_si256(self.0))) })
    }
    #[inline(always)]
    fn gather(self, table: &[f64], mask: u64) -> Self {
        assert!(
            (mask as usize) < table.len(),
            "a table of {} for mask {mask:#x}",
            table.len()
        );
        Avx2(unsafe {
            let index = _mm256_and_pd(self.0, _mm256_castsi256_pd(_mm256_set1_epi64x(mask as i64)));
            // every index is at most `mask`, within the table
            _mm256_i64gather_pd::<8>(table.as_ptr(), _mm256_castpd_si256(index))
        })
    }
}

#[cfg(target_arch = "x86_64")]
impl Quad for Avx2 {
    #[inline(always)]
    fn to_array(self) -> [f64; LANES] {
        let mut out = [0.0; LANES];
        self.store(&mut out);
        out
    }
}

/// A computation written once over [`Quad`] lanes, which [`dispatch`] runs with the
/// widest registers the CPU has. Mark `run` `#[inline(always)]`: it is compiled into
/// each of `dispatch`'s builds.
pub trait Kernel {
    /// What the computation returns.
    type Output;
    /// Runs the computation with lanes `V`.
    fn run<V: Quad>(self) -> Self::Output;
}

/// Runs `kernel` with AVX2 registers where the CPU has them (and with AVX-512's 32
/// registers to hold them where it has those too), else with the portable `[f64; 4]`.
/// Every build gives the same bits: the operations and their order are the kernel's.
#[inline]
pub fn dispatch<K: Kernel>(kernel: K) -> K::Output {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") {
            if std::arch::is_x86_feature_detected!("avx512f")
                && std::arch::is_x86_feature_detected!("avx512vl")
            {
                // SAFETY: the CPU has AVX2, AVX-512F and AVX-512VL.
                return unsafe { run_avx512(kernel) };
            }
            // SAFETY: the CPU has AVX2.
            return unsafe { run_avx2(kernel) };
        }
    }
    kernel.run::<[f64; LANES]>()
}

/// # Safety
///
/// The CPU must have AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn run_avx2<K: Kernel>(kernel: K) -> K::Output {
    kernel.run::<Avx2>()
}

/// The AVX2 operations, with AVX-512's 32 vector registers for the compiler to keep
/// interleaved chains in (the operations, so the bits, are AVX2's).
///
/// # Safety
///
/// The CPU must have AVX2, AVX-512F and AVX-512VL.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,avx512f,avx512vl")]
unsafe fn run_avx512<K: Kernel>(kernel: K) -> K::Output {
    kernel.run::<Avx2>()
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

    /// `exp_lanes` and `ln_lanes` over `values` with lanes `V`, four at a time.
    struct ExpLn<'a>(&'a [f64]);

    impl Kernel for ExpLn<'_> {
        type Output = Vec<(u64, u64)>;
        #[inline(always)]
        fn run<V: Quad>(self) -> Self::Output {
            let mut out = Vec::new();
            for chunk in self.0.chunks_exact(LANES) {
                let x = V::load(chunk);
                let positive = V::splat(f64::MIN_POSITIVE).max(x.mul(x));
                let (e, l) = (exp_lanes(x).to_array(), ln_lanes(positive).to_array());
                out.extend((0..LANES).map(|i| (e[i].to_bits(), l[i].to_bits())));
            }
            out
        }
    }

    #[test]
    fn every_build_of_the_lanes_gives_the_scalar_bits() {
        let mut values: Vec<f64> = draws(|g| g.gen_range(-800.0..800.0)).take(40_000).collect();
        values.extend(near_zero().take(20_000));
        values.extend([
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            -708.5,
            -708.0,
            709.0,
            709.5,
            0.0,
            -0.0,
            1e-310,
            f64::MAX,
            1e160,
        ]);
        values.truncate(values.len() / LANES * LANES);
        let scalar: Vec<(u64, u64)> = values
            .iter()
            .map(|&x| {
                // `Lanes::max`: the second operand for a NaN
                let positive = if f64::MIN_POSITIVE > x * x {
                    f64::MIN_POSITIVE
                } else {
                    x * x
                };
                (exp(x).to_bits(), ln(positive).to_bits())
            })
            .collect();
        let first_difference = |got: Vec<(u64, u64)>| {
            got.iter()
                .zip(&scalar)
                .position(|(a, b)| a != b)
                .map(|i| (values[i], got[i], scalar[i]))
        };
        assert_eq!(
            first_difference(ExpLn(&values).run::<[f64; LANES]>()),
            None,
            "portable"
        );
        assert_eq!(
            first_difference(dispatch(ExpLn(&values))),
            None,
            "the CPU's lanes"
        );
    }

    /// Each operation of the dispatched lanes against `f64`'s, NaN, infinities and
    /// signed zeros among the operands.
    struct Operations<'a>(&'a [f64], &'a [f64]);

    impl Kernel for Operations<'_> {
        type Output = Vec<u64>;
        #[inline(always)]
        fn run<V: Quad>(self) -> Self::Output {
            let mut out = Vec::new();
            let table: Vec<f64> = (0..16).map(|i| i as f64 * 1.5).collect();
            for (a, b) in self.0.chunks_exact(LANES).zip(self.1.chunks_exact(LANES)) {
                let (a, b) = (V::load(a), V::load(b));
                let results = [
                    a.add(b),
                    a.sub(b),
                    a.mul(b),
                    a.div(b),
                    a.min(b),
                    a.max(b),
                    a.select_lt(b, a, b),
                    a.select_gt(b, a, b),
                    a.select_eq(b, a, b),
                    a.bits_add(3).bits_and(!7).bits_or(1),
                    a.bits_shl::<52>().bits_shr::<52>(),
                    a.gather(&table, 15),
                    V::splat(if a.any_ge(1.0) { 1.0 } else { 0.0 }),
                ];
                for r in results {
                    out.extend(r.to_array().map(f64::to_bits));
                }
            }
            out
        }
    }

    #[test]
    fn every_build_does_each_operation_as_f64_does() {
        let special = [
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            0.0,
            -0.0,
            1.0,
            -2.5,
            1e300,
        ];
        let (mut a, mut b) = (Vec::new(), Vec::new());
        for &x in &special {
            for &y in &special {
                a.push(x);
                b.push(y);
            }
        }
        let portable = Operations(&a, &b).run::<[f64; LANES]>();
        assert_eq!(dispatch(Operations(&a, &b)), portable);
        // and the portable lanes are `f64`'s, lane by lane
        let one = |x: f64, y: f64| -> Vec<u64> {
            let table: Vec<f64> = (0..16).map(|i| i as f64 * 1.5).collect();
            [
                x + y,
                x - y,
                x * y,
                x / y,
                if x < y { x } else { y },
                if x > y { x } else { y },
                if x < y { x } else { y },
                if x > y { x } else { y },
                if x == y { x } else { y },
                f64::from_bits((x.to_bits().wrapping_add(3) & !7) | 1),
                f64::from_bits((x.to_bits() << 52) >> 52),
                table[(x.to_bits() & 15) as usize],
            ]
            .map(f64::to_bits)
            .to_vec()
        };
        for (c, (x, y)) in a.chunks_exact(LANES).zip(b.chunks_exact(LANES)).enumerate() {
            let got = &portable[c * 13 * LANES..(c + 1) * 13 * LANES];
            for l in 0..LANES {
                let want = one(x[l], y[l]);
                for (op, w) in want.iter().enumerate() {
                    assert_eq!(
                        got[op * LANES + l],
                        *w,
                        "operation {op} on {} and {}",
                        x[l],
                        y[l]
                    );
                }
                let any = x.iter().any(|&v| v >= 1.0);
                assert_eq!(
                    got[12 * LANES + l],
                    (if any { 1.0f64 } else { 0.0 }).to_bits()
                );
            }
        }
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
