//! Results through a channel: an owned copy of each batch's verdicts and alerts, for a
//! service that consumes them on another thread.

use std::sync::mpsc::{Receiver, SyncSender, TrySendError};

use crate::evaluator::Judgement;
use crate::run::{sinks::alert_json, BatchView, Sink};

/// What the engine said about one event.
#[derive(Debug, Clone, PartialEq)]
pub struct EventResult {
    /// Data row (from 1, in push order).
    pub row: u64,
    /// Event time, ns.
    pub time: i64,
    /// The key as alerts print it (`adr_engine::evaluator::keys::key_text`).
    pub key: String,
    /// Each ensemble's judgement, in [`BatchResult::ensembles`] order.
    pub judgements: Vec<Judgement>,
}

/// One evaluated batch.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchResult {
    /// The ensembles' names (the rules in force for this batch).
    pub ensembles: Vec<String>,
    /// Each event, in order.
    pub events: Vec<EventResult>,
    /// Alerts fired, as the documents `adr run` writes.
    pub alerts: Vec<serde_json::Value>,
}

/// A sink that sends each batch's [`BatchResult`] into a bounded channel. When the
/// receiver falls behind and the channel is full, the engine waits (back-pressure) rather
/// than dropping results; when it hangs up, results are counted as undelivered.
#[derive(Debug)]
pub struct ChannelSink {
    sender: SyncSender<BatchResult>,
    undelivered: u64,
}

impl ChannelSink {
    /// A sink and its receiver, holding up to `capacity` batches in flight.
    pub fn new(capacity: usize) -> (Self, Receiver<BatchResult>) {
        let (sender, receiver) = std::sync::mpsc::sync_channel(capacity);
        (
            ChannelSink {
                sender,
                undelivered: 0,
            },
            receiver,
        )
    }
}

impl BatchResult {
    /// An owned copy of what a sink sees of a batch: each event's judgements and the
    /// alerts fired.
    pub fn of(view: &BatchView<'_>) -> BatchResult {
        let chunk = view.chunk;
        BatchResult {
            ensembles: view.plan.ensembles.iter().map(|e| e.name.clone()).collect(),
            events: (0..chunk.len)
                .map(|i| EventResult {
                    row: chunk.first_row + i as u64,
                    time: chunk.timestamps[i],
                    key: view.key_names.name(view.keys[i]).to_owned(),
                    judgements: view.outcome.ensembles.iter().map(|c| c[i]).collect(),
                })
                .collect(),
            alerts: view
                .outcome
                .fired
                .iter()
                .map(|f| {
                    let row = (f.row - chunk.first_row) as usize;
                    alert_json(view.plan, view.outcome, row, f, view.key_names)
                })
                .collect(),
        }
    }
}

impl Sink for ChannelSink {
    fn batch(&mut self, view: &BatchView<'_>) -> std::io::Result<()> {
        let result = BatchResult::of(view);
        match self.sender.try_send(result) {
            Ok(()) => {}
            Err(TrySendError::Full(result)) => {
                if self.sender.send(result).is_err() {
                    self.undelivered += 1;
                }
            }
            Err(TrySendError::Disconnected(_)) => self.undelivered += 1,
        }
        Ok(())
    }

    fn problems(&self) -> Vec<String> {
        if self.undelivered == 0 {
            Vec::new()
        } else {
            vec![format!(
                "{} batches of results were not delivered: the channel's receiver hung up",
                self.undelivered
            )]
        }
    }
}
