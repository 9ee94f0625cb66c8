//! One-class SVM (Schölkopf et al., Neural Computation 2001), as PyOD's `OCSVM` (scikit-
//! learn's `OneClassSVM`, libsvm) computes it: the raw score of a row is `ρ − Σ αᵢ K(xᵢ,
//! x)`, the negated decision function, so rows outside the learned support score high.
//! The dual is solved by [`crate::svm`].
//!
//! `gamma`: `auto` is `1 / d` (PyOD's default), `scale` is `1 / (d · Var(X))` over every
//! training value (scikit-learn's default; 1 if they are all equal), or a number.

use adr_sdk::params::ParamType;
use adr_sdk::{Arity, Detector, DetectorError, ErrorKind, ParamKind, ParamValue};

use linfa_linalg::eigh::Eigh;
use ndarray::Array2;
use rand::SeedableRng;
use rayon::prelude::*;

use crate::state::{Reader, Writer};
use crate::svm::{solve, Kernel, RowGroups, Solution};
use crate::trained::{Model, Trained};

adr_sdk::param_choice! {
    /// The kernel of [`OneClassSvm`].
    pub enum KernelChoice {
        /// `exp(−γ‖x − y‖²)`.
        Rbf = "rbf",
        /// `x·y`.
        Linear = "linear",
    }
}

/// The RBF kernel's width: a number, or a rule for it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Gamma {
    /// `1 / d`.
    Auto,
    /// `1 / (d · Var(X))`.
    Scale,
    /// This value.
    Value(f64),
}

impl ParamType for Gamma {
    const KIND: ParamKind = ParamKind::FloatOrChoice;
    fn choices() -> &'static [&'static str] {
        &["auto", "scale"]
    }
    fn to_value(&self) -> ParamValue {
        match *self {
            Gamma::Auto => ParamValue::Text("auto".into()),
            Gamma::Scale => ParamValue::Text("scale".into()),
            Gamma::Value(g) => ParamValue::Float(g),
        }
    }
    fn from_value(value: &ParamValue) -> Option<Self> {
        match value {
            ParamValue::Text(t) if t == "auto" => Some(Gamma::Auto),
            ParamValue::Text(t) if t == "scale" => Some(Gamma::Scale),
            v => f64::from_value(v).map(Gamma::Value),
        }
    }
}

impl Gamma {
    /// The width for `rows` of `d` values.
    fn resolve(self, rows: &[f64], d: usize) -> f64 {
        match self {
            Gamma::Auto => 1.0 / d as f64,
            Gamma::Value(g) => g,
            Gamma::Scale => {
                let n = rows.len() as f64;
                let mean = rows.iter().sum::<f64>() / n;
                let var = rows.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n;
                if var == 0.0 {
                    1.0
                } else {
                    1.0 / (d as f64 * var)
                }
            }
        }
    }
}

adr_sdk::params! {
    /// Parameters of [`OneClassSvm`].
    pub struct OneClassSvmParams {
        /// Events each key trains on before it is judged.
        train: usize = 1000, min >= 2, max <= 10_000_000;
        /// Or train on the events of this first span of event time (at most `train`;
        /// `train on 1h` in a rule sets it). Off when zero.
        train_for: std::time::Duration = std::time::Duration::ZERO;
        /// Standardise each input with the training events' mean and population deviation
        /// before fitting and scoring (PyOD's benchmark does this outside the detector).
        standardise: bool = false;
        /// The kernel: `rbf` or `linear`.
        kernel: KernelChoice = KernelChoice::Rbf;
        /// Upper bound on the share of training rows outside the support, and lower bound
        /// on the share of support vectors.
        nu: f64 = 0.5, min > 0.0, max <= 1.0;
        /// The RBF width: `auto` (1/d), `scale` (1/(d·Var)) or a number.
        gamma: Gamma = Gamma::Auto, min > 0.0;
        /// The solver stops when the largest violation of optimality is below this.
        tol: f64 = 0.001, min > 0.0;
        /// Memory for cached kernel columns while training, in MiB.
        cache_mb: usize = 200, min >= 1, max <= 16_384;
        /// Approximate, in time linear in the rows scored: solve the dual on a uniform
        /// sample of `sample` training rows, then project the decision function onto
        /// `components` of its support vectors (Nyström).
        approximate: bool = false;
        /// Training rows the approximate variant solves on.
        sample: usize = 10000, min >= 2, max <= 10_000_000;
        /// Kernel centres the approximate decision function keeps.
        components: usize = 256, min >= 1, max <= 100_000;
        /// Seed of the approximate variant's draws.
        seed: usize = 0;
        /// Share of training events expected to be outliers: the alarm threshold is the
        /// `1 − contamination` quantile of the training scores.
        contamination: f64 = 0.1, min > 0.0, max <= 0.5;
    }
}

/// What the one-class SVM is fitted with.
#[derive(Debug, Clone, Copy)]
pub struct OneClassSvmSettings {
    kernel: KernelChoice,
    gamma: Gamma,
    nu: f64,
    tol: f64,
    cache_bytes: usize,
    /// The approximate variant's sample size, centres and seed.
    approximate: Option<(usize, usize, u64)>,
}

/// The support vectors, their coefficients and the offset.
#[derive(Debug, Clone, PartialEq)]
pub struct OneClassSvmModel {
    kernel: Kernel,
    /// The support vectors (and their width).
    support: RowGroups,
    alpha: Vec<f64>,
    rho: f64,
}

impl OneClassSvmModel {
    fn from_solution(kernel: Kernel, d: usize, rows: &[f64], solution: &Solution) -> Self {
        OneClassSvmModel {
            kernel,
            support: RowGroups::new(
                &solution
                    .support
                    .iter()
                    .flat_map(|&i| rows[i * d..(i + 1) * d].iter().copied())
                    .collect::<Vec<_>>(),
                d,
            ),
            alpha: solution.alpha.clone(),
            rho: solution.rho,
        }
    }

    /// The decision function `Σ αᵢ K(xᵢ, ·)` projected onto the span of `m` of its
    /// support vectors `zⱼ` (drawn uniformly), the closest such function in the kernel's
    /// norm: `β = K_zz⁺ K_zx α`, eigenvalues below `1e-10` of the largest left out. With
    /// `m` or fewer support vectors the expansion is kept as it is.
    fn projected(self, m: usize, rng: &mut rand_pcg::Pcg64) -> Self {
        let (d, kernel) = (self.support.width(), self.kernel);
        let count = self.alpha.len();
        if count <= m {
            return self;
        }
        let mut centres = rand::seq::index::sample(rng, count, m).into_vec();
        centres.sort_unstable();
        let z: Vec<f64> = centres.iter().flat_map(|&i| self.support.row(i)).collect();
        let zj = |j: usize| &z[j * d..(j + 1) * d];
        // K_zx α: each centre's kernel against every support vector, weighted.
        let target: Vec<f64> = (0..m)
            .into_par_iter()
            .map(|j| self.support.weighted_sum(kernel, zj(j), &self.alpha))
            .collect();
        let gram = Array2::from_shape_fn((m, m), |(a, b)| kernel.eval(zj(a), zj(b)));
        let Ok((values, vectors)) = gram.eigh() else {
            // No decomposition: keep the exact expansion.
            return self;
        };
        let largest = values.iter().copied().fold(0.0, f64::max);
        let mut beta = vec![0.0; m];
        for (k, &lambda) in values.iter().enumerate() {
            if lambda > 1e-10 * largest {
                let u = vectors.column(k);
                let weight = u.iter().zip(&target).map(|(a, b)| a * b).sum::<f64>() / lambda;
                for (b, &uj) in beta.iter_mut().zip(u) {
                    *b += weight * uj;
                }
            }
        }
        OneClassSvmModel {
            kernel,
            support: RowGroups::new(&z, d),
            alpha: beta,
            rho: self.rho,
        }
    }

    /// scikit-learn's `decision_function`: `Σ αᵢ K(xᵢ, x) − ρ`.
    pub fn decision(&self, row: &[f64]) -> f64 {
        self.support.weighted_sum(self.kernel, row, &self.alpha) - self.rho
    }

    /// Support vectors.
    pub fn support_vectors(&self) -> usize {
        self.alpha.len()
    }
}

impl Model for OneClassSvmModel {
    type Settings = OneClassSvmSettings;

    fn fit(settings: &OneClassSvmSettings, rows: &[f64], d: usize) -> Result<Self, DetectorError> {
        let kernel = match settings.kernel {
            KernelChoice::Rbf => Kernel::Rbf {
                gamma: settings.gamma.resolve(rows, d),
            },
            KernelChoice::Linear => Kernel::Linear,
        };
        let Some((sample, components, seed)) = settings.approximate else {
            let solution = solve(
                rows,
                d,
                kernel,
                settings.nu,
                settings.tol,
                settings.cache_bytes,
            );
            return Ok(OneClassSvmModel::from_solution(kernel, d, rows, &solution));
        };
        // A uniform sample of the rows, solved exactly.
        let n = rows.len() / d;
        let mut rng = rand_pcg::Pcg64::seed_from_u64(seed);
        let picked: Vec<f64> = if n > sample {
            let mut at = rand::seq::index::sample(&mut rng, n, sample).into_vec();
            at.sort_unstable();
            at.iter()
                .flat_map(|&i| rows[i * d..(i + 1) * d].iter().copied())
                .collect()
        } else {
            rows.to_vec()
        };
        let solution = solve(
            &picked,
            d,
            kernel,
            settings.nu,
            settings.tol,
            settings.cache_bytes,
        );
        let exact = OneClassSvmModel::from_solution(kernel, d, &picked, &solution);
        Ok(exact.projected(components, &mut rng))
    }

    fn model_bytes(s: &OneClassSvmSettings, rows: usize, d: usize) -> u64 {
        let d = d as u64;
        match s.approximate {
            // the sample's rows and kernels while fitting, then the centres
            Some((sample, components, _)) => {
                let sample = sample.min(rows) as u64;
                let m = components as u64;
                sample * 8 * (d + m) + m * m * 8 + m * 8 * (d + 1)
            }
            // every row may be a support vector (rows padded to groups of four), with
            // its coefficient and gradient, and the kernel cache while fitting
            // (the cache holds kernel columns of f32, never more than all of them)
            None => {
                let n = rows as u64 + 4;
                n * 8 * (d + 4) + (s.cache_bytes as u64).min(n.saturating_mul(n) * 4)
            }
        }
    }

    fn score(&self, row: &[f64]) -> f64 {
        -self.decision(row)
    }

    fn save(&self, out: &mut Writer) {
        match self.kernel {
            Kernel::Rbf { gamma } => {
                out.count(0);
                out.number(gamma);
            }
            Kernel::Linear => out.count(1),
        }
        out.count(self.support.width());
        out.number(self.rho);
        out.numbers(&self.alpha);
        out.numbers(&self.support.to_rows());
    }

    fn restore(input: &mut Reader<'_>) -> Result<Self, DetectorError> {
        let kernel = match input.count(1)? {
            0 => Kernel::Rbf {
                gamma: input.number()?,
            },
            _ => Kernel::Linear,
        };
        let d = input.count(1 << 20)?;
        let rho = input.number()?;
        let alpha = input.numbers()?;
        let support = input.numbers()?;
        if d == 0 || support.len() != alpha.len() * d {
            return Err(DetectorError::new(
                ErrorKind::IncompatibleState,
                format!(
                    "model state is corrupt: {} support values for {} vectors of {d}",
                    support.len(),
                    alpha.len()
                ),
            ));
        }
        Ok(OneClassSvmModel {
            kernel,
            support: RowGroups::new(&support, d),
            alpha,
            rho,
        })
    }
}

/// The one-class SVM over one or more inputs.
#[derive(Debug)]
pub struct OneClassSvm {
    trained: Trained<OneClassSvmModel>,
}

impl Detector for OneClassSvm {
    type Params = OneClassSvmParams;
    const NAME: &'static str = "one_class_svm";
    const SUMMARY: &'static str =
        "one-class SVM over one or more inputs, libsvm's solver (PyOD's OCSVM, scikit-learn's OneClassSVM)";
    const INPUTS: Arity = Arity::AtLeast(1);

    fn new(params: OneClassSvmParams, inputs: &[String]) -> Result<Self, DetectorError> {
        let settings = OneClassSvmSettings {
            kernel: params.kernel,
            gamma: params.gamma,
            nu: params.nu,
            tol: params.tol,
            cache_bytes: params.cache_mb << 20,
            approximate: params.approximate.then_some((
                params.sample,
                params.components,
                params.seed as u64,
            )),
        };
        Ok(OneClassSvm {
            trained: Trained::new(settings, inputs.len(), crate::trained::training_of!(params)),
        })
    }

    crate::trained::delegate_to_trained!();
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 40 rows on 2 inputs, a deterministic scatter with two far points.
    fn rows() -> Vec<f64> {
        let mut rows: Vec<f64> = (0..38)
            .flat_map(|i| {
                let t = i as f64;
                [(t * 0.37).sin() * 1.5, (t * 0.61).cos() * 0.8 + t / 40.0]
            })
            .collect();
        rows.extend([4.0, 4.0, -3.5, 2.5]);
        rows
    }

    fn settings(kernel: KernelChoice, gamma: Gamma, nu: f64) -> OneClassSvmSettings {
        OneClassSvmSettings {
            kernel,
            gamma,
            nu,
            tol: 1e-3,
            cache_bytes: 1 << 20,
            approximate: None,
        }
    }

    #[test]
    fn the_decision_function_is_scikit_learns() {
        let rows = rows();
        let query = [0.0, 0.5, 2.0, -1.0, 4.0, 4.0];
        // sklearn.svm.OneClassSVM(kernel, nu, gamma).fit(X): decision_function(Q),
        // the number of support vectors and the offset.
        let cases = [
            (
                settings(KernelChoice::Rbf, Gamma::Auto, 0.5),
                [0.280688924, -3.241291828, -5.494230237],
                24,
                6.496676259708866,
            ),
            (
                settings(KernelChoice::Rbf, Gamma::Scale, 0.1),
                [0.037761927, -0.202317317, -1.488e-05],
                7,
                0.8210122409128221,
            ),
        ];
        for (s, want, support, rho) in cases {
            let model = OneClassSvmModel::fit(&s, &rows, 2).unwrap();
            let got: Vec<f64> = query.chunks(2).map(|q| model.decision(q)).collect();
            assert_eq!(model.support_vectors(), support, "{s:?}");
            assert!((model.rho - rho).abs() < 1e-6, "{s:?}: ρ = {}", model.rho);
            for (g, w) in got.iter().zip(want) {
                assert!((g - w).abs() < 1e-6, "{s:?}: {got:?}");
            }
        }
    }

    #[test]
    fn a_linear_kernel_gives_scikit_learns_coefficients() {
        // The rows moved by +5 (around the origin the optimum is w = 0).
        let rows: Vec<f64> = rows().iter().map(|x| x + 5.0).collect();
        let s = settings(KernelChoice::Linear, Gamma::Auto, 0.3);
        let model = OneClassSvmModel::fit(&s, &rows, 2).unwrap();
        // OneClassSVM(kernel="linear", nu=0.3).fit(X): support_ and dual_coef_. libsvm
        // leaves a coefficient of 7e-15 on row 11 where this solver reaches 0, and that
        // free coefficient alone sets its ρ, so the offsets differ within the tolerance.
        let sklearn: Vec<(usize, f64)> = [11, 12, 13, 14, 15, 16, 17, 25, 26, 27, 28, 29, 39]
            .into_iter()
            .map(|i| (i, if i == 11 { 7.105427357601002e-15 } else { 1.0 }))
            .collect();
        let ours: Vec<f64> = model.support.to_rows().chunks(2).map(|r| r[0]).collect();
        let expected: Vec<f64> = sklearn
            .iter()
            .filter(|(_, a)| *a > 1e-12)
            .map(|&(i, _)| rows[2 * i])
            .collect();
        assert_eq!(ours, expected);
        assert!(model.alpha.iter().all(|&a| a == 1.0));
        // Given scikit-learn's support vectors, coefficients and offset, the decision
        // function is scikit-learn's.
        let theirs = OneClassSvmModel {
            kernel: Kernel::Linear,
            support: RowGroups::new(
                &sklearn
                    .iter()
                    .flat_map(|&(i, _)| [rows[2 * i], rows[2 * i + 1]])
                    .collect::<Vec<_>>(),
                2,
            ),
            alpha: sklearn.iter().map(|&(_, a)| a).collect(),
            rho: 563.3762435913089,
        };
        let want = [24.505949614, 22.968007048, 437.238261512];
        for (q, w) in [[5.0, 5.5], [7.0, 4.0], [9.0, 9.0]].iter().zip(want) {
            assert!((theirs.decision(q) - w).abs() < 1e-6, "{q:?}");
        }
        assert!((model.rho - theirs.rho).abs() < 1e-3 * theirs.rho);
    }

    #[test]
    fn the_approximation_keeps_a_small_expansion_and_projects_a_large_one() {
        let rows = rows();
        let exact = settings(KernelChoice::Rbf, Gamma::Auto, 0.5);
        let model = OneClassSvmModel::fit(&exact, &rows, 2).unwrap();
        let approximate = |components| OneClassSvmSettings {
            approximate: Some((1000, components, 7)),
            ..exact
        };
        // 24 support vectors fit in 30 centres: nothing is projected.
        let same = OneClassSvmModel::fit(&approximate(30), &rows, 2).unwrap();
        assert_eq!(same, model);
        // Onto 12 of them: the closest function in their span, close to the exact one
        // where the data are.
        let small = OneClassSvmModel::fit(&approximate(12), &rows, 2).unwrap();
        assert_eq!(small.support_vectors(), 12);
        for q in rows.chunks(2).step_by(5) {
            let (e, a) = (model.decision(q), small.decision(q));
            assert!(
                (e - a).abs() < 0.25 * model.rho,
                "{q:?}: exact {e}, projected {a}"
            );
        }
    }

    #[test]
    fn gamma_takes_a_number_or_a_rule() {
        assert_eq!(
            Gamma::from_value(&ParamValue::Float(0.25)),
            Some(Gamma::Value(0.25))
        );
        assert_eq!(
            Gamma::from_value(&ParamValue::Text("scale".into())),
            Some(Gamma::Scale)
        );
        assert_eq!(Gamma::from_value(&ParamValue::Text("wide".into())), None);
        assert_eq!(Gamma::Scale.resolve(&[2.0; 6], 2), 1.0);
        assert_eq!(Gamma::Auto.resolve(&[2.0; 6], 3), 1.0 / 3.0);
        // Var of 0, 1, 2, 3 is 1.25.
        assert_eq!(Gamma::Scale.resolve(&[0.0, 1.0, 2.0, 3.0], 2), 1.0 / 2.5);
    }

    #[test]
    fn the_state_round_trips_and_damage_is_refused() {
        let model =
            OneClassSvmModel::fit(&settings(KernelChoice::Rbf, Gamma::Auto, 0.5), &rows(), 2)
                .unwrap();
        let mut out = Writer::default();
        model.save(&mut out);
        assert_eq!(
            OneClassSvmModel::restore(&mut Reader::new(&out.bytes)).unwrap(),
            model
        );
        let cut = &out.bytes[..out.bytes.len() - 8];
        assert!(OneClassSvmModel::restore(&mut Reader::new(cut)).is_err());
    }
}
