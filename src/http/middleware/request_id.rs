//! Request ids: every request gets an `x-request-id` (the caller's, when it is sane), echoed in the
//! response header, the log span and every problem body.

use axum::extract::Request;
use axum::http::HeaderName;
use axum::middleware::Next;
use axum::response::Response;

pub(crate) static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Longest caller-supplied id kept; longer or odd ones are replaced by a fresh UUID.
const MAX_ID_LEN: usize = 128;

tokio::task_local! {
    /// The id of the request whose future is running, for errors built far from the request.
    static REQUEST_ID: String;
}

/// The id of the request being handled, when called inside `scope`.
pub(crate) fn current() -> Option<String> {
    REQUEST_ID.try_with(Clone::clone).ok()
}

/// Drops a caller-supplied id that could mangle logs (control characters, quotes, kilobytes), so that
/// the set-request-id layer that runs next replaces it.
pub(crate) async fn sanitize(mut req: Request, next: Next) -> Response {
    let sane = req.headers().get(&X_REQUEST_ID).map(|v| {
        let v = v.as_bytes();
        !v.is_empty() && v.len() <= MAX_ID_LEN && v.iter().all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(b))
    });
    if sane == Some(false) {
        req.headers_mut().remove(&X_REQUEST_ID);
    }
    next.run(req).await
}

/// Runs the rest of the stack with the request id in scope (after the set-request-id layer).
pub(crate) async fn scope(req: Request, next: Next) -> Response {
    let id = req
        .headers()
        .get(&X_REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    REQUEST_ID.scope(id, next.run(req)).await
}
