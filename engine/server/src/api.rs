//! The HTTP API (`/api/v1`, JSON) and `/metrics`.
//!
//! Every refusal is a JSON document `{"error": {"code": ..., "message": ...}}` with a
//! status that says whose fault it is: 4xx for the request (with a code a program can
//! switch on), 503 when the service cannot take it now.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, JsonRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use adr_engine::io::timestamp::TimeFormat;
use adr_engine::io::InputFormat;

use crate::config::Config;
use crate::intake::Source;
use crate::metrics::Metrics;
use crate::models::{DetectRequest, ModelError, Models, PredictRequest, TrainRequest};
use crate::runner::{rank_named, IngestError, Runner};
use crate::store::{AlertQuery, Store};
use crate::uploads::{Change, UploadError, Uploads};

/// What every handler shares.
#[derive(Debug)]
pub struct AppState {
    /// The configuration in force.
    pub config: Config,
    /// The engine.
    pub runner: Runner,
    /// The uploaded rule files.
    pub uploads: Uploads,
    /// Alerts to Redis, when configured.
    pub redis: Option<Arc<crate::redis_out::RedisOut>>,
    /// The store.
    pub store: Arc<Store>,
    /// The metrics.
    pub metrics: Arc<Metrics>,
    /// The models trained through the API.
    pub models: Models,
    /// Every alert stored, for WebSocket subscribers.
    pub alerts: tokio::sync::broadcast::Sender<Arc<serde_json::Value>>,
}

/// A refusal.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    /// More for a program: `adr check`'s diagnostics for rules that do not check.
    diagnostics: Option<serde_json::Value>,
}

impl ApiError {
    pub(crate) fn new(
        status: StatusCode,
        code: &'static str,
        message: impl Into<String>,
    ) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            diagnostics: None,
        }
    }

    /// The code a program switches on.
    pub fn code(&self) -> &'static str {
        self.code
    }

    /// The message for a person.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut error = json!({"code": self.code, "message": self.message});
        if let Some(diagnostics) = self.diagnostics {
            error["diagnostics"] = diagnostics;
        }
        (self.status, Json(json!({ "error": error }))).into_response()
    }
}

impl From<IngestError> for ApiError {
    fn from(e: IngestError) -> ApiError {
        let (status, code) = match &e {
            IngestError::Input(_) => (StatusCode::BAD_REQUEST, "bad_events"),
            IngestError::TooMany { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "too_many_events"),
            IngestError::Refused(_) => (StatusCode::UNPROCESSABLE_ENTITY, "events_refused"),
            IngestError::Store(_) => (StatusCode::SERVICE_UNAVAILABLE, "store_unavailable"),
            IngestError::Busy => (StatusCode::SERVICE_UNAVAILABLE, "busy"),
            _ => (StatusCode::SERVICE_UNAVAILABLE, "engine_stopped"),
        };
        ApiError::new(status, code, e.to_string())
    }
}

impl From<ModelError> for ApiError {
    fn from(e: ModelError) -> ApiError {
        let (status, code) = match &e {
            ModelError::UnknownDetector(_) => (StatusCode::BAD_REQUEST, "unknown_detector"),
            ModelError::Params(_) => (StatusCode::BAD_REQUEST, "bad_params"),
            ModelError::Rows(_) => (StatusCode::BAD_REQUEST, "bad_rows"),
            ModelError::Detector(_) => (StatusCode::UNPROCESSABLE_ENTITY, "detector_refused"),
            ModelError::NotFound(_) => (StatusCode::NOT_FOUND, "model_not_found"),
            _ => (StatusCode::SERVICE_UNAVAILABLE, "store_unavailable"),
        };
        ApiError::new(status, code, e.to_string())
    }
}

impl From<UploadError> for ApiError {
    fn from(e: UploadError) -> ApiError {
        let (status, code) = match &e {
            UploadError::BadName(_) => (StatusCode::BAD_REQUEST, "bad_rule_name"),
            UploadError::NotFound(_) => (StatusCode::NOT_FOUND, "rule_not_found"),
            UploadError::Invalid { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "rules_invalid"),
            UploadError::Outside(_) => (StatusCode::UNPROCESSABLE_ENTITY, "include_outside"),
            UploadError::Notify(_) => (StatusCode::UNPROCESSABLE_ENTITY, "notify_not_allowed"),
            UploadError::Refused(_) => (StatusCode::CONFLICT, "reload_refused"),
            _ => (StatusCode::SERVICE_UNAVAILABLE, "rules_unwritable"),
        };
        let message = e.to_string();
        let diagnostics = match e {
            UploadError::Invalid { diagnostics, .. } => Some(diagnostics),
            _ => None,
        };
        ApiError {
            diagnostics,
            ..ApiError::new(status, code, message)
        }
    }
}

fn json_body<T>(body: Result<Json<T>, JsonRejection>) -> Result<T, ApiError> {
    body.map(|Json(t)| t).map_err(|e| {
        if timed_out(&e) {
            return ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "body_timeout",
                "the body stopped arriving (limits.read_timeout_seconds)",
            );
        }
        let (status, code) = match e.status() {
            StatusCode::PAYLOAD_TOO_LARGE => (StatusCode::PAYLOAD_TOO_LARGE, "body_too_large"),
            StatusCode::UNSUPPORTED_MEDIA_TYPE => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
            }
            _ => (StatusCode::BAD_REQUEST, "bad_json"),
        };
        ApiError::new(status, code, e.body_text())
    })
}

/// Runs a model operation off the async workers.
async fn blocking<T: Send + 'static>(
    state: &Arc<AppState>,
    work: impl FnOnce(&Models) -> Result<T, ModelError> + Send + 'static,
) -> Result<T, ApiError> {
    let state = Arc::clone(state);
    tokio::task::spawn_blocking(move || work(&state.models))
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))?
        .map_err(ApiError::from)
}

async fn train(
    State(state): State<Arc<AppState>>,
    body: Result<Json<TrainRequest>, JsonRejection>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let request = json_body(body)?;
    let model = blocking(&state, move |m| m.train(&request)).await?;
    Ok((StatusCode::CREATED, Json(model)))
}

async fn detect(
    State(state): State<Arc<AppState>>,
    body: Result<Json<DetectRequest>, JsonRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let request = json_body(body)?;
    Ok(Json(blocking(&state, move |m| m.detect(&request)).await?))
}

async fn predict(
    State(state): State<Arc<AppState>>,
    body: Result<Json<PredictRequest>, JsonRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let request = json_body(body)?;
    // A model used before is in memory: scored here, without a blocking thread.
    let model = match state.models.live(&request.model_id) {
        Some(model) => model,
        None => {
            let id = request.model_id.clone();
            blocking(&state, move |m| m.load_live(&id)).await?
        }
    };
    let (answer, written) = state.models.predict(&model, &request)?;
    if let Some(written) = written {
        written
            .await
            .map_err(|_| ModelError::Store("the model store's writer has stopped".into()))?
            .map_err(ModelError::Store)?;
    }
    Ok(Json(answer))
}

async fn models(State(state): State<Arc<AppState>>) -> Result<Json<serde_json::Value>, ApiError> {
    Ok(Json(blocking(&state, Models::list).await?))
}

async fn delete_model(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    blocking(&state, move |m| m.delete(&id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The service's routes over `state`.
pub fn router(state: Arc<AppState>) -> Router {
    let limit = state.config.limits.max_body_bytes;
    let mut router = Router::new()
        .route("/api/v1/health", get(health))
        .route("/api/v1/events", post(events))
        .route("/api/v1/alerts", get(alerts))
        .route("/api/v1/rules", get(list_rules))
        .route("/api/v1/rules/status", get(rules_status))
        .route("/api/v1/rules/{name}", get(get_rule))
        .route("/api/v1/rules/{name}", put(put_rule))
        .route("/api/v1/rules/{name}", delete(delete_rule))
        .route("/api/v1/plugins", get(plugins))
        .route("/api/v1/detectors/train", post(train))
        .route("/api/v1/detectors/detect", post(detect))
        .route("/api/v1/detectors/predict", post(predict))
        .route("/api/v1/detectors/stats", get(stats))
        .route("/api/v1/openapi.json", get(openapi))
        .route("/api/v1/models", get(models))
        .route("/api/v1/models/{id}", delete(delete_model))
        .route("/ws/anomalies", get(crate::ws::upgrade));
    if state.config.monitoring.enable_prometheus {
        router = router.route("/metrics", get(metrics));
    }
    let router = router
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&state),
            crate::auth::guard,
        ))
        .layer(DefaultBodyLimit::max(limit))
        // A body that stops arriving is refused (408) instead of holding the request.
        .layer(tower_http::timeout::RequestBodyTimeoutLayer::new(
            std::time::Duration::from_secs(u64::from(state.config.limits.read_timeout_seconds)),
        ))
        .layer(axum::middleware::from_fn(traced));
    // Outermost, so a browser's preflight is answered before the token check.
    match cors(&state.config.api.cors_origins) {
        Some(layer) => router.layer(layer).with_state(state),
        None => router.with_state(state),
    }
}

/// Runs each request in a span of its own: the parent of what the engine and the store do
/// for it, in traces.
async fn traced(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    use tracing::Instrument as _;
    let span = tracing::info_span!(
        "request",
        method = %request.method(),
        path = %request.uri().path(),
        status = tracing::field::Empty,
    );
    let response = next.run(request).instrument(span.clone()).await;
    span.record("status", response.status().as_u16());
    response
}

/// The CORS layer for `origins` (`*`: any), if any are allowed.
fn cors(origins: &[String]) -> Option<tower_http::cors::CorsLayer> {
    use tower_http::cors::{AllowOrigin, CorsLayer};
    if origins.is_empty() {
        return None;
    }
    let allow = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        // Checked to parse by `Config::check`.
        AllowOrigin::list(origins.iter().filter_map(|o| o.parse().ok()))
    };
    Some(
        CorsLayer::new()
            .allow_origin(allow)
            .allow_methods([
                axum::http::Method::GET,
                axum::http::Method::POST,
                axum::http::Method::PUT,
                axum::http::Method::DELETE,
            ])
            .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
            .max_age(std::time::Duration::from_secs(600)),
    )
}

/// Only `/metrics`, for `monitoring.prometheus_port`.
pub fn metrics_router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&state),
            crate::auth::guard,
        ))
        .with_state(state)
}

async fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        "no such endpoint; the API is under /api/v1 (health, events, alerts, rules, rules/status, plugins, detectors/train|detect|predict|stats, models)",
    )
}

async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!(
            "{} does not take {method}; see /api/v1/openapi.json",
            uri.path()
        ),
    )
}

async fn health(State(state): State<Arc<AppState>>) -> Response {
    let store = Arc::clone(&state.store);
    let store_state = tokio::task::spawn_blocking(move || store.ping())
        .await
        .map_err(|e| e.to_string())
        .and_then(|r| r.map_err(|e| e.to_string()));
    let engine_up = state.runner.is_running();
    let ready = engine_up && store_state.is_ok();
    let reloads = state.runner.reload_status();
    // Redis is a way out, not the record: down, the service still takes events and
    // stores alerts (ready), but says it is degraded.
    let redis = state
        .redis
        .as_ref()
        .map(|r| (r.location().to_owned(), r.state()));
    let redis_up = redis.as_ref().is_none_or(|(_, s)| s.up);
    let mut backends = json!({
        "store": {
            "kind": state.store.kind(),
            "location": state.store.location(),
            "state": if store_state.is_ok() { "up" } else { "down" },
            "error": store_state.as_ref().err(),
        },
    });
    if let Some((location, s)) = &redis {
        backends["redis"] = json!({
            "location": location,
            "state": if s.up { "up" } else { "down" },
            "error": s.error,
        });
    }
    let body = json!({
        "status": if ready && redis_up { "ok" } else { "degraded" },
        "live": true,
        "ready": ready,
        "engine": {
            "state": if engine_up { "up" } else { "down" },
            "rules_generation": reloads.generation,
            "reload_failures": reloads.failures,
        },
        "backends": backends,
        "checkpoints": state.runner.checkpoint_status(),
    });
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

/// The body's format: from its content type, else from its first character.
fn format_of(headers: &HeaderMap, body: &[u8]) -> Result<InputFormat, ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        });
    match content_type.as_deref() {
        Some("text/csv") => Ok(InputFormat::Csv),
        Some("application/x-ndjson" | "application/jsonl" | "application/json") => {
            Ok(InputFormat::JsonLines)
        }
        None | Some("" | "text/plain" | "application/octet-stream") => Ok(
            if body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{') {
                InputFormat::JsonLines
            } else {
                InputFormat::Csv
            },
        ),
        Some(other) => Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!("events come as text/csv (with a header row) or application/x-ndjson (one JSON object per line), not {other}"),
        )),
    }
}

async fn events(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let body = body.map_err(|e| body_refused(&state, &e))?;
    let format = format_of(&headers, &body).inspect_err(|_| {
        state.metrics.requests_refused.inc();
    })?;
    let done = state
        .runner
        .ingest(
            Source::Body {
                bytes: body,
                format,
            },
            false,
        )
        .await?;
    Ok(Json(json!({"events": done.events, "alerts": done.alerts})))
}

/// `GET /alerts`'s filters.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AlertFilters {
    key: Option<String>,
    symbol: Option<String>,
    alert: Option<String>,
    rule: Option<String>,
    from: Option<String>,
    to: Option<String>,
    severity: Option<String>,
    after: Option<i64>,
    limit: Option<usize>,
}

fn time_param(name: &str, value: Option<&String>) -> Result<Option<i64>, ApiError> {
    value
        .map(|text| {
            TimeFormat::detect(text)
                .and_then(|f| f.parse(text).ok())
                .ok_or_else(|| {
                    ApiError::new(
                        StatusCode::BAD_REQUEST,
                        "bad_query",
                        format!("`{name}={text}` is not a time: write ISO-8601 (2025-01-15T10:30:00Z) or epoch seconds"),
                    )
                })
        })
        .transpose()
}

async fn alerts(
    State(state): State<Arc<AppState>>,
    filters: Result<Query<AlertFilters>, QueryRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let Query(f) =
        filters.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad_query", e.body_text()))?;
    let max = state.config.limits.max_page;
    let limit = f.limit.unwrap_or(100.min(max));
    if limit == 0 || limit > max {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_query",
            format!("`limit` takes 1 to {max} (limits.max_page)"),
        ));
    }
    let min_rank = f
        .severity
        .as_deref()
        .map(|s| {
            rank_named(s).ok_or_else(|| {
                    ApiError::new(
                        StatusCode::BAD_REQUEST,
                        "bad_query",
                        format!("`severity={s}`: write info, low, medium, high or critical (alerts at or above it)"),
                    )
                })
        })
        .transpose()?;
    let query = AlertQuery {
        key: f.key.or(f.symbol),
        alert: f.alert.or(f.rule),
        from_ns: time_param("from", f.from.as_ref())?,
        to_ns: time_param("to", f.to.as_ref())?,
        min_rank,
        after_id: f.after,
        limit,
    };
    let store = Arc::clone(&state.store);
    let found = tokio::task::spawn_blocking(move || store.alerts(&query))
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))?
        .map_err(|e| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "store_unavailable",
                e.to_string(),
            )
        })?;
    let next = (found.len() == limit)
        .then(|| found.last().map(|a| a.id))
        .flatten();
    Ok(Json(json!({
        "alerts": found.iter().map(|a| json!({"id": a.id, "alert": a.doc})).collect::<Vec<_>>(),
        "next": next,
    })))
}

/// The OpenAPI document of these routes (a test checks that they agree).
pub const OPENAPI: &str = include_str!("openapi.json");

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

async fn stats(State(state): State<Arc<AppState>>) -> Json<serde_json::Value> {
    Json(state.metrics.stats())
}

/// `GET /rules`: the configured rule files and the uploads.
async fn list_rules(
    State(state): State<Arc<AppState>>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let names = state.uploads.names().map_err(UploadError::from)?;
    Ok(Json(json!({
        "configured": state.uploads.configured().iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
        "uploaded": names,
        "generation": state.runner.reload_status().generation,
    })))
}

/// `GET /rules/{name}`'s parameters.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleQuery {
    /// An earlier version (from the store) rather than the running text.
    version: Option<u64>,
}

async fn get_rule(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    query: Result<Query<RuleQuery>, QueryRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let Query(query) =
        query.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad_query", e.body_text()))?;
    crate::uploads::check_name(&name)?;
    let (store, wanted, uploads) = (
        Arc::clone(&state.store),
        name.clone(),
        state.uploads.clone(),
    );
    let (stored, text) = tokio::task::spawn_blocking(move || {
        let stored = store.rule_version(&wanted, query.version);
        let text = match query.version {
            Some(_) => Ok(None),
            None => uploads.text(&wanted),
        };
        (stored, text)
    })
    .await
    .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))?;
    let stored = stored.map_err(|e| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "store_unavailable",
            e.to_string(),
        )
    })?;
    let text = match query.version {
        Some(v) => stored
            .as_ref()
            .and_then(|s| s.text.clone())
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::NOT_FOUND,
                    "rule_version_not_found",
                    format!("`{name}` has no version {v} with text (it never had one, or that version deleted it)"),
                )
            })?,
        None => text?.ok_or_else(|| UploadError::NotFound(name.clone()))?,
    };
    Ok(Json(json!({
        "name": name,
        "version": stored.map(|s| s.version),
        "sha256": crate::uploads::sha256(&text),
        "text": text,
    })))
}

async fn put_rule(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    crate::uploads::check_name(&name)?;
    let body = body.map_err(|e| body_refused(&state, &e))?;
    if body.len() as u64 > adr_engine::rules::source::MAX_RULE_FILE_BYTES {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!(
                "a rule file is at most {} MiB",
                adr_engine::rules::source::MAX_RULE_FILE_BYTES >> 20
            ),
        ));
    }
    let text = String::from_utf8(body.to_vec()).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_rule_text",
            format!("a rule file is UTF-8 text: {e}"),
        )
    })?;
    let applied = state
        .runner
        .change_rules(Change::Put { name, text })
        .await??;
    let status = if applied.replaced {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, Json(json!(applied))).into_response())
}

async fn delete_rule(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    crate::uploads::check_name(&name)?;
    let applied = state.runner.change_rules(Change::Delete { name }).await??;
    Ok(Json(json!(applied)))
}

/// A body that could not be read: too large, or cut off.
/// Whether reading the body failed because it stopped arriving.
fn timed_out(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(e);
    while let Some(c) = cause {
        if c.is::<tower_http::timeout::TimeoutError>() {
            return true;
        }
        cause = c.source();
    }
    false
}

fn body_refused(state: &AppState, e: &BytesRejection) -> ApiError {
    state.metrics.requests_refused.inc();
    if timed_out(e) {
        ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "body_timeout",
            format!(
                "the body stopped arriving for {} s (limits.read_timeout_seconds)",
                state.config.limits.read_timeout_seconds
            ),
        )
    } else if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!(
                "the body is larger than {} bytes (limits.max_body_bytes); send the events in several requests",
                state.config.limits.max_body_bytes
            ),
        )
    } else {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_body", e.body_text())
    }
}

async fn rules_status(State(state): State<Arc<AppState>>) -> Json<serde_json::Value> {
    Json(json!(state.runner.reload_status()))
}

async fn plugins(State(state): State<Arc<AppState>>) -> Result<Json<serde_json::Value>, ApiError> {
    Ok(Json(state.runner.plugins().await?))
}

async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    let status = state.runner.reload_status();
    let m = &state.metrics;
    m.reload_generation
        .set(i64::try_from(status.generation).unwrap_or(i64::MAX));
    m.reload_failures
        .set(i64::try_from(status.failures).unwrap_or(i64::MAX));
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        m.encode(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    /// `(method, path)` of every route added in this file.
    fn routes() -> BTreeSet<(String, String)> {
        let marker = concat!(".route", "(\"");
        let mut routes = BTreeSet::new();
        for line in include_str!("api.rs").lines() {
            let Some((_, rest)) = line.split_once(marker) else {
                continue;
            };
            let (path, rest) = rest.split_once('"').expect("a quoted path");
            let method = rest.trim_start_matches([',', ' ']);
            let method = method.split('(').next().expect("a method");
            routes.insert((method.to_owned(), path.to_owned()));
        }
        routes
    }

    #[test]
    fn the_openapi_document_describes_exactly_the_routes() {
        let doc: serde_json::Value = serde_json::from_str(super::OPENAPI).unwrap();
        assert_eq!(doc["openapi"], "3.1.0");
        let documented: BTreeSet<(String, String)> = doc["paths"]
            .as_object()
            .unwrap()
            .iter()
            .flat_map(|(path, methods)| {
                methods
                    .as_object()
                    .unwrap()
                    .keys()
                    .map(move |m| (m.clone(), path.clone()))
            })
            .collect();
        let routed = routes();
        assert!(routed.len() >= 14, "{routed:?}");
        assert_eq!(documented, routed);
        for (method, path) in &documented {
            let responses = &doc["paths"][path][method]["responses"];
            assert!(
                responses.as_object().is_some_and(|r| !r.is_empty()),
                "{method} {path} documents its responses"
            );
        }
    }
}
