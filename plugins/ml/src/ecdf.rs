//! ECOD (Li et al., TKDE 2022) and COPOD (Li et al., ICDM 2020): outlier scores from the
//! empirical distribution of each input, computed as PyOD's `ECOD` and `COPOD` compute them.
//!
//! Per input, the left and right tail probabilities of a value are the shares of the
//! reference rows at or below it and at or above it, `F_l` and `F_r`, and its tail scores
//! `U_l = −ln F_l`, `U_r = −ln F_r`. The input's skewness picks the tail that counts:
//! `U_s = U_l` when it is negative, `U_r` when positive, `U_l + U_r` when zero (PyOD's
//! `U_l·−sign(s − 1) + U_r·sign(s + 1)`). A row's score sums over the inputs
//! `max(U_s, U_l, U_r)` (ECOD) or `max(U_s, (U_l + U_r) / 2)` (COPOD).
//!
//! What the reference rows are (`ecdf`):
//! - `train` (the default): the training rows and the event itself, `F_l = (1 + #{≤ x}) /
//!   (n + 1)`, with the training rows' skewness. Each event is scored on its own, the same
//!   whatever the batching: the streaming form of the method.
//! - `batch`: the training rows and every row judged in the same batch, with the skewness
//!   of them all. This is what PyOD's `decision_function(X)` does (it concatenates its
//!   training rows and `X`), so scores depend on the batch: an offline mode for comparing
//!   with PyOD on a test set scored in one call. A single event is a batch of one.
//!
//! The training rows' own scores (which set the alarm threshold) use the training rows
//! alone, `F_l = #{≤ x} / n`, as PyOD's `decision_scores_` do.

use adr_sdk::{Arity, Detector, DetectorError, ErrorKind};
use rayon::prelude::*;

use crate::state::{Reader, Writer};
use crate::trained::{Model, Trained};

adr_sdk::param_choice! {
    /// Which rows the empirical distributions are taken over when a batch is judged.
    pub enum EcdfOver {
        /// The training rows and the event: each event on its own.
        Train = "train",
        /// The training rows and every row of the batch judged (PyOD's `decision_function`).
        Batch = "batch",
    }
}

/// How the two tail scores of an input combine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tails {
    /// ECOD: `max(U_s, U_l, U_r)`.
    Ecod,
    /// COPOD: `max(U_s, (U_l + U_r) / 2)`.
    Copod,
}

impl Tails {
    /// One input's contribution from its tail scores and skewness sign.
    fn combine(self, left: f64, right: f64, skew_sign: f64) -> f64 {
        let skewed = if skew_sign < 0.0 {
            left
        } else if skew_sign > 0.0 {
            right
        } else {
            left + right
        };
        match self {
            Tails::Ecod => skewed.max(left).max(right),
            Tails::Copod => skewed.max((left + right) / 2.0),
        }
    }
}

/// What ECOD and COPOD are fitted with.
#[derive(Debug, Clone, Copy)]
pub struct EcdfSettings {
    tails: Tails,
    over: EcdfOver,
}

/// Count, mean and the sums of squared and cubed deviations of one input's values, which
/// combine exactly across two sets of values (Chan, Golub & LeVeque's pairwise formulas).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
struct Moments {
    n: f64,
    mean: f64,
    m2: f64,
    m3: f64,
}

impl Moments {
    fn of(values: &[f64]) -> Moments {
        let n = values.len() as f64;
        let mean = values.iter().sum::<f64>() / n;
        let (m2, m3) = values.iter().fold((0.0, 0.0), |(m2, m3), &x| {
            let dx = x - mean;
            (m2 + dx * dx, m3 + dx * dx * dx)
        });
        Moments { n, mean, m2, m3 }
    }

    fn merge(a: Moments, b: Moments) -> Moments {
        let n = a.n + b.n;
        let delta = b.mean - a.mean;
        Moments {
            n,
            mean: a.mean + delta * b.n / n,
            m2: a.m2 + b.m2 + delta * delta * a.n * b.n / n,
            m3: a.m3
                + b.m3
                + delta.powi(3) * a.n * b.n * (a.n - b.n) / (n * n)
                + 3.0 * delta * (a.n * b.m2 - b.n * a.m2) / n,
        }
    }

    /// The sign of the (biased) sample skewness, `0` for a constant input: scipy's `skew`
    /// gives NaN when the variance is within rounding of zero, and PyOD makes that 0.
    fn skew_sign(&self) -> f64 {
        let variance = self.m2 / self.n;
        if variance <= (f64::EPSILON * self.mean).powi(2) {
            return 0.0;
        }
        let skew = (self.m3 / self.n) / variance.powf(1.5);
        if skew == 0.0 || skew.is_nan() {
            0.0
        } else {
            skew.signum()
        }
    }
}

/// Rows of `sorted` at or below `x`, and at or above it.
fn at_or_below_above(sorted: &[f64], x: f64) -> (usize, usize) {
    let below_or_equal = sorted.partition_point(|&v| v <= x);
    let below = sorted.partition_point(|&v| v < x);
    (below_or_equal, sorted.len() - below)
}

/// One input of the fitted model.
#[derive(Debug, Clone, PartialEq)]
struct Input {
    /// The training values, increasing.
    sorted: Vec<f64>,
    moments: Moments,
}

/// The training rows' empirical distribution, per input.
#[derive(Debug)]
pub struct EcdfModel {
    settings: EcdfSettings,
    inputs: Vec<Input>,
}

impl EcdfModel {
    fn training_rows(&self) -> usize {
        self.inputs[0].sorted.len()
    }

    /// Tail scores of `x` on one input, with `extra` more rows at or below and above it
    /// among `extra_n` rows besides the training ones.
    fn tails(input: &Input, x: f64, extra: (usize, usize), extra_n: usize) -> (f64, f64) {
        let (le, ge) = at_or_below_above(&input.sorted, x);
        let n = (input.sorted.len() + extra_n) as f64;
        (
            -((le + extra.0) as f64 / n).ln(),
            -((ge + extra.1) as f64 / n).ln(),
        )
    }

    /// PyOD's `decision_function` on a batch: the distributions over the training rows and
    /// the batch together.
    fn score_together(&self, rows: &[f64], d: usize) -> Vec<f64> {
        let m = rows.len() / d;
        let tails = self.settings.tails;
        let per_input: Vec<Vec<f64>> = self
            .inputs
            .par_iter()
            .enumerate()
            .map(|(c, input)| {
                let column: Vec<f64> = rows.iter().skip(c).step_by(d).copied().collect();
                let mut batch = column.clone();
                batch.sort_by(f64::total_cmp);
                let sign = Moments::merge(input.moments, Moments::of(&column)).skew_sign();
                column
                    .iter()
                    .map(|&x| {
                        let (l, r) = Self::tails(input, x, at_or_below_above(&batch, x), m);
                        tails.combine(l, r, sign)
                    })
                    .collect()
            })
            .collect();
        (0..m)
            .map(|i| per_input.iter().map(|column| column[i]).sum())
            .collect()
    }
}

impl Model for EcdfModel {
    type Settings = EcdfSettings;

    fn fit(settings: &EcdfSettings, rows: &[f64], d: usize) -> Result<Self, DetectorError> {
        let inputs = (0..d)
            .into_par_iter()
            .map(|c| {
                let mut sorted: Vec<f64> = rows.iter().skip(c).step_by(d).copied().collect();
                let moments = Moments::of(&sorted);
                sorted.sort_by(f64::total_cmp);
                Input { sorted, moments }
            })
            .collect();
        Ok(EcdfModel {
            settings: *settings,
            inputs,
        })
    }

    fn score(&self, row: &[f64]) -> f64 {
        if self.settings.over == EcdfOver::Batch {
            return self.score_together(row, row.len())[0];
        }
        let tails = self.settings.tails;
        row.iter()
            .zip(&self.inputs)
            .map(|(&x, input)| {
                let (l, r) = Self::tails(input, x, (1, 1), 1);
                tails.combine(l, r, input.moments.skew_sign())
            })
            .sum()
    }

    fn score_batch(&self, rows: &[f64], d: usize) -> Vec<f64> {
        match self.settings.over {
            EcdfOver::Batch => self.score_together(rows, d),
            EcdfOver::Train => rows
                .par_chunks(256 * d)
                .flat_map_iter(|chunk| chunk.chunks_exact(d).map(|r| self.score(r)))
                .collect(),
        }
    }

    fn training_scores(&self, rows: &[f64], d: usize) -> Vec<f64> {
        let tails = self.settings.tails;
        rows.par_chunks(256 * d)
            .flat_map_iter(|chunk| {
                chunk.chunks_exact(d).map(|row| {
                    row.iter()
                        .zip(&self.inputs)
                        .map(|(&x, input)| {
                            let (l, r) = Self::tails(input, x, (0, 0), 0);
                            tails.combine(l, r, input.moments.skew_sign())
                        })
                        .sum()
                })
            })
            .collect()
    }

    fn save(&self, out: &mut Writer) {
        out.count(usize::from(self.settings.tails == Tails::Copod));
        out.count(usize::from(self.settings.over == EcdfOver::Batch));
        out.count(self.inputs.len());
        for input in &self.inputs {
            let m = input.moments;
            out.numbers(&[m.n, m.mean, m.m2, m.m3]);
            out.numbers(&input.sorted);
        }
    }

    fn restore(input: &mut Reader<'_>) -> Result<Self, DetectorError> {
        let tails = [Tails::Ecod, Tails::Copod][input.count(1)?];
        let over = [EcdfOver::Train, EcdfOver::Batch][input.count(1)?];
        let d = input.count(1 << 20)?;
        let inputs: Vec<Input> = (0..d)
            .map(|_| {
                let m = input.numbers()?;
                let sorted = input.numbers()?;
                let [n, mean, m2, m3] = m[..] else {
                    return Err(corrupt(format!("{} moments instead of 4", m.len())));
                };
                if sorted.is_empty() || n != sorted.len() as f64 {
                    return Err(corrupt(format!(
                        "{} sorted values for a count of {n}",
                        sorted.len()
                    )));
                }
                Ok(Input {
                    sorted,
                    moments: Moments { n, mean, m2, m3 },
                })
            })
            .collect::<Result<_, _>>()?;
        let model = EcdfModel {
            settings: EcdfSettings { tails, over },
            inputs,
        };
        if model.inputs.is_empty()
            || model
                .inputs
                .iter()
                .any(|i| i.sorted.len() != model.training_rows())
        {
            return Err(corrupt("inputs of different lengths".into()));
        }
        Ok(model)
    }
}

fn corrupt(why: String) -> DetectorError {
    DetectorError::new(
        ErrorKind::IncompatibleState,
        format!("model state is corrupt: {why}"),
    )
}

macro_rules! ecdf_detector {
    ($name:ident, $params:ident, $rule:literal, $tails:expr, $summary:literal) => {
        adr_sdk::params! {
            #[doc = concat!("Parameters of [`", stringify!($name), "`].")]
            pub struct $params {
                /// Events each key trains on before it is judged.
                train: usize = 1000, min >= 2;
                /// Which rows the distributions are taken over when a batch is judged:
                /// `train` (each event on its own) or `batch` (PyOD's, batch-dependent).
                ecdf: EcdfOver = EcdfOver::Train;
                /// Share of training events expected to be outliers: the alarm threshold
                /// is the `1 − contamination` quantile of the training scores.
                contamination: f64 = 0.1, min > 0.0, max <= 0.5;
            }
        }

        #[doc = $summary]
        #[derive(Debug)]
        pub struct $name {
            trained: Trained<EcdfModel>,
        }

        impl Detector for $name {
            type Params = $params;
            const NAME: &'static str = $rule;
            const SUMMARY: &'static str = $summary;
            const INPUTS: Arity = Arity::AtLeast(1);

            fn new(params: $params, inputs: &[String]) -> Result<Self, DetectorError> {
                let settings = EcdfSettings {
                    tails: $tails,
                    over: params.ecdf,
                };
                Ok($name {
                    trained: Trained::new(
                        settings,
                        inputs.len(),
                        params.train,
                        params.contamination,
                    ),
                })
            }

            crate::trained::delegate_to_trained!();
        }
    };
}

ecdf_detector!(
    Ecod,
    EcodParams,
    "ecod",
    Tails::Ecod,
    "empirical-CDF outlier score over one or more inputs, tail picked by skewness (PyOD's ECOD)"
);
ecdf_detector!(
    Copod,
    CopodParams,
    "copod",
    Tails::Copod,
    "copula-based outlier score over one or more inputs (PyOD's COPOD)"
);

#[cfg(test)]
mod tests {
    use super::*;

    fn fit(tails: Tails, over: EcdfOver, rows: &[f64], d: usize) -> EcdfModel {
        EcdfModel::fit(&EcdfSettings { tails, over }, rows, d).unwrap()
    }

    // Training rows (2 inputs): x = 1, 2, 2, 3, 10 (right-skewed), y = 5, 4, 3, 2, 1.
    const ROWS: [f64; 10] = [1.0, 5.0, 2.0, 4.0, 2.0, 3.0, 3.0, 2.0, 10.0, 1.0];

    #[test]
    fn training_scores_are_pyods_decision_scores() {
        // pyod.models.ecod.ECOD().fit(X).decision_scores_ and COPOD's, for X = ROWS:
        let ecod = [3.218876, 1.65026, 1.532477, 2.055725, 3.218876];
        let copod = [2.414157, 1.506419, 1.388636, 2.055725, 3.218876];
        for (tails, want) in [(Tails::Ecod, ecod), (Tails::Copod, copod)] {
            let got = fit(tails, EcdfOver::Train, &ROWS, 2).training_scores(&ROWS, 2);
            for (g, w) in got.iter().zip(want) {
                assert!((g - w).abs() < 1e-6, "{tails:?}: {got:?}");
            }
        }
    }

    #[test]
    fn a_batch_is_scored_with_the_training_rows_as_pyod_does() {
        // ECOD().fit(X).decision_function(T) and COPOD's, for T = [[0, 3], [4, 6], [2, 2]]:
        let test = [0.0, 3.0, 4.0, 6.0, 2.0, 2.0];
        let ecod = [2.549445, 3.465736, 1.450833];
        let copod = [1.509724, 3.465736, 0.936023];
        for (tails, want) in [(Tails::Ecod, ecod), (Tails::Copod, copod)] {
            let model = fit(tails, EcdfOver::Batch, &ROWS, 2);
            let got = model.score_batch(&test, 2);
            for (g, w) in got.iter().zip(want) {
                assert!((g - w).abs() < 1e-6, "{tails:?}: {got:?}");
            }
            // A single event is a batch of one (PyOD: ECOD 2.602690, COPOD 1.706810).
            let one = model.score(&test[..2]);
            let pyod = [2.602690, 1.706810][usize::from(tails == Tails::Copod)];
            assert!((one - pyod).abs() < 1e-6, "{tails:?}: {one}");
        }
    }

    #[test]
    fn each_event_on_its_own_counts_itself_among_the_training_rows() {
        let model = fit(Tails::Ecod, EcdfOver::Train, &ROWS, 2);
        // x = 0 is below every training value: F_l = 1/6, F_r = 6/6; y = 3: F_l = 4/6,
        // F_r = 4/6. x is right-skewed (U_s = U_r), y symmetric (U_s = U_l + U_r).
        let want = (6.0f64).ln() + 2.0 * (6.0f64 / 4.0).ln();
        assert!((model.score(&[0.0, 3.0]) - want).abs() < 1e-12);
        let batch = model.score_batch(&[0.0, 3.0, 0.0, 3.0], 2);
        assert_eq!(batch, vec![model.score(&[0.0, 3.0]); 2]);
    }

    #[test]
    fn moments_merge_exactly() {
        let (a, b) = ([1.0, 2.0, 4.0], [8.0, -3.0]);
        let all = Moments::of(&[1.0, 2.0, 4.0, 8.0, -3.0]);
        let merged = Moments::merge(Moments::of(&a), Moments::of(&b));
        for (x, y) in [
            (all.mean, merged.mean),
            (all.m2, merged.m2),
            (all.m3, merged.m3),
        ] {
            assert!((x - y).abs() < 1e-9, "{all:?} {merged:?}");
        }
        assert_eq!(Moments::of(&[3.0; 4]).skew_sign(), 0.0);
    }

    #[test]
    fn the_state_round_trips_and_damage_is_refused() {
        let model = fit(Tails::Copod, EcdfOver::Batch, &ROWS, 2);
        let mut out = Writer::default();
        model.save(&mut out);
        let back = EcdfModel::restore(&mut Reader::new(&out.bytes)).unwrap();
        assert_eq!(back.inputs, model.inputs);
        assert_eq!(back.settings.over, EcdfOver::Batch);
        assert_eq!(back.score(&[0.0, 3.0]), model.score(&[0.0, 3.0]));
        let cut = &out.bytes[..out.bytes.len() - 8];
        assert!(EcdfModel::restore(&mut Reader::new(cut)).is_err());
    }
}
