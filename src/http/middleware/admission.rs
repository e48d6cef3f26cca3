//! The in-flight request limit: past `--max-in-flight` requests doing work at once, a new one is refused
//! at once with 503 `overloaded` + `Retry-After`, before its body is read (the connection's lingering
//! close, `linger.rs`, then drains that body so that the 503 is not lost to a reset).
//!
//! Every stage behind it is bounded (the decode wait, the model's queue), but on a CPU-starved server the
//! requests themselves (bodies being read, JSON parsed, answers written) share the cores with that work:
//! with thousands of them admitted each one's turn comes too late, and they all end in 504s. Refusing the
//! excess up front costs next to nothing and keeps the admitted ones inside their deadline.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::http::problem::error::ApiError;
use crate::http::server::state::AppState;

/// Requests admitted and not yet answered, against their limit; shared by every request.
#[derive(Debug)]
pub(crate) struct InFlight {
    count: Arc<AtomicUsize>,
    max: usize,
}

impl InFlight {
    pub(crate) fn new(max: usize) -> Self {
        Self {
            count: Arc::new(AtomicUsize::new(0)),
            max: max.max(1),
        }
    }

    /// A place for one more request, or `None` when every place is taken.
    fn try_enter(&self) -> Option<Admitted> {
        let before = self.count.fetch_add(1, Ordering::SeqCst);
        if before >= self.max {
            self.count.fetch_sub(1, Ordering::SeqCst);
            return None;
        }
        Some(Admitted(Arc::clone(&self.count)))
    }
}

/// One admitted request's place; given back when its answer is ready (or the request is dropped).
struct Admitted(Arc<AtomicUsize>);

impl Drop for Admitted {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_are_given_back() {
        let limit = InFlight::new(2);
        let a = limit.try_enter().expect("first");
        let _b = limit.try_enter().expect("second");

        assert!(limit.try_enter().is_none(), "full");
        drop(a);
        assert!(limit.try_enter().is_some(), "a place was freed");
    }
}
