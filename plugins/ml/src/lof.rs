//! Local outlier factor (Breunig et al., SIGMOD 2000) in novelty mode, as scikit-learn's
//! `LocalOutlierFactor(novelty=True)` behind PyOD's `LOF` computes it.
//!
//! Fit: each training row's k nearest other training rows (exact, k-d tree), its
//! k-distance, and its local reachability density `lrd = 1 / (mean reach-dist + 1e-10)`,
//! where `reach-dist(a, b) = max(dist(a, b), k-distance(b))`. Score of a row: the mean of
//! `lrd(neighbour) / lrd(row)` over its k nearest training rows; about 1 inside a cluster,
//! larger for a row in a sparser place than its neighbours. The training rows' own scores
//! (the threshold) leave each row out of its neighbours, as scikit-learn's
//! `negative_outlier_factor_` does. Duplicate points are allowed: the `1e-10` keeps a
//! density finite where more than k rows coincide (scikit-learn's guard).

use adr_sdk::{Arity, Detector, DetectorError};
use rayon::prelude::*;

use crate::neighbours::{check_train, Metric, Neighbours};
use crate::state::{Reader, Writer};
use crate::trained::{Model, Trained};

adr_sdk::params! {
    /// Parameters of [`Lof`].
    pub struct LofParams {
        /// Events each key trains on before it is judged (more than `k`).
        train: usize = 1000, min >= 2, max <= 10_000_000;
        /// Or train on the events of this first span of event time (at most `train`;
        /// `train on 1h` in a rule sets it). Off when zero.
        train_for: std::time::Duration = std::time::Duration::ZERO;
        /// Standardise each input with the training events' mean and population deviation
        /// before fitting and scoring (PyOD's benchmark does this outside the detector).
        standardise: bool = false;
        /// Neighbours.
        k: usize = 20, min >= 1, max <= 10_000;
        /// The distance: `euclidean`, `manhattan` or `chebyshev`.
        metric: Metric = Metric::Euclidean;
        /// Share of training events expected to be outliers: the alarm threshold is the
        /// `1 − contamination` quantile of the training scores.
        contamination: f64 = 0.1, min > 0.0, max <= 0.5;
    }
}

/// The training rows, their neighbourhoods and densities.
#[derive(Debug)]
pub struct LofModel {
    k: usize,
    neighbours: Neighbours,
    /// Each training row's distance to its k-th nearest other row.
    k_distance: Vec<f64>,
    /// Each training row's local reachability density.
    lrd: Vec<f64>,
    /// Each training row's own score (leaving itself out).
    own: Vec<f64>,
}

impl LofModel {
    fn build(k: usize, neighbours: Neighbours) -> Self {
        let hoods: Vec<Vec<(f64, usize)>> = (0..neighbours.len())
            .into_par_iter()
            .map(|i| neighbours.nearest_others(i, k))
            .collect();
        let k_distance: Vec<f64> = hoods.iter().map(|nb| nb[k - 1].0).collect();
        let lrd: Vec<f64> = hoods
            .par_iter()
            .map(|nb| density(nb, &k_distance))
            .collect();
        let own = hoods
            .par_iter()
            .zip(&lrd)
            .map(|(nb, &l)| factor(nb, &lrd, l))
            .collect();
        LofModel {
            k,
            neighbours,
            k_distance,
            lrd,
            own,
        }
    }
}

/// `1 / (mean reach-dist + 1e-10)` over the neighbours.
fn density(neighbours: &[(f64, usize)], k_distance: &[f64]) -> f64 {
    let mean = neighbours
        .iter()
        .map(|&(dist, j)| dist.max(k_distance[j]))
        .sum::<f64>()
        / neighbours.len() as f64;
    1.0 / (mean + 1e-10)
}

/// The mean of `lrd(neighbour) / lrd(row)`.
fn factor(neighbours: &[(f64, usize)], lrd: &[f64], own: f64) -> f64 {
    neighbours.iter().map(|&(_, j)| lrd[j] / own).sum::<f64>() / neighbours.len() as f64
}

impl Model for LofModel {
    type Settings = (usize, Metric);

    fn fit(&(k, metric): &(usize, Metric), rows: &[f64], d: usize) -> Result<Self, DetectorError> {
        Ok(LofModel::build(
            k,
            Neighbours::new(rows.to_vec(), d, k, metric)?,
        ))
    }

    fn model_bytes(_: &(usize, Metric), rows: usize, d: usize) -> u64 {
        // the rows kept and indexed, each row's k-distance, density and own score
        (rows as u64).saturating_mul(8 * d as u64 + 16 + 24)
    }

    fn score(&self, row: &[f64]) -> f64 {
        let neighbours = self.neighbours.nearest(row, self.k);
        let own = density(&neighbours, &self.k_distance);
        factor(&neighbours, &self.lrd, own)
    }

    fn training_scores(&self, _rows: &[f64], _d: usize) -> Vec<f64> {
        self.own.clone()
    }

    fn min_rows(&(k, _): &Self::Settings) -> usize {
        k + 1
    }

    fn save(&self, out: &mut Writer) {
        out.count(self.k);
        self.neighbours.save(out);
    }

    fn restore(input: &mut Reader<'_>) -> Result<Self, DetectorError> {
        let k = input.count(1 << 20)?;
        Ok(LofModel::build(k, Neighbours::restore(input, k)?))
    }
}

/// The local outlier factor of each event against the training events.
#[derive(Debug)]
pub struct Lof {
    trained: Trained<LofModel>,
}

impl Detector for Lof {
    type Params = LofParams;
    const NAME: &'static str = "lof";
    const SUMMARY: &'static str =
        "local outlier factor against the training events, over one or more inputs (PyOD's LOF)";
    const INPUTS: Arity = Arity::AtLeast(1);

    fn new(params: LofParams, inputs: &[String]) -> Result<Self, DetectorError> {
        check_train(params.train, params.k)?;
        Ok(Lof {
            trained: Trained::new(
                (params.k, params.metric),
                inputs.len(),
                crate::trained::training_of!(params),
            ),
        })
    }

    crate::trained::delegate_to_trained!();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_point_in_a_cluster_scores_about_one_and_an_isolated_one_more() {
        // A 5 × 5 grid and one far point.
        let mut rows: Vec<f64> = (0..25)
            .flat_map(|i| [(i % 5) as f64, (i / 5) as f64])
            .collect();
        rows.extend([20.0, 20.0]);
        let m = LofModel::fit(&(3, Metric::Euclidean), &rows, 2).unwrap();
        let inside = m.score(&[2.0, 2.0]);
        let far = m.score(&[40.0, 40.0]);
        assert!((inside - 1.0).abs() < 0.2, "{inside}");
        assert!(far > 5.0, "{far}");
        assert!(
            m.training_scores(&rows, 2)[25] > 3.0,
            "the far training point"
        );
    }

    #[test]
    fn duplicates_keep_densities_finite() {
        let rows = vec![1.0; 30];
        let m = LofModel::fit(&(5, Metric::Euclidean), &rows, 1).unwrap();
        assert!(m.score(&[1.0]).is_finite());
        assert!(m.score(&[2.0]).is_finite());
        assert!(m.own.iter().all(|s| s.is_finite()));
    }
}
