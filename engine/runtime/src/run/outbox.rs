//! Deliveries to slow or failing targets, off the event path.
//!
//! A webhook that accepts a connection and never answers used to hold the scoring loop for
//! its whole timeout on every alert: a two-second run took minutes. Each target now has a
//! bounded queue and a worker thread of its own; the event path only offers a message to
//! the queue and never waits.
//!
//! - **Retries** with exponential backoff ([`Policy::retries`], from
//!   [`Policy::backoff`]), for errors that a retry can cure (connection errors, timeouts,
//!   5xx and 429 answers); a 4xx answer is final. Once the run is finishing, each message
//!   still queued gets one try.
//! - **Circuit breaker**: after [`Policy::trip_after`] deliveries in a row have failed, the
//!   target is not tried for [`Policy::open_for`]; messages offered meanwhile are dropped
//!   and counted. Then one delivery is tried: success closes the circuit, failure opens it
//!   again.
//! - **Drops** are counted, never silent: a full queue, an open circuit, or the end of the
//!   grace period.
//! - **Finish** waits for the queues to drain while the target keeps answering: at most
//!   [`Policy::grace`], and not at all once a try has waited longer than
//!   [`Policy::stall`] (a target that does not answer would only hold the run's end). What
//!   is left then is dropped (counted), so a run's end never depends on a target.
//!
//! The alert output itself is written by the run, not through this: whatever a target
//! does, every alert is in it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How a target is retried, tripped and drained.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Policy {
    /// Messages waiting per target; past it new ones are dropped. Default 1024.
    pub queue: usize,
    /// Tries after the first failed one. Default 3.
    pub retries: u32,
    /// Wait before the first retry; doubled for each next one. Default 100 ms.
    pub backoff: Duration,
    /// Deliveries in a row that fail (after their retries) before the circuit opens.
    /// Default 5.
    pub trip_after: u32,
    /// How long an open circuit stays open. Default 30 s.
    pub open_for: Duration,
    /// One try's time limit. Default 5 s.
    pub timeout: Duration,
    /// How long finishing waits for the queues to drain. Default 5 s.
    pub grace: Duration,
    /// Finishing stops waiting for a target whose current try has waited this long.
    /// Default 250 ms.
    pub stall: Duration,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            queue: 1024,
            retries: 3,
            backoff: Duration::from_millis(100),
            trip_after: 5,
            open_for: Duration::from_secs(30),
            timeout: Duration::from_secs(5),
            grace: Duration::from_secs(5),
            stall: Duration::from_millis(250),
        }
    }
}

/// What happened to one target's deliveries.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct DeliveryStats {
    /// The target, as rules write it: `webhook(http://...)`.
    pub target: String,
    /// Messages delivered.
    pub delivered: u64,
    /// Tries repeated after a failure.
    pub retried: u64,
    /// Messages that failed every try.
    pub failed: u64,
    /// Messages never tried: queue full, circuit open, or left at the end of the grace
    /// period.
    pub dropped: u64,
    /// Times the circuit opened.
    pub circuit_opened: u64,
    /// The first error seen, if any.
    pub first_error: Option<String>,
}

impl DeliveryStats {
    /// One line for a run's summary; `None` when every message was delivered.
    pub fn problem(&self) -> Option<String> {
        if self.failed == 0 && self.dropped == 0 && self.retried == 0 {
            return None;
        }
        Some(format!(
            "{}: {} delivered, {} retried, {} failed, {} dropped, circuit opened {} time{}{}",
            self.target,
            self.delivered,
            self.retried,
            self.failed,
            self.dropped,
            self.circuit_opened,
            if self.circuit_opened == 1 { "" } else { "s" },
            self.first_error
                .as_ref()
                .map(|e| format!("; first error: {e}"))
                .unwrap_or_default()
        ))
    }
}

/// Why one try failed, and whether another may succeed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TryError {
    /// What went wrong.
    pub message: String,
    /// Whether to try again (a timeout, a refused connection, a 5xx answer).
    pub retry: bool,
}

/// Something that delivers one message, once. Implemented for webhooks; tests use others.
pub trait Deliver: Send + 'static {
    /// Delivers `message`.
    ///
    /// # Errors
    ///
    /// A [`TryError`] saying whether a retry may help.
    fn deliver(&mut self, message: &str) -> Result<(), TryError>;
}

/// Counters shared between a target's worker and the run.
#[derive(Debug, Default)]
struct Counters {
    delivered: AtomicU64,
    retried: AtomicU64,
    failed: AtomicU64,
    /// Dropped before the queue (full, closed).
    dropped: AtomicU64,
    /// Dropped by the worker (circuit open, grace period over).
    worker_dropped: AtomicU64,
    circuit_opened: AtomicU64,
    first_error: Mutex<Option<String>>,
    /// Set when finishing: past it the worker stops trying.
    stop_after: Mutex<Option<Instant>>,
    /// When the try under way began, if one is.
    trying_since: Mutex<Option<Instant>>,
}

impl Counters {
    fn dropped_by_worker(&self) -> u64 {
        self.worker_dropped.load(Ordering::Relaxed)
    }

    fn note_error(&self, message: &str) {
        let mut first = self.first_error.lock().unwrap_or_else(|e| e.into_inner());
        first.get_or_insert_with(|| message.to_owned());
    }

    /// Whether a try has been waiting longer than `stall`.
    fn stalled(&self, now: Instant, stall: Duration) -> bool {
        self.trying_since
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some_and(|t| now.saturating_duration_since(t) > stall)
    }

    fn stopped(&self, now: Instant) -> bool {
        self.stop_after
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some_and(|t| now >= t)
    }

    /// Waits `d` before a retry; false, without waiting, once the run is finishing: what
    /// is still queued then gets one try each, so that a failing target cannot hold the
    /// end of a run with its backoff.
    fn sleep(&self, d: Duration) -> bool {
        if self
            .stop_after
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some()
        {
            return false;
        }
        std::thread::sleep(d);
        self.stop_after
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_none()
    }
}

/// One target's queue and worker.
#[derive(Debug)]
pub struct Target {
    name: String,
    sender: Option<SyncSender<String>>,
    counters: Arc<Counters>,
    worker: Option<JoinHandle<()>>,
    grace: Duration,
    stall: Duration,
    /// Messages taken into the queue.
    accepted: u64,
    /// The counts when finishing ended, with what was left undelivered counted as dropped.
    last: Option<DeliveryStats>,
}

impl Target {
    /// Starts a worker delivering through `deliver`, as `policy` says.
    ///
    /// # Errors
    ///
    /// The worker thread cannot be started.
    pub fn start(name: String, deliver: impl Deliver, policy: Policy) -> std::io::Result<Target> {
        let (sender, receiver) = std::sync::mpsc::sync_channel(policy.queue.max(1));
        let counters = Arc::new(Counters::default());
        let shared = Arc::clone(&counters);
        let worker = std::thread::Builder::new()
            .name(format!("adr-notify {name}"))
            .spawn(move || work(receiver, deliver, policy, &shared))?;
        Ok(Target {
            name,
            sender: Some(sender),
            counters,
            worker: Some(worker),
            grace: policy.grace,
            stall: policy.stall,
            accepted: 0,
            last: None,
        })
    }

    /// Queues `message`; never waits. A full queue drops it (counted).
    pub fn offer(&mut self, message: String) {
        let Some(sender) = &self.sender else {
            self.counters.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        };
        match sender.try_send(message) {
            Ok(()) => self.accepted += 1,
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.counters.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Closes the queue and waits at most the grace period for the worker to deliver what
    /// is queued; what is left then is dropped (counted) and the worker is left to end on
    /// its own (an answer that never comes is not waited for).
    pub fn finish(&mut self) {
        let deadline = Instant::now() + self.grace;
        *self
            .counters
            .stop_after
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(deadline);
        self.sender = None;
        if let Some(worker) = self.worker.take() {
            loop {
                let now = Instant::now();
                if worker.is_finished() || now >= deadline || self.counters.stalled(now, self.stall)
                {
                    break;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            if worker.is_finished() {
                let _ = worker.join();
            }
        }
        let mut stats = self.counts();
        let settled = stats.delivered + stats.failed + self.counters.dropped_by_worker();
        stats.dropped += self.accepted.saturating_sub(settled);
        self.last = Some(stats);
    }

    /// The counts so far; after [`finish`](Self::finish), the final ones.
    pub fn stats(&self) -> DeliveryStats {
        self.last.clone().unwrap_or_else(|| self.counts())
    }

    fn counts(&self) -> DeliveryStats {
        let c = &self.counters;
        DeliveryStats {
            target: self.name.clone(),
            delivered: c.delivered.load(Ordering::Relaxed),
            retried: c.retried.load(Ordering::Relaxed),
            failed: c.failed.load(Ordering::Relaxed),
            dropped: c.dropped.load(Ordering::Relaxed) + c.worker_dropped.load(Ordering::Relaxed),
            circuit_opened: c.circuit_opened.load(Ordering::Relaxed),
            first_error: c
                .first_error
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
        }
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        if self.worker.is_some() {
            self.finish();
        }
    }
}

/// The worker: delivers queued messages until the queue closes and drains, or the grace
/// period ends.
fn work(receiver: Receiver<String>, mut deliver: impl Deliver, policy: Policy, c: &Counters) {
    let mut failures_in_a_row = 0u32;
    let mut open_until: Option<Instant> = None;
    while let Ok(message) = receiver.recv() {
        let now = Instant::now();
        if c.stopped(now) || open_until.is_some_and(|t| now < t) {
            c.worker_dropped.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        // Closed, or half open after the wait: one delivery decides.
        let half_open = open_until.take().is_some();
        let mut wait = policy.backoff;
        let mut tries_left = if half_open { 0 } else { policy.retries };
        let outcome = loop {
            *c.trying_since.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
            let tried = deliver.deliver(&message);
            *c.trying_since.lock().unwrap_or_else(|e| e.into_inner()) = None;
            match tried {
                Ok(()) => break Ok(()),
                Err(e) => {
                    c.note_error(&e.message);
                    if !e.retry || tries_left == 0 || !c.sleep(wait) {
                        break Err(());
                    }
                    tries_left -= 1;
                    wait = wait.saturating_mul(2);
                    c.retried.fetch_add(1, Ordering::Relaxed);
                }
            }
        };
        match outcome {
            Ok(()) => {
                c.delivered.fetch_add(1, Ordering::Relaxed);
                failures_in_a_row = 0;
            }
            Err(()) => {
                c.failed.fetch_add(1, Ordering::Relaxed);
                failures_in_a_row += 1;
                if half_open || failures_in_a_row >= policy.trip_after.max(1) {
                    open_until = Some(Instant::now() + policy.open_for);
                    c.circuit_opened.fetch_add(1, Ordering::Relaxed);
                    failures_in_a_row = 0;
                }
            }
        }
    }
}

/// Delivers JSON documents by HTTP POST.
#[derive(Debug)]
pub struct Webhook {
    url: String,
    agent: ureq::Agent,
}

impl Webhook {
    /// Posts to `url`, each try within `timeout`.
    pub fn new(url: String, timeout: Duration) -> Self {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .build()
            .into();
        Webhook { url, agent }
    }
}

impl Deliver for Webhook {
    fn deliver(&mut self, message: &str) -> Result<(), TryError> {
        match self
            .agent
            .post(&self.url)
            .header("Content-Type", "application/json")
            .send(message)
        {
            Ok(_) => Ok(()),
            Err(ureq::Error::StatusCode(code)) => Err(TryError {
                message: format!("the server answered {code}"),
                retry: code >= 500 || code == 429 || code == 408,
            }),
            Err(e) => Err(TryError {
                message: e.to_string(),
                retry: true,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpListener;

    fn quick() -> Policy {
        Policy {
            queue: 16,
            retries: 2,
            backoff: Duration::from_millis(1),
            trip_after: 3,
            open_for: Duration::from_secs(60),
            timeout: Duration::from_millis(300),
            grace: Duration::from_millis(500),
            stall: Duration::from_millis(150),
        }
    }

    /// A local HTTP server answering each request as `answer` says, on its own thread,
    /// for at most `requests` connections.
    fn server(requests: usize, answer: fn(&mut std::net::TcpStream)) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            for stream in listener.incoming().take(requests) {
                let Ok(mut stream) = stream else { break };
                std::thread::spawn(move || {
                    let mut buf = [0u8; 4096];
                    let _ = stream.read(&mut buf);
                    answer(&mut stream);
                });
            }
        });
        format!("http://{addr}/hook")
    }

    fn ok(s: &mut std::net::TcpStream) {
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
    }

    fn error_500(s: &mut std::net::TcpStream) {
        let _ = s.write_all(b"HTTP/1.1 500 Oops\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
    }

    fn never(_: &mut std::net::TcpStream) {
        std::thread::sleep(Duration::from_secs(30));
    }

    fn hang_up(s: &mut std::net::TcpStream) {
        let _ = s.shutdown(std::net::Shutdown::Both);
    }

    fn slow(s: &mut std::net::TcpStream) {
        std::thread::sleep(Duration::from_millis(100));
        ok(s);
    }

    /// Offers `messages` to a webhook at `url`, lets the worker run for `before_finish`,
    /// then finishes.
    fn run_for(
        url: String,
        messages: usize,
        policy: Policy,
        before_finish: Duration,
    ) -> (DeliveryStats, Duration) {
        let mut target = Target::start(
            format!("webhook({url})"),
            Webhook::new(url, policy.timeout),
            policy,
        )
        .unwrap();
        let started = Instant::now();
        for i in 0..messages {
            target.offer(format!("{{\"n\":{i}}}"));
        }
        let offered = started.elapsed();
        assert!(
            offered < Duration::from_millis(50),
            "offering waited {offered:?}"
        );
        std::thread::sleep(before_finish);
        target.finish();
        (target.stats(), started.elapsed())
    }

    fn run(url: String, messages: usize, policy: Policy) -> (DeliveryStats, Duration) {
        run_for(url, messages, policy, Duration::ZERO)
    }

    #[test]
    fn finishing_gives_each_queued_message_one_try_without_backoff() {
        let policy = Policy {
            backoff: Duration::from_secs(10),
            ..quick()
        };
        let (stats, took) = run(server(1000, error_500), 2, policy);
        assert_eq!((stats.failed, stats.retried), (2, 0), "{stats:?}");
        assert!(took < Duration::from_secs(1), "{took:?}");
    }

    #[test]
    fn a_good_target_gets_everything() {
        let (stats, _) = run(server(100, ok), 10, quick());
        assert_eq!(
            (stats.delivered, stats.failed, stats.dropped),
            (10, 0, 0),
            "{stats:?}"
        );
        assert_eq!(stats.problem(), None);
    }

    #[test]
    fn errors_are_retried_then_the_circuit_opens_and_drops_are_counted() {
        let (stats, _) = run_for(
            server(1000, error_500),
            10,
            quick(),
            Duration::from_millis(300),
        );
        // three messages fail with two retries each; the circuit opens; the rest drop
        assert_eq!(
            (
                stats.delivered,
                stats.failed,
                stats.retried,
                stats.circuit_opened,
                stats.dropped
            ),
            (0, 3, 6, 1, 7),
            "{stats:?}"
        );
        let line = stats.problem().unwrap();
        assert!(line.contains("the server answered 500"), "{line}");
    }

    #[test]
    fn targets_that_never_answer_or_hang_up_cost_only_the_grace_period() {
        for (name, answer) in [
            ("never answers", never as fn(&mut _)),
            ("hangs up", hang_up),
        ] {
            let policy = quick();
            let (stats, took) = run(server(1000, answer), 50, policy);
            assert!(took < policy.grace, "{name}: {took:?}");
            assert_eq!(stats.delivered, 0, "{name}");
            assert_eq!(
                stats.failed + stats.dropped,
                50,
                "{name}: every message accounted: {stats:?}"
            );
            if name == "hangs up" {
                assert!(stats.first_error.is_some(), "{name}");
            } else {
                // the first try is still waiting: finishing gave up on it after the stall
                assert!(took < policy.stall * 3, "{name}: {took:?}");
            }
        }
    }

    #[test]
    fn a_slow_target_gets_what_the_grace_period_allows() {
        let policy = Policy {
            grace: Duration::from_millis(350),
            ..quick()
        };
        let (stats, took) = run(server(1000, slow), 20, policy);
        assert!(stats.delivered >= 2 && stats.delivered < 20, "{stats:?}");
        assert_eq!(
            stats.delivered + stats.dropped + stats.failed,
            20,
            "{stats:?}"
        );
        assert!(took < Duration::from_millis(900), "{took:?}");
    }

    #[test]
    fn a_full_queue_drops_instead_of_waiting() {
        let policy = Policy {
            queue: 2,
            ..quick()
        };
        let (stats, _) = run(server(1000, never), 100, policy);
        assert!(stats.dropped >= 97, "{stats:?}");
    }

    #[test]
    fn a_half_open_circuit_closes_on_success() {
        struct Flaky(u32);
        impl Deliver for Flaky {
            fn deliver(&mut self, _: &str) -> Result<(), TryError> {
                self.0 += 1;
                if self.0 <= 1 {
                    Err(TryError {
                        message: "down".into(),
                        retry: true,
                    })
                } else {
                    Ok(())
                }
            }
        }
        let policy = Policy {
            retries: 0,
            trip_after: 1,
            open_for: Duration::from_millis(50),
            ..quick()
        };
        let mut target = Target::start("flaky".into(), Flaky(0), policy).unwrap();
        target.offer("a".into());
        std::thread::sleep(Duration::from_millis(20));
        target.offer("dropped while open".into());
        std::thread::sleep(Duration::from_millis(80));
        target.offer("b".into());
        target.offer("c".into());
        target.finish();
        let s = target.stats();
        assert_eq!(
            (s.failed, s.dropped, s.delivered, s.circuit_opened),
            (1, 1, 2, 1),
            "{s:?}"
        );
    }
}
