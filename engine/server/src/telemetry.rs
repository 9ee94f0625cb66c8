//! The service's logs and traces, from its configuration: log lines as text or JSON
//! (`monitoring.log_format`), and with `monitoring.enable_jaeger` every request's span
//! (the engine's evaluation and the store's write inside it) exported over OTLP/HTTP to
//! Jaeger or any OpenTelemetry collector.
//!
//! Spans go out in batches from a thread of the exporter's own, so a collector that is
//! slow or down costs requests nothing; what is left is sent when the service stops
//! ([`Telemetry::shutdown`]).

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig as _;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::Layer as _;

use crate::config::{LogFormat, Monitoring};

/// The service's name in traces.
const SERVICE: &str = "adr";

/// The trace exporter, while the service runs.
#[derive(Debug, Default)]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Sends the spans not sent yet and stops the exporter.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        if let Some(provider) = self.provider.take() {
            if let Err(e) = provider.shutdown() {
                eprintln!("warning: traces not all exported: {e}");
            }
        }
    }
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Sets the process's logs (and traces, when asked) up. `filter` is the default log
/// filter (`ADR_LOG` overrides it). Call it once, outside any async runtime: the
/// exporter's HTTP client runs one of its own.
///
/// # Errors
///
/// The trace exporter cannot be built (an endpoint that is no URL).
pub fn init(monitoring: &Monitoring, filter: &str) -> Result<Telemetry, String> {
    use std::io::IsTerminal;
    let provider = if monitoring.enable_jaeger {
        let mut exporter = opentelemetry_otlp::SpanExporter::builder().with_http();
        if let Some(endpoint) = &monitoring.otlp_endpoint {
            exporter = exporter.with_endpoint(endpoint);
        }
        let exporter = exporter
            .build()
            .map_err(|e| format!("cannot export traces: {e}"))?;
        Some(
            SdkTracerProvider::builder()
                .with_batch_exporter(exporter)
                .with_resource(
                    opentelemetry_sdk::Resource::builder()
                        .with_service_name(SERVICE)
                        .build(),
                )
                .build(),
        )
    } else {
        None
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("ADR_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(filter));
    let lines = match monitoring.log_format {
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_target(false)
            .with_ansi(std::io::stderr().is_terminal())
            .boxed(),
        // Without the formatter's own `timestamp`: the seed's field of that name, on
        // each alert, is the event's time, and a key twice is no JSON a collector
        // takes; collectors stamp each line as they read it.
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .without_time()
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .boxed(),
    };
    let traces = provider
        .as_ref()
        .map(|p| tracing_opentelemetry::layer().with_tracer(p.tracer(SERVICE)));
    tracing_subscriber::registry()
        .with(filter)
        .with(lines)
        .with(traces)
        .try_init()
        .map_err(|e| format!("cannot set the logs up: {e}"))?;
    Ok(Telemetry { provider })
}
