//! `ApiError`: every way a request can fail, as one `application/problem+json` shape with a stable `code`.
//!
//! Handlers and extractors return `ApiError`; nothing else builds an error response. A 5xx answer says
//! only what happened in general terms: its details go to the log, next to the request id.

use std::time::Duration;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::infer::InferError;
use crate::preprocess::PreprocessError;

use super::request_id;

/// The media type of every error answer (RFC 9457).
pub const PROBLEM_JSON: &str = "application/problem+json";

/// Longest `detail`, so that an error quoting a hostile input cannot grow the answer or the log.
const MAX_DETAIL_CHARS: usize = 500;

/// An error answer (RFC 9457 problem details), the same shape for every endpoint and status.
#[derive(Debug, Serialize, serde::Deserialize, ToSchema)]
pub struct Problem {
    /// A URI naming the kind of problem: `urn:simverify:problem:<code>`.
    #[serde(rename = "type")]
    #[schema(example = "urn:simverify:problem:unknown_model")]
    pub kind: String,
    /// A short summary of the kind of problem; the same for every occurrence of a code.
    #[schema(example = "Unknown model")]
    pub title: String,
    /// The HTTP status code, repeated for clients that only see the body.
    #[schema(example = 404)]
    pub status: u16,
    /// What went wrong with this request, for a human.
    #[schema(example = "no model named \"faces\"; the models are: mnist")]
    pub detail: String,
    /// A stable, machine-readable identifier of the problem: branch on this, not on `detail`.
    #[schema(example = "unknown_model")]
    pub code: String,
    /// The request's id, also in the `x-request-id` header; quote it when reporting a problem.
    #[schema(example = "3f1c0c4e-7d4b-4a5e-9c1e-2a1f7d5b9e10")]
    pub request_id: String,
}

/// The stable code of an error answer, attached to the response so that middleware can count it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProblemCode(pub &'static str);

/// Everything a request can fail with. Variants carry what the `detail` needs, never more.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("the request body is not valid JSON: {0}")]
    MalformedJson(String),
    #[error("the multipart body cannot be read: {0}")]
    MalformedMultipart(String),
    #[error("the request body could not be read: {0}")]
    UnreadableBody(String),
    #[error("{field} is not valid base64: {reason}")]
    InvalidBase64 { field: String, reason: String },
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    InvalidRequest(String),
    #[error("threshold must be a finite number >= 0, got {0}")]
    InvalidThreshold(String),
    #[error("{0}")]
    MissingImage(String),
    #[error("{field} is empty")]
    EmptyImage { field: String },
    #[error("{count} images sent; at most {max} are accepted per request")]
    TooManyImages { count: usize, max: usize },
    #[error("{field} cannot be decoded: {reason}")]
    UndecodableImage { field: String, reason: String },
    #[error("{field}: {reason}")]
    UnsupportedImageFormat { field: String, reason: String },
    #[error("{field}: {reason}")]
    ImageTooLarge { field: String, reason: String },
    #[error("the request body is larger than the limit of {limit} bytes")]
    BodyTooLarge { limit: usize },
    #[error("content type {0} is not accepted; send multipart/form-data or application/json")]
    UnsupportedMediaType(String),
    #[error("no model named {name:?}; the models are: {}", known.join(", "))]
    UnknownModel { name: String, known: Vec<String> },
    #[error("no such endpoint; see /docs for the API")]
    NotFound,
    #[error("this endpoint does not accept that method; see /docs for the API")]
    MethodNotAllowed,
    #[error("the service is at capacity; retry after {} s", retry_after_secs(*.retry_after))]
    Overloaded { retry_after: Duration },
    #[error("the models are still loading; retry shortly")]
    NotReady,
    #[error("the service is shutting down")]
    ShuttingDown,
    #[error("the request did not finish before its deadline")]
    DeadlineExceeded,
    /// A fault of the service, not of the request; the string goes to the log only.
    #[error("internal error")]
    Internal(String),
}

/// Every code with its status and title: the single source for the answers, the OpenAPI text and the README.
pub const CODES: &[(&str, u16, &str)] = &[
    ("malformed_json", 400, "Malformed JSON"),
    ("malformed_multipart", 400, "Malformed multipart body"),
    ("unreadable_body", 400, "Unreadable request body"),
    ("invalid_base64", 400, "Invalid base64"),
    ("bad_request", 400, "Bad request"),
    ("invalid_request", 422, "Invalid request"),
    ("invalid_threshold", 422, "Invalid threshold"),
    ("missing_image", 422, "Missing image"),
    ("empty_image", 422, "Empty image"),
    ("too_many_images", 422, "Too many images"),
    ("undecodable_image", 422, "Undecodable image"),
    ("unsupported_image_format", 422, "Unsupported image format"),
    ("image_too_large", 422, "Image too large"),
    ("body_too_large", 413, "Request body too large"),
    ("unsupported_media_type", 415, "Unsupported media type"),
    ("unknown_model", 404, "Unknown model"),
    ("not_found", 404, "Not found"),
    ("method_not_allowed", 405, "Method not allowed"),
    ("overloaded", 503, "Service overloaded"),
    ("not_ready", 503, "Not ready"),
    ("shutting_down", 503, "Shutting down"),
    ("deadline_exceeded", 504, "Deadline exceeded"),
    ("internal_error", 500, "Internal error"),
];

impl ApiError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::MalformedJson(_) => "malformed_json",
            Self::MalformedMultipart(_) => "malformed_multipart",
            Self::UnreadableBody(_) => "unreadable_body",
            Self::InvalidBase64 { .. } => "invalid_base64",
            Self::BadRequest(_) => "bad_request",
            Self::InvalidRequest(_) => "invalid_request",
            Self::InvalidThreshold(_) => "invalid_threshold",
            Self::MissingImage(_) => "missing_image",
            Self::EmptyImage { .. } => "empty_image",
            Self::TooManyImages { .. } => "too_many_images",
            Self::UndecodableImage { .. } => "undecodable_image",
            Self::UnsupportedImageFormat { .. } => "unsupported_image_format",
            Self::ImageTooLarge { .. } => "image_too_large",
            Self::BodyTooLarge { .. } => "body_too_large",
            Self::UnsupportedMediaType(_) => "unsupported_media_type",
            Self::UnknownModel { .. } => "unknown_model",
            Self::NotFound => "not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::Overloaded { .. } => "overloaded",
            Self::NotReady => "not_ready",
            Self::ShuttingDown => "shutting_down",
            Self::DeadlineExceeded => "deadline_exceeded",
            Self::Internal(_) => "internal_error",
        }
    }

    pub fn status(&self) -> StatusCode {
        let status = lookup(self.code()).1;
        StatusCode::from_u16(status).expect("CODES holds valid statuses; this is a bug")
    }

    /// The human-readable detail, bounded: it may quote what the caller sent (a model name, a JSON key).
    pub fn detail(&self) -> String {
        let detail = self.to_string();
        match detail.char_indices().nth(MAX_DETAIL_CHARS) {
            Some((cut, _)) => format!("{}...", &detail[..cut]),
            None => detail,
        }
    }

    /// The problem body; a 5xx says nothing of the cause (the log does).
    fn problem(&self) -> Problem {
        let (code, status, title) = lookup(self.code());
        Problem {
            kind: format!("urn:simverify:problem:{code}"),
            title: title.to_string(),
            status,
            detail: self.detail(),
            code: code.to_string(),
            request_id: request_id::current().unwrap_or_default(),
        }
    }

    /// The error a failed image decode becomes, naming the image (`image_a`, `references[2]`, ...).
    pub fn from_preprocess(field: &str, err: PreprocessError) -> Self {
        let field = field.to_string();
        match err {
            PreprocessError::Empty => Self::EmptyImage { field },
            PreprocessError::UnsupportedFormat(_) => Self::UnsupportedImageFormat {
                field,
                reason: err.to_string(),
            },
            PreprocessError::Undecodable(reason) => Self::UndecodableImage { field, reason },
            PreprocessError::TooLarge { .. } => Self::ImageTooLarge {
                field,
                reason: err.to_string(),
            },
        }
    }
}

fn lookup(code: &str) -> (&'static str, u16, &'static str) {
    *CODES
        .iter()
        .find(|(c, _, _)| *c == code)
        .expect("every ApiError code is listed in CODES; this is a bug")
}

/// Whole seconds for `Retry-After`, never 0 (which would invite an immediate retry storm).
fn retry_after_secs(d: Duration) -> u64 {
    d.as_secs_f64().ceil().max(1.0) as u64
}

impl From<InferError> for ApiError {
    fn from(err: InferError) -> Self {
        match err {
            InferError::UnknownModel { name, known } => Self::UnknownModel { name, known },
            InferError::Overloaded { retry_after } => Self::Overloaded { retry_after },
            InferError::DeadlineExceeded => Self::DeadlineExceeded,
            InferError::BadInput | InferError::WorkerGone => Self::Internal(err.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::error!(code = self.code(), error = ?self, "request failed");
        } else {
            tracing::info!(code = self.code(), detail = %self.detail(), "request refused");
        }
        let body = serde_json::to_vec(&self.problem()).expect("a Problem always serialises; this is a bug");
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        match &self {
            Self::Overloaded { retry_after } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs(*retry_after)));
            }
            Self::NotReady => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(1u64));
            }
            _ => {}
        }
        response.extensions_mut().insert(ProblemCode(self.code()));
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_variant_code_is_in_the_table_once() {
        for (i, (code, status, _)) in CODES.iter().enumerate() {
            assert!(CODES[i + 1..].iter().all(|(c, _, _)| c != code), "{code} twice");
            assert!(StatusCode::from_u16(*status).is_ok());
        }
    }

    #[test]
    fn internal_errors_do_not_leak_their_cause() {
        let err = ApiError::Internal("libtorch: CUDA out of memory at /secret/path".into());

        let problem = err.problem();

        assert_eq!(problem.status, 500);
        assert_eq!(problem.code, "internal_error");
        assert!(!problem.detail.contains("secret"), "{}", problem.detail);
    }

    #[test]
    fn overload_sets_retry_after_in_whole_seconds() {
        let response = ApiError::Overloaded {
            retry_after: Duration::from_millis(1200),
        }
        .into_response();

        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[header::RETRY_AFTER], "2");
        assert_eq!(response.headers()[header::CONTENT_TYPE], PROBLEM_JSON);
    }

    #[test]
    fn unknown_model_names_the_models_that_exist() {
        let err = ApiError::from(InferError::UnknownModel {
            name: "faces".into(),
            known: vec!["mnist".into(), "signatures".into()],
        });

        assert_eq!(err.status(), StatusCode::NOT_FOUND);
        assert!(err.to_string().contains("mnist, signatures"), "{err}");
    }

    #[test]
    fn details_quoting_the_caller_are_bounded() {
        let err = ApiError::from(InferError::UnknownModel {
            name: "x".repeat(100_000),
            known: vec!["mnist".into()],
        });

        let problem = err.problem();

        assert!(problem.detail.len() < 600, "{} chars", problem.detail.len());
        assert!(problem.detail.starts_with("no model named \"xxx"));
    }

    #[test]
    fn preprocess_errors_name_the_image() {
        let err = ApiError::from_preprocess("references[1]", PreprocessError::Empty);

        assert_eq!(err.code(), "empty_image");
        assert_eq!(err.to_string(), "references[1] is empty");
    }
}
