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

use adr_sdk::{Arity, Detector, DetectorError, ErrorKind, Event, Frame, Score, ScoresMut};
use kdtree::distance::squared_euclidean;
use kdtree::KdTree;

use crate::state::{Reader, Writer};
use crate::trained::{Model, Trained};

adr_sdk::params! {
    /// Parameters of [`Lof`].
    pub struct LofParams {
        /// Events each key trains on before it is judged (more than `k`).
        train: usize = 1000, min >= 2;
        /// Neighbours.
        k: usize = 20, min >= 1;
        /// Share of training events expected to be outliers: the alarm threshold is the
        /// `1 − contamination` quantile of the training scores.
        contamination: f64 = 0.1, min > 0.0, max <= 0.5;
    }
}

/// The training rows, their neighbourhoods and densities.
pub struct LofModel {
    k: usize,
    rows: Vec<f64>,
    d: usize,
    tree: KdTree<f64, usize, Vec<f64>>,
    /// Each training row's distance to its k-th nearest other row.
    k_distance: Vec<f64>,
    /// Each training row's local reachability density.
    lrd: Vec<f64>,
    /// Each training row's own score (leaving itself out).
    own: Vec<f64>,
}

impl std::fmt::Debug for LofModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LofModel")
            .field("k", &self.k)
            .field("rows", &self.k_distance.len())
            .finish_non_exhaustive()
    }
}

/// `(distance, index)` of the nearest training rows.
fn nearest(tree: &KdTree<f64, usize, Vec<f64>>, row: &[f64], n: usize) -> Vec<(f64, usize)> {
    tree.nearest(row, n, &squared_euclidean)
        .map(|found| found.into_iter().map(|(d, &i)| (d.sqrt(), i)).collect())
        .unwrap_or_default()
}

impl LofModel {
    fn build(k: usize, rows: Vec<f64>, d: usize) -> Result<Self, DetectorError> {
        let n = rows.len() / d;
        if n <= k {
            return Err(DetectorError::new(
                ErrorKind::InvalidParams,
                format!("k = {k} needs more than {k} training rows, got {n}"),
            ));
        }
        let mut tree = KdTree::with_capacity(d, 16);
        for (i, row) in rows.chunks_exact(d).enumerate() {
            tree.add(row.to_vec(), i).map_err(|e| {
                DetectorError::new(ErrorKind::InvalidInput, format!("training row {i}: {e:?}"))
            })?;
        }
        // Each row's k nearest others: k + 1 found, the row itself taken out (or, when
        // more than k + 1 rows coincide and it is not among those found, the first of its
        // duplicates), as scikit-learn's `kneighbors()` does.
        let neighbours: Vec<Vec<(f64, usize)>> = rows
            .chunks_exact(d)
            .enumerate()
            .map(|(i, row)| {
                let mut found = nearest(&tree, row, k + 1);
                let own = found.iter().position(|&(_, j)| j == i).unwrap_or(0);
                found.remove(own);
                found
            })
            .collect();
        let k_distance: Vec<f64> = neighbours.iter().map(|nb| nb[k - 1].0).collect();
        let lrd: Vec<f64> = neighbours
            .iter()
            .map(|nb| density(nb, &k_distance))
            .collect();
        let own = neighbours
            .iter()
            .zip(&lrd)
            .map(|(nb, &l)| factor(nb, &lrd, l))
            .collect();
        Ok(LofModel {
            k,
            rows,
            d,
            tree,
            k_distance,
            lrd,
            own,
        })
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
    type Settings = usize;

    fn fit(k: &usize, rows: &[f64], d: usize) -> Result<Self, DetectorError> {
        LofModel::build(*k, rows.to_vec(), d)
    }

    fn score(&self, row: &[f64]) -> f64 {
        let neighbours = nearest(&self.tree, row, self.k);
        let own = density(&neighbours, &self.k_distance);
        factor(&neighbours, &self.lrd, own)
    }

    fn training_scores(&self, _rows: &[f64], _d: usize) -> Vec<f64> {
        self.own.clone()
    }

    fn save(&self, out: &mut Writer) {
        out.count(self.k);
        out.count(self.d);
        out.numbers(&self.rows);
    }

    fn restore(input: &mut Reader<'_>) -> Result<Self, DetectorError> {
        let k = input.count(1 << 20)?;
        let d = input.count(1 << 20)?;
        let rows = input.numbers()?;
        if d == 0 || rows.len() % d != 0 {
            return Err(DetectorError::new(
                ErrorKind::IncompatibleState,
                format!("{} values do not make rows of {d}", rows.len()),
            ));
        }
        LofModel::build(k, rows, d)
            .map_err(|e| DetectorError::new(ErrorKind::IncompatibleState, e.message().to_owned()))
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
        if params.train <= params.k {
            return Err(DetectorError::invalid_params(format!(
                "train must be more than k = {}, got {}",
                params.k, params.train
            )));
        }
        Ok(Lof {
            trained: Trained::new(params.k, inputs.len(), params.train, params.contamination),
        })
    }

    fn score(&mut self, frame: &Frame<'_>, out: &mut ScoresMut<'_>) -> Result<(), DetectorError> {
        self.trained.score(frame, out)
    }

    fn update(&mut self, event: &Event<'_>) -> Result<Score, DetectorError> {
        self.trained.update(event)
    }

    fn save(&self) -> Option<Vec<u8>> {
        Some(self.trained.save())
    }

    fn restore(&mut self, state: &[u8]) -> Result<(), DetectorError> {
        self.trained.restore(state)
    }
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
        let m = LofModel::fit(&3, &rows, 2).unwrap();
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
        let m = LofModel::fit(&5, &rows, 1).unwrap();
        assert!(m.score(&[1.0]).is_finite());
        assert!(m.score(&[2.0]).is_finite());
        assert!(m.own.iter().all(|s| s.is_finite()));
    }
}
