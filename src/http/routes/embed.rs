//! `POST /embed`: the embedding vector of each image, in the order sent.

use axum::extract::State;
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::http::extract::images::ImageData;
use crate::http::extract::input::{image_list, parse_model, ImageInput, InputLimits};
use crate::http::extract::request::{image_request, ImageRequest};
use crate::http::middleware::deadline::Deadline;
use crate::http::openapi::document::ImageErrors;
use crate::http::problem::error::ApiError;
use crate::http::server::state::AppState;
use crate::infer::Upload;

image_request! {
    /// Images to embed.
    pub(crate) struct EmbedRequest / EmbedForm {
        /// One or more images (at most the service's per-request limit, 32 by default).
        #[serde(default)]
        #[schema(required = true, min_items = 1, max_items = 32)]
        pub(crate) images: Vec<ImageData>,
        /// The model to use (see `GET /info`); the service's default when absent.
        #[schema(example = "mnist")]
        pub(crate) model: Option<String>,
    }
}

/// One embedding per image, in the order the images were sent.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct EmbedResponse {
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

pub(crate) struct EmbedInput {
    pub(crate) images: Vec<Upload>,
    pub(crate) model: Option<String>,
}

impl ImageRequest for EmbedRequest {
    type Input = EmbedInput;

    fn validate(self, limits: &InputLimits) -> Result<EmbedInput, ApiError> {
        let images = image_list("images", self.images, limits)?;
        if images.is_empty() {
            return Err(ApiError::MissingImage(
                "at least one image is required in images".into(),
            ));
        }
        Ok(EmbedInput {
            images,
            model: parse_model(self.model),
        })
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
pub(crate) async fn embed(
    State(state): State<AppState>,
    Extension(Deadline(deadline)): Extension<Deadline>,
    ImageInput(input): ImageInput<EmbedRequest>,
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
