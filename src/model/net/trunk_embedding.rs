//! A pretrained EfficientNet-Lite trunk turned into an embedding: its last feature map, pooled (GeM or
//! average), projected to the embedding size.

use tch::nn::{self, Module};
use tch::Tensor;

use super::efficientnet_lite::{EfficientNetLite, HEAD_CHANNELS};
use super::pooling::{gem_exponent, global_pool, GEM_INITIAL_P};
use crate::model::card::{Architecture, EfficientNet, Pooling};

/// Where the trunk's variables live in the var store (`trunk._conv_stem.weight`...).
pub(crate) const TRUNK_PREFIX: &str = "trunk.";
/// The optimiser group of the trunk's variables, so that it can learn more slowly than the new head.
pub(crate) const TRUNK_GROUP: usize = 1;

#[derive(Debug)]
pub(super) struct TrunkEmbedding {
    trunk: EfficientNetLite,
    /// GeM's exponent: learnt in a model, fixed at its initial value for the frozen baseline; `None` averages.
    gem_p: Option<Tensor>,
    /// `None` for the frozen baseline, which compares pooled ImageNet features directly.
    projection: Option<nn::Linear>,
    /// The stem and this many blocks run without gradients while training: cheaper steps, and the
    /// generic early filters stay as ImageNet taught them.
    frozen_blocks: usize,
    dropout: f64,
}

impl TrunkEmbedding {
    /// The model: trunk, pooling and projection; `arch.efficientnet` must be present (validated).
    pub(super) fn new(vs: &nn::Path, arch: &Architecture) -> Self {
        let shape = shape(arch);
        Self {
            trunk: EfficientNetLite::new(&(vs.set_group(TRUNK_GROUP) / "trunk"), shape.variant, false),
            gem_p: gem_exponent(vs, shape.pooling),
            projection: Some(nn::linear(
                vs / "projection",
                HEAD_CHANNELS,
                arch.embedding_dim,
                Default::default(),
            )),
            frozen_blocks: shape.frozen_blocks,
            dropout: arch.dropout,
        }
    }

    /// The pretrained trunk alone, pooled as `arch` pools with GeM's initial exponent: the baseline a
    /// fine-tuned model must beat.
    pub(super) fn frozen(vs: &nn::Path, arch: &Architecture) -> Self {
        let shape = shape(arch);
        Self {
            trunk: EfficientNetLite::new(&(vs / "trunk"), shape.variant, false),
            gem_p: (shape.pooling == Pooling::Gem)
                .then(|| Tensor::from_slice(&[GEM_INITIAL_P as f32]).to_device(vs.device())),
            projection: None,
            frozen_blocks: 0,
            dropout: 0.0,
        }
    }

    pub(super) fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        let frozen = self.frozen_blocks.min(self.trunk.block_count());
        let early = if train && frozen > 0 {
            tch::no_grad(|| self.trunk.early(xs, frozen))
        } else {
            self.trunk.early(xs, frozen)
        };
        let pooled = global_pool(&self.trunk.late(&early, frozen), self.gem_p.as_ref());
        match &self.projection {
            Some(projection) => projection.forward(&pooled.dropout(self.dropout, train)),
            None => pooled,
        }
    }

    /// Every location of the last feature map, raised to GeM's power and projected by the embedding's
    /// weights (no bias): `[N, h, w, D]`. Its dot product with another image's embedding is how much that
    /// place draws this image's embedding towards the other's, so a place that shows what the other
    /// image shows stands out. `None` for the frozen baseline, which has no projection.
    pub(super) fn locations(&self, xs: &Tensor) -> Option<Tensor> {
        let projection = self.projection.as_ref()?;
        let features = self.trunk.features(xs).clamp_min(1e-6);
        let powered = match &self.gem_p {
            Some(p) => features.pow(p),
            None => features,
        };
        Some(powered.permute([0, 2, 3, 1]).matmul(&projection.ws.transpose(0, 1)))
    }

    /// See [`EfficientNetLite::fold_batch_norm`].
    pub(super) fn fold_batch_norm(&mut self) {
        self.trunk.fold_batch_norm();
    }
}

fn shape(arch: &Architecture) -> &EfficientNet {
    arch.efficientnet
        .as_ref()
        .expect("an efficientnet_lite architecture carries its shape; this is a bug")
}
