//! Half-Space Trees (Tan, Ting & Liu, IJCAI 2011), as River's `anomaly.HalfSpaceTrees`:
//! random complete trees over the input space, masses counted over a reference window
//! and the window being filled, swapped every `window` points.

use adr_sdk::state::{Reader, Writer};
use adr_sdk::{Arity, Detector, DetectorError, ErrorKind, Score};
use rand::{Rng, SeedableRng};

use crate::online::{online_detector, Online};

adr_sdk::param_choice! {
    /// Where the trees' input ranges come from.
    pub enum Limits {
        /// Each input's minimum and maximum over the first window (its points are
        /// undetermined anyway: there is no reference mass yet).
        FirstWindow = "first_window",
        /// Inputs already scaled to [0, 1] (River's default).
        Unit = "unit",
    }
}

/// The most nodes a key's trees may have (trees × 2^(height+1)): 2^24, about 235 MB. Each
/// parameter's own limit allowed 1000 trees of height 20, two billion nodes.
const MAX_FOREST_NODES: usize = 1 << 24;

adr_sdk::params! {
    /// Parameters of [`HalfSpaceTrees`].
    pub struct HalfSpaceTreesParams {
        /// Trees.
        trees: usize = 10, min >= 1, max <= 1000;
        /// Depth of each tree (2^(height+1) − 1 nodes).
        height: usize = 8, min >= 1, max <= 20;
        /// Points per mass window.
        window: usize = 250, min >= 2, max <= 10_000_000;
        /// Where the input ranges come from: `first_window` or `unit`.
        limits: Limits = Limits::FirstWindow;
        /// Seed of the random splits.
        seed: usize = 42;
        /// Score (River's, in [0, 1]) at or above which a point is an anomaly. River's
        /// score sits close to 1 for every point when the trees are deep for the window
        /// (0.94 on average for normal noise at the defaults), hence the high default.
        threshold: f64 = 0.99, min > 0.0, max <= 1.0;
    }
}

/// One tree in breadth-first layout: node i has children 2i + 1 and 2i + 2.
#[derive(Debug, Clone, PartialEq)]
struct Tree {
    /// Split input of each internal node.
    feature: Vec<u32>,
    /// Split value of each internal node (left when x < threshold).
    threshold: Vec<f64>,
    /// Mass of the window being filled, per node.
    latest: Vec<u32>,
    /// Mass of the last full window, per node.
    reference: Vec<u32>,
}

impl Tree {
    fn build(lo: &mut [f64], hi: &mut [f64], height: usize, rng: &mut impl Rng) -> Tree {
        let internal = (1usize << height) - 1;
        let nodes = (1usize << (height + 1)) - 1;
        let mut tree = Tree {
            feature: vec![0; internal],
            threshold: vec![0.0; internal],
            latest: vec![0; nodes],
            reference: vec![0; nodes],
        };
        tree.split(0, lo, hi, rng);
        tree
    }

    /// River's padded split: an input drawn with weight its range, a value uniform in the
    /// middle 70 % of that range.
    fn split(&mut self, node: usize, lo: &mut [f64], hi: &mut [f64], rng: &mut impl Rng) {
        if node >= self.feature.len() {
            return;
        }
        let total: f64 = lo.iter().zip(hi.iter()).map(|(a, b)| b - a).sum();
        let mut pick = rng.gen::<f64>() * total;
        let mut on = lo.len() - 1;
        for j in 0..lo.len() {
            let w = hi[j] - lo[j];
            if pick < w {
                on = j;
                break;
            }
            pick -= w;
        }
        let (a, b) = (lo[on], hi[on]);
        let at = a + (b - a) * (0.15 + 0.7 * rng.gen::<f64>());
        self.feature[node] = on as u32;
        self.threshold[node] = at;
        hi[on] = at;
        self.split(2 * node + 1, lo, hi, rng);
        hi[on] = b;
        lo[on] = at;
        self.split(2 * node + 2, lo, hi, rng);
        lo[on] = a;
    }

    #[inline]
    fn child(&self, node: usize, x: &[f64]) -> usize {
        let go_right = x[self.feature[node] as usize] >= self.threshold[node];
        2 * node + 1 + go_right as usize
    }

    /// River's walk: reference mass × 2^depth summed down the path, stopping at the first
    /// node whose reference mass is under `size_limit`.
    fn score(&self, x: &[f64], size_limit: f64) -> f64 {
        let (mut node, mut depth_pow, mut score) = (0, 1.0, 0.0);
        while node < self.feature.len() {
            let r = self.reference[node] as f64;
            score += r * depth_pow;
            if r < size_limit {
                return score;
            }
            node = self.child(node, x);
            depth_pow *= 2.0;
        }
        score + self.reference[node] as f64 * depth_pow
    }

    fn learn(&mut self, x: &[f64]) {
        let mut node = 0;
        while node < self.feature.len() {
            self.latest[node] += 1;
            node = self.child(node, x);
        }
        self.latest[node] += 1;
    }

    fn pivot(&mut self) {
        std::mem::swap(&mut self.reference, &mut self.latest);
        self.latest.iter_mut().for_each(|m| *m = 0);
    }
}

/// An ensemble of half-space trees over the inputs.
#[derive(Debug)]
pub struct HalfSpaceTrees {
    params: HalfSpaceTreesParams,
    width: usize,
    trees: Vec<Tree>,
    /// The first window's points, until the trees exist (`limits = first_window`).
    pending: Vec<f64>,
    counter: usize,
    first_window: bool,
}

impl HalfSpaceTrees {
    fn build(&mut self, lo: &mut [f64], hi: &mut [f64]) {
        let mut rng = rand_pcg::Pcg64::seed_from_u64(self.params.seed as u64);
        self.trees = (0..self.params.trees)
            .map(|_| Tree::build(lo, hi, self.params.height, &mut rng))
            .collect();
    }

    fn learn(&mut self, x: &[f64]) {
        for t in &mut self.trees {
            t.learn(x);
        }
        self.counter += 1;
        if self.counter == self.params.window {
            self.trees.iter_mut().for_each(Tree::pivot);
            self.first_window = false;
            self.counter = 0;
        }
    }

    /// River's score: 1 − (summed masses) / (trees · window · (2^(height+1) − 1)).
    fn mass_score(&self, x: &[f64]) -> f64 {
        let p = &self.params;
        let size_limit = 0.1 * p.window as f64;
        let total: f64 = self.trees.iter().map(|t| t.score(x, size_limit)).sum();
        let max = (p.trees * p.window) as f64 * ((1u64 << (p.height + 1)) - 1) as f64;
        1.0 - total / max
    }
}

impl Online for HalfSpaceTrees {
    fn step(&mut self, _ts: i64, row: &[f64]) -> Score {
        if row.iter().any(|&x| !crate::online::learnable(x)) {
            return Score::UNDETERMINED;
        }
        if self.trees.is_empty() {
            // limits = first_window: gather it, then build and learn it.
            self.pending.extend_from_slice(row);
            if self.pending.len() < self.params.window * self.width {
                return Score::UNDETERMINED;
            }
            let w = self.width;
            let mut lo = vec![f64::INFINITY; w];
            let mut hi = vec![f64::NEG_INFINITY; w];
            for point in self.pending.chunks(w) {
                for j in 0..w {
                    lo[j] = lo[j].min(point[j]);
                    hi[j] = hi[j].max(point[j]);
                }
            }
            for j in 0..w {
                if hi[j] <= lo[j] {
                    // a constant input: give it a unit range around its value
                    lo[j] -= 0.5;
                    hi[j] += 0.5;
                }
            }
            self.build(&mut lo, &mut hi);
            let pending = std::mem::take(&mut self.pending);
            for point in pending.chunks(w) {
                self.learn(point);
            }
            return Score::UNDETERMINED;
        }
        let score = if self.first_window {
            Score::UNDETERMINED
        } else {
            Score::from_ratio(self.mass_score(row), self.params.threshold)
        };
        self.learn(row);
        score
    }
}

impl HalfSpaceTrees {
    fn save_state(&self, w: &mut Writer) {
        w.count(self.width);
        w.numbers(&self.pending);
        w.count(self.counter);
        w.count(self.first_window as usize);
        w.count(self.trees.len());
        for t in &self.trees {
            let as_f64 = |v: &[u32]| v.iter().map(|&m| m as f64).collect::<Vec<_>>();
            w.numbers(&as_f64(&t.feature));
            w.numbers(&t.threshold);
            w.numbers(&as_f64(&t.latest));
            w.numbers(&as_f64(&t.reference));
        }
    }

    fn restore_state(
        params: &HalfSpaceTreesParams,
        r: &mut Reader<'_>,
    ) -> Result<Self, DetectorError> {
        let corrupt = |why: &str| {
            DetectorError::new(
                ErrorKind::IncompatibleState,
                format!("state is corrupt: {why}"),
            )
        };
        let width = r.count(1 << 20)?;
        let pending = r.numbers()?;
        let counter = r.count(params.window)?;
        let first_window = r.count(1)? == 1;
        let n = r.count(params.trees)?;
        let internal = (1usize << params.height) - 1;
        let nodes = (1usize << (params.height + 1)) - 1;
        let mut trees = Vec::with_capacity(n);
        for _ in 0..n {
            let ints = |v: Vec<f64>, len: usize, max: f64| -> Result<Vec<u32>, DetectorError> {
                if v.len() != len
                    || v.iter()
                        .any(|&x| !(0.0..=max).contains(&x) || x.fract() != 0.0)
                {
                    return Err(corrupt("a tree of another shape"));
                }
                Ok(v.into_iter().map(|x| x as u32).collect())
            };
            let feature = ints(r.numbers()?, internal, width.saturating_sub(1) as f64)?;
            let threshold = r.numbers()?;
            let latest = ints(r.numbers()?, nodes, u32::MAX as f64)?;
            let reference = ints(r.numbers()?, nodes, u32::MAX as f64)?;
            if threshold.len() != internal {
                return Err(corrupt("a tree of another shape"));
            }
            trees.push(Tree {
                feature,
                threshold,
                latest,
                reference,
            });
        }
        if !trees.is_empty() && trees.len() != params.trees {
            return Err(corrupt("another number of trees"));
        }
        Ok(HalfSpaceTrees {
            params: params.clone(),
            width,
            trees,
            pending,
            counter,
            first_window,
        })
    }
}

impl Detector for HalfSpaceTrees {
    type Params = HalfSpaceTreesParams;
    const NAME: &'static str = "half_space_trees";
    const SUMMARY: &'static str =
        "Half-Space Trees: streaming mass-based isolation (as River's HalfSpaceTrees)";
    const DOC: &'static str = "\
`trees` random complete trees of depth `height` over the inputs' ranges (River's padded \
splits: an input drawn with weight its range, a value in the middle 70 % of it). Each point \
adds 1 to the latest mass of the nodes on its path; every `window` points the latest masses \
become the reference. Raw score: River's, 1 − Σ over trees of Σ down the path of reference \
mass × 2^depth (stopping under 0.1·window) / (trees·window·(2^(height+1) − 1)), in [0, 1]. \
Normalised: raw / (raw + threshold). Undetermined during the first window. A point with a \
NaN/inf input: undetermined, not learnt. Ranges: the first window's (`first_window`) or \
[0, 1] (`unit`, River's default); points outside the ranges fall to the edge leaves.";
    const INPUTS: Arity = Arity::AtLeast(1);

    fn new(params: HalfSpaceTreesParams, inputs: &[String]) -> Result<Self, DetectorError> {
        // Trees are built whole: 2^(height+1) nodes each, about 14 bytes a node.
        let nodes = params.trees << (params.height + 1);
        if nodes > MAX_FOREST_NODES {
            return Err(DetectorError::new(
                ErrorKind::InvalidParams,
                format!(
                    "trees × 2^(height+1) = {} × 2^{} = {nodes} nodes, more than the \
                     {MAX_FOREST_NODES} (about 235 MB) a key's trees may hold: lower trees or height",
                    params.trees,
                    params.height + 1
                ),
            ));
        }
        let width = inputs.len().max(1);
        let mut d = HalfSpaceTrees {
            params,
            width,
            trees: Vec::new(),
            pending: Vec::new(),
            counter: 0,
            first_window: true,
        };
        if d.params.limits == Limits::Unit {
            d.build(&mut vec![0.0; width], &mut vec![1.0; width]);
        }
        Ok(d)
    }

    fn state_bytes(&self) -> Option<u64> {
        {
            // per tree: split input (4) and value (8) per internal node, two masses (4 + 4)
            // per node; the first window's points until the trees exist
            let p = &self.params;
            let internal = (1u64 << p.height) - 1;
            let nodes = (1u64 << (p.height + 1)) - 1;
            let tree = internal * 12 + nodes * 8;
            Some(
                p.trees as u64 * (tree + 128)
                    + crate::online::grown(p.window * self.width, 8)
                    + crate::online::FIXED_BYTES,
            )
        }
    }

    online_detector!();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{noise, params, run_rows, run_stream, run_with_restore};
    use adr_sdk::{ParamValue, Verdict};

    #[test]
    fn river_s_worked_example_has_the_same_shape() {
        // River's docstring: after warming up on three points, 0.0 scores far above the rest.
        let p: HalfSpaceTreesParams = params(&[
            ("trees", ParamValue::Int(5)),
            ("height", ParamValue::Int(3)),
            ("window", ParamValue::Int(3)),
            ("limits", ParamValue::Text("unit".into())),
        ]);
        let mut d = HalfSpaceTrees::new(p, &["x".into()]).unwrap();
        for x in [0.5, 0.45, 0.43] {
            d.learn(&[x]);
        }
        let mut scores = Vec::new();
        for x in [0.5, 0.45, 0.43, 0.44, 0.445, 0.45, 0.0] {
            d.learn(&[x]);
            scores.push(d.mass_score(&[x]));
        }
        let (last, rest) = scores.split_last().unwrap();
        assert!(
            rest.iter().all(|s| *s < 0.5 && last - s > 0.3),
            "{scores:?}"
        );
    }

    #[test]
    fn the_masses_count_each_window() {
        let p: HalfSpaceTreesParams = params(&[
            ("window", ParamValue::Int(50)),
            ("limits", ParamValue::Text("unit".into())),
        ]);
        let mut d = HalfSpaceTrees::new(p, &["x".into()]).unwrap();
        for i in 0..120 {
            d.step(0, &[(i % 10) as f64 / 10.0]);
        }
        for t in &d.trees {
            assert_eq!(t.reference[0], 50);
            assert_eq!(t.latest[0], 20);
            // every level holds all the points of a window
            let leaves = &t.reference[t.feature.len()..];
            assert_eq!(leaves.iter().sum::<u32>(), 50);
        }
    }

    #[test]
    fn an_outlier_scores_high_and_two_inputs_work() {
        let a = noise(3000, 1);
        let b = noise(3000, 2);
        let mut rows = Vec::new();
        for i in 0..3000 {
            let far = if i == 2500 { 8.0 } else { 0.0 };
            rows.extend([a[i] + far, b[i] - far]);
        }
        let scores = run_rows::<HalfSpaceTrees>(params(&[]), 2, &rows);
        assert!(scores[..250]
            .iter()
            .all(|s| s.verdict == Verdict::Undetermined));
        let typical = scores[300..2400].iter().map(|s| s.raw).sum::<f64>() / 2100.0;
        assert!(
            scores[2500].raw > typical + 0.05,
            "{} vs {typical}",
            scores[2500].raw
        );
        assert_eq!(scores[2500].verdict, Verdict::Anomaly);
        let alarms = scores
            .iter()
            .filter(|s| s.verdict == Verdict::Anomaly)
            .count();
        // the tails of 2-d normal noise: under 4 % of the points
        assert!(alarms < 110, "{alarms} alarms");
    }

    #[test]
    fn a_restored_state_continues_exactly() {
        let values = noise(2000, 4);
        let whole = run_stream::<HalfSpaceTrees>(params(&[]), &values);
        for cut in [100, 1234] {
            let split = run_with_restore::<HalfSpaceTrees>(params(&[]), &values, cut);
            assert_eq!(format!("{whole:?}"), format!("{split:?}"), "cut {cut}");
        }
    }
}
