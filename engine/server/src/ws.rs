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

use crate::api::AppState;
use crate::intake::Source;
use crate::runner::rank_named;

/// A connection's read buffer, bytes: a frame of one event is about 150.
const READ_BUFFER: usize = 8 * 1024;

/// Upgrades the request to a WebSocket; a request that is not a WebSocket handshake gets
/// a JSON error.
pub async fn upgrade(
    State(state): State<Arc<AppState>>,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    match ws {
        Ok(ws) => {
            let limit = state.config.limits.max_body_bytes;
            // The read buffer is zeroed for each read: at the default 128 KiB that was a
            // tenth of the service's time with one event a frame.
            ws.max_message_size(limit)
                .read_buffer_size(READ_BUFFER)
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

/// The answer to a frame of events, `{"results": [...], "alerts": [...]}`, written
/// straight to text: a frame of one event is answered often.
fn results_text(results: &[BatchResult]) -> String {
    use std::fmt::Write as _;
    let mut out =
        String::with_capacity(64 + 160 * results.iter().map(|b| b.events.len()).sum::<usize>());
    let text = |out: &mut String, s: &str| {
        // A string's JSON form cannot fail.
        out.push_str(&serde_json::to_string(s).unwrap_or_default());
    };
    out.push_str("{\"results\":[");
    let mut first = true;
    for batch in results {
        for e in &batch.events {
            if !std::mem::take(&mut first) {
                out.push(',');
            }
            out.push_str("{\"time\":\"");
            out.push_str(&adr_engine::io::timestamp::format_rfc3339(e.time));
            out.push_str("\",\"key\":");
            text(&mut out, &e.key);
            out.push_str(",\"ensembles\":{");
            for (i, (name, j)) in batch.ensembles.iter().zip(&e.judgements).enumerate() {
                if i > 0 {
                    out.push(',');
                }
                text(&mut out, name);
                out.push_str(":{\"score\":");
                if j.score.is_finite() {
                    let _ = write!(out, "{}", ryu::Buffer::new().format_finite(j.score));
                } else {
                    out.push_str("null");
                }
                let _ = write!(out, ",\"verdict\":\"{}\",\"severity\":", j.verdict.as_str());
                match j.severity {
                    Some(s) => {
                        let _ = write!(out, "\"{}\"", s.as_str());
                    }
                    None => out.push_str("null"),
                }
                out.push('}');
            }
            out.push_str("}}");
        }
    }
    out.push_str("],\"alerts\":[");
    let mut first = true;
    for alert in results.iter().flat_map(|b| &b.alerts) {
        if !std::mem::take(&mut first) {
            out.push(',');
        }
        out.push_str(&alert.to_string());
    }
    out.push_str("]}");
    out
}

/// A frame's event objects: the frame's object, or its array's.
fn event_objects(frame: Value) -> Result<Vec<serde_json::Map<String, Value>>, String> {
    match frame {
        Value::Array(items) => items
            .into_iter()
            .enumerate()
            .map(|(i, item)| match item {
                Value::Object(object) => Ok(object),
                _ => Err(format!("item {i} is not an event object")),
            })
            .collect(),
        Value::Object(object) => Ok(vec![object]),
        _ => Err("send an event object, an array of them, or a subscription".into()),
    }
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
    let objects = match event_objects(frame) {
        Ok(objects) => objects,
        Err(why) => return error("bad_events", why),
    };
    match state.runner.ingest(Source::Objects(objects), true).await {
        Ok(done) => Message::Text(results_text(&done.results).into()),
        Err(e) => {
            let api = crate::api::ApiError::from(e);
            error(api.code(), api.message())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use adr_engine::embed::EventResult;
    use adr_engine::evaluator::ensemble::Judgement;
    use adr_engine::rules::severity::Severity;
    use adr_sdk::Verdict;

    #[test]
    fn answers_are_json_with_every_judgement() {
        let judgement = |score: f64, verdict, severity| Judgement {
            score,
            verdict,
            votes: 0,
            severity,
            arm: None,
        };
        let batch = BatchResult {
            ensembles: vec!["stress".into(), "quo\"te".into()],
            events: vec![
                EventResult {
                    row: 1,
                    time: 1_736_900_000_000_000_000,
                    key: "BTC/\"USD\"".into(),
                    judgements: vec![
                        judgement(0.1, Verdict::Normal, None),
                        judgement(f64::NAN, Verdict::Undetermined, None),
                    ],
                },
                EventResult {
                    row: 2,
                    time: 1_736_900_001_500_000_000,
                    key: "ETH".into(),
                    judgements: vec![
                        judgement(1e300, Verdict::Anomaly, Some(Severity::Critical)),
                        judgement(-0.0, Verdict::Normal, None),
                    ],
                },
            ],
            alerts: vec![json!({"alert": "a", "row": 2})],
        };
        let text = results_text(std::slice::from_ref(&batch));
        let doc: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
        assert_eq!(
            doc,
            json!({
                "results": [
                    {"time": "2025-01-15T00:13:20Z", "key": "BTC/\"USD\"", "ensembles": {
                        "stress": {"score": 0.1, "verdict": "normal", "severity": null},
                        "quo\"te": {"score": null, "verdict": "undetermined", "severity": null}}},
                    {"time": "2025-01-15T00:13:21.5Z", "key": "ETH", "ensembles": {
                        "stress": {"score": 1e300, "verdict": "anomaly", "severity": "critical"},
                        "quo\"te": {"score": -0.0, "verdict": "normal", "severity": null}}}
                ],
                "alerts": [{"alert": "a", "row": 2}]
            })
        );
        assert_eq!(
            serde_json::from_str::<Value>(&results_text(&[])).unwrap(),
            json!({"results": [], "alerts": []})
        );
    }
}
