//! One error shape everywhere: an error answer built outside our handlers and extractors (axum's own 405,
//! which keeps its `Allow` header; a static-file 404 under /docs) is rewritten as a problem.

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::http::problem::error::{ApiError, ProblemCode};
use crate::http::server::state::AppState;

pub(crate) async fn ensure_problem(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let response = next.run(req).await;
    let status = response.status();
    let is_error = status.is_client_error() || status.is_server_error();
    if !is_error || response.extensions().get::<ProblemCode>().is_some() {
        return response;
    }
    let err = match status.as_u16() {
        404 => ApiError::NotFound,
        405 => ApiError::MethodNotAllowed,
        413 => ApiError::BodyTooLarge {
            limit: state.config().body_limit,
        },
        415 => ApiError::UnsupportedMediaType("(not accepted here)".into()),
        _ if status.is_server_error() => ApiError::Internal(format!("{status} answered outside the handlers")),
        _ => ApiError::BadRequest(format!("the request was refused ({status})")),
    };
    let allow = response.headers().get(header::ALLOW).cloned();
    let mut problem = err.into_response();
    if let Some(allow) = allow {
        problem.headers_mut().insert(header::ALLOW, allow);
    }
    problem
}
