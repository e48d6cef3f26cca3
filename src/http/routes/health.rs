//! `GET /health` (the process answers) and `GET /ready` (every model loaded and warmed, the subject
//! catalogue loaded, not draining).

use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::http::openapi::document::NotReadyErrors;
use crate::http::problem::error::ApiError;
use crate::http::server::state::AppState;

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct Health {
    /// Always `ok`.
    #[schema(example = "ok")]
    pub status: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct Ready {
    /// Always `ready`.
    #[schema(example = "ready")]
    pub status: String,
    /// The models loaded and warmed up.
    #[schema(example = json!(["mnist"]))]
    pub models: Vec<String>,
}

/// Liveness.
///
/// Answers as soon as the process serves HTTP; never touches the models.
#[utoipa::path(
    get,
    path = "/health",
    tag = "operations",
    responses((status = 200, description = "The process is alive.", body = Health)),
)]
pub(crate) async fn health() -> Json<Health> {
    Json(Health { status: "ok".into() })
}

/// Readiness.
///
/// 200 once every model is loaded and has run a warm-up batch and the subject catalogue (store and
/// search index) is loaded; 503 before that, and again from the moment the service starts shutting down.
#[utoipa::path(
    get,
    path = "/ready",
    tag = "operations",
    responses(
        (status = 200, description = "Ready to serve.", body = Ready),
        NotReadyErrors,
    ),
)]
pub(crate) async fn ready(State(state): State<AppState>) -> Result<Json<Ready>, ApiError> {
    if state.is_draining() {
        return Err(ApiError::ShuttingDown);
    }
    let engine = state.engine()?;
    state.catalogue()?;
    Ok(Json(Ready {
        status: "ready".into(),
        models: engine.cards().iter().map(|card| card.name.clone()).collect(),
    }))
}
