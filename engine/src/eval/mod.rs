//! Evaluating detectors on labelled data: the metrics, and the benchmark protocols whose
//! published results adr is compared with.
//!
//! - [`metrics`]: ROC-AUC and average precision as scikit-learn computes them;
//! - [`odds`]: the ODDS outlier-detection sets under PyOD's and ADBench's protocols, scored
//!   through the plugin boundary, written in the layout `odds_eval.py score` reads.

pub mod metrics;
pub mod odds;
