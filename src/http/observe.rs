//! Request metrics: latency by route template and status, refusals by code, distances and decisions.

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use tokio::time::Instant;

use crate::metrics::Metrics;

use super::error::ProblemCode;
use super::state::AppState;

/// Decision labels: the only values the `decision` label takes.
pub const MATCH: &str = "match";
pub const NO_MATCH: &str = "no_match";
pub const VERIFIED: &str = "verified";
pub const REJECTED: &str = "rejected";

/// The route label of a request that matched no route: raw paths would let callers mint series.
const UNMATCHED: &str = "unmatched";

/// Times every request and counts every refusal. Must run inside the router (`Router::layer`), where the
/// matched route template is known.
pub async fn record(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| UNMATCHED.to_string(), |p| p.as_str().to_string());
    let start = Instant::now();
    let response = next.run(req).await;
    let metrics = state.metrics();
    metrics
        .http_request_duration_seconds
        .with_label_values(&[route.as_str(), response.status().as_str()])
        .observe(start.elapsed().as_secs_f64());
    if let Some(ProblemCode(code)) = response.extensions().get::<ProblemCode>() {
        metrics.rejected_total.with_label_values(&[code]).inc();
    }
    response
}

/// Counts a decision and records its distance: the distribution operators watch for drift.
pub fn record_decision(metrics: &Metrics, route: &'static str, decision: &'static str, distance: f32) {
    metrics.decisions_total.with_label_values(&[route, decision]).inc();
    metrics
        .distance
        .with_label_values(&[route, decision])
        .observe(f64::from(distance));
}
