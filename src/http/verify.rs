//! `POST /verify`: does a candidate image show the same thing as a set of reference images?

use axum::extract::State;
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::model::distance::euclidean_vec;

use super::deadline::Deadline;
use super::embedding::{embed_uploads, Embedded};
use super::error::ApiError;
use super::images::{ImageData, Upload};
use super::input::{
    check_threshold, image_list, parse_model, parse_threshold, required_image, Field, FieldKind, Form, FromUpload,
    ImageInput, InputLimits,
};
use super::observe::{record_decision, REJECTED, VERIFIED};
use super::openapi::{ImageErrors, ImageFile};
use super::state::AppState;

/// How the distances to several references become one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Aggregate {
    /// The closest reference decides: one good match is enough.
    #[default]
    Min,
    /// The average distance decides: the candidate must resemble the references as a whole.
    Mean,
}

impl Aggregate {
    fn parse(text: &str) -> Result<Self, ApiError> {
        match text.trim().to_ascii_lowercase().as_str() {
            "min" => Ok(Self::Min),
            "mean" => Ok(Self::Mean),
            _ => Err(ApiError::InvalidRequest(format!(
                "aggregate must be \"min\" or \"mean\", got {:?}",
                text.chars().take(40).collect::<String>()
            ))),
        }
    }

    fn apply(self, distances: &[f32]) -> f32 {
        match self {
            Self::Min => distances.iter().copied().fold(f32::INFINITY, f32::min),
            Self::Mean => distances.iter().sum::<f32>() / distances.len() as f32,
        }
    }
}

/// A candidate and its references, as JSON.
///
/// The references are a list of images today; a later version will also accept the name of an enrolled
/// subject instead, which is why `references` is not marked required in this schema.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyRequest {
    /// The image to verify.
    #[schema(value_type = ImageData, required = true)]
    pub candidate: Option<ImageData>,
    /// Images known to show the claimed identity (one or more; at most the per-request limit).
    #[schema(min_items = 1)]
    pub references: Option<Vec<ImageData>>,
    /// How the per-reference distances are combined; `min` by default.
    #[serde(default)]
    pub aggregate: Aggregate,
    /// The model to use (see `GET /info`); the service's default when absent.
    #[schema(example = "mnist")]
    pub model: Option<String>,
    /// Overrides the model's calibrated threshold: verified when the aggregated distance is below it.
    #[schema(minimum = 0.0, example = 0.5)]
    pub threshold: Option<f32>,
}

/// A candidate and its references, as `multipart/form-data`: repeat the `references` part once per image.
#[derive(ToSchema)]
#[allow(dead_code)] // Describes the multipart form for OpenAPI; the extractor reads the parts.
pub struct VerifyForm {
    candidate: ImageFile,
    #[schema(min_items = 1)]
    references: Vec<ImageFile>,
    /// `min` (default) or `mean`.
    #[schema(required = false)]
    aggregate: Aggregate,
    /// The model to use; the service's default when absent.
    #[schema(required = false)]
    model: String,
    /// Overrides the model's calibrated threshold (a number >= 0).
    #[schema(required = false, minimum = 0.0)]
    threshold: f32,
}

/// The verdict, with the distances behind it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct VerifyResponse {
    /// Whether the aggregated distance is below the threshold.
    pub verified: bool,
    /// `verified` or `rejected`, the same verdict as a word (what the metrics count).
    #[schema(example = "verified")]
    pub decision: String,
    /// The aggregated distance that was held against the threshold.
    #[schema(example = 0.21)]
    pub distance: f32,
    /// Calibrated match probability of the aggregated distance.
    #[schema(minimum = 0.0, maximum = 1.0, example = 0.93)]
    pub score: f32,
    /// The candidate's distance to each reference, in the order the references were sent.
    pub distances: Vec<f32>,
    /// How `distances` became `distance`.
    pub aggregate: Aggregate,
    /// The threshold the decision used: the request's, else the model's calibrated one.
    #[schema(example = 0.5)]
    pub threshold: f32,
    /// The model that answered.
    #[schema(example = "mnist")]
    pub model: String,
}

pub struct VerifyInput {
    candidate: Upload,
    references: Vec<Upload>,
    aggregate: Aggregate,
    model: Option<String>,
    threshold: Option<f32>,
}

impl FromUpload for VerifyInput {
    type Json = VerifyRequest;
    const FIELDS: &'static [Field] = &[
        Field {
            name: "candidate",
            kind: FieldKind::Image,
        },
        Field {
            name: "references",
            kind: FieldKind::Images,
        },
        Field {
            name: "aggregate",
            kind: FieldKind::Text,
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

    fn from_json(json: VerifyRequest, limits: &InputLimits) -> Result<Self, ApiError> {
        let candidate = required_image("candidate", json.candidate)?;
        let references = image_list("references", json.references.unwrap_or_default(), limits)?;
        Self::new(
            candidate,
            references,
            json.aggregate,
            parse_model(json.model),
            check_threshold(json.threshold)?,
        )
    }

    fn from_form(mut form: Form, _: &InputLimits) -> Result<Self, ApiError> {
        let candidate = form.image("candidate")?;
        let references = form.images("references");
        let aggregate = form
            .text("aggregate")
            .map(|t| Aggregate::parse(&t))
            .transpose()?
            .unwrap_or_default();
        let threshold = parse_threshold(form.text("threshold"))?;
        Self::new(
            candidate,
            references,
            aggregate,
            parse_model(form.text("model")),
            threshold,
        )
    }
}

impl VerifyInput {
    fn new(
        candidate: Upload,
        references: Vec<Upload>,
        aggregate: Aggregate,
        model: Option<String>,
        threshold: Option<f32>,
    ) -> Result<Self, ApiError> {
        if references.is_empty() {
            return Err(ApiError::MissingImage(
                "at least one reference image is required in references".into(),
            ));
        }
        Ok(Self {
            candidate,
            references,
            aggregate,
            model,
            threshold,
        })
    }
}

/// Verify a candidate against references.
///
/// Embeds the candidate and every reference in one submission, measures the candidate's distance to
/// each reference, aggregates them (`min` or `mean`) and holds the result against the threshold.
#[utoipa::path(
    post,
    path = "/verify",
    tag = "verify",
    request_body(
        description = "A candidate and one or more references, as multipart files or as base64 in JSON.",
        content(
            (VerifyRequest = "application/json"),
            (VerifyForm = "multipart/form-data"),
        ),
    ),
    responses(
        (status = 200, description = "The verdict and the distances behind it.", body = VerifyResponse),
        ImageErrors,
    ),
)]
pub async fn verify(
    State(state): State<AppState>,
    Extension(Deadline(deadline)): Extension<Deadline>,
    ImageInput(input): ImageInput<VerifyInput>,
) -> Result<Json<VerifyResponse>, ApiError> {
    let mut uploads = Vec::with_capacity(1 + input.references.len());
    uploads.push(input.candidate);
    uploads.extend(input.references);
    let Embedded {
        model,
        card,
        embeddings,
    } = embed_uploads(&state, input.model, uploads, deadline).await?;
    let (candidate, references) = embeddings
        .split_first()
        .expect("embed_uploads answers one embedding per image, the candidate first; this is a bug");
    let distances: Vec<f32> = references.iter().map(|r| euclidean_vec(candidate, r)).collect();
    let distance = input.aggregate.apply(&distances);
    let threshold = input.threshold.unwrap_or(card.decision.threshold);
    let verified = distance < threshold;
    let decision = if verified { VERIFIED } else { REJECTED };
    record_decision(state.metrics(), "/verify", decision, distance);
    Ok(Json(VerifyResponse {
        verified,
        decision: decision.to_string(),
        distance,
        score: card.calibration.score(distance),
        distances,
        aggregate: input.aggregate,
        threshold,
        model,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aggregates_take_the_closest_or_the_average() {
        let distances = [0.4, 0.1, 0.7];

        assert_eq!(Aggregate::Min.apply(&distances), 0.1);
        assert!((Aggregate::Mean.apply(&distances) - 0.4).abs() < 1e-6);
    }

    #[test]
    fn aggregate_text_is_min_or_mean() {
        assert_eq!(Aggregate::parse(" MEAN ").unwrap(), Aggregate::Mean);
        assert_eq!(Aggregate::parse("max").unwrap_err().code(), "invalid_request");
    }
}
