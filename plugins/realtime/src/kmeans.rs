//! Online k-means (MacQueen's sequential update, in River's `cluster.KMeans` form): each
//! row is judged by its distance to the nearest of `k` centres, then that centre moves a
//! fraction `halflife` of the way towards it. A row far from every cluster the stream has
//! formed is anomalous; the centres follow the clusters as they drift.

use adr_sdk::score::ratio;
use adr_sdk::state::{Reader, Writer};
use adr_sdk::{Arity, Detector, DetectorError, ErrorKind, Event, Frame, Score, ScoresMut};

use crate::online::{learnable, score_event, score_frame, Online, Welford};

adr_sdk::params! {
    /// Parameters of [`KMeans`].
    pub struct KMeansParams {
        /// Clusters (centres).
        k: usize = 5, min >= 1, max <= 10_000;
        /// How far the nearest centre moves towards a row, as a fraction of the way
        /// (River's `halflife`).
        halflife: f64 = 0.5, min > 0.0, max <= 1.0;
        /// Power of the Minkowski distance (2: Euclidean, 1: Manhattan; River's `p`).
        p: f64 = 2.0, min >= 1.0, max <= 64.0;
        /// Alarm when the distance is this many times the mean distance so far.
        threshold: f64 = 3.0, min > 0.0;
    }
}

/// The detector: centres row-major (`k` rows of `width`), fewer while the first rows
/// seed them.
#[derive(Debug)]
pub struct KMeans {
    params: KMeansParams,
    width: usize,
    centres: Vec<f64>,
    /// The nearest distances of the rows learnt since the centres were seeded.
    distances: Welford,
}

impl KMeans {
    /// What orders the centres by their distance to `row`: Σ (c − x)² for p = 2 (its
    /// root is taken once, for the nearest), Σ |c − x| for p = 1, and for other powers the
    /// distance itself, computed relative to the largest difference so that no power
    /// overflows (|c − x|ᵖ would for inputs near 1e150 and p ≥ 3).
    fn gauge(&self, centre: &[f64], row: &[f64]) -> f64 {
        let differences = centre.iter().zip(row).map(|(&c, &x)| (c - x).abs());
        match self.params.p {
            2.0 => differences.map(|d| d * d).sum(),
            1.0 => differences.sum(),
            p => {
                let largest = differences.clone().fold(0.0, f64::max);
                if largest == 0.0 {
                    return 0.0;
                }
                let sum: f64 = differences.map(|d| (d / largest).powf(p)).sum();
                largest * sum.powf(1.0 / p)
            }
        }
    }

    /// The distance whose [`gauge`](Self::gauge) this is.
    fn distance(&self, gauge: f64) -> f64 {
        if self.params.p == 2.0 {
            gauge.sqrt()
        } else {
            gauge
        }
    }

    /// The nearest centre (the first of equals, as Python's `min`) and its gauge.
    fn nearest(&self, row: &[f64]) -> (usize, f64) {
        let mut best = (0, f64::INFINITY);
        for (c, centre) in self.centres.chunks_exact(self.width).enumerate() {
            let g = self.gauge(centre, row);
            if g < best.1 {
                best = (c, g);
            }
        }
        best
    }
}

impl Online for KMeans {
    fn step(&mut self, _ts: i64, row: &[f64]) -> Score {
        // a row needs every input: a distance over some of them would not compare
        if row.len() != self.width || !row.iter().all(|&x| learnable(x)) {
            return Score::UNDETERMINED;
        }
        if self.centres.len() < self.params.k * self.width {
            // the first k rows are the first centres
            self.centres.extend_from_slice(row);
            return Score::UNDETERMINED;
        }
        let (c, gauge) = self.nearest(row);
        let distance = self.distance(gauge);
        let score = if distance == 0.0 {
            // on a centre: nothing is closer to what the stream has formed
            Score::new(0.0, 0.0)
        } else if self.distances.n == 0 {
            Score::UNDETERMINED
        } else {
            Score::new(
                distance,
                ratio(distance, self.params.threshold * self.distances.mean),
            )
        };
        let h = self.params.halflife;
        let centre = &mut self.centres[c * self.width..(c + 1) * self.width];
        for (m, &x) in centre.iter_mut().zip(row) {
            *m += h * (x - *m);
        }
        // Σ (c − x)² can pass f64's range only with tens of millions of inputs near ±1e150:
        // such a distance is scored, as +inf, but kept out of the mean, which it would make
        // infinite for good
        if distance.is_finite() {
            self.distances.push(distance);
        }
        score
    }
}

impl KMeans {
    fn save_state(&self, w: &mut Writer) {
        w.count(self.width);
        w.numbers(&self.centres);
        self.distances.save(w);
    }

    fn restore_state(&self, r: &mut Reader<'_>) -> Result<Self, DetectorError> {
        let width = r.count(usize::MAX)?;
        let centres = r.numbers()?;
        let distances = Welford::restore(r)?;
        let whole = self.params.k * self.width;
        let seeded = width == self.width
            && centres.len() % self.width == 0
            && centres.len() <= whole
            && centres.iter().all(|&c| learnable(c))
            && (centres.len() == whole || distances.n == 0)
            && distances.mean.is_finite()
            && distances.mean >= 0.0;
        if !seeded {
            return Err(DetectorError::new(
                ErrorKind::IncompatibleState,
                format!(
                    "state is corrupt or for other inputs: {} centre values of width {width} \
                     for k = {} and {} inputs",
                    centres.len(),
                    self.params.k,
                    self.width
                ),
            ));
        }
        Ok(KMeans {
            params: self.params.clone(),
            width,
            centres,
            distances,
        })
    }
}

impl Detector for KMeans {
    type Params = KMeansParams;
    const NAME: &'static str = "kmeans";
    const SUMMARY: &'static str = "distance to the nearest centre of an online k-means";
    const DOC: &'static str = "\
Online k-means as River's `cluster.KMeans` runs it: each row's nearest centre (Minkowski \
power `p`, the first of equals) moves a fraction `halflife` of the way towards it. The \
first `k` rows are the first centres (River draws them at random) and are undetermined. \
Raw score: the distance from the row to its nearest centre before the move (input units); \
normalised: raw / (raw + threshold · the mean distance so far), so an alarm at `threshold` \
times the mean; 0 on a centre; the first row after the seeding is undetermined (no mean \
yet). Inputs are taken as they are: standardise them when their scales differ. A row with \
a NaN, ±inf or beyond-±1e150 input is undetermined and not learnt. Memory: k × inputs \
numbers per key; a row costs O(k × inputs).";
    const INPUTS: Arity = Arity::AtLeast(1);

    fn state_bytes(&self) -> Option<u64> {
        Some(crate::online::grown(self.params.k * self.width, 8) + crate::online::FIXED_BYTES)
    }

    fn new(params: KMeansParams, inputs: &[String]) -> Result<Self, DetectorError> {
        let width = inputs.len().max(1);
        Ok(KMeans {
            centres: Vec::with_capacity(params.k * width),
            params,
            width,
            distances: Welford::default(),
        })
    }

    fn score(&mut self, frame: &Frame<'_>, out: &mut ScoresMut<'_>) -> Result<(), DetectorError> {
        score_frame(self, frame, out)
    }

    fn update(&mut self, event: &Event<'_>) -> Result<Score, DetectorError> {
        score_event(self, event)
    }

    fn save(&self) -> Option<Vec<u8>> {
        let mut w = Writer::default();
        self.save_state(&mut w);
        Some(w.bytes)
    }

    fn restore(&mut self, state: &[u8]) -> Result<(), DetectorError> {
        let mut r = Reader::new(state);
        let restored = self.restore_state(&mut r)?;
        r.end()?;
        *self = restored;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{noise, params, run_rows, run_with_restore};
    use adr_sdk::{ParamValue, Verdict};

    fn detector(list: &[(&str, ParamValue)], width: usize) -> KMeans {
        let inputs: Vec<String> = (0..width).map(|i| format!("x{i}")).collect();
        KMeans::new(params(list), &inputs).unwrap()
    }

    #[test]
    fn the_update_is_rivers_worked_by_hand() {
        use ParamValue::{Float, Int};
        let mut d = detector(&[("k", Int(2)), ("halflife", Float(0.5))], 2);
        // seeding: (0, 0) and (10, 0)
        assert!(d.step(0, &[0.0, 0.0]).raw.is_nan());
        assert!(d.step(0, &[10.0, 0.0]).raw.is_nan());
        // (2, 0): nearest (0, 0) at 2, which moves to (1, 0); no mean yet
        let s = d.step(0, &[2.0, 0.0]);
        assert_eq!(s.verdict, Verdict::Undetermined);
        assert_eq!(d.centres, [1.0, 0.0, 10.0, 0.0]);
        // (10, 4): nearest (10, 0) at 4 against the mean 2: normalised 4 / (4 + 3·2)
        let s = d.step(0, &[10.0, 4.0]);
        assert_eq!((s.raw, s.normalised), (4.0, 0.4));
        assert_eq!(d.centres, [1.0, 0.0, 10.0, 2.0]);
        // (5.5, 1): 4.5 + 1 = 5.5 from both in Manhattan terms, 4.61 and 4.61 in Euclid:
        // equal distances go to the first centre
        d.step(0, &[5.5, 1.0]);
        assert_eq!(d.centres, [3.25, 0.5, 10.0, 2.0]);
        // on a centre: 0, normal
        let s = d.step(0, &[10.0, 2.0]);
        assert_eq!((s.raw, s.verdict), (0.0, Verdict::Normal));
    }

    #[test]
    fn manhattan_and_other_powers() {
        use ParamValue::{Float, Int};
        for (p, want) in [
            (1.0, 7.0),
            (2.0, 5.0),
            (3.0, (27.0f64 + 64.0).powf(1.0 / 3.0)),
        ] {
            let mut d = detector(&[("k", Int(1)), ("p", Float(p))], 2);
            d.step(0, &[0.0, 0.0]);
            d.step(0, &[0.0, 0.0]);
            d.step(0, &[1.0, 0.0]);
            // the centre is at (0.5, 0): a row at (3.5, 4) is 3 and 4 away
            let s = d.step(0, &[3.5, 4.0]);
            assert!((s.raw - want).abs() < 1e-12, "p {p}: {}", s.raw);
        }
    }

    #[test]
    fn a_row_far_from_every_cluster_alarms_and_the_clusters_do_not() {
        // two clusters in two dimensions, one row between them and far off both
        let (a, b) = (noise(3000, 1), noise(3000, 2));
        let mut rows = Vec::new();
        for i in 0..3000 {
            let centre = if i % 2 == 0 { (0.0, 0.0) } else { (20.0, 20.0) };
            rows.extend([centre.0 + a[i], centre.1 + b[i]]);
        }
        rows[2 * 2000] = 10.0;
        rows[2 * 2000 + 1] = 10.0;
        let p = params(&[
            ("k", ParamValue::Int(2)),
            ("halflife", ParamValue::Float(0.05)),
        ]);
        let scores = run_rows::<KMeans>(p, 2, &rows);
        let alarms: Vec<usize> = (0..scores.len())
            .filter(|&i| scores[i].verdict == Verdict::Anomaly)
            .collect();
        assert!(alarms.contains(&2000), "{alarms:?}");
        // the clusters' own rows alarm about as often as 3× the mean distance of a 2-D
        // normal is exceeded (e^(−9π/4 · ...)): rarely
        assert!(alarms.len() < 10, "{alarms:?}");
        assert!(scores[2000].raw > 12.0, "{:?}", scores[2000]);
    }

    #[test]
    fn incomplete_rows_are_undetermined_and_not_learnt() {
        let mut with = detector(&[("k", ParamValue::Int(2))], 2);
        let mut without = detector(&[("k", ParamValue::Int(2))], 2);
        let values = noise(400, 3);
        for (i, pair) in values.chunks_exact(2).enumerate() {
            if i % 9 == 4 {
                for bad in [[f64::NAN, 1.0], [1.0, f64::INFINITY], [2e150, 0.0]] {
                    assert_eq!(with.step(0, &bad).verdict, Verdict::Undetermined);
                }
            }
            assert_eq!(
                format!("{:?}", with.step(0, pair)),
                format!("{:?}", without.step(0, pair))
            );
        }
        assert_eq!(with.centres, without.centres);
    }

    #[test]
    fn large_powers_of_extreme_inputs_stay_finite() {
        use ParamValue::{Float, Int};
        // |1e150 − 0|³ alone would overflow: the distance is taken relative to the largest
        // difference
        let mut d = detector(
            &[("k", Int(1)), ("p", Float(3.0)), ("halflife", Float(0.5))],
            2,
        );
        d.step(0, &[0.0, 0.0]);
        d.step(0, &[1.0, 0.0]);
        d.step(0, &[-1.0, 0.0]);
        let s = d.step(0, &[1e150, 1e150]);
        let want = 2f64.powf(1.0 / 3.0) * 1e150;
        assert!((s.raw / want - 1.0).abs() < 1e-12, "{s:?}");
        assert_eq!(s.verdict, Verdict::Anomaly);
        assert!(d.distances.mean.is_finite() && d.centres.iter().all(|c| c.is_finite()));
        // equal rows are 0 apart whatever the power
        let mut e = detector(&[("k", Int(1)), ("p", Float(5.0))], 2);
        e.step(0, &[3.0, 4.0]);
        assert_eq!(e.step(0, &[3.0, 4.0]).raw, 0.0);
    }

    #[test]
    fn a_restored_state_continues_exactly_and_a_foreign_one_is_refused() {
        let values = noise(600, 4);
        let p: KMeansParams = params(&[("k", ParamValue::Int(3))]);
        for cut in [2, 300] {
            let whole = run_with_restore::<KMeans>(p.clone(), &values, values.len());
            let split = run_with_restore::<KMeans>(p.clone(), &values, cut);
            assert_eq!(format!("{whole:?}"), format!("{split:?}"));
        }
        let mut one = detector(&[("k", ParamValue::Int(3))], 1);
        for &x in &values {
            one.step(0, &[x]);
        }
        let state = one.save().unwrap();
        // another width, or another k
        let mut two = detector(&[("k", ParamValue::Int(3))], 2);
        assert!(two.restore(&state).is_err());
        let mut fewer = detector(&[("k", ParamValue::Int(2))], 1);
        assert!(fewer.restore(&state).is_err());
    }

    #[test]
    fn memory_is_k_centres() {
        let mut d = detector(&[("k", ParamValue::Int(4))], 3);
        for (i, x) in noise(30_000, 5).chunks_exact(3).enumerate() {
            d.step(i as i64, x);
        }
        assert_eq!(d.centres.len(), 12);
    }
}
