//! Event-time order with an allowed lateness: events are held until the stream's
//! watermark (the latest event time seen, minus the lateness) passes them, then released
//! in time order, so detectors and duration windows see time moving forward even when the
//! feed delivers it shuffled. An event older than the watermark when it arrives is too
//! late to be placed: it is counted, reported and not scored.
//!
//! Memory: the events of the last `lateness` of event time, at most `max_held` (plus the
//! batch being read); past the cap the oldest are released early (the watermark moves up
//! to them), which is counted.

use std::collections::BTreeMap;

use csv::ByteRecord;

use crate::evaluator::{EvalError, Evaluator};
use crate::io::timestamp::format_rfc3339;

use super::Batch;

/// Late events logged one by one before only counting them.
const LOGGED_LATE: u64 = 10;

/// An event waiting for the watermark.
#[derive(Debug, Clone)]
struct Held {
    key: Vec<String>,
    values: Vec<f64>,
    record: Option<ByteRecord>,
}

/// What the reorder stage did, for the run's summary.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct ReorderStats {
    /// The allowed lateness, ns.
    pub lateness_ns: i64,
    /// Events that arrived earlier in time than one before them and were put in place.
    pub reordered: u64,
    /// Events behind the watermark on arrival: counted, not scored.
    pub late: u64,
    /// Events released before the watermark passed them because the buffer was full.
    pub released_early: u64,
    /// The most events held at once.
    pub peak_held: usize,
}

/// The reorder buffer.
#[derive(Debug)]
pub struct Reorder {
    lateness: i64,
    max_held: usize,
    /// Held events by (time, arrival): equal times keep their arrival order.
    held: BTreeMap<(i64, u64), Held>,
    arrivals: u64,
    latest: Option<i64>,
    /// Events at or before this time are released; it never moves back.
    watermark: i64,
    stats: ReorderStats,
}

impl Reorder {
    /// A buffer allowing `lateness_ns` of lateness and holding at most `max_held` events.
    pub fn new(lateness_ns: i64, max_held: usize) -> Reorder {
        Reorder {
            lateness: lateness_ns.max(0),
            max_held: max_held.max(1),
            held: BTreeMap::new(),
            arrivals: 0,
            latest: None,
            watermark: i64::MIN,
            stats: ReorderStats {
                lateness_ns: lateness_ns.max(0),
                ..ReorderStats::default()
            },
        }
    }

    /// The watermark: events before it are too late to place (`i64::MIN` before the
    /// first event).
    pub fn watermark(&self) -> i64 {
        self.watermark
    }

    /// Takes one event; returns `false` (and counts it) when it is too late to place.
    pub fn offer(
        &mut self,
        time: i64,
        key: Vec<String>,
        values: Vec<f64>,
        record: Option<ByteRecord>,
    ) -> bool {
        if time < self.watermark {
            self.stats.late += 1;
            if self.stats.late <= LOGGED_LATE {
                tracing::warn!(
                    "event at {} for key `{}` came after the watermark {} (the latest event time less the allowed lateness): counted, not scored{}",
                    format_rfc3339(time),
                    crate::evaluator::keys::key_text(&key),
                    format_rfc3339(self.watermark),
                    if self.stats.late == LOGGED_LATE {
                        " (further late events are only counted)"
                    } else {
                        ""
                    }
                );
            }
            return false;
        }
        if self.latest.is_some_and(|t| time < t) {
            self.stats.reordered += 1;
        }
        let latest = self.latest.map_or(time, |t| t.max(time));
        self.latest = Some(latest);
        self.watermark = self.watermark.max(latest.saturating_sub(self.lateness));
        self.held.insert(
            (time, self.arrivals),
            Held {
                key,
                values,
                record,
            },
        );
        self.arrivals += 1;
        true
    }

    /// Whether more events are held than allowed: release, then [`force`](Self::force)
    /// if that was not enough.
    pub fn full(&self) -> bool {
        self.held.len() > self.max_held
    }

    /// Moves the watermark up to the oldest held event, so the next release takes it
    /// (and every event of the same time) before its lateness has passed.
    pub fn force(&mut self) {
        if let Some((&(oldest, _), _)) = self.held.first_key_value() {
            self.advance(oldest);
        }
    }

    /// Moves the watermark up to the latest event seen, so the next release takes every
    /// held event (a reload that reads other fields needs them scored first).
    pub fn drain(&mut self) {
        if let Some(latest) = self.latest {
            self.advance(latest);
        }
    }

    /// Raises the watermark to `time`, counting the events it lets go early.
    fn advance(&mut self, time: i64) {
        if time > self.watermark {
            let early = self
                .held
                .range((self.watermark, u64::MAX)..=(time, u64::MAX))
                .count();
            self.stats.released_early += early as u64;
            self.watermark = time;
        }
    }

    /// Moves the events the watermark has passed (every event with `all`) into `batch`,
    /// in time order, giving each its key; returns how many.
    ///
    /// # Errors
    ///
    /// A detector refusing to be built for a new key; the events stay held.
    pub fn release(
        &mut self,
        evaluator: &mut Evaluator,
        batch: &mut Batch,
        all: bool,
    ) -> Result<usize, EvalError> {
        let chunk = &mut batch.chunk;
        chunk.timestamps.clear();
        chunk.records.clear();
        for column in &mut chunk.columns {
            column.clear();
        }
        batch.keys.clear();
        let ready = if all {
            self.held.len()
        } else {
            self.held.range(..=(self.watermark, u64::MAX)).count()
        };
        for (&(time, _), event) in self.held.iter().take(ready) {
            let id = evaluator.key(event.key.iter().map(|p| p.as_bytes()))?;
            batch.keys.push(id);
            chunk.timestamps.push(time);
            chunk.columns.resize_with(event.values.len(), Vec::new);
            for (column, &v) in chunk.columns.iter_mut().zip(&event.values) {
                column.push(v);
            }
            if let Some(record) = &event.record {
                chunk.records.push(record.clone());
            }
        }
        for _ in 0..ready {
            self.held.pop_first();
        }
        // what waits for the watermark (a batch being read is in memory anyway)
        self.stats.peak_held = self.stats.peak_held.max(self.held.len());
        chunk.len = ready;
        Ok(ready)
    }

    /// Events held now.
    pub fn held(&self) -> usize {
        self.held.len()
    }

    /// What it did so far.
    pub fn stats(&self) -> ReorderStats {
        self.stats
    }
}
