//! A window of the last N values that grows with the values it holds, never past N.
//!
//! The state a rule can ask for must be bounded, and must cost nothing until the data
//! arrives: a `VecDeque::with_capacity(window)` for `window = 10_000_000` takes 80 MB per
//! key before the first event, and growing past the machine's memory aborts the process
//! (an allocation failure is not a panic, so no `catch_unwind` contains it). [`Bounded`]
//! grows by doubling as values come, stops at its bound (the oldest value leaves as a new
//! one enters), reserves fallibly (an error for the detector, not an abort), and says
//! what it can take at most ([`Bounded::bytes`]) for the detector's
//! [`state_bytes`](crate::Detector::state_bytes). The contract: `docs/state-budget.md`.

use std::collections::VecDeque;

use crate::{DetectorError, ErrorKind};

/// The last values up to a bound, oldest first.
#[derive(Debug, Clone, PartialEq)]
pub struct Bounded<T> {
    items: VecDeque<T>,
    bound: usize,
}

impl<T> Bounded<T> {
    /// An empty window of at most `bound` values (at least 1); nothing is allocated yet.
    pub fn new(bound: usize) -> Self {
        Bounded {
            items: VecDeque::new(),
            bound: bound.max(1),
        }
    }

    /// A window of `values`, oldest first, as a saved state holds them.
    ///
    /// # Errors
    ///
    /// [`IncompatibleState`](ErrorKind::IncompatibleState) if there are more than `bound`.
    pub fn from_values(
        bound: usize,
        values: impl IntoIterator<Item = T>,
    ) -> Result<Self, DetectorError> {
        let mut window = Bounded::new(bound);
        for x in values {
            if window.is_full() {
                return Err(DetectorError::new(
                    ErrorKind::IncompatibleState,
                    format!("state is corrupt: a window of at most {bound} holds more"),
                ));
            }
            window.push(x)?;
        }
        Ok(window)
    }

    /// Adds `x` as the newest value; past the bound the oldest leaves and is returned.
    ///
    /// # Errors
    ///
    /// [`Failed`](ErrorKind::Failed) if memory for the window cannot be had: the detector
    /// fails for this key instead of aborting the engine.
    #[inline]
    pub fn push(&mut self, x: T) -> Result<Option<T>, DetectorError> {
        if self.items.len() == self.bound {
            let old = self.items.pop_front();
            self.items.push_back(x);
            return Ok(old);
        }
        if self.items.len() == self.items.capacity() {
            let want = (self.items.len().max(4) * 2).min(self.bound) - self.items.len();
            self.items.try_reserve_exact(want).map_err(|e| {
                DetectorError::new(
                    ErrorKind::Failed,
                    format!(
                        "a window of {} values cannot grow past {}: {e}",
                        self.bound,
                        self.items.len()
                    ),
                )
            })?;
        }
        self.items.push_back(x);
        Ok(None)
    }

    /// Removes and returns the oldest value.
    pub fn pop_oldest(&mut self) -> Option<T> {
        self.items.pop_front()
    }

    /// Values held.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether no value is held.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Whether the window holds its bound: the next value pushes the oldest out.
    pub fn is_full(&self) -> bool {
        self.items.len() == self.bound
    }

    /// The most values held.
    pub fn bound(&self) -> usize {
        self.bound
    }

    /// The values, oldest first.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &T> + ExactSizeIterator + '_ {
        self.items.iter()
    }

    /// The values as two slices, oldest first (the ring's two parts).
    pub fn as_slices(&self) -> (&[T], &[T]) {
        self.items.as_slices()
    }

    /// The oldest value.
    pub fn oldest(&self) -> Option<&T> {
        self.items.front()
    }

    /// The newest value.
    pub fn newest(&self) -> Option<&T> {
        self.items.back()
    }

    /// Forgets every value (keeping the memory).
    pub fn clear(&mut self) {
        self.items.clear();
    }

    /// The most bytes a window of `bound` values of `T` takes: it doubles as it grows,
    /// and its last step reserves exactly up to the bound.
    pub fn bytes(bound: usize) -> u64 {
        bound.max(4) as u64 * std::mem::size_of::<T>() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oldest_leaves_once_the_bound_is_held() {
        let mut w = Bounded::new(3);
        let pushed: Vec<Option<i32>> = (1..=5).map(|x| w.push(x).unwrap()).collect();
        assert_eq!(pushed, [None, None, None, Some(1), Some(2)]);
        assert_eq!(w.iter().copied().collect::<Vec<_>>(), [3, 4, 5]);
        assert!(w.is_full());
        assert_eq!((w.oldest(), w.newest()), (Some(&3), Some(&5)));
        assert_eq!(w.pop_oldest(), Some(3));
        assert_eq!(w.len(), 2);
    }

    #[test]
    fn a_huge_bound_costs_nothing_until_values_come() {
        let mut w: Bounded<f64> = Bounded::new(10_000_000);
        for i in 0..100 {
            w.push(i as f64).unwrap();
        }
        assert!(w.items.capacity() < 1000, "{}", w.items.capacity());
        assert!(Bounded::<f64>::bytes(10_000_000) >= 80_000_000);
        assert_eq!(Bounded::<f64>::bytes(3), 32);
    }

    #[test]
    fn a_saved_window_past_its_bound_is_refused() {
        assert!(Bounded::from_values(3, [1, 2, 3]).is_ok());
        let err = Bounded::from_values(3, [1, 2, 3, 4]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::IncompatibleState);
    }
}
