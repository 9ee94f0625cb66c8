//! k-nearest-neighbour distance (Ramaswamy et al., SIGMOD 2000; Angiulli & Pizzuti 2002),
//! as PyOD's `KNN` computes it: the Euclidean distance of a row to its k-th nearest training
//! row (`largest`), or the mean or median of the distances to its k nearest. Neighbours are
//! found exactly with a k-d tree (the `kdtree` crate). The training rows' own scores, which
//! set the alarm threshold, leave each row out of its neighbours, as PyOD's
//! `decision_scores_` do.

use adr_sdk::{Arity, Detector, DetectorError, ErrorKind, Event, Frame, Score, ScoresMut};
use kdtree::distance::squared_euclidean;
use kdtree::KdTree;

use crate::state::{Reader, Writer};
use crate::trained::{Model, Trained};

adr_sdk::param_choice! {
    /// How the distances to the k nearest neighbours make the score.
    pub enum KnnMethod {
        /// The distance to the k-th nearest.
        Largest = "largest",
        /// The mean of the k distances.
        Mean = "mean",
        /// The median of the k distances.
        Median = "median",
    }
}

adr_sdk::params! {
    /// Parameters of [`Knn`].
    pub struct KnnParams {
        /// Events each key trains on before it is judged (more than `k`).
        train: usize = 1000, min >= 2;
        /// Neighbours.
        k: usize = 5, min >= 1;
        /// How the k distances make the score.
        method: KnnMethod = KnnMethod::Largest;
        /// Share of training events expected to be outliers: the alarm threshold is the
        /// `1 − contamination` quantile of the training scores.
        contamination: f64 = 0.1, min > 0.0, max <= 0.5;
    }
}

/// What KNN is fitted with.
#[derive(Debug, Clone, Copy)]
pub struct KnnSettings {
    k: usize,
    method: KnnMethod,
}

/// The training rows, indexed.
pub struct KnnModel {
    settings: KnnSettings,
    rows: Vec<f64>,
    d: usize,
    tree: KdTree<f64, usize, Vec<f64>>,
}

impl std::fmt::Debug for KnnModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KnnModel")
            .field("rows", &(self.rows.len() / self.d.max(1)))
            .field("d", &self.d)
            .finish_non_exhaustive()
    }
}

impl KnnModel {
    fn build(settings: KnnSettings, rows: Vec<f64>, d: usize) -> Result<Self, DetectorError> {
        let n = rows.len() / d;
        if n <= settings.k {
            return Err(DetectorError::new(
                ErrorKind::InvalidParams,
                format!(
                    "k = {} needs more than {} training rows, got {n}",
                    settings.k, settings.k
                ),
            ));
        }
        let mut tree = KdTree::with_capacity(d, 16);
        for (i, row) in rows.chunks_exact(d).enumerate() {
            tree.add(row.to_vec(), i).map_err(|e| {
                DetectorError::new(ErrorKind::InvalidInput, format!("training row {i}: {e:?}"))
            })?;
        }
        Ok(KnnModel {
            settings,
            rows,
            d,
            tree,
        })
    }

    /// The score from sorted squared distances.
    fn combine(&self, squared: &[f64]) -> f64 {
        let k = self.settings.k;
        let distance = |i: usize| squared[i].sqrt();
        match self.settings.method {
            KnnMethod::Largest => distance(k - 1),
            KnnMethod::Mean => (0..k).map(distance).sum::<f64>() / k as f64,
            KnnMethod::Median if k % 2 == 1 => distance(k / 2),
            KnnMethod::Median => (distance(k / 2 - 1) + distance(k / 2)) / 2.0,
        }
    }

    fn nearest(&self, row: &[f64], n: usize) -> Vec<f64> {
        self.tree
            .nearest(row, n, &squared_euclidean)
            .map(|found| found.into_iter().map(|(d, _)| d).collect())
            .unwrap_or_default()
    }
}

impl Model for KnnModel {
    type Settings = KnnSettings;

    fn fit(settings: &KnnSettings, rows: &[f64], d: usize) -> Result<Self, DetectorError> {
        KnnModel::build(*settings, rows.to_vec(), d)
    }

    fn score(&self, row: &[f64]) -> f64 {
        let squared = self.nearest(row, self.settings.k);
        self.combine(&squared)
    }

    fn training_scores(&self, rows: &[f64], d: usize) -> Vec<f64> {
        rows.chunks_exact(d)
            .map(|row| {
                // The row itself is among its nearest at distance 0: leave one 0 out.
                let squared = self.nearest(row, self.settings.k + 1);
                self.combine(&squared[1..])
            })
            .collect()
    }

    fn save(&self, out: &mut Writer) {
        out.count(self.settings.k);
        out.count(self.settings.method as usize);
        out.count(self.d);
        out.numbers(&self.rows);
    }

    fn restore(input: &mut Reader<'_>) -> Result<Self, DetectorError> {
        let k = input.count(1 << 20)?;
        let method = match input.count(2)? {
            0 => KnnMethod::Largest,
            1 => KnnMethod::Mean,
            _ => KnnMethod::Median,
        };
        let d = input.count(1 << 20)?;
        let rows = input.numbers()?;
        if d == 0 || rows.len() % d != 0 {
            return Err(DetectorError::new(
                ErrorKind::IncompatibleState,
                format!("{} values do not make rows of {d}", rows.len()),
            ));
        }
        KnnModel::build(KnnSettings { k, method }, rows, d)
            .map_err(|e| DetectorError::new(ErrorKind::IncompatibleState, e.message().to_owned()))
    }
}

/// The distance to the nearest training events, over one or more inputs.
#[derive(Debug)]
pub struct Knn {
    trained: Trained<KnnModel>,
}

impl Detector for Knn {
    type Params = KnnParams;
    const NAME: &'static str = "knn";
    const SUMMARY: &'static str =
        "distance to the k nearest training events over one or more inputs (PyOD's KNN)";
    const INPUTS: Arity = Arity::AtLeast(1);

    fn new(params: KnnParams, inputs: &[String]) -> Result<Self, DetectorError> {
        if params.train <= params.k {
            return Err(DetectorError::invalid_params(format!(
                "train must be more than k = {}, got {}",
                params.k, params.train
            )));
        }
        let settings = KnnSettings {
            k: params.k,
            method: params.method,
        };
        Ok(Knn {
            trained: Trained::new(settings, inputs.len(), params.train, params.contamination),
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

    fn model(method: KnnMethod, k: usize) -> KnnModel {
        // Points on a line: 0, 1, 2, 3, 4, 10.
        let rows = vec![0.0, 1.0, 2.0, 3.0, 4.0, 10.0];
        KnnModel::fit(&KnnSettings { k, method }, &rows, 1).unwrap()
    }

    #[test]
    fn scores_follow_pyod() {
        // Query 5: distances 1, 2, 3, 4, 5 to 4, 3, 2, 1, 0.
        let cases = [
            (KnnMethod::Largest, 3, 3.0),
            (KnnMethod::Mean, 3, 2.0),
            (KnnMethod::Median, 3, 2.0),
            (KnnMethod::Median, 4, 2.5),
        ];
        for (method, k, want) in cases {
            assert_eq!(model(method, k).score(&[5.0]), want, "{method:?} k = {k}");
        }
        // Training rows leave themselves out: row 10's nearest others are 4, 3, 2.
        let m = model(KnnMethod::Largest, 3);
        let rows = [0.0, 1.0, 2.0, 3.0, 4.0, 10.0];
        assert_eq!(m.training_scores(&rows, 1)[5], 8.0);
        assert_eq!(m.training_scores(&rows, 1)[2], 2.0);
    }

    #[test]
    fn too_few_rows_and_bad_state_are_errors() {
        let err = KnnModel::fit(
            &KnnSettings {
                k: 5,
                method: KnnMethod::Largest,
            },
            &[1.0, 2.0, 3.0],
            1,
        )
        .unwrap_err();
        assert!(
            err.message()
                .contains("needs more than 5 training rows, got 3"),
            "{err}"
        );
        let params = KnnParams {
            train: 5,
            ..KnnParams::default()
        };
        let err = Knn::new(params, &["x".into()]).unwrap_err();
        assert!(
            err.message().contains("train must be more than k = 5"),
            "{err}"
        );
        let mut out = Writer::default();
        model(KnnMethod::Mean, 2).save(&mut out);
        let back = KnnModel::restore(&mut Reader::new(&out.bytes)).unwrap();
        assert_eq!(back.score(&[5.0]), 1.5);
        let cut = &out.bytes[..out.bytes.len() - 8];
        assert!(KnnModel::restore(&mut Reader::new(cut)).is_err());
    }
}
