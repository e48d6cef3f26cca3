//! The subjects API: `PUT/GET/DELETE /subjects/{id}`, `GET /subjects` (cursor pages),
//! `POST /subjects/{id}/images` (enrol images: embeddings are stored; the images only with
//! `--keep-images`) and
//! `DELETE /subjects/{id}/images/{image_id}`. Every write is answered after its commit.

use axum::body::Bytes;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::store::{check_id, now_ms, rfc3339, Created, ImageId, ImageRow, SubjectRow};

use crate::http::extract::input::ImageInput;
use crate::http::extract::json::optional_json;
use crate::http::extract::kept::keep_bytes;
use crate::http::middleware::deadline::Deadline;
use crate::http::openapi::document::{CatalogueImageErrors, SubjectErrors};
use crate::http::problem::error::ApiError;
use crate::http::routes::embed::{EmbedForm, EmbedRequest};
use crate::http::server::state::AppState;

/// Largest `metadata`, as compact JSON: a subject's label, not a document store.
pub(crate) const MAX_METADATA_BYTES: usize = 4096;

/// Subjects per page when the caller does not say, and the most a page may hold.
const DEFAULT_PAGE: u32 = 100;
const MAX_PAGE: u32 = 1000;

/// What `PUT /subjects/{id}` may carry (the body itself is optional).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SubjectRequest {
    /// A JSON object (at most 4096 bytes as compact JSON), returned as sent; null is none.
    #[schema(value_type = Option<Object>, example = json!({"name": "Ada", "account": "42"}))]
    pub metadata: Option<serde_json::Value>,
}

/// A subject: someone or something whose images are enrolled.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct Subject {
    /// The subject's id: 1 to 128 of `A-Z a-z 0-9 . _ -`.
    #[schema(example = "customer-42")]
    pub id: String,
    /// The metadata given at creation, or null.
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<serde_json::Value>,
    /// When the subject was created (RFC 3339, UTC).
    #[schema(example = "2024-05-01T12:34:56.789Z")]
    pub created_at: String,
    /// When its images last changed (RFC 3339, UTC).
    #[schema(example = "2024-05-01T12:35:02.120Z")]
    pub updated_at: String,
    /// Enrolled images, over every model.
    pub image_count: i64,
    /// The enrolled images, oldest first (`GET /subjects/{id}` only; absent in lists).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub images: Option<Vec<EnrolledImage>>,
}

/// One enrolled image: its embedding is stored (the image itself only with `--keep-images`).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct EnrolledImage {
    /// 32 hex digits.
    #[schema(example = "9f2c4e1a0b7d4c3e8f1a2b3c4d5e6f70")]
    pub id: String,
    /// The model that embedded it.
    #[schema(example = "mnist")]
    pub model: String,
    /// SHA-256 of the weights that embedded it; when the model's weights change, it is stale.
    pub weights_sha256: String,
    #[schema(example = "2024-05-01T12:35:02.120Z")]
    pub created_at: String,
}

/// One page of subjects, in id order.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct SubjectList {
    pub subjects: Vec<Subject>,
    /// Pass as `cursor` for the next page; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// `GET /subjects` parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ListParams {
    /// Subjects per page, 1 to 1000 (100 by default).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page; the first page without it.
    pub cursor: Option<String>,
}

/// What an enrolment stored.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct Enrolled {
    #[schema(example = "customer-42")]
    pub subject: String,
    #[schema(example = "mnist")]
    pub model: String,
    /// SHA-256 of the weights that embedded the images.
    pub sha256: String,
    /// One id per image, in the order sent.
    pub image_ids: Vec<String>,
}

/// Create a subject.
///
/// 201 with the new subject; 200 when it exists already with the same metadata (a repeated PUT is
/// harmless); 409 `subject_exists` when it exists with other metadata.
#[utoipa::path(
    put,
    path = "/subjects/{id}",
    tag = "subjects",
    params(("id" = String, Path, description = "The subject's id: 1 to 128 of `A-Z a-z 0-9 . _ -`.")),
    request_body(content = Option<SubjectRequest>, content_type = "application/json", description = "Optional."),
    responses(
        (status = 201, description = "Created.", body = Subject),
        (status = 200, description = "It existed already, with the same metadata.", body = Subject),
        SubjectErrors,
    ),
)]
pub(crate) async fn put_subject(
    State(state): State<AppState>,
    SubjectId(id): SubjectId,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<Subject>), ApiError> {
    let metadata = metadata_of(&headers, &body)?;
    let catalogue = state.catalogue()?;
    let created = catalogue.create_subject(&id, metadata.as_deref(), now_ms()).await?;
    match created {
        Created::New(row) => Ok((StatusCode::CREATED, Json(subject(row, None)))),
        Created::Identical(row) => Ok((StatusCode::OK, Json(subject(row, None)))),
        Created::Conflict => Err(ApiError::SubjectExists(id)),
    }
}

/// A subject and its enrolled images.
#[utoipa::path(
    get,
    path = "/subjects/{id}",
    tag = "subjects",
    params(("id" = String, Path, description = "The subject's id.")),
    responses((status = 200, description = "The subject.", body = Subject), SubjectErrors),
)]
pub(crate) async fn get_subject(
    State(state): State<AppState>,
    SubjectId(id): SubjectId,
) -> Result<Json<Subject>, ApiError> {
    let catalogue = state.catalogue()?;
    let row = catalogue.subject(&id).await?;
    let images = catalogue.subject_images(&id).await?;
    match (row, images) {
        (Some(row), Some(images)) => Ok(Json(subject(row, Some(images)))),
        _ => Err(ApiError::UnknownSubject(id)),
    }
}

/// Delete a subject and every image enrolled for it.
#[utoipa::path(
    delete,
    path = "/subjects/{id}",
    tag = "subjects",
    params(("id" = String, Path, description = "The subject's id.")),
    responses((status = 204, description = "Deleted, with its images."), SubjectErrors),
)]
pub(crate) async fn delete_subject(
    State(state): State<AppState>,
    SubjectId(id): SubjectId,
) -> Result<StatusCode, ApiError> {
    let catalogue = state.catalogue()?;
    if !catalogue.delete_subject(&id).await? {
        return Err(ApiError::UnknownSubject(id));
    }
    Ok(StatusCode::NO_CONTENT)
}

/// List subjects.
///
/// In id order, a page at a time: pass each page's `next_cursor` as `cursor` for the next.
#[utoipa::path(
    get,
    path = "/subjects",
    tag = "subjects",
    params(ListParams),
    responses((status = 200, description = "A page of subjects.", body = SubjectList), SubjectErrors),
)]
pub(crate) async fn list_subjects(
    State(state): State<AppState>,
    params: Result<Query<ListParams>, QueryRejection>,
) -> Result<Json<SubjectList>, ApiError> {
    let Query(params) = params.map_err(|e| ApiError::InvalidRequest(e.body_text()))?;
    let limit = params.limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::InvalidRequest(format!(
            "limit must be between 1 and {MAX_PAGE}, got {limit}"
        )));
    }
    let cursor = params.cursor.unwrap_or_default();
    if !cursor.is_empty() {
        check_id(&cursor).map_err(|e| ApiError::InvalidId {
            what: "cursor",
            reason: e.to_string(),
        })?;
    }
    let catalogue = state.catalogue()?;
    // One more than asked: whether it comes back says whether there is a next page.
    let mut rows = catalogue.list_subjects(&cursor, i64::from(limit) + 1).await?;
    let more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    let next_cursor = more.then(|| rows.last().map(|r| r.id.clone())).flatten();
    Ok(Json(SubjectList {
        subjects: rows.into_iter().map(|row| subject(row, None)).collect(),
        next_cursor,
    }))
}

/// Enrol images for a subject.
///
/// Embeds every image with the model (the default when none is named) in one batch and stores the
/// embeddings, all or none; the images themselves are not kept unless the server runs with
/// `--keep-images` (then image URLs are refused here). Answered once stored; from then on search and
/// verify by subject see them.
#[utoipa::path(
    post,
    path = "/subjects/{id}/images",
    tag = "subjects",
    params(("id" = String, Path, description = "The subject's id.")),
    request_body(
        description = "One or more images, as multipart files or as base64 in JSON.",
        content(
            (EmbedRequest = "application/json"),
            (EmbedForm = "multipart/form-data"),
        ),
    ),
    responses(
        (status = 201, description = "Stored; one id per image, in order.", body = Enrolled),
        CatalogueImageErrors,
    ),
)]
pub(crate) async fn enrol(
    State(state): State<AppState>,
    Extension(Deadline(deadline)): Extension<Deadline>,
    SubjectId(id): SubjectId,
    ImageInput(input): ImageInput<EmbedRequest>,
) -> Result<(StatusCode, Json<Enrolled>), ApiError> {
    let catalogue = state.catalogue()?;
    // Refused before the images are embedded: an unknown subject should not cost a forward pass.
    if catalogue.subject(&id).await?.is_none() {
        return Err(ApiError::UnknownSubject(id));
    }
    let (uploads, kept) = if state.config().keep_images {
        let (uploads, kept) = keep_bytes(input.images)?;
        (uploads, Some(kept))
    } else {
        (input.images, None)
    };
    let model = state.model(input.model)?;
    let embeddings = model.embed(uploads, deadline).await?;
    let sha256 = model.card().weights.sha256.clone();
    let kept: Option<Vec<&[u8]>> = kept.as_ref().map(|kept| kept.iter().map(|b| b.as_ref()).collect());
    let ids = catalogue
        .add_images(&id, model.name(), &sha256, &embeddings, kept.as_deref(), now_ms())
        .await?
        // Deleted while its images were being embedded.
        .ok_or_else(|| ApiError::UnknownSubject(id.clone()))?;
    Ok((
        StatusCode::CREATED,
        Json(Enrolled {
            subject: id,
            model: model.name().to_string(),
            sha256,
            image_ids: ids.iter().map(ImageId::to_string).collect(),
        }),
    ))
}

/// Delete one enrolled image.
#[utoipa::path(
    delete,
    path = "/subjects/{id}/images/{image_id}",
    tag = "subjects",
    params(
        ("id" = String, Path, description = "The subject's id."),
        ("image_id" = String, Path, description = "The image's id, as enrolment answered it."),
    ),
    responses((status = 204, description = "Deleted."), SubjectErrors),
)]
pub(crate) async fn delete_image(
    State(state): State<AppState>,
    ids: Result<Path<(String, String)>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    let Path((id, image)) = ids.map_err(|e| ApiError::InvalidId {
        what: "the path",
        reason: e.body_text(),
    })?;
    check_id(&id).map_err(|e| ApiError::InvalidId {
        what: "the subject id",
        reason: e.to_string(),
    })?;
    let unknown = || ApiError::UnknownImage {
        subject: id.clone(),
        image: image.chars().take(40).collect(),
    };
    let image_id = ImageId::parse(&image).ok_or_else(unknown)?;
    let catalogue = state.catalogue()?;
    if !catalogue.delete_image(&id, image_id, now_ms()).await? {
        return Err(unknown());
    }
    Ok(StatusCode::NO_CONTENT)
}

/// The `{id}` of a subject route, checked: a path that does not give one is 422 `invalid_id`.
pub(crate) struct SubjectId(pub String);

impl<S: Send + Sync> FromRequestParts<S> for SubjectId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let invalid = |reason| ApiError::InvalidId {
            what: "the subject id",
            reason,
        };
        let Path(id) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|e| invalid(e.body_text()))?;
        check_id(&id).map_err(|e| invalid(e.to_string()))?;
        Ok(SubjectId(id))
    }
}

/// The optional JSON body of a PUT, as compact metadata text.
fn metadata_of(headers: &HeaderMap, body: &Bytes) -> Result<Option<String>, ApiError> {
    // A JSON `null` body is no body, as the document's optional body says.
    let request: Option<SubjectRequest> = optional_json(headers, body)?;
    let Some(metadata) = request.and_then(|r| r.metadata).filter(|m| !m.is_null()) else {
        return Ok(None);
    };
    if !metadata.is_object() {
        return Err(ApiError::InvalidRequest(
            "metadata must be a JSON object (or null for none)".into(),
        ));
    }
    let text = metadata.to_string();
    if text.len() > MAX_METADATA_BYTES {
        return Err(ApiError::InvalidRequest(format!(
            "metadata is {} bytes as compact JSON; at most {MAX_METADATA_BYTES} are accepted",
            text.len()
        )));
    }
    Ok(Some(text))
}

fn subject(row: SubjectRow, images: Option<Vec<ImageRow>>) -> Subject {
    Subject {
        metadata: row.metadata.as_deref().and_then(|m| serde_json::from_str(m).ok()),
        created_at: rfc3339(row.created_ms),
        updated_at: rfc3339(row.updated_ms),
        image_count: images.as_ref().map_or(row.image_count, |i| i.len() as i64),
        images: images.map(|images| {
            images
                .into_iter()
                .map(|image| EnrolledImage {
                    id: image.id.to_string(),
                    model: image.model,
                    weights_sha256: image.weights_sha256,
                    created_at: rfc3339(image.created_ms),
                })
                .collect()
        }),
        id: row.id,
    }
}
