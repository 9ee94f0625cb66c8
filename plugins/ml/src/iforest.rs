//! Isolation Forest (Liu, Ting & Zhou, ICDM 2008), built the way scikit-learn's
//! `IsolationForest` (behind PyOD's `IForest`) builds it, with its own random numbers.
//!
//! Each of `trees` trees is grown on `max_samples` training rows drawn without replacement
//! (all rows when there are fewer), to depth `⌈log₂ max_samples⌉`: at each node a feature
//! is drawn among those not constant there (a node whose features are all constant is a
//! leaf), and a threshold uniformly in `[min, max)` of that feature; rows `≤ threshold` go
//! left. A row's path length in a tree is the depth of its leaf plus `c(n)` for the `n`
//! training rows that reached the leaf, `c(n) = 2H(n − 1) − 2(n − 1)/n` the average path
//! length of an unsuccessful search in a binary search tree. Raw score: `2^(−E[h] / c(ψ))`
//! for the mean path length `E[h]` over the trees and `ψ` the sample size; 1 is isolated
//! at once, about 0.5 and below is ordinary.
//!
//! Trees are grown in parallel, each from its own generator seeded by `seed` and its
//! index, so a forest is the same whatever the thread count.

use adr_sdk::{Arity, Detector, DetectorError, ErrorKind};
use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64;
use rayon::prelude::*;

use crate::state::{Reader, Writer};
use crate::trained::{Model, Trained};

adr_sdk::params! {
    /// Parameters of [`IsolationForest`].
    pub struct IsolationForestParams {
        /// Events each key trains on before it is judged.
        train: usize = 1000, min >= 2, max <= 10_000_000;
        /// Or train on the events of this first span of event time (at most `train`;
        /// `train on 1h` in a rule sets it). Off when zero.
        train_for: std::time::Duration = std::time::Duration::ZERO;
        /// Standardise each input with the training events' mean and population deviation
        /// before fitting and scoring (PyOD's benchmark does this outside the detector).
        standardise: bool = false;
        /// Trees in the forest.
        trees: usize = 100, min >= 1, max <= 10_000;
        /// Training rows each tree is grown on.
        max_samples: usize = 256, min >= 2, max <= 1_000_000;
        /// Share of the inputs each tree draws (without replacement) and splits on, at
        /// least one (scikit-learn's `max_features`).
        max_features: f64 = 1.0, min > 0.0, max <= 1.0;
        /// `axis`: split on one input at a time (Liu et al.); `hyperplane`: on a random
        /// hyperplane through a random point of the node's box (the extended forest of
        /// Hariri, Kind & Brunner 2019, full extension).
        split: SplitChoice = SplitChoice::Axis;
        /// Seed of the random numbers: the same seed grows the same forest.
        seed: usize = 0;
        /// Share of training events expected to be outliers: the alarm threshold is the
        /// `1 − contamination` quantile of the training scores.
        contamination: f64 = 0.1, min > 0.0, max <= 0.5;
    }
}

adr_sdk::param_choice! {
    /// How a tree's nodes split.
    pub enum SplitChoice {
        /// One input at a threshold.
        Axis = "axis",
        /// A random hyperplane.
        Hyperplane = "hyperplane",
    }
}

/// What a forest is grown with.
#[derive(Debug, Clone, Copy)]
pub struct ForestSettings {
    trees: usize,
    max_samples: usize,
    max_features: f64,
    split: SplitChoice,
    seed: u64,
}

/// A node: a split on `feature` at `threshold` into `left` and `right` (in a hyperplane
/// forest, `feature` is the index of the node's normal and `threshold` its offset), or,
/// with `feature == LEAF`, a leaf whose path length is `threshold`.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Node {
    feature: u32,
    threshold: f64,
    left: u32,
    right: u32,
}

const LEAF: u32 = u32::MAX;

/// `c(n)`: the average path length of an unsuccessful search among `n` points.
pub fn average_path_length(n: usize) -> f64 {
    match n {
        0 | 1 => 0.0,
        2 => 1.0,
        _ => {
            let n = n as f64;
            2.0 * ((n - 1.0).ln() + 0.577_215_664_901_532_9) - 2.0 * (n - 1.0) / n
        }
    }
}

/// A tree laid out for walking many rows at once without branches: every walk takes
/// `depth` steps, a leaf stepping to itself (`split = +∞`, `left` = its own index).
#[derive(Debug, Clone, PartialEq)]
struct Walk {
    steps: Vec<Step>,
    /// The path length of each leaf (unused for inner nodes).
    value: Vec<f64>,
    depth: usize,
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct Step {
    split: f64,
    feature: u32,
    left: u32,
}

impl Walk {
    fn new(tree: &[Node]) -> Walk {
        let steps = tree
            .iter()
            .enumerate()
            .map(|(i, n)| match n.feature {
                LEAF => Step {
                    split: f64::INFINITY,
                    feature: 0,
                    left: i as u32,
                },
                f => Step {
                    split: n.threshold,
                    feature: f,
                    left: n.left,
                },
            })
            .collect();
        // Children lie after their parents: one pass in order gives every depth.
        let mut depths = vec![0usize; tree.len()];
        for (i, n) in tree.iter().enumerate() {
            if n.feature != LEAF {
                depths[n.left as usize] = depths[i] + 1;
                depths[n.right as usize] = depths[i] + 1;
            }
        }
        Walk {
            steps,
            value: tree.iter().map(|n| n.threshold).collect(),
            depth: depths.into_iter().max().unwrap_or(0),
        }
    }

    /// Adds each row's path length to its total, `LANES` walks in lockstep.
    fn add_path_lengths(&self, rows: &[f64], d: usize, totals: &mut [f64]) {
        const LANES: usize = 8;
        let mut rows_left = rows.chunks_exact(LANES * d);
        let mut totals_left = totals.chunks_exact_mut(LANES);
        for (rows, totals) in (&mut rows_left).zip(&mut totals_left) {
            let mut at = [0usize; LANES];
            for _ in 0..self.depth {
                for (lane, i) in at.iter_mut().enumerate() {
                    let s = &self.steps[*i];
                    let x = rows[lane * d + s.feature as usize];
                    *i = s.left as usize + usize::from(x > s.split);
                }
            }
            for (t, i) in totals.iter_mut().zip(at) {
                *t += self.value[i];
            }
        }
        let rest = rows_left.remainder();
        for (t, row) in totals_left
            .into_remainder()
            .iter_mut()
            .zip(rest.chunks_exact(d))
        {
            let mut i = 0;
            for _ in 0..self.depth {
                let s = &self.steps[i];
                i = s.left as usize + usize::from(row[s.feature as usize] > s.split);
            }
            *t += self.value[i];
        }
    }
}

/// A grown forest.
#[derive(Debug, Clone, PartialEq)]
pub struct ForestModel {
    d: usize,
    trees: Vec<Vec<Node>>,
    /// Per tree of a hyperplane forest, its nodes' normals (`d` values each); empty for
    /// an axis forest.
    normals: Vec<Vec<f64>>,
    /// The trees of an axis forest laid out for batch walks.
    walks: Vec<Walk>,
    /// `c(ψ)`, the normaliser of the mean path length.
    normaliser: f64,
}

struct Grower<'a> {
    rows: &'a [f64],
    d: usize,
    max_depth: usize,
    rng: Pcg64,
    nodes: Vec<Node>,
    features: Vec<usize>,
    /// Grown with hyperplanes: their normals, `d` values each.
    normals: Option<Vec<f64>>,
}

/// A standard normal draw (Box–Muller).
fn gaussian(rng: &mut Pcg64) -> f64 {
    let u: f64 = 1.0 - rng.gen::<f64>();
    let v: f64 = rng.gen();
    (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
}

impl Grower<'_> {
    /// Grows the subtree of `sample` into the node at `slot`; an inner node's two children
    /// are allocated side by side (`right = left + 1`), so a walk picks one without a branch.
    fn grow(&mut self, slot: usize, sample: &mut [u32], depth: usize) {
        let leaf = |depth: usize, n: usize| Node {
            feature: LEAF,
            threshold: depth as f64 + average_path_length(n),
            left: 0,
            right: 0,
        };
        if depth >= self.max_depth || sample.len() <= 1 {
            self.nodes[slot] = leaf(depth, sample.len());
            return;
        }
        if self.normals.is_some() {
            return self.grow_hyperplane(slot, sample, depth);
        }
        let value = |r: u32, f: usize| self.rows[r as usize * self.d + f];
        // Draw features until one is not constant here (scikit-learn's random splitter).
        let mut left_to_draw = self.features.len();
        let split = loop {
            if left_to_draw == 0 {
                break None;
            }
            let j = self.rng.gen_range(0..left_to_draw);
            let f = self.features[j];
            self.features.swap(j, left_to_draw - 1);
            left_to_draw -= 1;
            let (lo, hi) =
                sample
                    .iter()
                    .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &r| {
                        let x = value(r, f);
                        (lo.min(x), hi.max(x))
                    });
            if hi > lo {
                break Some((f, lo, hi));
            }
        };
        let Some((f, lo, hi)) = split else {
            self.nodes[slot] = leaf(depth, sample.len());
            return;
        };
        let mut threshold = lo + (hi - lo) * self.rng.gen::<f64>();
        if threshold >= hi {
            threshold = lo;
        }
        let children = self.nodes.len() as u32;
        self.nodes.extend([leaf(0, 0), leaf(0, 0)]);
        self.nodes[slot] = Node {
            feature: f as u32,
            threshold,
            left: children,
            right: children + 1,
        };
        // Rows ≤ threshold first.
        let mut split_at = 0;
        for i in 0..sample.len() {
            if value(sample[i], f) <= threshold {
                sample.swap(i, split_at);
                split_at += 1;
            }
        }
        let (left, right) = sample.split_at_mut(split_at);
        self.grow(children as usize, left, depth + 1);
        self.grow(children as usize + 1, right, depth + 1);
    }

    /// A node split by a random hyperplane: a normal of independent standard normal
    /// components on the tree's inputs, through a point drawn uniformly in the box of the
    /// node's rows; rows with `x·normal ≤ point·normal` go left (a side may be empty).
    fn grow_hyperplane(&mut self, slot: usize, sample: &mut [u32], depth: usize) {
        let d = self.d;
        let row = |r: u32| &self.rows[r as usize * d..(r as usize + 1) * d];
        let mut normal = vec![0.0; d];
        let mut offset = 0.0;
        for &f in &self.features {
            let (lo, hi) = sample
                .iter()
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &r| {
                    (lo.min(row(r)[f]), hi.max(row(r)[f]))
                });
            normal[f] = gaussian(&mut self.rng);
            offset += normal[f] * (lo + (hi - lo) * self.rng.gen::<f64>());
        }
        let dot = |r: u32| row(r).iter().zip(&normal).map(|(x, n)| x * n).sum::<f64>();
        let mut split_at = 0;
        for i in 0..sample.len() {
            if dot(sample[i]) <= offset {
                sample.swap(i, split_at);
                split_at += 1;
            }
        }
        let normals = self.normals.as_mut().expect("a hyperplane forest");
        let index = (normals.len() / d) as u32;
        normals.extend(normal);
        let children = self.nodes.len() as u32;
        let leaf = Node {
            feature: LEAF,
            threshold: 0.0,
            left: 0,
            right: 0,
        };
        self.nodes.extend([leaf, leaf]);
        self.nodes[slot] = Node {
            feature: index,
            threshold: offset,
            left: children,
            right: children + 1,
        };
        let (left, right) = sample.split_at_mut(split_at);
        self.grow(children as usize, left, depth + 1);
        self.grow(children as usize + 1, right, depth + 1);
    }
}

impl ForestModel {
    fn new(d: usize, trees: Vec<Vec<Node>>, normals: Vec<Vec<f64>>, normaliser: f64) -> Self {
        ForestModel {
            d,
            walks: match normals.is_empty() {
                true => trees.iter().map(|t| Walk::new(t)).collect(),
                false => Vec::new(),
            },
            normals,
            trees,
            normaliser,
        }
    }

    /// `2^(−E[h]/c(ψ))` from the sum of a row's path lengths over the trees.
    fn score_of_total(&self, total: f64) -> f64 {
        let mean = total / self.trees.len() as f64;
        (-mean / self.normaliser).exp2()
    }

    fn path_length(tree: &[Node], row: &[f64]) -> f64 {
        let mut node = &tree[0];
        while node.feature != LEAF {
            // right = left + 1: an add instead of an unpredictable branch.
            let next =
                node.left as usize + usize::from(row[node.feature as usize] > node.threshold);
            node = &tree[next];
        }
        node.threshold
    }

    fn hyperplane_path_length(&self, tree: usize, row: &[f64]) -> f64 {
        let (nodes, normals) = (&self.trees[tree], &self.normals[tree]);
        let mut node = &nodes[0];
        while node.feature != LEAF {
            let normal = &normals[node.feature as usize * self.d..][..self.d];
            let side: f64 = row.iter().zip(normal).map(|(x, n)| x * n).sum();
            node = &nodes[node.left as usize + usize::from(side > node.threshold)];
        }
        node.threshold
    }
}

impl Model for ForestModel {
    type Settings = ForestSettings;

    fn fit(settings: &ForestSettings, rows: &[f64], d: usize) -> Result<Self, DetectorError> {
        let n = rows.len() / d;
        let psi = settings.max_samples.min(n);
        let max_depth = (psi.max(2) as f64).log2().ceil() as usize;
        let grown = (0..settings.trees)
            .into_par_iter()
            .map(|t| {
                let mut rng = Pcg64::seed_from_u64((settings.seed << 32) ^ t as u64);
                let mut sample: Vec<u32> = rand::seq::index::sample(&mut rng, n, psi)
                    .into_iter()
                    .map(|i| i as u32)
                    .collect();
                // scikit-learn's max_features: max(1, int(share · d)) inputs per tree.
                let kept = ((settings.max_features * d as f64) as usize).clamp(1, d);
                let features = match kept < d {
                    true => rand::seq::index::sample(&mut rng, d, kept).into_vec(),
                    false => (0..d).collect(),
                };
                let hyperplane = settings.split == SplitChoice::Hyperplane;
                let mut grower = Grower {
                    rows,
                    d,
                    max_depth,
                    rng,
                    nodes: Vec::with_capacity(2 * psi),
                    features,
                    normals: hyperplane.then(Vec::new),
                };
                grower.nodes.push(Node {
                    feature: LEAF,
                    threshold: 0.0,
                    left: 0,
                    right: 0,
                });
                grower.grow(0, &mut sample, 0);
                (grower.nodes, grower.normals)
            })
            .collect::<Vec<_>>();
        let (trees, normals): (Vec<_>, Vec<_>) = grown.into_iter().unzip();
        let normals = normals.into_iter().flatten().collect();
        Ok(ForestModel::new(
            d,
            trees,
            normals,
            average_path_length(psi),
        ))
    }

    fn model_bytes(s: &ForestSettings, rows: usize, d: usize) -> u64 {
        // per tree: at most 2·ψ nodes (24 bytes) and their compiled walk (as much again),
        // with a normal of d values each in a hyperplane forest
        let psi = s.max_samples.min(rows) as u64;
        let normals = if s.split == SplitChoice::Hyperplane {
            8 * d as u64
        } else {
            0
        };
        (s.trees as u64).saturating_mul(2 * psi * (48 + normals) + 256)
    }

    fn score(&self, row: &[f64]) -> f64 {
        let total: f64 = if self.normals.is_empty() {
            self.trees.iter().map(|t| Self::path_length(t, row)).sum()
        } else {
            (0..self.trees.len())
                .map(|t| self.hyperplane_path_length(t, row))
                .sum()
        };
        self.score_of_total(total)
    }

    /// Tree by tree over blocks of rows, so that a tree stays in the L1 cache while a
    /// block's independent walks overlap; each row's lengths add up in tree order, so the
    /// scores are [`score`](Self::score)'s to the bit.
    fn score_batch(&self, rows: &[f64], d: usize) -> Vec<f64> {
        const BLOCK: usize = 256;
        if self.walks.is_empty() {
            return rows
                .par_chunks(BLOCK * d)
                .flat_map_iter(|block| block.chunks_exact(d).map(|r| self.score(r)))
                .collect();
        }
        let mut out = vec![0.0; rows.len() / d];
        out.par_chunks_mut(BLOCK)
            .zip(rows.par_chunks(BLOCK * d))
            .for_each(|(out, rows)| {
                for walk in &self.walks {
                    walk.add_path_lengths(rows, d, out);
                }
                out.iter_mut().for_each(|s| *s = self.score_of_total(*s));
            });
        out
    }

    fn save(&self, out: &mut Writer) {
        out.count(self.d);
        out.number(self.normaliser);
        out.count(self.trees.len());
        out.count(usize::from(!self.normals.is_empty()));
        for normals in &self.normals {
            out.numbers(normals);
        }
        for tree in &self.trees {
            let flat: Vec<f64> = tree
                .iter()
                .flat_map(|n| {
                    [
                        f64::from(n.feature),
                        n.threshold,
                        f64::from(n.left),
                        f64::from(n.right),
                    ]
                })
                .collect();
            out.numbers(&flat);
        }
    }

    fn restore(input: &mut Reader<'_>) -> Result<Self, DetectorError> {
        let d = input.count(1 << 20)?;
        let normaliser = input.number()?;
        let count = input.count(1 << 20)?;
        let bad = |why: String| DetectorError::new(ErrorKind::IncompatibleState, why);
        let normals: Vec<Vec<f64>> = match input.count(1)? {
            0 => Vec::new(),
            _ => (0..count)
                .map(|_| input.numbers())
                .collect::<Result<_, _>>()?,
        };
        if d == 0 || normals.iter().any(|n| n.len() % d != 0) {
            return Err(bad(format!("normals that do not fit {d} inputs")));
        }
        let trees = (0..count)
            .map(|t| {
                let flat = input.numbers()?;
                if flat.is_empty() || flat.len() % 4 != 0 {
                    return Err(bad(format!("a tree of {} numbers", flat.len())));
                }
                let nodes: Vec<Node> = flat
                    .chunks_exact(4)
                    .map(|c| Node {
                        feature: c[0] as u32,
                        threshold: c[1],
                        left: c[2] as u32,
                        right: c[3] as u32,
                    })
                    .collect();
                // Children must exist, side by side, after their parent (no loops), and a
                // split must name an input (or a normal) that exists.
                let splits = normals.get(t).map_or(d, |n| n.len() / d);
                for (i, n) in nodes.iter().enumerate() {
                    if n.feature != LEAF
                        && (n.left as usize <= i
                            || n.right != n.left + 1
                            || n.right as usize >= nodes.len())
                    {
                        return Err(bad(format!("node {i} points outside its tree")));
                    }
                    if n.feature != LEAF && n.feature as usize >= splits {
                        return Err(bad(format!("node {i} splits on {} of {splits}", n.feature)));
                    }
                }
                Ok(nodes)
            })
            .collect::<Result<_, _>>()?;
        Ok(ForestModel::new(d, trees, normals, normaliser))
    }
}

/// Isolation Forest over one or more inputs.
#[derive(Debug)]
pub struct IsolationForest {
    trained: Trained<ForestModel>,
}

impl Detector for IsolationForest {
    type Params = IsolationForestParams;
    const NAME: &'static str = "isolation_forest";
    const SUMMARY: &'static str =
        "Isolation Forest over one or more inputs, grown on the first events (scikit-learn's algorithm)";
    const INPUTS: Arity = Arity::AtLeast(1);

    fn new(params: IsolationForestParams, inputs: &[String]) -> Result<Self, DetectorError> {
        let settings = ForestSettings {
            trees: params.trees,
            max_samples: params.max_samples,
            max_features: params.max_features,
            split: params.split,
            seed: params.seed as u64,
        };
        Ok(IsolationForest {
            trained: Trained::new(settings, inputs.len(), crate::trained::training_of!(params)),
        })
    }

    crate::trained::delegate_to_trained!();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(seed: u64) -> ForestSettings {
        ForestSettings {
            trees: 50,
            max_samples: 64,
            max_features: 1.0,
            split: SplitChoice::Axis,
            seed,
        }
    }

    fn cluster() -> Vec<f64> {
        (0..400)
            .flat_map(|i| {
                [
                    ((i * 7919) % 97) as f64 / 97.0,
                    ((i * 104_729) % 89) as f64 / 89.0,
                ]
            })
            .collect()
    }

    #[test]
    fn isolated_points_score_high_and_seeds_repeat() {
        let rows = cluster();
        let forest = ForestModel::fit(&settings(1), &rows, 2).unwrap();
        let inside = forest.score(&[0.5, 0.5]);
        let far = forest.score(&[5.0, -5.0]);
        assert!(far > 0.6 && inside < 0.5, "far {far}, inside {inside}");
        assert_eq!(ForestModel::fit(&settings(1), &rows, 2).unwrap(), forest);
        assert_ne!(ForestModel::fit(&settings(2), &rows, 2).unwrap(), forest);
    }

    #[test]
    fn a_batch_scores_each_row_as_it_scores_alone() {
        let rows = cluster();
        for split in [SplitChoice::Axis, SplitChoice::Hyperplane] {
            let forest = ForestModel::fit(
                &ForestSettings {
                    split,
                    ..settings(4)
                },
                &rows,
                2,
            )
            .unwrap();
            let queries: Vec<f64> = (0..37)
                .flat_map(|i| [i as f64 / 9.0, 3.0 - i as f64 / 7.0])
                .collect();
            let batch = forest.score_batch(&queries, 2);
            for (q, b) in queries.chunks(2).zip(&batch) {
                assert_eq!(forest.score(q).to_bits(), b.to_bits(), "{split:?}");
            }
        }
    }

    #[test]
    fn hyperplane_forests_isolate_and_restore() {
        let rows = cluster();
        let s = ForestSettings {
            split: SplitChoice::Hyperplane,
            ..settings(5)
        };
        let forest = ForestModel::fit(&s, &rows, 2).unwrap();
        let (inside, far) = (forest.score(&[0.5, 0.5]), forest.score(&[5.0, -5.0]));
        assert!(far > 0.6 && inside < 0.5, "far {far}, inside {inside}");
        assert_eq!(ForestModel::fit(&s, &rows, 2).unwrap(), forest);
        let mut out = Writer::default();
        forest.save(&mut out);
        let back = ForestModel::restore(&mut Reader::new(&out.bytes)).unwrap();
        assert_eq!(back, forest);
    }

    #[test]
    fn max_features_gives_each_tree_a_subset_of_inputs() {
        let rows = cluster();
        let s = ForestSettings {
            max_features: 0.5,
            ..settings(6)
        };
        let forest = ForestModel::fit(&s, &rows, 2).unwrap();
        let mut used = [false; 2];
        for tree in &forest.trees {
            let features: std::collections::BTreeSet<u32> = tree
                .iter()
                .filter(|n| n.feature != LEAF)
                .map(|n| n.feature)
                .collect();
            assert_eq!(features.len(), 1, "one input per tree");
            used[*features.first().unwrap() as usize] = true;
        }
        assert_eq!(used, [true, true], "both inputs are drawn over the trees");
    }

    #[test]
    fn the_thread_count_does_not_change_the_forest() {
        let rows = cluster();
        let one = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        let many = rayon::ThreadPoolBuilder::new()
            .num_threads(4)
            .build()
            .unwrap();
        let a = one.install(|| ForestModel::fit(&settings(3), &rows, 2).unwrap());
        let b = many.install(|| ForestModel::fit(&settings(3), &rows, 2).unwrap());
        assert_eq!(a, b);
    }

    #[test]
    fn path_lengths_follow_the_paper() {
        assert_eq!(average_path_length(1), 0.0);
        assert_eq!(average_path_length(2), 1.0);
        // c(256) = 2(ln 255 + γ) − 2·255/256 ≈ 10.2448
        assert!((average_path_length(256) - 10.2448).abs() < 1e-3);
    }

    #[test]
    fn constant_data_and_damaged_state() {
        let rows = vec![1.0; 40];
        let forest = ForestModel::fit(&settings(0), &rows, 2).unwrap();
        // Every tree is one leaf of 20 rows.
        assert!(forest.trees.iter().all(|t| t.len() == 1));
        assert!(forest.score(&[1.0, 1.0]).is_finite());
        let mut out = Writer::default();
        ForestModel::fit(&settings(0), &cluster(), 2)
            .unwrap()
            .save(&mut out);
        let back = ForestModel::restore(&mut Reader::new(&out.bytes)).unwrap();
        assert_eq!(
            back.score(&[0.1, 0.2]),
            ForestModel::fit(&settings(0), &cluster(), 2)
                .unwrap()
                .score(&[0.1, 0.2])
        );
        let mut looped = out.bytes.clone();
        // The first tree's root: point its left child at itself.
        let root_left = 8 + 8 + 8 + 8 + 8 + 2 * 8;
        looped[root_left..root_left + 8].copy_from_slice(&0.0f64.to_le_bytes());
        let err = ForestModel::restore(&mut Reader::new(&looped)).unwrap_err();
        assert!(err.message().contains("points outside its tree"), "{err}");
    }
}
