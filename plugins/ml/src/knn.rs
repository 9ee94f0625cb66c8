//! k-nearest-neighbour distance (Ramaswamy et al., SIGMOD 2000; Angiulli & Pizzuti 2002),
//! as PyOD's `KNN` computes it: the Euclidean distance of a row to its k-th nearest training
//! row (`largest`), or the mean or median of the distances to its k nearest. Neighbours are
//! found exactly with a k-d tree (the `kdtree` crate). The training rows' own scores, which
//! set the alarm threshold, leave each row out of its neighbours, as PyOD's
//! `decision_scores_` do.

use adr_sdk::{Arity, Detector, DetectorError};
use rayon::prelude::*;

use crate::neighbours::{check_train, Metric, Neighbours};
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
        train: usize = 1000, min >= 2, max <= 10_000_000;
        /// Or train on the events of this first span of event time (at most `train`;
        /// `train on 1h` in a rule sets it). Off when zero.
        train_for: std::time::Duration = std::time::Duration::ZERO;
        /// Standardise each input with the training events' mean and population deviation
        /// before fitting and scoring (PyOD's benchmark does this outside the detector).
        standardise: bool = false;
        /// Neighbours.
        k: usize = 5, min >= 1, max <= 10_000;
        /// How the k distances make the score.
        method: KnnMethod = KnnMethod::Largest;
        /// The distance: `euclidean`, `manhattan` or `chebyshev`.
        metric: Metric = Metric::Euclidean;
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
    metric: Metric,
}

/// The training rows, indexed.
#[derive(Debug)]
pub struct KnnModel {
    settings: KnnSettings,
    neighbours: Neighbours,
}

impl KnnModel {
    /// The score from the distances to the k nearest, nearest first.
    fn combine(&self, nearest: &[(f64, usize)]) -> f64 {
        let k = self.settings.k;
        let distance = |i: usize| nearest[i].0;
        match self.settings.method {
            KnnMethod::Largest => distance(k - 1),
            KnnMethod::Mean => (0..k).map(distance).sum::<f64>() / k as f64,
            KnnMethod::Median if k % 2 == 1 => distance(k / 2),
            KnnMethod::Median => (distance(k / 2 - 1) + distance(k / 2)) / 2.0,
        }
    }
}

impl Model for KnnModel {
    type Settings = KnnSettings;

    fn fit(settings: &KnnSettings, rows: &[f64], d: usize) -> Result<Self, DetectorError> {
        Ok(KnnModel {
            settings: *settings,
            neighbours: Neighbours::new(rows.to_vec(), d, settings.k, settings.metric)?,
        })
    }

    fn model_bytes(_: &KnnSettings, rows: usize, d: usize) -> u64 {
        // the rows kept and indexed
        (rows as u64).saturating_mul(8 * d as u64 + 16)
    }

    fn score(&self, row: &[f64]) -> f64 {
        self.combine(&self.neighbours.nearest(row, self.settings.k))
    }

    fn training_scores(&self, _rows: &[f64], _d: usize) -> Vec<f64> {
        (0..self.neighbours.len())
            .into_par_iter()
            .map(|i| self.combine(&self.neighbours.nearest_others(i, self.settings.k)))
            .collect()
    }

    fn min_rows(settings: &Self::Settings) -> usize {
        settings.k + 1
    }

    fn save(&self, out: &mut Writer) {
        out.count(self.settings.k);
        out.count(self.settings.method as usize);
        self.neighbours.save(out);
    }

    fn restore(input: &mut Reader<'_>) -> Result<Self, DetectorError> {
        let k = input.count(1 << 20)?;
        let method = match input.count(2)? {
            0 => KnnMethod::Largest,
            1 => KnnMethod::Mean,
            _ => KnnMethod::Median,
        };
        let neighbours = Neighbours::restore(input, k)?;
        Ok(KnnModel {
            settings: KnnSettings {
                k,
                method,
                metric: neighbours.metric(),
            },
            neighbours,
        })
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
        check_train(params.train, params.k)?;
        let settings = KnnSettings {
            k: params.k,
            method: params.method,
            metric: params.metric,
        };
        Ok(Knn {
            trained: Trained::new(settings, inputs.len(), crate::trained::training_of!(params)),
        })
    }

    crate::trained::delegate_to_trained!();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(method: KnnMethod, k: usize) -> KnnModel {
        // Points on a line: 0, 1, 2, 3, 4, 10.
        let rows = vec![0.0, 1.0, 2.0, 3.0, 4.0, 10.0];
        let metric = Metric::Euclidean;
        KnnModel::fit(&KnnSettings { k, method, metric }, &rows, 1).unwrap()
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
                metric: Metric::Euclidean,
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
