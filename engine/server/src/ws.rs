//! `/ws/anomalies`: events in, each event's result out; or a subscription to alerts.
//!
//! A client sends text frames, each one JSON value:
//! - an event object (the seed's `{"symbol", "price", "volume", "timestamp"}`, or any
//!   fields the rules read) or an array of them: the answer is one frame,
//!   `{"results": [...], "alerts": [...]}`, with each event's judgement per ensemble;
//! - `{"subscribe": "alerts", "key": ..., "alert": ..., "severity": ...}` (filters
//!   optional): from then on every stored alert that matches is sent as
//!   `{"alert": {...}}`.
//!
//! A connection's frames are handled in order, one at a time: a client that sends faster
//! than the engine answers waits (TCP back-pressure), and its answers are never reordered.
//! A subscriber that reads slower than alerts fire loses the oldest ones past
//! `limits.subscriber_queue` (1024) and is told how many: `{"dropped": n}`. Every refusal is
//! `{"error": {"code", "message"}}` on the connection, which stays open.

use std::sync::Arc;

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use tokio::sync::broadcast::error::RecvError;

use adr_engine::embed::BatchResult;
use adr_engine::io::InputFormat;
use adr_engine::rules::severity::Severity;

use crate::api::AppState;
use crate::runner::rank_named;

/// Upgrades the request to a WebSocket; a request that is not a WebSocket handshake gets
/// a JSON error.
pub async fn upgrade(
    State(state): State<Arc<AppState>>,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    match ws {
        Ok(ws) => {
            let limit = state.config.limits.max_body_bytes;
            ws.max_message_size(limit)
                .on_upgrade(move |socket| connection(socket, state))
        }
        Err(e) => crate::api::ApiError::new(
            e.status(),
            "not_a_websocket",
            format!("{}: connect with a WebSocket client", e.body_text()),
        )
        .into_response(),
    }
}

fn error(code: &str, message: impl Into<String>) -> Message {
    Message::Text(
        json!({"error": {"code": code, "message": message.into()}})
            .to_string()
            .into(),
    )
}

/// What a subscriber wants.
#[derive(Debug, Default)]
struct Filter {
    key: Option<String>,
    alert: Option<String>,
    min_rank: Option<u8>,
}

impl Filter {
    fn of(request: &Value) -> Result<Filter, String> {
        let text = |name: &str| request.get(name).and_then(Value::as_str).map(str::to_owned);
        let min_rank = match request.get("severity").and_then(Value::as_str) {
            None => None,
            Some(s) => Some(rank_named(s).ok_or_else(|| {
                format!("`severity` {s:?}: write info, low, medium, high or critical")
            })?),
        };
        Ok(Filter {
            key: text("key").or_else(|| text("symbol")),
            alert: text("alert").or_else(|| text("rule")),
            min_rank,
        })
    }

    fn admits(&self, alert: &Value) -> bool {
        let field = |name: &str| alert.get(name).and_then(Value::as_str);
        let severity = field("severity").and_then(rank_named).unwrap_or(0);
        self.key.as_deref().is_none_or(|k| field("key") == Some(k))
            && self
                .alert
                .as_deref()
                .is_none_or(|a| field("alert") == Some(a))
            && self.min_rank.is_none_or(|r| severity >= r)
    }
}

/// The answer to a frame of events.
fn results_json(results: &[BatchResult]) -> Value {
    let mut events = Vec::new();
    let mut alerts = Vec::new();
    for batch in results {
        for e in &batch.events {
            let ensembles: serde_json::Map<String, Value> = batch
                .ensembles
                .iter()
                .zip(&e.judgements)
                .map(|(name, j)| {
                    (
                        name.clone(),
                        json!({
                            "score": if j.score.is_finite() { json!(j.score) } else { Value::Null },
                            "verdict": j.verdict.as_str(),
                            "severity": j.severity.map(Severity::as_str),
                        }),
                    )
                })
                .collect();
            events.push(json!({
                "time": adr_engine::io::timestamp::format_rfc3339(e.time),
                "key": e.key,
                "ensembles": ensembles,
            }));
        }
        alerts.extend(batch.alerts.iter().cloned());
    }
    json!({"results": events, "alerts": alerts})
}

/// Events of one frame as JSON lines.
fn json_lines(frame: &Value) -> Result<Vec<u8>, String> {
    let events: Vec<&Value> = match frame {
        Value::Array(items) => items.iter().collect(),
        object @ Value::Object(_) => vec![object],
        _ => return Err("send an event object, an array of them, or a subscription".into()),
    };
    let mut body = Vec::new();
    for (i, event) in events.iter().enumerate() {
        if !event.is_object() {
            return Err(format!("item {i} is not an event object"));
        }
        body.extend_from_slice(event.to_string().as_bytes());
        body.push(b'\n');
    }
    Ok(body)
}

async fn connection(mut socket: WebSocket, state: Arc<AppState>) {
    let mut subscription: Option<(tokio::sync::broadcast::Receiver<Arc<Value>>, Filter)> = None;
    loop {
        let next_alert = async {
            match subscription.as_mut() {
                Some((alerts, _)) => alerts.recv().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            frame = socket.recv() => {
                let Some(Ok(frame)) = frame else { return };
                let answer = match frame {
                    Message::Text(text) => Some(on_text(&state, text.as_str(), &mut subscription).await),
                    Message::Binary(_) => Some(error("bad_frame", "send text frames of JSON")),
                    Message::Close(_) => return,
                    Message::Ping(_) | Message::Pong(_) => None,
                };
                if let Some(answer) = answer {
                    if socket.send(answer).await.is_err() {
                        return;
                    }
                }
            }
            alert = next_alert => {
                let message = match alert {
                    Ok(alert) => {
                        let admitted = subscription
                            .as_ref()
                            .is_some_and(|(_, filter)| filter.admits(&alert));
                        if !admitted {
                            continue;
                        }
                        json!({"alert": *alert})
                    }
                    Err(RecvError::Lagged(n)) => json!({"dropped": n}),
                    Err(RecvError::Closed) => return,
                };
                if socket.send(Message::Text(message.to_string().into())).await.is_err() {
                    return;
                }
            }
        }
    }
}

async fn on_text(
    state: &Arc<AppState>,
    text: &str,
    subscription: &mut Option<(tokio::sync::broadcast::Receiver<Arc<Value>>, Filter)>,
) -> Message {
    let frame: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => return error("bad_json", format!("not JSON: {e}")),
    };
    if let Some(what) = frame.get("subscribe") {
        if what != "alerts" {
            return error("bad_subscription", "subscribe to \"alerts\"");
        }
        return match Filter::of(&frame) {
            Ok(filter) => {
                *subscription = Some((state.alerts.subscribe(), filter));
                Message::Text(json!({"subscribed": "alerts"}).to_string().into())
            }
            Err(why) => error("bad_subscription", why),
        };
    }
    let body = match json_lines(&frame) {
        Ok(body) => body,
        Err(why) => return error("bad_events", why),
    };
    match state
        .runner
        .ingest(body, InputFormat::JsonLines, true)
        .await
    {
        Ok(done) => Message::Text(results_json(&done.results).to_string().into()),
        Err(e) => {
            let api = crate::api::ApiError::from(e);
            error(api.code(), api.message())
        }
    }
}
