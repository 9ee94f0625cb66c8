//! Models' new states, stored in groups.
//!
//! `predict` stores a model's new state before it answers. Written one by one, each
//! answer waited for a transaction of its own, and concurrent calls to one model queued
//! behind each other's writes. Here a thread of its own takes every state waiting when it
//! is free, keeps the latest of each model, and writes them in one transaction; each call
//! is answered when the transaction holding its state (or a later one of its model)
//! commits. With Redis configured, the states committed go on to its model cache.

use std::collections::HashMap;
use std::sync::mpsc::{channel, Sender};
use std::sync::{Arc, Mutex, PoisonError};

use crate::redis_out::RedisOut;
use crate::store::Store;

/// Whether a state was stored, or why not.
pub type Written = Result<(), String>;

struct Write {
    id: String,
    state: Vec<u8>,
    done: tokio::sync::oneshot::Sender<Written>,
}

/// The writer thread's queue.
#[derive(Debug)]
pub struct StateWrites {
    queue: Mutex<Sender<Write>>,
}

impl StateWrites {
    /// Starts the writer, storing into `store`; it ends when this is dropped.
    ///
    /// # Errors
    ///
    /// The thread cannot be started.
    pub fn start(store: Arc<Store>, cache: Option<Arc<RedisOut>>) -> std::io::Result<StateWrites> {
        let (queue, writes) = channel::<Write>();
        std::thread::Builder::new()
            .name("adr-model-states".into())
            .spawn(move || {
                while let Ok(first) = writes.recv() {
                    let mut group = vec![first];
                    group.extend(writes.try_iter());
                    // The queue holds each model's states in the order they were made:
                    // the last one is its state now.
                    let mut latest: HashMap<&str, &[u8]> = HashMap::new();
                    for w in &group {
                        latest.insert(&w.id, &w.state);
                    }
                    let states: Vec<(&str, &[u8])> = latest.into_iter().collect();
                    let written = store
                        .update_model_states(&states)
                        .map_err(|e| e.to_string());
                    if let (Some(cache), Ok(())) = (&cache, &written) {
                        cache.cache_states(
                            states
                                .iter()
                                .map(|(id, state)| ((*id).to_owned(), state.to_vec()))
                                .collect(),
                        );
                    }
                    for w in group {
                        let _ = w.done.send(written.clone());
                    }
                }
            })?;
        Ok(StateWrites {
            queue: Mutex::new(queue),
        })
    }

    /// Queues model `id`'s new `state`; the answer says when it is stored. Call it while
    /// the model cannot change, so that its states queue in the order they were made.
    pub fn write(&self, id: &str, state: Vec<u8>) -> tokio::sync::oneshot::Receiver<Written> {
        let (done, answer) = tokio::sync::oneshot::channel();
        let write = Write {
            id: id.to_owned(),
            state,
            done,
        };
        if let Err(lost) = self
            .queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .send(write)
        {
            let _ = lost
                .0
                .done
                .send(Err("the model store's writer has stopped".into()));
        }
        answer
    }
}
