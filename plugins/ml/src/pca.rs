//! PCA outlier score (Shyu et al. 2003), computed as PyOD's `PCA` computes it: the sum of a
//! row's Euclidean distances to the principal axes (unit vectors, through the origin),
//! each divided by its share of the variance, so the low-variance axes, along which
//! normal rows barely move, weigh the most.
//!
//! Fit (as PyOD with scikit-learn's `PCA`): standardise each input with the training
//! rows' mean and population deviation (a zero deviation counts as 1; `standardise =
//! false` leaves them raw), take the eigenvectors of the covariance of the centred rows
//! (linfa-linalg's `eigh`), largest variance first, each signed so that its largest
//! component is positive (scikit-learn's `svd_flip`), keep the first `n_components`
//! (all by default, at most the number of training rows), and score with the last
//! `n_selected` of them (all by default).
//!
//! Unlike PyOD, an axis with no variance at all (a constant input) is left out: dividing
//! by its zero share makes every score infinite in PyOD. Training rows with no variance
//! along any axis scored (all equal) leave nothing to judge: every later row is
//! undetermined (PyOD's scores are NaN).
//!
//! The scores depend on each axis's sign (the distance is to the axis's unit vector as a
//! point), which follows scikit-learn's `svd_flip`: the largest component positive. Where
//! two components are equal in magnitude up to rounding (two standardised inputs always
//! give axes at 45°), which one is "largest" depends on the last bits of the
//! eigendecomposition, and adr's and scikit-learn's can differ: the scores then differ as
//! PyOD's own would between two LAPACK builds.

use adr_sdk::{Arity, Detector, DetectorError, ErrorKind};
use linfa_linalg::eigh::{EigSort, Eigh};
use ndarray::{Array2, ArrayView2};

use crate::state::{Reader, Writer};
use crate::trained::{Model, Scale, Trained, Training};

adr_sdk::params! {
    /// Parameters of [`Pca`].
    pub struct PcaParams {
        /// Events each key trains on before it is judged.
        train: usize = 1000, min >= 2, max <= 10_000_000;
        /// Or train on the events of this first span of event time (at most `train`;
        /// `train on 1h` in a rule sets it). Off when zero.
        train_for: std::time::Duration = std::time::Duration::ZERO;
        /// Principal axes kept, largest variance first (0: all).
        n_components: usize = 0, max <= 10_000;
        /// Of those, how many of the last (lowest-variance) ones score (0: all kept).
        n_selected: usize = 0, max <= 10_000;
        /// Divide each distance by its axis's share of the variance.
        weighted: bool = true;
        /// Standardise each input with the training rows' mean and deviation first.
        standardise: bool = true;
        /// Share of training events expected to be outliers: the alarm threshold is the
        /// `1 − contamination` quantile of the training scores.
        contamination: f64 = 0.1, min > 0.0, max <= 0.5;
    }
}

/// What PCA is fitted with.
#[derive(Debug, Clone, Copy)]
pub struct PcaSettings {
    n_components: usize,
    n_selected: usize,
    weighted: bool,
    standardise: bool,
}

/// The scaling and the principal axes that score.
#[derive(Debug, Clone, PartialEq)]
pub struct PcaModel {
    /// Per input: subtracted, then divided by `scale`.
    mean: Vec<f64>,
    scale: Vec<f64>,
    /// The scoring axes, row-major, `d` values each.
    axes: Vec<f64>,
    /// Each axis's divisor (its share of the variance, or 1).
    weights: Vec<f64>,
}

fn invalid(message: String) -> DetectorError {
    DetectorError::new(ErrorKind::InvalidInput, message)
}

impl Model for PcaModel {
    type Settings = PcaSettings;

    fn fit(settings: &PcaSettings, rows: &[f64], d: usize) -> Result<Self, DetectorError> {
        let n = rows.len() / d;
        let view = ArrayView2::from_shape((n, d), rows).expect("rows are n × d");
        let (mean, scale) = if settings.standardise {
            let Scale { mean, std } = Scale::of(rows, d);
            (mean, std)
        } else {
            (vec![0.0; d], vec![1.0; d])
        };
        let z = Array2::from_shape_fn((n, d), |(i, c)| (view[[i, c]] - mean[c]) / scale[c]);
        let centre = z.mean_axis(ndarray::Axis(0)).expect("n ≥ 2");
        let centred = &z - &centre;
        let covariance = centred.t().dot(&centred) / (n as f64 - 1.0);
        let (values, vectors) = covariance
            .eigh()
            .map_err(|e| invalid(format!("the covariance has no eigendecomposition: {e}")))?
            .sort_eig_desc();
        let total: f64 = values.iter().map(|v| v.max(0.0)).sum();
        let available = d.min(n);
        let kept = match settings.n_components {
            0 => available,
            k if k > available => {
                return Err(invalid(format!(
                    "n_components = {k}, but {n} training rows on {d} inputs give at most {available} axes"
                )))
            }
            k => k,
        };
        let selected = match settings.n_selected {
            0 => kept,
            s if s > kept => {
                return Err(invalid(format!(
                    "n_selected = {s} is more than the {kept} axes kept"
                )))
            }
            s => s,
        };
        let (mut axes, mut weights) = (Vec::new(), Vec::new());
        for j in kept - selected..kept {
            let share = if total > 0.0 { values[j] / total } else { 0.0 };
            if share <= 0.0 {
                continue;
            }
            let mut axis = vectors.column(j).to_vec();
            // svd_flip: the component of largest magnitude (the first such) is positive.
            let largest =
                axis.iter().enumerate().fold(
                    0,
                    |best, (i, x)| {
                        if x.abs() > axis[best].abs() {
                            i
                        } else {
                            best
                        }
                    },
                );
            if axis[largest] < 0.0 {
                axis.iter_mut().for_each(|x| *x = -*x);
            }
            axes.extend(axis);
            weights.push(if settings.weighted { share } else { 1.0 });
        }
        // No variance along any axis scored (constant training rows): nothing can be
        // judged. PyOD's scores are NaN there; here every row is undetermined.
        Ok(PcaModel {
            mean,
            scale,
            axes,
            weights,
        })
    }

    fn model_bytes(_: &PcaSettings, rows: usize, d: usize) -> u64 {
        // while fitting: the standardised, scaled and centred copies of the rows and the
        // covariance (measured: what a fit leaves behind stays with the key's heap); then
        // the axes
        let d = d as u64;
        3 * (rows as u64).saturating_mul(8 * d) + 3 * 8 * d * d + 32 * d
    }

    fn score(&self, row: &[f64]) -> f64 {
        if self.weights.is_empty() {
            return f64::NAN;
        }
        let d = self.mean.len();
        self.axes
            .chunks_exact(d)
            .zip(&self.weights)
            .map(|(axis, w)| {
                let squared: f64 = (0..d)
                    .map(|c| {
                        let z = (row[c] - self.mean[c]) / self.scale[c];
                        (z - axis[c]) * (z - axis[c])
                    })
                    .sum();
                squared.sqrt() / w
            })
            .sum()
    }

    fn save(&self, out: &mut Writer) {
        out.numbers(&self.mean);
        out.numbers(&self.scale);
        out.numbers(&self.axes);
        out.numbers(&self.weights);
    }

    fn restore(input: &mut Reader<'_>) -> Result<Self, DetectorError> {
        let model = PcaModel {
            mean: input.numbers()?,
            scale: input.numbers()?,
            axes: input.numbers()?,
            weights: input.numbers()?,
        };
        let d = model.mean.len();
        if d == 0 || model.scale.len() != d || model.axes.len() != d * model.weights.len() {
            return Err(DetectorError::new(
                ErrorKind::IncompatibleState,
                format!(
                    "model state is corrupt: {} axis values for {d} inputs and {} axes",
                    model.axes.len(),
                    model.weights.len()
                ),
            ));
        }
        Ok(model)
    }
}

/// The PCA reconstruction-distance score over one or more inputs.
#[derive(Debug)]
pub struct Pca {
    trained: Trained<PcaModel>,
}

impl Detector for Pca {
    type Params = PcaParams;
    const NAME: &'static str = "pca";
    const SUMMARY: &'static str =
        "distance to the principal axes of the training events, weighted by variance (PyOD's PCA)";
    const INPUTS: Arity = Arity::AtLeast(1);

    fn new(params: PcaParams, inputs: &[String]) -> Result<Self, DetectorError> {
        // What the inputs and the training rows allow is known now: refuse it here (and
        // so in `adr check`) rather than at the fit.
        let d = inputs.len();
        let axes = d.min(params.train);
        let refuse = |why: String| Err(DetectorError::new(ErrorKind::InvalidParams, why));
        if params.n_components > axes {
            return refuse(format!(
                "n_components = {}, but {d} input{} and train = {} give at most {axes} axes",
                params.n_components,
                if d == 1 { "" } else { "s" },
                params.train
            ));
        }
        let kept = if params.n_components == 0 {
            axes
        } else {
            params.n_components
        };
        if params.n_selected > kept {
            return refuse(format!(
                "n_selected = {} is more than the {kept} axes kept",
                params.n_selected
            ));
        }
        let settings = PcaSettings {
            n_components: params.n_components,
            n_selected: params.n_selected,
            weighted: params.weighted,
            standardise: params.standardise,
        };
        Ok(Pca {
            trained: Trained::new(
                settings,
                inputs.len(),
                Training::of(params.train, params.train_for, params.contamination),
            ),
        })
    }

    crate::trained::delegate_to_trained!();
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: PcaSettings = PcaSettings {
        n_components: 0,
        n_selected: 0,
        weighted: true,
        standardise: true,
    };

    // Six rows on three inputs.
    const ROWS: [f64; 18] = [
        1.0, 2.0, 0.5, 2.0, 3.5, 1.0, 3.0, 6.5, 0.0, 4.0, 8.0, 2.5, 5.0, 9.5, 1.5, 6.0, 13.0, 3.0,
    ];
    const QUERY: [f64; 6] = [3.5, 7.0, 1.0, 0.0, 10.0, -1.0];

    fn check(settings: PcaSettings, want_train: &[f64], want_query: &[f64]) {
        let model = PcaModel::fit(&settings, &ROWS, 3).unwrap();
        let train = model.training_scores(&ROWS, 3);
        let query = model.score_batch(&QUERY, 3);
        for (got, want) in train
            .iter()
            .chain(&query)
            .zip(want_train.iter().chain(want_query))
        {
            assert!(
                (got - want).abs() < 1e-6 * want.abs(),
                "{settings:?}: {train:?} {query:?}"
            );
        }
    }

    #[test]
    fn scores_do_not_depend_on_the_inputs_scale() {
        let plain = PcaModel::fit(&ALL, &ROWS, 3)
            .unwrap()
            .score_batch(&QUERY, 3);
        for factor in [1e-300, 1e-150, 1e150, 1e300] {
            let rows: Vec<f64> = ROWS.iter().map(|x| x * factor).collect();
            let query: Vec<f64> = QUERY.iter().map(|x| x * factor).collect();
            let scaled = PcaModel::fit(&ALL, &rows, 3)
                .unwrap()
                .score_batch(&query, 3);
            for (a, b) in plain.iter().zip(&scaled) {
                assert!(
                    (a - b).abs() <= 1e-9 * a.abs(),
                    "x{factor:e}: {plain:?} vs {scaled:?}"
                );
            }
        }
    }

    #[test]
    fn scores_are_pyods() {
        // pyod.models.pca.PCA(**kw).fit(X): decision_scores_ and decision_function(Q).
        check(
            ALL,
            &[
                859.020505958,
                584.35103762,
                622.856776381,
                512.772900429,
                488.312520371,
                1009.419294583,
            ],
            &[375.56260693, 1367.570111348],
        );
        // n_selected_components = 2, weighted = False
        check(
            PcaSettings {
                n_selected: 2,
                weighted: false,
                ..ALL
            },
            &[
                4.695309582,
                3.117738508,
                3.946622134,
                2.409418409,
                3.175673192,
                5.659680651,
            ],
            &[2.397689447, 7.620170888],
        );
        // standardization = False, n_components = 2
        check(
            PcaSettings {
                n_components: 2,
                standardise: false,
                ..ALL
            },
            &[
                95.43554727,
                163.55028867,
                287.914472064,
                360.051347349,
                425.247690279,
                569.953380491,
            ],
            &[311.443356795, 403.550945304],
        );
    }

    #[test]
    fn too_many_axes_and_constant_rows_are_errors_and_damage_is_refused() {
        let err = PcaModel::fit(
            &PcaSettings {
                n_components: 4,
                ..ALL
            },
            &ROWS,
            3,
        )
        .unwrap_err();
        assert!(err.message().contains("at most 3 axes"), "{err}");
        // constant rows: nothing to judge, every score NaN (undetermined), as PyOD's NaN
        let constant = PcaModel::fit(&ALL, &[2.0; 12], 3).unwrap();
        assert!(constant.score_batch(&QUERY, 3).iter().all(|s| s.is_nan()));
        let model = PcaModel::fit(&ALL, &ROWS, 3).unwrap();
        let mut out = Writer::default();
        model.save(&mut out);
        assert_eq!(
            PcaModel::restore(&mut Reader::new(&out.bytes)).unwrap(),
            model
        );
        let cut = &out.bytes[..out.bytes.len() - 8];
        assert!(PcaModel::restore(&mut Reader::new(cut)).is_err());
    }
}
