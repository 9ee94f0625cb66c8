//! Exact nearest-neighbour search over the training rows, shared by the neighbour methods:
//! a k-d tree over bounding boxes, as scikit-learn's `KDTree` builds it (split on the
//! widest input at the median, leaves of at most 32 rows), with the rows stored in tree
//! order so that a leaf is one contiguous block.
//!
//! Distances are Euclidean, Manhattan or Chebyshev (Minkowski p = 2, 1, ∞: `metric`). The
//! k nearest are exact, ties broken by the lower row index, so the answer does not
//! depend on the tree's shape. The `kdtree` crate answered the same queries about 30 times
//! slower here (a heap allocation per visited node, no box bounds), and the faster k-d
//! tree crates fix the number of dimensions at compile time, while a rule picks its inputs
//! at run time (decision 0010).

use adr_sdk::{DetectorError, ErrorKind};

use crate::state::{Reader, Writer};

/// Rows in a leaf, at most.
const LEAF: usize = 32;

adr_sdk::param_choice! {
    /// The distance between rows (Minkowski p = 2, 1, ∞).
    pub enum Metric {
        /// `√Σ (aᵢ − bᵢ)²`.
        Euclidean = "euclidean",
        /// `Σ |aᵢ − bᵢ|`.
        Manhattan = "manhattan",
        /// `max |aᵢ − bᵢ|`.
        Chebyshev = "chebyshev",
    }
}

/// A metric's reduction of per-input gaps to the value the search compares (the squared
/// distance for Euclidean), as a type so that each metric's search is compiled on its own.
trait Reduce {
    fn reduce(gaps: impl Iterator<Item = f64>) -> f64;
}

struct Squares;
struct Sums;
struct Maxima;

impl Reduce for Squares {
    #[inline(always)]
    fn reduce(gaps: impl Iterator<Item = f64>) -> f64 {
        gaps.map(|g| g * g).sum()
    }
}

impl Reduce for Sums {
    #[inline(always)]
    fn reduce(gaps: impl Iterator<Item = f64>) -> f64 {
        gaps.map(f64::abs).sum()
    }
}

impl Reduce for Maxima {
    #[inline(always)]
    fn reduce(gaps: impl Iterator<Item = f64>) -> f64 {
        gaps.map(f64::abs).fold(0.0, f64::max)
    }
}

impl Metric {
    /// The distance in the form the search compares (squared for Euclidean), from the
    /// per-input gaps.
    #[cfg(test)]
    fn reduced(self, gaps: impl Iterator<Item = f64>) -> f64 {
        match self {
            Metric::Euclidean => Squares::reduce(gaps),
            Metric::Manhattan => Sums::reduce(gaps),
            Metric::Chebyshev => Maxima::reduce(gaps),
        }
    }

    /// The distance from its reduced form.
    fn distance(self, reduced: f64) -> f64 {
        match self {
            Metric::Euclidean => reduced.sqrt(),
            _ => reduced,
        }
    }
}

/// A node of the tree: the rows `start..end` of the tree order, and their bounding box.
#[derive(Debug, Clone)]
struct Node {
    start: usize,
    end: usize,
    /// Children's indices, or `NO_CHILD` for a leaf.
    children: [usize; 2],
}

const NO_CHILD: usize = usize::MAX;

/// The training rows, indexed for neighbour queries.
pub struct Neighbours {
    /// The rows as given (the state, and row `i`'s own values).
    rows: Vec<f64>,
    d: usize,
    metric: Metric,
    /// The rows in tree order, and each one's index among the rows given.
    ordered: Vec<f64>,
    index: Vec<usize>,
    nodes: Vec<Node>,
    /// Per node, its box: `d` lower then `d` upper bounds.
    boxes: Vec<f64>,
}

impl std::fmt::Debug for Neighbours {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Neighbours")
            .field("rows", &self.len())
            .field("d", &self.d)
            .finish_non_exhaustive()
    }
}

/// Refuses `train ≤ k` when a detector is built, before any event.
///
/// # Errors
///
/// [`InvalidParams`](ErrorKind::InvalidParams) naming both.
pub fn check_train(train: usize, k: usize) -> Result<(), DetectorError> {
    if train <= k {
        return Err(DetectorError::invalid_params(format!(
            "train must be more than k = {k}, got {train}"
        )));
    }
    Ok(())
}

/// The k best `(squared distance, row index)` pairs seen so far, best first.
struct Best {
    k: usize,
    found: Vec<(f64, usize)>,
}

impl Best {
    fn new(k: usize) -> Self {
        Best {
            k,
            found: Vec::with_capacity(k + 1),
        }
    }

    /// The squared distance a row must beat (or tie with a lower index) to count.
    fn bound(&self) -> f64 {
        if self.found.len() < self.k {
            f64::INFINITY
        } else {
            self.found[self.k - 1].0
        }
    }

    fn offer(&mut self, distance: f64, index: usize) {
        if self.found.len() == self.k && (distance, index) >= self.found[self.k - 1] {
            return;
        }
        let at = self.found.partition_point(|&p| p < (distance, index));
        self.found.insert(at, (distance, index));
        self.found.truncate(self.k);
    }
}

impl Neighbours {
    /// Indexes `rows` (row-major, `d` a row), which must be more than `k`.
    ///
    /// # Errors
    ///
    /// Too few rows, or a non-finite value.
    pub fn new(rows: Vec<f64>, d: usize, k: usize, metric: Metric) -> Result<Self, DetectorError> {
        let n = rows.len() / d;
        if n <= k {
            return Err(DetectorError::new(
                ErrorKind::InvalidParams,
                format!("k = {k} needs more than {k} training rows, got {n}"),
            ));
        }
        if let Some(i) = rows.iter().position(|x| !x.is_finite()) {
            return Err(DetectorError::new(
                ErrorKind::InvalidInput,
                format!("training row {} has a non-finite value", i / d),
            ));
        }
        let mut tree = Neighbours {
            rows,
            d,
            metric,
            ordered: Vec::new(),
            index: (0..n).collect(),
            nodes: Vec::new(),
            boxes: Vec::new(),
        };
        tree.build(0, n);
        tree.ordered = tree
            .index
            .iter()
            .flat_map(|&i| tree.rows[i * d..(i + 1) * d].iter().copied())
            .collect();
        Ok(tree)
    }

    fn row(&self, i: usize) -> &[f64] {
        &self.rows[i * self.d..(i + 1) * self.d]
    }

    /// Builds the node of tree-order rows `start..end`, returning its index.
    fn build(&mut self, start: usize, end: usize) -> usize {
        let d = self.d;
        let at = self.nodes.len();
        let (mut lower, mut upper) = (vec![f64::INFINITY; d], vec![f64::NEG_INFINITY; d]);
        for &i in &self.index[start..end] {
            for (c, &x) in self.rows[i * d..(i + 1) * d].iter().enumerate() {
                lower[c] = lower[c].min(x);
                upper[c] = upper[c].max(x);
            }
        }
        let widest = (0..d)
            .max_by(|&a, &b| (upper[a] - lower[a]).total_cmp(&(upper[b] - lower[b])))
            .expect("d ≥ 1");
        let flat = upper[widest] <= lower[widest];
        self.boxes.extend(lower);
        self.boxes.extend(upper);
        self.nodes.push(Node {
            start,
            end,
            children: [NO_CHILD; 2],
        });
        if end - start <= LEAF || flat {
            return at;
        }
        let middle = start + (end - start) / 2;
        let rows = &self.rows;
        self.index[start..end].select_nth_unstable_by(middle - start, |&a, &b| {
            rows[a * d + widest].total_cmp(&rows[b * d + widest])
        });
        let left = self.build(start, middle);
        let right = self.build(middle, end);
        self.nodes[at].children = [left, right];
        at
    }

    /// Reduced distance from `row` to node `n`'s box.
    fn box_distance<R: Reduce>(&self, n: usize, row: &[f64]) -> f64 {
        let b = &self.boxes[2 * self.d * n..2 * self.d * (n + 1)];
        let (lower, upper) = b.split_at(self.d);
        R::reduce(
            row.iter()
                .zip(lower.iter().zip(upper))
                .map(|(&x, (&lo, &hi))| (lo - x).max(x - hi).max(0.0)),
        )
    }

    fn search<R: Reduce>(&self, n: usize, row: &[f64], best: &mut Best) {
        let node = &self.nodes[n];
        if node.children[0] == NO_CHILD {
            for (slot, stored) in self.ordered[node.start * self.d..node.end * self.d]
                .chunks_exact(self.d)
                .enumerate()
            {
                let distance = R::reduce(row.iter().zip(stored).map(|(a, b)| a - b));
                if distance <= best.bound() {
                    best.offer(distance, self.index[node.start + slot]);
                }
            }
            return;
        }
        let [a, b] = node.children;
        let (da, db) = (
            self.box_distance::<R>(a, row),
            self.box_distance::<R>(b, row),
        );
        let (near, far, far_distance) = if da <= db { (a, b, db) } else { (b, a, da) };
        self.search::<R>(near, row, best);
        // A tie at the bound can still bring a lower row index.
        if far_distance <= best.bound() {
            self.search::<R>(far, row, best);
        }
    }

    /// The distance it measures.
    pub fn metric(&self) -> Metric {
        self.metric
    }

    /// Rows indexed.
    pub fn len(&self) -> usize {
        self.rows.len() / self.d
    }

    /// Whether no row is indexed (never, once built).
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// `(distance, row index)` of the `n` rows nearest to `row`, nearest first, ties
    /// broken by the lower index.
    pub fn nearest(&self, row: &[f64], n: usize) -> Vec<(f64, usize)> {
        let mut best = Best::new(n.min(self.len()));
        match self.metric {
            Metric::Euclidean => self.search::<Squares>(0, row, &mut best),
            Metric::Manhattan => self.search::<Sums>(0, row, &mut best),
            Metric::Chebyshev => self.search::<Maxima>(0, row, &mut best),
        }
        best.found
            .into_iter()
            .map(|(reduced, i)| (self.metric.distance(reduced), i))
            .collect()
    }

    /// The `k` rows nearest to training row `i` other than itself: `k + 1` found and the
    /// row taken out, or, when more than `k + 1` rows coincide and it is not among them,
    /// the first of its duplicates, as scikit-learn's `kneighbors()` does.
    pub fn nearest_others(&self, i: usize, k: usize) -> Vec<(f64, usize)> {
        let mut found = self.nearest(self.row(i), k + 1);
        let own = found.iter().position(|&(_, j)| j == i).unwrap_or(0);
        found.remove(own);
        found
    }

    /// Writes the metric and the rows.
    pub fn save(&self, out: &mut Writer) {
        out.count(self.metric as usize);
        out.count(self.d);
        out.numbers(&self.rows);
    }

    /// Reads rows written by [`save`](Self::save) and indexes them again.
    ///
    /// # Errors
    ///
    /// A corrupt state, or one with `k` or fewer rows.
    pub fn restore(input: &mut Reader<'_>, k: usize) -> Result<Self, DetectorError> {
        let metric = [Metric::Euclidean, Metric::Manhattan, Metric::Chebyshev][input.count(2)?];
        let d = input.count(1 << 20)?;
        let rows = input.numbers()?;
        let bad = |why: String| DetectorError::new(ErrorKind::IncompatibleState, why);
        if d == 0 || rows.len() % d != 0 {
            return Err(bad(format!(
                "{} values do not make rows of {d}",
                rows.len()
            )));
        }
        Neighbours::new(rows, d, k, metric).map_err(|e| bad(e.message().to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every row's k nearest by brute force: sorted by (distance, index).
    fn brute(rows: &[f64], d: usize, q: &[f64], k: usize, metric: Metric) -> Vec<(f64, usize)> {
        let mut all: Vec<(f64, usize)> = rows
            .chunks_exact(d)
            .enumerate()
            .map(|(i, r)| (metric.reduced(r.iter().zip(q).map(|(a, b)| a - b)), i))
            .collect();
        all.sort_by(|a, b| a.partial_cmp(b).unwrap());
        all.truncate(k);
        all.into_iter()
            .map(|(s, i)| (metric.distance(s), i))
            .collect()
    }

    #[test]
    fn the_tree_finds_what_brute_force_finds_ties_included() {
        // 500 rows on 3 inputs, on a coarse grid so that many distances tie.
        let rows: Vec<f64> = (0..1500).map(|i| ((i * 7919) % 13) as f64).collect();
        let queries = [
            [0.0, 0.0, 0.0],
            [6.5, 3.0, 12.0],
            [20.0, -4.0, 5.0],
            [3.0, 3.0, 3.0],
        ];
        for metric in [Metric::Euclidean, Metric::Manhattan, Metric::Chebyshev] {
            let tree = Neighbours::new(rows.clone(), 3, 10, metric).unwrap();
            for q in queries {
                for k in [1, 7, 40] {
                    let want = brute(&rows, 3, &q, k, metric);
                    assert_eq!(tree.nearest(&q, k), want, "{metric:?} {q:?} k = {k}");
                }
            }
        }
        let tree = Neighbours::new(rows.clone(), 3, 10, Metric::Euclidean).unwrap();
        // A row's nearest others leave the row out.
        let others = tree.nearest_others(17, 5);
        assert!(others.iter().all(|&(_, j)| j != 17));
        assert_eq!(others.len(), 5);
    }

    #[test]
    fn bad_rows_are_refused() {
        let err =
            Neighbours::new(vec![1.0, f64::NAN, 2.0, 3.0], 1, 1, Metric::Euclidean).unwrap_err();
        assert!(err.message().contains("training row 1"), "{err}");
        let err = Neighbours::new(vec![1.0, 2.0], 1, 2, Metric::Euclidean).unwrap_err();
        assert!(err.message().contains("needs more than 2"), "{err}");
    }
}
