//! The photo pipeline's options, as `train photos` reads them from its command line, and the training
//! configuration they make.

use std::path::PathBuf;

use anyhow::Result;
use clap::{ArgAction, Args, ValueEnum};

use super::pipeline::PhotoData;
use super::trainer::{PhotoLoss, PhotoTrainConfig};
use crate::model::card::{
    Architecture, ColorMode, EfficientNet, LiteVariant, Polarity, Preprocessing, ResizeMode, EFFICIENTNET_LITE, RESNET,
};
use crate::model::{pretrained, select_device, DeviceSetting};
use crate::train::network_options::ResidualOptions;

/// Photo sources are shrunk to at most this side when loaded: edits and the model need no more.
pub const PHOTO_MAX_SIDE: u32 = 160;

/// The network a photo model is built on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Backbone {
    /// EfficientNet-Lite0, fine-tuned from its ImageNet weights (which `scripts/setup` fetches).
    #[value(name = "efficientnet-lite0")]
    EfficientNetLite0,
    /// The compact residual network, from scratch, shaped by the residual options.
    Resnet,
}

/// The training loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LossKind {
    /// NT-Xent: every other image of the batch is a negative.
    NtXent,
    /// The seed's contrastive loss over every pair of the batch.
    Contrastive,
}

/// The defaults are the recipe of the bundled `models/product` (see the README).
#[derive(Debug, Clone, Args)]
pub struct PhotoOptions {
    /// A folder of images, searched recursively; no classes needed (`scripts/fetch-photos` fills data/photos).
    #[arg(long, default_value = "data/photos")]
    pub data: PathBuf,
    /// The model directory to write; its last component names the model.
    #[arg(long, default_value = "models/product")]
    pub out: PathBuf,
    #[arg(long, value_enum, default_value_t = Backbone::EfficientNetLite0)]
    pub backbone: Backbone,
    /// The converted pretrained weights (default: where `scripts/setup` puts them in the per-user cache).
    #[arg(long)]
    pub pretrained: Option<PathBuf>,
    /// Input side length in pixels.
    #[arg(long, default_value_t = 160)]
    pub size: u32,
    /// Keep the aspect ratio (letterbox) or not (stretch).
    #[arg(long, value_enum, default_value_t = ResizeMode::Letterbox)]
    pub resize: ResizeMode,
    /// Cut a uniform border (a white square, a solid frame) off every image before resizing.
    #[arg(long, default_value_t = true, action = ArgAction::Set)]
    pub trim_border: bool,
    #[arg(long, default_value_t = 256)]
    pub embedding_dim: i64,
    #[command(flatten)]
    pub residual: ResidualOptions,
    /// Pretrained trunk: the stem and this many of its 16 blocks stay as ImageNet taught them (cheaper steps).
    #[arg(long, default_value_t = 8)]
    pub frozen_blocks: usize,
    /// Pretrained trunk: its learning rate as a share of the new head's.
    #[arg(long, default_value_t = 0.1)]
    pub trunk_lr_scale: f64,
    /// Weight of SSCD's entropy (KoLeo) regulariser; 0 leaves it out (10 beat SSCD's 30 and 0 on validation).
    #[arg(long, default_value_t = 10.0)]
    pub koleo: f64,
    /// NT-Xent: this many views of earlier steps stay as further negatives (a cross-batch memory, as in
    /// MoCo and XBM); 0 keeps none (2,048 beat none on validation: TAR at FAR 1e-3 0.859 against 0.847).
    #[arg(long, default_value_t = 2048)]
    pub negative_memory: usize,
    /// Optimiser steps (1,000 beat 600 on validation: TAR at FAR 1e-3 0.847 against 0.820).
    #[arg(long, default_value_t = 1000)]
    pub steps: usize,
    /// Sources per step; each gives two views.
    #[arg(long, default_value_t = 32)]
    pub sources_per_step: usize,
    /// Peak learning rate (warm-up, then cosine decay) of the head, or of the whole network without a
    /// pretrained trunk.
    #[arg(long, default_value_t = 1e-3)]
    pub lr: f64,
    #[arg(long, default_value_t = 1e-4)]
    pub weight_decay: f64,
    #[arg(long, value_enum, default_value_t = LossKind::NtXent)]
    pub loss: LossKind,
    /// NT-Xent's temperature.
    #[arg(long, default_value_t = 0.1)]
    pub temperature: f64,
    /// The contrastive loss's margin.
    #[arg(long, default_value_t = 1.0)]
    pub margin: f64,
    /// Steps between validations; the best validated weights are kept.
    #[arg(long, default_value_t = 150)]
    pub validate_every: usize,
    /// Sources are shrunk to at most this side when loaded.
    #[arg(long, default_value_t = PHOTO_MAX_SIDE)]
    pub max_side: u32,
    /// At most this many validation and test sources are evaluated, each against every other's edits.
    #[arg(long, default_value_t = 400)]
    pub eval_sources: usize,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    pub device: DeviceSetting,
}

impl PhotoOptions {
    /// Where the data is, and how to train on it.
    pub fn configuration(&self) -> Result<(PhotoData, PhotoTrainConfig)> {
        let device = select_device(self.device).map_err(anyhow::Error::msg)?;
        let pretrained_trunk = self.backbone == Backbone::EfficientNetLite0;
        // The pretrained trunk learnt on pixels scaled to [-1, 1] (TensorFlow's EfficientNet-Lite); the
        // residual network from scratch uses ImageNet's statistics, the usual choice for photos.
        let (mean, std) = if pretrained_trunk {
            (vec![0.5; 3], vec![0.5; 3])
        } else {
            (vec![0.485, 0.456, 0.406], vec![0.229, 0.224, 0.225])
        };
        let preprocessing = Preprocessing {
            color: ColorMode::Rgb,
            width: self.size,
            height: self.size,
            resize: self.resize,
            content_box: None,
            mean,
            std,
            polarity: Polarity::AsIs,
            trim_border: self.trim_border,
        };
        let base = Architecture {
            embedding_dim: self.embedding_dim,
            final_relu: false,
            l2_normalize: true,
            ..Architecture::seed(3, i64::from(self.size), i64::from(self.size))
        };
        let architecture = if pretrained_trunk {
            Architecture {
                name: EFFICIENTNET_LITE.into(),
                efficientnet: Some(EfficientNet {
                    variant: LiteVariant::Lite0,
                    pooling: self.residual.pooling,
                    frozen_blocks: self.frozen_blocks,
                    pretrained: pretrained::source(LiteVariant::Lite0)?,
                }),
                ..base
            }
        } else {
            Architecture {
                name: RESNET.into(),
                residual: Some(self.residual.residual()),
                ..base
            }
        };
        architecture.validate().map_err(anyhow::Error::msg)?;
        let config = PhotoTrainConfig {
            architecture,
            preprocessing,
            steps: self.steps,
            sources_per_step: self.sources_per_step,
            learning_rate: self.lr,
            weight_decay: self.weight_decay,
            loss: match self.loss {
                LossKind::NtXent => PhotoLoss::NtXent {
                    temperature: self.temperature,
                },
                LossKind::Contrastive => PhotoLoss::Contrastive { margin: self.margin },
            },
            koleo_weight: self.koleo,
            negative_memory: self.negative_memory,
            trunk_lr_scale: self.trunk_lr_scale,
            pretrained: self.pretrained.clone(),
            validate_every: self.validate_every,
            producers: 2,
            seed: self.seed,
            device,
        };
        let data = PhotoData {
            root: self.data.clone(),
            max_side: self.max_side,
            eval_sources: self.eval_sources,
            threads: 2,
        };
        Ok((data, config))
    }
}
