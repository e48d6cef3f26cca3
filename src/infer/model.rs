//! [`ModelHandle`]: one loaded model, resolved once per request, and the one call that takes a request's
//! images from their sources to embeddings, in the manner of text-embeddings-inference's `Infer::embed`.

use tokio::time::Instant;

use super::decode::{DecodePool, Upload};
use super::engine::{Engine, EngineModel};
use super::explain::Located;
use super::{EmbedError, InferError};
use crate::model::{ModelCard, Preprocessing};
use crate::preprocess::Placement;

/// A loaded model and the decode pool its images go through.
#[derive(Clone, Copy)]
pub(crate) struct ModelHandle<'a> {
    model: EngineModel<'a>,
    decoder: &'a DecodePool,
}

impl<'a> ModelHandle<'a> {
    /// `name` among `engine`'s models, or `UnknownModel` naming the loaded ones.
    pub(crate) fn new(engine: &'a Engine, decoder: &'a DecodePool, name: &str) -> Result<Self, InferError> {
        Ok(Self {
            model: engine.model(name)?,
            decoder,
        })
    }

    pub(crate) fn name(&self) -> &'a str {
        &self.model.card().name
    }

    pub(crate) fn card(&self) -> &'a ModelCard {
        self.model.card()
    }

    /// One embedding per image, in order: admitted to the decode pool all together or refused at once,
    /// URLs fetched, decoded and preprocessed per the card, then embedded in one engine submission (so
    /// that a request's images travel in one batch), all by `deadline`.
    pub(crate) async fn embed(&self, images: Vec<Upload>, deadline: Instant) -> Result<Vec<Vec<f32>>, EmbedError> {
        let inputs = self
            .decoder
            .preprocess(images, &self.card().preprocessing, deadline)
            .await?;
        self.embed_inputs(inputs, deadline).await
    }

    /// As `embed`, each image's outcome on its own: the images that decode are embedded in one
    /// submission, the others answer their decode error. Fails as a whole only when the pool refuses the
    /// images or the model fails.
    pub(crate) async fn embed_each(
        &self,
        images: Vec<Upload>,
        deadline: Instant,
    ) -> Result<Vec<Result<Vec<f32>, EmbedError>>, EmbedError> {
        let mut outcomes = self
            .decoder
            .preprocess_each(images, &self.card().preprocessing, deadline)
            .await?;
        let inputs: Vec<Vec<f32>> = outcomes
            .iter_mut()
            .filter_map(|outcome| outcome.as_mut().ok().map(std::mem::take))
            .collect();
        // Each decoded image's input slot takes its embedding, in order.
        let mut embeddings = self.embed_inputs(inputs, deadline).await?.into_iter();
        Ok(outcomes
            .into_iter()
            .map(|outcome| outcome.map(|_| embeddings.next().expect("one embedding per decoded image")))
            .collect())
    }

    /// One engine submission of model inputs: one embedding per input, in order.
    async fn embed_inputs(&self, inputs: Vec<Vec<f32>>, deadline: Instant) -> Result<Vec<Vec<f32>>, EmbedError> {
        let count = inputs.len();
        let embeddings = self.model.embed(inputs, deadline).await?;
        if embeddings.len() != count {
            return Err(EmbedError::Internal(format!(
                "the engine answered {} embeddings for {count} images",
                embeddings.len()
            )));
        }
        Ok(embeddings)
    }

    /// As `embed`, each embedding with the image's located contributions and placement (from the same
    /// decode, in full, so that places are in the image's own pixels; the contributions from a second
    /// pass at the card's `location_input` size): what `/compare` explains a match with. Only for a model
    /// whose card has a `location_input`.
    pub(crate) async fn embed_located(
        &self,
        images: Vec<Upload>,
        deadline: Instant,
    ) -> Result<Vec<(Vec<f32>, Located)>, EmbedError> {
        let card = self.card();
        let arch = &card.architecture;
        let missing = || EmbedError::Internal(format!("model {} has no located contributions", self.name()));
        let ((height, width), grid) = (
            arch.location_input().ok_or_else(missing)?,
            arch.location_grid().ok_or_else(missing)?,
        );
        let located_pp = Preprocessing {
            width: width as u32,
            height: height as u32,
            ..card.preprocessing.clone()
        };
        let dim = arch.embedding_dim as usize;
        let prepared = self
            .decoder
            .preprocess_placed(images, &card.preprocessing, &located_pp, deadline)
            .await?;
        let (inputs, located): (Vec<Vec<f32>>, Vec<_>) = prepared.into_iter().unzip();
        let (located_inputs, placements): (Vec<Vec<f32>>, Vec<Placement>) = located.into_iter().unzip();
        let (embeddings, cells) = futures::try_join!(
            self.model.embed(inputs, deadline),
            self.model.locations(located_inputs, deadline)
        )?;
        if embeddings.len() != placements.len() || cells.iter().any(|c| c.len() != dim * grid.0 * grid.1) {
            return Err(EmbedError::Internal(
                "the engine's located contributions do not have the card's shape".into(),
            ));
        }
        Ok(embeddings
            .into_iter()
            .zip(cells.into_iter().zip(placements))
            .map(|(embedding, (cells, placement))| {
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
