//! Routing and error shapes through the router alone (`oneshot`, no socket), with no model loaded:
//! what does not need a model must not wait for one.

use axum::body::{to_bytes, Body};
use axum::http::{header, Request, StatusCode};
use axum::response::Response;
use axum::Router;
use serde_json::{json, Value};
use simverify::config::ServeConfig;
use simverify::http::{router, served_openapi_spec, AppState};
use simverify::metrics::Metrics;
use tower::ServiceExt;

fn config() -> ServeConfig {
    ServeConfig::try_from_args(["--body-limit", "2048"]).expect("settings parse")
}

fn app() -> Router {
    router(AppState::new(config(), Metrics::new()))
}

async fn send(request: Request<Body>) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
    let response: Response = app().oneshot(request).await.expect("the router is infallible");
    let (parts, body) = response.into_parts();
    let bytes = to_bytes(body, usize::MAX).await.expect("the body reads");
    (parts.status, parts.headers, bytes.to_vec())
}

fn post(path: &str, content_type: &str, body: impl Into<Body>) -> Request<Body> {
    Request::post(path)
        .header(header::CONTENT_TYPE, content_type)
        .body(body.into())
        .unwrap()
}

fn multipart(parts: &[(&str, &[u8])]) -> (String, Vec<u8>) {
    let boundary = "simverify-test-boundary";
    let mut body = Vec::new();
    for (name, bytes) in parts {
        body.extend_from_slice(
            format!("--{boundary}\r\ncontent-disposition: form-data; name=\"{name}\"; filename=\"f\"\r\n\r\n")
                .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// Asserts the problem shape and returns the body.
fn problem(answer: &(StatusCode, axum::http::HeaderMap, Vec<u8>), status: u16, code: &str) -> Value {
    let (actual, headers, bytes) = answer;
    let body: Value = serde_json::from_slice(bytes).expect("a JSON body");
    assert_eq!(actual.as_u16(), status, "{body}");
    assert_eq!(headers[header::CONTENT_TYPE], "application/problem+json");
    assert_eq!(body["code"], code, "{body}");
    assert_eq!(body["status"], status);
    assert_eq!(body["request_id"], headers["x-request-id"].to_str().unwrap(), "{body}");
    body
}

#[tokio::test]
async fn health_answers_without_a_model_and_ready_says_not_yet() {
    let health = send(Request::get("/health").body(Body::empty()).unwrap()).await;
    let ready = send(Request::get("/ready").body(Body::empty()).unwrap()).await;
    let info = send(Request::get("/info").body(Body::empty()).unwrap()).await;

    assert_eq!(health.0, StatusCode::OK);
    assert_eq!(
        serde_json::from_slice::<Value>(&health.2).unwrap(),
        json!({ "status": "ok" })
    );
    problem(&ready, 503, "not_ready");
    assert_eq!(ready.1[header::RETRY_AFTER], "1");
    problem(&info, 503, "not_ready");
}

#[tokio::test]
async fn a_valid_request_before_the_models_load_is_503_not_ready() {
    let (content_type, body) = multipart(&[("image_a", b"a"), ("image_b", b"b")]);

    let answer = send(post("/compare", &content_type, body)).await;

    problem(&answer, 503, "not_ready");
}

#[tokio::test]
async fn bodies_over_the_limit_are_413_in_every_form() {
    let big = vec![b'x'; 4096];
    let (content_type, body) = multipart(&[("image_a", &big), ("image_b", b"b")]);
    let json_body = json!({ "image_a": { "base64": String::from_utf8(big.clone()).unwrap() } }).to_string();

    let as_multipart = send(post("/compare", &content_type, body)).await;
    let as_json = send(post("/verify", "application/json", json_body)).await;

    for answer in [as_multipart, as_json] {
        let body = problem(&answer, 413, "body_too_large");
        assert!(body["detail"].as_str().unwrap().contains("2048"), "{body}");
    }
}

#[tokio::test]
async fn wrong_content_types_routes_and_methods_have_their_codes() {
    let cases = [
        (post("/compare", "text/plain", "hello"), 415, "unsupported_media_type"),
        (
            post("/embed", "application/x-www-form-urlencoded", "a=b"),
            415,
            "unsupported_media_type",
        ),
        (
            post("/embed", "application/json", "{\"images\": ["),
            400,
            "malformed_json",
        ),
        (post("/embed", "application/json", "[1, 2]"), 422, "invalid_request"),
        (
            post("/compare", "multipart/form-data; boundary=x", "not multipart at all"),
            400,
            "malformed_multipart",
        ),
        (
            Request::get("/no/such/route").body(Body::empty()).unwrap(),
            404,
            "not_found",
        ),
        (
            Request::delete("/compare").body(Body::empty()).unwrap(),
            405,
            "method_not_allowed",
        ),
    ];
    for (request, status, code) in cases {
        let answer = send(request).await;
        problem(&answer, status, code);
    }
    let wrong_method = send(Request::get("/verify").body(Body::empty()).unwrap()).await;
    assert_eq!(
        wrong_method.1[header::ALLOW],
        "POST",
        "a 405 says which methods are allowed"
    );
}

#[tokio::test]
async fn every_answer_carries_a_request_id_and_a_callers_id_is_kept() {
    let generated = send(Request::get("/health").body(Body::empty()).unwrap()).await;
    let kept = send(
        Request::get("/nope")
            .header("x-request-id", "abc-123")
            .body(Body::empty())
            .unwrap(),
    )
    .await;

    let id = generated.1["x-request-id"].to_str().unwrap();
    assert_eq!(id.len(), 36, "a UUID: {id}");
    assert_eq!(problem(&kept, 404, "not_found")["request_id"], "abc-123");
}

#[tokio::test]
async fn the_spec_and_swagger_ui_are_served() {
    let spec = send(Request::get("/openapi.json").body(Body::empty()).unwrap()).await;
    let docs = send(Request::get("/docs/").body(Body::empty()).unwrap()).await;

    assert_eq!(spec.0, StatusCode::OK);
    let served: Value = serde_json::from_slice(&spec.2).unwrap();
    // Through the same text as the served bytes, so that both sides parse floats (f32::MAX bounds) alike.
    let expected: Value = serde_json::from_str(&served_openapi_spec(&config()).to_json().unwrap()).unwrap();
    assert_eq!(served, expected);
    // This server runs open: a client generated from its document must not be told to send keys.
    assert!(served["components"]["securitySchemes"].is_null(), "no security schemes");
    for (path, item) in served["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            assert!(operation["security"].is_null(), "{method} {path} asks for a key");
            assert!(operation["responses"]["401"].is_null(), "{method} {path} documents 401");
        }
    }
    assert_eq!(docs.0, StatusCode::OK);
    assert!(
        String::from_utf8_lossy(&docs.2).contains("swagger"),
        "Swagger UI's page"
    );
}
