//! The reload thread: it turns triggers (file events, requests) into prepared plans for
//! the event path, and frees what swaps retire.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::evaluator::Prepared;
use crate::reload::watch::Watcher;
use crate::reload::{Attempt, ReloadStatus, Reloader};

pub(super) enum Trigger {
    /// A watched file changed.
    Changed,
    /// Someone asked.
    Requested,
    /// State a swap replaced, to drop off the event path.
    Retire(Box<crate::evaluator::Retired>),
    /// The engine is stopping.
    Stop,
}

/// What the reload thread and the event path share.
pub(super) struct Shared {
    pub(super) pending: Mutex<Option<Box<Prepared>>>,
    pub(super) ready: AtomicBool,
    pub(super) status: Mutex<ReloadStatus>,
    pub(super) reloader: Mutex<Reloader>,
}

/// A poisoned lock means a reload panicked half-way; what it guards is still whole (each
/// value is replaced in one assignment), so go on with it.
pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    /// One attempt; a panic in it is a failed attempt, never a dead engine.
    pub(super) fn attempt(&self, force: bool) -> Attempt {
        let mut reloader = lock(&self.reloader);
        match catch_unwind(AssertUnwindSafe(|| reloader.attempt(force))) {
            Ok(attempt) => attempt,
            Err(panic) => Attempt::Failed(format!(
                "the reload panicked: {}",
                crate::run::panic_message(&panic)
            )),
        }
    }

    pub(super) fn fail(&self, why: String) {
        tracing::warn!("reload refused, the running rules stay: {why}");
        lock(&self.status).failed(why);
    }
}

pub(super) fn reload_worker(shared: &Shared, rx: &Receiver<Trigger>, mut watcher: Option<Watcher>) {
    while let Ok(first) = rx.recv() {
        let (mut attempt, mut force, mut stop) = (false, false, false);
        // Everything that arrived meanwhile is one reload.
        for trigger in std::iter::once(first).chain(rx.try_iter()) {
            match trigger {
                Trigger::Changed => attempt = true,
                Trigger::Requested => (attempt, force) = (true, true),
                Trigger::Retire(retired) => drop(retired),
                Trigger::Stop => stop = true,
            }
        }
        if stop {
            return;
        }
        if !attempt {
            continue;
        }
        match shared.attempt(force) {
            Attempt::Unchanged => tracing::debug!("rule files touched, nothing changed"),
            Attempt::Failed(why) => shared.fail(why),
            Attempt::Ready(prepared, warnings) => {
                if !warnings.is_empty() {
                    tracing::warn!("{warnings}");
                }
                *lock(&shared.pending) = Some(prepared);
                shared.ready.store(true, Ordering::Release);
            }
        }
        if let Some(w) = watcher.as_mut() {
            let (files, dirs) = lock(&shared.reloader).watched();
            if let Err(e) = w.update(&files, &dirs) {
                tracing::warn!("{e}");
            }
        }
    }
}

/// A handle to a running engine for other threads: its reload status, and reloads on
/// demand.
#[derive(Clone)]
pub struct StatusHandle {
    pub(super) shared: Arc<Shared>,
    pub(super) trigger: Sender<Trigger>,
}

impl std::fmt::Debug for StatusHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StatusHandle").finish_non_exhaustive()
    }
}

impl StatusHandle {
    /// The reload history.
    pub fn reload_status(&self) -> ReloadStatus {
        lock(&self.shared.status).clone()
    }

    /// Asks for a reload even if no file changed (what SIGHUP does); it is prepared in
    /// the background and applied at the next batch.
    pub fn request_reload(&self) {
        let _ = self.trigger.send(Trigger::Requested);
    }
}
