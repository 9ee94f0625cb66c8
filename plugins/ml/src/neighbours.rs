//! Exact nearest-neighbour search over the training rows, shared by the neighbour
//! methods: a k-d tree (the `kdtree` crate) with the rows kept for the model's state.

use adr_sdk::{DetectorError, ErrorKind};
use kdtree::distance::squared_euclidean;
use kdtree::KdTree;

use crate::state::{Reader, Writer};

/// The training rows, indexed for neighbour queries.
pub struct Neighbours {
    rows: Vec<f64>,
    d: usize,
    tree: KdTree<f64, usize, Vec<f64>>,
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

impl Neighbours {
    /// Indexes `rows` (row-major, `d` a row), which must be more than `k`.
    ///
    /// # Errors
    ///
    /// Too few rows, or a non-finite value.
    pub fn new(rows: Vec<f64>, d: usize, k: usize) -> Result<Self, DetectorError> {
        let n = rows.len() / d;
        if n <= k {
            return Err(DetectorError::new(
                ErrorKind::InvalidParams,
                format!("k = {k} needs more than {k} training rows, got {n}"),
            ));
        }
        let mut tree = KdTree::with_capacity(d, 16);
        for (i, row) in rows.chunks_exact(d).enumerate() {
            tree.add(row.to_vec(), i).map_err(|e| {
                DetectorError::new(ErrorKind::InvalidInput, format!("training row {i}: {e:?}"))
            })?;
        }
        Ok(Neighbours { rows, d, tree })
    }

    /// Rows indexed.
    pub fn len(&self) -> usize {
        self.rows.len() / self.d
    }

    /// Whether no row is indexed (never, once built).
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// `(Euclidean distance, row index)` of the `n` rows nearest to `row`, nearest first.
    pub fn nearest(&self, row: &[f64], n: usize) -> Vec<(f64, usize)> {
        self.tree
            .nearest(row, n, &squared_euclidean)
            .map(|found| found.into_iter().map(|(d, &i)| (d.sqrt(), i)).collect())
            .unwrap_or_default()
    }

    /// The `k` rows nearest to training row `i` other than itself: `k + 1` found and the
    /// row taken out, or, when more than `k + 1` rows coincide and it is not among them,
    /// the first of its duplicates, as scikit-learn's `kneighbors()` does.
    pub fn nearest_others(&self, i: usize, k: usize) -> Vec<(f64, usize)> {
        let row = &self.rows[i * self.d..(i + 1) * self.d];
        let mut found = self.nearest(row, k + 1);
        let own = found.iter().position(|&(_, j)| j == i).unwrap_or(0);
        found.remove(own);
        found
    }

    /// Writes the rows.
    pub fn save(&self, out: &mut Writer) {
        out.count(self.d);
        out.numbers(&self.rows);
    }

    /// Reads rows written by [`save`](Self::save) and indexes them again.
    ///
    /// # Errors
    ///
    /// A corrupt state, or one with `k` or fewer rows.
    pub fn restore(input: &mut Reader<'_>, k: usize) -> Result<Self, DetectorError> {
        let d = input.count(1 << 20)?;
        let rows = input.numbers()?;
        let bad = |why: String| DetectorError::new(ErrorKind::IncompatibleState, why);
        if d == 0 || rows.len() % d != 0 {
            return Err(bad(format!(
                "{} values do not make rows of {d}",
                rows.len()
            )));
        }
        Neighbours::new(rows, d, k).map_err(|e| bad(e.message().to_owned()))
    }
}
