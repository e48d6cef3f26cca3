//! `ApiError`: every way a request can fail, as one `application/problem+json` shape with a stable `code`.
//!
//! Handlers and extractors return `ApiError`; nothing else builds an error response. A 5xx answer says
//! only what happened in general terms: its details go to the log, next to the request id.

use std::time::Duration;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::infer::{EmbedError, InferError};
use crate::preprocess::PreprocessError;
use crate::store::{StaleEmbeddings, StoreError};

use crate::http::middleware::request_id;
use crate::http::problem::problem_kind::problem_kinds;

/// The media type of every error answer (RFC 9457).
pub(crate) const PROBLEM_JSON: &str = "application/problem+json";

/// The challenge of a 401 (RFC 6750): a bearer token, which `x-api-key` may carry as well.
pub(crate) const WWW_AUTHENTICATE: &str = "Bearer realm=\"simverify\"";

/// Longest `detail`, so that an error quoting a hostile input cannot grow the answer or the log.
const MAX_DETAIL_CHARS: usize = 500;

/// An error answer (RFC 9457 problem details), the same shape for every endpoint and status.
#[derive(Debug, Serialize, serde::Deserialize, ToSchema)]
pub(crate) struct Problem {
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
pub(crate) struct ProblemCode(pub &'static str);

/// Everything a request can fail with. Variants carry what the `detail` needs, never more.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ApiError {
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
    #[error("{field}: {reason}")]
    UrlForbidden { field: String, reason: &'static str },
    #[error("{field} could not be fetched: {reason}")]
    UrlFetchFailed { field: String, reason: String },
    #[error("{field}: the fetched images are over the limit of {limit} bytes per request")]
    UrlTooLarge { field: String, limit: usize },
    #[error("{field} could not be fetched within {} ms", .timeout.as_millis())]
    UrlTimeout { field: String, timeout: Duration },
    /// No API key, or one that is not in the key file; answered with `WWW-Authenticate`.
    #[error("{0}")]
    Unauthorized(&'static str),
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
    #[error("the models or the subject catalogue are still loading; retry shortly")]
    NotReady,
    #[error("{what} {reason}")]
    InvalidId { what: &'static str, reason: String },
    #[error("no subject {0:?}")]
    UnknownSubject(String),
    #[error("subject {subject:?} has no image {image:?}")]
    UnknownImage { subject: String, image: String },
    #[error("subject {0:?} exists already, with other metadata; DELETE it first to replace it")]
    SubjectExists(String),
    #[error("subject {subject:?} has no images enrolled for model {model:?}")]
    NoEnrolledImages { subject: String, model: String },
    #[error(
        "{stale} of {total} stored embeddings of model {model:?} were made by other weights than the \
         loaded ones; re-enrol those images before searching or verifying against them"
    )]
    StaleEmbeddings { model: String, stale: usize, total: usize },
    #[error("the subject store cannot be reached; retry shortly")]
    StoreUnavailable,
    #[error("the service is shutting down")]
    ShuttingDown,
    #[error("the request did not finish before its deadline")]
    DeadlineExceeded,
    /// The client sent the body too slowly (see `--body-read-timeout-ms`).
    #[error("the request body did not arrive within {} ms", .0.as_millis())]
    BodyTimeout(Duration),
    /// A forward pass failed (e.g. out of device memory); the cause is in the log, next to the request id.
    #[error("the model failed on this batch; retry, and report the request id if it persists")]
    InferenceFailed,
    /// A fault of the service, not of the request; the string goes to the log only.
    #[error("internal error")]
    Internal(String),
}

// Every kind of problem with its code, status and title: the single source for the answers, the OpenAPI
// text and the README table (`tests/api/error_table.rs` holds the README to it). The macro's syntax makes
// each entry name all three, and `ApiError::kind` maps every variant to one entry in an exhaustive
// `match`, so a new error cannot compile without them.
problem_kinds! {
    MalformedJson => ("malformed_json", 400, "Malformed JSON"),
    MalformedMultipart => ("malformed_multipart", 400, "Malformed multipart body"),
    UnreadableBody => ("unreadable_body", 400, "Unreadable request body"),
    InvalidBase64 => ("invalid_base64", 400, "Invalid base64"),
    BadRequest => ("bad_request", 400, "Bad request"),
    InvalidRequest => ("invalid_request", 422, "Invalid request"),
    InvalidThreshold => ("invalid_threshold", 422, "Invalid threshold"),
    MissingImage => ("missing_image", 422, "Missing image"),
    EmptyImage => ("empty_image", 422, "Empty image"),
    TooManyImages => ("too_many_images", 422, "Too many images"),
    UndecodableImage => ("undecodable_image", 422, "Undecodable image"),
    UnsupportedImageFormat => ("unsupported_image_format", 422, "Unsupported image format"),
    ImageTooLarge => ("image_too_large", 422, "Image too large"),
    UrlForbidden => ("url_forbidden", 422, "URL not allowed"),
    UrlFetchFailed => ("url_fetch_failed", 422, "URL fetch failed"),
    UrlTooLarge => ("url_too_large", 422, "Fetched image too large"),
    UrlTimeout => ("url_timeout", 422, "URL fetch timed out"),
    Unauthorized => ("unauthorized", 401, "Unauthorized"),
    BodyTooLarge => ("body_too_large", 413, "Request body too large"),
    UnsupportedMediaType => ("unsupported_media_type", 415, "Unsupported media type"),
    UnknownModel => ("unknown_model", 404, "Unknown model"),
    NotFound => ("not_found", 404, "Not found"),
    MethodNotAllowed => ("method_not_allowed", 405, "Method not allowed"),
    Overloaded => ("overloaded", 503, "Service overloaded"),
    NotReady => ("not_ready", 503, "Not ready"),
    InvalidId => ("invalid_id", 422, "Invalid identifier"),
    UnknownSubject => ("unknown_subject", 404, "Unknown subject"),
    UnknownImage => ("unknown_image", 404, "Unknown image"),
    SubjectExists => ("subject_exists", 409, "Subject exists"),
    NoEnrolledImages => ("no_enrolled_images", 422, "No enrolled images"),
    StaleEmbeddings => ("stale_embeddings", 409, "Stale embeddings"),
    StoreUnavailable => ("store_unavailable", 503, "Store unavailable"),
    ShuttingDown => ("shutting_down", 503, "Shutting down"),
    DeadlineExceeded => ("deadline_exceeded", 504, "Deadline exceeded"),
    BodyTimeout => ("body_timeout", 408, "Request body timed out"),
    InferenceFailed => ("inference_failed", 500, "Inference failed"),
    Internal => ("internal_error", 500, "Internal error"),
}

impl ApiError {
    /// The kind of problem: its code, status and title. Exhaustive, so that a new variant needs one.
    pub(crate) fn kind(&self) -> ProblemKind {
        match self {
            Self::MalformedJson(_) => ProblemKind::MalformedJson,
            Self::MalformedMultipart(_) => ProblemKind::MalformedMultipart,
            Self::UnreadableBody(_) => ProblemKind::UnreadableBody,
            Self::InvalidBase64 { .. } => ProblemKind::InvalidBase64,
            Self::BadRequest(_) => ProblemKind::BadRequest,
            Self::InvalidRequest(_) => ProblemKind::InvalidRequest,
            Self::InvalidThreshold(_) => ProblemKind::InvalidThreshold,
            Self::MissingImage(_) => ProblemKind::MissingImage,
            Self::EmptyImage { .. } => ProblemKind::EmptyImage,
            Self::TooManyImages { .. } => ProblemKind::TooManyImages,
            Self::UndecodableImage { .. } => ProblemKind::UndecodableImage,
            Self::UnsupportedImageFormat { .. } => ProblemKind::UnsupportedImageFormat,
            Self::ImageTooLarge { .. } => ProblemKind::ImageTooLarge,
            Self::UrlForbidden { .. } => ProblemKind::UrlForbidden,
            Self::UrlFetchFailed { .. } => ProblemKind::UrlFetchFailed,
            Self::UrlTooLarge { .. } => ProblemKind::UrlTooLarge,
            Self::UrlTimeout { .. } => ProblemKind::UrlTimeout,
            Self::Unauthorized(_) => ProblemKind::Unauthorized,
            Self::BodyTooLarge { .. } => ProblemKind::BodyTooLarge,
            Self::UnsupportedMediaType(_) => ProblemKind::UnsupportedMediaType,
            Self::UnknownModel { .. } => ProblemKind::UnknownModel,
            Self::NotFound => ProblemKind::NotFound,
            Self::MethodNotAllowed => ProblemKind::MethodNotAllowed,
            Self::Overloaded { .. } => ProblemKind::Overloaded,
            Self::NotReady => ProblemKind::NotReady,
            Self::InvalidId { .. } => ProblemKind::InvalidId,
            Self::UnknownSubject(_) => ProblemKind::UnknownSubject,
            Self::UnknownImage { .. } => ProblemKind::UnknownImage,
            Self::SubjectExists(_) => ProblemKind::SubjectExists,
            Self::NoEnrolledImages { .. } => ProblemKind::NoEnrolledImages,
            Self::StaleEmbeddings { .. } => ProblemKind::StaleEmbeddings,
            Self::StoreUnavailable => ProblemKind::StoreUnavailable,
            Self::ShuttingDown => ProblemKind::ShuttingDown,
            Self::DeadlineExceeded => ProblemKind::DeadlineExceeded,
            Self::BodyTimeout(_) => ProblemKind::BodyTimeout,
            Self::InferenceFailed => ProblemKind::InferenceFailed,
            Self::Internal(_) => ProblemKind::Internal,
        }
    }

    pub(crate) fn code(&self) -> &'static str {
        self.kind().code()
    }

    pub(crate) fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.kind().status()).expect("every ProblemKind has a valid status; this is a bug")
    }

    /// The human-readable detail, bounded: it may quote what the caller sent (a model name, a JSON key).
    pub(crate) fn detail(&self) -> String {
        let detail = self.to_string();
        match detail.char_indices().nth(MAX_DETAIL_CHARS) {
            Some((cut, _)) => format!("{}...", &detail[..cut]),
            None => detail,
        }
    }

    /// The problem body; a 5xx says nothing of the cause (the log does).
    fn problem(&self) -> Problem {
        let kind = self.kind();
        let code = kind.code();
        Problem {
            kind: format!("urn:simverify:problem:{code}"),
            title: kind.title().to_string(),
            status: kind.status(),
            detail: self.detail(),
            code: code.to_string(),
            request_id: request_id::current().unwrap_or_default(),
        }
    }

    /// The error a failed image decode becomes, naming the image (`image_a`, `references[2]`, ...).
    pub(crate) fn from_preprocess(field: &str, err: PreprocessError) -> Self {
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
            InferError::InferenceFailed => Self::InferenceFailed,
            InferError::BadInput | InferError::WorkerGone => Self::Internal(err.to_string()),
        }
    }
}

impl From<EmbedError> for ApiError {
    fn from(err: EmbedError) -> Self {
        match err {
            EmbedError::InvalidBase64 { field, reason } => Self::InvalidBase64 { field, reason },
            EmbedError::Image { field, error } => Self::from_preprocess(&field, error),
            EmbedError::UrlForbidden { field, reason } => Self::UrlForbidden { field, reason },
            EmbedError::UrlFetchFailed { field, reason } => Self::UrlFetchFailed { field, reason },
            EmbedError::UrlTooLarge { field, limit } => Self::UrlTooLarge { field, limit },
            EmbedError::UrlTimeout { field, timeout } => Self::UrlTimeout { field, timeout },
            EmbedError::Overloaded { retry_after } => Self::Overloaded { retry_after },
            EmbedError::Infer(err) => err.into(),
            EmbedError::Internal(reason) => Self::Internal(reason),
        }
    }
}

impl From<StaleEmbeddings> for ApiError {
    fn from(StaleEmbeddings { model, stale, total }: StaleEmbeddings) -> Self {
        Self::StaleEmbeddings { model, stale, total }
    }
}

impl From<StoreError> for ApiError {
    /// An unreachable or busy database is worth a retry (503); anything else is our fault (500).
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Unavailable(_) => {
                tracing::error!(error = %err, "the store is unavailable");
                Self::StoreUnavailable
            }
            other => Self::Internal(other.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        // A 503 is the service working as designed (loading, overloaded, draining): polled /ready alone would
        // otherwise fill the log with errors during start-up.
        if status.is_server_error() && status != StatusCode::SERVICE_UNAVAILABLE {
            tracing::error!(code = self.code(), error = ?self, "request failed");
        } else {
            tracing::info!(code = self.code(), detail = %self.detail(), "request refused");
        }
        let body = serde_json::to_vec(&self.problem()).expect("a Problem always serialises; this is a bug");
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        match &self {
            Self::Unauthorized(_) => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(WWW_AUTHENTICATE));
            }
            Self::Overloaded { retry_after } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs(*retry_after)));
            }
            Self::NotReady | Self::StoreUnavailable => {
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
    fn a_failed_forward_pass_is_its_own_500_not_an_internal_error() {
        let err = ApiError::from(InferError::InferenceFailed);

        let problem = err.problem();

        assert_eq!((problem.status, problem.code.as_str()), (500, "inference_failed"));
        assert_eq!(problem.title, "Inference failed");
    }

    /// One error of every variant. A variant added without a sample here leaves its code uncovered below.
    fn one_of_each() -> Vec<ApiError> {
        let field = || "image_a".to_string();
        vec![
            ApiError::MalformedJson("eof".into()),
            ApiError::MalformedMultipart("no boundary".into()),
            ApiError::UnreadableBody("reset".into()),
            ApiError::InvalidBase64 {
                field: field(),
                reason: "bad".into(),
            },
            ApiError::BadRequest("bad".into()),
            ApiError::InvalidRequest("bad".into()),
            ApiError::InvalidThreshold("-1".into()),
            ApiError::MissingImage("image_b is missing".into()),
            ApiError::EmptyImage { field: field() },
            ApiError::TooManyImages { count: 9, max: 8 },
            ApiError::UndecodableImage {
                field: field(),
                reason: "truncated".into(),
            },
            ApiError::UnsupportedImageFormat {
                field: field(),
                reason: "tiff".into(),
            },
            ApiError::ImageTooLarge {
                field: field(),
                reason: "too many pixels".into(),
            },
            ApiError::UrlForbidden {
                field: field(),
                reason: "loopback",
            },
            ApiError::UrlFetchFailed {
                field: field(),
                reason: "404".into(),
            },
            ApiError::UrlTooLarge {
                field: field(),
                limit: 1,
            },
            ApiError::UrlTimeout {
                field: field(),
                timeout: Duration::from_secs(1),
            },
            ApiError::Unauthorized("no key"),
            ApiError::BodyTooLarge { limit: 1 },
            ApiError::UnsupportedMediaType("text/plain".into()),
            ApiError::UnknownModel {
                name: "x".into(),
                known: vec![],
            },
            ApiError::NotFound,
            ApiError::MethodNotAllowed,
            ApiError::Overloaded {
                retry_after: Duration::from_secs(1),
            },
            ApiError::NotReady,
            ApiError::InvalidId {
                what: "subject id",
                reason: "is empty".into(),
            },
            ApiError::UnknownSubject("s".into()),
            ApiError::UnknownImage {
                subject: "s".into(),
                image: "i".into(),
            },
            ApiError::SubjectExists("s".into()),
            ApiError::NoEnrolledImages {
                subject: "s".into(),
                model: "m".into(),
            },
            ApiError::StaleEmbeddings {
                model: "m".into(),
                stale: 1,
                total: 2,
            },
            ApiError::StoreUnavailable,
            ApiError::ShuttingDown,
            ApiError::DeadlineExceeded,
            ApiError::BodyTimeout(Duration::from_secs(1)),
            ApiError::InferenceFailed,
            ApiError::Internal("cause".into()),
        ]
    }

    #[test]
    fn every_code_is_answered_by_some_error_with_the_status_it_promises() {
        let mut answered = std::collections::BTreeSet::new();
        for err in one_of_each() {
            let problem = err.problem();
            let status = err.into_response().status().as_u16();
            let (_, promised, title) = CODES
                .iter()
                .find(|(code, _, _)| *code == problem.code)
                .unwrap_or_else(|| panic!("{} is answered but not in CODES", problem.code));
            assert_eq!((status, problem.status), (*promised, *promised), "{}", problem.code);
            assert_eq!(problem.title, *title, "{}", problem.code);
            answered.insert(problem.code);
        }
        let unanswered: Vec<_> = CODES.iter().filter(|(code, _, _)| !answered.contains(*code)).collect();
        assert!(unanswered.is_empty(), "codes no error answers with: {unanswered:?}");
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
