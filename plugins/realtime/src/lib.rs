//! adr's realtime detectors: each judges an event against what it has learnt so far, then
//! learns it, in constant (or logarithmic) memory per key.
//!
//! | rule name | method | alarm |
//! |---|---|---|
//! | `ewma` | EWMA control chart with an exponentially weighted variance | \|z\| ≥ `threshold` |
//! | `cusum` | Page's two-sided tabular CUSUM, restarting after each alarm | a sum ≥ `h` σ |
//! | `page_hinkley` | Page-Hinkley test (River's form) | statistic ≥ `threshold` |
//! | `adwin` | ADWIN2 adaptive window (Bifet & Gavaldà 2007) | a cut with \|Δμ\| ≥ ε |
//! | `bocpd` | Bayesian online change points (Adams & MacKay 2007), Normal-Gamma | the change is the MAP run |
//! | `spot` | SPOT / DSPOT extreme-value threshold (Siffer et al. 2017) | P(X > x) ≤ `q` |
//!
//! Scoring a batch is the same loop as a stream of events, so chunked, per-event and
//! whole-batch scoring agree exactly, and every detector saves and restores its state (a
//! rule reload keeps it warm). NaN and ±inf inputs are undetermined and never learnt; time
//! gaps are not weighted (memories count points). State is per key: the engine keeps one
//! detector per key.

mod adwin;
mod bocpd;
mod cusum;
mod ewma;
mod gpd;
mod online;
mod page_hinkley;
mod spot;

#[cfg(test)]
mod testing;

pub use adwin::{Adwin, AdwinParams};
pub use bocpd::{Bocpd, BocpdParams};
pub use cusum::{Cusum, CusumParams};
pub use ewma::{Ewma, EwmaParams};
pub use online::Side;
pub use page_hinkley::{PageHinkley, PageHinkleyParams};
pub use spot::{Spot, SpotParams};

adr_sdk::export_detectors!(
    family = "realtime",
    detectors = [Ewma, Cusum, PageHinkley, Adwin, Bocpd, Spot],
);
