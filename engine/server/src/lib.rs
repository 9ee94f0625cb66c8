//! `adr serve`: the engine as a service.
//!
//! One more embedder of the engine, built on its public embedding API
//! (`adr_engine::embed`) and nothing private: one [`Engine`](adr_engine::embed::Engine)
//! runs the configured rule files (watched, hot-reloaded) over every event posted, on a
//! thread of its own ([`runner`]); its alerts go to an embedded SQLite store ([`store`])
//! before the request that fired them is answered; models trained through the seed's
//! `/detectors/*` endpoints ([`models`]) are stored beside them; the HTTP API ([`api`]) and Prometheus
//! metrics ([`metrics`]) are axum on tokio; the configuration ([`config`]) is the seed's
//! `config.yaml`, its environment variables, then flags.
//!
//! A WebSocket ([`ws`]) takes events and answers each with its result, or streams the
//! alerts to subscribers. Calls that change something need an API token ([`auth`]).
//!
//! Rule files uploaded through the API ([`uploads`]) are checked, then hot-swapped
//! beside the configured ones.
//!
//! The store is SQLite in the data folder, or PostgreSQL when `database` is configured
//! ([`store`]); with `redis` configured, every stored alert is also published to Redis,
//! and every model's current state cached there ([`redis_out`]). The engine's state is
//! checkpointed into the store and restored at start ([`checkpoints`]).
//!
//! Requests' events are read where they arrive ([`intake`]) and the requests waiting are
//! evaluated together (`docs/decisions/0023-serve-throughput.md`); the accept loop is
//! ours ([`listen`]), to bound how long a client may take to send a request.

pub mod api;
pub mod auth;
pub mod checkpoints;
pub mod config;
pub mod intake;
pub mod listen;
pub mod metrics;
pub mod models;
pub mod redis_out;
pub mod runner;
pub mod state_writes;
pub mod store;
pub mod telemetry;
pub mod uploads;
pub mod ws;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use adr_engine::run::RunSummary;

use crate::api::AppState;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::runner::Runner;
use crate::store::Store;

/// Why the service stopped or did not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// The store cannot be opened.
    #[error(transparent)]
    Store(#[from] store::StoreError),
    /// The uploads folder cannot be prepared.
    #[error("cannot prepare the uploaded rules folder {}: {source}", path.display())]
    Uploads {
        /// The folder.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The Redis settings cannot be used.
    #[error("redis: {0}")]
    Redis(String),
    /// The engine did not start.
    #[error(transparent)]
    Engine(#[from] runner::StartError),
    /// The address cannot be listened on.
    #[error("cannot listen on {address}: {source}")]
    Listen {
        /// host:port.
        address: String,
        /// Why.
        source: std::io::Error,
    },
    /// Serving failed.
    #[error("serving failed: {0}")]
    Serve(std::io::Error),
    /// The engine failed to finish.
    #[error("the engine did not finish cleanly: {0}")]
    Finish(String),
}

/// Where the service listens, once it does.
#[derive(Debug, Clone, Copy)]
pub struct Listening {
    /// The API (and `/metrics`).
    pub api: SocketAddr,
    /// `/metrics` alone, when `monitoring.prometheus_port` is set.
    pub metrics: Option<SocketAddr>,
}

async fn bind(host: &str, port: u16) -> Result<tokio::net::TcpListener, ServeError> {
    tokio::net::TcpListener::bind((host, port))
        .await
        .map_err(|source| ServeError::Listen {
            address: format!("{host}:{port}"),
            source,
        })
}

/// Runs the service until `shutdown` completes: opens the store (applying retention),
/// starts the engine, listens, calls `listening` with the addresses, serves; then stops
/// taking requests, lets those in flight finish, and stops the engine.
///
/// # Errors
///
/// A [`ServeError`].
pub async fn serve(
    config: Config,
    listening: impl FnOnce(Listening),
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<RunSummary, ServeError> {
    // The PostgreSQL client blocks (on a runtime of its own): never on an async worker.
    let store = {
        let config = config.clone();
        tokio::task::spawn_blocking(move || open_store(&config))
            .await
            .map_err(|e| runner::StartError(e.to_string()))??
    };
    let uploads_dir = config.storage.data_dir.join("rules");
    let uploads = uploads::Uploads::open(&uploads_dir, &config.rules).map_err(|source| {
        ServeError::Uploads {
            path: uploads_dir,
            source,
        }
    })?;
    let metrics = Arc::new(Metrics::new());
    let redis = match &config.redis {
        Some(redis) => Some(Arc::new(
            redis_out::RedisOut::start(redis, metrics.redis.clone()).map_err(ServeError::Redis)?,
        )),
        None => None,
    };
    let (alerts, _) = tokio::sync::broadcast::channel(config.limits.subscriber_queue);
    let runner = {
        let outputs = runner::Outputs {
            store: Arc::clone(&store),
            metrics: Arc::clone(&metrics),
            alerts: alerts.clone(),
            redis: redis.clone(),
        };
        let (config, uploads) = (config.clone(), uploads.clone());
        tokio::task::spawn_blocking(move || Runner::start(&config, uploads, outputs))
            .await
            .map_err(|e| runner::StartError(e.to_string()))??
    };
    let api_listener = bind(&config.api.host, config.api.port).await?;
    let metrics_listener = match config.monitoring.prometheus_port {
        Some(port) if config.monitoring.enable_prometheus => {
            Some(bind(&config.api.host, port).await?)
        }
        _ => None,
    };
    let local = |l: &tokio::net::TcpListener| l.local_addr().map_err(ServeError::Serve);
    listening(Listening {
        api: local(&api_listener)?,
        metrics: metrics_listener.as_ref().map(local).transpose()?,
    });
    let models = models::Models::new(
        runner.registry(),
        Arc::clone(&store),
        config.limits.max_batch_rows,
        redis.clone(),
    )
    .map_err(ServeError::Serve)?;
    let state = Arc::new(AppState {
        config,
        runner,
        uploads,
        redis,
        store,
        metrics,
        models,
        alerts,
    });
    let (stop_metrics, metrics_stopped) = tokio::sync::oneshot::channel::<()>();
    let header_read = Duration::from_secs(u64::from(state.config.limits.read_timeout_seconds));
    let metrics_task = metrics_listener.map(|listener| {
        let router = api::metrics_router(Arc::clone(&state));
        tokio::spawn(listen::serve(listener, router, header_read, async {
            let _ = metrics_stopped.await;
        }))
    });
    listen::serve(
        api_listener,
        api::router(Arc::clone(&state)),
        header_read,
        shutdown,
    )
    .await;
    let _ = stop_metrics.send(());
    if let Some(task) = metrics_task {
        let _ = task.await;
    }
    state.runner.stop().await.map_err(ServeError::Finish)
}

/// Opens the store `config` names, applies retention, and warns when no token exists.
fn open_store(config: &Config) -> Result<Arc<Store>, ServeError> {
    let store = Store::from_config(config)?;
    apply_retention(&store, config.storage.retention_days)?;
    if config.auth.required && store.token_count()? == 0 {
        tracing::warn!(
            "no API token yet: every call that changes something is refused; make one with `adr serve --new-token NAME`"
        );
    }
    tracing::info!("store: {} at {}", store.kind(), store.location());
    Ok(Arc::new(store))
}

/// Deletes alerts older than `days` before the newest one stored.
fn apply_retention(store: &Store, days: u32) -> Result<(), ServeError> {
    if days == 0 {
        return Ok(());
    }
    if let Some(newest) = store.newest_time()? {
        let cutoff = newest.saturating_sub(i64::from(days).saturating_mul(86_400_000_000_000));
        let purged = store.purge_before(cutoff)?;
        if purged > 0 {
            tracing::info!("retention: {purged} alerts older than {days} days deleted");
        }
    }
    Ok(())
}

/// Completes at SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
