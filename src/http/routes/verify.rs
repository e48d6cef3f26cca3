//! `POST /verify`: does a candidate image show the same thing as a set of reference images, sent inline
//! or enrolled as a subject?

use std::collections::BTreeMap;

use axum::extract::State;
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::model::distance::euclidean_vec;
use crate::store::{check_id, StaleEmbeddings};

use crate::http::extract::images::ImageData;
use crate::http::extract::input::{
    image_list, parse_model, required_image, truncate, FieldKind, Form, ImageInput, InputLimits,
};
use crate::http::extract::request::{image_request, FormPart, ImageRequest, Threshold};
use crate::http::middleware::deadline::Deadline;
use crate::http::middleware::observe::{record_decision, REJECTED, VERIFIED};
use crate::http::openapi::contract::SubjectIdSchema;
use crate::http::openapi::document::CatalogueImageErrors;
use crate::http::problem::error::ApiError;
use crate::http::server::state::AppState;
use crate::infer::Upload;

/// How the distances to several references become one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Aggregate {
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
                truncate(text, 40)
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

impl FormPart for Aggregate {
    const KIND: FieldKind = FieldKind::Text;

    fn take(form: &mut Form, name: &'static str) -> Result<Self, ApiError> {
        form.text(name)
            .map(|text| Self::parse(&text))
            .unwrap_or(Ok(Self::default()))
    }
}

image_request! {
    /// A candidate and its references: either `references` (images; in a form, one part per image) or
    /// `subject` (the id of an enrolled subject, whose images of the model are the references), exactly
    /// one of the two.
    pub(crate) struct VerifyRequest / VerifyForm, exactly_one_of(references, subject) {
        /// The image to verify.
        #[schema(value_type = ImageData, required = true)]
        pub(crate) candidate: Option<ImageData>,
        /// Images known to show the claimed identity (one or more; at most the per-request limit).
        #[schema(min_items = 1, max_items = 32)]
        pub(crate) references: Option<Vec<ImageData>>,
        /// An enrolled subject instead of `references`: its images enrolled with the model are the references.
        #[schema(value_type = Option<SubjectIdSchema>, inline, example = "customer-42")]
        pub(crate) subject: Option<String>,
        /// How the per-reference distances are combined; `min` by default.
        #[serde(default)]
        pub(crate) aggregate: Aggregate,
        /// The model to use (see `GET /info`); the service's default when absent.
        #[schema(example = "mnist")]
        pub(crate) model: Option<String>,
        /// Overrides the model's calibrated threshold: verified when the aggregated distance is below it.
        #[schema(value_type = Option<f32>, minimum = 0.0, maximum = 3.4028234663852886e38, example = 0.5)]
        pub(crate) threshold: Option<Threshold>,
    }
}

/// The verdict, with the distances behind it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct VerifyResponse {
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
    /// The candidate's distance to each reference, in the order the references were sent (a subject's
    /// images: oldest first).
    pub distances: Vec<f32>,
    /// The subject verified against, when the request named one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "customer-42")]
    pub subject: Option<String>,
    /// With a subject: the candidate's distance to each of its images, by image id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distances_by_image: Option<BTreeMap<String, f32>>,
    /// How `distances` became `distance`.
    pub aggregate: Aggregate,
    /// The threshold the decision used: the request's, else the model's calibrated one.
    #[schema(example = 0.5)]
    pub threshold: f32,
    /// The model that answered.
    #[schema(example = "mnist")]
    pub model: String,
}

/// What the candidate is verified against.
enum References {
    Images(Vec<Upload>),
    Subject(String),
}

pub(crate) struct VerifyInput {
    candidate: Upload,
    references: References,
    aggregate: Aggregate,
    model: Option<String>,
    threshold: Option<f32>,
}

impl ImageRequest for VerifyRequest {
    type Input = VerifyInput;

    fn validate(self, limits: &InputLimits) -> Result<VerifyInput, ApiError> {
        let candidate = required_image("candidate", self.candidate)?;
        let references = image_list("references", self.references.unwrap_or_default(), limits)?;
        let references = match (references.is_empty(), self.subject) {
            (false, None) => References::Images(references),
            (true, Some(subject)) => {
                check_id(&subject).map_err(|e| ApiError::InvalidId {
                    what: "subject",
                    reason: e.to_string(),
                })?;
                References::Subject(subject)
            }
            (false, Some(_)) => {
                return Err(ApiError::InvalidRequest(
                    "send either references or subject, not both".into(),
                ))
            }
            (true, None) => {
                return Err(ApiError::MissingImage(
                    "at least one reference image is required in references (or an enrolled subject in subject)".into(),
                ))
            }
        };
        Ok(VerifyInput {
            candidate,
            references,
            aggregate: self.aggregate,
            model: parse_model(self.model),
            threshold: Threshold::check(self.threshold)?,
        })
    }
}

/// Verify a candidate against references.
///
/// Embeds the candidate and every reference in one submission (or, with `subject`, the candidate alone,
/// against the embeddings enrolled for that subject with the model), measures the candidate's distance
/// to each reference, aggregates them (`min` or `mean`) and holds the result against the threshold.
/// With a subject: 404 `unknown_subject`, 422 `no_enrolled_images` when it has no images of the model,
/// 409 `stale_embeddings` when some were made by other weights than the loaded ones.
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
        CatalogueImageErrors,
    ),
)]
pub(crate) async fn verify(
    State(state): State<AppState>,
    Extension(Deadline(deadline)): Extension<Deadline>,
    ImageInput(input): ImageInput<VerifyRequest>,
) -> Result<Json<VerifyResponse>, ApiError> {
    let model = state.model(input.model)?;
    let card = model.card();
    let (distances, subject, by_image) = match input.references {
        References::Images(references) => {
            let mut uploads = Vec::with_capacity(1 + references.len());
            uploads.push(input.candidate);
            uploads.extend(references);
            let embeddings = model.embed(uploads, deadline).await?;
            let (candidate, references) = embeddings
                .split_first()
                .expect("the model answers one embedding per image, the candidate first; this is a bug");
            let distances: Vec<f32> = references.iter().map(|r| euclidean_vec(candidate, r)).collect();
            (distances, None, None)
        }
        References::Subject(subject) => {
            let references = enrolled(&state, &subject, model.name(), &card.weights.sha256).await?;
            let embeddings = model.embed(vec![input.candidate], deadline).await?;
            let candidate = &embeddings[0];
            let distances: Vec<f32> = references.iter().map(|(_, r)| euclidean_vec(candidate, r)).collect();
            let by_image = references
                .iter()
                .map(|(id, _)| id.clone())
                .zip(distances.iter().copied())
                .collect();
            (distances, Some(subject), Some(by_image))
        }
    };
    let distance = input.aggregate.apply(&distances);
    let threshold = input.threshold.unwrap_or(card.decision.threshold);
    let verified = distance < threshold;
    let decision = if verified { VERIFIED } else { REJECTED };
    record_decision(state.metrics(), &card.name, "/verify", decision, distance);
    Ok(Json(VerifyResponse {
        verified,
        decision: decision.to_string(),
        distance,
        score: card.calibration.score(distance),
        distances,
        subject,
        distances_by_image: by_image,
        aggregate: input.aggregate,
        threshold,
        model: model.name().to_string(),
    }))
}

/// The embeddings enrolled for `subject` with `model`, oldest first, by image id; refused when the
/// subject is unknown, has none of the model, or has some made by other weights than `weights`.
async fn enrolled(
    state: &AppState,
    subject: &str,
    model: &str,
    weights: &str,
) -> Result<Vec<(String, Vec<f32>)>, ApiError> {
    let catalogue = state.catalogue()?;
    let images = catalogue
        .subject_images(subject)
        .await?
        .ok_or_else(|| ApiError::UnknownSubject(subject.to_string()))?;
    let of_model: Vec<_> = images.into_iter().filter(|image| image.model == model).collect();
    if of_model.is_empty() {
        return Err(ApiError::NoEnrolledImages {
            subject: subject.to_string(),
            model: model.to_string(),
        });
    }
    let stale = of_model.iter().filter(|image| image.weights_sha256 != weights).count();
    if stale > 0 {
        return Err(StaleEmbeddings {
            model: model.to_string(),
            stale,
            total: of_model.len(),
        }
        .into());
    }
    Ok(of_model
        .into_iter()
        .map(|image| (image.id.to_string(), image.embedding))
        .collect())
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
