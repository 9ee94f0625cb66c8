//! How to build an [`Engine`]: rules, plugins, watch, sinks.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::mpsc::channel;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::worker::{lock, reload_worker, Shared, Trigger};
use super::{Engine, EngineError};
use crate::evaluator::{Evaluator, Outcome};
use crate::io::UnsortedPolicy;
use crate::plugins::{Registry, SearchPath};
use crate::reload::watch::Watcher;
use crate::reload::{libraries_mapped, ReloadStatus, Reloader};
use crate::rules::plan::{Plan, PlanError};
use crate::rules::source;
use crate::run::{Batch, Sink};

/// How to build an [`Engine`].
pub struct EngineBuilder {
    rules: Vec<PathBuf>,
    search: Option<SearchPath>,
    registry: Option<Arc<Registry>>,
    watch: bool,
    watch_plugins: bool,
    debounce: Duration,
    unsorted: UnsortedPolicy,
    eviction: crate::evaluator::Eviction,
    max_state: Option<u64>,
    lateness: Option<(i64, usize)>,
    columns: Option<Vec<String>>,
    open_columns: bool,
    sinks: Vec<Box<dyn Sink + Send>>,
    plan: Option<(Plan, source::Loaded)>,
}

impl std::fmt::Debug for EngineBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineBuilder")
            .field("rules", &self.rules)
            .field("watch", &self.watch)
            .finish_non_exhaustive()
    }
}

impl EngineBuilder {
    /// An engine running the rule files `rules` (their includes are read too).
    pub fn new(rules: impl IntoIterator<Item = impl Into<PathBuf>>) -> Self {
        EngineBuilder {
            rules: rules.into_iter().map(Into::into).collect(),
            search: None,
            registry: None,
            watch: false,
            watch_plugins: true,
            debounce: Duration::from_millis(200),
            unsorted: UnsortedPolicy::Reject,
            eviction: crate::evaluator::Eviction::default(),
            max_state: None,
            lateness: None,
            columns: None,
            open_columns: false,
            sinks: Vec::new(),
            plan: None,
        }
    }

    /// Starts from `plan`, already checked and planned from the same rule files (the
    /// CLI does this to print the checker's diagnostics its own way).
    pub fn plan(mut self, plan: Plan, loaded: source::Loaded) -> Self {
        self.plan = Some((plan, loaded));
        self
    }

    /// Where plugins are found (default: [`SearchPath::from_env`] with no folders given).
    pub fn plugins(mut self, search: SearchPath) -> Self {
        self.search = Some(search);
        self
    }

    /// Plugins already loaded from the [`plugins`](Self::plugins) search path.
    pub fn registry(mut self, registry: Arc<Registry>) -> Self {
        self.registry = Some(registry);
        self
    }

    /// Watch the rule files, their includes and the plugin folders, and reload on change
    /// (default: off; [`StatusHandle::request_reload`](super::StatusHandle::request_reload) works either way).
    pub fn watch(mut self, on: bool) -> Self {
        self.watch = on;
        self
    }

    /// Whether reloads rescan the plugin folders for new builds (default: on).
    pub fn watch_plugins(mut self, on: bool) -> Self {
        self.watch_plugins = on;
        self
    }

    /// How long a burst of file events must be quiet before a reload (default: 200 ms).
    pub fn debounce(mut self, quiet: Duration) -> Self {
        self.debounce = quiet;
        self
    }

    /// What to do with an event earlier than its key's previous one (default: reject).
    pub fn unsorted(mut self, policy: UnsortedPolicy) -> Self {
        self.unsorted = policy;
        self
    }

    /// When to forget idle keys, or the least recently seen past a cap (default: never);
    /// see [`Eviction`](crate::evaluator::Eviction).
    pub fn eviction(mut self, eviction: crate::evaluator::Eviction) -> Self {
        self.eviction = eviction;
        self
    }

    /// Bounds all keys' state to `bytes` (default: unbounded): rules whose one key does
    /// not fit are refused at build and at every reload, and at most `bytes / per-key
    /// estimate` keys are held, the least recently seen forgotten first (counted as
    /// evictions). See [`budget`](crate::budget).
    pub fn max_state(mut self, bytes: u64) -> Self {
        self.max_state = Some(bytes);
        self
    }

    /// Put events in event-time order, allowing `lateness_ns` of lateness and holding at
    /// most `max_held` events (default: none; events are scored as they come, and one
    /// earlier than its key's previous is refused or counted, see [`unsorted`](Self::unsorted)).
    /// Results of an event come when the watermark passes it, or at
    /// [`finish`](super::Engine::finish); see [`Reorder`](crate::run::reorder::Reorder).
    pub fn lateness(mut self, lateness_ns: i64, max_held: usize) -> Self {
        self.lateness = Some((lateness_ns, max_held));
        self
    }

    /// The value columns pushed events carry; a reload reading another field is refused
    /// (default: the fields the first rules read).
    pub fn columns(mut self, names: &[&str]) -> Self {
        self.columns = Some(names.iter().map(|n| (*n).to_owned()).collect());
        self
    }

    /// Pushed events name their fields batch by batch, so a reload that reads a field
    /// the first rules did not is taken; a batch lacking a field the rules in force read
    /// is refused ([`EngineError::MissingField`](super::EngineError::MissingField)).
    /// For a service whose clients send whatever fields the rules read: it builds each
    /// batch from [`Engine::plan`](super::Engine::plan) after
    /// [`Engine::refresh`](super::Engine::refresh). Overrides [`columns`](Self::columns).
    pub fn open_columns(mut self, on: bool) -> Self {
        self.open_columns = on;
        self
    }

    /// Adds a sink: it sees every evaluated batch, in order.
    pub fn sink(mut self, sink: Box<dyn Sink + Send>) -> Self {
        self.sinks.push(sink);
        self
    }

    /// Loads the plugins (unless given), checks and plans the rules, builds each detector
    /// once, and starts the reload thread (and the watch, if asked).
    ///
    /// # Errors
    ///
    /// An [`EngineError`]: plugins, unreadable or invalid rules, a refused detector, or a
    /// watch the system refuses.
    pub fn build(self) -> Result<Engine, EngineError> {
        let search = self.search.unwrap_or_else(|| SearchPath::from_env(&[]));
        let registry = match self.registry {
            Some(r) => r,
            None => {
                let registry = Registry::load(&search)?;
                for skipped in registry.skipped() {
                    tracing::warn!("skipped plugin {skipped}");
                }
                Arc::new(registry)
            }
        };
        let (plan, loaded) = match self.plan {
            Some(planned) => planned,
            None => first_plan(&self.rules, &registry)?,
        };
        let mut evaluator = Evaluator::new(plan, Arc::clone(&registry))?;
        evaluator.set_unsorted(self.unsorted);
        evaluator.set_eviction(self.eviction);
        evaluator.set_state_budget(self.max_state)?;
        let columns = if self.open_columns {
            None
        } else {
            Some(
                self.columns
                    .unwrap_or_else(|| evaluator.plan().input.fields.clone()),
            )
        };
        // What runs is the baseline: a reload that reads the same changes nothing.
        let reloader = Reloader::new(
            self.rules.clone(),
            self.watch_plugins.then(|| search.clone()),
            Arc::clone(&registry),
            &loaded,
        );
        let shared = Arc::new(Shared {
            pending: Mutex::new(None),
            ready: AtomicBool::new(false),
            status: Mutex::new(ReloadStatus {
                libraries_mapped: libraries_mapped(&registry),
                ..ReloadStatus::default()
            }),
            reloader: Mutex::new(reloader),
        });
        let (tx, rx) = channel();
        let watcher = if self.watch {
            let (files, dirs) = lock(&shared.reloader).watched();
            let tx = tx.clone();
            Some(Watcher::new(&files, &dirs, self.debounce, move || {
                let _ = tx.send(Trigger::Changed);
            })?)
        } else {
            None
        };
        if watcher.is_some() {
            // An edit after the rules were read and before the watch began has no event:
            // one look now catches it (and changes nothing otherwise).
            let _ = tx.send(Trigger::Changed);
        }
        let worker = {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name("adr-reload".into())
                .spawn(move || reload_worker(&shared, &rx, watcher))
                .map_err(EngineError::Start)?
        };
        Ok(Engine {
            anomalies: BTreeMap::new(),
            evaluator,
            outcome: Outcome::default(),
            batch: Batch::default(),
            reorder: self
                .lateness
                .map(|(ns, max_held)| crate::run::reorder::Reorder::new(ns, max_held)),
            staging: Batch::default(),
            sinks: self.sinks,
            columns,
            shared,
            trigger: tx,
            worker: Some(worker),
            rows: 0,
            alerts_by_severity: BTreeMap::new(),
            failures: Vec::new(),
            input_stats: Default::default(),
            started: Instant::now(),
        })
    }
}

fn first_plan(
    rules: &[PathBuf],
    registry: &Registry,
) -> Result<(Plan, source::Loaded), EngineError> {
    let loaded = source::load(rules)?;
    match Plan::build(&loaded, registry) {
        Ok((plan, warnings)) => {
            if !warnings.is_empty() {
                tracing::warn!(
                    "{}",
                    crate::rules::diagnostic::render(&warnings, &loaded.sources)
                );
            }
            Ok((plan, loaded))
        }
        Err(PlanError::Invalid(d)) => Err(EngineError::Invalid(crate::rules::diagnostic::render(
            &d,
            &loaded.sources,
        ))),
        Err(e) => Err(EngineError::Invalid(e.to_string())),
    }
}
