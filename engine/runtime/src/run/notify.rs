//! Notification targets of fired alerts: `log` (a line on standard error), `file("path")`
//! (JSON lines appended) and `webhook("url")` (a JSON POST).
//!
//! A delivery that fails is counted and reported once per target, and the alert is still
//! on the run's alert output: a broken target loses no alert. Webhooks are delivered off
//! the event path, each through its own bounded queue with retries and a circuit breaker
//! ([`outbox`](super::outbox)): a target that never answers costs the run nothing but the
//! grace period at its end.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::PathBuf;

use super::outbox::{DeliveryStats, Policy, Target, Webhook};
use super::sinks::alert_json;
use super::{BatchView, Sink};
use crate::io::timestamp::format_rfc3339;
use crate::rules::plan::NotifyPlan;

/// Which targets a notifier may deliver to: a service whose rules come from many authors
/// (uploads) keeps them from writing its files or posting to any host they like.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allowed {
    /// Whether `file("path")` targets are written.
    pub files: bool,
    /// The hosts webhooks may go to (`host`: any port; `host:port`: that one); `None`:
    /// any host.
    pub webhook_hosts: Option<Vec<String>>,
}

impl Default for Allowed {
    /// Everything: what `adr run` does with the rules of the person running it.
    fn default() -> Self {
        Allowed {
            files: true,
            webhook_hosts: None,
        }
    }
}

impl Allowed {
    /// Every target of `plan`'s alerts this forbids, as `alert NAME: why`.
    pub fn refusals(&self, plan: &crate::rules::plan::Plan) -> Vec<String> {
        plan.alerts
            .iter()
            .flat_map(|alert| {
                alert
                    .notify
                    .iter()
                    .filter_map(|t| self.check(t).err())
                    .map(|why| format!("alert `{}`: {why}", alert.name))
            })
            .collect()
    }

    /// Whether `target` may be delivered to; why not.
    ///
    /// # Errors
    ///
    /// What forbids it, for the person who wrote the rule.
    pub fn check(&self, target: &NotifyPlan) -> Result<(), String> {
        match target {
            NotifyPlan::Log => Ok(()),
            NotifyPlan::File(path) if !self.files => Err(format!(
                "file({}): this service writes no files for rules",
                path.display()
            )),
            NotifyPlan::File(_) => Ok(()),
            NotifyPlan::Webhook(url) => {
                let Some(hosts) = &self.webhook_hosts else {
                    return Ok(());
                };
                let uri: ureq::http::Uri = url
                    .parse()
                    .map_err(|e| format!("webhook({url}): not a URL: {e}"))?;
                let host = uri.host().unwrap_or_default().to_ascii_lowercase();
                let port = uri.port_u16();
                let allowed = hosts.iter().any(|entry| {
                    let entry = entry.to_ascii_lowercase();
                    match entry
                        .rsplit_once(':')
                        .and_then(|(h, p)| Some((h, p.parse::<u16>().ok()?)))
                    {
                        Some((h, p)) => h == host && port == Some(p),
                        None => entry == host,
                    }
                });
                if allowed {
                    Ok(())
                } else if hosts.is_empty() {
                    Err(format!(
                        "webhook({url}): this service allows no webhook hosts"
                    ))
                } else {
                    Err(format!(
                        "webhook({url}): host `{host}` is not one this service may post to ({})",
                        hosts.join(", ")
                    ))
                }
            }
        }
    }
}

/// Delivers fired alerts to their rules' targets.
pub struct Notifier {
    files: HashMap<PathBuf, File>,
    webhooks: HashMap<String, Target>,
    policy: Policy,
    allowed: Allowed,
    log: Box<dyn FnMut(&str) + Send>,
    /// Deliveries made to log and file targets.
    pub delivered: u64,
    /// Log and file deliveries that failed, with the first error of each target.
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
        Self::with_policy(log, Policy::default())
    }

    /// The same, delivering webhooks as `policy` says.
    pub fn with_policy(log: impl FnMut(&str) + Send + 'static, policy: Policy) -> Self {
        Notifier {
            files: HashMap::new(),
            webhooks: HashMap::new(),
            policy,
            allowed: Allowed::default(),
            log: Box::new(log),
            delivered: 0,
            failed: HashMap::new(),
        }
    }

    /// Delivers only to the targets `allowed` allows; the others count as failed
    /// deliveries, with why.
    #[must_use]
    pub fn restrict(mut self, allowed: Allowed) -> Self {
        self.allowed = allowed;
        self
    }

    /// What happened to each webhook's deliveries.
    pub fn webhook_stats(&self) -> Vec<DeliveryStats> {
        let mut stats: Vec<_> = self.webhooks.values().map(Target::stats).collect();
        stats.sort_by(|a, b| a.target.cmp(&b.target));
        stats
    }

    fn deliver(
        &mut self,
        target: &NotifyPlan,
        line: &str,
        doc: &serde_json::Value,
    ) -> Result<(), String> {
        self.allowed.check(target)?;
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
            NotifyPlan::Webhook(url) => {
                let target = match self.webhooks.get_mut(url) {
                    Some(t) => t,
                    None => {
                        let webhook = Webhook::new(url.clone(), self.policy.timeout);
                        let t = Target::start(describe(target), webhook, self.policy)
                            .map_err(|e| format!("cannot start its delivery thread: {e}"))?;
                        self.webhooks.entry(url.clone()).or_insert(t)
                    }
                };
                target.offer(doc.to_string());
                Ok(())
            }
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
        lines.extend(
            self.webhook_stats()
                .iter()
                .filter_map(DeliveryStats::problem),
        );
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

    fn deliveries(&self) -> Vec<DeliveryStats> {
        self.webhook_stats()
    }

    fn batch(&mut self, view: &BatchView<'_>) -> std::io::Result<()> {
        for f in &view.outcome.fired {
            let plan = &view.plan.alerts[f.index];
            if plan.notify.is_empty() {
                continue;
            }
            let key = view.key_names.name(f.key);
            let i = (f.row - view.chunk.first_row) as usize;
            let doc = alert_json(view.plan, view.outcome, i, f, view.key_names);
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
        // Every target's grace period runs at once: finishing costs one, not one each.
        std::thread::scope(|scope| {
            for target in self.webhooks.values_mut() {
                scope.spawn(|| target.finish());
            }
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhooks_go_only_to_the_hosts_allowed_and_files_only_when_allowed() {
        let allowed = Allowed {
            files: false,
            webhook_hosts: Some(vec!["Hooks.Example.com".into(), "127.0.0.1:9000".into()]),
        };
        let hook = |u: &str| allowed.check(&NotifyPlan::Webhook(u.into()));
        assert!(hook("https://hooks.example.com/a").is_ok());
        assert!(hook("http://HOOKS.example.com:8080/a").is_ok());
        assert!(hook("http://127.0.0.1:9000/x").is_ok());
        assert!(hook("http://127.0.0.1:9001/x").is_err());
        assert!(hook("http://127.0.0.1/x").is_err());
        assert!(hook("http://hooks.example.com.evil.net/").is_err());
        assert!(hook("http://evil.net/?hooks.example.com").is_err());
        assert!(hook("http://user@evil.net/").is_err());
        assert!(hook("not a url").is_err());
        assert!(allowed.check(&NotifyPlan::Log).is_ok());
        let err = allowed
            .check(&NotifyPlan::File("/etc/passwd".into()))
            .unwrap_err();
        assert!(err.contains("writes no files"), "{err}");
        let none = Allowed {
            files: true,
            webhook_hosts: Some(Vec::new()),
        };
        assert!(none
            .check(&NotifyPlan::Webhook("http://a/".into()))
            .is_err());
        assert!(Allowed::default()
            .check(&NotifyPlan::Webhook("http://a/".into()))
            .is_ok());
    }
}
