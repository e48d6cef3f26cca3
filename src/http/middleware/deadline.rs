//! The request deadline: every request gets one on arrival; past it the answer is 504 `deadline_exceeded`.

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio::time::Instant;

use crate::http::problem::error::ApiError;
use crate::http::server::state::AppState;

/// When the request must be answered by; handlers hand it to the engine so that work the caller can no
/// longer use is skipped in the queue.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Deadline(pub Instant);

/// Sets the deadline and answers 504 when the rest of the stack has not answered by then (body upload,
/// decoding and queueing included).
pub(crate) async fn enforce(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let deadline = Instant::now() + state.config().request_deadline();
    req.extensions_mut().insert(Deadline(deadline));
    match tokio::time::timeout_at(deadline, next.run(req)).await {
        Ok(response) => response,
        Err(_) => ApiError::DeadlineExceeded.into_response(),
    }
}
