//! Embedding network architectures; the model card names one and gives its hyper-parameters.

use tch::nn::{self, Module, ModuleT};
use tch::Tensor;

use super::card::Architecture;

/// One branch of the Siamese pair; both branches share these weights, so one module embeds every image.
#[derive(Debug)]
pub struct EmbeddingNet {
    conv1: nn::Conv2D,
    conv2: nn::Conv2D,
    fc: nn::Linear,
    /// Dropout before the dense layer, active only while training.
    dropout: f64,
    /// Unit-length outputs bound distances to [0, 2], which keeps the margin meaningful on unseen classes.
    l2_normalize: bool,
    /// The seed ends with a ReLU; dropping it lets embeddings use the whole space.
    final_relu: bool,
}

impl EmbeddingNet {
    /// Builds the network `arch` describes under `vs`, so that its variables can be loaded or trained.
    ///
    /// The seed's `seed_cnn` is the only architecture so far (`Architecture::validate` enforces it):
    /// Conv2D(32, 3×3, ReLU) → MaxPool(2) → Conv2D(64, 3×3, ReLU) → Flatten → Dense(embedding, ReLU).
    pub fn new(vs: &nn::Path, arch: &Architecture) -> Self {
        let conv1 = nn::conv2d(vs / "conv1", arch.in_channels, 32, 3, Default::default());
        let conv2 = nn::conv2d(vs / "conv2", 32, 64, 3, Default::default());
        let (h, w) = Architecture::seed_cnn_feature_size(arch.height, arch.width);
        let fc = nn::linear(vs / "fc", 64 * h * w, arch.embedding_dim, Default::default());
        Self {
            conv1,
            conv2,
            fc,
            dropout: arch.dropout,
            l2_normalize: arch.l2_normalize,
            final_relu: arch.final_relu,
        }
    }
}

impl ModuleT for EmbeddingNet {
    /// Maps a batch `[N, C, H, W]` of preprocessed images to embeddings `[N, D]`.
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        let features = xs
            .apply(&self.conv1)
            .relu()
            .max_pool2d_default(2)
            .apply(&self.conv2)
            .relu()
            .flat_view()
            .dropout(self.dropout, train);
        let mut out = self.fc.forward(&features);
        if self.final_relu {
            out = out.relu();
        }
        if self.l2_normalize {
            out = l2_normalize(&out);
        }
        out
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
