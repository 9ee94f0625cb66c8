//! adr's realtime detectors: each judges an event against what it has learnt so far, then
//! learns it, in constant (or logarithmic) memory per key.
//!
//! | rule name | method | alarm |
//! |---|---|---|
//! | `ewma` | EWMA control chart with an exponentially weighted variance | \|z\| ≥ `threshold` |
//! | `cusum` | Page's two-sided tabular CUSUM, restarting after each alarm | a sum ≥ `h` σ |
//! | `page_hinkley` | Page-Hinkley test (River's form) | statistic ≥ `threshold` |
//! | `adwin` | ADWIN2 adaptive window (Bifet & Gavaldà 2007) | a cut with \|Δμ\| ≥ ε |
//! | `bocpd` | Bayesian online change points (Adams & MacKay 2007), Normal-Gamma | the change is the MAP run |
//! | `spot` | SPOT / DSPOT extreme-value threshold (Siffer et al. 2017) | P(X > x) ≤ `q` |
//! | `likelihood` | anomaly likelihood (Ahmad et al. 2017): a score's recent mean against its long-run distribution | P ≤ `q` |
//! | `quantile` | quantile-tracking threshold: the empirical tail of the last `window` points | P̂(X ≥ x) ≤ `q` |
//! | `half_space_trees` | Half-Space Trees (Tan et al. 2011), River's form | score ≥ `threshold` |
//! | `random_cut_forest` | streaming Robust Random Cut Forest (Guha et al. 2016), CoDisp | mean CoDisp ≥ `threshold` |
//! | `subsequence_knn` | distance of the last `length` points to their k nearest earlier windows | ≥ `threshold` × the mean |
//! | `kmeans` | distance to the nearest centre of an online k-means (River's `cluster.KMeans`) | ≥ `threshold` × the mean |
//!
//! Scoring a batch is the same loop as a stream of events, so chunked, per-event and
//! whole-batch scoring agree exactly, and every detector saves and restores its state (a
//! rule reload keeps it warm). NaN and ±inf inputs (and finite ones beyond ±1e150, whose
//! squares would overflow) are undetermined and never learnt; time
//! gaps are not weighted (memories count points). State is per key: the engine keeps one
//! detector per key.

mod adwin;
mod bocpd;
mod cusum;
mod ewma;
mod gpd;
mod hst;
mod kmeans;
mod likelihood;
mod online;
mod page_hinkley;
mod quantile;
mod range_break;
mod rrcf;
mod spot;
mod subsequence_knn;

#[cfg(test)]
mod testing;

pub use adwin::{Adwin, AdwinParams, OnChange};
pub use bocpd::{Bocpd, BocpdParams};
pub use cusum::{Cusum, CusumParams};
pub use ewma::{Ewma, EwmaParams};
pub use hst::{HalfSpaceTrees, HalfSpaceTreesParams, Limits};
pub use kmeans::{KMeans, KMeansParams};
pub use likelihood::{Likelihood, LikelihoodParams};
pub use online::Side;
pub use page_hinkley::{PageHinkley, PageHinkleyParams};
pub use quantile::{QuantileThreshold, QuantileThresholdParams};
pub use range_break::{RangeBreak, RangeBreakParams};
pub use rrcf::{RandomCutForest, RandomCutForestParams};
pub use spot::{Spot, SpotParams};
pub use subsequence_knn::{SubsequenceKnn, SubsequenceKnnParams};

adr_sdk::export_detectors!(
    family = "realtime",
    detectors = [
        Ewma,
        Cusum,
        PageHinkley,
        Adwin,
        Bocpd,
        Spot,
        QuantileThreshold,
        Likelihood,
        RangeBreak,
        HalfSpaceTrees,
        RandomCutForest,
        SubsequenceKnn,
        KMeans
    ],
);

#[cfg(test)]
mod bad_input {
    //! What every detector of the family does with bad input: NaN runs, repeated and
    //! irregular timestamps, damaged states.

    use adr_sdk::{Detector, Event, Verdict};

    use crate::testing::{noise, params};

    fn series() -> Vec<f64> {
        let mut v = noise(3000, 17);
        v[2000..].iter_mut().for_each(|x| *x += 5.0);
        v
    }

    /// NaN/inf runs are undetermined and leave the detector as if they were not there;
    /// timestamps (repeated, gapped, going back) change nothing.
    fn nan_runs_and_timestamps_change_nothing<D: Detector>() {
        let clean = series();
        let mut d = D::new(params(&[]), &["x".into()]).unwrap();
        let want: Vec<_> = clean
            .iter()
            .enumerate()
            .map(|(i, x)| {
                d.update(&Event::new(i as i64, std::slice::from_ref(x)))
                    .unwrap()
            })
            .collect();
        let mut d = D::new(params(&[]), &["x".into()]).unwrap();
        let mut got = Vec::new();
        for (i, &x) in clean.iter().enumerate() {
            if i % 500 == 250 {
                for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, f64::NAN] {
                    let s = d.update(&Event::new(0, &[bad])).unwrap();
                    assert_eq!(s.verdict, Verdict::Undetermined, "{}", D::NAME);
                }
            }
            // bursts of one timestamp, a gap of a year, a step back
            let ts = match i {
                0..=999 => 7,
                1000..=1999 => 365 * 86_400_000_000_000 + i as i64,
                _ => -(i as i64),
            };
            got.push(d.update(&Event::new(ts, &[x])).unwrap());
        }
        assert_eq!(format!("{want:?}"), format!("{got:?}"), "{}", D::NAME);
    }

    /// Finite inputs beyond ±1e150 are treated as ±inf: undetermined and not learnt, so
    /// the detector goes on exactly as without them.
    fn extreme_values_poison_nothing<D: Detector>() {
        let (mut extreme, mut without) = (series(), series());
        for (i, x) in [f64::MAX, -f64::MAX, 1e300, 5e-324, -1e-300, 1e200, -1.1e150]
            .into_iter()
            .enumerate()
        {
            extreme[1200 + 200 * i] = x;
            without[1200 + 200 * i] = if x.abs() > 1e150 { f64::NAN } else { x };
        }
        let scores = |values: &[f64]| {
            let mut d = D::new(params(&[]), &["x".into()]).unwrap();
            values
                .iter()
                .enumerate()
                .map(|(i, x)| {
                    d.update(&Event::new(i as i64, std::slice::from_ref(x)))
                        .unwrap()
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(
            format!("{:?}", scores(&extreme)),
            format!("{:?}", scores(&without)),
            "{}",
            D::NAME
        );
    }

    /// A truncated or foreign state is refused and the detector keeps its own.
    fn damaged_states_are_refused<D: Detector>() {
        let values = series();
        let mut d = D::new(params(&[]), &["x".into()]).unwrap();
        for (i, x) in values[..2500].iter().enumerate() {
            d.update(&Event::new(i as i64, std::slice::from_ref(x)))
                .unwrap();
        }
        let state = d.save().expect("a state");
        let before = d.save();
        for bad in [&state[..state.len() - 3], &state[..0], &[0xff; 9][..]] {
            assert!(
                d.restore(bad).is_err(),
                "{} took {} bytes",
                D::NAME,
                bad.len()
            );
            assert_eq!(d.save(), before, "{} changed on a refused restore", D::NAME);
        }
        let mut longer = state.clone();
        longer.extend_from_slice(&[0; 8]);
        assert!(
            d.restore(&longer).is_err(),
            "{} took trailing bytes",
            D::NAME
        );
    }

    macro_rules! for_each_detector {
        ($($name:ident: $d:ty),* $(,)?) => {$(
            mod $name {
                #[test]
                fn nan_runs_and_timestamps_change_nothing() {
                    super::nan_runs_and_timestamps_change_nothing::<$d>();
                }
                #[test]
                fn extreme_values_poison_nothing() {
                    super::extreme_values_poison_nothing::<$d>();
                }
                #[test]
                fn damaged_states_are_refused() {
                    super::damaged_states_are_refused::<$d>();
                }
            }
        )*};
    }

    for_each_detector!(
        ewma: crate::Ewma,
        cusum: crate::Cusum,
        page_hinkley: crate::PageHinkley,
        adwin: crate::Adwin,
        bocpd: crate::Bocpd,
        spot: crate::Spot,
        quantile: crate::QuantileThreshold,
        half_space_trees: crate::HalfSpaceTrees,
        random_cut_forest: crate::RandomCutForest,
        likelihood: crate::Likelihood,
        subsequence_knn: crate::SubsequenceKnn,
        range_break: crate::RangeBreak,
        kmeans: crate::KMeans,
    );
}
