//! An optional JSON body: empty (or `null`) is none; anything else must be `application/json` and parse,
//! a syntax error answering 400 `malformed_json` and a well-formed body of the wrong shape 422.

use axum::http::{header, HeaderMap};
use bytes::Bytes;
use serde::de::DeserializeOwned;

use crate::http::problem::error::ApiError;

/// The body as `T`; `None` when it is empty, white space or `null`.
pub(crate) fn optional_json<T: DeserializeOwned>(headers: &HeaderMap, body: &Bytes) -> Result<Option<T>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).to_ascii_lowercase());
    let json = content_type
        .as_deref()
        .and_then(|t| t.split(';').next())
        .is_some_and(|t| t.trim() == "application/json" || t.trim().ends_with("+json"));
    if !json {
        return Err(ApiError::UnsupportedMediaType(format!(
            "{:?} (this endpoint takes application/json)",
            content_type
                .unwrap_or_else(|| "(none)".into())
                .chars()
                .take(100)
                .collect::<String>()
        )));
    }
    serde_json::from_slice(body).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => ApiError::InvalidRequest(e.to_string()),
        _ => ApiError::MalformedJson(e.to_string()),
    })
}
