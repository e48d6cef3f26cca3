//! The in-flight request limit: past `--max-in-flight` requests doing work at once, a new one is refused
//! at once with 503 `overloaded` + `Retry-After`, before its body is read (the connection's lingering
//! close, `linger.rs`, then drains that body so that the 503 is not lost to a reset).
//!
//! Every stage behind it is bounded (the decode wait, the model's queue), but on a CPU-starved server the
//! requests themselves (bodies being read, JSON parsed, answers written) share the cores with that work:
//! with thousands of them admitted each one's turn comes too late, and they all end in 504s. Refusing the
//! excess up front costs next to nothing and keeps the admitted ones inside their deadline.

use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::http::problem::error::ApiError;
use crate::http::server::state::AppState;

/// Sheds the requests that do work (everything but GET and HEAD, which answer from memory: health,
/// readiness, metrics and the docs stay reachable under any load).
pub(crate) async fn limit(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if matches!(*req.method(), Method::GET | Method::HEAD) {
        return next.run(req).await;
    }
    let Some(_admitted) = state.in_flight().try_enter() else {
        // The admitted requests finish within a deadline, most far sooner: one second is a fair wait.
        return ApiError::Overloaded {
            retry_after: Duration::from_secs(1),
        }
        .into_response();
    };
    next.run(req).await
}
