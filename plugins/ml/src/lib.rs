//! adr's machine-learning detectors: multivariate models that train inside the engine on
//! the first events of each key, then judge every later event against what they learned.
//!
//! | rule name | method | raw score |
//! |---|---|---|
//! | `ecod` | empirical-CDF outlier detection (Li et al. 2022), as PyOD's `ECOD` | Σ max(U_s, U_l, U_r) of the tail scores −ln F |
//! | `copod` | copula-based outlier detection (Li et al. 2020), as PyOD's `COPOD` | Σ max(U_s, (U_l + U_r)/2) |
//! | `hbos` | histogram-based outlier score (Goldstein & Dengel 2012), as PyOD's `HBOS` | −Σ log₂(density + α) over the inputs |
//! | `knn` | distance to the k nearest training rows (Ramaswamy et al. 2000), as PyOD's `KNN` | k-th, mean or median Euclidean distance |
//! | `isolation_forest` | Isolation Forest (Liu, Ting & Zhou 2008), scikit-learn's algorithm | `2^(−E[h]/c(ψ))` |
//! | `one_class_svm` | one-class SVM (Schölkopf et al. 2001), libsvm's solver as scikit-learn's `OneClassSVM` | ρ − Σ αᵢ K(xᵢ, x) |
//! | `pca` | distance to the principal axes (Shyu et al. 2003), as PyOD's `PCA` | Σ distance to each axis / its variance share |
//! | `lof` | local outlier factor in novelty mode (Breunig et al. 2000), as PyOD's `LOF` | mean density ratio to the k nearest training rows |
//!
//! Every detector here follows one life cycle ([`trained`]): the first `train` events
//! with finite values are its training set (their verdicts are undetermined), then it fits
//! and scores each later event. The engine's `refit every` clause rebuilds it to train
//! again. Inputs are used as given unless `standardise = true`, which scales each with the
//! training rows' mean and population deviation (what PyOD's benchmark does outside the
//! detector).
//!
//! Normalised score: `0.5` exactly at the alarm threshold, the smallest number above the
//! `1 − contamination` quantile of the training rows' raw scores (PyOD's `threshold_`; PyOD
//! labels a point an outlier when its score is above it, and so do these); `0` at the
//! lowest training score; approaching `1` as the raw score grows (`r / (r + t)` measured
//! from the lowest training score).

pub mod ecdf;
pub mod hbos;
pub mod iforest;
pub mod knn;
pub mod lof;
pub mod neighbours;
pub mod ocsvm;
pub mod pca;
pub use adr_sdk::state;
pub mod svm;
pub mod trained;

pub use ecdf::{Copod, Ecod};
pub use hbos::Hbos;
pub use iforest::IsolationForest;
pub use knn::Knn;
pub use lof::Lof;
pub use ocsvm::OneClassSvm;
pub use pca::Pca;

adr_sdk::export_detectors!(
    family = "ml",
    detectors = [
        Copod,
        Ecod,
        Hbos,
        IsolationForest,
        Knn,
        Lof,
        OneClassSvm,
        Pca
    ]
);
