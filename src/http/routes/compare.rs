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
use crate::infer::explain::{explain, Located, Region};
use crate::infer::Upload;
use base64::Engine as _;

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
    /// Also say where the images match (`explain` in the answer), where the model can: models with a
    /// pretrained trunk (`GET /info` lists `explains`); others answer without it.
    #[schema(example = false)]
    pub explain: Option<bool>,
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
    /// `true` to also say where the images match.
    #[schema(required = false)]
    explain: bool,
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
    /// Where the two images match; present when the request asked and the model can say.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub explain: Option<Explanation>,
}

/// Where each image matches the other.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Explanation {
    pub image_a: MatchRegion,
    pub image_b: MatchRegion,
}

/// The region of one image that matches the other, from the network's last feature map.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct MatchRegion {
    /// `[x0, y0, x1, y1]` in this image's own pixels (after EXIF orientation); `x1` and `y1` exclusive.
    #[serde(rename = "box")]
    #[schema(example = json!([40, 30, 360, 270]))]
    pub bbox: [u32; 4],
    /// The box's share of the image's area, from 0 to 1 (as TinEye's overlap percentages, over 100).
    #[schema(minimum = 0.0, maximum = 1.0, example = 0.72)]
    pub coverage: f32,
    /// The image's width and height in pixels (after EXIF orientation).
    pub width: u32,
    pub height: u32,
    /// A heatmap of the match, base64 PNG (RGBA, the image's shape, 64 pixels on its longer side): red
    /// where this image shows what the other shows, transparent elsewhere; drawn over the image.
    pub heatmap: String,
}

/// A compare request, whichever form it came in.
pub struct CompareInput {
    images: [Upload; 2],
    model: Option<String>,
    threshold: Option<f32>,
    explain: bool,
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
        Field {
            name: "explain",
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
            explain: json.explain.unwrap_or(false),
        })
    }

    fn from_form(mut form: Form, _: &InputLimits) -> Result<Self, ApiError> {
        let explain = match form.text("explain").as_deref().map(str::trim) {
            None | Some("false") => false,
            Some("true") => true,
            Some(other) => {
                return Err(ApiError::InvalidRequest(format!(
                    "explain must be true or false, got {:?}",
                    other.chars().take(20).collect::<String>()
                )))
            }
        };
        Ok(Self {
            images: [form.image("image_a")?, form.image("image_b")?],
            model: parse_model(form.text("model")),
            threshold: parse_threshold(form.text("threshold"))?,
            explain,
        })
    }
}

/// Compare two images.
///
/// Embeds both images (in the same batch) and answers with their distance, the calibrated match
/// probability and the decision against the threshold. With `explain`, also where each image matches
/// the other: a box, its share of the image and a heatmap, from the same forward pass (models with a
/// pretrained trunk; the others answer without it).
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
    let (distance, explanation) = if input.explain && card.architecture.location_grid().is_some() {
        let located = model.embed_located(input.images.into(), deadline).await?;
        let [(a, located_a), (b, located_b)] = located.as_slice() else {
            unreachable!("the model answers one embedding per image; this is a bug");
        };
        let (region_a, region_b) = explain(located_a, a, located_b, b, state.config().explain_level);
        let explanation = Explanation {
            image_a: match_region(region_a, located_a),
            image_b: match_region(region_b, located_b),
        };
        (euclidean_vec(a, b), Some(explanation))
    } else {
        let embeddings = model.embed(input.images.into(), deadline).await?;
        let [a, b] = embeddings.as_slice() else {
            unreachable!("the model answers one embedding per image; this is a bug");
        };
        (euclidean_vec(a, b), None)
    };
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
        explain: explanation,
    }))
}

fn match_region(region: Region, located: &Located) -> MatchRegion {
    let (width, height) = located.placement.image;
    MatchRegion {
        bbox: region.bbox,
        coverage: region.coverage,
        width,
        height,
        heatmap: base64::engine::general_purpose::STANDARD.encode(region.heatmap_png),
    }
}
