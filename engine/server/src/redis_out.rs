//! Alerts to Redis, when `redis` is configured: each stored alert is published on a
//! channel (for services that listen now) and added to a stream (for those that must not
//! miss one while away), as the JSON document `adr run` writes.
//!
//! Each trained model's current state is also kept in a hash (`redis.models`, field the
//! model's id): written after the store commits it (at training and after `predict`),
//! removed with the model. adr itself serves models from memory and keeps their record in
//! the store; the hash is the cache other services read a model's state from without the
//! database.
//!
//! Redis is a way out, not the record: alerts are in the store before they get here. So
//! the engine never waits on Redis: it hands each batch's alerts to a thread of its own
//! through a bounded queue, and that thread sends them in one pipeline (one round trip
//! per batch). If Redis is down (at start or later), or so slow that the queue fills, the
//! alerts of that time are not published, counted in `redis_dropped_total`, and `/health`
//! says Redis is down; the thread connects again every second, so publishing resumes by
//! itself when Redis is back.

use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use prometheus_client::metrics::counter::Counter;

use crate::config::Redis;

/// Batches of alerts waiting for Redis at most.
const QUEUE: usize = 4096;
/// How long a connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// How long one pipeline may take before Redis counts as down.
const IO_TIMEOUT: Duration = Duration::from_secs(2);
/// Time between two connection attempts while Redis is down.
const RETRY: Duration = Duration::from_secs(1);

/// Redis's state, for `/health`.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct RedisState {
    /// Whether the last attempt got through.
    pub up: bool,
    /// Why the last attempt failed.
    pub error: Option<String>,
}

/// What the publisher counts.
#[derive(Debug, Clone, Default)]
pub struct RedisCounters {
    /// Alerts published.
    pub published: Counter,
    /// Alerts not published: Redis was down or too slow.
    pub dropped: Counter,
    /// Failed connections and pipelines.
    pub errors: Counter,
}

/// What goes to Redis.
#[derive(Debug)]
enum Out {
    /// Alerts' documents.
    Alerts(Vec<String>),
    /// Models' current states (id, state).
    States(Vec<(String, Vec<u8>)>),
    /// A model deleted.
    Deleted(String),
}

/// The handle the engine's sink publishes through.
#[derive(Debug)]
pub struct RedisOut {
    queue: Option<SyncSender<Out>>,
    /// Shared with the publisher: see `Publisher::stale`.
    stale: Arc<Mutex<std::collections::BTreeSet<String>>>,
    /// Whether models' states are cached (`redis.models` names a hash).
    caches_models: bool,
    state: Arc<Mutex<RedisState>>,
    counters: RedisCounters,
    location: String,
    thread: Option<JoinHandle<()>>,
}

impl RedisOut {
    /// Starts the publisher for `config`; it connects on its own thread, so a Redis that
    /// is down does not stop the service from starting.
    ///
    /// # Errors
    ///
    /// The configuration is not a Redis address, or the thread cannot start.
    pub fn start(config: &Redis, counters: RedisCounters) -> Result<RedisOut, String> {
        use redis::IntoConnectionInfo;
        let mut settings = redis::RedisConnectionInfo::default().set_db(i64::from(config.db));
        if !config.password.is_empty() {
            settings = settings.set_password(&config.password);
        }
        let info = redis::ConnectionAddr::Tcp(config.host.clone(), config.port)
            .into_connection_info()
            .map_err(|e| e.to_string())?
            .set_redis_settings(settings);
        let client = redis::Client::open(info).map_err(|e| e.to_string())?;
        let (queue, batches) = sync_channel::<Out>(QUEUE);
        let state = Arc::new(Mutex::new(RedisState::default()));
        let stale = Arc::new(Mutex::new(std::collections::BTreeSet::new()));
        let mut publisher = Publisher {
            stale: Arc::clone(&stale),
            client,
            connection: None,
            channel: config.channel.clone(),
            stream: config.stream.clone(),
            max_len: config.stream_max_len,
            models: config.models.clone(),
            state: Arc::clone(&state),
            counters: counters.clone(),
            next_attempt: Instant::now(),
        };
        publisher.connect();
        let thread = std::thread::Builder::new()
            .name("adr-redis".into())
            .spawn(move || publisher.run(&batches))
            .map_err(|e| format!("cannot start the Redis thread: {e}"))?;
        Ok(RedisOut {
            queue: Some(queue),
            stale,
            caches_models: !config.models.is_empty(),
            state,
            counters,
            location: format!("{}:{}/{}", config.host, config.port, config.db),
            thread: Some(thread),
        })
    }

    /// Hands a batch's alerts (JSON documents) to the publisher; never waits.
    pub fn publish(&self, alerts: Vec<String>) {
        if alerts.is_empty() {
            return;
        }
        let n = alerts.len() as u64;
        let Some(queue) = &self.queue else {
            return;
        };
        match queue.try_send(Out::Alerts(alerts)) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.counters.dropped.inc_by(n);
            }
        }
    }

    /// Hands models' new states (stored already) to the cache; never waits. A state
    /// that cannot be written (Redis down or too slow) is counted as an error, and the
    /// model's field removed at the next write that gets through, so the cache holds a
    /// model's current state or none.
    pub fn cache_states(&self, states: Vec<(String, Vec<u8>)>) {
        if !self.caches_models || states.is_empty() {
            return;
        }
        if let Some(queue) = &self.queue {
            if let Err(
                TrySendError::Full(Out::States(lost))
                | TrySendError::Disconnected(Out::States(lost)),
            ) = queue.try_send(Out::States(states))
            {
                self.counters.errors.inc();
                lock(&self.stale).extend(lost.into_iter().map(|(id, _)| id));
            }
        }
    }

    /// Removes a deleted model from the cache; never waits.
    pub fn forget_model(&self, id: &str) {
        if !self.caches_models {
            return;
        }
        if let Some(queue) = &self.queue {
            if queue.try_send(Out::Deleted(id.to_owned())).is_err() {
                self.counters.errors.inc();
                lock(&self.stale).insert(id.to_owned());
            }
        }
    }

    /// Redis's state now.
    pub fn state(&self) -> RedisState {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// `host:port/db`.
    pub fn location(&self) -> &str {
        &self.location
    }
}

impl Drop for RedisOut {
    /// Sends what is queued, then stops the thread.
    fn drop(&mut self) {
        self.queue.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The publishing thread's side.
struct Publisher {
    client: redis::Client,
    connection: Option<redis::Connection>,
    channel: String,
    stream: String,
    max_len: u64,
    /// The hash of models' states; empty: none.
    models: String,
    /// Models whose state in the hash may be old (a write of theirs was lost): removed
    /// from the hash at the next pipeline that gets through.
    stale: Arc<Mutex<std::collections::BTreeSet<String>>>,
    state: Arc<Mutex<RedisState>>,
    counters: RedisCounters,
    next_attempt: Instant,
}

impl Publisher {
    fn set_state(&self, up: bool, error: Option<String>) {
        *self.state.lock().unwrap_or_else(PoisonError::into_inner) = RedisState { up, error };
    }

    fn connect(&mut self) {
        self.next_attempt = Instant::now() + RETRY;
        let connected = self
            .client
            .get_connection_with_timeout(CONNECT_TIMEOUT)
            .and_then(|c| {
                c.set_read_timeout(Some(IO_TIMEOUT))?;
                c.set_write_timeout(Some(IO_TIMEOUT))?;
                Ok(c)
            });
        match connected {
            Ok(c) => {
                if !self.state().up {
                    tracing::info!("Redis answers: alerts are published again");
                }
                self.connection = Some(c);
                self.set_state(true, None);
            }
            Err(e) => self.failed(&e),
        }
    }

    fn state(&self) -> RedisState {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn failed(&mut self, e: &redis::RedisError) {
        self.counters.errors.inc();
        self.connection = None;
        let was = self.state();
        // Said once when Redis goes away, not on every retry.
        if was.up || was.error.is_none() {
            tracing::warn!(
                "Redis is not reachable ({e}): alerts are stored but not published until it answers"
            );
        }
        self.set_state(false, Some(e.to_string()));
    }

    fn run(&mut self, batches: &Receiver<Out>) {
        loop {
            let first = match batches.recv_timeout(RETRY) {
                Ok(out) => out,
                Err(RecvTimeoutError::Timeout) => {
                    if self.connection.is_none() && Instant::now() >= self.next_attempt {
                        self.connect();
                    }
                    if self.connection.is_some() && !lock(&self.stale).is_empty() {
                        self.send(Vec::new(), Vec::new(), Vec::new());
                    }
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => return,
            };
            // What queued meanwhile goes in the same pipeline.
            let (mut alerts, mut states, mut deleted) = (Vec::new(), Vec::new(), Vec::new());
            let mut take = |out: Out| match out {
                Out::Alerts(a) => alerts.extend(a),
                Out::States(s) => states.extend(s),
                Out::Deleted(id) => deleted.push(id),
            };
            take(first);
            for _ in 0..4096 {
                match batches.try_recv() {
                    Ok(more) => take(more),
                    Err(_) => break,
                }
            }
            self.send(alerts, states, deleted);
        }
    }

    fn send(&mut self, alerts: Vec<String>, states: Vec<(String, Vec<u8>)>, deleted: Vec<String>) {
        let n = alerts.len() as u64;
        if self.connection.is_none() && Instant::now() >= self.next_attempt {
            self.connect();
        }
        let stale: Vec<String> = std::mem::take(&mut *lock(&self.stale))
            .into_iter()
            .collect();
        let lost = |me: &Self| {
            me.counters.dropped.inc_by(n);
            lock(&me.stale).extend(
                stale
                    .iter()
                    .cloned()
                    .chain(states.iter().map(|(id, _)| id.clone()))
                    .chain(deleted.iter().cloned()),
            );
        };
        let Some(connection) = self.connection.as_mut() else {
            lost(self);
            return;
        };
        let mut pipe = redis::pipe();
        for alert in &alerts {
            pipe.cmd("PUBLISH").arg(&self.channel).arg(alert).ignore();
            if !self.stream.is_empty() {
                pipe.cmd("XADD")
                    .arg(&self.stream)
                    .arg("MAXLEN")
                    .arg("~")
                    .arg(self.max_len)
                    .arg("*")
                    .arg("alert")
                    .arg(alert)
                    .ignore();
            }
        }
        if !self.models.is_empty() {
            // A model whose write was lost is removed, and not written from this
            // pipeline (what it carries of it may be older than what was lost): its
            // next write sets it again.
            for id in stale.iter().chain(&deleted) {
                pipe.cmd("HDEL").arg(&self.models).arg(id).ignore();
            }
            for (id, state) in states.iter().filter(|(id, _)| !stale.contains(id)) {
                pipe.cmd("HSET")
                    .arg(&self.models)
                    .arg(id)
                    .arg(state)
                    .ignore();
            }
        }
        if pipe.cmd_iter().next().is_none() {
            return;
        }
        match pipe.query::<()>(connection) {
            Ok(()) => {
                self.counters.published.inc_by(n);
            }
            Err(e) => {
                lost(self);
                self.failed(&e);
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}
