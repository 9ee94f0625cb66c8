//! Reloading rules and plugins while events flow (see `docs/decisions/0009-hot-reload.md`).
//!
//! A [`Reloader`] turns the files on disk into a [`Prepared`] plan off the event path:
//! read the rule files and their includes, rescan the plugin folders, check, plan, and
//! build each detector once. It does nothing when nothing it reads changed (editors save
//! in storms; a watcher reports a directory event for every temporary file). The event
//! path then swaps the prepared plan in between two batches
//! ([`Evaluator::swap`](crate::evaluator::Evaluator::swap)), so no event is dropped or
//! scored twice, and a failed attempt leaves the running rules untouched: the
//! [`ReloadStatus`] and the log say why.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::PathBuf;
use std::sync::Arc;

use crate::evaluator::{Prepared, SwapReport};
use crate::plugins::{Registry, SearchPath, Stamp};
use crate::rules::diagnostic::{render, Level};
use crate::rules::plan::{InputPlan, Plan, PlanError};
use crate::rules::source;

pub mod watch;

pub use adr_plugin_host::rescan::{candidates, libraries_mapped, rescan};

/// The outcome of one reload attempt.
#[derive(Debug)]
pub enum Attempt {
    /// Nothing the rules read changed since the last attempt.
    Unchanged,
    /// A new plan, ready to swap in; with the checker's warnings, rendered.
    Ready(Box<Prepared>, String),
    /// The new files cannot run; the running rules stay. Why, for a person.
    Failed(String),
}

/// Reload history, for operators (`adr run --watch` logs it; a service exposes it).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct ReloadStatus {
    /// Rule sets swapped in since the start (0: still the first).
    pub generation: u64,
    /// Reload attempts that found something changed.
    pub attempts: u64,
    /// Attempts that were swapped in.
    pub successes: u64,
    /// Attempts refused; the running rules stayed.
    pub failures: u64,
    /// When the last attempt ended (RFC 3339).
    pub last_attempt: Option<String>,
    /// When the last successful swap happened (RFC 3339).
    pub last_success: Option<String>,
    /// Why the last failed attempt failed: the rendered diagnostics or error.
    pub last_error: Option<String>,
    /// What the last swap kept, started fresh and dropped.
    pub last_swap: Option<SwapReport>,
    /// The longest pause of the event path for a swap so far, in ns.
    pub longest_swap_ns: u64,
    /// The pauses of the last swaps (up to 256), in ns, oldest first.
    pub recent_swaps_ns: Vec<u64>,
    /// Plugin libraries mapped into the process; superseded builds stay mapped (a
    /// loaded library is never unloaded), so this only grows.
    pub libraries_mapped: usize,
}

impl ReloadStatus {
    /// Records an attempt that failed with `why`.
    pub fn failed(&mut self, why: String) {
        self.attempts += 1;
        self.failures += 1;
        self.last_attempt = Some(now());
        self.last_error = Some(why);
    }

    /// Records a swap that took `pause_ns` of the event path.
    pub fn swapped(&mut self, report: SwapReport, pause_ns: u64) {
        self.attempts += 1;
        self.successes += 1;
        self.generation += 1;
        let at = now();
        self.last_attempt = Some(at.clone());
        self.last_success = Some(at);
        self.last_swap = Some(report);
        self.longest_swap_ns = self.longest_swap_ns.max(pause_ns);
        if self.recent_swaps_ns.len() == 256 {
            self.recent_swaps_ns.remove(0);
        }
        self.recent_swaps_ns.push(pause_ns);
    }
}

fn files_of(loaded: &source::Loaded) -> Vec<PathBuf> {
    (0..loaded.sources.files().count())
        .map(|f| loaded.sources.path(f).to_path_buf())
        .collect()
}

/// What a reload reads: the plugin files' stamps, then the rules' texts (or why they
/// cannot be read).
fn fingerprint(stamps: &[(PathBuf, Stamp)], rules: Result<&source::Loaded, &String>) -> u64 {
    let mut hasher = DefaultHasher::new();
    stamps.hash(&mut hasher);
    match rules {
        Ok(loaded) => {
            for (name, text) in loaded.sources.files() {
                (name, text).hash(&mut hasher);
            }
        }
        Err(why) => why.hash(&mut hasher),
    }
    hasher.finish()
}

/// What a reload saw on disk.
struct Probe {
    stamps: Vec<(PathBuf, Stamp)>,
    rules: Result<source::Loaded, String>,
    fingerprint: u64,
}

fn now() -> String {
    jiff::Timestamp::now().to_string()
}

/// Whether a plan can take over from `running` on the same stream: the time and key
/// columns must stay (state is kept per key), and every field must be one the stream
/// carries (`columns`; `None`: the stream can read any column).
///
/// # Errors
///
/// Why not, for a person.
pub fn compatible(
    running: &InputPlan,
    next: &InputPlan,
    columns: Option<&[String]>,
) -> Result<(), String> {
    if next.time != running.time {
        return Err(format!(
            "the new rules read time from {}, the running ones from {}; a running engine keeps its time column (restart to change it)",
            describe(&next.time),
            describe(&running.time)
        ));
    }
    if next.keys != running.keys {
        return Err(format!(
            "the new rules key events by [{}], the running ones by [{}]; state is kept per key, so a running engine keeps its key columns (restart to change them)",
            next.keys.join(", "),
            running.keys.join(", ")
        ));
    }
    if let Some(columns) = columns {
        if let Some(f) = next.fields.iter().find(|f| !columns.contains(f)) {
            return Err(format!(
                "the new rules read field `{f}`, which the stream does not carry (it has: {})",
                columns.join(", ")
            ));
        }
    }
    Ok(())
}

fn describe(time: &Option<String>) -> String {
    time.as_ref()
        .map_or("the default column".to_owned(), |t| format!("`{t}`"))
}

/// How long what a reload read must stay the same before it counts.
pub const SETTLE: std::time::Duration = std::time::Duration::from_millis(25);

/// Prepares new plans from the rule files and plugin folders on disk.
#[derive(Debug)]
pub struct Reloader {
    rules: Vec<PathBuf>,
    plugins: Option<SearchPath>,
    registry: Arc<Registry>,
    /// What the last attempt read (rule texts, plugin files), to skip unchanged attempts.
    fingerprint: Option<u64>,
    /// Every file the rules read at the last attempt (roots and includes).
    files: Vec<PathBuf>,
}

impl Reloader {
    /// A reloader of `rules`; `plugins` are rescanned on each attempt when given.
    /// `running` is what the running plan was built from: an attempt that reads the same
    /// (and finds the same plugin files as `registry` was loaded from) is unchanged.
    pub fn new(
        rules: Vec<PathBuf>,
        plugins: Option<SearchPath>,
        registry: Arc<Registry>,
        running: &source::Loaded,
    ) -> Self {
        let stamps = plugins.as_ref().map(candidates).unwrap_or_default();
        Reloader {
            files: files_of(running),
            fingerprint: Some(fingerprint(&stamps, Ok(running))),
            rules,
            plugins,
            registry,
        }
    }

    /// The files the rules read (roots and includes), as of the last attempt, and the
    /// plugin folders: what a watcher watches.
    pub fn watched(&self) -> (Vec<PathBuf>, Vec<PathBuf>) {
        let mut files = self.files.clone();
        for root in &self.rules {
            if !files.contains(root) {
                files.push(root.clone());
            }
        }
        let dirs = self
            .plugins
            .iter()
            .flat_map(|s| s.dirs().map(std::path::Path::to_path_buf))
            .collect();
        (files, dirs)
    }

    /// Looks at what a reload reads: the plugin files' stamps and the rules' texts.
    fn probe(&self) -> Probe {
        let stamps = self.plugins.as_ref().map(candidates).unwrap_or_default();
        let rules = source::load(&self.rules).map_err(|e| format!("{e:#}"));
        let fingerprint = fingerprint(&stamps, rules.as_ref());
        Probe {
            stamps,
            rules,
            fingerprint,
        }
    }

    /// Probes until two probes [`SETTLE`] apart agree (at most five rounds): a file
    /// written in place is empty or half-written for a moment, a plugin build is copied
    /// in over a while, and a loaded machine can stretch that moment past the debounce.
    /// A probe that matches what runs needs no wait.
    fn settled_probe(&self) -> Probe {
        let mut probe = self.probe();
        for _ in 0..5 {
            if self.fingerprint == Some(probe.fingerprint) {
                break;
            }
            std::thread::sleep(SETTLE);
            let again = self.probe();
            if again.fingerprint == probe.fingerprint {
                break;
            }
            probe = again;
        }
        probe
    }

    /// One attempt: read, check, plan and prepare the rules on disk. `force` attempts even
    /// when nothing changed (a manual reload).
    pub fn attempt(&mut self, force: bool) -> Attempt {
        let Probe {
            stamps,
            rules,
            fingerprint,
        } = self.settled_probe();
        if !force && self.fingerprint == Some(fingerprint) {
            return Attempt::Unchanged;
        }
        self.fingerprint = Some(fingerprint);
        let loaded = match rules {
            Ok(loaded) => {
                self.files = files_of(&loaded);
                loaded
            }
            Err(why) => return Attempt::Failed(why),
        };
        let rescanned = self
            .plugins
            .is_some()
            .then(|| rescan(&self.registry, &stamps))
            .flatten();
        // The plugins on disk as scanned, whatever becomes of the rules: the next rescan
        // compares with them (a build is loaded, and counted, once).
        if let Some(rescanned) = rescanned {
            self.registry = Arc::new(rescanned);
        }
        let registry = Arc::clone(&self.registry);
        let plan = match Plan::build(&loaded, &registry) {
            Ok((plan, warnings)) if warnings.is_empty() => (plan, String::new()),
            Ok((plan, warnings)) => (plan, render(&warnings, &loaded.sources)),
            Err(PlanError::Invalid(diagnostics)) => {
                let errors = diagnostics
                    .iter()
                    .filter(|d| d.level == Level::Error)
                    .count();
                return Attempt::Failed(format!(
                    "{} error{} in the rules:\n{}",
                    errors,
                    if errors == 1 { "" } else { "s" },
                    render(&diagnostics, &loaded.sources)
                ));
            }
            Err(e) => return Attempt::Failed(e.to_string()),
        };
        match Prepared::new(plan.0, registry) {
            Ok(prepared) => Attempt::Ready(Box::new(prepared), plan.1),
            Err(e) => Attempt::Failed(e.to_string()),
        }
    }
}
