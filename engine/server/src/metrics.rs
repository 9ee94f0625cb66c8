//! The service's Prometheus metrics (`GET /metrics`), in the OpenMetrics text format.

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

/// Every metric the service keeps.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// Events accepted and evaluated.
    pub events_in: Counter,
    /// Requests refused (bad input, limits).
    pub requests_refused: Counter,
    /// Anomalous judgements, per ensemble and severity.
    pub anomalies: Family<AnomalyLabels, Counter>,
    /// Alerts fired, per alert and severity.
    pub alerts: Family<AlertLabels, Counter>,
    /// Time to evaluate one request's events, seconds.
    pub detection_time: Histogram,
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
        Metrics {
            registry,
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

    /// The text exposition.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}
