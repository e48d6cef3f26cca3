//! `POST /embed`: the embedding vector of each image, in the order sent.

use axum::extract::State;
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::http::extract::images::ImageData;
use crate::http::extract::input::{
    image_list, parse_model, Field, FieldKind, Form, FromUpload, ImageInput, InputLimits,
};
use crate::http::middleware::deadline::Deadline;
use crate::http::openapi::document::{ImageErrors, ImageFile};
use crate::http::problem::error::ApiError;
use crate::http::server::state::AppState;
use crate::infer::Upload;

/// Images to embed, as JSON.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmbedRequest {
    /// One or more images (at most the service's per-request limit, 32 by default).
    #[serde(default)]
    #[schema(required = true, min_items = 1, max_items = 32)]
    pub images: Vec<ImageData>,
    /// The model to use (see `GET /info`); the service's default when absent.
    #[schema(example = "mnist")]
    pub model: Option<String>,
}

/// Images to embed, as `multipart/form-data`: repeat the `images` part once per image.
#[derive(ToSchema)]
#[allow(dead_code)] // Describes the multipart form for OpenAPI; the extractor reads the parts.
pub struct EmbedForm {
    #[schema(min_items = 1, max_items = 32)]
    images: Vec<ImageFile>,
    /// The model to use; the service's default when absent.
    #[schema(required = false)]
    model: String,
}

/// One embedding per image, in the order the images were sent.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct EmbedResponse {
    /// The model that answered.
    #[schema(example = "mnist")]
    pub model: String,
    /// SHA-256 of the model's weights: embeddings are comparable only between equal hashes.
    pub sha256: String,
    /// Length of each embedding.
    #[schema(example = 128)]
    pub dimension: usize,
    /// The embeddings, `embeddings[i]` for the i-th image.
    pub embeddings: Vec<Vec<f32>>,
}

pub struct EmbedInput {
    pub(crate) images: Vec<Upload>,
    pub(crate) model: Option<String>,
}

impl FromUpload for EmbedInput {
    type Json = EmbedRequest;
    const FIELDS: &'static [Field] = &[
        Field {
            name: "images",
            kind: FieldKind::Images,
        },
        Field {
            name: "model",
            kind: FieldKind::Text,
        },
    ];

    fn from_json(json: EmbedRequest, limits: &InputLimits) -> Result<Self, ApiError> {
        Self::new(image_list("images", json.images, limits)?, parse_model(json.model))
    }

    fn from_form(mut form: Form, _: &InputLimits) -> Result<Self, ApiError> {
        let images = form.images("images");
        Self::new(images, parse_model(form.text("model")))
    }
}

impl EmbedInput {
    fn new(images: Vec<Upload>, model: Option<String>) -> Result<Self, ApiError> {
        if images.is_empty() {
            return Err(ApiError::MissingImage(
                "at least one image is required in images".into(),
            ));
        }
        Ok(Self { images, model })
    }
}

/// Embed images.
///
/// Answers the model's embedding of every image, in order: for clients that store vectors and compare
/// them themselves (with the Euclidean distance and the threshold in `GET /info`).
#[utoipa::path(
    post,
    path = "/embed",
    tag = "embed",
    request_body(
        description = "One or more images, as multipart files or as base64 in JSON.",
        content(
            (EmbedRequest = "application/json"),
            (EmbedForm = "multipart/form-data"),
        ),
    ),
    responses(
        (status = 200, description = "One embedding per image, in order.", body = EmbedResponse),
        ImageErrors,
    ),
)]
pub async fn embed(
    State(state): State<AppState>,
    Extension(Deadline(deadline)): Extension<Deadline>,
    ImageInput(input): ImageInput<EmbedInput>,
) -> Result<Json<EmbedResponse>, ApiError> {
    let model = state.model(input.model)?;
    let embeddings = model.embed(input.images, deadline).await?;
    Ok(Json(EmbedResponse {
        sha256: model.card().weights.sha256.clone(),
        dimension: embeddings.first().map_or(0, Vec::len),
        embeddings,
        model: model.name().to_string(),
    }))
}
