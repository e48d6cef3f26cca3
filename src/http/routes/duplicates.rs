//! `POST /duplicates`: the groups of near-identical images among the enrolled ones, from their stored
//! embeddings (nothing is re-embedded), a page of clusters at a time.

use std::collections::HashSet;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::dedup::{describe, find, medoid, DuplicateCluster, Label, Method};
use crate::http::extract::count::{optional_count, within};
use crate::http::extract::json::optional_json;
use crate::http::extract::request::Threshold;
use crate::http::openapi::contract::SubjectIdSchema;
use crate::http::openapi::document::DuplicatesErrors;
use crate::http::problem::error::ApiError;
use crate::http::routes::search::subject_filter;
use crate::http::server::state::AppState;
use crate::store::SearchRefusal;

/// Clusters per page when the request does not say.
const DEFAULT_PAGE_SIZE: u64 = 100;
/// The most clusters one page holds.
const MAX_PAGE_SIZE: u64 = 1000;
/// The cluster size guard when the request does not say.
const DEFAULT_MAX_CLUSTER: u64 = 1000;
/// The largest cluster size guard a request may set.
const MAX_MAX_CLUSTER: u64 = 10_000;
/// The last page a request may ask for (a billion clusters at the largest pages).
const MAX_PAGE: u64 = 1_000_000;

/// A duplicate search over the enrolled images; every field is optional, and so is the body.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct DuplicatesRequest {
    /// The model whose enrolled images are searched (see `GET /info`); the service's default when absent.
    #[schema(example = "product")]
    pub model: Option<String>,
    /// Only these subjects' images (1 to 1000 ids); every subject's when absent.
    #[schema(value_type = Option<Vec<SubjectIdSchema>>, inline, min_items = 1, max_items = 1000)]
    pub subjects: Option<Vec<String>>,
    /// Distance under which two images are duplicates; the model's calibrated threshold when absent.
    #[schema(value_type = Option<f32>, minimum = 0.0, maximum = 3.4028234663852886e38, example = 0.5)]
    pub threshold: Option<Threshold>,
    /// Largest cluster, 2 to 10000 (1000 by default): pairs join closest first, and a join past this
    /// size is refused (and counted in `refused_pairs`).
    #[serde(default, deserialize_with = "optional_count")]
    #[schema(minimum = 2, maximum = 10000, example = 1000)]
    pub max_cluster: Option<u64>,
    /// Clusters per page, 1 to 1000 (100 by default).
    #[serde(default, deserialize_with = "optional_count")]
    #[schema(minimum = 1, maximum = 1000, example = 100)]
    pub page_size: Option<u64>,
    /// The page, from 0 (the largest clusters) to 1000000; `next_page` of the previous answer.
    #[serde(default, deserialize_with = "optional_count")]
    #[schema(minimum = 0, maximum = 1000000, example = 0)]
    pub page: Option<u64>,
}

/// A page of duplicate clusters, largest first.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DuplicatesResponse {
    #[schema(example = "product")]
    pub model: String,
    /// The threshold used: the request's, else the model's calibrated one.
    #[schema(example = 0.5)]
    pub threshold: f32,
    /// `exact` (every pair measured) or `approximate` (k-means cells, above 20,000 images).
    #[schema(example = "exact")]
    pub method: String,
    /// Enrolled images searched.
    pub images: usize,
    /// Pairs closer than the threshold.
    pub near_pairs: usize,
    /// Near pairs left out by the cluster size guard.
    pub refused_pairs: usize,
    /// Clusters in all pages.
    pub total_clusters: usize,
    pub page: u64,
    pub page_size: u64,
    /// The next page's number; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_page: Option<u64>,
    pub clusters: Vec<DuplicateCluster>,
}

/// Find duplicate enrolled images.
///
/// Groups the enrolled images of one model into clusters of near-identical images: every pair closer
/// than the threshold (exactly up to 20,000 images, with an approximate index above), joined closest
/// first into clusters no larger than `max_cluster`. Each cluster lists its members, the member nearest
/// all the others first (the representative), with their distance and score against it, and the near
/// pairs that joined it. Reads the stored embeddings; nothing is re-embedded. 409 `stale_embeddings`
/// while any stored embedding of the model was made by other weights than the loaded ones.
#[utoipa::path(
    post,
    path = "/duplicates",
    tag = "search",
    request_body(content = Option<DuplicatesRequest>, content_type = "application/json", description = "Optional: every setting has a default."),
    responses(
        (status = 200, description = "A page of clusters, largest first.", body = DuplicatesResponse),
        DuplicatesErrors,
    ),
)]
pub(crate) async fn duplicates(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<DuplicatesResponse>, ApiError> {
    let request: DuplicatesRequest = optional_json(&headers, &body)?.unwrap_or_default();
    let threshold = Threshold::check(request.threshold)?;
    let max_cluster = within(
        "max_cluster",
        request.max_cluster,
        DEFAULT_MAX_CLUSTER,
        2..=MAX_MAX_CLUSTER,
    )?;
    let page_size = within("page_size", request.page_size, DEFAULT_PAGE_SIZE, 1..=MAX_PAGE_SIZE)?;
    let page = within("page", request.page, 0, 0..=MAX_PAGE)?;
    let subjects: Option<HashSet<String>> = request.subjects.map(subject_filter).transpose()?;
    let catalogue = Arc::clone(state.catalogue()?);
    let card = state.model(request.model)?.card().clone();
    // Seconds of CPU at a large catalogue: off the async threads.
    tokio::task::spawn_blocking(move || {
        let snapshot = catalogue
            .embeddings(&card.name, &card.weights.sha256, subjects.as_ref())
            .map_err(|refusal| match refusal {
                SearchRefusal::Stale(stale) => ApiError::from(stale),
                SearchRefusal::Shape(reason) => ApiError::Internal(reason),
            })?;
        let threshold = threshold.unwrap_or(card.decision.threshold);
        let (dim, rows) = (snapshot.dim, &snapshot.rows);
        let (pairs, clustering) = find(dim, rows, threshold, Method::Auto, max_cluster as usize, |members| {
            medoid(members, rows, dim)
        })
        .map_err(|e| ApiError::Internal(e.to_string()))?;
        let label = |i: usize| Label {
            path: None,
            subject: Some(snapshot.images[i].1.to_string()),
            image: Some(snapshot.images[i].0.to_string()),
            size: None,
        };
        let total = clustering.clusters.len();
        let start = usize::try_from(page.saturating_mul(page_size))
            .unwrap_or(usize::MAX)
            .min(total);
        let end = start.saturating_add(page_size as usize).min(total);
        Ok(Json(DuplicatesResponse {
            model: card.name.clone(),
            threshold,
            method: pairs.method.to_string(),
            images: snapshot.images.len(),
            near_pairs: pairs.pairs.len(),
            refused_pairs: clustering.refused_pairs,
            total_clusters: total,
            page,
            page_size,
            next_page: (end < total).then_some(page + 1),
            clusters: describe(&clustering.clusters[start..end], label, rows, dim, &card.calibration),
        }))
    })
    .await
    .map_err(|e| ApiError::Internal(format!("duplicate search failed: {e}")))?
}
