//! API-key authentication: when the server has a key file, every request but `/health`, `/ready`, the demo page
//! (and, when configured, `/metrics` and the docs) carries a key, as `Authorization: Bearer KEY` or
//! `x-api-key: KEY`; otherwise it is answered 401 before its body is read.

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderName};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::config::ServeConfig;

use crate::http::problem::error::ApiError;
use crate::http::server::state::AppState;

pub(crate) static X_API_KEY: HeaderName = HeaderName::from_static("x-api-key");

pub(crate) async fn require_key(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let Some(keys) = state.api_keys() else {
        return next.run(req).await;
    };
    if is_public(req.uri().path(), state.config()) {
        return next.run(req).await;
    }
    let Some(presented) = presented_key(req.headers()) else {
        return ApiError::Unauthorized("an API key is required: send `Authorization: Bearer KEY` or `x-api-key: KEY`")
            .into_response();
    };
    let Some(name) = keys.identify(presented) else {
        return ApiError::Unauthorized("the API key is not valid").into_response();
    };
    state.metrics().requests_by_key_total.with_label_values(&[name]).inc();
    // Nothing further in needs the key; dropping it means no later layer can log it by mistake.
    req.headers_mut().remove(header::AUTHORIZATION);
    req.headers_mut().remove(&X_API_KEY);
    next.run(req).await
}

/// Paths open without a key: probes always (orchestrators carry no keys), metrics and docs on request.
fn is_public(path: &str, config: &ServeConfig) -> bool {
    match path {
        "/health" | "/ready" => true,
        // The demo page and its static files carry no data; the page asks for a key before calling the API.
        "/" | "/static/demo.css" | "/static/demo.js" => true,
        "/metrics" => config.public_metrics,
        "/openapi.json" | "/docs" => config.public_docs,
        _ => config.public_docs && path.starts_with("/docs/"),
    }
}

/// The key from `Authorization: Bearer KEY` (scheme case-insensitive), else from `x-api-key`.
fn presented_key(headers: &HeaderMap) -> Option<&[u8]> {
    if let Some(value) = headers.get(header::AUTHORIZATION) {
        let value = value.as_bytes();
        let (scheme, token) = value.split_at(value.iter().position(|&b| b == b' ')?);
        return scheme.eq_ignore_ascii_case(b"bearer").then(|| token.trim_ascii());
    }
    headers.get(&X_API_KEY).map(|v| v.as_bytes().trim_ascii())
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| {
                (
                    HeaderName::from_bytes(k.as_bytes()).unwrap(),
                    HeaderValue::from_str(v).unwrap(),
                )
            })
            .collect()
    }

    #[test]
    fn keys_come_from_bearer_or_x_api_key() {
        assert_eq!(
            presented_key(&headers(&[("authorization", "Bearer sv_abc")])),
            Some(&b"sv_abc"[..])
        );
        assert_eq!(
            presented_key(&headers(&[("authorization", "bearer  sv_abc ")])),
            Some(&b"sv_abc"[..])
        );
        assert_eq!(
            presented_key(&headers(&[("x-api-key", "sv_abc")])),
            Some(&b"sv_abc"[..])
        );
        assert_eq!(presented_key(&headers(&[("authorization", "Basic dTpw")])), None);
        assert_eq!(presented_key(&headers(&[("authorization", "sv_abc")])), None);
        assert_eq!(presented_key(&headers(&[])), None);
    }

    #[test]
    fn only_probes_are_always_public() {
        let closed = ServeConfig::try_from_args::<[&str; 0], &str>([]).unwrap();
        let open = ServeConfig::try_from_args(["--public-metrics", "--public-docs"]).unwrap();

        for path in ["/health", "/ready", "/", "/static/demo.css", "/static/demo.js"] {
            assert!(is_public(path, &closed), "{path}");
        }
        for path in ["/metrics", "/docs", "/docs/index.html", "/openapi.json"] {
            assert!(!is_public(path, &closed), "{path}");
            assert!(is_public(path, &open), "{path}");
        }
        for path in ["/compare", "/info", "/health/", "/docsx", "/nope", "/static/x"] {
            assert!(!is_public(path, &open), "{path}");
        }
        // The demo page's report plots come from a model: the page fetches them with the key.
        assert!(!is_public("/models/mnist/report/roc.png", &open));
    }
}
