//! Embedding network architectures; the model card names one and gives its hyper-parameters.

pub mod efficientnet_lite;
mod pooling;
mod resnet;
mod seed_cnn;
mod trunk_embedding;

use tch::nn::{self, ModuleT};
use tch::Tensor;

use super::card::{Architecture, EFFICIENTNET_LITE, RESNET};
use resnet::ResNet;
use seed_cnn::SeedCnn;
use trunk_embedding::TrunkEmbedding;
#[cfg(feature = "train")]
pub(crate) use trunk_embedding::TRUNK_GROUP;
pub(crate) use trunk_embedding::TRUNK_PREFIX;

/// One branch of the Siamese pair; both branches share these weights, so one module embeds every image.
#[derive(Debug)]
pub struct EmbeddingNet {
    body: Body,
    /// Unit-length outputs bound distances to [0, 2], which keeps the margin meaningful on unseen classes.
    l2_normalize: bool,
}

#[derive(Debug)]
enum Body {
    Seed(SeedCnn),
    Residual(ResNet),
    Pretrained(TrunkEmbedding),
}

impl EmbeddingNet {
    /// Builds the network `arch` describes under `vs`, so that its variables can be loaded or trained.
    /// `arch` must have passed `Architecture::validate`.
    pub fn new(vs: &nn::Path, arch: &Architecture) -> Self {
        let body = match arch.name.as_str() {
            RESNET => Body::Residual(ResNet::new(vs, arch)),
            EFFICIENTNET_LITE => Body::Pretrained(TrunkEmbedding::new(vs, arch)),
            _ => Body::Seed(SeedCnn::new(vs, arch)),
        };
        Self {
            body,
            l2_normalize: arch.l2_normalize,
        }
    }

    /// The pretrained trunk of an `efficientnet_lite` architecture without fine-tuning: its pooled
    /// ImageNet features, unit length. Its variables (`trunk.*`) are loaded from the pretrained file.
    pub fn frozen_trunk(vs: &nn::Path, arch: &Architecture) -> Self {
        Self {
            body: Body::Pretrained(TrunkEmbedding::frozen(vs, arch)),
            l2_normalize: true,
        }
    }

    /// The located contributions `[N, h, w, D]` of a batch (see `TrunkEmbedding::locations`); `None` for a
    /// network without them.
    pub fn locations(&self, xs: &Tensor) -> Option<Tensor> {
        match &self.body {
            Body::Pretrained(net) => net.locations(xs),
            _ => None,
        }
    }

    /// Readies the network for inference only: batch norms are folded into their convolutions.
    pub fn fold_batch_norm(&mut self) {
        if let Body::Pretrained(net) = &mut self.body {
            net.fold_batch_norm();
        }
    }
}

impl ModuleT for EmbeddingNet {
    /// Maps a batch `[N, C, H, W]` of preprocessed images to embeddings `[N, D]`.
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        let out = match &self.body {
            Body::Seed(net) => net.forward_t(xs, train),
            Body::Residual(net) => net.forward_t(xs, train),
            Body::Pretrained(net) => net.forward_t(xs, train),
        };
        if self.l2_normalize {
            l2_normalize(&out)
        } else {
            out
        }
    }
}

/// Scales each row to unit length; the epsilon keeps an all-zero row finite.
pub(crate) fn l2_normalize(xs: &Tensor) -> Tensor {
    let norm = xs
        .square()
        .sum_dim_intlist(1, true, tch::Kind::Float)
        .clamp_min(1e-12)
        .sqrt();
    xs / norm
}
