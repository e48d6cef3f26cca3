//! `POST /compare`: are these two images the same thing?

use axum::extract::State;
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::model::distance::euclidean_vec;

use crate::http::extract::images::ImageData;
use crate::http::extract::input::{parse_model, required_image, ImageInput, InputLimits};
use crate::http::extract::request::{image_request, ImageRequest, Threshold};
use crate::http::middleware::deadline::Deadline;
use crate::http::middleware::observe::{record_decision, MATCH, NO_MATCH};
use crate::http::openapi::document::ImageErrors;
use crate::http::problem::error::ApiError;
use crate::http::server::state::AppState;
use crate::infer::explain::{explain, Located, Region};
use crate::infer::Upload;
use base64::Engine as _;

image_request! {
    /// Two images to compare.
    pub(crate) struct CompareRequest / CompareForm {
        /// The first image.
        #[schema(value_type = ImageData, required = true)]
        pub(crate) image_a: Option<ImageData>,
        /// The second image.
        #[schema(value_type = ImageData, required = true)]
        pub(crate) image_b: Option<ImageData>,
        /// The model to use (see `GET /info`); the service's default when absent.
        #[schema(example = "mnist")]
        pub(crate) model: Option<String>,
        /// Overrides the model's calibrated threshold: the images match when their distance is below it.
        #[schema(value_type = Option<f32>, minimum = 0.0, maximum = 3.4028234663852886e38, example = 0.5)]
        pub(crate) threshold: Option<Threshold>,
        /// Also say where the images match (`explain` in the answer), where the model can: models with a
        /// pretrained trunk (`GET /info` lists `explains`); others answer without it.
        #[schema(example = false)]
        pub(crate) explain: Option<bool>,
    }
}

/// The answer: how far apart the two images are, and whether that makes them a match.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct CompareResponse {
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
pub(crate) struct Explanation {
    pub image_a: MatchRegion,
    pub image_b: MatchRegion,
}

/// The region of one image that matches the other, from the network's last feature map.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct MatchRegion {
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

/// A compare request, checked.
pub(crate) struct CompareInput {
    images: [Upload; 2],
    model: Option<String>,
    threshold: Option<f32>,
    explain: bool,
}

impl ImageRequest for CompareRequest {
    type Input = CompareInput;

    fn validate(self, _: &InputLimits) -> Result<CompareInput, ApiError> {
        Ok(CompareInput {
            images: [
                required_image("image_a", self.image_a)?,
                required_image("image_b", self.image_b)?,
            ],
            model: parse_model(self.model),
            threshold: Threshold::check(self.threshold)?,
            explain: self.explain.unwrap_or(false),
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
pub(crate) async fn compare(
    State(state): State<AppState>,
    Extension(Deadline(deadline)): Extension<Deadline>,
    ImageInput(input): ImageInput<CompareRequest>,
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
