//! A streaming Robust Random Cut Forest (Guha, Mishra, Roy & Schrijvers, ICML 2016), as
//! the `rrcf` package runs it: each tree keeps the last `size` points, and a point's score
//! is its collusive displacement (CoDisp) averaged over the trees.

use std::collections::VecDeque;

use adr_sdk::state::{Reader, Writer};
use adr_sdk::{Arity, Detector, DetectorError, ErrorKind, Event, Frame, Score, ScoresMut};
use rayon::prelude::*;

adr_sdk::params! {
    /// Parameters of [`RandomCutForest`].
    pub struct RandomCutForestParams {
        /// Trees.
        trees: usize = 20, min >= 1, max <= 10000;
        /// Points each tree keeps (the oldest is forgotten first).
        size: usize = 256, min >= 2, max <= 1_000_000;
        /// Consecutive events that make one point (a shingle); with several inputs the
        /// point is `shingle` rows of them.
        shingle: usize = 1, min >= 1, max <= 1024;
        /// Seed of the random cuts.
        seed: usize = 0;
        /// Mean CoDisp at or above which a point is an anomaly.
        threshold: f64 = 30.0, min > 0.0;
    }
}

const NONE: u32 = u32::MAX;

/// The most point values a key's forest may hold (trees × size × point width): 2^23, with
/// bounding boxes and nodes about 2 GB. The per-parameter limits alone allowed
/// `trees = 10000, size = 100000`, which grew past the machine's memory on four
/// thousand events.
const MAX_FOREST_VALUES: usize = 1 << 23;

/// One random cut tree over a sliding window of points, nodes in an arena.
#[derive(Debug, Clone)]
struct Tree {
    d: usize,
    root: u32,
    /// Per node: parent, left, right (NONE for a leaf), count of points below.
    parent: Vec<u32>,
    left: Vec<u32>,
    right: Vec<u32>,
    count: Vec<u32>,
    /// Per branch: the cut's input and value.
    dim: Vec<u32>,
    cut: Vec<f64>,
    /// Per node: the bounding box, `d` minima then `d` maxima (a leaf: its point twice).
    bbox: Vec<f64>,
    free: Vec<u32>,
    /// The leaf of each point kept, oldest first, with the point's sequence number.
    leaves: VecDeque<(u64, u32)>,
    /// Seeds the cuts of each insertion together with its sequence number, so the cuts
    /// depend on (seed, tree, point) only and no generator state has to be saved.
    key: u64,
}

/// SplitMix64 (Steele, Lea & Flood 2014): a counter-based stream of uniforms.
#[derive(Debug)]
struct Draws(u64);

impl Draws {
    fn new(key: u64, seq: u64) -> Draws {
        Draws(key ^ seq.wrapping_mul(0x9e37_79b9_7f4a_7c15))
    }

    fn uniform(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        (z >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
}

impl Tree {
    fn new(d: usize, key: u64) -> Tree {
        Tree {
            d,
            root: NONE,
            parent: Vec::new(),
            left: Vec::new(),
            right: Vec::new(),
            count: Vec::new(),
            dim: Vec::new(),
            cut: Vec::new(),
            bbox: Vec::new(),
            free: Vec::new(),
            leaves: VecDeque::new(),
            key,
        }
    }

    fn alloc(&mut self) -> u32 {
        if let Some(i) = self.free.pop() {
            return i;
        }
        let i = self.parent.len() as u32;
        self.parent.push(NONE);
        self.left.push(NONE);
        self.right.push(NONE);
        self.count.push(0);
        self.dim.push(0);
        self.cut.push(0.0);
        self.bbox.extend(std::iter::repeat_n(0.0, 2 * self.d));
        i
    }

    fn lo(&self, n: u32) -> &[f64] {
        let s = n as usize * 2 * self.d;
        &self.bbox[s..s + self.d]
    }

    fn hi(&self, n: u32) -> &[f64] {
        let s = n as usize * 2 * self.d + self.d;
        &self.bbox[s..s + self.d]
    }

    fn is_leaf(&self, n: u32) -> bool {
        self.left[n as usize] == NONE
    }

    fn new_leaf(&mut self, point: &[f64]) -> u32 {
        let n = self.alloc();
        let i = n as usize;
        self.left[i] = NONE;
        self.right[i] = NONE;
        self.count[i] = 1;
        let s = i * 2 * self.d;
        self.bbox[s..s + self.d].copy_from_slice(point);
        self.bbox[s + self.d..s + 2 * self.d].copy_from_slice(point);
        n
    }

    /// The leaf holding exactly `point`, if any.
    fn find(&self, point: &[f64]) -> Option<u32> {
        let mut n = self.root;
        if n == NONE {
            return None;
        }
        while !self.is_leaf(n) {
            let i = n as usize;
            n = if point[self.dim[i] as usize] <= self.cut[i] {
                self.left[i]
            } else {
                self.right[i]
            };
        }
        (self.lo(n) == point).then_some(n)
    }

    /// Adds 1 to the counts from `n` up, widening the boxes to `point`.
    fn grow_up(&mut self, mut n: u32, point: &[f64]) {
        while n != NONE {
            let i = n as usize;
            self.count[i] += 1;
            let s = i * 2 * self.d;
            for (j, &x) in point.iter().enumerate() {
                self.bbox[s + j] = self.bbox[s + j].min(x);
                self.bbox[s + self.d + j] = self.bbox[s + self.d + j].max(x);
            }
            n = self.parent[i];
        }
    }

    fn insert(&mut self, point: &[f64], seq: u64) {
        if self.root == NONE {
            let leaf = self.new_leaf(point);
            self.root = leaf;
            self.parent[leaf as usize] = NONE;
            self.leaves.push_back((seq, leaf));
            return;
        }
        if let Some(leaf) = self.find(point) {
            self.grow_up(leaf, point);
            self.leaves.push_back((seq, leaf));
            return;
        }
        let d = self.d;
        let mut draws = Draws::new(self.key, seq);
        let mut node = self.root;
        loop {
            // A cut drawn over the box of the node and the point, each input with weight
            // its span: if it separates the point from the node's box, the point branches
            // off here; otherwise it goes down the side of the node's own cut.
            let (lo, hi) = (self.lo(node), self.hi(node));
            let mut total = 0.0;
            for j in 0..d {
                total += hi[j].max(point[j]) - lo[j].min(point[j]);
            }
            let mut r = draws.uniform() * total;
            let mut on = d - 1;
            for j in 0..d {
                let span = hi[j].max(point[j]) - lo[j].min(point[j]);
                if r < span {
                    on = j;
                    break;
                }
                r -= span;
            }
            let (lo_on, hi_on) = (lo[on], hi[on]);
            let cut = lo_on.min(point[on]) + r;
            let separates = (point[on] <= cut && cut < lo_on) || (point[on] > cut && cut >= hi_on);
            if separates || self.is_leaf(node) {
                let parent = self.parent[node as usize];
                let leaf = self.new_leaf(point);
                let branch = self.alloc();
                let b = branch as usize;
                self.dim[b] = on as u32;
                self.cut[b] = cut;
                let point_left = point[on] <= cut;
                (self.left[b], self.right[b]) = if point_left {
                    (leaf, node)
                } else {
                    (node, leaf)
                };
                self.parent[leaf as usize] = branch;
                self.parent[node as usize] = branch;
                self.parent[b] = parent;
                self.count[b] = self.count[node as usize];
                let (src, dst) = (node as usize * 2 * d, b * 2 * d);
                self.bbox.copy_within(src..src + 2 * d, dst);
                if parent == NONE {
                    self.root = branch;
                } else if self.left[parent as usize] == node {
                    self.left[parent as usize] = branch;
                } else {
                    self.right[parent as usize] = branch;
                }
                self.grow_up(branch, point);
                self.leaves.push_back((seq, leaf));
                return;
            }
            let i = node as usize;
            node = if point[self.dim[i] as usize] <= self.cut[i] {
                self.left[i]
            } else {
                self.right[i]
            };
        }
    }

    /// Forgets the oldest point.
    fn forget_oldest(&mut self) {
        let Some((_, leaf)) = self.leaves.pop_front() else {
            return;
        };
        let l = leaf as usize;
        if self.count[l] > 1 {
            let mut n = leaf;
            while n != NONE {
                self.count[n as usize] -= 1;
                n = self.parent[n as usize];
            }
            return;
        }
        let parent = self.parent[l];
        self.free.push(leaf);
        if parent == NONE {
            self.root = NONE;
            return;
        }
        let p = parent as usize;
        let sibling = if self.left[p] == leaf {
            self.right[p]
        } else {
            self.left[p]
        };
        let grand = self.parent[p];
        self.parent[sibling as usize] = grand;
        self.free.push(parent);
        if grand == NONE {
            self.root = sibling;
            return;
        }
        let g = grand as usize;
        if self.left[g] == parent {
            self.left[g] = sibling;
        } else {
            self.right[g] = sibling;
        }
        // shrink counts and boxes up to the root
        let d = self.d;
        let mut n = grand;
        while n != NONE {
            let i = n as usize;
            self.count[i] -= 1;
            let (a, b) = (
                self.left[i] as usize * 2 * d,
                self.right[i] as usize * 2 * d,
            );
            for j in 0..d {
                self.bbox[i * 2 * d + j] = self.bbox[a + j].min(self.bbox[b + j]);
                self.bbox[i * 2 * d + d + j] = self.bbox[a + d + j].max(self.bbox[b + d + j]);
            }
            n = self.parent[i];
        }
    }

    /// The newest point's collusive displacement: the largest, over its ancestors, of the
    /// sibling's count over the count of the side holding the point.
    fn codisp_newest(&self) -> f64 {
        let Some(&(_, leaf)) = self.leaves.back() else {
            return 0.0;
        };
        let mut best = 0.0f64;
        let mut n = leaf;
        loop {
            let parent = self.parent[n as usize];
            if parent == NONE {
                return best;
            }
            let p = parent as usize;
            let sibling = if self.left[p] == n {
                self.right[p]
            } else {
                self.left[p]
            };
            best = best.max(self.count[sibling as usize] as f64 / self.count[n as usize] as f64);
            n = parent;
        }
    }

    /// Forgets past `size`, inserts, and returns the CoDisp of the new point.
    fn step(&mut self, point: &[f64], seq: u64, size: usize) -> f64 {
        if self.leaves.len() > size {
            self.forget_oldest();
        }
        self.insert(point, seq);
        self.codisp_newest()
    }
}

/// A forest of random cut trees over a sliding window of (shingled) points.
#[derive(Debug)]
pub struct RandomCutForest {
    params: RandomCutForestParams,
    width: usize,
    trees: Vec<Tree>,
    /// The last `shingle` rows.
    recent: VecDeque<f64>,
    /// Points inserted so far.
    seq: u64,
}

impl RandomCutForest {
    fn fresh(params: RandomCutForestParams, width: usize) -> Self {
        let d = width * params.shingle;
        let trees = (0..params.trees)
            .map(|k| Tree::new(d, tree_key(params.seed, k)))
            .collect();
        RandomCutForest {
            params,
            width,
            trees,
            recent: VecDeque::new(),
            seq: 0,
        }
    }

    /// Takes one row into the shingle; the point when the shingle is full.
    fn shingle(&mut self, row: &[f64]) -> Option<Vec<f64>> {
        self.recent.extend(row.iter().copied());
        let d = self.width * self.params.shingle;
        while self.recent.len() > d {
            self.recent.pop_front();
        }
        (self.recent.len() == d).then(|| self.recent.iter().copied().collect())
    }

    fn judge(&self, codisp: f64, first: bool) -> Score {
        if first {
            // a lone point has nothing to be displaced from
            Score::from_ratio(0.0, self.params.threshold)
        } else {
            Score::from_ratio(codisp, self.params.threshold)
        }
    }
}

impl Detector for RandomCutForest {
    type Params = RandomCutForestParams;
    const NAME: &'static str = "random_cut_forest";
    const SUMMARY: &'static str =
        "streaming Robust Random Cut Forest: collusive displacement over sliding windows";
    const DOC: &'static str = "\
Each of `trees` random cut trees keeps the last `size` points (of `shingle` consecutive rows \
each): per event the oldest point beyond `size` is forgotten, the new one inserted (a cut \
drawn with each input weighted by its span over the node's box and the point; duplicates \
share a leaf), as the `rrcf` package's streaming example does. Raw score: the new point's \
CoDisp (over its ancestors, the largest ratio of the sibling's count to its own side's \
count), averaged over the trees. Normalised: raw / (raw + threshold). Undetermined until \
the shingle is full; the first point scores 0. A row with a NaN/inf input: undetermined, \
not learnt. A batch runs the trees in parallel (each tree sees the events in order, so \
scores equal the per-event ones). Memory: trees · size points.";
    const INPUTS: Arity = Arity::AtLeast(1);

    fn state_bytes(&self) -> Option<u64> {
        use crate::online::grown;
        // per tree: a leaf and a branch per point, each with links and counts (20 bytes),
        // a cut (8) and a bounding box (16 a dimension); the points' leaves (16)
        let p = &self.params;
        let dims = (p.shingle * self.width) as u64;
        let tree = grown(2 * p.size + 1, 28 + 16 * dims) + grown(p.size + 1, 16) + grown(p.size, 4);
        Some(p.trees as u64 * (tree + 128) + grown(dims as usize, 8) + crate::online::FIXED_BYTES)
    }

    fn new(params: RandomCutForestParams, inputs: &[String]) -> Result<Self, DetectorError> {
        let width = inputs.len().max(1);
        // Every tree keeps `size` points of `shingle × inputs` values, as a leaf and an
        // internal node each with a bounding box: about 40 + 16·dims bytes a point.
        let values =
            (params.trees as u128) * (params.size as u128) * ((params.shingle * width) as u128);
        if values > MAX_FOREST_VALUES as u128 {
            return Err(DetectorError::new(
                ErrorKind::InvalidParams,
                format!(
                    "trees × size × point width = {} × {} × {} = {values} values, more than the \
                     {MAX_FOREST_VALUES} (about 1 GB) a key's forest may hold: lower trees or size",
                    params.trees,
                    params.size,
                    params.shingle * width
                ),
            ));
        }
        Ok(Self::fresh(params, width))
    }

    fn score(&mut self, frame: &Frame<'_>, out: &mut ScoresMut<'_>) -> Result<(), DetectorError> {
        let columns = (0..frame.columns().len())
            .map(|i| frame.f64(i))
            .collect::<Result<Vec<_>, _>>()?;
        // The points of the batch, in order, with the row each scores.
        let mut points: Vec<f64> = Vec::new();
        let mut at: Vec<usize> = Vec::new();
        let mut row = vec![0.0; columns.len()];
        for i in 0..frame.len() {
            for (x, c) in row.iter_mut().zip(&columns) {
                *x = c[i];
            }
            if row.iter().any(|&x| !crate::online::learnable(x)) {
                out.set(i, Score::UNDETERMINED);
                continue;
            }
            match self.shingle(&row) {
                Some(p) => {
                    points.extend_from_slice(&p);
                    at.push(i);
                }
                None => out.set(i, Score::UNDETERMINED),
            }
        }
        let d = self.width * self.params.shingle;
        let (size, seq) = (self.params.size, self.seq);
        let per_tree: Vec<Vec<f64>> = self
            .trees
            .par_iter_mut()
            .map(|t| {
                points
                    .chunks(d)
                    .enumerate()
                    .map(|(k, p)| t.step(p, seq + k as u64, size))
                    .collect()
            })
            .collect();
        let n = self.trees.len() as f64;
        for (k, &i) in at.iter().enumerate() {
            let sum: f64 = per_tree.iter().map(|v| v[k]).sum();
            out.set(i, self.judge(sum / n, seq + k as u64 == 0));
        }
        self.seq += at.len() as u64;
        Ok(())
    }

    fn update(&mut self, event: &Event<'_>) -> Result<Score, DetectorError> {
        let row = event.values();
        if row.iter().any(|&x| !crate::online::learnable(x)) {
            return Ok(Score::UNDETERMINED);
        }
        let Some(point) = self.shingle(row) else {
            return Ok(Score::UNDETERMINED);
        };
        let (size, seq) = (self.params.size, self.seq);
        let sum: f64 = self
            .trees
            .iter_mut()
            .map(|t| t.step(&point, seq, size))
            .sum();
        self.seq += 1;
        Ok(self.judge(sum / self.trees.len() as f64, seq == 0))
    }

    fn save(&self) -> Option<Vec<u8>> {
        // The whole arena: rebuilding the trees from the kept points would draw other cuts.
        let mut w = Writer::default();
        w.count(self.width);
        w.count(self.seq as usize);
        w.numbers(&self.recent.iter().copied().collect::<Vec<_>>());
        w.count(self.trees.len());
        for t in &self.trees {
            let ints = |v: &[u32]| v.iter().map(|&x| x as f64).collect::<Vec<_>>();
            w.count(t.root as usize);
            w.numbers(&ints(&t.parent));
            w.numbers(&ints(&t.left));
            w.numbers(&ints(&t.right));
            w.numbers(&ints(&t.count));
            w.numbers(&ints(&t.dim));
            w.numbers(&t.cut);
            w.numbers(&t.bbox);
            w.numbers(&ints(&t.free));
            w.numbers(&t.leaves.iter().map(|&(s, _)| s as f64).collect::<Vec<_>>());
            w.numbers(&t.leaves.iter().map(|&(_, l)| l as f64).collect::<Vec<_>>());
        }
        Some(w.bytes)
    }

    fn restore(&mut self, state: &[u8]) -> Result<(), DetectorError> {
        let corrupt = |why: &str| {
            DetectorError::new(
                ErrorKind::IncompatibleState,
                format!("state is corrupt: {why}"),
            )
        };
        let mut r = Reader::new(state);
        let width = r.count(1 << 20)?;
        let seq = r.count(usize::MAX)? as u64;
        let recent: VecDeque<f64> = r.numbers()?.into();
        let n = r.count(self.params.trees)?;
        if n != self.params.trees || width != self.width {
            return Err(corrupt("another forest's shape"));
        }
        let d = width * self.params.shingle;
        let mut trees = Vec::with_capacity(n);
        for k in 0..n {
            let mut t = Tree::new(d, tree_key(self.params.seed, k));
            let ints = |v: Vec<f64>| -> Result<Vec<u32>, DetectorError> {
                v.into_iter()
                    .map(|x| {
                        if x >= 0.0 && x <= u32::MAX as f64 && x.fract() == 0.0 {
                            Ok(x as u32)
                        } else {
                            Err(corrupt("a bad node index"))
                        }
                    })
                    .collect()
            };
            let root = r.count(u32::MAX as usize)? as u32;
            t.root = root;
            t.parent = ints(r.numbers()?)?;
            t.left = ints(r.numbers()?)?;
            t.right = ints(r.numbers()?)?;
            t.count = ints(r.numbers()?)?;
            t.dim = ints(r.numbers()?)?;
            t.cut = r.numbers()?;
            t.bbox = r.numbers()?;
            t.free = ints(r.numbers()?)?;
            let seqs = r.numbers()?;
            let leaves = ints(r.numbers()?)?;
            let nodes = t.parent.len();
            let same = [
                t.left.len(),
                t.right.len(),
                t.count.len(),
                t.dim.len(),
                t.cut.len(),
            ];
            let in_range = |v: &[u32]| v.iter().all(|&x| x == NONE || (x as usize) < nodes);
            if same.iter().any(|&l| l != nodes)
                || t.bbox.len() != nodes * 2 * d
                || seqs.len() != leaves.len()
                || (root != NONE && root as usize >= nodes)
                || !in_range(&t.parent)
                || !in_range(&t.left)
                || !in_range(&t.right)
                || !in_range(&t.free)
                || !in_range(&leaves)
                || t.dim.iter().any(|&j| j as usize >= d)
            {
                return Err(corrupt("a tree that does not hold together"));
            }
            t.leaves = seqs.into_iter().map(|s| s as u64).zip(leaves).collect();
            trees.push(t);
        }
        r.end()?;
        self.trees = trees;
        self.recent = recent;
        self.seq = seq;
        Ok(())
    }
}

fn tree_key(seed: usize, tree: usize) -> u64 {
    Draws::new(seed as u64, tree as u64).uniform().to_bits()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{noise, params, run_rows, run_stream};
    use adr_sdk::{ParamValue, Verdict};

    /// Counts and boxes agree with the points below each node.
    fn check(t: &Tree) {
        fn walk(t: &Tree, n: u32) -> (u32, Vec<f64>, Vec<f64>) {
            if t.is_leaf(n) {
                return (t.count[n as usize], t.lo(n).to_vec(), t.hi(n).to_vec());
            }
            let (a, alo, ahi) = walk(t, t.left[n as usize]);
            let (b, blo, bhi) = walk(t, t.right[n as usize]);
            assert_eq!(t.parent[t.left[n as usize] as usize], n);
            assert_eq!(t.count[n as usize], a + b);
            let lo: Vec<f64> = alo.iter().zip(&blo).map(|(x, y)| x.min(*y)).collect();
            let hi: Vec<f64> = ahi.iter().zip(&bhi).map(|(x, y)| x.max(*y)).collect();
            assert_eq!(t.lo(n), &lo[..]);
            assert_eq!(t.hi(n), &hi[..]);
            (a + b, lo, hi)
        }
        if t.root != NONE {
            let (n, _, _) = walk(t, t.root);
            assert_eq!(n as usize, t.leaves.len());
        }
    }

    #[test]
    fn trees_hold_together_through_inserts_forgets_and_duplicates() {
        let mut t = Tree::new(2, 1);
        let values = noise(2000, 3);
        for (k, pair) in values.chunks(2).enumerate() {
            // every third point repeats an earlier one exactly
            let p = if k % 3 == 2 {
                [values[0], values[1]]
            } else {
                [pair[0], pair[1]]
            };
            t.step(&p, k as u64, 64);
            if k % 50 == 0 {
                check(&t);
            }
        }
        check(&t);
        assert_eq!(t.leaves.len(), 65);
        // the arena is reused: nodes ≈ 2 · points, not growing with the stream
        assert!(t.parent.len() < 200, "{} nodes", t.parent.len());
    }

    #[test]
    fn codisp_is_rrcf_s_on_a_small_tree() {
        // Two points: the newest's sibling holds 1, itself 1.
        let mut t = Tree::new(1, 0);
        t.step(&[0.0], 0, 10);
        assert_eq!(t.codisp_newest(), 0.0);
        assert_eq!(t.step(&[1.0], 1, 10), 1.0);
        // a far point among a tight cluster is cut off at the root: CoDisp = cluster size
        let mut t = Tree::new(1, 0);
        for k in 0..20 {
            t.step(&[k as f64 * 1e-3], k, 100);
        }
        assert_eq!(t.step(&[100.0], 20, 100), 20.0);
    }

    #[test]
    fn an_outlier_stands_out_and_batches_equal_events() {
        let mut values = noise(2000, 9);
        values[1500] = 12.0;
        let p: RandomCutForestParams = params(&[("shingle", ParamValue::Int(2))]);
        let scores = run_stream::<RandomCutForest>(p, &values);
        assert_eq!(scores[0].verdict, Verdict::Undetermined);
        let typical = scores[300..1400].iter().map(|s| s.raw).sum::<f64>() / 1100.0;
        assert!(
            scores[1500].raw > 5.0 * typical,
            "{} vs {typical}",
            scores[1500].raw
        );
        assert_eq!(scores[1500].verdict, Verdict::Anomaly);
        let rows: Vec<f64> = values.iter().flat_map(|&v| [v, -v]).collect();
        run_rows::<RandomCutForest>(params(&[]), 2, &rows);
    }

    #[test]
    fn a_restored_state_continues_exactly() {
        let values = noise(1500, 2);
        let p: RandomCutForestParams = params(&[("trees", ParamValue::Int(5))]);
        let whole = run_stream::<RandomCutForest>(p.clone(), &values);
        let split = crate::testing::run_with_restore::<RandomCutForest>(p, &values, 700);
        assert_eq!(format!("{whole:?}"), format!("{split:?}"));
    }
}
