//! Bayesian online change-point detection (Adams & MacKay 2007) with a Normal-Gamma model
//! per input, a constant hazard and run-length pruning.

use adr_sdk::state::{Reader, Writer};
use adr_sdk::{Arity, Detector, DetectorError, ErrorKind, Score};
use statrs::function::gamma::ln_gamma;

use crate::online::{online_detector, Online};

adr_sdk::params! {
    /// Parameters of [`Bocpd`].
    pub struct BocpdParams {
        /// Expected length of a segment, in points (λ; the hazard is 1/λ).
        expected_run: f64 = 100.0, min > 1.0;
        /// Prior mean of each input (μ₀).
        prior_mean: f64 = 0.0;
        /// Prior weight of the mean, in points (κ₀).
        prior_strength: f64 = 1.0, min > 0.0;
        /// Prior shape of the precision (α₀).
        prior_shape: f64 = 1.0, min > 0.0;
        /// Prior rate of the precision (β₀); α₀/β₀ is the prior precision, so β₀ is on the
        /// scale of the input's variance.
        prior_rate: f64 = 1.0, min > 0.0;
        /// Points of a new segment seen before its change is reported: the report comes on
        /// the segment's `confirm`-th point, when the most probable run length is `confirm`.
        confirm: usize = 5, min >= 1;
        /// Run lengths whose posterior probability falls below this are dropped.
        prune: f64 = 1e-9, min >= 0.0, max < 1.0;
        /// At most this many run lengths are kept (the least probable go first).
        max_runs: usize = 1000, min >= 2;
    }
}

/// The sufficient statistics of one input under one run: the Normal-Gamma posterior.
#[derive(Debug, Clone, Copy, PartialEq)]
struct NormalGamma {
    mean: f64,
    strength: f64,
    shape: f64,
    rate: f64,
    /// ln Γ(α + ½) − ln Γ(α), kept by recursion so that no ln Γ is evaluated per point.
    log_gamma_ratio: f64,
}

impl NormalGamma {
    fn prior(p: &BocpdParams) -> Self {
        NormalGamma {
            mean: p.prior_mean,
            strength: p.prior_strength,
            shape: p.prior_shape,
            rate: p.prior_rate,
            log_gamma_ratio: ln_gamma(p.prior_shape + 0.5) - ln_gamma(p.prior_shape),
        }
    }

    /// ln of the Student-t predictive density of `x`: ν = 2α, scale² = β(κ+1)/(ακ).
    #[inline]
    fn log_predictive(&self, x: f64) -> f64 {
        let nu = 2.0 * self.shape;
        let scale2 = self.rate * (self.strength + 1.0) / (self.shape * self.strength);
        let d = x - self.mean;
        self.log_gamma_ratio
            - 0.5 * (std::f64::consts::PI * nu * scale2).ln()
            - (self.shape + 0.5) * (d * d / (nu * scale2)).ln_1p()
    }

    #[inline]
    fn learn(&mut self, x: f64) {
        let d = x - self.mean;
        self.rate += self.strength * d * d / (2.0 * (self.strength + 1.0));
        self.mean += d / (self.strength + 1.0);
        self.strength += 1.0;
        // ln Γ(α + 1) − ln Γ(α + ½) = ln α − (ln Γ(α + ½) − ln Γ(α))
        self.log_gamma_ratio = self.shape.ln() - self.log_gamma_ratio;
        self.shape += 0.5;
    }
}

/// The run-length posterior: for each kept run, its length, log probability and the
/// posterior of each input.
#[derive(Debug)]
pub struct Bocpd {
    params: BocpdParams,
    width: usize,
    /// Points learnt since the start: a run this long is the start, not a change.
    seen: u64,
    lengths: Vec<u64>,
    log_probs: Vec<f64>,
    /// `width` entries per run.
    models: Vec<NormalGamma>,
    // scratch
    predictive: Vec<f64>,
}

fn log_sum_exp(xs: &[f64]) -> f64 {
    let m = xs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if m == f64::NEG_INFINITY {
        return m;
    }
    m + xs.iter().map(|x| (x - m).exp()).sum::<f64>().ln()
}

impl Bocpd {
    fn fresh(params: BocpdParams, width: usize) -> Self {
        let prior = NormalGamma::prior(&params);
        Bocpd {
            width,
            seen: 0,
            lengths: vec![0],
            log_probs: vec![0.0],
            models: vec![prior; width],
            predictive: Vec::new(),
            params,
        }
    }

    /// Learns one row (at least one input finite).
    fn learn(&mut self, row: &[f64]) {
        let w = self.width;
        let runs = self.lengths.len();
        self.predictive.clear();
        for r in 0..runs {
            let models = &self.models[r * w..(r + 1) * w];
            let lp: f64 = row
                .iter()
                .zip(models)
                .filter(|(x, _)| x.is_finite())
                .map(|(&x, m)| m.log_predictive(x))
                .sum();
            self.predictive.push(self.log_probs[r] + lp);
        }
        let hazard = 1.0 / self.params.expected_run;
        let change = log_sum_exp(&self.predictive) + hazard.ln();
        let stay = (-hazard).ln_1p();
        // The new run (length 0) goes first, with the prior; every run grows by one.
        let prior = NormalGamma::prior(&self.params);
        let mut log_probs = Vec::with_capacity(runs + 1);
        log_probs.push(change);
        log_probs.extend(self.predictive.iter().map(|lp| lp + stay));
        let mut models = Vec::with_capacity((runs + 1) * w);
        models.extend(std::iter::repeat_n(prior, w));
        for r in 0..runs {
            for (j, m) in self.models[r * w..(r + 1) * w].iter().enumerate() {
                let mut m = *m;
                if row[j].is_finite() {
                    m.learn(row[j]);
                }
                models.push(m);
            }
        }
        let mut lengths = Vec::with_capacity(runs + 1);
        lengths.push(0);
        lengths.extend(self.lengths.iter().map(|l| l + 1));
        let total = log_sum_exp(&log_probs);
        log_probs.iter_mut().for_each(|lp| *lp -= total);
        self.lengths = lengths;
        self.log_probs = log_probs;
        self.models = models;
        self.prune();
        self.seen += 1;
    }

    /// Drops runs below `prune` and, past `max_runs`, the least probable; renormalises.
    fn prune(&mut self) {
        let floor = self.params.prune.ln();
        let mut keep: Vec<usize> = (0..self.lengths.len())
            .filter(|&r| self.log_probs[r] >= floor)
            .collect();
        if keep.len() > self.params.max_runs {
            keep.sort_by(|&a, &b| self.log_probs[b].total_cmp(&self.log_probs[a]));
            keep.truncate(self.params.max_runs);
            keep.sort_unstable();
        }
        if keep.len() == self.lengths.len() {
            return;
        }
        let w = self.width;
        self.lengths = keep.iter().map(|&r| self.lengths[r]).collect();
        self.log_probs = keep.iter().map(|&r| self.log_probs[r]).collect();
        self.models = keep
            .iter()
            .flat_map(|&r| self.models[r * w..(r + 1) * w].iter().copied())
            .collect();
        let total = log_sum_exp(&self.log_probs);
        self.log_probs.iter_mut().for_each(|lp| *lp -= total);
    }

    /// Odds of "the segment began `confirm` points ago" against the likeliest other run
    /// length; 0 when that run is the start of the stream or was pruned.
    fn odds(&self) -> f64 {
        let c = self.params.confirm as u64;
        if c >= self.seen {
            return 0.0;
        }
        let mut this = f64::NEG_INFINITY;
        let mut other = f64::NEG_INFINITY;
        for (&l, &lp) in self.lengths.iter().zip(&self.log_probs) {
            if l == c {
                this = lp;
            } else {
                other = other.max(lp);
            }
        }
        (this - other).exp()
    }

    /// The most probable run length.
    pub fn map_run_length(&self) -> u64 {
        let best = (0..self.lengths.len())
            .max_by(|&a, &b| self.log_probs[a].total_cmp(&self.log_probs[b]))
            .unwrap_or(0);
        self.lengths[best]
    }
}

impl Online for Bocpd {
    fn step(&mut self, _ts: i64, row: &[f64]) -> Score {
        if !row.iter().any(|x| x.is_finite()) {
            return Score::UNDETERMINED;
        }
        // NaN inputs are left out of this point (the other inputs still count).
        let clean: Vec<f64> = row
            .iter()
            .map(|&x| if x.is_finite() { x } else { f64::NAN })
            .collect();
        self.learn(&clean);
        Score::from_ratio(self.odds(), 1.0)
    }
}

impl Bocpd {
    fn save_state(&self, w: &mut Writer) {
        w.count(self.width);
        w.count(self.seen as usize);
        w.count(self.lengths.len());
        for r in 0..self.lengths.len() {
            w.count(self.lengths[r] as usize);
            w.number(self.log_probs[r]);
            for m in &self.models[r * self.width..(r + 1) * self.width] {
                for x in [m.mean, m.strength, m.shape, m.rate, m.log_gamma_ratio] {
                    w.number(x);
                }
            }
        }
    }

    fn restore_state(params: &BocpdParams, r: &mut Reader<'_>) -> Result<Self, DetectorError> {
        let width = r.count(usize::MAX)?;
        let seen = r.count(usize::MAX)? as u64;
        let runs = r.count(params.max_runs + 1)?;
        let mut d = Bocpd::fresh(params.clone(), width);
        d.seen = seen;
        d.lengths.clear();
        d.log_probs.clear();
        d.models.clear();
        for _ in 0..runs {
            d.lengths.push(r.count(usize::MAX)? as u64);
            d.log_probs.push(r.number()?);
            for _ in 0..width {
                d.models.push(NormalGamma {
                    mean: r.number()?,
                    strength: r.number()?,
                    shape: r.number()?,
                    rate: r.number()?,
                    log_gamma_ratio: r.number()?,
                });
            }
        }
        if runs == 0 {
            return Err(DetectorError::new(
                ErrorKind::IncompatibleState,
                "state is corrupt: no run lengths",
            ));
        }
        Ok(d)
    }
}

impl Detector for Bocpd {
    type Params = BocpdParams;
    const NAME: &'static str = "bocpd";
    const SUMMARY: &'static str =
        "Bayesian online change-point detection (Adams & MacKay), Normal-Gamma model";
    const DOC: &'static str = "\
Keeps the posterior over the run length (points since the last change) under a constant \
hazard 1/expected_run, each run with a Normal-Gamma posterior per input (independent inputs; \
Student-t predictive). Runs below `prune` and past `max_runs` are dropped. Raw score: the \
odds P(run length = confirm) / max over other run lengths — at least 1 exactly when the most \
probable segmentation has a change `confirm − 1` points before this one (the run covering \
the stream's start is never a change). Normalised: odds / (odds + 1), 0.5 when the change is \
the most probable. So each change is reported once, on the `confirm`-th point of the new \
segment. Priors are on the input's scale: standardise inputs or set prior_rate near their \
variance. NaN/inf inputs are left out of that point; a point with none finite is \
undetermined and not learnt.";
    const INPUTS: Arity = Arity::AtLeast(1);

    fn new(params: BocpdParams, inputs: &[String]) -> Result<Self, DetectorError> {
        Ok(Self::fresh(params, inputs.len().max(1)))
    }

    online_detector!();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{noise, params, run_rows, run_stream, run_with_restore};
    use adr_sdk::{ParamValue, Verdict};

    fn alarms(scores: &[Score]) -> Vec<usize> {
        (0..scores.len())
            .filter(|&i| scores[i].verdict == Verdict::Anomaly)
            .collect()
    }

    #[test]
    fn reports_each_mean_shift_once_confirm_points_into_the_new_segment() {
        let mut values = noise(300, 11);
        values[100..200].iter_mut().for_each(|v| *v += 4.0);
        let p: BocpdParams = params(&[]);
        let found = alarms(&run_stream::<Bocpd>(p, &values));
        // segments start at 100 and 200; the report comes on their 5th point
        assert_eq!(found, vec![104, 204]);
    }

    #[test]
    fn a_variance_change_is_a_change_too() {
        let mut values = noise(400, 5);
        values[200..].iter_mut().for_each(|v| *v *= 6.0);
        let found = alarms(&run_stream::<Bocpd>(params(&[]), &values));
        assert!(found.iter().any(|&i| (200..215).contains(&i)), "{found:?}");
        assert!(found.len() <= 3, "{found:?}");
    }

    #[test]
    fn matches_the_exact_recursion_without_pruning() {
        // The posterior over run lengths, computed naively for a short series.
        let values = [0.1, -0.4, 0.3, 3.9, 4.2, 3.8, 4.1, 4.4, 3.7];
        let p: BocpdParams = params(&[("prune", ParamValue::Float(0.0))]);
        let mut d = Bocpd::new(p.clone(), &["x".into()]).unwrap();
        for &x in &values {
            d.step(0, &[x]);
        }
        // naive: run r holds the last r points; predictive from the NG posterior of them
        let h = 0.01f64;
        let pred = |run: &[f64], x: f64| {
            let mut m = NormalGamma::prior(&p);
            run.iter().for_each(|&y| m.learn(y));
            m.log_predictive(x).exp()
        };
        let mut probs = vec![1.0f64]; // run length 0
        for t in 0..values.len() {
            let x = values[t];
            let mut next = vec![0.0; probs.len() + 1];
            for (r, &pr) in probs.iter().enumerate() {
                let f = pred(&values[t - r..t], x) * pr;
                next[0] += f * h;
                next[r + 1] += f * (1.0 - h);
            }
            let z: f64 = next.iter().sum();
            probs = next.iter().map(|p| p / z).collect();
        }
        for (&l, &lp) in d.lengths.iter().zip(&d.log_probs) {
            assert!((lp.exp() - probs[l as usize]).abs() < 1e-12, "run {l}");
        }
        assert_eq!(d.lengths.len(), probs.len());
    }

    #[test]
    fn two_inputs_and_nan_are_handled() {
        let a = noise(200, 1);
        let b = noise(200, 2);
        let mut rows = Vec::new();
        for i in 0..200 {
            let shift = if i >= 120 { 5.0 } else { 0.0 };
            let x = if i % 17 == 3 { f64::NAN } else { a[i] };
            rows.extend([x, b[i] + shift]);
        }
        rows[2 * 50] = f64::NAN;
        rows[2 * 50 + 1] = f64::NAN;
        let scores = run_rows::<Bocpd>(params(&[]), 2, &rows);
        assert_eq!(scores[50].verdict, Verdict::Undetermined);
        assert_eq!(alarms(&scores), vec![124]);
    }

    #[test]
    fn a_restored_state_continues_exactly() {
        let mut values = noise(300, 4);
        values[150..].iter_mut().for_each(|v| *v += 3.0);
        let p: BocpdParams = params(&[]);
        let whole = run_stream::<Bocpd>(p.clone(), &values);
        let split = run_with_restore::<Bocpd>(p, &values, 140);
        assert_eq!(format!("{whole:?}"), format!("{split:?}"));
    }

    #[test]
    fn memory_is_bounded_by_max_runs() {
        let values = noise(5000, 9);
        let p: BocpdParams = params(&[
            ("max_runs", ParamValue::Int(50)),
            ("prune", ParamValue::Float(0.0)),
        ]);
        let mut d = Bocpd::new(p, &["x".into()]).unwrap();
        for &x in &values {
            d.step(0, &[x]);
            assert!(d.lengths.len() <= 50);
        }
        assert!(d.map_run_length() > 1000);
    }
}
