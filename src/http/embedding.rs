//! The path every image endpoint shares: choose the model, preprocess the uploads for it, and embed
//! them in one engine submission (so that they travel in one batch).

use tokio::time::Instant;

use super::error::ApiError;
use super::images::Upload;
use super::observe;
use super::state::AppState;
use crate::model::ModelCard;

/// What the engine made of one request's images.
pub struct Embedded<'a> {
    /// The model's name: the one asked for, or the default.
    pub model: String,
    pub card: &'a ModelCard,
    /// One per upload, in order.
    pub embeddings: Vec<Vec<f32>>,
}

/// Embeds `uploads` with `model` (the default when `None`), answering by `deadline`.
pub async fn embed_uploads(
    state: &AppState,
    model: Option<String>,
    uploads: Vec<Upload>,
    deadline: Instant,
) -> Result<Embedded<'_>, ApiError> {
    let engine = state.engine()?;
    let model = model.unwrap_or_else(|| state.config().default_model.clone());
    let card = engine.card(&model)?;
    observe::note_model(&card.name);
    let count = uploads.len();
    let inputs = state
        .decoder()
        .preprocess(uploads, &card.preprocessing, deadline)
        .await?;
    let embeddings = engine.embed(&model, inputs, deadline).await?;
    if embeddings.len() != count {
        return Err(ApiError::Internal(format!(
            "the engine answered {} embeddings for {count} images",
            embeddings.len()
        )));
    }
    Ok(Embedded {
        model,
        card,
        embeddings,
    })
}
