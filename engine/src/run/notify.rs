//! Notification targets of fired alerts: `log` (a line on standard error), `file("path")`
//! (JSON lines appended) and `webhook("url")` (a JSON POST).
//!
//! A delivery that fails is counted and reported once per target, and the alert is still
//! on the run's alert output: a broken target loses no alert.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use super::sinks::alert_json;
use super::{BatchView, Sink};
use crate::io::timestamp::format_rfc3339;
use crate::rules::plan::NotifyPlan;

/// Delivers fired alerts to their rules' targets.
pub struct Notifier {
    files: HashMap<PathBuf, File>,
    agent: ureq::Agent,
    log: Box<dyn FnMut(&str) + Send>,
    /// Deliveries made.
    pub delivered: u64,
    /// Deliveries that failed, with the first error of each target.
    pub failed: HashMap<String, (u64, String)>,
}

impl std::fmt::Debug for Notifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notifier")
            .field("delivered", &self.delivered)
            .field("failed", &self.failed)
            .finish_non_exhaustive()
    }
}

impl Notifier {
    /// A notifier writing `log` targets through `log` (one line per alert).
    pub fn new(log: impl FnMut(&str) + Send + 'static) -> Self {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(5)))
            .build()
            .into();
        Notifier {
            files: HashMap::new(),
            agent,
            log: Box::new(log),
            delivered: 0,
            failed: HashMap::new(),
        }
    }

    fn deliver(
        &mut self,
        target: &NotifyPlan,
        line: &str,
        doc: &serde_json::Value,
    ) -> Result<(), String> {
        match target {
            NotifyPlan::Log => {
                (self.log)(line);
                Ok(())
            }
            NotifyPlan::File(path) => {
                let file = match self.files.get_mut(path) {
                    Some(f) => f,
                    None => {
                        let f = OpenOptions::new()
                            .create(true)
                            .append(true)
                            .open(path)
                            .map_err(|e| e.to_string())?;
                        self.files.entry(path.clone()).or_insert(f)
                    }
                };
                writeln!(file, "{doc}").map_err(|e| e.to_string())
            }
            NotifyPlan::Webhook(url) => self
                .agent
                .post(url)
                .header("Content-Type", "application/json")
                .send(doc.to_string())
                .map(|_| ())
                .map_err(|e| e.to_string()),
        }
    }

    /// A summary of failed deliveries, one line per target; empty when all went through.
    pub fn failures(&self) -> Vec<String> {
        let mut lines: Vec<String> = self
            .failed
            .iter()
            .map(|(target, (n, first))| {
                format!("{n} alert deliveries to {target} failed; first error: {first}")
            })
            .collect();
        lines.sort();
        lines
    }
}

fn describe(target: &NotifyPlan) -> String {
    match target {
        NotifyPlan::Log => "log".into(),
        NotifyPlan::File(p) => format!("file({})", p.display()),
        NotifyPlan::Webhook(u) => format!("webhook({u})"),
    }
}

impl Sink for Notifier {
    fn problems(&self) -> Vec<String> {
        self.failures()
    }

    fn batch(&mut self, view: &BatchView<'_>) -> std::io::Result<()> {
        for f in &view.outcome.fired {
            let plan = &view.plan.alerts[f.index];
            if plan.notify.is_empty() {
                continue;
            }
            let key = view.key_names.name(f.key);
            let i = (f.row - view.chunk.first_row) as usize;
            let doc = alert_json(view.plan, view.outcome, i, f, key);
            let line = format!(
                "ALERT {} {} key={} at {} (score {:.3}, held {} event{} since {}{})",
                f.severity,
                f.alert,
                if key.is_empty() { "-" } else { key },
                format_rfc3339(f.ts),
                f.score,
                f.events,
                if f.events == 1 { "" } else { "s" },
                format_rfc3339(f.since),
                if f.suppressed > 0 {
                    format!(", {} suppressed before", f.suppressed)
                } else {
                    String::new()
                },
            );
            for target in plan.notify.clone() {
                match self.deliver(&target, &line, &doc) {
                    Ok(()) => self.delivered += 1,
                    Err(e) => {
                        let entry = self.failed.entry(describe(&target)).or_insert((0, e));
                        entry.0 += 1;
                    }
                }
            }
        }
        Ok(())
    }

    fn finish(&mut self) -> std::io::Result<()> {
        for f in self.files.values_mut() {
            f.flush()?;
        }
        Ok(())
    }
}
