//! adr's statistical detectors: classic univariate outlier statistics and tests.
//!
//! | rule name | method | alarm |
//! |---|---|---|
//! | `zscore` | (x − mean)/sd, or robust (x − median)/(1.4826·MAD) | \|z\| ≥ `threshold` (3) |
//! | `mad` | modified z-score 0.6745·(x − median)/MAD (Iglewicz & Hoaglin 1993) | ≥ `threshold` (3.5) |
//! | `iqr` | distance beyond the quartiles in IQRs | ≥ `k` (1.5) |
//! | `tukey` | Tukey's inner (1.5) and outer (3) fences | past `fence` |
//! | `grubbs` | Grubbs' test, two-sided, iterated | G > G_crit(`alpha`) |
//! | `esd` | generalised ESD (Rosner 1983), up to `max_outliers` | R_i > λ_i(`alpha`) |
//! | `dixon_q` | Dixon's Q, Rorabacher's (1991) critical values, n = 3..30 | Q > Q_crit(`alpha`) |
//!
//! Every detector runs in two modes, chosen by its `window` parameter:
//! - **streaming** (`window = 500` points or `window = 5m` of event time): each point is
//!   judged against the window of points before it (the rolling statistics) or against the
//!   window ending at it (the tests, which need the suspect in the sample); state carries
//!   over between batches and events, so chunked and per-event scoring agree exactly;
//! - **whole batch** (`window = batch`): each batch is one sample, every point judged
//!   against all of it.
//!
//! NaN and ±inf inputs are never judged (undetermined) and never enter a window or a sample.
//! Each detector's docs give its formula and its normalised score.

/// The `Detector` methods that every windowed detector hands to its window: `score` and
/// `update` with the detector's judgement (`|params| closure`), and the state methods.
macro_rules! delegate_to_window {
    ($window:ident, |$p:ident| $judge:expr) => {
        fn score(
            &mut self,
            frame: &adr_sdk::Frame<'_>,
            out: &mut adr_sdk::ScoresMut<'_>,
        ) -> Result<(), adr_sdk::DetectorError> {
            let $p = &self.params;
            self.$window.score(frame, out, $judge)
        }

        fn update(
            &mut self,
            event: &adr_sdk::Event<'_>,
        ) -> Result<adr_sdk::Score, adr_sdk::DetectorError> {
            let $p = &self.params;
            self.$window.update(event, $judge)
        }

        fn needs_whole_series(&self) -> bool {
            self.$window.whole_batch()
        }

        fn state_bytes(&self) -> Option<u64> {
            self.$window.state_bytes()
        }

        fn save(&self) -> Option<Vec<u8>> {
            self.$window.save()
        }

        fn restore(&mut self, state: &[u8]) -> Result<(), adr_sdk::DetectorError> {
            self.$window.restore(state)
        }
    };
}

mod dixon;
mod esd;
mod grubbs;
mod iqr;
mod mad;
mod rolling;
mod sample;
mod tdist;
mod tukey;
mod window;
mod zscore;

#[cfg(test)]
mod testing;

pub use dixon::{DixonQ, DixonQParams};
pub use esd::{Esd, EsdParams};
pub use grubbs::{Grubbs, GrubbsParams};
pub use iqr::{Iqr, IqrParams};
pub use mad::{Mad, MadParams};
pub use rolling::Side;
pub use tukey::{Fence, Tukey, TukeyParams};
pub use zscore::{ZScore, ZScoreParams};

adr_sdk::export_detectors!(
    family = "statistical",
    detectors = [ZScore, Mad, Iqr, Tukey, Grubbs, Esd, DixonQ],
);
