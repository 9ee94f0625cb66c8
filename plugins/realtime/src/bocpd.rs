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

/// The sufficient statistics of one input under one run: the Normal-Gamma posterior after
/// `count` points.
#[derive(Debug, Clone, Copy, PartialEq)]
struct NormalGamma {
    mean: f64,
    rate: f64,
    /// ln(rate), carried along: each point adds ln(1 + q/rate), which the predictive
    /// needs anyway, so a point costs one logarithm per run and input, not two.
    ln_rate: f64,
    count: u32,
}

/// What depends only on a run's point count n (κ = κ₀ + n, α = α₀ + n/2), tabled so that
/// a point costs two logarithms and one division per run.
#[derive(Debug, Clone, Copy, PartialEq)]
struct ByCount {
    /// ln Γ(α + ½) − ln Γ(α) − ½·ln(2π(κ + 1)/κ).
    constant: f64,
    /// α + ½.
    power: f64,
    /// κ / (2(κ + 1)): the weight of d² in the predictive and in the rate's update.
    spread: f64,
    /// 1/(κ + 1): the weight of d in the mean's update.
    step: f64,
}

#[derive(Debug, Clone)]
struct Constants {
    strength: f64,
    shape: f64,
    /// H and 1 − H.
    change: f64,
    stay: f64,
    table: Vec<ByCount>,
}

/// Counts up to this are tabled; longer runs compute their constants directly.
const TABLED: usize = 1 << 14;

impl Constants {
    fn new(p: &BocpdParams) -> Self {
        let hazard = 1.0 / p.expected_run;
        Constants {
            strength: p.prior_strength,
            shape: p.prior_shape,
            change: hazard,
            stay: 1.0 - hazard,
            table: Vec::new(),
        }
    }

    fn compute(&self, count: u32) -> ByCount {
        let k = self.strength + count as f64;
        let a = self.shape + 0.5 * count as f64;
        ByCount {
            constant: ln_gamma(a + 0.5)
                - ln_gamma(a)
                - 0.5 * (2.0 * std::f64::consts::PI * (k + 1.0) / k).ln(),
            power: a + 0.5,
            spread: k / (2.0 * (k + 1.0)),
            step: 1.0 / (k + 1.0),
        }
    }

    /// [`compute`](Self::compute) for the long runs past the table, with one logarithm
    /// instead of two ln Γ: for a ≥ 8192, ln Γ(a + ½) − ln Γ(a) = ½ ln a − 1/(8a) +
    /// 1/(192a³) + O(a⁻⁵), the next term below 10⁻²² (a unit test checks it to 1e-14,
    /// closer than statrs' ln Γ comes at these sizes),
    /// and ln(1 + 1/κ) is its series to the κ⁻⁴ term.
    fn compute_long(&self, count: u32) -> ByCount {
        let k = self.strength + count as f64;
        let a = self.shape + 0.5 * count as f64;
        let gamma_ratio = 0.5 * a.ln() - 1.0 / (8.0 * a) + 1.0 / (192.0 * a * a * a);
        let inv = 1.0 / k;
        let ln_1p_inv = inv * (1.0 - inv * (0.5 - inv * (1.0 / 3.0 - 0.25 * inv)));
        ByCount {
            constant: gamma_ratio - 0.5 * ((2.0 * std::f64::consts::PI).ln() + ln_1p_inv),
            power: a + 0.5,
            spread: k / (2.0 * (k + 1.0)),
            step: 1.0 / (k + 1.0),
        }
    }

    #[inline]
    fn get(&mut self, count: u32) -> ByCount {
        let c = count as usize;
        if c < self.table.len() {
            return self.table[c];
        }
        if c >= TABLED {
            return self.compute_long(count);
        }
        while self.table.len() <= c {
            let next = self.compute(self.table.len() as u32);
            self.table.push(next);
        }
        self.table[c]
    }
}

impl NormalGamma {
    fn prior(p: &BocpdParams) -> Self {
        NormalGamma {
            mean: p.prior_mean,
            rate: p.prior_rate,
            ln_rate: p.prior_rate.ln(),
            count: 0,
        }
    }

    /// ln of the Student-t predictive density of `x` (ν = 2α, ν·scale² = 2β(κ+1)/κ), and
    /// then learns `x`.
    #[inline]
    fn predict_and_learn(&mut self, x: f64, c: &mut Constants) -> f64 {
        let k = c.get(self.count);
        let d = x - self.mean;
        let q = k.spread * d * d;
        let growth = (q / self.rate).ln_1p();
        let lp = k.constant - 0.5 * self.ln_rate - k.power * growth;
        self.rate += q;
        self.ln_rate += growth;
        self.mean += k.step * d;
        self.count += 1;
        lp
    }
}

/// The run-length posterior: for each kept run, oldest first, where it started, its
/// probability and the posterior of each input.
///
/// Probabilities are kept as such, not as logarithms: a point then costs one exponential
/// per run (the predictive's, shifted by the largest so that none overflows) and no
/// logarithm outside the predictive, and pruning and the odds are divisions. A run whose
/// share falls below 2⁻¹⁰²² of the likeliest predictive's rounds to 0 and goes at the next
/// prune; with the default `prune` it would have gone anyway.
#[derive(Debug)]
pub struct Bocpd {
    params: BocpdParams,
    width: usize,
    /// Points learnt since the start: a run this long is the start, not a change.
    seen: u64,
    /// Per run: the number of points learnt before its first (its length is
    /// `seen − start`).
    starts: Vec<u64>,
    /// Per run: its posterior probability (they sum to 1).
    probs: Vec<f64>,
    /// `width` entries per run.
    models: Vec<NormalGamma>,
    constants: Constants,
    // scratch: each run's log predictive, then its joint mass
    weights: Vec<f64>,
}

impl Bocpd {
    fn fresh(params: BocpdParams, width: usize) -> Self {
        let prior = NormalGamma::prior(&params);
        Bocpd {
            width,
            seen: 0,
            starts: vec![0],
            probs: vec![1.0],
            models: vec![prior; width],
            constants: Constants::new(&params),
            weights: Vec::new(),
            params,
        }
    }

    /// Learns one row (at least one input finite; the others NaN).
    fn learn(&mut self, row: &[f64]) {
        let w = self.width;
        let runs = self.starts.len();
        self.weights.clear();
        let mut top = f64::NEG_INFINITY;
        for r in 0..runs {
            let mut lp = 0.0;
            for (j, &x) in row.iter().enumerate() {
                if x.is_finite() {
                    lp += self.models[r * w + j].predict_and_learn(x, &mut self.constants);
                }
            }
            top = top.max(lp);
            self.weights.push(lp);
        }
        // P(r)·p(x | r), up to the common factor e^top; growth and change masses are
        // (1 − H) and H times them, and sum to their total
        let mut total = 0.0;
        for (weight, &p) in self.weights.iter_mut().zip(&self.probs) {
            *weight = p * (*weight - top).exp();
            total += *weight;
        }
        let stay = self.constants.stay / total;
        for (p, &weight) in self.probs.iter_mut().zip(&self.weights) {
            *p = weight * stay;
        }
        // the new run (no point yet): P = H
        self.seen += 1;
        self.starts.push(self.seen);
        self.probs.push(self.constants.change);
        let prior = NormalGamma::prior(&self.params);
        self.models.extend(std::iter::repeat_n(prior, w));
        self.prune();
    }

    /// Drops runs below `prune` and, past `max_runs`, the least probable; renormalises.
    fn prune(&mut self) {
        let mut cut = self.params.prune;
        // one over the cap (every point once it is reached): the least probable run goes
        let mut least = None;
        if self.starts.len() == self.params.max_runs + 1 {
            least = (0..self.probs.len()).min_by(|&a, &b| self.probs[a].total_cmp(&self.probs[b]));
        } else if self.starts.len() > self.params.max_runs {
            // the max_runs-th largest probability: runs below it go
            self.weights.clear();
            self.weights.extend_from_slice(&self.probs);
            let k = self.params.max_runs - 1;
            let (_, kth, _) = self
                .weights
                .select_nth_unstable_by(k, |a, b| b.total_cmp(a));
            cut = cut.max(*kth);
        }
        if least.is_none()
            && self.probs.iter().all(|&p| p >= cut)
            && self.starts.len() <= self.params.max_runs
        {
            return;
        }
        let w = self.width;
        let mut kept = 0;
        for r in 0..self.starts.len() {
            if self.probs[r] >= cut && Some(r) != least && kept < self.params.max_runs {
                self.starts[kept] = self.starts[r];
                self.probs[kept] = self.probs[r];
                if kept != r {
                    self.models.copy_within(r * w..(r + 1) * w, kept * w);
                }
                kept += 1;
            }
        }
        if kept == 0 {
            // everything fell below the floor at once: keep the likeliest run
            return;
        }
        self.starts.truncate(kept);
        self.probs.truncate(kept);
        self.models.truncate(kept * w);
        let total: f64 = self.probs.iter().sum();
        self.probs.iter_mut().for_each(|p| *p /= total);
    }

    /// Odds of "the segment began `confirm` points ago" against the likeliest other run
    /// length; 0 when that run is the start of the stream or was pruned.
    fn odds(&self) -> f64 {
        let c = self.params.confirm as u64;
        if c >= self.seen {
            return 0.0;
        }
        let mut this = 0.0;
        let mut other = 0.0f64;
        for (&start, &p) in self.starts.iter().zip(&self.probs) {
            if self.seen - start == c {
                this = p;
            } else {
                other = other.max(p);
            }
        }
        if other > 0.0 {
            this / other
        } else if this > 0.0 {
            f64::INFINITY
        } else {
            0.0
        }
    }

    /// The most probable run length.
    pub fn map_run_length(&self) -> u64 {
        let best = (0..self.starts.len())
            .max_by(|&a, &b| self.probs[a].total_cmp(&self.probs[b]))
            .unwrap_or(0);
        self.seen - self.starts[best]
    }

    /// Run lengths kept (for the memory bound's test).
    #[cfg(test)]
    fn runs(&self) -> usize {
        self.starts.len()
    }
}

impl Online for Bocpd {
    fn step(&mut self, _ts: i64, row: &[f64]) -> Score {
        if !row.iter().any(|x| x.is_finite()) {
            return Score::UNDETERMINED;
        }
        // Non-finite inputs are left out of this point (the other inputs still count).
        self.learn(row);
        Score::from_ratio(self.odds(), 1.0)
    }
}

impl Bocpd {
    fn save_state(&self, w: &mut Writer) {
        w.count(self.width);
        w.count(self.seen as usize);
        w.count(self.starts.len());
        for r in 0..self.starts.len() {
            w.count(self.starts[r] as usize);
            w.number(self.probs[r]);
            for m in &self.models[r * self.width..(r + 1) * self.width] {
                w.number(m.mean);
                w.number(m.rate);
                w.number(m.ln_rate);
                w.count(m.count as usize);
            }
        }
    }

    fn restore_state(params: &BocpdParams, r: &mut Reader<'_>) -> Result<Self, DetectorError> {
        let corrupt = |why: String| {
            DetectorError::new(
                ErrorKind::IncompatibleState,
                format!("state is corrupt: {why}"),
            )
        };
        let width = r.count(1 << 20)?;
        let seen = r.count(usize::MAX)? as u64;
        let runs = r.count(params.max_runs + 1)?;
        if runs == 0 {
            return Err(corrupt("no run lengths".into()));
        }
        let mut d = Bocpd::fresh(params.clone(), width);
        d.seen = seen;
        d.starts.clear();
        d.probs.clear();
        d.models.clear();
        for _ in 0..runs {
            let start = r.count(seen as usize)? as u64;
            d.starts.push(start);
            let p = r.number()?;
            if !(0.0..=1.0).contains(&p) {
                return Err(corrupt(format!("a probability of {p}")));
            }
            d.probs.push(p);
            for _ in 0..width {
                let (mean, rate, ln_rate) = (r.number()?, r.number()?, r.number()?);
                let count = r.count((seen - start) as usize)? as u32;
                if rate.is_nan() || rate <= 0.0 || (ln_rate - rate.ln()).abs() > 1e-6 {
                    return Err(corrupt(format!("a rate of {rate} (ln {ln_rate})")));
                }
                d.models.push(NormalGamma {
                    mean,
                    rate,
                    ln_rate,
                    count,
                });
            }
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
        // the textbook Student-t predictive, from the Normal-Gamma update equations
        let pred = |run: &[f64], x: f64| {
            let (mut mu, mut k, mut a, mut b) = (0.0f64, 1.0f64, 1.0f64, 1.0f64);
            for &y in run {
                b += k * (y - mu) * (y - mu) / (2.0 * (k + 1.0));
                mu = (k * mu + y) / (k + 1.0);
                k += 1.0;
                a += 0.5;
            }
            let nu = 2.0 * a;
            let scale2 = b * (k + 1.0) / (a * k);
            let t = (x - mu) * (x - mu) / (nu * scale2);
            (ln_gamma((nu + 1.0) / 2.0)
                - ln_gamma(nu / 2.0)
                - 0.5 * (std::f64::consts::PI * nu * scale2).ln()
                - (nu + 1.0) / 2.0 * t.ln_1p())
            .exp()
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
        for (&start, &p) in d.starts.iter().zip(&d.probs) {
            let l = (d.seen - start) as usize;
            assert!((p - probs[l]).abs() < 1e-12, "run {l}");
        }
        assert_eq!(d.runs(), probs.len());
    }

    #[test]
    fn long_runs_constants_are_exact() {
        // lnΓ(a + ½) − lnΓ(a) − ½ln(2π(κ + 1)/κ) from 40 digits, rounded to f64 (Stirling's series to the
        // a⁻⁹ term in Python's decimal), for the default priors (κ₀ = α₀ = 1)
        let exact = [
            (16_384, 3.586_533_400_155_177),
            (20_000, 3.686_244_153_408_32),
            (1 << 20, 5.665_959_920_533_614),
        ];
        let c = Constants::new(&params(&[]));
        for (count, want) in exact {
            let (by_gamma, long) = (c.compute(count), c.compute_long(count));
            assert!((long.constant - want).abs() < 1e-14, "{count}: {long:?}");
            // statrs' ln Γ differs by its rounding at these sizes (up to 5e-10 at 2^20)
            assert!(
                (by_gamma.constant - want).abs() < 1e-8,
                "{count}: {by_gamma:?}"
            );
            assert_eq!(
                (by_gamma.power, by_gamma.spread, by_gamma.step),
                (long.power, long.spread, long.step)
            );
        }
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
            assert!(d.runs() <= 50);
        }
        assert!(d.map_run_length() > 1000);
    }
}
