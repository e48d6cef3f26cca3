//! Assembles the routes (collecting their OpenAPI paths) and the layers every request passes through.

use axum::extract::DefaultBodyLimit;
use axum::http::Request;
use axum::response::{IntoResponse, Response};
use axum::{middleware, Router};
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{DefaultOnFailure, DefaultOnResponse, TraceLayer};
use tracing::Level;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::config::ServeConfig;
use crate::http::middleware::request_id::{self, X_REQUEST_ID};
use crate::http::middleware::{admission, auth, body_timeout, deadline, observe, shape};
use crate::http::openapi::contract;
use crate::http::openapi::document::{docs_router, document_api_keys, ApiDoc};
use crate::http::problem::error::ApiError;
use crate::http::routes::{compare, demo, duplicates, embed, health, info, metrics, search, subjects, verify};
use crate::http::server::state::AppState;

/// The API routes with their OpenAPI paths.
fn api_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(compare::compare))
        .routes(routes!(verify::verify))
        .routes(routes!(embed::embed))
        .routes(routes!(search::search))
        .routes(routes!(duplicates::duplicates))
        .routes(routes!(subjects::list_subjects))
        .routes(routes!(
            subjects::put_subject,
            subjects::get_subject,
            subjects::delete_subject
        ))
        .routes(routes!(subjects::enrol))
        .routes(routes!(subjects::delete_image))
        .routes(routes!(info::info))
        .routes(routes!(health::health))
        .routes(routes!(health::ready))
        .routes(routes!(metrics::metrics))
}

/// The OpenAPI document of the service, as `simverify openapi` prints it: every option on, API keys too.
pub fn openapi_spec() -> utoipa::openapi::OpenApi {
    spec(true)
}

fn spec(api_keys: bool) -> utoipa::openapi::OpenApi {
    let mut api = api_routes().into_openapi();
    if api_keys {
        document_api_keys(&mut api);
    }
    contract::tighten(api)
}

/// The OpenAPI document a server with `config` serves: [`openapi_spec`] narrowed to what this server
/// accepts, exactly (its image limit; no URL inputs unless it fetches them; no API keys unless it
/// requires them, so that a client generated from it sends none for nothing).
pub fn served_openapi_spec(config: &ServeConfig) -> utoipa::openapi::OpenApi {
    let api = contract::with_max_images(spec(config.api_keys_file.is_some()), config.max_images);
    if config.allow_url_inputs {
        api
    } else {
        contract::without_url_inputs(api)
    }
}

/// The whole service, ready to serve.
pub fn router(state: AppState) -> Router {
    let (routes, _) = api_routes().split_for_parts();
    let api = served_openapi_spec(state.config());
    with_layers(routes.merge(docs_router(api)).merge(demo::routes()), state)
}

/// `routes` behind the layers every request passes through, with the not-found fallback.
fn with_layers(routes: Router<AppState>, state: AppState) -> Router {
    let body_limit = state.config().body_limit;
    // Outermost first: every request gets an id before anything logs, and everything from the
    // metrics inwards runs with that id in scope so that error bodies carry it.
    let layers = ServiceBuilder::new()
        .layer(middleware::from_fn(request_id::sanitize))
        .layer(SetRequestIdLayer::new(X_REQUEST_ID.clone(), MakeRequestUuid))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|req: &Request<_>| {
                    let id = req
                        .headers()
                        .get(&X_REQUEST_ID)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default();
                    tracing::info_span!("request", request_id = %id, method = %req.method(), path = %req.uri().path())
                })
                // `observe::record` writes the one INFO line per request (with route and model); this one is for debugging.
                .on_response(DefaultOnResponse::new().level(Level::DEBUG))
                // A 5xx is already in that line, and its cause in the error's own log line.
                .on_failure(DefaultOnFailure::new().level(Level::DEBUG)),
        )
        .layer(PropagateRequestIdLayer::new(X_REQUEST_ID.clone()))
        .layer(middleware::from_fn(request_id::scope))
        .layer(middleware::from_fn_with_state(state.clone(), observe::record))
        .layer(middleware::from_fn_with_state(state.clone(), shape::ensure_problem))
        // Inside the metrics and the problem shape, so that a 401 is counted and carries the request id;
        // outside everything that reads the body.
        .layer(middleware::from_fn_with_state(state.clone(), auth::require_key))
        // Behind the key check, so that unauthenticated traffic takes no place; in front of the body.
        .layer(middleware::from_fn_with_state(state.clone(), admission::limit))
        .layer(CatchPanicLayer::custom(panic_response))
        // Outside the deadline, so that a trickled body is answered 408 rather than 504.
        .layer(middleware::from_fn_with_state(state.clone(), body_timeout::limit))
        .layer(middleware::from_fn_with_state(state.clone(), deadline::enforce))
        // Read by the extractors (JSON and multipart alike), which turn a breach into 413 `body_too_large`.
        .layer(DefaultBodyLimit::max(body_limit));
    routes
        .fallback(|| async { ApiError::NotFound })
        .layer(layers)
        .with_state(state)
}

/// A handler panic is a bug of ours: 500 with the problem shape; the panic message goes to the log only.
fn panic_response(payload: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let message = payload
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| payload.downcast_ref::<&str>().copied())
        .unwrap_or("(no message)");
    ApiError::Internal(format!("handler panicked: {message}")).into_response()
}

#[cfg(test)]
mod tests {
    use axum::body::{to_bytes, Body};
    use axum::routing::get;
    use tower::ServiceExt;

    use super::*;
    use crate::config::ServeConfig;
    use crate::metrics::Metrics;

    #[tokio::test]
    async fn a_panicking_handler_answers_500_with_the_problem_shape_and_no_internals() {
        let state = AppState::new(
            ServeConfig::try_from_args::<[&str; 0], &str>([]).unwrap(),
            Metrics::new(),
        );
        let routes = Router::new().route(
            "/boom",
            get(|| async { panic!("secret internal state") as &'static str }),
        );
        let app = with_layers(routes, state.clone());

        let response = app
            .oneshot(Request::get("/boom").body(Body::empty()).unwrap())
            .await
            .unwrap();

        assert_eq!(response.status(), 500);
        let id = response.headers()["x-request-id"].to_str().unwrap().to_string();
        let body: serde_json::Value =
            serde_json::from_slice(&to_bytes(response.into_body(), usize::MAX).await.unwrap()).unwrap();
        assert_eq!(body["code"], "internal_error");
        assert_eq!(body["request_id"], id);
        assert!(!body.to_string().contains("secret"), "{body}");
        assert!(state
            .metrics()
            .render()
            .contains("simverify_rejected_total{reason=\"internal_error\"} 1"));
    }
}
