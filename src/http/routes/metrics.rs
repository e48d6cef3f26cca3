//! `GET /metrics`: the Prometheus text exposition.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use crate::http::server::state::AppState;

/// Prometheus metrics.
///
/// Latency, queue, batch, decode and decision metrics in the Prometheus text format.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    responses((status = 200, description = "Prometheus text exposition format.", body = String, content_type = "text/plain")),
)]
pub(crate) async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let metrics = state.metrics();
    ([(header::CONTENT_TYPE, metrics.content_type())], metrics.render())
}
