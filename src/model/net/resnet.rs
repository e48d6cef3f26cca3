//! A compact residual network for photos and handwriting: strided stem, stages of basic blocks, global pooling,
//! a linear projection.

use tch::nn::{self, Module};
use tch::Tensor;

use super::pooling::{gem_exponent, global_pool};
use crate::model::card::{Architecture, Residual};

#[derive(Debug)]
pub(super) struct ResNet {
    stem: ConvBn,
    /// A stem stride of 4 adds a 3×3 max pool after the stride-2 convolution, as in ResNet.
    stem_pool: bool,
    blocks: Vec<BasicBlock>,
    /// GeM's learnt exponent; `None` for average pooling.
    gem_p: Option<Tensor>,
    projection: nn::Linear,
    dropout: f64,
}

impl ResNet {
    /// Builds the network; `arch.residual` must be present (`Architecture::validate` checks).
    pub(super) fn new(vs: &nn::Path, arch: &Architecture) -> Self {
        let r: &Residual = arch
            .residual
            .as_ref()
            .expect("a resnet architecture carries its residual shape; this is a bug");
        let stem = ConvBn::new(&(vs / "stem"), arch.in_channels, r.stem_width, 3, r.stem_stride.min(2));
        let mut blocks = Vec::new();
        let mut channels = r.stem_width;
        for (stage, (&width, &count)) in r.stage_widths.iter().zip(&r.blocks_per_stage).enumerate() {
            for block in 0..count {
                let stride = if stage > 0 && block == 0 { 2 } else { 1 };
                let path = vs / format!("stage{stage}") / format!("block{block}");
                blocks.push(BasicBlock::new(&path, channels, width, stride));
                channels = width;
            }
        }
        let gem_p = gem_exponent(vs, r.pooling);
        let projection = nn::linear(vs / "projection", channels, arch.embedding_dim, Default::default());
        Self {
            stem,
            stem_pool: r.stem_stride == 4,
            blocks,
            gem_p,
            projection,
            dropout: arch.dropout,
        }
    }

    pub(super) fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        let mut x = self.stem.forward_t(xs, train).relu();
        if self.stem_pool {
            x = x.max_pool2d([3, 3], [2, 2], [1, 1], [1, 1], false);
        }
        for block in &self.blocks {
            x = block.forward_t(&x, train);
        }
        let pooled = global_pool(&x, self.gem_p.as_ref());
        self.projection.forward(&pooled.dropout(self.dropout, train))
    }
}

/// A convolution without bias followed by batch norm (the norm's shift replaces the bias).
#[derive(Debug)]
struct ConvBn {
    conv: nn::Conv2D,
    bn: nn::BatchNorm,
}

impl ConvBn {
    fn new(vs: &nn::Path, c_in: i64, c_out: i64, kernel: i64, stride: i64) -> Self {
        let config = nn::ConvConfig {
            stride,
            padding: kernel / 2,
            bias: false,
            ..Default::default()
        };
        Self {
            conv: nn::conv2d(vs / "conv", c_in, c_out, kernel, config),
            bn: nn::batch_norm2d(vs / "bn", c_out, Default::default()),
        }
    }

    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        xs.apply(&self.conv).apply_t(&self.bn, train)
    }
}

/// Two 3×3 convolutions and a shortcut; a 1×1 projection on the shortcut when the shape changes.
#[derive(Debug)]
struct BasicBlock {
    first: ConvBn,
    second: ConvBn,
    shortcut: Option<ConvBn>,
}

impl BasicBlock {
    fn new(vs: &nn::Path, c_in: i64, c_out: i64, stride: i64) -> Self {
        Self {
            first: ConvBn::new(&(vs / "conv1"), c_in, c_out, 3, stride),
            second: ConvBn::new(&(vs / "conv2"), c_out, c_out, 3, 1),
            shortcut: (stride != 1 || c_in != c_out).then(|| ConvBn::new(&(vs / "shortcut"), c_in, c_out, 1, stride)),
        }
    }

    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        let out = self.second.forward_t(&self.first.forward_t(xs, train).relu(), train);
        let identity = match &self.shortcut {
            Some(projection) => projection.forward_t(xs, train),
            None => xs.shallow_clone(),
        };
        (out + identity).relu()
    }
}
