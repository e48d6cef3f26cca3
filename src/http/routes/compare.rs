//! `POST /compare`: are these two images the same thing?

use axum::extract::State;
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::model::distance::euclidean_vec;

use crate::http::extract::images::ImageData;
use crate::http::extract::input::{
    check_threshold, parse_model, parse_threshold, required_image, Field, FieldKind, Form, FromUpload, ImageInput,
    InputLimits,
};
use crate::http::middleware::deadline::Deadline;
use crate::http::middleware::observe::{record_decision, MATCH, NO_MATCH};
use crate::http::openapi::document::{ImageErrors, ImageFile};
use crate::http::problem::error::ApiError;
use crate::http::server::state::AppState;
use crate::infer::Upload;

/// Two images to compare, as JSON.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CompareRequest {
    /// The first image.
    #[schema(value_type = ImageData, required = true)]
    pub image_a: Option<ImageData>,
    /// The second image.
    #[schema(value_type = ImageData, required = true)]
    pub image_b: Option<ImageData>,
    /// The model to use (see `GET /info`); the service's default when absent.
    #[schema(example = "mnist")]
    pub model: Option<String>,
    /// Overrides the model's calibrated threshold: the images match when their distance is below it.
    #[schema(minimum = 0.0, example = 0.5)]
    pub threshold: Option<f32>,
}

/// Two images to compare, as `multipart/form-data` (the files' formats are read from their bytes).
#[derive(ToSchema)]
#[allow(dead_code)] // Describes the multipart form for OpenAPI; the extractor reads the parts.
pub struct CompareForm {
    image_a: ImageFile,
    image_b: ImageFile,
    /// The model to use; the service's default when absent.
    #[schema(required = false)]
    model: String,
    /// Overrides the model's calibrated threshold (a number >= 0).
    #[schema(required = false, minimum = 0.0)]
    threshold: f32,
}

/// The answer: how far apart the two images are, and whether that makes them a match.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CompareResponse {
    /// Euclidean distance between the two embeddings (0 = identical).
    #[schema(example = 0.12)]
    pub distance: f32,
    /// Calibrated probability that the two images show the same thing, from the model card.
    #[schema(minimum = 0.0, maximum = 1.0, example = 0.97)]
    pub score: f32,
    /// Whether `distance < threshold`.
    #[serde(rename = "match")]
    pub is_match: bool,
    /// The threshold the decision used: the request's, else the model's calibrated one.
    #[schema(example = 0.5)]
    pub threshold: f32,
    /// The model that answered.
    #[schema(example = "mnist")]
    pub model: String,
}

/// A compare request, whichever form it came in.
pub struct CompareInput {
    images: [Upload; 2],
    model: Option<String>,
    threshold: Option<f32>,
}

impl FromUpload for CompareInput {
    type Json = CompareRequest;
    const FIELDS: &'static [Field] = &[
        Field {
            name: "image_a",
            kind: FieldKind::Image,
        },
        Field {
            name: "image_b",
            kind: FieldKind::Image,
        },
        Field {
            name: "model",
            kind: FieldKind::Text,
        },
        Field {
            name: "threshold",
            kind: FieldKind::Text,
        },
    ];

    fn from_json(json: CompareRequest, _: &InputLimits) -> Result<Self, ApiError> {
        Ok(Self {
            images: [
                required_image("image_a", json.image_a)?,
                required_image("image_b", json.image_b)?,
            ],
            model: parse_model(json.model),
            threshold: check_threshold(json.threshold)?,
        })
    }

    fn from_form(mut form: Form, _: &InputLimits) -> Result<Self, ApiError> {
        Ok(Self {
            images: [form.image("image_a")?, form.image("image_b")?],
            model: parse_model(form.text("model")),
            threshold: parse_threshold(form.text("threshold"))?,
        })
    }
}

/// Compare two images.
///
/// Embeds both images (in the same batch) and answers with their distance, the calibrated match
/// probability and the decision against the threshold.
#[utoipa::path(
    post,
    path = "/compare",
    tag = "compare",
    request_body(
        description = "Two images, as multipart files or as base64 in JSON.",
        content(
            (CompareRequest = "application/json"),
            (CompareForm = "multipart/form-data"),
        ),
    ),
    responses(
        (status = 200, description = "The two images' distance and decision.", body = CompareResponse),
        ImageErrors,
    ),
)]
pub async fn compare(
    State(state): State<AppState>,
    Extension(Deadline(deadline)): Extension<Deadline>,
    ImageInput(input): ImageInput<CompareInput>,
) -> Result<Json<CompareResponse>, ApiError> {
    let model = state.model(input.model)?;
    let card = model.card();
    // Both images travel in one submission, hence in one batch.
    let embeddings = model.embed(input.images.into(), deadline).await?;
    let [a, b] = embeddings.as_slice() else {
        unreachable!("the model answers one embedding per image; this is a bug");
    };
    let distance = euclidean_vec(a, b);
    let threshold = input.threshold.unwrap_or(card.decision.threshold);
    let is_match = distance < threshold;
    record_decision(
        state.metrics(),
        &card.name,
        "/compare",
        if is_match { MATCH } else { NO_MATCH },
        distance,
    );
    Ok(Json(CompareResponse {
        distance,
        score: card.calibration.score(distance),
        is_match,
        threshold,
        model: model.name().to_string(),
    }))
}
