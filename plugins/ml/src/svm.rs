//! The one-class SVM dual (Schölkopf et al. 2001) solved as libsvm solves it, so that the
//! support vectors and offset are scikit-learn's `OneClassSVM`'s up to the tolerance:
//!
//! minimise `½ αᵀQα` subject to `0 ≤ αᵢ ≤ 1` and `Σ αᵢ = ν·l`, with `Qᵢⱼ = K(xᵢ, xⱼ)`,
//!
//! by sequential minimal optimisation with the second-order working-set selection of Fan,
//! Chen & Lin (JMLR 2005), started where libsvm starts (the first `⌊ν·l⌋` at 1), stopped
//! when the maximal violation is below `tol`, and the offset `ρ` taken as libsvm's
//! `calculate_rho` takes it. libsvm also shrinks the active set; that only changes the
//! path within the tolerance, so it is left out. Kernel columns are computed on demand
//! (in parallel for long columns) and kept in an LRU cache of `f32`, as libsvm keeps them.

use adr_sdk::lane_math::{self, LANES};
use rayon::prelude::*;

/// A kernel on rows of `d` values.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kernel {
    /// `exp(−γ‖x − y‖²)`.
    Rbf {
        /// The width γ.
        gamma: f64,
    },
    /// `x·y`.
    Linear,
}

impl Kernel {
    /// `K(x, y)`.
    pub fn eval(self, x: &[f64], y: &[f64]) -> f64 {
        match self {
            Kernel::Rbf { gamma } => {
                let squared: f64 = x.iter().zip(y).map(|(a, b)| (a - b) * (a - b)).sum();
                (-gamma * squared).exp()
            }
            Kernel::Linear => x.iter().zip(y).map(|(a, b)| a * b).sum(),
        }
    }
}

/// Rows regrouped [`LANES`] at a time, each group stored value by value, so that the
/// kernel between one row and a group's rows is one vector operation per value, and the
/// RBF kernel's exponential is computed for the group at once: a call to libm's `exp` per
/// pair, and a sum per pair whose adds wait on each other, took most of the time.
///
/// Each pair's kernel is the same sum in the same order as [`Kernel::eval`]'s, and its
/// exponential is [`lane_math::exp`], within 1 ulp of libm's.
#[derive(Debug, Clone, PartialEq)]
pub struct RowGroups {
    d: usize,
    len: usize,
    /// Value k of row `g·LANES + l` at `(g·d + k)·LANES + l`; rows past `len` hold zeros.
    values: Vec<f64>,
}

impl RowGroups {
    /// Groups `rows` (row-major, `d` values each, `d` at least 1).
    pub fn new(rows: &[f64], d: usize) -> Self {
        let len = rows.len() / d;
        let mut values = vec![0.0; len.div_ceil(LANES) * LANES * d];
        for (i, row) in rows.chunks_exact(d).enumerate() {
            let (g, l) = (i / LANES, i % LANES);
            for (k, &v) in row.iter().enumerate() {
                values[(g * d + k) * LANES + l] = v;
            }
        }
        RowGroups { d, len, values }
    }

    /// Rows held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Values per row.
    pub fn width(&self) -> usize {
        self.d
    }

    /// Whether it holds no row.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Row `i`'s values.
    pub fn row(&self, i: usize) -> impl Iterator<Item = f64> + '_ {
        let (g, l) = (i / LANES, i % LANES);
        (0..self.d).map(move |k| self.values[(g * self.d + k) * LANES + l])
    }

    /// The rows, row-major.
    pub fn to_rows(&self) -> Vec<f64> {
        (0..self.len).flat_map(|i| self.row(i)).collect()
    }

    /// `K(x, yᵢ)` for the rows of the `groups` groups from `first` on (at most
    /// [`BATCH`] rows), into the start of `out`. The exponentials run as a loop of their
    /// own over the batch: within the loop over values they would not vectorise.
    #[inline(always)]
    fn batch_kernels(
        &self,
        kernel: Kernel,
        x: &[f64],
        first: usize,
        groups: usize,
        out: &mut [f64; BATCH],
    ) {
        let size = self.d * LANES;
        let values = &self.values[first * size..(first + groups) * size];
        for (group, kernels) in values.chunks_exact(size).zip(out.chunks_exact_mut(LANES)) {
            let mut acc = [0.0; LANES];
            let ys = group
                .chunks_exact(LANES)
                .map(|ys| -> &[f64; LANES] { ys.try_into().expect("groups are whole") });
            match kernel {
                Kernel::Rbf { .. } => {
                    for (&xk, ys) in x.iter().zip(ys) {
                        for l in 0..LANES {
                            let t = xk - ys[l];
                            acc[l] += t * t;
                        }
                    }
                }
                Kernel::Linear => {
                    for (&xk, ys) in x.iter().zip(ys) {
                        for l in 0..LANES {
                            acc[l] += xk * ys[l];
                        }
                    }
                }
            }
            kernels.copy_from_slice(&acc);
        }
        if let Kernel::Rbf { gamma } = kernel {
            for v in &mut out[..groups * LANES] {
                *v = lane_math::exp(-gamma * *v);
            }
        }
    }

    /// `out[k] = K(x, y_{start + k})`, `start` a multiple of [`LANES`].
    pub fn column_into(&self, kernel: Kernel, x: &[f64], start: usize, out: &mut [f32]) {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2, the only feature `column_avx2` is compiled for.
            return unsafe { self.column_avx2(kernel, x, start, out) };
        }
        self.column_here(kernel, x, start, out)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn column_avx2(&self, kernel: Kernel, x: &[f64], start: usize, out: &mut [f32]) {
        self.column_here(kernel, x, start, out)
    }

    #[inline(always)]
    fn column_here(&self, kernel: Kernel, x: &[f64], start: usize, out: &mut [f32]) {
        assert_eq!(start % LANES, 0, "columns start on a group");
        let mut kernels = [0.0; BATCH];
        for (batch, slots) in out.chunks_mut(BATCH).enumerate() {
            let first = (start + batch * BATCH) / LANES;
            self.batch_kernels(kernel, x, first, slots.len().div_ceil(LANES), &mut kernels);
            for (slot, &k) in slots.iter_mut().zip(&kernels) {
                *slot = k as f32;
            }
        }
    }

    /// `Σᵢ wᵢ K(x, yᵢ)` over every row (`weights`, one per row), in [`LANES`] partial
    /// sums.
    pub fn weighted_sum(&self, kernel: Kernel, x: &[f64], weights: &[f64]) -> f64 {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2, the only feature `weighted_avx2` is compiled for.
            return unsafe { self.weighted_avx2(kernel, x, weights) };
        }
        self.weighted_here(kernel, x, weights)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn weighted_avx2(&self, kernel: Kernel, x: &[f64], weights: &[f64]) -> f64 {
        self.weighted_here(kernel, x, weights)
    }

    #[inline(always)]
    fn weighted_here(&self, kernel: Kernel, x: &[f64], weights: &[f64]) -> f64 {
        assert_eq!(weights.len(), self.len, "a weight per row");
        let (mut parts, mut kernels) = ([0.0; LANES], [0.0; BATCH]);
        for (batch, w) in weights.chunks(BATCH).enumerate() {
            let groups = w.len().div_ceil(LANES);
            self.batch_kernels(kernel, x, batch * BATCH / LANES, groups, &mut kernels);
            for (w, k) in w.chunks(LANES).zip(kernels.chunks_exact(LANES)) {
                for (part, (&w, &k)) in parts.iter_mut().zip(w.iter().zip(k)) {
                    *part += w * k;
                }
            }
        }
        lane_math::sum(&parts)
    }
}

/// A solved dual: the rows with `αᵢ > 0`, their `α`, and `ρ`.
#[derive(Debug, Clone, PartialEq)]
pub struct Solution {
    /// Indices of the support vectors among the rows.
    pub support: Vec<usize>,
    /// Their coefficients.
    pub alpha: Vec<f64>,
    /// The offset: the decision function is `Σ αᵢ K(xᵢ, x) − ρ`.
    pub rho: f64,
    /// Iterations the solver took.
    pub iterations: usize,
}

/// Columns of `Q` computed on demand, the least recently used dropped first.
struct KernelCache<'a> {
    rows: &'a [f64],
    groups: RowGroups,
    d: usize,
    kernel: Kernel,
    columns: Vec<Option<Box<[f32]>>>,
    /// Doubly linked recency list over column indices; `usize::MAX` ends it.
    newer: Vec<usize>,
    older: Vec<usize>,
    newest: usize,
    oldest: usize,
    held: usize,
    capacity: usize,
}

const NONE: usize = usize::MAX;
/// Rows whose kernels [`RowGroups`] computes together (a multiple of [`LANES`]).
const BATCH: usize = 64;
/// Column length from which a column is computed on several threads.
const PARALLEL_COLUMN: usize = 8192;
/// Rows from which a gradient update is spread over threads: below it the update takes
/// less time than waking the pool.
const PARALLEL_UPDATE: usize = 1 << 17;

impl<'a> KernelCache<'a> {
    fn new(rows: &'a [f64], d: usize, kernel: Kernel, bytes: usize) -> Self {
        let l = rows.len() / d;
        KernelCache {
            rows,
            groups: RowGroups::new(rows, d),
            d,
            kernel,
            columns: (0..l).map(|_| None).collect(),
            newer: vec![NONE; l],
            older: vec![NONE; l],
            newest: NONE,
            oldest: NONE,
            held: 0,
            capacity: (bytes / (4 * l.max(1))).max(2),
        }
    }

    fn unlink(&mut self, i: usize) {
        let (newer, older) = (self.newer[i], self.older[i]);
        match newer {
            NONE => self.newest = older,
            n => self.older[n] = older,
        }
        match older {
            NONE => self.oldest = newer,
            o => self.newer[o] = newer,
        }
    }

    fn push_newest(&mut self, i: usize) {
        self.older[i] = self.newest;
        self.newer[i] = NONE;
        match self.newest {
            NONE => self.oldest = i,
            n => self.newer[n] = i,
        }
        self.newest = i;
    }

    /// Makes column `i` present and the most recently used (two columns ensured in a row
    /// are both present afterwards: the capacity is at least 2).
    fn ensure(&mut self, i: usize) {
        if self.columns[i].is_some() {
            self.unlink(i);
            self.push_newest(i);
            return;
        }
        let mut column = if self.held == self.capacity {
            let victim = self.oldest;
            self.unlink(victim);
            self.held -= 1;
            self.columns[victim].take().expect("a held column")
        } else {
            vec![0.0f32; self.columns.len()].into_boxed_slice()
        };
        let (groups, d, kernel) = (&self.groups, self.d, self.kernel);
        let x = &self.rows[i * d..(i + 1) * d];
        let fill = |out: &mut [f32], start: usize| groups.column_into(kernel, x, start, out);
        if column.len() >= PARALLEL_COLUMN {
            column
                .par_chunks_mut(PARALLEL_COLUMN / 4)
                .enumerate()
                .for_each(|(c, out)| fill(out, c * (PARALLEL_COLUMN / 4)));
        } else {
            fill(&mut column, 0);
        }
        self.columns[i] = Some(column);
        self.held += 1;
        self.push_newest(i);
    }

    fn column(&self, i: usize) -> &[f32] {
        self.columns[i].as_deref().expect("an ensured column")
    }
}

/// libsvm's `TAU`: the curvature used where the pair's is not positive.
const TAU: f64 = 1e-12;

/// Solves the one-class dual for `rows` (row-major, `d` values each).
pub fn solve(
    rows: &[f64],
    d: usize,
    kernel: Kernel,
    nu: f64,
    tol: f64,
    cache_bytes: usize,
) -> Solution {
    let l = rows.len() / d;
    let mut cache = KernelCache::new(rows, d, kernel, cache_bytes);
    let diagonal: Vec<f64> = rows.chunks_exact(d).map(|x| kernel.eval(x, x)).collect();
    // libsvm's start: ⌊ν·l⌋ coefficients at the upper bound, the remainder on the next.
    let mut alpha = vec![0.0; l];
    let at_upper = ((nu * l as f64) as usize).min(l);
    alpha[..at_upper].iter_mut().for_each(|a| *a = 1.0);
    if at_upper < l {
        alpha[at_upper] = nu * l as f64 - at_upper as f64;
    }
    let mut gradient = vec![0.0; l];
    for (i, &a) in alpha.iter().enumerate() {
        if a > 0.0 {
            cache.ensure(i);
            let q = cache.column(i);
            gradient
                .iter_mut()
                .zip(q)
                .for_each(|(g, &q)| *g += a * f64::from(q));
        }
    }
    let max_iterations = (100 * l).max(10_000_000);
    let mut iterations = 0;
    while iterations < max_iterations {
        // Working set: i violates most from above, j gives the largest second-order gain.
        let mut g_max = f64::NEG_INFINITY;
        let mut i = NONE;
        for (t, (&a, &g)) in alpha.iter().zip(&gradient).enumerate() {
            if a < 1.0 && -g >= g_max {
                g_max = -g;
                i = t;
            }
        }
        if i == NONE {
            break;
        }
        cache.ensure(i);
        let q_i = cache.column(i);
        let (mut g_max2, mut j, mut best) = (f64::NEG_INFINITY, NONE, f64::INFINITY);
        for (t, (&a, &g)) in alpha.iter().zip(&gradient).enumerate() {
            if a > 0.0 {
                let grad_diff = g_max + g;
                if g >= g_max2 {
                    g_max2 = g;
                }
                if grad_diff > 0.0 {
                    let curvature = diagonal[i] + diagonal[t] - 2.0 * f64::from(q_i[t]);
                    let gain =
                        -(grad_diff * grad_diff) / if curvature > 0.0 { curvature } else { TAU };
                    if gain <= best {
                        j = t;
                        best = gain;
                    }
                }
            }
        }
        if g_max + g_max2 < tol || j == NONE {
            break;
        }
        iterations += 1;
        cache.ensure(j);
        let (q_i, q_j) = (cache.column(i), cache.column(j));
        // The pair's update, clipped to the box as libsvm clips it (both labels +1, C = 1).
        let (old_i, old_j) = (alpha[i], alpha[j]);
        let curvature = diagonal[i] + diagonal[j] - 2.0 * f64::from(q_i[j]);
        let delta = (gradient[i] - gradient[j]) / if curvature > 0.0 { curvature } else { TAU };
        let sum = old_i + old_j;
        let (mut a_i, mut a_j) = (old_i - delta, old_j + delta);
        if sum > 1.0 {
            if a_i > 1.0 {
                (a_i, a_j) = (1.0, sum - 1.0);
            }
        } else if a_j < 0.0 {
            (a_i, a_j) = (sum, 0.0);
        }
        if sum > 1.0 {
            if a_j > 1.0 {
                (a_i, a_j) = (sum - 1.0, 1.0);
            }
        } else if a_i < 0.0 {
            (a_i, a_j) = (0.0, sum);
        }
        alpha[i] = a_i;
        alpha[j] = a_j;
        let (di, dj) = (a_i - old_i, a_j - old_j);
        let update = |(g, (&qi, &qj)): (&mut f64, (&f32, &f32))| {
            *g += f64::from(qi) * di + f64::from(qj) * dj;
        };
        if l >= PARALLEL_UPDATE {
            gradient
                .par_iter_mut()
                .zip(q_i.par_iter().zip(q_j))
                .with_min_len(PARALLEL_UPDATE / 4)
                .for_each(update);
        } else {
            gradient
                .iter_mut()
                .zip(q_i.iter().zip(q_j))
                .for_each(update);
        }
    }
    let rho = offset(&alpha, &gradient);
    let support: Vec<usize> = (0..l).filter(|&i| alpha[i] > 0.0).collect();
    Solution {
        alpha: support.iter().map(|&i| alpha[i]).collect(),
        support,
        rho,
        iterations,
    }
}

/// libsvm's `calculate_rho` for labels all +1: the mean gradient over the free
/// coefficients, or the middle of the bounds the others set.
fn offset(alpha: &[f64], gradient: &[f64]) -> f64 {
    let (mut upper, mut lower) = (f64::INFINITY, f64::NEG_INFINITY);
    let (mut free, mut free_sum) = (0usize, 0.0);
    for (&a, &g) in alpha.iter().zip(gradient) {
        if a >= 1.0 {
            lower = lower.max(g);
        } else if a <= 0.0 {
            upper = upper.min(g);
        } else {
            free += 1;
            free_sum += g;
        }
    }
    if free > 0 {
        free_sum / free as f64
    } else {
        (upper + lower) / 2.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 150 rows of 3 values (not a whole number of groups or batches), spread over ±3.
    fn rows() -> Vec<f64> {
        (0..450)
            .map(|i| ((i * 37) % 101) as f64 / 17.0 - 3.0)
            .collect()
    }

    #[test]
    fn grouped_kernels_are_the_pairwise_ones() {
        let (rows, d) = (rows(), 3);
        let groups = RowGroups::new(&rows, d);
        assert_eq!(groups.len(), 150);
        assert_eq!(groups.to_rows(), rows);
        let x = [0.5, -1.25, 2.0];
        let weights: Vec<f64> = (0..150).map(|i| (i % 7) as f64 * 0.1).collect();
        for kernel in [Kernel::Rbf { gamma: 0.3 }, Kernel::Linear] {
            let pairwise: Vec<f64> = rows.chunks(d).map(|y| kernel.eval(&x, y)).collect();
            // a column from the start and from a later group, to the last row
            for start in [0, 4, 68] {
                let mut column = vec![0.0f32; 150 - start];
                groups.column_into(kernel, &x, start, &mut column);
                let mut here = vec![0.0f32; 150 - start];
                groups.column_here(kernel, &x, start, &mut here);
                assert_eq!(column, here, "the same bits with and without AVX2");
                for (k, (&got, &want)) in column.iter().zip(&pairwise[start..]).enumerate() {
                    let close = (f64::from(got) - want).abs() <= 1e-6 * want.abs().max(1e-30);
                    assert!(close, "{kernel:?} row {}: {got} against {want}", start + k);
                }
            }
            let want: f64 = weights.iter().zip(&pairwise).map(|(w, k)| w * k).sum();
            let got = groups.weighted_sum(kernel, &x, &weights);
            assert!(
                (got - want).abs() <= 1e-12 * want.abs(),
                "{kernel:?}: {got} against {want}"
            );
            assert_eq!(got, groups.weighted_here(kernel, &x, &weights));
        }
    }

    #[test]
    fn the_cache_keeps_what_it_can_and_recomputes_the_rest() {
        let rows = [0.0, 1.0, 2.0, 4.0];
        // Room for 2 columns of 4 f32.
        let mut cache = KernelCache::new(&rows, 1, Kernel::Linear, 32);
        cache.ensure(3);
        cache.ensure(1);
        assert_eq!(cache.column(3), &[0.0, 4.0, 8.0, 16.0]);
        cache.ensure(3);
        cache.ensure(2); // drops 1, the least recently used
        assert!(cache.columns[1].is_none());
        assert_eq!(cache.column(2), &[0.0, 2.0, 4.0, 8.0]);
        assert_eq!(cache.column(3), &[0.0, 4.0, 8.0, 16.0]);
        cache.ensure(0);
        assert!(cache.columns[3].is_none());
        assert_eq!(cache.held, 2);
    }

    #[test]
    fn the_constraints_hold_at_the_solution() {
        let rows: Vec<f64> = (0..200).map(|i| ((i * 37) % 101) as f64 / 50.0).collect();
        for (nu, kernel) in [(0.5, Kernel::Rbf { gamma: 0.5 }), (0.1, Kernel::Linear)] {
            // A tiny cache forces recomputation.
            let s = solve(&rows, 2, kernel, nu, 1e-3, 4 * 100 * 3);
            let total: f64 = s.alpha.iter().sum();
            assert!((total - nu * 100.0).abs() < 1e-9, "Σα = {total}");
            assert!(s.alpha.iter().all(|&a| a > 0.0 && a <= 1.0));
        }
    }
}
