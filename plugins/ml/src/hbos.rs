//! HBOS, the histogram-based outlier score (Goldstein & Dengel, KI 2012), computed the way
//! PyOD's `HBOS` (static bins) computes it, so its scores match PyOD's.
//!
//! Fit: per input, `n_bins` equal-width bins over the training rows' range (a constant input
//! gets the range `[x − 0.5, x + 0.5]`), and the density of each bin, `count / (width · n)`,
//! as `numpy.histogram(density=True)` gives it. Score of a row: `−Σ log₂(density + α)` over
//! the inputs, the density of the bin the value falls in (`numpy.digitize(right=True)`: a
//! bin holds `(left, right]`, the lowest value the first bin). A value outside the bins
//! within `tol` bin widths takes the outer bin's density; farther out it takes the lowest
//! density of that input.

use adr_sdk::{Arity, Detector, DetectorError, ErrorKind};

use rayon::prelude::*;

use crate::state::{Reader, Writer};
use crate::trained::{Model, Trained};

adr_sdk::params! {
    /// Parameters of [`Hbos`].
    pub struct HbosParams {
        /// Events each key trains on before it is judged.
        train: usize = 1000, min >= 2, max <= 10_000_000;
        /// Or train on the events of this first span of event time (at most `train`;
        /// `train on 1h` in a rule sets it). Off when zero.
        train_for: std::time::Duration = std::time::Duration::ZERO;
        /// Standardise each input with the training events' mean and population deviation
        /// before fitting and scoring (PyOD's benchmark does this outside the detector).
        standardise: bool = false;
        /// Bins per input.
        n_bins: usize = 10, min >= 2, max <= 100_000;
        /// Added to each density before the logarithm, so an empty bin scores finitely.
        alpha: f64 = 0.1, min > 0.0;
        /// How far outside the bins (in bin widths) a value still takes the outer bin.
        tol: f64 = 0.5, min >= 0.0;
        /// Share of training events expected to be outliers: the alarm threshold is the
        /// `1 − contamination` quantile of the training scores.
        contamination: f64 = 0.1, min > 0.0, max <= 0.5;
    }
}

/// What HBOS is fitted with.
#[derive(Debug, Clone, Copy)]
pub struct HbosSettings {
    n_bins: usize,
    alpha: f64,
    tol: f64,
}

/// One input's histogram.
#[derive(Debug, Clone, PartialEq)]
struct Histogram {
    /// `n_bins + 1` edges, increasing.
    edges: Vec<f64>,
    /// `log₂(density + α)` per bin.
    log_density: Vec<f64>,
    /// The lowest of them.
    lowest: f64,
    /// `1 / (edges[1] − edges[0])`, to guess a value's bin.
    per_width: f64,
}

impl Histogram {
    fn fit(values: &[f64], settings: &HbosSettings) -> Histogram {
        let bins = settings.n_bins;
        let (mut lo, mut hi) = values
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &x| {
                (lo.min(x), hi.max(x))
            });
        if lo == hi {
            (lo, hi) = (lo - 0.5, hi + 0.5);
        }
        // numpy.linspace: start + i·step, the last edge exactly the stop.
        let step = (hi - lo) / bins as f64;
        let mut edges: Vec<f64> = (0..bins).map(|i| i as f64 * step + lo).collect();
        edges.push(hi);
        let mut counts = vec![0u64; bins];
        let per_step = 1.0 / step;
        for &x in values {
            // Bins are [left, right), the last one closed: the bin is the number of inner
            // edges at or below x, guessed from the equal widths and corrected at an edge.
            let mut b = (((x - lo) * per_step) as usize).min(bins - 1);
            while b > 0 && edges[b] > x {
                b -= 1;
            }
            while b < bins - 1 && edges[b + 1] <= x {
                b += 1;
            }
            counts[b] += 1;
        }
        let n = values.len() as f64;
        let log_density: Vec<f64> = counts
            .iter()
            .enumerate()
            .map(|(b, &c)| (c as f64 / (edges[b + 1] - edges[b]) / n + settings.alpha).log2())
            .collect();
        let lowest = log_density.iter().copied().fold(f64::INFINITY, f64::min);
        Histogram {
            per_width: 1.0 / (edges[1] - edges[0]),
            edges,
            log_density,
            lowest,
        }
    }

    fn log_density_at(&self, x: f64, tol: f64) -> f64 {
        let bins = self.log_density.len();
        let e = &self.edges;
        // numpy.digitize(right=True): how many edges lie strictly below x, guessed from the
        // equal widths and corrected at an edge.
        let widths = (x - e[0]) * self.per_width;
        let mut i = if widths > 0.0 {
            (widths as usize + 1).min(bins + 1)
        } else {
            0
        };
        while i > 0 && e[i - 1] >= x {
            i -= 1;
        }
        while i <= bins && e[i] < x {
            i += 1;
        }
        if i == 0 {
            let width = e[1] - e[0];
            if e[0] - x <= width * tol {
                self.log_density[0]
            } else {
                self.lowest
            }
        } else if i == bins + 1 {
            let width = e[bins] - e[bins - 1];
            if x - e[bins] <= width * tol {
                self.log_density[bins - 1]
            } else {
                self.lowest
            }
        } else {
            self.log_density[i - 1]
        }
    }
}

/// A fitted HBOS model: one histogram per input.
#[derive(Debug, Clone, PartialEq)]
pub struct HbosModel {
    histograms: Vec<Histogram>,
    tol: f64,
}

impl Model for HbosModel {
    type Settings = HbosSettings;

    fn fit(settings: &HbosSettings, rows: &[f64], d: usize) -> Result<Self, DetectorError> {
        let histograms = (0..d)
            .into_par_iter()
            .map(|c| {
                let column: Vec<f64> = rows.iter().skip(c).step_by(d).copied().collect();
                Histogram::fit(&column, settings)
            })
            .collect();
        Ok(HbosModel {
            histograms,
            tol: settings.tol,
        })
    }

    fn model_bytes(s: &HbosSettings, _rows: usize, d: usize) -> u64 {
        // per input: the bins' edges and densities
        (d as u64).saturating_mul(16 * (s.n_bins as u64 + 1) + 64)
    }

    fn score(&self, row: &[f64]) -> f64 {
        -row.iter()
            .zip(&self.histograms)
            .map(|(&x, h)| h.log_density_at(x, self.tol))
            .sum::<f64>()
    }

    fn save(&self, out: &mut Writer) {
        out.number(self.tol);
        out.count(self.histograms.len());
        for h in &self.histograms {
            out.numbers(&h.edges);
            out.numbers(&h.log_density);
        }
    }

    fn restore(input: &mut Reader<'_>) -> Result<Self, DetectorError> {
        let tol = input.number()?;
        let d = input.count(1 << 20)?;
        let histograms = (0..d)
            .map(|_| {
                let edges = input.numbers()?;
                let log_density = input.numbers()?;
                if edges.len() != log_density.len() + 1 || log_density.is_empty() {
                    return Err(DetectorError::new(
                        ErrorKind::IncompatibleState,
                        format!(
                            "a histogram of {} edges and {} bins",
                            edges.len(),
                            log_density.len()
                        ),
                    ));
                }
                let lowest = log_density.iter().copied().fold(f64::INFINITY, f64::min);
                Ok(Histogram {
                    per_width: 1.0 / (edges[1] - edges[0]),
                    edges,
                    log_density,
                    lowest,
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(HbosModel { histograms, tol })
    }
}

/// The histogram-based outlier score over one or more inputs.
#[derive(Debug)]
pub struct Hbos {
    trained: Trained<HbosModel>,
}

impl Detector for Hbos {
    type Params = HbosParams;
    const NAME: &'static str = "hbos";
    const SUMMARY: &'static str =
        "histogram-based outlier score over one or more inputs, trained on the first events (PyOD's HBOS)";
    const INPUTS: Arity = Arity::AtLeast(1);

    fn new(params: HbosParams, inputs: &[String]) -> Result<Self, DetectorError> {
        let settings = HbosSettings {
            n_bins: params.n_bins,
            alpha: params.alpha,
            tol: params.tol,
        };
        Ok(Hbos {
            trained: Trained::new(settings, inputs.len(), crate::trained::training_of!(params)),
        })
    }

    crate::trained::delegate_to_trained!();
}

#[cfg(test)]
mod tests {
    use super::*;
    use adr_sdk::score::ScoreColumns;
    use adr_sdk::{Column, Event, Frame, Score, Verdict};

    fn detector(train: usize, d: usize) -> Hbos {
        let params = HbosParams {
            train,
            ..HbosParams::default()
        };
        let inputs: Vec<String> = (0..d).map(|c| format!("x{c}")).collect();
        Hbos::new(params, &inputs).unwrap()
    }

    /// Two inputs: a noisy line and a constant, with a far outlier every 50 rows.
    fn row(i: usize) -> [f64; 2] {
        let x = ((i * 7919) % 101) as f64 / 10.0 + if i % 50 == 49 { 40.0 } else { 0.0 };
        [x, 1.0]
    }

    fn update(h: &mut Hbos, i: usize, values: &[f64]) -> Score {
        h.update(&Event::new(i as i64, values)).unwrap()
    }

    #[test]
    fn it_trains_on_the_first_finite_rows_then_judges() {
        let mut h = detector(100, 2);
        // A NaN row is not judged and not trained on.
        let undetermined = |s: Score| s.verdict == Verdict::Undetermined && s.raw.is_nan();
        assert!(undetermined(update(&mut h, 0, &[f64::NAN, 1.0])));
        for i in 0..100 {
            assert!(undetermined(update(&mut h, i, &row(i))), "training row {i}");
        }
        assert!(h.trained.is_fitted());
        let typical = update(&mut h, 100, &[5.0, 1.0]);
        let far = update(&mut h, 101, &[500.0, 1.0]);
        assert_eq!(typical.verdict, Verdict::Normal, "{typical:?}");
        assert_eq!(far.verdict, Verdict::Anomaly, "{far:?}");
        assert!(far.raw > typical.raw);
        assert!(undetermined(update(&mut h, 102, &[f64::INFINITY, 1.0])));
    }

    #[test]
    fn batches_events_and_restored_state_agree_bit_for_bit() {
        let rows: Vec<[f64; 2]> = (0..300).map(row).collect();
        let columns: Vec<Vec<f64>> = (0..2)
            .map(|c| rows.iter().map(|r| r[c]).collect())
            .collect();
        let mut batch = detector(120, 2);
        let frame_columns = [
            Column::f64("x0", &columns[0]),
            Column::f64("x1", &columns[1]),
        ];
        let ts: Vec<i64> = (0..300).collect();
        let mut out = ScoreColumns::with_len(300);
        batch
            .score(&Frame::new(&ts, &frame_columns).unwrap(), &mut out.as_mut())
            .unwrap();
        // Events, saved and restored once while training and once after.
        let mut events = detector(120, 2);
        for (i, r) in rows.iter().enumerate() {
            if i == 60 || i == 200 {
                let mut restored = detector(120, 2);
                restored.restore(&events.save().unwrap()).unwrap();
                events = restored;
            }
            let s = update(&mut events, i, r);
            assert_eq!(s.raw.to_bits(), out.raw[i].to_bits(), "row {i}");
            assert_eq!(s.verdict, out.verdict[i], "row {i}");
        }
    }

    #[test]
    fn bad_input_and_bad_state_are_errors_that_change_nothing() {
        let mut h = detector(10, 2);
        let err = h.update(&Event::new(0, &[1.0])).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert!(
            err.message().contains("1 values, the detector 2 inputs"),
            "{err}"
        );
        for i in 0..10 {
            update(&mut h, i, &row(i));
        }
        let saved = h.save().unwrap();
        let before = update(&mut h, 10, &[3.0, 1.0]);
        // Another detector's state, a cut one, one with trailing bytes.
        let other = detector(10, 3).save().unwrap();
        let mut longer = saved.clone();
        longer.extend_from_slice(&[0; 8]);
        for (what, bytes) in [
            ("three inputs", other.as_slice()),
            ("cut", &saved[..saved.len() - 5]),
            ("trailing", longer.as_slice()),
        ] {
            let err = h.restore(bytes).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::IncompatibleState, "{what}: {err}");
            assert_eq!(update(&mut h, 10, &[3.0, 1.0]), before, "{what}: unchanged");
        }
    }

    fn settings() -> HbosSettings {
        HbosSettings {
            n_bins: 10,
            alpha: 0.1,
            tol: 0.5,
        }
    }

    #[test]
    fn histograms_follow_numpy() {
        // numpy.histogram([0, 1, 1, 2, 10], bins=10, density=True):
        // edges 0, 1, ..., 10; counts 1, 2, 1, 0, ..., 0, 1; density count / 5.
        let h = Histogram::fit(&[0.0, 1.0, 1.0, 2.0, 10.0], &settings());
        assert_eq!(h.edges, (0..=10).map(f64::from).collect::<Vec<_>>());
        let density: Vec<f64> = h.log_density.iter().map(|l| l.exp2() - 0.1).collect();
        let want = [0.2, 0.4, 0.2, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.2];
        for (b, (got, want)) in density.iter().zip(want).enumerate() {
            assert!((got - want).abs() < 1e-12, "bin {b}: {got} vs {want}");
        }
        // digitize(right=True): 1.0 lies in bin 0 ((0, 1]); 0 is the first bin's lowest.
        assert_eq!(h.log_density_at(1.0, 0.5), h.log_density[0]);
        assert_eq!(h.log_density_at(1.5, 0.5), h.log_density[1]);
        assert_eq!(h.log_density_at(0.0, 0.5), h.log_density[0]);
        // Outside: within half a bin the outer bin, farther the lowest density.
        assert_eq!(h.log_density_at(-0.5, 0.5), h.log_density[0]);
        assert_eq!(h.log_density_at(-0.6, 0.5), h.lowest);
        assert_eq!(h.log_density_at(10.5, 0.5), h.log_density[9]);
        assert_eq!(h.log_density_at(11.0, 0.5), h.lowest);
    }

    #[test]
    fn a_constant_input_gets_a_unit_range() {
        let h = Histogram::fit(&[3.0; 4], &settings());
        assert_eq!(h.edges[0], 2.5);
        assert_eq!(h.edges[10], 3.5);
    }

    #[test]
    fn a_saved_model_scores_alike_and_damage_is_refused() {
        let rows: Vec<f64> = (0..200).map(|i| ((i * 37) % 101) as f64 / 7.0).collect();
        let model = HbosModel::fit(&settings(), &rows, 2).unwrap();
        let mut out = Writer::default();
        model.save(&mut out);
        let back = HbosModel::restore(&mut Reader::new(&out.bytes)).unwrap();
        assert_eq!(back, model);
        let cut = &out.bytes[..out.bytes.len() - 8];
        let mut r = Reader::new(cut);
        assert!(HbosModel::restore(&mut r).is_err());
    }
}
