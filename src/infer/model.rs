//! [`ModelHandle`]: one loaded model, resolved once per request, and the one call that takes a request's
//! images from their sources to embeddings, in the manner of text-embeddings-inference's `Infer::embed`.

use tokio::time::Instant;

use super::decode::{DecodePool, Upload};
use super::engine::{Engine, EngineModel};
use super::explain::Located;
use super::{EmbedError, InferError};
use crate::model::ModelCard;

/// A loaded model and the decode pool its images go through.
#[derive(Clone, Copy)]
pub struct ModelHandle<'a> {
    model: EngineModel<'a>,
    decoder: &'a DecodePool,
}

impl<'a> ModelHandle<'a> {
    /// `name` among `engine`'s models, or `UnknownModel` naming the loaded ones.
    pub fn new(engine: &'a Engine, decoder: &'a DecodePool, name: &str) -> Result<Self, InferError> {
        Ok(Self {
            model: engine.model(name)?,
            decoder,
        })
    }

    pub fn name(&self) -> &'a str {
        &self.model.card().name
    }

    pub fn card(&self) -> &'a ModelCard {
        self.model.card()
    }

    /// One embedding per image, in order: admitted to the decode pool all together or refused at once,
    /// URLs fetched, decoded and preprocessed per the card, then embedded in one engine submission (so
    /// that a request's images travel in one batch), all by `deadline`.
    pub async fn embed(&self, images: Vec<Upload>, deadline: Instant) -> Result<Vec<Vec<f32>>, EmbedError> {
        let count = images.len();
        let inputs = self
            .decoder
            .preprocess(images, &self.card().preprocessing, deadline)
            .await?;
        let embeddings = self.model.embed(inputs, deadline).await?;
        if embeddings.len() != count {
            return Err(EmbedError::Internal(format!(
                "the engine answered {} embeddings for {count} images",
                embeddings.len()
            )));
        }
        Ok(embeddings)
    }

    /// As `embed`, each embedding with the image's local embeddings and placement (each image decoded in
    /// full, so that places are in its own pixels): what `/compare` explains a match with. Refused at
    /// once for a model without local embeddings.
    pub async fn embed_located(
        &self,
        images: Vec<Upload>,
        deadline: Instant,
    ) -> Result<Vec<(Vec<f32>, Located)>, EmbedError> {
        let arch = &self.card().architecture;
        let grid = arch
            .location_grid()
            .ok_or_else(|| EmbedError::NoLocations(self.name().to_string()))?;
        let dim = arch.embedding_dim as usize;
        let prepared = self
            .decoder
            .preprocess_placed(images, &self.card().preprocessing, deadline)
            .await?;
        let (inputs, placements): (Vec<Vec<f32>>, Vec<_>) = prepared.into_iter().unzip();
        let rows = self.model.embed_with_locations(inputs, deadline).await?;
        if rows.len() != placements.len() || rows.iter().any(|r| r.len() != dim * (1 + grid.0 * grid.1)) {
            return Err(EmbedError::Internal(
                "the engine's local embeddings do not have the card's shape".into(),
            ));
        }
        Ok(rows
            .into_iter()
            .zip(placements)
            .map(|(mut embedding, placement)| {
                let cells = embedding.split_off(dim);
                (
                    embedding,
                    Located {
                        cells,
                        grid,
                        dim,
                        placement,
                    },
                )
            })
            .collect())
    }
}
