//! The service's Prometheus metrics (`GET /metrics`), in the OpenMetrics text format.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Mutex, PoisonError};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// An anomaly's labels: the ensemble that judged it and the severity it gave.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AnomalyLabels {
    /// The ensemble.
    pub detector: String,
    /// Its severity.
    pub severity: String,
}

/// A fired alert's labels.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AlertLabels {
    /// The alert.
    pub alert: String,
    /// Its severity.
    pub severity: String,
}

/// Latencies kept for `/detectors/stats`' percentiles: the most recent requests.
const RECENT: usize = 4096;

/// What `/detectors/stats` reports, kept beside the Prometheus families (a family cannot
/// be read back whole).
#[derive(Debug, Default)]
struct Tallies {
    /// Per ensemble, per severity.
    anomalies: BTreeMap<String, BTreeMap<String, u64>>,
    /// Per alert, per severity.
    alerts: BTreeMap<String, BTreeMap<String, u64>>,
    /// The last requests' evaluation times, seconds.
    latencies: VecDeque<f64>,
}

/// Every metric the service keeps.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    tallies: Mutex<Tallies>,
    /// Events accepted and evaluated.
    pub events_in: Counter,
    /// Requests refused (bad input, limits).
    pub requests_refused: Counter,
    /// Anomalous judgements, per ensemble and severity (count with [`Metrics::anomalies`]).
    anomalies: Family<AnomalyLabels, Counter>,
    /// Alerts fired, per alert and severity (count with [`Metrics::alert`]).
    alerts: Family<AlertLabels, Counter>,
    /// Time to evaluate one request's events, seconds (record with [`Metrics::detected`]).
    detection_time: Histogram,
    /// Time to store one batch's alerts, seconds.
    pub store_write_time: Histogram,
    /// Failed store writes.
    pub store_errors: Counter,
    /// Rule sets swapped in since the start.
    pub reload_generation: Gauge,
    /// Reloads refused since the start.
    pub reload_failures: Gauge,
    /// Detector failures (a plugin erring or panicking for a key).
    pub detector_failures: Counter,
    /// Time to take and store one checkpoint, seconds.
    pub checkpoint_time: Histogram,
    /// Alerts to Redis: published, dropped, errors.
    pub redis: crate::redis_out::RedisCounters,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Metrics {
        let mut registry = Registry::default();
        let events_in = Counter::default();
        registry.register(
            "events_in",
            "Events accepted and evaluated",
            events_in.clone(),
        );
        let requests_refused = Counter::default();
        registry.register(
            "requests_refused",
            "Requests refused: malformed input, limits, refused events",
            requests_refused.clone(),
        );
        let anomalies = Family::<AnomalyLabels, Counter>::default();
        registry.register(
            "anomalies_detected",
            "Anomalous judgements, per ensemble (detector) and severity",
            anomalies.clone(),
        );
        let alerts = Family::<AlertLabels, Counter>::default();
        registry.register(
            "alerts",
            "Alerts fired, per alert and severity",
            alerts.clone(),
        );
        // 1 µs to about 16 s.
        let detection_time = Histogram::new(exponential_buckets(1e-6, 2.0, 24));
        registry.register(
            "detection_time_seconds",
            "Time to evaluate one request's events",
            detection_time.clone(),
        );
        let store_write_time = Histogram::new(exponential_buckets(1e-6, 2.0, 24));
        registry.register(
            "storage_write_seconds",
            "Time to store one batch's alerts",
            store_write_time.clone(),
        );
        let store_errors = Counter::default();
        registry.register(
            "storage_errors",
            "Failed store writes",
            store_errors.clone(),
        );
        let reload_generation = Gauge::default();
        registry.register(
            "reload_generation",
            "Rule sets swapped in since the start",
            reload_generation.clone(),
        );
        let reload_failures = Gauge::default();
        registry.register(
            "reload_failures",
            "Reloads refused since the start",
            reload_failures.clone(),
        );
        let detector_failures = Counter::default();
        registry.register(
            "detector_failures",
            "Detector failures for a key (an error or a panic in a plugin)",
            detector_failures.clone(),
        );
        let checkpoint_time = Histogram::new(exponential_buckets(1e-5, 2.0, 24));
        registry.register(
            "checkpoint_seconds",
            "Time to take and store one checkpoint of the engine's state",
            checkpoint_time.clone(),
        );
        let redis = crate::redis_out::RedisCounters::default();
        registry.register(
            "redis_published",
            "Alerts published to Redis (channel and stream)",
            redis.published.clone(),
        );
        registry.register(
            "redis_dropped",
            "Alerts not published to Redis: it was down or too slow (they are stored)",
            redis.dropped.clone(),
        );
        registry.register(
            "redis_errors",
            "Failed Redis connections and pipelines",
            redis.errors.clone(),
        );
        Metrics {
            registry,
            checkpoint_time,
            redis,
            tallies: Mutex::new(Tallies::default()),
            events_in,
            requests_refused,
            anomalies,
            alerts,
            detection_time,
            store_write_time,
            store_errors,
            reload_generation,
            reload_failures,
            detector_failures,
        }
    }

    fn tallies(&self) -> std::sync::MutexGuard<'_, Tallies> {
        self.tallies.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Counts `n` anomalous judgements of `ensemble` at `severity`.
    pub fn anomalies(&self, ensemble: &str, severity: &str, n: u64) {
        self.anomalies
            .get_or_create(&AnomalyLabels {
                detector: ensemble.to_owned(),
                severity: severity.to_owned(),
            })
            .inc_by(n);
        *self
            .tallies()
            .anomalies
            .entry(ensemble.to_owned())
            .or_default()
            .entry(severity.to_owned())
            .or_default() += n;
    }

    /// Counts an alert fired.
    pub fn alert(&self, alert: &str, severity: &str) {
        self.alerts
            .get_or_create(&AlertLabels {
                alert: alert.to_owned(),
                severity: severity.to_owned(),
            })
            .inc();
        *self
            .tallies()
            .alerts
            .entry(alert.to_owned())
            .or_default()
            .entry(severity.to_owned())
            .or_default() += 1;
    }

    /// Records one request's evaluation time.
    pub fn detected(&self, seconds: f64) {
        self.detection_time.observe(seconds);
        let mut tallies = self.tallies();
        if tallies.latencies.len() == RECENT {
            tallies.latencies.pop_front();
        }
        tallies.latencies.push_back(seconds);
    }

    /// What `/detectors/stats` shows: events, anomalies per ensemble and severity, alerts,
    /// and the percentiles of the last requests' evaluation times.
    pub fn stats(&self) -> serde_json::Value {
        let tallies = self.tallies();
        let mut sorted: Vec<f64> = tallies.latencies.iter().copied().collect();
        sorted.sort_by(f64::total_cmp);
        let percentile = |p: f64| -> serde_json::Value {
            if sorted.is_empty() {
                return serde_json::Value::Null;
            }
            // The nearest rank.
            let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
            serde_json::json!(sorted[rank.clamp(1, sorted.len()) - 1])
        };
        serde_json::json!({
            "events": self.events_in.get(),
            "requests_refused": self.requests_refused.get(),
            "detector_failures": self.detector_failures.get(),
            "ensembles": tallies.anomalies.iter().map(|(name, by)| (name.clone(), serde_json::json!({
                "anomalies": by.values().sum::<u64>(),
                "by_severity": by,
            }))).collect::<serde_json::Map<_, _>>(),
            "alerts": tallies.alerts,
            "detection_seconds": {
                "requests": sorted.len(),
                "p50": percentile(50.0),
                "p95": percentile(95.0),
                "p99": percentile(99.0),
                "max": sorted.last(),
            },
        })
    }

    /// The text exposition.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}
