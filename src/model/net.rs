//! Embedding network architectures; the model card names one and gives its hyper-parameters.

mod resnet;
mod seed_cnn;

use tch::nn::{self, ModuleT};
use tch::Tensor;

use super::card::{Architecture, RESNET};
use resnet::ResNet;
use seed_cnn::SeedCnn;

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
}

impl EmbeddingNet {
    /// Builds the network `arch` describes under `vs`, so that its variables can be loaded or trained.
    /// `arch` must have passed `Architecture::validate`.
    pub fn new(vs: &nn::Path, arch: &Architecture) -> Self {
        let body = if arch.name == RESNET {
            Body::Residual(ResNet::new(vs, arch))
        } else {
            Body::Seed(SeedCnn::new(vs, arch))
        };
        Self {
            body,
            l2_normalize: arch.l2_normalize,
        }
    }
}

impl ModuleT for EmbeddingNet {
    /// Maps a batch `[N, C, H, W]` of preprocessed images to embeddings `[N, D]`.
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        let out = match &self.body {
            Body::Seed(net) => net.forward_t(xs, train),
            Body::Residual(net) => net.forward_t(xs, train),
        };
        if self.l2_normalize {
            l2_normalize(&out)
        } else {
            out
        }
    }
}

/// Scales each row to unit length; the epsilon keeps an all-zero row finite.
fn l2_normalize(xs: &Tensor) -> Tensor {
    let norm = xs
        .square()
        .sum_dim_intlist(1, true, tch::Kind::Float)
        .clamp_min(1e-12)
        .sqrt();
    xs / norm
}
