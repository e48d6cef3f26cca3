//! `POST /search`: the enrolled images nearest to one image, over every subject (or a list of them).

use std::collections::HashSet;
use std::sync::Arc;

use axum::extract::State;
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::store::{check_id, SearchRefusal};

use crate::http::extract::count::{count_from_text, optional_count, within};
use crate::http::extract::images::ImageData;
use crate::http::extract::input::{
    check_threshold, parse_model, parse_threshold, required_image, Field, FieldKind, Form, FromUpload, ImageInput,
    InputLimits,
};
use crate::http::middleware::deadline::Deadline;
use crate::http::middleware::observe::{record_decision, MATCH, NO_MATCH};
use crate::http::openapi::document::{CatalogueImageErrors, ImageFile};
use crate::http::problem::error::ApiError;
use crate::http::server::state::AppState;
use crate::infer::Upload;

/// Answers when the request does not say how many.
pub const DEFAULT_K: usize = 10;
/// The most answers one search returns.
pub const MAX_K: usize = 100;
/// The most subjects a filter may name.
pub const MAX_FILTER_SUBJECTS: usize = 1000;

/// A search, as JSON.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchRequest {
    /// The image to look for.
    #[schema(value_type = ImageData, required = true)]
    pub image: Option<ImageData>,
    /// How many nearest images to answer, 1 to 100 (10 by default).
    #[serde(default, deserialize_with = "optional_count")]
    #[schema(minimum = 1, maximum = 100, example = 10)]
    pub k: Option<u64>,
    /// The model to use (see `GET /info`); the service's default when absent. Only images enrolled with
    /// this model are searched.
    #[schema(example = "mnist")]
    pub model: Option<String>,
    /// Overrides the model's calibrated threshold for `match`.
    #[schema(minimum = 0.0, example = 0.5)]
    pub threshold: Option<f32>,
    /// Search only these subjects' images (at most 1000 ids); every subject when absent. Ids with no
    /// images simply match nothing.
    pub subjects: Option<Vec<String>>,
}

/// A search, as `multipart/form-data`.
#[derive(ToSchema)]
#[allow(dead_code)] // Describes the multipart form for OpenAPI; the extractor reads the parts.
pub struct SearchForm {
    image: ImageFile,
    /// 1 to 100 (10 by default).
    #[schema(required = false, minimum = 1, maximum = 100)]
    k: usize,
    /// The model to use; the service's default when absent.
    #[schema(required = false)]
    model: String,
    /// Overrides the model's calibrated threshold (a number >= 0).
    #[schema(required = false, minimum = 0.0)]
    threshold: f32,
    /// Subject ids separated by commas: search only their images.
    #[schema(required = false)]
    subjects: String,
}

/// The nearest enrolled images, nearest first.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SearchResponse {
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
pub struct SearchHit {
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

pub struct SearchInput {
    image: Upload,
    k: usize,
    model: Option<String>,
    threshold: Option<f32>,
    subjects: Option<HashSet<String>>,
}

impl FromUpload for SearchInput {
    type Json = SearchRequest;
    const FIELDS: &'static [Field] = &[
        Field {
            name: "image",
            kind: FieldKind::Image,
        },
        Field {
            name: "k",
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
        Field {
            name: "subjects",
            kind: FieldKind::Text,
        },
    ];

    fn from_json(json: SearchRequest, _: &InputLimits) -> Result<Self, ApiError> {
        Ok(Self {
            image: required_image("image", json.image)?,
            k: check_k(json.k.unwrap_or(DEFAULT_K as u64))?,
            model: parse_model(json.model),
            threshold: check_threshold(json.threshold)?,
            subjects: json.subjects.map(subject_filter).transpose()?,
        })
    }

    fn from_form(mut form: Form, _: &InputLimits) -> Result<Self, ApiError> {
        let k = match form.text("k") {
            Some(text) => count_from_text(&text)
                .ok_or_else(|| ApiError::InvalidRequest(format!("k must be a whole number from 1 to {MAX_K}")))?,
            None => DEFAULT_K as u64,
        };
        let subjects = form.text("subjects").map(|text| {
            text.split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
        });
        Ok(Self {
            image: form.image("image")?,
            k: check_k(k)?,
            model: parse_model(form.text("model")),
            threshold: parse_threshold(form.text("threshold"))?,
            subjects: subjects.map(subject_filter).transpose()?,
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
pub async fn search(
    State(state): State<AppState>,
    Extension(Deadline(deadline)): Extension<Deadline>,
    ImageInput(input): ImageInput<SearchInput>,
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
