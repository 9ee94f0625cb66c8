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

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The writer thread's queue.
#[derive(Debug)]
pub struct StateWrites {
    queue: Mutex<Sender<Write>>,
    /// Held while states are stored and handed to the cache, and while a model is
    /// deleted and removed from it, so that the cache sees both in the store's order.
    order: Arc<Mutex<()>>,
}

impl StateWrites {
    /// Starts the writer, storing into `store`; it ends when this is dropped.
    ///
    /// # Errors
    ///
    /// The thread cannot be started.
    pub fn start(store: Arc<Store>, cache: Option<Arc<RedisOut>>) -> std::io::Result<StateWrites> {
        let (queue, writes) = channel::<Write>();
        let order = Arc::new(Mutex::new(()));
        let cache_order = Arc::clone(&order);
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
                    // Stored and handed to the cache in one step, as a deletion is: the
                    // cache sees them in the order the store did.
                    let order = lock(&cache_order);
                    let written = store.update_model_states(&states);
                    if let (Some(cache), Ok(there)) = (&cache, &written) {
                        cache.cache_states(
                            states
                                .iter()
                                .zip(there)
                                .filter(|(_, &there)| there)
                                .map(|((id, state), _)| ((*id).to_owned(), state.to_vec()))
                                .collect(),
                        );
                    }
                    drop(order);
                    let written = written.map(drop).map_err(|e| e.to_string());
                    for w in group {
                        let _ = w.done.send(written.clone());
                    }
                }
            })?;
        Ok(StateWrites {
            queue: Mutex::new(queue),
            order,
        })
    }

    /// Runs `delete` (a model's deletion from the store and the cache) between two
    /// writes of states.
    pub fn between_writes<T>(&self, delete: impl FnOnce() -> T) -> T {
        let _order = lock(&self.order);
        delete()
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
        if let Err(lost) = lock(&self.queue).send(write) {
            let _ = lost
                .0
                .done
                .send(Err("the model store's writer has stopped".into()));
        }
        answer
    }
}
