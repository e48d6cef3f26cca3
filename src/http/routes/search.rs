//! `POST /search`: the enrolled images nearest to one image, over every subject (or a list of them).

use std::collections::HashSet;
use std::sync::Arc;

use axum::extract::State;
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::store::{check_id, SearchRefusal};

use crate::http::extract::count::{optional_count, within};
use crate::http::extract::images::ImageData;
use crate::http::extract::input::{parse_model, required_image, ImageInput, InputLimits};
use crate::http::extract::request::{image_request, ImageRequest, Threshold};
use crate::http::middleware::deadline::Deadline;
use crate::http::middleware::observe::{record_decision, MATCH, NO_MATCH};
use crate::http::openapi::contract::SubjectIdSchema;
use crate::http::openapi::document::CatalogueImageErrors;
use crate::http::problem::error::ApiError;
use crate::http::server::state::AppState;
use crate::infer::Upload;

/// Answers when the request does not say how many.
pub(crate) const DEFAULT_K: usize = 10;
/// The most answers one search returns.
pub(crate) const MAX_K: usize = 100;
/// The most subjects a filter may name.
pub(crate) const MAX_FILTER_SUBJECTS: usize = 1000;

image_request! {
    /// A search.
    pub(crate) struct SearchRequest / SearchForm {
        /// The image to look for.
        #[schema(value_type = ImageData, required = true)]
        pub(crate) image: Option<ImageData>,
        /// How many nearest images to answer, 1 to 100 (10 by default).
        #[serde(default, deserialize_with = "optional_count")]
        #[schema(minimum = 1, maximum = 100, example = 10)]
        pub(crate) k: Option<u64>,
        /// The model to use (see `GET /info`); the service's default when absent. Only images enrolled with
        /// this model are searched.
        #[schema(example = "mnist")]
        pub(crate) model: Option<String>,
        /// Overrides the model's calibrated threshold for `match`.
        #[schema(value_type = Option<f32>, minimum = 0.0, maximum = 3.4028234663852886e38, example = 0.5)]
        pub(crate) threshold: Option<Threshold>,
        /// Search only these subjects' images (at most 1000 ids; in a form, one part with the ids separated
        /// by commas); every subject when absent. Ids with no images simply match nothing.
        #[schema(value_type = Option<Vec<SubjectIdSchema>>, inline, min_items = 1, max_items = 1000)]
        pub(crate) subjects: Option<Vec<String>>,
    }
}

/// The nearest enrolled images, nearest first.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct SearchResponse {
    /// The model that embedded the query and the searched images.
    #[schema(example = "mnist")]
    pub model: String,
    /// The threshold `match` used: the request's, else the model's calibrated one.
    #[schema(example = 0.5)]
    pub threshold: f32,
    /// At most `k`; fewer when fewer images are enrolled (or pass the subject filter).
    pub results: Vec<SearchHit>,
}

/// One enrolled image near the query.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct SearchHit {
    #[schema(example = "sku-1234")]
    pub subject: String,
    #[schema(example = "9f2c4e1a0b7d4c3e8f1a2b3c4d5e6f70")]
    pub image_id: String,
    /// Euclidean distance between the query's embedding and the image's.
    #[schema(example = 0.12)]
    pub distance: f32,
    /// Calibrated match probability of `distance`.
    #[schema(minimum = 0.0, maximum = 1.0, example = 0.97)]
    pub score: f32,
    /// Whether `distance` is below the threshold.
    #[serde(rename = "match")]
    pub is_match: bool,
}

pub(crate) struct SearchInput {
    image: Upload,
    k: usize,
    model: Option<String>,
    threshold: Option<f32>,
    subjects: Option<HashSet<String>>,
}

impl ImageRequest for SearchRequest {
    type Input = SearchInput;

    fn validate(self, _: &InputLimits) -> Result<SearchInput, ApiError> {
        Ok(SearchInput {
            image: required_image("image", self.image)?,
            k: check_k(self.k.unwrap_or(DEFAULT_K as u64))?,
            model: parse_model(self.model),
            threshold: Threshold::check(self.threshold)?,
            subjects: self.subjects.map(subject_filter).transpose()?,
        })
    }
}

fn check_k(k: u64) -> Result<usize, ApiError> {
    within("k", Some(k), DEFAULT_K as u64, 1..=MAX_K as u64).map(|k| k as usize)
}

pub(crate) fn subject_filter(ids: Vec<String>) -> Result<HashSet<String>, ApiError> {
    if ids.is_empty() || ids.len() > MAX_FILTER_SUBJECTS {
        return Err(ApiError::InvalidRequest(format!(
            "subjects must name 1 to {MAX_FILTER_SUBJECTS} subjects, got {}",
            ids.len()
        )));
    }
    for id in &ids {
        check_id(id).map_err(|e| ApiError::InvalidId {
            what: "a subject id in subjects",
            reason: e.to_string(),
        })?;
    }
    Ok(ids.into_iter().collect())
}

/// Search the enrolled images.
///
/// Embeds the image and answers the `k` enrolled images (of the same model) nearest to it, over every
/// subject or the listed ones: an exact search, nearest first. 409 `stale_embeddings` while any stored
/// embedding of the model was made by other weights than the loaded ones.
#[utoipa::path(
    post,
    path = "/search",
    tag = "search",
    request_body(
        description = "One image, as a multipart file or as base64 in JSON, and the search's settings.",
        content(
            (SearchRequest = "application/json"),
            (SearchForm = "multipart/form-data"),
        ),
    ),
    responses(
        (status = 200, description = "The nearest enrolled images, nearest first.", body = SearchResponse),
        CatalogueImageErrors,
    ),
)]
pub(crate) async fn search(
    State(state): State<AppState>,
    Extension(Deadline(deadline)): Extension<Deadline>,
    ImageInput(input): ImageInput<SearchRequest>,
) -> Result<Json<SearchResponse>, ApiError> {
    let catalogue = Arc::clone(state.catalogue()?);
    let model = state.model(input.model)?;
    let card = model.card();
    let query = model
        .embed(vec![input.image], deadline)
        .await?
        .into_iter()
        .next()
        .expect("the model answers one embedding per image; this is a bug");
    let weights = card.weights.sha256.clone();
    let (k, subjects, searched_model) = (input.k, input.subjects, model.name().to_string());
    // A full scan of a large catalogue takes milliseconds of CPU: off the async threads.
    let hits =
        tokio::task::spawn_blocking(move || catalogue.search(&searched_model, &weights, &query, k, subjects.as_ref()))
            .await
            .map_err(|e| ApiError::Internal(format!("search task failed: {e}")))?
            .map_err(|refusal| match refusal {
                SearchRefusal::Stale(stale) => ApiError::from(stale),
                SearchRefusal::Shape(reason) => ApiError::Internal(reason),
            })?;
    let threshold = input.threshold.unwrap_or(card.decision.threshold);
    if let Some(nearest) = hits.first() {
        let decision = if nearest.distance < threshold { MATCH } else { NO_MATCH };
        record_decision(state.metrics(), &card.name, "/search", decision, nearest.distance);
    }
    Ok(Json(SearchResponse {
        results: hits
            .into_iter()
            .map(|hit| SearchHit {
                subject: hit.subject.to_string(),
                image_id: hit.image.to_string(),
                distance: hit.distance,
                score: card.calibration.score(hit.distance),
                is_match: hit.distance < threshold,
            })
            .collect(),
        model: model.name().to_string(),
        threshold,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn k_is_bounded() {
        assert_eq!(check_k(1).unwrap(), 1);
        assert_eq!(check_k(MAX_K as u64).unwrap(), MAX_K);
        assert_eq!(check_k(0).unwrap_err().code(), "invalid_request");
        assert_eq!(check_k(MAX_K as u64 + 1).unwrap_err().code(), "invalid_request");
    }

    #[test]
    fn subject_filters_hold_valid_ids() {
        assert_eq!(subject_filter(vec!["a".into(), "a".into()]).unwrap().len(), 1);
        assert_eq!(subject_filter(vec![]).unwrap_err().code(), "invalid_request");
        assert_eq!(subject_filter(vec!["a/b".into()]).unwrap_err().code(), "invalid_id");
    }
}
