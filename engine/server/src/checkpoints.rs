//! Checkpoints of the engine's state: taken on the engine thread (the state is its own),
//! written into the store by a thread of their own, so that the engine goes on taking
//! events while hundreds of megabytes are written. One checkpoint is written at a time:
//! when the period comes round while the last one is still being written, none is taken
//! (the next period's will be), so at most one checkpoint is in memory besides the state.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Instant;

use adr_engine::embed::Engine;

use crate::metrics::Metrics;
use crate::store::Store;

/// What checkpoints did, for `/health`.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct CheckpointStatus {
    /// When the checkpoint restored at start was taken.
    pub restored_from: Option<String>,
    /// What restoring it did.
    pub restored: Option<adr_engine::evaluator::Restored>,
    /// Why the checkpoint found at start was not restored (the engine started cold).
    pub restore_error: Option<String>,
    /// Checkpoints taken since the start.
    pub taken: u64,
    /// When the last one was taken (RFC 3339).
    pub last: Option<String>,
    /// Its size, bytes.
    pub last_bytes: usize,
    /// Why the last attempt failed, if it did.
    pub last_error: Option<String>,
    /// Periods skipped because the checkpoint before was still being written.
    pub skipped: u64,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Restores the store's checkpoint into the fresh `engine`, if there is one.
pub fn restore(engine: &mut Engine, store: &Store, status: &Mutex<CheckpointStatus>) {
    let found = match store.checkpoint() {
        Ok(found) => found,
        Err(e) => {
            tracing::warn!("cannot read the engine's checkpoint ({e}): starting cold");
            lock(status).restore_error = Some(e.to_string());
            return;
        }
    };
    let Some((bytes, created)) = found else {
        return;
    };
    match engine.restore(&bytes) {
        Ok(restored) => {
            tracing::info!(
                keys = restored.keys,
                cold_detectors = restored.cold_detectors,
                "restored the engine's state from the checkpoint of {created}"
            );
            let mut s = lock(status);
            s.restored = Some(restored);
            s.restored_from = Some(created);
        }
        Err(e) => {
            tracing::warn!("the checkpoint of {created} is not restored: {e}");
            lock(status).restore_error = Some(e.to_string());
        }
    }
}

/// A checkpoint taken, on its way to the store.
struct Taken {
    bytes: Vec<u8>,
    started: Instant,
}

/// The thread that writes checkpoints into the store.
#[derive(Debug)]
pub struct Writer {
    queue: SyncSender<Taken>,
    /// Whether a checkpoint is being written.
    busy: Arc<AtomicBool>,
    status: Arc<Mutex<CheckpointStatus>>,
    thread: JoinHandle<()>,
}

impl Writer {
    /// Starts the writer; what it does is said in `status` and `metrics`.
    ///
    /// # Panics
    ///
    /// The thread cannot be started (the system is out of threads at the service's
    /// start).
    pub fn start(
        store: Arc<Store>,
        status: Arc<Mutex<CheckpointStatus>>,
        metrics: Arc<Metrics>,
    ) -> Writer {
        // No room: a checkpoint is handed over only to a writer that is free.
        let (queue, taken) = sync_channel::<Taken>(0);
        let busy = Arc::new(AtomicBool::new(false));
        let thread_busy = Arc::clone(&busy);
        let thread_status = Arc::clone(&status);
        let thread = std::thread::Builder::new()
            .name("adr-checkpoints".into())
            .spawn(move || {
                for Taken { bytes, started } in taken {
                    let saved = store.save_checkpoint(&bytes);
                    let mut s = lock(&thread_status);
                    match saved {
                        Ok(()) => {
                            s.taken += 1;
                            s.last = Some(jiff::Timestamp::now().to_string());
                            s.last_bytes = bytes.len();
                            s.last_error = None;
                            metrics
                                .checkpoint_time
                                .observe(started.elapsed().as_secs_f64());
                        }
                        Err(e) => {
                            metrics.store_errors.inc();
                            tracing::warn!("checkpoint not saved: {e}");
                            s.last_error = Some(e.to_string());
                        }
                    }
                    drop(s);
                    thread_busy.store(false, Ordering::Release);
                }
            })
            .expect("the checkpoint writer's thread starts");
        Writer {
            queue,
            busy,
            status,
            thread,
        }
    }

    /// A period's checkpoint: taken and handed to the writer, unless the last one is
    /// still being written.
    pub fn periodic(&self, engine: &Engine) {
        if self.busy.load(Ordering::Acquire) {
            lock(&self.status).skipped += 1;
            tracing::debug!("checkpoint skipped: the last one is still being written");
            return;
        }
        self.hand_over(engine);
    }

    fn hand_over(&self, engine: &Engine) {
        let started = Instant::now();
        let bytes = engine.checkpoint();
        self.busy.store(true, Ordering::Release);
        // The writer is free (or finishing the last one, at a stop): it takes it.
        if self.queue.send(Taken { bytes, started }).is_err() {
            self.busy.store(false, Ordering::Release);
            lock(&self.status).last_error = Some("the checkpoint writer has stopped".into());
        }
    }

    /// The checkpoint of a clean stop: taken after the one being written, and stored
    /// when this returns.
    pub fn last(self, engine: &Engine) {
        self.hand_over(engine);
        drop(self.queue);
        let _ = self.thread.join();
    }
}
