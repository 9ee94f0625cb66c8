//! The engine on a thread of its own. Requests hand it their events through a bounded
//! queue and wait for its answer; it parses them whole, evaluates them in one batch, and
//! stores the alerts they fired before answering, so an acknowledged alert is stored.
//!
//! One thread owns the engine because evaluation is ordered per key and the engine's state
//! is not shared: the async workers parse HTTP and wait, the engine thread computes.

use std::sync::mpsc::{channel, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use adr_engine::embed::{BatchResult, Engine, EngineBuilder, Events, StatusHandle};
use adr_engine::io::EventSpec;
use adr_engine::plugins::SearchPath;
use adr_engine::reload::ReloadStatus;
use adr_engine::rules::severity::Severity;
use adr_engine::run::notify::{Allowed, Notifier};
use adr_engine::run::sinks::alert_json;
use adr_engine::run::{self, BatchView, RunSummary, Sink};
use adr_sdk::Verdict;

use crate::checkpoints::{self, CheckpointStatus};
use crate::config::Config;
use crate::intake::{self, Source};
use crate::metrics::Metrics;
use crate::store::{NewAlert, Store};
use crate::uploads::{Applied, Change, UploadError, Uploads};

/// Jobs waiting for the engine at most; past it a request is told the service is busy.
/// The events waiting for the engine weigh at most this (bytes as they came): a request
/// past it waits for room, a client over a WebSocket as it would for a slow reader.
const QUEUE_BYTES: usize = 128 << 20;

/// The room in the queue is counted in units of this many bytes.
const QUEUE_UNIT: usize = 1024;

/// How long a request waits for room in the queue before it is told the service is busy.
const BUSY_AFTER: Duration = Duration::from_secs(10);

/// Why events were not taken.
#[derive(Debug, Clone, thiserror::Error)]
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
    #[error("the engine is busy (its queue was full for {} s); try again", BUSY_AFTER.as_secs())]
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

/// A request's events, read, waiting for the engine.
struct Ingest {
    /// The events as they came, read again if the rules read other columns by the time
    /// the engine takes them.
    source: Source,
    /// The columns they were read with.
    spec: Arc<EventSpec>,
    events: Events,
    results: bool,
    /// The request's span, the parent of the evaluation's.
    span: tracing::Span,
    reply: Reply<Result<Ingested, IngestError>>,
    /// Its room in the queue, given back when it is answered.
    _room: tokio::sync::OwnedSemaphorePermit,
}

enum Job {
    Ingest(Ingest),
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
    jobs: Sender<Job>,
    /// Room in the queue, in units of [`QUEUE_UNIT`] bytes of waiting events.
    room: Arc<tokio::sync::Semaphore>,
    /// The columns the rules in force read: requests read their events with them.
    spec: Arc<RwLock<Arc<EventSpec>>>,
    max_rows: usize,
    metrics: Arc<Metrics>,
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
        let (jobs, queue) = channel();
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
        let spec = Arc::new(RwLock::new(Arc::new(EventSpec::default())));
        let thread_spec = Arc::clone(&spec);
        let runner_metrics = Arc::clone(&metrics);
        let thread = std::thread::Builder::new()
            .name("adr-engine".into())
            .spawn(move || {
                let capture = Arc::new(Mutex::new(Captured::default()));
                let sink = StoreSink {
                    store: Arc::clone(&store),
                    metrics: Arc::clone(&metrics),
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
                        checkpoints::restore(&mut engine, &store, &thread_checkpoints);
                        *write_lock(&thread_spec) = Arc::new(run::event_spec(engine.evaluator()));
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
                            writer: checkpoints::Writer::start(
                                Arc::clone(&store),
                                Arc::clone(&thread_checkpoints),
                                Arc::clone(&metrics),
                            ),
                            every,
                        };
                        serve_jobs(
                            engine,
                            &rules,
                            &store,
                            schedule,
                            &queue,
                            &Counters {
                                metrics: &metrics,
                                capture: &capture,
                                spec: &thread_spec,
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
            room: Arc::new(tokio::sync::Semaphore::new(QUEUE_BYTES / QUEUE_UNIT)),
            spec,
            max_rows,
            metrics: runner_metrics,
            status,
            registry,
            checkpoints,
            thread: Mutex::new(Some(thread)),
        })
    }

    fn send(&self, job: Job) -> Result<(), IngestError> {
        self.jobs.send(job).map_err(|_| IngestError::Stopped)
    }

    /// Reads `source`'s events (here, or on a blocking thread when they are many), then
    /// has the engine evaluate them, in one batch with those of the requests waiting
    /// beside them; with `results`, the answer carries each event's judgements.
    ///
    /// # Errors
    ///
    /// An [`IngestError`]; with any but [`IngestError::Store`] nothing was evaluated.
    pub async fn ingest(&self, source: Source, results: bool) -> Result<Ingested, IngestError> {
        let spec = Arc::clone(&read_lock(&self.spec));
        let max_rows = self.max_rows;
        let (source, events) = if source.weight() > intake::READ_INLINE_UP_TO {
            let spec = Arc::clone(&spec);
            tokio::task::spawn_blocking(move || {
                let events = intake::read(&source, &spec, max_rows);
                (source, events)
            })
            .await
            .map_err(|_| IngestError::Stopped)?
        } else {
            let events = intake::read(&source, &spec, max_rows);
            (source, events)
        };
        let events = events.inspect_err(|_| {
            self.metrics.requests_refused.inc();
        })?;
        let units = (source.weight() / QUEUE_UNIT + 1).min(QUEUE_BYTES / QUEUE_UNIT) as u32;
        let room =
            tokio::time::timeout(BUSY_AFTER, Arc::clone(&self.room).acquire_many_owned(units))
                .await
                .map_err(|_| IngestError::Busy)?
                .map_err(|_| IngestError::Stopped)?;
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.send(Job::Ingest(Ingest {
            source,
            spec,
            events,
            results,
            span: tracing::Span::current(),
            reply,
            _room: room,
        }))?;
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
        self.jobs
            .send(Job::Stop { reply })
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

/// What the engine thread counts and collects while it evaluates, and where it says
/// which columns the rules read.
struct Counters<'a> {
    metrics: &'a Metrics,
    capture: &'a Mutex<Captured>,
    spec: &'a RwLock<Arc<EventSpec>>,
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
    checkpoints: Checkpoints,
    queue: &Receiver<Job>,
    counters: &Counters<'_>,
    max_rows: usize,
) {
    let metrics = counters.metrics;
    let mut next_checkpoint = checkpoints.every.map(|every| Instant::now() + every);
    // A job taken from the queue while gathering requests to evaluate together.
    let mut held: Option<Job> = None;
    loop {
        let job = match (held.take(), next_checkpoint) {
            (Some(job), _) => Some(job),
            (None, Some(at)) => {
                match queue.recv_timeout(at.saturating_duration_since(Instant::now())) {
                    Ok(job) => Some(job),
                    Err(RecvTimeoutError::Timeout) => None,
                    Err(RecvTimeoutError::Disconnected) => return,
                }
            }
            (None, None) => match queue.recv() {
                Ok(job) => Some(job),
                Err(_) => return,
            },
        };
        if let (Some(at), Some(every)) = (next_checkpoint, checkpoints.every) {
            if Instant::now() >= at {
                checkpoints.writer.periodic(&engine);
                next_checkpoint = Some(Instant::now() + every);
            }
        }
        let Some(job) = job else {
            continue;
        };
        match job {
            Job::Ingest(first) => {
                // The requests waiting behind this one are evaluated with it, as one
                // batch: one pass of the engine (and one store write) for all of them.
                let mut group = vec![first];
                let mut rows = group[0].events.len();
                while rows < max_rows {
                    match queue.try_recv() {
                        Ok(Job::Ingest(more)) => {
                            rows += more.events.len();
                            group.push(more);
                        }
                        Ok(other) => {
                            held = Some(other);
                            break;
                        }
                        Err(_) => break,
                    }
                }
                evaluate_group(&mut engine, group, counters, max_rows);
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
                checkpoints.writer.last(&engine);
                let _ = reply.send(engine.finish().map_err(|e| e.to_string()));
                return;
            }
        }
    }
}

/// What the store's sink collects while a group of requests is evaluated.
#[derive(Debug, Default)]
struct Captured {
    /// Whether each event's results are wanted (a request asked for them).
    want_results: bool,
    results: Vec<BatchResult>,
    /// The engine's number of the first row evaluated.
    first_row: Option<u64>,
    /// The rows that fired the alerts stored.
    fired_rows: Vec<u64>,
}

/// When the engine thread takes checkpoints, and who writes them.
struct Checkpoints {
    writer: checkpoints::Writer,
    /// Between two; `None`: only at a clean stop.
    every: Option<Duration>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn read_lock<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(PoisonError::into_inner)
}

fn write_lock<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(PoisonError::into_inner)
}

/// Evaluates the requests of `group` (taken from the queue in order) as one batch, and
/// answers each with what its own events did. If the engine refuses the batch (one
/// request's events go back in time for a key, say), nothing of it was evaluated, and
/// each request is evaluated alone, so that only the request at fault is refused.
fn evaluate_group(
    engine: &mut Engine,
    group: Vec<Ingest>,
    counters: &Counters<'_>,
    max_rows: usize,
) {
    // The events are read for the rules that will score them: a reload first.
    engine.refresh();
    let spec = run::event_spec(engine.evaluator());
    if **read_lock(counters.spec) != spec {
        *write_lock(counters.spec) = Arc::new(spec.clone());
    }
    let metrics = counters.metrics;
    let mut ready = Vec::with_capacity(group.len());
    for mut job in group {
        if *job.spec != spec {
            match intake::read(&job.source, &spec, max_rows) {
                Ok(events) => job.events = events,
                Err(e) => {
                    metrics.requests_refused.inc();
                    let _ = job.reply.send(Err(e));
                    continue;
                }
            }
        }
        if job.events.is_empty() {
            let _ = job.reply.send(Ok(Ingested::default()));
            continue;
        }
        ready.push(job);
    }
    let Some(first) = ready.first() else {
        return;
    };
    let evaluation = tracing::info_span!(
        parent: &first.span,
        "evaluate",
        events = tracing::field::Empty,
        requests = ready.len()
    );
    for job in &ready[1..] {
        evaluation.follows_from(&job.span);
    }
    let _entered = evaluation.enter();
    let started = Instant::now();
    let outcome = if let [job] = ready.as_slice() {
        push(engine, &job.events, job.results, counters)
    } else {
        let mut merged = first.events.clone();
        // Read with one spec, every request's events have the same columns.
        ready[1..]
            .iter()
            .try_for_each(|job| merged.append(&job.events))
            .map_err(|e| IngestError::Refused(e.to_string()))
            .and_then(|()| push(engine, &merged, ready.iter().any(|j| j.results), counters))
    };
    match outcome {
        Ok(mut captured) => {
            let events: usize = ready.iter().map(|j| j.events.len()).sum();
            evaluation.record("events", events);
            metrics.events_in.inc_by(events as u64);
            metrics.detected(started.elapsed().as_secs_f64());
            let alone = ready.len() == 1;
            let mut offset = 0;
            for job in ready {
                let len = job.events.len();
                let share = if alone {
                    Ingested {
                        events: len,
                        alerts: captured.fired_rows.len() as u64,
                        results: std::mem::take(&mut captured.results),
                    }
                } else {
                    share_of(&captured, offset, len, job.results)
                };
                offset += len as u64;
                let _ = job.reply.send(Ok(share));
            }
        }
        Err(IngestError::Refused(_)) if ready.len() > 1 => {
            for job in ready {
                let started = Instant::now();
                let result = push(engine, &job.events, job.results, counters).map(|c| Ingested {
                    events: job.events.len(),
                    alerts: c.fired_rows.len() as u64,
                    results: c.results,
                });
                match &result {
                    Ok(done) => {
                        metrics.events_in.inc_by(done.events as u64);
                        metrics.detected(started.elapsed().as_secs_f64());
                    }
                    Err(_) => {
                        metrics.requests_refused.inc();
                    }
                }
                let _ = job.reply.send(result);
            }
        }
        Err(e) => {
            for job in ready {
                metrics.requests_refused.inc();
                let _ = job.reply.send(Err(e.clone()));
            }
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
}

/// Evaluates `events` as one batch, collecting what the store's sink saw.
fn push(
    engine: &mut Engine,
    events: &Events,
    results: bool,
    counters: &Counters<'_>,
) -> Result<Captured, IngestError> {
    *lock(counters.capture) = Captured {
        want_results: results,
        ..Captured::default()
    };
    let pushed = engine.push_batch(events).map_err(|e| match e {
        adr_engine::embed::EngineError::Run(run::RunError::Output(e)) => {
            IngestError::Store(e.to_string())
        }
        other => IngestError::Refused(other.to_string()),
    });
    let captured = std::mem::take(&mut *lock(counters.capture));
    pushed.map(|()| captured)
}

/// What the events at `offset..offset + len` of a batch did.
fn share_of(captured: &Captured, offset: u64, len: usize, results: bool) -> Ingested {
    let Some(first) = captured.first_row else {
        return Ingested {
            events: len,
            ..Ingested::default()
        };
    };
    let rows = first + offset..first + offset + len as u64;
    let alert_row =
        |doc: &serde_json::Value| doc["row"].as_u64().is_some_and(|r| rows.contains(&r));
    Ingested {
        events: len,
        alerts: captured
            .fired_rows
            .iter()
            .filter(|r| rows.contains(r))
            .count() as u64,
        results: if results {
            captured
                .results
                .iter()
                .map(|batch| BatchResult {
                    ensembles: batch.ensembles.clone(),
                    events: batch
                        .events
                        .iter()
                        .filter(|e| rows.contains(&e.row))
                        .cloned()
                        .collect(),
                    alerts: batch
                        .alerts
                        .iter()
                        .filter(|a| alert_row(a))
                        .cloned()
                        .collect(),
                })
                .filter(|batch| !batch.events.is_empty())
                .collect()
        } else {
            Vec::new()
        },
    }
}

/// Stores each batch's alerts (one transaction), counts anomalies and alerts, publishes
/// the alerts to subscribers, and copies the results out when a request asks.
struct StoreSink {
    store: Arc<Store>,
    metrics: Arc<Metrics>,
    capture: Arc<Mutex<Captured>>,
    alerts: tokio::sync::broadcast::Sender<Arc<serde_json::Value>>,
    redis: Option<Arc<crate::redis_out::RedisOut>>,
}

impl Sink for StoreSink {
    fn batch(&mut self, view: &BatchView<'_>) -> std::io::Result<()> {
        count_anomalies(view, &self.metrics);
        {
            let mut capture = lock(&self.capture);
            capture.first_row.get_or_insert(view.chunk.first_row);
            if capture.want_results {
                capture.results.push(BatchResult::of(view));
            }
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
        lock(&self.capture)
            .fired_rows
            .extend(view.outcome.fired.iter().map(|f| f.row));
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
