//! The demo page at `/`: static HTML, CSS and JavaScript embedded in the binary (no CDN, no build step),
//! and the models' report plots it shows beside their cards.

mod report;

use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::http::server::state::AppState;

/// The page only talks to this origin and runs only its own script: a strict policy costs nothing here
/// and keeps an injected image name or error text from ever running as code.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' blob: data:; connect-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'";

const INDEX_HTML: &str = include_str!("demo/index.html");
const DEMO_CSS: &str = include_str!("demo/demo.css");
const DEMO_JS: &str = include_str!("demo/demo.js");

/// The page, its two static files and the report plots; none of them is part of the OpenAPI document.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { page(INDEX_HTML, "text/html; charset=utf-8") }))
        .route(
            "/static/demo.css",
            get(|| async { page(DEMO_CSS, "text/css; charset=utf-8") }),
        )
        .route(
            "/static/demo.js",
            get(|| async { page(DEMO_JS, "text/javascript; charset=utf-8") }),
        )
        .route("/models/{name}/report", get(report::list))
        .route("/models/{name}/report/{file}", get(report::file))
}

/// A static file; `no-cache` (revalidate every time) because a new binary may serve a new page at the
/// same URL.
fn page(body: &'static str, content_type: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(CONTENT_SECURITY_POLICY),
            ),
            (header::REFERRER_POLICY, HeaderValue::from_static("no-referrer")),
        ],
        body,
    )
        .into_response()
}
