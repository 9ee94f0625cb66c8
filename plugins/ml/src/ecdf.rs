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

/// `values` with their positions, in increasing order.
fn ordered(values: impl Iterator<Item = f64>) -> Vec<(f64, u32)> {
    let mut pairs: Vec<(f64, u32)> = values.zip(0..).collect();
    pairs.par_sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
    pairs
}

/// For each value of `ordered` (increasing), the rows of `sorted` at or below it and at or
/// above it, written at the value's position: one walk through both, `O(n + m)` where a
/// binary search per value would miss the cache at every step.
fn counts(sorted: &[f64], ordered: &[(f64, u32)], le: &mut [u32], ge: &mut [u32]) {
    let (mut at_or_below, mut below) = (0, 0);
    for &(x, i) in ordered {
        while at_or_below < sorted.len() && sorted[at_or_below] <= x {
            at_or_below += 1;
        }
        while below < sorted.len() && sorted[below] < x {
            below += 1;
        }
        le[i as usize] = at_or_below as u32;
        ge[i as usize] = (sorted.len() - below) as u32;
    }
}

/// `−ln(k / total)` for k = 0..=total: the tail scores of every possible count, each
/// computed as [`EcdfModel::tails`] computes it.
fn tail_table(total: usize) -> Vec<f64> {
    (0..=total)
        .into_par_iter()
        .map(|k| -(k as f64 / total as f64).ln())
        .collect()
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
    /// The training rows' own scores, from the fit (not kept in the state: only the fit
    /// needs them, for the threshold).
    own: Vec<f64>,
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

    /// Adds one input's contributions to `totals`, from each row's counts at or below and
    /// at or above its value, out of `total` rows.
    fn add_input(&self, totals: &mut [f64], le: &[u32], ge: &[u32], total: usize, sign: f64) {
        let table = tail_table(total);
        let tails = self.settings.tails;
        totals
            .par_iter_mut()
            .zip(le.par_iter().zip(ge))
            .with_min_len(4096)
            .for_each(|(t, (&l, &g))| {
                *t += tails.combine(table[l as usize], table[g as usize], sign);
            });
    }

    /// Scores a batch: per input, the counts against the training rows, and for `batch`
    /// also against the batch itself.
    fn score_counted(&self, rows: &[f64], d: usize) -> Vec<f64> {
        let (n, m) = (self.training_rows(), rows.len() / d);
        let mut totals = vec![0.0; m];
        let (mut le, mut ge) = (vec![0u32; m], vec![0u32; m]);
        let (mut le_batch, mut ge_batch) = (vec![0u32; m], vec![0u32; m]);
        for (c, input) in self.inputs.iter().enumerate() {
            let column = ordered(rows.iter().skip(c).step_by(d).copied());
            counts(&input.sorted, &column, &mut le, &mut ge);
            match self.settings.over {
                EcdfOver::Train => {
                    // The event itself is one more row at or below and at or above it.
                    le.iter_mut().chain(ge.iter_mut()).for_each(|k| *k += 1);
                    self.add_input(&mut totals, &le, &ge, n + 1, input.moments.skew_sign());
                }
                EcdfOver::Batch => {
                    let sorted: Vec<f64> = column.iter().map(|p| p.0).collect();
                    counts(&sorted, &column, &mut le_batch, &mut ge_batch);
                    for (k, b) in le
                        .iter_mut()
                        .zip(&le_batch)
                        .chain(ge.iter_mut().zip(&ge_batch))
                    {
                        *k += b;
                    }
                    let sign = Moments::merge(input.moments, Moments::of(&sorted)).skew_sign();
                    self.add_input(&mut totals, &le, &ge, n + m, sign);
                }
            }
        }
        totals
    }
}

impl Model for EcdfModel {
    type Settings = EcdfSettings;
    // A batch is sorted and walked once against the training values; `batch` needs it all.
    const WHOLE_BATCH: bool = true;

    fn fit(settings: &EcdfSettings, rows: &[f64], d: usize) -> Result<Self, DetectorError> {
        let n = rows.len() / d;
        let mut model = EcdfModel {
            settings: *settings,
            inputs: Vec::with_capacity(d),
            own: vec![0.0; n],
        };
        let (mut le, mut ge) = (vec![0u32; n], vec![0u32; n]);
        let mut own = vec![0.0; n];
        for c in 0..d {
            let column = ordered(rows.iter().skip(c).step_by(d).copied());
            let sorted: Vec<f64> = column.iter().map(|p| p.0).collect();
            counts(&sorted, &column, &mut le, &mut ge);
            let moments = Moments::of(&sorted);
            // The training rows' own scores: the distributions over the training rows alone.
            model.add_input(&mut own, &le, &ge, n, moments.skew_sign());
            model.inputs.push(Input { sorted, moments });
        }
        model.own = own;
        Ok(model)
    }

    fn model_bytes(_: &EcdfSettings, rows: usize, d: usize) -> u64 {
        // each input's training values, sorted
        (rows as u64).saturating_mul(8 * d as u64) + 64 * d as u64
    }

    fn score(&self, row: &[f64]) -> f64 {
        if self.settings.over == EcdfOver::Batch {
            return self.score_counted(row, row.len())[0];
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
        self.score_counted(rows, d)
    }

    fn training_scores(&self, _rows: &[f64], _d: usize) -> Vec<f64> {
        self.own.clone()
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
            own: Vec::new(),
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
                train: usize = 1000, min >= 2, max <= 10_000_000;
                /// Or train on the events of this first span of event time (at most `train`;
                /// `train on 1h` in a rule sets it). Off when zero.
                train_for: std::time::Duration = std::time::Duration::ZERO;
                /// Standardise each input with the training events' mean and population deviation
                /// before fitting and scoring (PyOD's benchmark does this outside the detector).
                standardise: bool = false;
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
                        crate::trained::training_of!(params),
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
