//! Scoring detectors and rule files on labelled benchmark data: the metrics, and the
//! benchmark protocols whose published results adr is compared with (`adr eval`).
//!
//! - [`metrics`]: ROC-AUC and average precision as scikit-learn computes them;
//! - [`odds`]: the ODDS outlier-detection sets under PyOD's and ADBench's protocols, scored
//!   through the plugin boundary, written in the layout `odds_eval.py score` reads;
//! - [`series`]: a rule file run over one series in memory, from a cold start;
//! - [`ranges`]: range-based precision and recall (Tatbul et al. 2018);
//! - [`labelled`]: a rule file's judgement of labelled series: point, range and NAB metrics;
//! - [`nab`]: the Numenta Anomaly Benchmark's corpus, scorer and result folders;
//! - [`cpd`]: the Turing Change Point Dataset and its F1 and covering metrics.

pub mod cpd;
pub mod labelled;
pub mod metrics;
pub mod nab;
pub mod odds;
pub mod ranges;
pub mod series;
