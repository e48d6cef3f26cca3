//! The request body read timeout: a body not fully received within `--body-read-timeout-ms` of its
//! headers fails, and the answer is 408 `body_timeout`, so that a client trickling its body cannot hold
//! a decode slot, a connection and memory for as long as it likes.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body::{Frame, SizeHint};
use tokio::time::Sleep;

use crate::http::problem::error::ApiError;
use crate::http::server::state::AppState;

/// Wraps the request body in the timeout; when it fired, whatever the handler made of the cut-off body
/// (a parse error, most likely) is replaced by the 408.
pub(crate) async fn limit(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let timeout = state.config().body_read_timeout();
    let expired = Arc::new(AtomicBool::new(false));
    let req = req.map(|body| {
        Body::new(TimedBody {
            inner: body,
            timer: Box::pin(tokio::time::sleep(timeout)),
            expired: Arc::clone(&expired),
        })
    });
    let response = next.run(req).await;
    if expired.load(Ordering::Relaxed) {
        ApiError::BodyTimeout(timeout).into_response()
    } else {
        response
    }
}

/// A body that fails once its timer fires before its last frame arrived.
struct TimedBody {
    inner: Body,
    timer: Pin<Box<Sleep>>,
    /// Set when the timer cut the body off; read by `limit` once the handler answered.
    expired: Arc<AtomicBool>,
}

/// The error the cut-off body reads as.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive in time")]
struct BodyTimedOut;

impl http_body::Body for TimedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        if let Poll::Ready(frame) = Pin::new(&mut self.inner).poll_frame(cx) {
            return Poll::Ready(frame);
        }
        if self.timer.as_mut().poll(cx).is_ready() {
            self.expired.store(true, Ordering::Relaxed);
            return Poll::Ready(Some(Err(axum::Error::new(BodyTimedOut))));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use axum::routing::post;
    use tower::ServiceExt;

    use super::*;
    use crate::config::ServeConfig;
    use crate::metrics::Metrics;

    fn app(timeout_ms: &str) -> axum::Router {
        let config = ServeConfig::try_from_args(["--body-read-timeout-ms", timeout_ms]).unwrap();
        let state = AppState::new(config, Metrics::new());
        axum::Router::new()
            .route("/", post(|body: Bytes| async move { body.len().to_string() }))
            .layer(axum::middleware::from_fn_with_state(state.clone(), limit))
            .with_state(state)
    }

    #[tokio::test]
    async fn a_body_that_stalls_past_the_timeout_is_answered_408() {
        let stalled = Body::from_stream(futures::stream::pending::<Result<Bytes, std::io::Error>>());

        let response = app("50")
            .oneshot(Request::post("/").body(stalled).unwrap())
            .await
            .unwrap();

        assert_eq!(response.status(), 408);
        assert_eq!(
            response.headers()["content-type"],
            crate::http::problem::error::PROBLEM_JSON
        );
    }

    #[tokio::test]
    async fn a_body_in_time_passes_untouched() {
        let response = app("5000")
            .oneshot(Request::post("/").body(Body::from("hello")).unwrap())
            .await
            .unwrap();

        assert_eq!(response.status(), 200);
        let body = axum::body::to_bytes(response.into_body(), 100).await.unwrap();
        assert_eq!(&body[..], b"5");
    }
}
