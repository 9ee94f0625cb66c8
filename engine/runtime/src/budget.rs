//! The memory a rule set's state takes for each key, and the budget it must fit.
//!
//! State is kept per key, and keys keep arriving: a rule set that is cheap for one symbol
//! can exhaust memory over ten thousand. Each detector reports the most its state for one
//! key can take with its parameters ([`adr_sdk::Detector::state_bytes`]); features add
//! their windows. The sum is the per-key estimate that `adr check` and `adr explain`
//! show. With a budget (`--max-state`, [`crate::embed::EngineBuilder::max_state`]) a rule
//! set whose one key does not fit is refused, at check, at start and at reload, before
//! anything runs; one that fits holds at most `budget / per-key` keys, the least recently
//! seen forgotten first (counted as evictions). See `docs/state-budget.md`.

use std::fmt;

use crate::evaluator::{create, create_threshold, EvalError};
use crate::plugins::Registry;
use crate::rules::plan::Plan;

/// The estimate of one key's state.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct StateEstimate {
    /// Per detector (with its threshold's detector): its name and estimate, `None` where
    /// the detector cannot know (a window of event time).
    pub detectors: Vec<(String, Option<u64>)>,
    /// The features' windows; `None` where a window of event time makes it unknown.
    pub features: Option<u64>,
    /// Everything known, added up, with an eighth more for the allocator and the engine's
    /// own per-key bookkeeping.
    pub per_key: u64,
}

/// The engine's own bookkeeping per key and detector (scores, votes, alert state), and
/// the detector's handle.
const PER_KEY_FIXED: u64 = 1024;

/// What `bytes` of a detector's own estimate take in memory: an eighth more for the
/// allocator (chunk headers, blocks left behind as vectors grew), measured with
/// `state_size` (`docs/state-budget.md`).
pub fn with_allocator(bytes: u64) -> u64 {
    bytes.saturating_add(bytes / 8)
}

impl StateEstimate {
    /// What is not known: the names of detectors (and `features`) without an estimate.
    pub fn unknown(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .detectors
            .iter()
            .filter(|(_, b)| b.is_none())
            .map(|(n, _)| n.clone())
            .collect();
        if self.features.is_none() {
            names.push("features".into());
        }
        names
    }

    /// How many keys fit in `budget` bytes (at least the one that must).
    ///
    /// # Errors
    ///
    /// [`BudgetError`] when one key's state does not fit.
    pub fn keys_within(&self, budget: u64) -> Result<usize, BudgetError> {
        if self.per_key > budget {
            return Err(BudgetError {
                per_key: self.per_key,
                budget,
                largest: self
                    .detectors
                    .iter()
                    .filter_map(|(n, b)| b.map(|b| (n.clone(), b)))
                    .max_by_key(|(_, b)| *b),
            });
        }
        Ok(usize::try_from(budget / self.per_key.max(1)).unwrap_or(usize::MAX))
    }
}

impl fmt::Display for StateEstimate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "about {} per key", Size(self.per_key))?;
        let mut parts: Vec<String> = self
            .detectors
            .iter()
            .map(|(n, b)| match b {
                Some(b) => format!("{n} {}", Size(*b)),
                None => format!("{n} unknown"),
            })
            .collect();
        match self.features {
            Some(0) => {}
            Some(b) => parts.push(format!("features {}", Size(b))),
            None => parts.push("features unknown".into()),
        }
        if !parts.is_empty() {
            write!(f, " ({})", parts.join(", "))?;
        }
        let unknown = self.unknown();
        if !unknown.is_empty() {
            write!(
                f,
                "; windows of event time hold what arrives, not counted: {}",
                unknown.join(", ")
            )?;
        }
        Ok(())
    }
}

/// One key's state does not fit the budget.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("one key's state takes about {}, more than the budget of {}{}", Size(*per_key), Size(*budget), largest.as_ref().map(|(n, b)| format!(" (the largest: `{n}`, {})", Size(*b))).unwrap_or_default())]
pub struct BudgetError {
    /// The per-key estimate.
    pub per_key: u64,
    /// The budget.
    pub budget: u64,
    /// The detector that takes the most.
    pub largest: Option<(String, u64)>,
}

impl StateEstimate {
    /// The estimate for `plan`, given each detector's (with its threshold's).
    pub fn of(plan: &Plan, detectors: Vec<(String, Option<u64>)>) -> StateEstimate {
        let features = plan
            .features
            .iter()
            .try_fold(0u64, |total, f| Some(total + f.node.state_bytes()?));
        let per_key = detectors
            .iter()
            .filter_map(|(_, b)| b.map(with_allocator))
            .fold(0u64, u64::saturating_add)
            .saturating_add(with_allocator(features.unwrap_or(0)))
            .saturating_add(PER_KEY_FIXED * (plan.detectors.len() as u64 + 1));
        StateEstimate {
            detectors,
            features,
            per_key,
        }
    }
}

/// A detector's estimate with its threshold's: unknown if either is.
pub(crate) fn detector_bytes(
    handle: &adr_sdk::host::DetectorHandle,
    threshold: Option<&adr_sdk::host::DetectorHandle>,
) -> Option<u64> {
    let own = handle.state_bytes()?;
    match threshold {
        Some(t) => Some(own + t.state_bytes()?),
        None => Some(own),
    }
}

/// Estimates one key's state for `plan`, creating each detector as a run would.
///
/// # Errors
///
/// [`EvalError`] if a detector cannot be built.
pub fn estimate(plan: &Plan, registry: &Registry) -> Result<StateEstimate, EvalError> {
    let mut detectors = Vec::with_capacity(plan.detectors.len());
    for d in &plan.detectors {
        let (handle, _) = create(registry, d)?;
        let threshold = create_threshold(registry, d)?;
        detectors.push((d.name.clone(), detector_bytes(&handle, threshold.as_ref())));
    }
    Ok(StateEstimate::of(plan, detectors))
}

/// A size as people write it: `64MB`, `1.5GiB`, `500k`, `1048576` (bytes); decimal units
/// are powers of 1000, binary (`KiB`, `MiB`, `GiB`, `TiB`) of 1024.
pub fn parse_size(text: &str) -> Option<u64> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().ok()?;
    let scale: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" => 1e3,
        "m" | "mb" => 1e6,
        "g" | "gb" => 1e9,
        "t" | "tb" => 1e12,
        "kib" => 1024.0,
        "mib" => 1024.0 * 1024.0,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        "tib" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    };
    let bytes = number * scale;
    (bytes.is_finite() && bytes >= 1.0 && bytes < u64::MAX as f64).then_some(bytes as u64)
}

/// Bytes in the largest binary unit that keeps a number ≥ 1: `8.0 KiB`, `1.5 GiB`.
#[derive(Debug, Clone, Copy)]
pub struct Size(pub u64);

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
        if self.0 < 1024 {
            return write!(f, "{} B", self.0);
        }
        let mut value = self.0 as f64 / 1024.0;
        let mut unit = 0;
        while value >= 1024.0 && unit + 1 < UNITS.len() {
            value /= 1024.0;
            unit += 1;
        }
        write!(f, "{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_in_decimal_and_binary_units() {
        for (text, want) in [
            ("1048576", Some(1_048_576)),
            ("64MB", Some(64_000_000)),
            ("64 MiB", Some(64 << 20)),
            ("1.5GiB", Some(3 << 29)),
            ("500k", Some(500_000)),
            ("0", None),
            ("-5MB", None),
            ("5 parsecs", None),
            ("1e400", None),
        ] {
            assert_eq!(parse_size(text), want, "{text}");
        }
    }

    #[test]
    fn sizes_print_in_binary_units() {
        assert_eq!(Size(512).to_string(), "512 B");
        assert_eq!(Size(8 << 10).to_string(), "8.0 KiB");
        assert_eq!(Size(3 << 29).to_string(), "1.5 GiB");
    }

    #[test]
    fn a_budget_bounds_the_keys_and_refuses_a_key_that_does_not_fit() {
        let estimate = StateEstimate {
            detectors: vec![("a".into(), Some(3000)), ("b".into(), None)],
            features: Some(0),
            per_key: 4000,
        };
        assert_eq!(estimate.keys_within(1_000_000), Ok(250));
        assert_eq!(estimate.keys_within(4000), Ok(1));
        let err = estimate.keys_within(1000).unwrap_err();
        assert_eq!(
            err.to_string(),
            "one key's state takes about 3.9 KiB, more than the budget of 1000 B (the largest: `a`, 2.9 KiB)"
        );
        assert_eq!(estimate.unknown(), ["b"]);
        assert!(estimate.to_string().contains("b unknown"), "{estimate}");
    }
}
