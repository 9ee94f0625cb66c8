//! API tokens. `adr serve --new-token NAME` makes one, shows it once, and keeps only its
//! SHA-256 in the store: a copy of the database gives no one a token. Every call that
//! changes something (events, models; a WebSocket, which takes events) carries one as
//! `Authorization: Bearer TOKEN`, or `?token=TOKEN` on the WebSocket, which browsers
//! cannot give headers. Reads need none unless `auth.open_reads` is off; `/api/v1/health`
//! never does, for liveness probes.

use std::io::Read;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use crate::api::{ApiError, AppState};

/// What tokens start with, so that a leaked one is recognisable (secret scanners).
const PREFIX: &str = "adr_";

/// A new token: 32 bytes from the system's random source, in hex.
///
/// # Errors
///
/// The random source cannot be read.
pub fn new_token() -> std::io::Result<String> {
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(format!(
        "{PREFIX}{}",
        bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
    ))
}

/// The hash a token is kept as.
pub fn hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// The token a request carries, if any.
fn token_of(request: &Request) -> Option<String> {
    if let Some(value) = request.headers().get(header::AUTHORIZATION) {
        let value = value.to_str().ok()?;
        return value.strip_prefix("Bearer ").map(|t| t.trim().to_owned());
    }
    if request.uri().path() == "/ws/anomalies" {
        return request.uri().query().and_then(|q| {
            q.split('&')
                .find_map(|pair| pair.strip_prefix("token="))
                .map(str::to_owned)
        });
    }
    None
}

/// Whether a request needs a token under `state`'s configuration.
fn needs_token(state: &AppState, request: &Request) -> bool {
    let auth = &state.config.auth;
    let path = request.uri().path();
    if !auth.required || path == "/api/v1/health" {
        return false;
    }
    let reads = matches!(*request.method(), Method::GET | Method::HEAD);
    !(reads && auth.open_reads && path != "/ws/anomalies")
}

/// The middleware: refuses a request that needs a token and has no valid one.
pub async fn guard(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    if !needs_token(&state, &request) {
        return next.run(request).await;
    }
    let Some(token) = token_of(&request) else {
        return ApiError::new(
            StatusCode::UNAUTHORIZED,
            "missing_token",
            "this call needs an API token: `Authorization: Bearer TOKEN` (`?token=TOKEN` for the WebSocket); make one with `adr serve --new-token NAME`",
        )
        .into_response();
    };
    let store = Arc::clone(&state.store);
    let known = tokio::task::spawn_blocking(move || store.token_named(&hash(&token))).await;
    match known {
        Ok(Ok(Some(_))) => next.run(request).await,
        Ok(Ok(None)) => ApiError::new(
            StatusCode::UNAUTHORIZED,
            "bad_token",
            "the API token is not known to this service",
        )
        .into_response(),
        Ok(Err(e)) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "store_unavailable",
            e.to_string(),
        )
        .into_response(),
        Err(e) => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string())
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_kept_as_their_hash() {
        let (a, b) = (new_token().unwrap(), new_token().unwrap());
        assert_ne!(a, b);
        assert!(a.starts_with(PREFIX) && a.len() == PREFIX.len() + 64, "{a}");
        assert_eq!(hash(&a), hash(&a));
        assert_ne!(hash(&a), hash(&b));
    }
}
