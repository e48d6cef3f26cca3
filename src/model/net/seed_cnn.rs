//! The seed's convolutional network: Conv2D(32, 3×3, ReLU) → MaxPool(2) → Conv2D(64, 3×3, ReLU) → Flatten → Dense.

use tch::nn::{self, Module};
use tch::Tensor;

use crate::model::card::Architecture;

#[derive(Debug)]
pub(super) struct SeedCnn {
    conv1: nn::Conv2D,
    conv2: nn::Conv2D,
    fc: nn::Linear,
    /// Dropout before the dense layer, active only while training.
    dropout: f64,
    /// The seed ends with a ReLU; dropping it lets embeddings use the whole space.
    final_relu: bool,
}

impl SeedCnn {
    pub(super) fn new(vs: &nn::Path, arch: &Architecture) -> Self {
        let conv1 = nn::conv2d(vs / "conv1", arch.in_channels, 32, 3, Default::default());
        let conv2 = nn::conv2d(vs / "conv2", 32, 64, 3, Default::default());
        let (h, w) = Architecture::seed_cnn_feature_size(arch.height, arch.width);
        let fc = nn::linear(vs / "fc", 64 * h * w, arch.embedding_dim, Default::default());
        Self {
            conv1,
            conv2,
            fc,
            dropout: arch.dropout,
            final_relu: arch.final_relu,
        }
    }

    pub(super) fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        let features = xs
            .apply(&self.conv1)
            .relu()
            .max_pool2d_default(2)
            .apply(&self.conv2)
            .relu()
            .flat_view()
            .dropout(self.dropout, train);
        let out = self.fc.forward(&features);
        if self.final_relu {
            out.relu()
        } else {
            out
        }
    }
}
