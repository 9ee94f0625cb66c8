//! The engine on a thread of its own. Requests hand it their events through a bounded
//! queue and wait for its answer; it parses them whole, evaluates them in one batch, and
//! stores the alerts they fired before answering, so an acknowledged alert is stored.
//!
//! One thread owns the engine because evaluation is ordered per key and the engine's state
//! is not shared: the async workers parse HTTP and wait, the engine thread computes.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use adr_engine::embed::{BatchResult, Engine, EngineBuilder, Events, StatusHandle};
use adr_engine::io::{Chunk, EventInput, InputFormat};
use adr_engine::plugins::SearchPath;
use adr_engine::reload::ReloadStatus;
use adr_engine::rules::severity::Severity;
use adr_engine::run::notify::{Allowed, Notifier};
use adr_engine::run::sinks::alert_json;
use adr_engine::run::{self, BatchView, RunSummary, Sink};
use adr_sdk::Verdict;

use crate::config::Config;
use crate::metrics::Metrics;
use crate::store::{NewAlert, Store};
use crate::uploads::{Applied, Change, UploadError, Uploads};

/// Jobs waiting for the engine at most; past it a request is told the service is busy.
const QUEUE: usize = 64;

/// Why events were not taken.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IngestError {
    /// The body is not events the rules can read.
    #[error("{0}")]
    Input(String),
    /// More events than one request may carry.
    #[error("more than {limit} events in one request; send them in several")]
    TooMany {
        /// The limit.
        limit: usize,
    },
    /// The engine refused the events whole (a field the rules read is missing, time
    /// going back for a key); nothing was evaluated.
    #[error("{0}")]
    Refused(String),
    /// The events were evaluated but their alerts could not be stored.
    #[error("the events were evaluated, but their alerts could not be stored: {0}")]
    Store(String),
    /// The queue is full.
    #[error("the engine is busy ({QUEUE} requests waiting); try again")]
    Busy,
    /// The engine has stopped.
    #[error("the engine has stopped")]
    Stopped,
}

/// What a request's events did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Ingested {
    /// Events evaluated.
    pub events: usize,
    /// Alerts they fired (stored).
    pub alerts: u64,
    /// Each event's judgements and the alerts' documents, when asked for.
    pub results: Vec<BatchResult>,
}

type Reply<T> = tokio::sync::oneshot::Sender<T>;

enum Job {
    Ingest {
        body: Vec<u8>,
        format: InputFormat,
        results: bool,
        /// The request's span, the parent of the evaluation's.
        span: tracing::Span,
        reply: Reply<Result<Ingested, IngestError>>,
    },
    Plugins {
        reply: Reply<serde_json::Value>,
    },
    Rules {
        change: Change,
        reply: Reply<Result<Applied, UploadError>>,
    },
    Stop {
        reply: Reply<Result<RunSummary, String>>,
    },
}

/// Where the engine's results go.
#[derive(Debug)]
pub struct Outputs {
    /// The store alerts are written to before a request is answered.
    pub store: Arc<Store>,
    /// The metrics.
    pub metrics: Arc<Metrics>,
    /// WebSocket subscribers.
    pub alerts: tokio::sync::broadcast::Sender<Arc<serde_json::Value>>,
    /// Redis, when configured.
    pub redis: Option<Arc<crate::redis_out::RedisOut>>,
}

/// The engine thread's handle.
#[derive(Debug)]
pub struct Runner {
    jobs: SyncSender<Job>,
    status: StatusHandle,
    /// The plugins the engine started with (models are built with them).
    registry: Arc<adr_engine::plugins::Registry>,
    checkpoints: Arc<Mutex<CheckpointStatus>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

/// Why the engine did not start.
#[derive(Debug, thiserror::Error)]
#[error("cannot start the engine: {0}")]
pub struct StartError(pub String);

impl Runner {
    /// Builds the engine on its thread from `config` (rules watched, plugins rescanned),
    /// with results going to `store` and `metrics`.
    ///
    /// # Errors
    ///
    /// Why the engine did not build (plugins, rules with errors), as `adr run` says it.
    pub fn start(
        config: &Config,
        uploads: Uploads,
        outputs: Outputs,
    ) -> Result<Runner, StartError> {
        let Outputs {
            store,
            metrics,
            alerts,
            redis,
        } = outputs;
        let (jobs, queue) = sync_channel(QUEUE);
        let (built, started) = std::sync::mpsc::channel();
        let plugins = config.plugins.clone();
        let allowed = config.notify.allowed();
        let checkpoints = Arc::new(Mutex::new(CheckpointStatus::default()));
        let every = (config.storage.checkpoint_seconds > 0)
            .then(|| Duration::from_secs(u64::from(config.storage.checkpoint_seconds)));
        let thread_checkpoints = Arc::clone(&checkpoints);
        let max_rows = config.limits.max_batch_rows;
        let max_state =
            (config.limits.max_state_bytes > 0).then_some(config.limits.max_state_bytes);
        let eviction = adr_engine::evaluator::Eviction {
            idle: (config.limits.idle_key_seconds > 0).then(|| {
                i64::try_from(config.limits.idle_key_seconds)
                    .unwrap_or(i64::MAX)
                    .saturating_mul(1_000_000_000)
            }),
            max_keys: None,
        };
        let thread = std::thread::Builder::new()
            .name("adr-engine".into())
            .spawn(move || {
                let fired = Arc::new(AtomicU64::new(0));
                let capture = Arc::new(Mutex::new(None));
                let sink = StoreSink {
                    store: Arc::clone(&store),
                    metrics: Arc::clone(&metrics),
                    fired: Arc::clone(&fired),
                    capture: Arc::clone(&capture),
                    alerts,
                    redis,
                };
                let search = SearchPath::from_env(&plugins);
                // Targets the rules may not use fail each delivery (a rule file edited
                // on disk is not checked before it runs); uploads are refused first.
                // Every stored alert is logged with its fields by the store's sink, so a
                // rule's `notify log` adds no second line.
                let notifier = Notifier::new(|_line| {}).restrict(allowed.clone());
                let mut builder = EngineBuilder::new(uploads.roots())
                    .plugins(search.clone())
                    .watch(true)
                    .open_columns(true)
                    .eviction(eviction)
                    .sink(Box::new(sink))
                    .sink(Box::new(notifier));
                if let Some(bytes) = max_state {
                    builder = builder.max_state(bytes);
                }
                let engine = builder.build();
                let engine = engine.map_err(|e| e.to_string()).and_then(|engine| {
                    let refused = allowed.refusals(engine.plan());
                    if refused.is_empty() {
                        Ok(engine)
                    } else {
                        Err(format!(
                            "the rules notify targets this service may not deliver to (see `notify` in the configuration):\n  {}",
                            refused.join("\n  ")
                        ))
                    }
                });
                match engine {
                    Ok(mut engine) => {
                        restore(&mut engine, &store, &thread_checkpoints);
                        let _ = built.send(Ok((
                            engine.status_handle(),
                            Arc::clone(engine.evaluator().registry()),
                        )));
                        let rules = RuleFiles {
                            search: &search,
                            uploads: &uploads,
                            allowed: &allowed,
                        };
                        let schedule = Checkpoints {
                            status: &thread_checkpoints,
                            every,
                        };
                        serve_jobs(
                            engine,
                            &rules,
                            &store,
                            &schedule,
                            &queue,
                            &Counters {
                                metrics: &metrics,
                                fired: &fired,
                                capture: &capture,
                            },
                            max_rows,
                        );
                    }
                    Err(e) => {
                        let _ = built.send(Err(e));
                    }
                }
            })
            .map_err(|e| StartError(format!("cannot start its thread: {e}")))?;
        let (status, registry) = started
            .recv()
            .map_err(|_| StartError("its thread ended while starting".into()))?
            .map_err(StartError)?;
        Ok(Runner {
            jobs,
            status,
            registry,
            checkpoints,
            thread: Mutex::new(Some(thread)),
        })
    }

    fn send(&self, job: Job) -> Result<(), IngestError> {
        self.jobs.try_send(job).map_err(|e| match e {
            TrySendError::Full(_) => IngestError::Busy,
            TrySendError::Disconnected(_) => IngestError::Stopped,
        })
    }

    /// Evaluates the events in `body` (CSV with a header, or JSON lines) as one batch; with
    /// `results`, the answer carries each event's judgements.
    ///
    /// # Errors
    ///
    /// An [`IngestError`]; with any but [`IngestError::Store`] nothing was evaluated.
    pub async fn ingest(
        &self,
        body: Vec<u8>,
        format: InputFormat,
        results: bool,
    ) -> Result<Ingested, IngestError> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.send(Job::Ingest {
            body,
            format,
            results,
            span: tracing::Span::current(),
            reply,
        })?;
        answer.await.map_err(|_| IngestError::Stopped)?
    }

    /// The loaded plugins and their detectors.
    ///
    /// # Errors
    ///
    /// The engine is busy or stopped.
    pub async fn plugins(&self) -> Result<serde_json::Value, IngestError> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.send(Job::Plugins { reply })?;
        answer.await.map_err(|_| IngestError::Stopped)
    }

    /// Applies a change to the uploaded rule files (checked, written, swapped in), between
    /// two batches; the version stored.
    ///
    /// # Errors
    ///
    /// The change was refused ([`UploadError`]; nothing changed), or the engine is busy
    /// or stopped.
    pub async fn change_rules(
        &self,
        change: Change,
    ) -> Result<Result<Applied, UploadError>, IngestError> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.send(Job::Rules { change, reply })?;
        answer.await.map_err(|_| IngestError::Stopped)
    }

    /// The plugins the engine started with.
    pub fn registry(&self) -> Arc<adr_engine::plugins::Registry> {
        Arc::clone(&self.registry)
    }

    /// What checkpoints did.
    pub fn checkpoint_status(&self) -> CheckpointStatus {
        lock(&self.checkpoints).clone()
    }

    /// The reload history.
    pub fn reload_status(&self) -> ReloadStatus {
        self.status.reload_status()
    }

    /// Whether the engine thread runs.
    pub fn is_running(&self) -> bool {
        lock(&self.thread)
            .as_ref()
            .is_some_and(|t| !t.is_finished())
    }

    /// Stops the engine after the jobs queued before this one, and summarises its run.
    ///
    /// # Errors
    ///
    /// The engine had stopped, or failed to finish.
    pub async fn stop(&self) -> Result<RunSummary, String> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        // A full queue still takes the stop: wait for room.
        let jobs = self.jobs.clone();
        tokio::task::spawn_blocking(move || jobs.send(Job::Stop { reply }))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|_| "the engine had stopped".to_owned())?;
        let summary = answer
            .await
            .map_err(|_| "the engine had stopped".to_owned())?;
        if let Some(thread) = lock(&self.thread).take() {
            let _ = thread.join();
        }
        summary
    }
}

/// What the engine thread counts and collects while it evaluates.
struct Counters<'a> {
    metrics: &'a Metrics,
    fired: &'a AtomicU64,
    capture: &'a Capture,
}

/// Where the engine's rules and plugins come from, and what they may notify.
struct RuleFiles<'a> {
    search: &'a SearchPath,
    uploads: &'a Uploads,
    allowed: &'a Allowed,
}

fn serve_jobs(
    mut engine: Engine,
    rules: &RuleFiles<'_>,
    store: &Store,
    checkpoints: &Checkpoints<'_>,
    queue: &Receiver<Job>,
    counters: &Counters<'_>,
    max_rows: usize,
) {
    let metrics = counters.metrics;
    let mut next_checkpoint = checkpoints.every.map(|every| Instant::now() + every);
    loop {
        let job = match next_checkpoint {
            Some(at) => match queue.recv_timeout(at.saturating_duration_since(Instant::now())) {
                Ok(job) => Some(job),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => return,
            },
            None => match queue.recv() {
                Ok(job) => Some(job),
                Err(_) => return,
            },
        };
        if let (Some(at), Some(every)) = (next_checkpoint, checkpoints.every) {
            if Instant::now() >= at {
                take_checkpoint(&engine, store, checkpoints.status, metrics);
                next_checkpoint = Some(Instant::now() + every);
            }
        }
        let Some(job) = job else {
            continue;
        };
        match job {
            Job::Ingest {
                body,
                format,
                results,
                span,
                reply,
            } => {
                let evaluation =
                    tracing::info_span!(parent: &span, "evaluate", events = tracing::field::Empty);
                let _entered = evaluation.enter();
                let started = Instant::now();
                let before = counters.fired.load(Ordering::Relaxed);
                if results {
                    *lock(counters.capture) = Some(Vec::new());
                }
                let evaluated = ingest(&mut engine, body, format, max_rows);
                let captured = lock(counters.capture).take().unwrap_or_default();
                let result = evaluated.map(|events| Ingested {
                    events,
                    alerts: counters.fired.load(Ordering::Relaxed) - before,
                    results: captured,
                });
                match &result {
                    Ok(done) => {
                        evaluation.record("events", done.events);
                        metrics.events_in.inc_by(done.events as u64);
                        metrics.detected(started.elapsed().as_secs_f64());
                    }
                    Err(_) => {
                        metrics.requests_refused.inc();
                    }
                }
                for failure in engine.take_failures() {
                    metrics.detector_failures.inc();
                    tracing::warn!(
                        detector = %failure.detector,
                        key = %failure.key,
                        "detector failed: {}",
                        failure.message
                    );
                }
                let _ = reply.send(result);
            }
            Job::Plugins { reply } => {
                let _ = reply.send(adr_engine::describe::plugins_json(
                    engine.evaluator().registry(),
                    rules.search,
                ));
            }
            Job::Rules { change, reply } => {
                let applied = rules
                    .uploads
                    .apply(&mut engine, &change, rules.allowed)
                    .map(|mut applied| {
                        let text = match &change {
                            Change::Put { text, .. } => Some(text.as_str()),
                            Change::Delete { .. } => None,
                        };
                        // The files are the truth; a version not recorded costs the history
                        // one entry, not the change.
                        match store.insert_rule_version(change.name(), text) {
                            Ok(version) => applied.version = Some(version),
                            Err(e) => {
                                metrics.store_errors.inc();
                                tracing::warn!(
                                    "rule `{}`: version not recorded: {e}",
                                    change.name()
                                );
                            }
                        }
                        applied
                    });
                match &applied {
                    Ok(a) => tracing::info!(
                        rule = %a.name,
                        generation = a.generation,
                        "rules {} through the API",
                        if a.present { "uploaded" } else { "deleted" }
                    ),
                    Err(e) => tracing::info!(rule = %change.name(), "rule change refused: {e}"),
                }
                let _ = reply.send(applied);
            }
            Job::Stop { reply } => {
                // What ran until now is what the next start goes on from; a reload read
                // meanwhile is swapped in first, so the checkpoint is of the rules the
                // next start reads.
                engine.refresh();
                take_checkpoint(&engine, store, checkpoints.status, metrics);
                let _ = reply.send(engine.finish().map_err(|e| e.to_string()));
                return;
            }
        }
    }
}

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
}

/// When the engine thread takes checkpoints, and where it says how it went.
struct Checkpoints<'a> {
    status: &'a Mutex<CheckpointStatus>,
    /// Between two; `None`: only at a clean stop.
    every: Option<Duration>,
}

/// Restores the store's checkpoint into the fresh `engine`, if there is one.
fn restore(engine: &mut Engine, store: &Store, status: &Mutex<CheckpointStatus>) {
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

/// Takes a checkpoint of `engine` into `store`.
fn take_checkpoint(
    engine: &Engine,
    store: &Store,
    status: &Mutex<CheckpointStatus>,
    metrics: &Metrics,
) {
    let started = Instant::now();
    let bytes = engine.checkpoint();
    let saved = store.save_checkpoint(&bytes);
    let mut s = lock(status);
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
}

/// Where the sink puts each batch's results while a request asks for them.
type Capture = Mutex<Option<Vec<BatchResult>>>;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Parses `body` whole into events, then evaluates them as one batch.
fn ingest(
    engine: &mut Engine,
    body: Vec<u8>,
    format: InputFormat,
    max_rows: usize,
) -> Result<usize, IngestError> {
    // The events are read for the rules that will score them: a reload first.
    engine.refresh();
    let spec = run::event_spec(engine.evaluator());
    let mut input = EventInput::from_bytes(body, format, &spec)
        .map_err(|e| IngestError::Input(e.to_string()))?;
    let names: Vec<&str> = spec.fields.iter().map(String::as_str).collect();
    let mut events = Events::new(&names, spec.keys.len());
    let mut chunk = Chunk::default();
    let mut key: Vec<String> = Vec::new();
    loop {
        let n = input
            .read_chunk(&mut chunk)
            .map_err(|e| IngestError::Input(e.to_string()))?;
        if n == 0 {
            break;
        }
        if events.len() + n > max_rows {
            return Err(IngestError::TooMany { limit: max_rows });
        }
        let mut values = vec![0.0; chunk.columns.len()];
        for i in 0..n {
            key.clear();
            for (part, column) in input.key_parts(&chunk, i).zip(&spec.keys) {
                // Two keys that are not text would both read as replacement characters
                // and merge: refuse them instead.
                let part = std::str::from_utf8(part).map_err(|_| {
                    IngestError::Input(format!(
                        "row {}: key column `{column}` is not UTF-8 text",
                        chunk.first_row + i as u64
                    ))
                })?;
                // The service refuses what a file run takes as the empty key: an event
                // without its key would merge with every other such event.
                if part.trim().is_empty() {
                    return Err(IngestError::Input(format!(
                        "row {}: key column `{column}` is empty or missing",
                        chunk.first_row + i as u64
                    )));
                }
                key.push(part.to_owned());
            }
            let parts: Vec<&str> = key.iter().map(String::as_str).collect();
            for (v, column) in values.iter_mut().zip(&chunk.columns) {
                *v = column[i];
            }
            events
                .push(chunk.timestamps[i], &parts, &values)
                .map_err(|e| IngestError::Input(e.to_string()))?;
        }
    }
    if events.is_empty() {
        return Ok(0);
    }
    engine.push_batch(&events).map_err(|e| match e {
        adr_engine::embed::EngineError::Run(run::RunError::Output(e)) => {
            IngestError::Store(e.to_string())
        }
        other => IngestError::Refused(other.to_string()),
    })?;
    Ok(events.len())
}

/// Stores each batch's alerts (one transaction), counts anomalies and alerts, publishes
/// the alerts to subscribers, and copies the results out when a request asks.
struct StoreSink {
    store: Arc<Store>,
    metrics: Arc<Metrics>,
    fired: Arc<AtomicU64>,
    capture: Arc<Capture>,
    alerts: tokio::sync::broadcast::Sender<Arc<serde_json::Value>>,
    redis: Option<Arc<crate::redis_out::RedisOut>>,
}

impl Sink for StoreSink {
    fn batch(&mut self, view: &BatchView<'_>) -> std::io::Result<()> {
        count_anomalies(view, &self.metrics);
        if let Some(results) = lock(&self.capture).as_mut() {
            results.push(BatchResult::of(view));
        }
        if view.outcome.fired.is_empty() {
            return Ok(());
        }
        let alerts: Vec<NewAlert> = view
            .outcome
            .fired
            .iter()
            .map(|f| {
                let row = (f.row - view.chunk.first_row) as usize;
                NewAlert {
                    time_ns: f.ts,
                    alert: f.alert.clone(),
                    key: view.key_names.name(f.key).to_owned(),
                    severity: f.severity.as_str().to_owned(),
                    rank: rank(f.severity),
                    doc: alert_json(view.plan, view.outcome, row, f, view.key_names),
                }
            })
            .collect();
        let started = Instant::now();
        let _span = tracing::info_span!("store_alerts", alerts = alerts.len()).entered();
        if let Err(e) = self.store.insert(&alerts) {
            self.metrics.store_errors.inc();
            return Err(std::io::Error::other(e.to_string()));
        }
        self.metrics
            .store_write_time
            .observe(started.elapsed().as_secs_f64());
        for a in &alerts {
            self.metrics.alert(&a.alert, &a.severity);
            tracing::info!(
                detector_type = %a.alert,
                anomaly_score = a.doc["score"].as_f64().unwrap_or(f64::NAN),
                symbol = %a.key,
                timestamp = %adr_engine::io::timestamp::format_rfc3339(a.time_ns),
                severity = %a.severity,
                "alert"
            );
        }
        self.fired.fetch_add(alerts.len() as u64, Ordering::Relaxed);
        if let Some(redis) = &self.redis {
            redis.publish(alerts.iter().map(|a| a.doc.to_string()).collect());
        }
        for a in alerts {
            // Stored first; a subscriber that lags loses the oldest (and is told).
            let _ = self.alerts.send(Arc::new(a.doc));
        }
        Ok(())
    }
}

/// A severity's rank, lowest 0.
pub fn rank(severity: Severity) -> u8 {
    Severity::ALL
        .iter()
        .position(|&s| s == severity)
        .map_or(0, |i| i as u8)
}

/// The rank of the severity named `name` (`info` … `critical`), if it is one.
pub fn rank_named(name: &str) -> Option<u8> {
    Severity::ALL
        .iter()
        .find(|l| l.as_str() == name)
        .map(|&l| rank(l))
}

fn count_anomalies(view: &BatchView<'_>, metrics: &Metrics) {
    for (e, judgements) in view.outcome.ensembles.iter().enumerate() {
        let mut per_severity = [0u64; Severity::ALL.len()];
        for j in judgements.iter().filter(|j| j.verdict == Verdict::Anomaly) {
            per_severity[usize::from(j.severity.map_or(0, rank))] += 1;
        }
        for (s, &n) in per_severity.iter().enumerate().filter(|(_, &n)| n > 0) {
            metrics.anomalies(&view.plan.ensembles[e].name, Severity::ALL[s].as_str(), n);
        }
    }
}
