//! Rolling, whole-batch and robust z-scores.

use adr_sdk::{Detector, DetectorError, Event, Frame, Score, ScoresMut, Window};

use crate::{
    mad::ROBUST_SCALE,
    rolling::{standardise, Rolling},
    window::{mad, median, Moments, Sorted},
};

adr_sdk::params! {
    /// Parameters of [`ZScore`].
    pub struct ZScoreParams {
        /// The points each point is compared with: the last N points before it, the points
        /// of the last span of event time before it (`5m`), or `batch`: the whole batch.
        window: Window = Window::Count(500), min >= 2;
        /// |z| at or above which a point is an anomaly.
        threshold: f64 = 3.0, min > 0.0;
        /// Use the median and 1.4826·MAD instead of the mean and standard deviation.
        robust: bool = false;
        /// Which deviations count: `both`, `upper` (spikes) or `lower` (drops).
        side: crate::rolling::Side = crate::rolling::Side::Both;
        /// Delta degrees of freedom of the standard deviation: 1 (sample, as pandas) or 0
        /// (population, as numpy).
        ddof: usize = 1, max <= 1;
        /// Points the window must hold before a point is judged; 0 means the full window
        /// for a count window and 2 points otherwise.
        min_points: usize = 0;
    }
}

/// The z-score of each point against a window of points before it (or its whole batch).
#[derive(Debug)]
pub struct ZScore {
    params: ZScoreParams,
    state: State,
}

#[derive(Debug)]
enum State {
    Classic(Rolling<Moments>),
    Robust(Rolling<Sorted>),
}

impl ZScore {
    #[inline]
    fn judge_classic(p: &ZScoreParams, m: &Moments, x: f64) -> Score {
        let z = standardise(x, m.mean(), m.sd(p.ddof));
        Score::from_ratio(p.side.apply(z), p.threshold)
    }

    #[inline]
    fn judge_robust(p: &ZScoreParams, s: &Sorted, x: f64) -> Score {
        let sorted = s.as_slice();
        let m = median(sorted);
        let z = standardise(x, m, ROBUST_SCALE * mad(sorted, m));
        Score::from_ratio(p.side.apply(z), p.threshold)
    }
}

impl Detector for ZScore {
    type Params = ZScoreParams;
    const NAME: &'static str = "zscore";
    const SUMMARY: &'static str =
        "z-score against a rolling window or the whole batch (optionally robust: median/MAD)";
    const DOC: &'static str = "\
Raw score: |z| (or its upper/lower part, see `side`), z = (x − mean) / sd over the window of \
points before x (sd with `ddof`), or over the whole batch including x when window = batch. \
With robust = true: z = (x − median) / (1.4826 · MAD), 1.4826 = 1/Φ⁻¹(3/4) making the MAD a \
consistent estimate of σ for normal data. A zero spread gives z = 0 for x at the centre and \
±inf otherwise. Normalised: |z| / (|z| + threshold), 0.5 at the threshold. Undetermined \
while the window holds fewer than `min_points` points. NaN/inf inputs: undetermined, never \
enter the window.";

    fn new(params: ZScoreParams, _inputs: &[String]) -> Result<Self, DetectorError> {
        let state = if params.robust {
            State::Robust(Rolling::new(params.window, params.min_points))
        } else {
            State::Classic(Rolling::new(params.window, params.min_points))
        };
        Ok(ZScore { params, state })
    }

    fn score(&mut self, frame: &Frame<'_>, out: &mut ScoresMut<'_>) -> Result<(), DetectorError> {
        let p = &self.params;
        match &mut self.state {
            State::Classic(r) => r.score(frame, out, |m, x| Self::judge_classic(p, m, x)),
            State::Robust(r) => r.score(frame, out, |s, x| Self::judge_robust(p, s, x)),
        }
    }

    fn update(&mut self, event: &Event<'_>) -> Result<Score, DetectorError> {
        let p = &self.params;
        match &mut self.state {
            State::Classic(r) => r.update(event, |m, x| Self::judge_classic(p, m, x)),
            State::Robust(r) => r.update(event, |s, x| Self::judge_robust(p, s, x)),
        }
    }

    fn needs_whole_series(&self) -> bool {
        self.params.window == Window::Batch
    }

    fn state_bytes(&self) -> Option<u64> {
        match &self.state {
            State::Classic(r) => r.state_bytes(),
            State::Robust(r) => r.state_bytes(),
        }
    }

    fn save(&self) -> Option<Vec<u8>> {
        match &self.state {
            State::Classic(r) => r.save(),
            State::Robust(r) => r.save(),
        }
    }

    fn restore(&mut self, state: &[u8]) -> Result<(), DetectorError> {
        match &mut self.state {
            State::Classic(r) => r.restore(state),
            State::Robust(r) => r.restore(state),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{run_batch, run_stream};
    use adr_sdk::Verdict;

    fn params(list: &[(&str, adr_sdk::ParamValue)]) -> ZScoreParams {
        crate::testing::params(list)
    }

    #[test]
    fn extreme_magnitudes_never_give_infinite_or_lost_spreads() {
        use adr_sdk::ParamValue::Int;
        // python3 -c "import random;random.seed(2);..." of issue 20: values near 5, one 1e160
        let mut values: Vec<f64> = (0..3000)
            .map(|i| 5.0 + ((i * 7919) % 1000) as f64 / 1000.0)
            .collect();
        values[2000] = 1e160;
        for window in [500, 50] {
            let scores = run_stream::<ZScore>(params(&[("window", Int(window))]), &values);
            assert_eq!(scores[2000].verdict, Verdict::Anomaly, "window {window}");
            assert!(
                scores[2000].raw.is_finite(),
                "window {window}: {:?}",
                scores[2000]
            );
            let flagged: Vec<usize> = (2001..3000)
                .filter(|&i| scores[i].verdict == Verdict::Anomaly)
                .collect();
            assert!(
                flagged.is_empty(),
                "window {window}: rows after the spike flagged: {flagged:?}"
            );
            assert!(
                scores.iter().all(|s| !s.raw.is_infinite()),
                "window {window}"
            );
        }
        // the same series at 1e-300 (scaled by 1e-305) and at 1e300: the same verdicts
        let plain = run_stream::<ZScore>(params(&[("window", Int(50))]), &values[..1500]);
        for factor in [1e-305, 1e140, 1e-150] {
            let scaled: Vec<f64> = values[..1500].iter().map(|x| x * factor).collect();
            let scores = run_stream::<ZScore>(params(&[("window", Int(50))]), &scaled);
            for (i, (a, b)) in plain.iter().zip(&scores).enumerate() {
                assert_eq!(a.verdict, b.verdict, "x{factor:e}, row {i}: {a:?} vs {b:?}");
                if a.raw.is_finite() {
                    assert!(
                        (a.raw - b.raw).abs() <= 1e-6 * a.raw.max(1.0),
                        "x{factor:e}, row {i}: {a:?} vs {b:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn rolling_z_matches_the_textbook_formula() {
        use adr_sdk::ParamValue::Int;
        let values = [1.0, 2.0, 3.0, 4.0, 10.0, 2.0];
        let scores = run_batch::<ZScore>(params(&[("window", Int(4))]), &values);
        for s in &scores[..4] {
            assert_eq!(s.verdict, Verdict::Undetermined);
        }
        // window [1,2,3,4]: mean 2.5, sample sd sqrt(5/3)
        let z = (10.0 - 2.5) / (5.0f64 / 3.0).sqrt();
        assert!((scores[4].raw - z).abs() < 1e-12);
        assert_eq!(scores[4].verdict, Verdict::Anomaly);
        assert!((scores[4].normalised - z / (z + 3.0)).abs() < 1e-15);
    }

    #[test]
    fn batch_stream_and_chunks_agree() {
        use adr_sdk::ParamValue::{Bool, Int};
        let values: Vec<f64> = (0..300)
            .map(|i| ((i * 37) % 17) as f64 + if i == 250 { 40.0 } else { 0.0 })
            .collect();
        for robust in [false, true] {
            let p = params(&[("window", Int(50)), ("robust", Bool(robust))]);
            let batch = run_batch::<ZScore>(p.clone(), &values);
            let stream = run_stream::<ZScore>(p, &values);
            assert_eq!(
                format!("{batch:?}"),
                format!("{stream:?}"),
                "robust={robust}"
            );
            assert_eq!(batch[250].verdict, Verdict::Anomaly, "robust={robust}");
        }
    }

    #[test]
    fn parallel_batches_equal_a_sequential_stream_bit_for_bit() {
        use adr_sdk::ParamValue::{Bool, Int};
        let values: Vec<f64> = (0..100_000)
            .map(|i| (i as f64 * 0.37).sin() * 10.0 + 1e6 + if i % 997 == 0 { 90.0 } else { 0.0 })
            .collect();
        for robust in [false, true] {
            let p = params(&[("window", Int(500)), ("robust", Bool(robust))]);
            let batch = run_batch::<ZScore>(p.clone(), &values);
            let stream = run_stream::<ZScore>(p, &values);
            let bits = |s: &[adr_sdk::Score]| -> Vec<(u64, u64, adr_sdk::Verdict)> {
                s.iter()
                    .map(|s| (s.raw.to_bits(), s.normalised.to_bits(), s.verdict))
                    .collect()
            };
            assert!(bits(&batch) == bits(&stream), "robust={robust}");
        }
    }

    #[test]
    fn nan_is_undetermined_and_skipped() {
        use adr_sdk::ParamValue::Int;
        let values = [1.0, 2.0, f64::NAN, 3.0, f64::INFINITY, 2.0];
        let scores = run_batch::<ZScore>(params(&[("window", Int(3))]), &values);
        assert_eq!(scores[2].verdict, Verdict::Undetermined);
        assert_eq!(scores[4].verdict, Verdict::Undetermined);
        // the window before the last point is [1, 2, 3]: NaN and inf never entered it
        assert!((scores[5].raw - 0.0).abs() < 1e-15);
        assert_eq!(scores[5].verdict, Verdict::Normal);
    }

    #[test]
    fn constant_window_gives_zero_or_infinity() {
        use adr_sdk::ParamValue::Int;
        let values = [5.0, 5.0, 5.0, 5.0, 6.0];
        let scores = run_batch::<ZScore>(params(&[("window", Int(3))]), &values);
        assert_eq!(scores[3].raw, 0.0);
        assert_eq!(scores[4].raw, f64::INFINITY);
        assert_eq!(scores[4].normalised, 1.0);
    }

    #[test]
    fn side_keeps_one_tail() {
        use adr_sdk::ParamValue::{Int, Text};
        let values = [1.0, 2.0, 1.0, 2.0, -50.0];
        let upper = run_batch::<ZScore>(
            params(&[("window", Int(4)), ("side", Text("upper".into()))]),
            &values,
        );
        let lower = run_batch::<ZScore>(
            params(&[("window", Int(4)), ("side", Text("lower".into()))]),
            &values,
        );
        assert_eq!(upper[4].raw, 0.0);
        assert!(lower[4].raw > 3.0);
    }

    #[test]
    fn whole_batch_mode_includes_the_point_and_refuses_streaming() {
        use adr_sdk::ParamValue::Text;
        let values = [1.0, 2.0, 3.0];
        let p = params(&[("window", Text("batch".into()))]);
        let scores = run_batch::<ZScore>(p.clone(), &values);
        assert!((scores[2].raw - 1.0).abs() < 1e-15, "(3 − 2) / 1");
        let mut d = ZScore::new(p, &["x".into()]).unwrap();
        let err = d.update(&Event::new(0, &[1.0])).unwrap_err();
        assert_eq!(err.kind(), adr_sdk::ErrorKind::Unsupported);
    }
}

#[cfg(test)]
mod state_tests {
    use super::*;
    use crate::testing::params;
    use adr_sdk::ParamValue::Int;

    #[test]
    fn a_restored_detector_continues_bit_for_bit() {
        let values: Vec<f64> = (0..300)
            .map(|i| ((i * 7919) % 101) as f64 + if i % 97 == 0 { 400.0 } else { 0.0 })
            .collect();
        let p: ZScoreParams = params(&[("window", Int(25))]);
        let mut a = ZScore::new(p.clone(), &[]).unwrap();
        for (i, x) in values[..200].iter().enumerate() {
            a.update(&Event::new(i as i64, std::slice::from_ref(x)))
                .unwrap();
        }
        let mut b = ZScore::new(p, &[]).unwrap();
        b.restore(&a.save().unwrap()).unwrap();
        for (i, x) in values[200..].iter().enumerate() {
            let e = Event::new(200 + i as i64, std::slice::from_ref(x));
            assert_eq!(a.update(&e).unwrap(), b.update(&e).unwrap(), "point {i}");
        }
    }
}
