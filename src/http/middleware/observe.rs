//! Request metrics and the per-request log line: latency by route template and status, refusals by code,
//! distances and decisions by model.

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use tokio::time::Instant;

use crate::metrics::Metrics;

use crate::http::middleware::request_id;
use crate::http::problem::error::ProblemCode;
use crate::http::server::request_model;
use crate::http::server::state::AppState;

/// Decision labels: the only values the `decision` label takes.
pub(crate) const MATCH: &str = "match";
pub(crate) const NO_MATCH: &str = "no_match";
pub(crate) const VERIFIED: &str = "verified";
pub(crate) const REJECTED: &str = "rejected";

/// The route label of a request that matched no route: raw paths would let callers mint series.
const UNMATCHED: &str = "unmatched";

/// Times every request, counts every refusal, and logs one line per request (request id, method, route,
/// status, latency, model). Must run inside the router (`Router::layer`), where the matched route
/// template is known, and inside `request_id::scope`.
pub(crate) async fn record(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or(UNMATCHED, |p| p.as_str())
        .to_string();
    let method = req.method().clone();
    let start = Instant::now();
    let (response, model) = request_model::scope(next.run(req)).await;
    let elapsed = start.elapsed();
    let status = response.status();
    let metrics = state.metrics();
    metrics
        .http_request_duration_seconds
        .with_label_values(&[route.as_str(), status.as_str()])
        .observe(elapsed.as_secs_f64());
    if let Some(ProblemCode(code)) = response.extensions().get::<ProblemCode>() {
        metrics.rejected_total.with_label_values(&[code]).inc();
    }
    // A root event (no parent span): every field is on the event itself, so a JSON line is flat and a
    // text line does not repeat the request span in front of it.
    tracing::info!(
        parent: None,
        request_id = %request_id::current().unwrap_or_default(),
        method = %method,
        route = %route,
        status = status.as_u16(),
        // Microsecond resolution is plenty, and keeps the line free of float noise (0.07886800000000001).
        latency_ms = (elapsed.as_secs_f64() * 1e6).round() / 1e3,
        model = model.map(tracing::field::display),
        "request"
    );
    response
}

/// Counts a decision and records its distance, by model: the distribution operators watch for drift.
/// `model` is a loaded model's name, so the label stays bounded.
pub(crate) fn record_decision(
    metrics: &Metrics,
    model: &str,
    route: &'static str,
    decision: &'static str,
    distance: f32,
) {
    metrics
        .decisions_total
        .with_label_values(&[model, route, decision])
        .inc();
    metrics
        .distance
        .with_label_values(&[model, route, decision])
        .observe(f64::from(distance));
}
